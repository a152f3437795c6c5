//! Random symmetric crystals (the AIRSS / PyXtal idea): pick a space group, a combination of its
//! Wyckoff positions whose multiplicities add up to the composition, a lattice of the group's crystal
//! system at an estimated volume, and free coordinates that keep every pair of atoms apart by a fraction
//! of the sum of their covalent radii.
//!
//! Volumes: per-element atomic volumes (Å³/atom) fitted by least squares to the embedded dataset
//! (volume per cell = Σ nᵢ vᵢ over 20,988 OQMD-relaxed ICSD crystals), so that a random cell starts near
//! the density such a composition has in known crystals.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use nalgebra::{DMatrix, DVector, Vector3};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::crystal::neighbors::MinImage;
use crate::crystal::wyckoff::{CrystalSystem, SpaceGroup, space_group};
use crate::crystal::{Element, Lattice, LatticeParams, Structure};
use crate::data::Dataset;

/// How random structures are drawn.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomOptions {
    /// Cell volume is drawn uniformly in `[1 - v, 1 + v]` × the dataset estimate.
    pub volume_spread: f64,
    /// Atoms i, j stay at least this × (rᵢ + rⱼ) apart (covalent radii).
    pub min_distance_factor: f64,
    /// Lattice + coordinate draws before giving up on a space group.
    pub attempts: usize,
    /// Space groups to draw from (empty: all 230).
    pub space_groups: Vec<u8>,
}

impl Default for RandomOptions {
    fn default() -> Self {
        RandomOptions { volume_spread: 0.25, min_distance_factor: 0.7, attempts: 40, space_groups: Vec::new() }
    }
}

/// A random symmetric structure and how it was made.
#[derive(Debug, Clone)]
pub struct RandomStructure {
    /// Primitive standard cell when moyo finds one, else the conventional cell drawn.
    pub structure: Structure,
    /// The space group drawn (the structure may have a higher one).
    pub space_group: u8,
    /// Wyckoff positions used, e.g. `["Na 4a", "Cl 4b"]`.
    pub wyckoffs: Vec<String>,
}

/// Covalent radius (Å) with a fallback for the few elements without one.
fn radius(e: Element) -> f64 {
    e.data().covalent_radius.or(e.data().atomic_radius).unwrap_or(1.5)
}

/// Atomic volumes (Å³/atom) fitted to the embedded dataset; elements it lacks fall back to
/// 2.5 × (4/3)π r³ with the covalent radius r.
pub fn atomic_volume(e: Element) -> f64 {
    static TABLE: OnceLock<BTreeMap<Element, f64>> = OnceLock::new();
    let t = TABLE.get_or_init(|| fit_atomic_volumes(Dataset::embedded()));
    t.get(&e).copied().unwrap_or_else(|| 2.5 * 4.0 / 3.0 * std::f64::consts::PI * radius(e).powi(3))
}

/// Least-squares atomic volumes from a dataset (ridge-regularised towards the radius fallback, so an
/// element seen in few crystals keeps a sensible value).
pub fn fit_atomic_volumes(ds: &Dataset) -> BTreeMap<Element, f64> {
    let mut index: BTreeMap<Element, usize> = BTreeMap::new();
    for e in ds.entries.iter() {
        for sp in e.structure.species() {
            let n = index.len();
            index.entry(*sp).or_insert(n);
        }
    }
    let k = index.len();
    let prior: Vec<f64> = {
        let mut p = vec![0.0; k];
        for (el, &i) in &index {
            p[i] = 2.5 * 4.0 / 3.0 * std::f64::consts::PI * radius(*el).powi(3);
        }
        p
    };
    // Normal equations (AᵀA + λI) v = Aᵀb + λ prior, rows = crystals.
    let lambda = 1.0;
    let mut ata = DMatrix::<f64>::zeros(k, k);
    let mut atb = DVector::<f64>::zeros(k);
    for e in ds.entries.iter() {
        let mut row: BTreeMap<usize, f64> = BTreeMap::new();
        for sp in e.structure.species() {
            *row.entry(index[sp]).or_default() += 1.0;
        }
        for (&i, &a) in &row {
            atb[i] += a * e.structure.volume();
            for (&j, &b) in &row {
                ata[(i, j)] += a * b;
            }
        }
    }
    for i in 0..k {
        ata[(i, i)] += lambda;
        atb[i] += lambda * prior[i];
    }
    let v = ata.cholesky().map(|c| c.solve(&atb)).unwrap_or_else(|| DVector::from_vec(prior.clone()));
    index.into_iter().map(|(el, i)| (el, if v[i].is_finite() && v[i] > 1.0 { v[i] } else { prior[i] })).collect()
}

