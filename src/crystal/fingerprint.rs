//! Oganov–Valle structure fingerprints and their cosine distance.
//!
//! Source: A. R. Oganov & M. Valle, "How to quantify energy landscapes of solids",
//! J. Chem. Phys. 130, 104504 (2009), doi:10.1063/1.3079326, in the form implemented by ASE's
//! genetic algorithm (`OFPComparator` in `ase_ga/ofp_comparator.py`, formerly `ase.ga`), which this
//! module reproduces for fully periodic structures:
//!
//! For each element pair (A, B) with Z_A ≤ Z_B, the fingerprint is a binned, Gaussian-smeared radial
//! distribution function
//!
//! F_AB(R_k) = V / (N_A N_B) · Σ_{i∈A} Σ_{j∈B, |r_ij| < r_cut} δ̃(R_k − r_ij) / (4π R_k² Δ) − 1,
//!
//! where the bins have width Δ (`binwidth_ang`), bin k covers [kΔ, (k+1)Δ) and is weighted by its
//! *upper* edge R_k = (k+1)Δ, and δ̃ spreads each distance over the bins within ⌈nσ·σ/Δ⌉ of its own
//! with the weights of a normal distribution of width σ integrated over each bin, renormalised to
//! the truncated window (exactly ASE's discretisation). Pairs run over all periodic images except a
//! site with itself at zero offset.
//!
//! The cosine distance between two fingerprints weights each pair by w_AB ∝ N_A N_B (Σ w = 1):
//! D = ½ (1 − Σ w F¹·F² / (‖F¹‖ ‖F²‖)) with ‖F‖² = Σ w F·F, ASE's `_cosine_distance`. It is 0 for
//! identical fingerprints and at most 1.
//!
//! Known difference from ASE: two *distinct* sites closer than 10⁻⁸ Å (overlapping atoms) are not a
//! pair here ([`Structure::neighbor_list`] drops them) while ASE counts them in bin 0. Validated against
//! ase-ga 1.0.3 by `tests/fingerprint_ase.rs` (curves to ~1e-15 relative).
//!
//! Units: lengths in Å; fingerprint values are dimensionless.

use super::{Element, Structure};

/// Parameters of the fingerprint. [`Default`] gives ASE's `OFPComparator` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OvParams {
    /// Cutoff radius (Å); pairs at distance ≥ this are ignored. ASE: 20.
    pub rcut_ang: f64,
    /// Bin width (Å). ASE: 0.05.
    pub binwidth_ang: f64,
    /// Standard deviation of the Gaussian smearing (Å). ASE: 0.02.
    pub sigma_ang: f64,
    /// Smearing window half-width in units of σ. ASE: 4.
    pub nsigma: f64,
}

impl Default for OvParams {
    fn default() -> Self {
        OvParams { rcut_ang: 20.0, binwidth_ang: 0.05, sigma_ang: 0.02, nsigma: 4.0 }
    }
}

/// Most bins a fingerprint may have; larger `rcut / binwidth` ratios are truncated to keep memory
/// bounded on odd parameters.
pub const MAX_BINS: usize = 1 << 20;

/// An Oganov–Valle fingerprint: one curve of `n_bins` values per element pair.
#[derive(Debug, Clone, PartialEq)]
pub struct OvFingerprint {
    params: OvParams,
    /// Elements present, sorted by atomic number.
    elements: Vec<Element>,
    /// Number of sites of each element, parallel to `elements`.
    counts: Vec<usize>,
    /// Element pairs (A, B) with Z_A ≤ Z_B, in the order of ASE's
    /// `combinations_with_replacement(sorted numbers)`; parallel to `curves`.
    pairs: Vec<(Element, Element)>,
    curves: Vec<Vec<f64>>,
}

impl OvFingerprint {
    /// Parameters the fingerprint was computed with.
    pub fn params(&self) -> &OvParams {
        &self.params
    }

    /// Elements present, by atomic number.
    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// Site count of each element of [`Self::elements`].
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Element pairs (A, B), Z_A ≤ Z_B, in the order of [`Self::curves`].
    pub fn pairs(&self) -> &[(Element, Element)] {
        &self.pairs
    }

    /// One curve per pair; value k belongs to the bin [kΔ, (k+1)Δ) Å.
    pub fn curves(&self) -> &[Vec<f64>] {
        &self.curves
    }