/// Estimated volume (Å³) of a cell holding these atoms: the atomic-volume sum, corrected by the median
/// ratio of actual to summed volume over dataset crystals of the same chemical system (ionic and metallic
/// bonding pack differently, which one volume per element cannot say).
pub fn estimate_volume(counts: &[(Element, usize)]) -> f64 {
    let sum = |c: &mut dyn Iterator<Item = (Element, f64)>| c.map(|(e, n)| atomic_volume(e) * n).sum::<f64>();
    let base = sum(&mut counts.iter().map(|(e, n)| (*e, *n as f64)));
    let system: Vec<Element> = {
        let mut v: Vec<Element> = counts.iter().filter(|c| c.1 > 0).map(|c| c.0).collect();
        v.sort();
        v.dedup();
        v
    };
    static RATIOS: OnceLock<std::sync::Mutex<BTreeMap<Vec<Element>, f64>>> = OnceLock::new();
    let cache = RATIOS.get_or_init(Default::default);
    if let Some(r) = cache.lock().ok().and_then(|m| m.get(&system).copied()) {
        return base * r;
    }
    let mut ratios: Vec<f64> = Dataset::embedded()
        .entries
        .iter()
        .filter(|e| {
            let mut els: Vec<Element> = e.structure.species().to_vec();
            els.sort();
            els.dedup();
            els == system
        })
        .map(|e| e.structure.volume() / sum(&mut e.structure.species().iter().map(|x| (*x, 1.0))))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let r = if ratios.is_empty() { 1.0 } else { ratios[ratios.len() / 2] };
    if let Ok(mut m) = cache.lock() {
        m.insert(system, r);
    }
    base * r
}

/// Closest allowed approach of elements a and b (Å).
pub fn min_distance(a: Element, b: Element, factor: f64) -> f64 {
    factor * (radius(a) + radius(b))
}

/// A random lattice of `system` with volume `volume` (Å³), conventional setting.
pub fn random_lattice(system: CrystalSystem, volume: f64, rng: &mut impl Rng) -> Option<Lattice> {
    let mut len = || rng.random_range(0.75..1.35_f64);
    let (a, b, c) = (len(), len(), len());
    let mut ang = || rng.random_range(65.0..115.0_f64);
    let p = match system {
        CrystalSystem::Triclinic => LatticeParams { a, b, c, alpha_deg: ang(), beta_deg: ang(), gamma_deg: ang() },
        CrystalSystem::Monoclinic => LatticeParams { a, b, c, alpha_deg: 90.0, beta_deg: ang(), gamma_deg: 90.0 },
        CrystalSystem::Orthorhombic => LatticeParams { a, b, c, alpha_deg: 90.0, beta_deg: 90.0, gamma_deg: 90.0 },
        CrystalSystem::Tetragonal => LatticeParams { a, b: a, c, alpha_deg: 90.0, beta_deg: 90.0, gamma_deg: 90.0 },
        CrystalSystem::Trigonal | CrystalSystem::Hexagonal => {
            LatticeParams { a, b: a, c, alpha_deg: 90.0, beta_deg: 90.0, gamma_deg: 120.0 }
        }
        CrystalSystem::Cubic => LatticeParams { a, b: a, c: a, alpha_deg: 90.0, beta_deg: 90.0, gamma_deg: 90.0 },
    };
    let l = Lattice::from_parameters(p).ok()?;
    // Reject very flat triclinic/monoclinic cells (volume far below a·b·c).
    let [la, lb, lc] = l.lengths();
    if l.volume() < 0.5 * la * lb * lc {
        return None;
    }
    l.scaled_to_volume(volume).ok()
}

/// A random choice of Wyckoff positions (indices into `g.sites`) for each element so that the
/// multiplicities add up to the conventional-cell counts; fixed positions (no free parameter) are used
/// at most once. `None` when no combination exists (after a bounded randomised search).
pub fn wyckoff_combination(
    g: &SpaceGroup,
    counts: &[(Element, usize)],
    rng: &mut impl Rng,
) -> Option<Vec<(Element, usize)>> {
    fn fill(
        g: &SpaceGroup,
        left: usize,
        used: &mut Vec<usize>,
        picks: &mut Vec<usize>,
        rng: &mut dyn rand::RngCore,
        budget: &mut usize,
    ) -> bool {
        if left == 0 {
            return true;
        }
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let mut options: Vec<usize> = (0..g.sites.len())
            .filter(|&i| g.sites[i].multiplicity <= left && (g.sites[i].dof() > 0 || !used.contains(&i)))
            .collect();
        options.shuffle(rng);
        for i in options {
            let fixed = g.sites[i].dof() == 0;
            if fixed {
                used.push(i);
            }
            picks.push(i);
            if fill(g, left - g.sites[i].multiplicity, used, picks, rng, budget) {
                return true;
            }
            picks.pop();
            if fixed {
                used.pop();
            }
        }
        false
    }
    let mut used = Vec::new();
    let mut out = Vec::new();
    let mut budget = 2000;
    for &(el, n) in counts {
        let mut picks = Vec::new();
        if !fill(g, n * g.centring, &mut used, &mut picks, rng, &mut budget) {
            return None;
        }
        out.extend(picks.into_iter().map(|i| (el, i)));
    }
    Some(out)
}

/// Space groups (from `allowed`, or all 230) that admit a Wyckoff combination for `counts` (atoms per
/// primitive cell).
pub fn feasible_space_groups(counts: &[(Element, usize)], allowed: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let all: Vec<u8> = if allowed.is_empty() { (1..=230).collect() } else { allowed.to_vec() };
    all.into_iter()
        .filter(|&n| space_group(n).is_ok_and(|g| (0..4).any(|_| wyckoff_combination(g, counts, rng).is_some())))
        .collect()
}

/// Draw a structure with `counts` atoms per primitive cell in space group `number`; `None` when the
/// group admits no combination or every attempt left atoms too close.
pub fn random_symmetric(
    counts: &[(Element, usize)],
    number: u8,
    opts: &RandomOptions,
    rng: &mut impl Rng,
) -> Option<RandomStructure> {
    let g = space_group(number).ok()?;
    let natoms: usize = counts.iter().map(|c| c.1).sum();
    let volume = estimate_volume(counts) * g.centring as f64;
    if natoms == 0 {
        return None;
    }
    for _ in 0..opts.attempts {
        let combo = wyckoff_combination(g, counts, rng)?;
        let v = volume * rng.random_range((1.0 - opts.volume_spread)..=(1.0 + opts.volume_spread));
        let Some(lattice) = random_lattice(g.crystal_system, v, rng) else { continue };
        let mi = MinImage::new(&lattice);
        // Every element must clear its own periodic images.
        let shortest = mi.distance(&Vector3::zeros(), true);
        if counts.iter().any(|(e, _)| shortest < min_distance(*e, *e, opts.min_distance_factor)) {
            continue;
        }
        if let Some(s) = place(g, &combo, &lattice, &mi, opts, rng) {
            let wyckoffs =
                combo.iter().map(|(e, i)| format!("{e} {}{}", g.sites[*i].multiplicity, g.sites[*i].letter)).collect();
            let structure = s.primitive_standard(1e-3).unwrap_or(s);
            return Some(RandomStructure { structure, space_group: number, wyckoffs });
        }
    }
    None
}