    /// The curve F_AB for a pair, in either order; `None` if an element is absent.
    pub fn curve(&self, a: Element, b: Element) -> Option<&[f64]> {
        let key = if a <= b { (a, b) } else { (b, a) };
        self.pairs.iter().position(|p| *p == key).map(|k| self.curves[k].as_slice())
    }

    /// Number of bins per curve.
    pub fn n_bins(&self) -> usize {
        self.curves.first().map_or(0, Vec::len)
    }

    /// Atom fraction of element `e` (0 if absent).
    fn fraction(&self, e: Element) -> f64 {
        let total: usize = self.counts.iter().sum();
        match self.elements.iter().position(|x| *x == e) {
            Some(k) if total > 0 => self.counts[k] as f64 / total as f64,
            _ => 0.0,
        }
    }
}

/// Smearing window: offsets −m..=m (in bins) and the fraction of a Gaussian falling into each, as
/// ASE computes them (`0.5 erf(c(2i+1)) − 0.5 erf(c(2i−1))`, normalised by `erf(c(2m+1))`).
fn smearing(p: &OvParams) -> (i64, Vec<f64>) {
    let m = (p.nsigma * p.sigma_ang / p.binwidth_ang).ceil();
    let m = if m.is_finite() && m >= 0.0 { m.min(1000.0) as i64 } else { 0 };
    let c = 0.25 * std::f64::consts::SQRT_2 * p.binwidth_ang / p.sigma_ang;
    let norm = libm::erf(c * (2 * m + 1) as f64);
    let w = (-m..=m)
        .map(|i| {
            let v = 0.5 * libm::erf(c * (2 * i + 1) as f64) - 0.5 * libm::erf(c * (2 * i - 1) as f64);
            if norm > 0.0 {
                v / norm
            } else if i == 0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    (m, w)
}

/// The Oganov–Valle fingerprint of `s` (see the module documentation), from all site pairs of
/// [`Structure::neighbor_list`] closer than `p.rcut_ang`.
///
/// Non-positive or non-finite parameters give a fingerprint with no bins (and with it a cosine
/// distance of 0 to anything of the same composition); this function never panics.
pub fn oganov_valle(s: &Structure, p: &OvParams) -> OvFingerprint {
    let mut elements: Vec<Element> = s.species().to_vec();
    elements.sort();
    elements.dedup();
    let counts: Vec<usize> = elements.iter().map(|e| s.species().iter().filter(|x| *x == e).count()).collect();
    let n_el = elements.len();
    let mut pairs = Vec::with_capacity(n_el * (n_el + 1) / 2);
    for a in 0..n_el {
        for b in a..n_el {
            pairs.push((elements[a], elements[b]));
        }
    }
    let valid = [p.rcut_ang, p.binwidth_ang, p.sigma_ang, p.nsigma].iter().all(|v| v.is_finite())
        && p.rcut_ang > 0.0
        && p.binwidth_ang > 0.0
        && p.sigma_ang > 0.0
        && p.nsigma >= 0.0;
    let n_bins = if valid { ((p.rcut_ang / p.binwidth_ang).ceil() as usize).min(MAX_BINS) } else { 0 };
    let mut curves = vec![vec![0.0; n_bins]; pairs.len()];
    if n_bins == 0 {
        return OvFingerprint { params: *p, elements, counts, pairs, curves };
    }

    let (m, smear) = smearing(p);
    // 1 / (4π R_k² Δ) with R_k the upper edge of bin k, ASE's `weights`.
    let weights: Vec<f64> = (0..n_bins)
        .map(|k| {
            let r = p.binwidth_ang * (k + 1) as f64;
            1.0 / (4.0 * std::f64::consts::PI * r * r) / p.binwidth_ang
        })
        .collect();
    // Index of each site's element and of each (A, B) pair in `pairs`.
    let kind: Vec<usize> = s.species().iter().map(|e| elements.binary_search(e).unwrap_or(0)).collect();
    let pair_index = |a: usize, b: usize| -> usize {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        a * n_el - a * (a.saturating_sub(1)) / 2 + (b - a)
    };

    // Accumulate Σ_i Σ_j δ̃ / (4π R² Δ) per ordered pair (A = centre, B = neighbour). ASE keys the
    // curve by (A, B) with A ≤ B and only ever sums centres of the smaller element, so the curve of
    // an unordered pair is the one with centres of kind min(A, B).
    let nl = s.neighbor_list(p.rcut_ang);
    for k in 0..nl.len() {
        let r = nl.distance[k];
        if r >= p.rcut_ang {
            continue; // ASE's neighbour list keeps strictly shorter distances
        }
        let (ka, kb) = (kind[nl.center[k]], kind[nl.neighbor[k]]);
        if ka > kb {
            continue;
        }
        let curve = &mut curves[pair_index(ka, kb)];
        let bin = (r / p.binwidth_ang).floor() as i64;
        for (o, w) in (-m..=m).zip(&smear) {
            let nb = bin + o;
            if nb >= 0 && (nb as usize) < n_bins {
                curve[nb as usize] += weights[nb as usize] * w;
            }
        }
    }
    // Normalise: × V / N_B per centre, averaged over the N_A centres, minus one.
    let volume = s.volume();
    for (idx, (a, b)) in pairs.iter().enumerate() {
        let na = counts[elements.binary_search(a).unwrap_or(0)] as f64;
        let nb = counts[elements.binary_search(b).unwrap_or(0)] as f64;
        let f = volume / (na * nb);
        for v in &mut curves[idx] {
            *v = *v * f - 1.0;
        }
    }
    OvFingerprint { params: *p, elements, counts, pairs, curves }
}

/// Cosine distance between two fingerprints (0 = identical, at most 1), ASE's `_cosine_distance`.
///
/// Pair weights are w_AB ∝ x_A x_B from the atom fractions, which equals ASE's N_A N_B / Σ N_A N_B
/// for structures of the same composition (ASE refuses others); when the fractions of `a` and `b`
/// differ, the two weightings are averaged so that the distance stays symmetric. Fingerprints that
/// cannot be compared (different element sets or bin counts) are at distance 1. If a weighted norm
/// is zero the cosine is undefined: the distance is 0 when both fingerprints are zero and ½
/// otherwise.
pub fn cosine_distance(a: &OvFingerprint, b: &OvFingerprint) -> f64 {
    if a.elements != b.elements || a.n_bins() != b.n_bins() {
        return 1.0;
    }
    let weights: Vec<f64> = a
        .pairs
        .iter()
        .map(|&(x, y)| {
            let wa = a.fraction(x) * a.fraction(y);
            let wb = b.fraction(x) * b.fraction(y);
            0.5 * (wa + wb)
        })
        .collect();
    let wtot: f64 = weights.iter().sum();
    if wtot <= 0.0 || !wtot.is_finite() {
        return 1.0;
    }
    let (mut n1, mut n2, mut dot) = (0.0, 0.0, 0.0);
    for (k, w) in weights.iter().enumerate() {
        let w = w / wtot;
        let (f1, f2) = (&a.curves[k], &b.curves[k]);
        n1 += f1.iter().map(|v| v * v).sum::<f64>() * w;
        n2 += f2.iter().map(|v| v * v).sum::<f64>() * w;
        dot += f1.iter().zip(f2).map(|(x, y)| x * y).sum::<f64>() * w;
    }
    let norm = n1.sqrt() * n2.sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return if n1 == 0.0 && n2 == 0.0 { 0.0 } else { 0.5 };
    }
    (0.5 * (1.0 - dot / norm)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Lattice;
    use nalgebra::Vector3;

    fn el(s: &str) -> Element {
        Element::from_symbol(s).unwrap()
    }

    fn rocksalt(a: f64) -> Structure {
        let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let mut sp = vec![];
        let mut fr = vec![];
        for q in fcc {
            sp.push(el("Na"));
            fr.push(Vector3::from(q));
            sp.push(el("Cl"));
            fr.push(Vector3::from(q) + Vector3::new(0.5, 0.5, 0.5));
        }
        Structure::from_frac(Lattice::cubic(a).unwrap(), sp, fr).unwrap()
    }

    fn cscl(a: f64) -> Structure {
        Structure::from_frac(
            Lattice::cubic(a).unwrap(),
            vec![el("Cs"), el("Cl")],
            vec![Vector3::zeros(), Vector3::new(0.5, 0.5, 0.5)],
        )
        .unwrap()
    }

    fn small() -> OvParams {
        OvParams { rcut_ang: 8.0, ..OvParams::default() }
    }

    #[test]
    fn erf_values() {
        // Reference values from tables (A&S Table 7.1) / mpmath.
        for (x, e) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.4, 0.999_311_486_103_354_9),
            (2.6, 0.999_763_965_583_470_7),
            (3.5, 0.999_999_256_901_627_6),
            (4.42, 0.999_999_999_591_707),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            assert!((libm::erf(x) - e).abs() < 4e-16, "libm::erf({x}) = {} vs {e}", libm::erf(x));
        }
        assert_eq!(libm::erf(7.0), 1.0);
        assert!(libm::erf(f64::NAN).is_nan());
    }

    #[test]
    fn smearing_window_matches_ase_defaults() {
        let (m, w) = smearing(&OvParams::default());
        assert_eq!(m, 2); // ceil(4 · 0.02 / 0.05)
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        assert!((w[0] - w[4]).abs() < 1e-15 && (w[1] - w[3]).abs() < 1e-15);
    }

    #[test]
    fn shape_and_pairs() {
        let fp = oganov_valle(&rocksalt(5.64), &small());
        assert_eq!(fp.n_bins(), 160);
        assert_eq!(fp.pairs(), &[(el("Na"), el("Na")), (el("Na"), el("Cl")), (el("Cl"), el("Cl"))]);
        assert_eq!(fp.counts(), &[4, 4]);
        // Below the shortest distance (2.82 Å, minus smearing) the RDF is empty: F = −1.
        let nacl = fp.curve(el("Cl"), el("Na")).unwrap();
        assert!(nacl[..50].iter().all(|v| *v == -1.0));
        // The first Na–Cl shell, 6 neighbours at 2.82 Å, sits in bins 55/56.
        let peak = (0..160).max_by(|&i, &j| nacl[i].total_cmp(&nacl[j])).unwrap();
        assert!((55..=56).contains(&peak), "{peak}");
        assert!(fp.curve(el("Na"), el("K")).is_none());
    }

    #[test]
    fn invariant_under_cell_choice_permutation_and_shift() {
        let s = rocksalt(5.64);
        let fp = oganov_valle(&s, &small());
        let order: Vec<usize> = (0..s.n_sites()).rev().collect();
        let t = s.permuted(&order).translated(Vector3::new(0.13, -0.4, 0.77));
        let sc = s.supercell([[1, 1, 0], [-1, 1, 0], [0, 0, 2]]).unwrap();
        for other in [t, sc] {
            let g = oganov_valle(&other, &small());
            for (c1, c2) in fp.curves().iter().zip(g.curves()) {
                for (x, y) in c1.iter().zip(c2) {
                    assert!((x - y).abs() < 1e-9, "{x} vs {y}");
                }
            }
            assert!(cosine_distance(&fp, &g) < 1e-12);
        }
    }

    #[test]
    fn distances_order_sensibly() {
        let a = oganov_valle(&rocksalt(5.64), &small());
        let strained = oganov_valle(&rocksalt(5.70), &small());
        let d_self = cosine_distance(&a, &a);
        let d_strain = cosine_distance(&a, &strained);
        assert!(d_self.abs() < 1e-15);
        assert!(d_strain > 1e-4 && d_strain < 0.5, "{d_strain}");
        assert!((cosine_distance(&strained, &a) - d_strain).abs() < 1e-15);
        // CsCl vs NaCl: different element sets are incomparable.
        assert_eq!(cosine_distance(&a, &oganov_valle(&cscl(4.1), &small())), 1.0);
    }

    #[test]
    fn odd_parameters_do_not_panic() {
        let s = cscl(4.1);
        for p in [
            OvParams { rcut_ang: 0.0, ..OvParams::default() },
            OvParams { binwidth_ang: f64::NAN, ..OvParams::default() },
            OvParams { sigma_ang: -1.0, ..OvParams::default() },
            OvParams { rcut_ang: 1.0, binwidth_ang: 1e-12, ..OvParams::default() },
        ] {
            let fp = oganov_valle(&s, &p);
            assert!(fp.n_bins() <= MAX_BINS);
            let d = cosine_distance(&fp, &fp);
            assert!((0.0..=1.0).contains(&d));
        }
        // Isolated atom in a big box: no pairs within the cutoff, every value −1.
        let lone = Structure::from_frac(Lattice::cubic(30.0).unwrap(), vec![el("Ar")], vec![Vector3::zeros()]).unwrap();
        let fp = oganov_valle(&lone, &small());
        assert!(fp.curves()[0].iter().all(|v| *v == -1.0));
        assert!(cosine_distance(&fp, &fp) < 1e-15);
    }
}