/// Draw coordinates for each (element, Wyckoff position), keeping atoms apart.
fn place(
    g: &SpaceGroup,
    combo: &[(Element, usize)],
    lattice: &Lattice,
    mi: &MinImage,
    opts: &RandomOptions,
    rng: &mut impl Rng,
) -> Option<Structure> {
    let mut species: Vec<Element> = Vec::new();
    let mut frac: Vec<Vector3<f64>> = Vec::new();
    // Fixed positions first: they have no freedom left to dodge others.
    let mut order: Vec<&(Element, usize)> = combo.iter().collect();
    order.sort_by_key(|(_, i)| g.sites[*i].dof());
    for &(el, i) in order {
        let w = &g.sites[i];
        let tries = if w.dof() == 0 { 1 } else { 30 };
        let mut ok = false;
        for _ in 0..tries {
            let xyz = Vector3::new(rng.random::<f64>(), rng.random::<f64>(), rng.random::<f64>());
            let orbit = g.orbit(&w.representative(&xyz));
            if orbit.len() != w.multiplicity {
                continue;
            }
            let clear = |a: &Vector3<f64>, b: &Vector3<f64>, ea: Element, eb: Element| {
                mi.distance(&lattice.to_cart(&(a - b)), false) >= min_distance(ea, eb, opts.min_distance_factor)
            };
            let inside = orbit.iter().enumerate().all(|(k, p)| orbit[..k].iter().all(|q| clear(p, q, el, el)));
            let apart = inside && orbit.iter().all(|p| frac.iter().zip(&species).all(|(q, e)| clear(p, q, el, *e)));
            if apart {
                species.extend(std::iter::repeat_n(el, orbit.len()));
                frac.extend(orbit);
                ok = true;
                break;
            }
        }
        if !ok {
            return None;
        }
    }
    Structure::from_frac(lattice.clone(), species, frac).ok()
}

/// Draw a structure in a random feasible space group (uniform over `feasible`).
pub fn random_in_groups(
    counts: &[(Element, usize)],
    feasible: &[u8],
    opts: &RandomOptions,
    rng: &mut impl Rng,
) -> Option<RandomStructure> {
    for _ in 0..20 {
        let &n = feasible.choose(rng)?;
        if let Some(s) = random_symmetric(counts, n, opts, rng) {
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn el(s: &str) -> Element {
        Element::from_symbol(s).unwrap()
    }

    #[test]
    fn rocksalt_counts_in_fm3m_give_a_symmetric_cell() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let counts = [(el("Na"), 1), (el("Cl"), 1)];
        let r = random_symmetric(&counts, 225, &RandomOptions::default(), &mut rng).expect("Fm-3m holds NaCl");
        assert_eq!(r.structure.n_sites(), 2);
        assert_eq!(r.structure.reduced_formula(), "NaCl");
        // Two fixed positions in Fm-3m with one atom each per primitive cell: rock salt or zinc blende.
        let sg = r.structure.space_group_number(1e-3).unwrap();
        assert!(sg == 225 || sg == 216, "got {sg}");
    }

    #[test]
    fn draws_keep_the_group_composition_and_distances() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let counts = [(el("Sr"), 1), (el("Ti"), 1), (el("O"), 3)];
        let opts = RandomOptions::default();
        let groups = feasible_space_groups(&counts, &[], &mut rng);
        assert!(groups.contains(&221) && groups.contains(&1) && groups.len() > 40, "{} groups", groups.len());
        let mut made = 0;
        for &n in groups.iter().step_by(7) {
            if let Some(r) = random_symmetric(&counts, n, &opts, &mut rng) {
                made += 1;
                assert_eq!(r.structure.reduced_formula(), "SrTiO3");
                let found = r.structure.space_group_number(1e-3).unwrap();
                let g = space_group(found).unwrap();
                // The structure has at least the drawn group's operations (per primitive cell).
                let drawn = space_group(n).unwrap();
                assert!(
                    g.operations.len() / g.centring >= drawn.operations.len() / drawn.centring,
                    "drew {n}, found {found}"
                );
                assert!(r.structure.min_distance() >= min_distance(el("O"), el("O"), opts.min_distance_factor) - 1e-6);
            }
        }
        assert!(made * 10 >= groups.len() / 7 * 8, "{made} of {} groups drew a structure", groups.len() / 7);
    }

    #[test]
    fn fitted_volumes_predict_known_cells() {
        // Experimental volumes per formula unit (Å³): Si 20.0, NaCl 44.9, MgO 18.7, SrTiO3 59.5, GaAs 45.2.
        for (f, v) in [("Si", 20.0), ("NaCl", 44.9), ("MgO", 18.7), ("SrTiO3", 59.5), ("GaAs", 45.2)] {
            let c = crate::crystal::Composition::from_formula(f).unwrap();
            let counts: Vec<(Element, usize)> = c.iter().map(|(e, n)| (e, n as usize)).collect();
            let est = estimate_volume(&counts);
            assert!((est / v - 1.0).abs() < 0.25, "{f}: estimated {est:.1} Å³, known {v}");
        }
    }
}
