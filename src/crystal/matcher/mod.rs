//! Structure matching with the semantics of pymatgen's `StructureMatcher`.
//!
//! Source: `pymatgen.core.structure_matcher.StructureMatcher` (W. D. Richards, S. Dacek, S. P. Ong;
//! pymatgen 2026.10), with `Structure.get_primitive_structure`, `Lattice.find_all_mappings`,
//! `Lattice._calculate_lll` and the Cython helpers `is_coord_subset_pbc` / `pbc_shortest_vectors`,
//! all ported here step by step. Only the default `SpeciesComparator` (species must be identical) and
//! `supercell_size="num_sites"` are supported; `allow_subset` and `ignored_species` are not.
//!
//! The algorithm, for structures 1 and 2:
//! 1. different fractional compositions never match;
//! 2. both are Niggli-reduced and, with `primitive_cell`, reduced to a primitive cell by pymatgen's
//!    `get_primitive_structure(tolerance=0.25 Å)` (ported, not spglib/moyo);
//! 3. with `scale`, both lattices are rescaled to a common volume per formula unit;
//! 4. every basis of lattice 1 whose lengths lie within a factor `1 + ltol` and whose angles lie
//!    within `angle_tol_deg` of lattice 2 is tried (a search over lattice points in a sphere);
//! 5. for each basis, each translation that superposes a site of the least frequent species of 2 on
//!    a site of the same species in 1 is tried; if every site of 2 then lies within a fractional
//!    tolerance of a site of 1 of the same species, sites are paired by a linear assignment of
//!    squared Cartesian distances on the lattice whose parameters are the average of the two, the
//!    mean displacement is removed, and distances are normalised by the free length per atom
//!    (V / n)^(1/3);
//! 6. `fit` accepts when the largest normalised distance is below `stol`; `rms_dist` returns the
//!    smallest root-mean-square normalised distance over all candidates (and the largest distance
//!    of that candidate), or `None` when no candidate is below `stol`.
//!
//! Niggli reduction uses [`Lattice::niggli_reduced`] (moyo) rather than pymatgen's own routine: the
//! reduced cell parameters are the same, and the matcher only depends on them, not on the basis.
//!
//! Cost: the lattice search enumerates lattice points within (1 + ltol) × the longest target vector,
//! so it grows like (longest / shortest vector)³; needle- or plate-like cells with vectors well under
//! 1 Å are slow, and image ranges are capped at ±200 per axis (a truncation only such cells reach).
//! Validated against pymatgen by `tests/matcher_pymatgen.rs`.
//!
//! Units: lengths in Å, `angle_tol_deg` in degrees, `ltol` and `stol` dimensionless.

use std::collections::BTreeMap;

mod cell;
mod rows;

use cell::*;
use rows::*;

use super::assignment::linear_sum_assignment;
use super::{Element, Lattice, Structure};

/// pymatgen's `get_primitive_structure` default tolerance (Å), used by `StructureMatcher`.
pub const PRIMITIVE_TOLERANCE_ANG: f64 = 0.25;

/// Relative tolerance for comparing fractional compositions, pymatgen's
/// `Composition.amount_tolerance`.
const COMPOSITION_TOLERANCE: f64 = 1e-8;

/// Matches structures as pymatgen's `StructureMatcher` does (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StructureMatcher {
    /// Fractional length tolerance for lattice vectors. pymatgen: 0.2.
    pub ltol: f64,
    /// Site tolerance as a fraction of the free length per atom (V / n)^(1/3). pymatgen: 0.3.
    pub stol: f64,
    /// Angle tolerance (degrees). pymatgen: 5.
    pub angle_tol_deg: f64,
    /// Reduce both structures to primitive cells first. pymatgen: true.
    pub primitive_cell: bool,
    /// Rescale both lattices to the same volume per site. pymatgen: true.
    pub scale: bool,
    /// When the (primitive) cells differ in size, try supercells of the smaller one. pymatgen: false.
    pub attempt_supercell: bool,
}

impl Default for StructureMatcher {
    fn default() -> Self {
        StructureMatcher {
            ltol: 0.2,
            stol: 0.3,
            angle_tol_deg: 5.0,
            primitive_cell: true,
            scale: true,
            attempt_supercell: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The matcher
// ---------------------------------------------------------------------------------------------

/// Result of `_strict_match`: the criterion value and the normalised distances of every site.
struct Match {
    val: f64,
    dist: Vec<f64>,
}

/// A candidate superposition: fractional coordinates of both structures in the candidate basis and
/// the averaged lattice the distances are measured on.
struct Candidate {
    s1fc: Vec<V3>,
    s2fc: Vec<V3>,
    avg: M3,
}

fn same_fractional_composition(a: &[Element], b: &[Element]) -> bool {
    let count = |s: &[Element]| {
        let mut m: BTreeMap<Element, usize> = BTreeMap::new();
        for e in s {
            *m.entry(*e).or_insert(0) += 1;
        }
        m
    };
    let (ca, cb) = (count(a), count(b));
    if ca.len() != cb.len() || a.is_empty() || b.is_empty() {
        return false;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    ca.iter().all(|(e, &x)| cb.get(e).is_some_and(|&y| (x as f64 / na - y as f64 / nb).abs() <= COMPOSITION_TOLERANCE))
}

/// pymatgen's `lattice_points_in_supercell`: points of the original lattice inside the supercell
/// `sc` (rows = new vectors in old units), in the supercell's fractional coordinates.
fn lattice_points_in_supercell(sc: &[[i64; 3]; 3]) -> Vec<V3> {
    let mut lo = [i64::MAX; 3];
    let mut hi = [i64::MIN; 3];
    for corner in 0..8 {
        let mut p = [0i64; 3];
        for (k, row) in sc.iter().enumerate() {
            if corner >> (2 - k) & 1 == 1 {
                for d in 0..3 {
                    p[d] += row[d];
                }
            }
        }
        for d in 0..3 {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d] + 1);
        }
    }
    let scf = sc.map(|r| r.map(|x| x as f64));
    let Some(inv_sc) = inv(&scf) else { return Vec::new() };
    let mut out = Vec::new();
    for i in lo[0]..hi[0] {
        for j in lo[1]..hi[1] {
            for k in lo[2]..hi[2] {
                let f = vec_mat(&[i as f64, j as f64, k as f64], &inv_sc);
                if f.iter().all(|x| *x < 1.0 - 1e-10 && *x >= -1e-10) {
                    out.push(f);
                }
            }
        }
    }
    out
}

impl StructureMatcher {
    /// True when `a` and `b` are the same structure within the tolerances, pymatgen's
    /// `StructureMatcher.fit(a, b)` (not symmetric in rare borderline cases, as there).
    pub fn fit(&self, a: &Structure, b: &Structure) -> bool {
        if !same_fractional_composition(a.species(), b.species()) {
            return false;
        }
        let (ra, rb) = (self.reduce(a), self.reduce(b));
        self.fit_reduced(&ra, &rb)
    }

    /// Normalised root-mean-square displacement between matched sites and the largest normalised
    /// displacement of the same superposition (both in units of the free length per atom
    /// (V / n)^(1/3)), minimised over all superpositions; `None` when none is within `stol`.
    /// pymatgen's `get_rms_dist`.
    pub fn rms_dist(&self, a: &Structure, b: &Structure) -> Option<(f64, f64)> {
        let (ra, rb) = (self.reduce(a), self.reduce(b));
        let (s1, s2, fu, s1_sc) = self.preprocess(&ra, &rb)?;
        let m = self.match_cells(&s1, &s2, fu, s1_sc, true, false)?;
        let max = m.dist.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((m.val, max))
    }

    /// Group structures that match, pymatgen's `group_structures`: structures are first split by
    /// fractional composition; within each composition the first unassigned structure collects
    /// every later one that fits it, and so on. Returns indices into `structures`; groups are
    /// ordered by their first member, members ascending (pymatgen orders groups by composition).
    pub fn group(&self, structures: &[Structure]) -> Vec<Vec<usize>> {
        let reduced: Vec<Cell> = structures.iter().map(|s| self.reduce(s)).collect();
        let mut classes: Vec<Vec<usize>> = Vec::new();
        for (i, s) in structures.iter().enumerate() {
            match classes.iter_mut().find(|c| same_fractional_composition(structures[c[0]].species(), s.species())) {
                Some(c) => c.push(i),
                None => classes.push(vec![i]),
            }
        }
        let mut groups = Vec::new();
        for class in classes {
            let mut unmatched = class;
            while !unmatched.is_empty() {
                let r = unmatched.remove(0);
                let mut group = vec![r];
                unmatched.retain(|&j| {
                    let hit = self.fit_reduced(&reduced[r], &reduced[j]);
                    if hit {
                        group.push(j);
                    }
                    !hit
                });
                groups.push(group);
            }
        }
        groups.sort_by_key(|g| g[0]);
        groups
    }

    /// Niggli reduction, then pymatgen's primitive cell when `primitive_cell` (`_get_reduced_structure`).
    fn reduce(&self, s: &Structure) -> Cell {
        let cell = Cell::from_structure(s);
        let cell = cell.niggli().unwrap_or(cell);
        if self.primitive_cell { primitive(&cell, PRIMITIVE_TOLERANCE_ANG) } else { cell }
    }

    fn fit_reduced(&self, r1: &Cell, r2: &Cell) -> bool {
        if !same_fractional_composition(&r1.species, &r2.species) {
            return false;
        }
        let Some((s1, s2, fu, s1_sc)) = self.preprocess(r1, r2) else { return false };
        self.match_cells(&s1, &s2, fu, s1_sc, false, true).is_some_and(|m| m.val <= self.stol)
    }

    /// Supercell size and volume scaling, pymatgen's `_preprocess` after the reduction.
    fn preprocess(&self, r1: &Cell, r2: &Cell) -> Option<(Cell, Cell, usize, bool)> {
        let (mut s1, mut s2) = (r1.clone(), r2.clone());
        if s1.len() == 0 || s2.len() == 0 {
            return None;
        }
        let (fu, s1_supercell) = if self.attempt_supercell {
            let fu = s2.len() as f64 / s1.len() as f64;
            if fu < 2.0 / 3.0 {
                ((1.0 / fu).round_ties_even() as usize, false)
            } else {
                (fu.round_ties_even() as usize, true)
            }
        } else {
            (1, true)
        };
        let mult = if s1_supercell { fu as f64 } else { 1.0 / fu as f64 };
        if self.scale {
            let ratio = (s2.volume() / (s1.volume() * mult)).powf(1.0 / 6.0);
            if !ratio.is_finite() || ratio <= 0.0 {
                return None;
            }
            s1.rows = s1.rows.map(|r| r.map(|x| x * ratio));
            s2.rows = s2.rows.map(|r| r.map(|x| x / ratio));
        }
        Some((s1, s2, fu, s1_supercell))
    }

    /// pymatgen's `_match`: match the smaller structure onto the larger.
    fn match_cells(
        &self,
        s1: &Cell,
        s2: &Cell,
        fu: usize,
        s1_supercell: bool,
        use_rms: bool,
        break_on_match: bool,
    ) -> Option<Match> {
        let ratio = if s1_supercell { fu as f64 } else { 1.0 / fu as f64 };
        if s1.len() as f64 * ratio >= s2.len() as f64 {
            self.strict_match(s1, s2, fu, s1_supercell, use_rms, break_on_match)
        } else {
            self.strict_match(s2, s1, fu, !s1_supercell, use_rms, break_on_match)
        }
    }

    /// pymatgen's `_get_mask`: `mask[i][j]` forbids pairing site i of (the supercell of) 2 with
    /// site j of (the supercell of) 1; supercell images of a site are consecutive. Also returns the
    /// candidate anchor sites of 1 and the anchor site of 2 (a site of the least frequent species).
    fn mask(s1: &Cell, s2: &Cell, fu: usize, s1_supercell: bool) -> (usize, usize, Vec<bool>, Vec<usize>, usize) {
        let (rows, cols) = if s1_supercell { (s2.len(), s1.len() * fu) } else { (s2.len() * fu, s1.len()) };
        let mut mask = vec![false; rows * cols];
        for r in 0..rows {
            let sp2 = if s1_supercell { s2.species[r] } else { s2.species[r / fu] };
            for c in 0..cols {
                let sp1 = if s1_supercell { s1.species[c / fu] } else { s1.species[c] };
                mask[r * cols + c] = sp1 != sp2;
            }
        }
        let mut idx = 0;
        let mut best = usize::MAX;
        for r in 0..rows {
            let n = mask[r * cols..(r + 1) * cols].iter().filter(|m| **m).count();
            if best == usize::MAX || n > best {
                best = n;
                idx = r;
            }
        }
        let mut inds: Vec<usize> = (0..cols).filter(|&c| !mask[idx * cols + c]).collect();
        if s1_supercell {
            inds = inds.into_iter().step_by(fu.max(1)).collect();
        }
        (rows, cols, mask, inds, idx)
    }

    /// pymatgen's `Lattice.find_all_mappings(target, ltol, angle_tol)` for lattice `m`: every basis
    /// of lattice points of `m` whose lengths and angles are close to those of `target`, with the
    /// integer matrix expressing it in `m`. Filtered to |det| = `supercell_size` (± 0.5).
    fn lattice_candidates(&self, m: &M3, target: &M3, supercell_size: usize) -> Vec<(M3, [[i64; 3]; 3])> {
        let lens = lengths(target);
        let [alpha, beta, gamma] = angles_deg(target);
        let r = lens.iter().copied().fold(0.0, f64::max) * (1.0 + self.ltol);
        let Some(recip) = reciprocal_abc(m) else { return Vec::new() };
        if !r.is_finite() || r <= 0.0 {
            return Vec::new();
        }
        // Lattice points within r: |n_i| ≤ r |b*_i|.
        let nmax = recip.map(|x| {
            let n = (r * x / (2.0 * std::f64::consts::PI)).ceil();
            if n.is_finite() { (n as i64).clamp(0, 200) } else { 0 }
        });
        let mut points: Vec<([i64; 3], V3, f64)> = Vec::new();
        for i in -nmax[0]..=nmax[0] {
            for j in -nmax[1]..=nmax[1] {
                for k in -nmax[2]..=nmax[2] {
                    let cart = vec_mat(&[i as f64, j as f64, k as f64], m);
                    let d = norm(&cart);
                    if d < r + 1e-8 {
                        points.push(([i, j, k], cart, d));
                    }
                }
            }
        }
        let cands: Vec<Vec<&([i64; 3], V3, f64)>> = lens
            .iter()
            .map(|&ln| {
                points.iter().filter(|p| p.2 / ln < 1.0 + self.ltol && p.2 / ln > 1.0 / (1.0 + self.ltol)).collect()
            })
            .collect();
        let angle = |p: &([i64; 3], V3, f64), q: &([i64; 3], V3, f64)| {
            (dot(&p.1, &q.1) / p.2 / q.2).clamp(-1.0, 1.0).acos().to_degrees()
        };
        let near = |x: f64, y: f64| (x - y).abs() <= self.angle_tol_deg;
        let mut out = Vec::new();
        for pa in &cands[0] {
            for pb in &cands[1] {
                if !near(angle(pa, pb), gamma) {
                    continue;
                }
                for pc in &cands[2] {
                    if !near(angle(pb, pc), alpha) || !near(angle(pa, pc), beta) {
                        continue;
                    }
                    let sc = [pa.0, pb.0, pc.0];
                    let d = det(&sc.map(|r| r.map(|x| x as f64)));
                    if d.abs() < 1e-8 || (d.abs() - supercell_size as f64).abs() > 0.5 {
                        continue;
                    }
                    out.push(([pa.1, pb.1, pc.1], sc));
                }
            }
        }
        out
    }

    /// pymatgen's `_get_supercells`: candidate superpositions (fractional coordinates of both
    /// structures in a basis of 1 close to that of 2, or the reverse).
    fn candidates(&self, s1: &Cell, s2: &Cell, fu: usize, s1_supercell: bool) -> Vec<Candidate> {
        let av_lat = |l1: &M3, l2: &M3| {
            let (p1, p2) = (parameters(l1), parameters(l2));
            from_parameters(&[0, 1, 2, 3, 4, 5].map(|i| (p1[i] + p2[i]) / 2.0))
        };
        // Supercells of `sa` on the lattice of `sb`.
        let generate = |sa: &Cell, sb: &Cell| -> Vec<(Vec<V3>, Vec<V3>, M3)> {
            let mut out = Vec::new();
            for (latt, sc) in self.lattice_candidates(&sa.rows, &sb.rows, fu) {
                let Some(inv_latt) = inv(&latt) else { continue };
                let fc: Vec<V3> = if fu == 1 {
                    sa.cart().iter().map(|c| wrap3(&vec_mat(c, &inv_latt))).collect()
                } else {
                    let Some(inv_sc) = inv(&sc.map(|r| r.map(|x| x as f64))) else { continue };
                    let lp = lattice_points_in_supercell(&sc);
                    let mut v = Vec::with_capacity(sa.len() * lp.len());
                    for f in &sa.frac {
                        let base = vec_mat(f, &inv_sc);
                        for p in &lp {
                            v.push(wrap3(&[base[0] + p[0], base[1] + p[1], base[2] + p[2]]));
                        }
                    }
                    v
                };
                out.push((fc, sb.frac.clone(), av_lat(&latt, &sb.rows)));
            }
            out
        };
        if s1_supercell {
            generate(s1, s2).into_iter().map(|(a, b, avg)| Candidate { s1fc: a, s2fc: b, avg }).collect()
        } else {
            generate(s2, s1).into_iter().map(|(a, b, avg)| Candidate { s1fc: b, s2fc: a, avg }).collect()
        }
    }

    /// pymatgen's `_strict_match`: match structure 2 onto structure 1 (which has at least as many
    /// sites after the supercell expansion).
    fn strict_match(
        &self,
        s1: &Cell,
        s2: &Cell,
        fu: usize,
        s1_supercell: bool,
        use_rms: bool,
        break_on_match: bool,
    ) -> Option<Match> {
        if fu < 1 {
            return None;
        }
        let (rows, cols, mask, s1_t_inds, s2_t_ind) = Self::mask(s1, s2, fu, s1_supercell);
        if rows != cols || rows == 0 {
            return None;
        }
        let cost: Vec<f64> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
        if linear_sum_assignment(rows, cols, &cost)?.cost > 0.0 {
            return None;
        }
        let mut best: Option<Match> = None;
        for cand in self.candidates(s1, s2, fu, s1_supercell) {
            let (s1fc, s2fc) = (&cand.s1fc, &cand.s2fc);
            if s1fc.len() != cols || s2fc.len() != rows {
                continue;
            }
            let avg_vol = det(&cand.avg).abs();
            let normalization = (s1fc.len() as f64 / avg_vol).cbrt();
            let Some(inv_abc) = reciprocal_abc(&cand.avg) else { continue };
            let frac_tol = inv_abc.map(|x| x * self.stol / (std::f64::consts::PI * normalization));
            let mut lll: Option<(M3, M3, V3)> = None;
            for &s1i in &s1_t_inds {
                let t = sub(&s1fc[s1i], &s2fc[s2_t_ind]);
                let t_s2fc: Vec<V3> = s2fc.iter().map(|f| [f[0] + t[0], f[1] + t[1], f[2] + t[2]]).collect();
                if !is_coord_subset_pbc(&t_s2fc, s1fc, &frac_tol, &mask) {
                    continue;
                }
                if lll.is_none() {
                    let (lll_rows, lll_map) = lll_reduce(&cand.avg);
                    let Some(lll_inv) = inv(&lll_map) else { break };
                    let Some(inv_lll_abc) = reciprocal_abc(&lll_rows) else { break };
                    let ftol = inv_lll_abc.map(|x| x * self.stol / (std::f64::consts::PI * normalization));
                    lll = Some((lll_rows, lll_inv, ftol));
                }
                let Some((lll_rows, lll_inv, lll_ftol)) = &lll else { break };
                let Some(dist) = cart_dists(s1fc, &t_s2fc, lll_rows, lll_inv, &mask, normalization, lll_ftol) else {
                    continue;
                };
                let n = dist.len() as f64;
                let val = if use_rms {
                    (dist.iter().map(|d| d * d).sum::<f64>()).sqrt() / n.sqrt()
                } else {
                    dist.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                };
                if best.as_ref().is_none_or(|b| val < b.val) {
                    let done = (break_on_match || val < 1e-5) && val < self.stol;
                    best = Some(Match { val, dist });
                    if done {
                        return best;
                    }
                }
            }
        }
        best.filter(|b| b.val < self.stol)
    }
}

/// pymatgen's `is_coord_subset_pbc`: every site of `subset` lies within `tol` (per fractional
/// component, periodic) of an allowed site of `superset`; `mask[i * cols + j]` forbids a pair.
fn is_coord_subset_pbc(subset: &[V3], superset: &[V3], tol: &V3, mask: &[bool]) -> bool {
    let cols = superset.len();
    subset.iter().enumerate().all(|(i, a)| {
        superset.iter().enumerate().any(|(j, b)| {
            !mask[i * cols + j]
                && (0..3).all(|k| {
                    let d = a[k] - b[k];
                    (d - d.round()).abs() <= tol[k]
                })
        })
    })
}

/// pymatgen's `_cart_dists` with `pbc_shortest_vectors`: shortest vectors from sites of 2 to sites
/// of 1 over the 27 neighbouring images of the LLL-reduced averaged lattice (pairs forbidden by the
/// mask, or farther than `lll_ftol` in LLL fractional coordinates, get the 10²⁰ sentinel), a linear
/// assignment on squared lengths, removal of the mean vector, and normalisation.
fn cart_dists(
    s1fc: &[V3],
    s2fc: &[V3],
    lll_rows: &M3,
    lll_inv: &M3,
    mask: &[bool],
    normalization: f64,
    lll_ftol: &V3,
) -> Option<Vec<f64>> {
    const FAR: f64 = 1e20;
    let (n2, n1) = (s2fc.len(), s1fc.len());
    let fc2: Vec<V3> = s2fc.iter().map(|f| vec_mat(f, lll_inv)).collect();
    let fc1: Vec<V3> = s1fc.iter().map(|f| vec_mat(f, lll_inv)).collect();
    let cart2: Vec<V3> = fc2.iter().map(|f| vec_mat(&wrap3(f), lll_rows)).collect();
    let cart1: Vec<V3> = fc1.iter().map(|f| vec_mat(&wrap3(f), lll_rows)).collect();
    let mut images = [[0.0; 3]; 27];
    for a in 0..3 {
        for b in 0..3 {
            for c in 0..3 {
                images[a * 9 + b * 3 + c] = vec_mat(&[a as f64 - 1.0, b as f64 - 1.0, c as f64 - 1.0], lll_rows);
            }
        }
    }
    let mut vecs = vec![[FAR; 3]; n2 * n1];
    let mut d2 = vec![FAR; n2 * n1];
    for i in 0..n2 {
        for j in 0..n1 {
            if mask[i * n1 + j] {
                continue;
            }
            let within = (0..3).all(|l| {
                let f = fc1[j][l] - fc2[i][l];
                (f - f.round()).abs() <= lll_ftol[l]
            });
            if !within {
                continue;
            }
            let pre = sub(&cart1[j], &cart2[i]);
            let mut best = 1e100;
            let mut bestk = 0;
            for (k, im) in images.iter().enumerate() {
                let v = [pre[0] + im[0], pre[1] + im[1], pre[2] + im[2]];
                let d = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                if d < best {
                    best = d;
                    bestk = k;
                }
            }
            d2[i * n1 + j] = best;
            let im = images[bestk];
            vecs[i * n1 + j] = [pre[0] + im[0], pre[1] + im[1], pre[2] + im[2]];
        }
    }
    let sol = linear_sum_assignment(n2, n1, &d2)?;
    let short: Vec<V3> = sol.col_for_row.iter().enumerate().map(|(i, &j)| vecs[i * n1 + j]).collect();
    let n = short.len() as f64;
    let mut mean = [0.0; 3];
    for v in &short {
        for k in 0..3 {
            mean[k] += v[k];
        }
    }
    let mean = mean.map(|x| x / n);
    Some(short.iter().map(|v| norm(&sub(v, &mean)) * normalization).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn el(s: &str) -> Element {
        Element::from_symbol(s).unwrap()
    }

    fn structure(rows: [[f64; 3]; 3], sp: &[&str], frac: &[[f64; 3]]) -> Structure {
        Structure::from_frac(
            Lattice::from_row_vectors(rows).unwrap(),
            sp.iter().map(|s| el(s)).collect(),
            frac.iter().map(|f| Vector3::from(*f)).collect(),
        )
        .unwrap()
    }

    fn rocksalt(a: f64) -> Structure {
        let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let mut sp = vec![];
        let mut fr = vec![];
        for q in fcc {
            sp.push("Na");
            fr.push(q);
            sp.push("Cl");
            fr.push([q[0] + 0.5, q[1] + 0.5, q[2] + 0.5]);
        }
        structure([[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]], &sp, &fr)
    }

    /// A low-symmetry ternary with 6 sites (monoclinic-ish cell).
    fn ternary() -> Structure {
        structure(
            [[4.1, 0.0, 0.0], [0.7, 5.3, 0.0], [-0.4, 0.3, 6.2]],
            &["Li", "Li", "Fe", "O", "O", "O"],
            &[
                [0.0, 0.0, 0.0],
                [0.5, 0.47, 0.12],
                [0.25, 0.71, 0.53],
                [0.1, 0.3, 0.8],
                [0.62, 0.05, 0.33],
                [0.8, 0.85, 0.6],
            ],
        )
    }

    #[test]
    fn lll_reduces_skewed_basis() {
        let m = [[3.0, 0.0, 0.0], [9.0, 3.0, 0.0], [-6.0, 12.0, 3.0]];
        let (r, t) = lll_reduce(&m);
        assert!(lengths(&r).iter().all(|l| (l - 3.0).abs() < 1e-9), "{r:?}");
        let back = mat_mul(&t, &m);
        for i in 0..3 {
            for j in 0..3 {
                assert!((back[i][j] - r[i][j]).abs() < 1e-9);
            }
        }
        assert!((det(&t).abs() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn primitive_of_conventional_rocksalt() {
        let c = Cell::from_structure(&rocksalt(5.64));
        let p = primitive(&c.niggli().unwrap(), PRIMITIVE_TOLERANCE_ANG);
        assert_eq!(p.len(), 2);
        assert!((p.volume() - 5.64f64.powi(3) / 4.0).abs() < 1e-6);
        // Grouped by symbol: Cl before Na.
        assert_eq!(p.species, vec![el("Cl"), el("Na")]);
        let q = primitive(&p, PRIMITIVE_TOLERANCE_ANG);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn lattice_points_in_supercell_counts() {
        assert_eq!(lattice_points_in_supercell(&[[2, 0, 0], [0, 1, 0], [0, 0, 1]]).len(), 2);
        assert_eq!(lattice_points_in_supercell(&[[1, 1, 0], [-1, 1, 0], [0, 0, 3]]).len(), 6);
        assert!(lattice_points_in_supercell(&[[1, 1, 0], [1, 1, 0], [0, 0, 1]]).is_empty());
    }

    #[test]
    fn identical_permuted_shifted_match() {
        let m = StructureMatcher::default();
        let s = ternary();
        let t = s.permuted(&[5, 3, 1, 0, 4, 2]).translated(Vector3::new(0.31, -0.27, 1.6));
        assert!(m.fit(&s, &t));
        assert!(m.fit(&t, &s));
        let (rms, max) = m.rms_dist(&s, &t).unwrap();
        assert!(rms < 1e-8 && max < 1e-8, "{rms} {max}");
    }

    #[test]
    fn cell_choice_and_supercells() {
        let s = ternary();
        let skew = s.supercell([[1, 1, 0], [0, 1, 0], [1, -1, 1]]).unwrap();
        let double = s.supercell([[1, 1, 0], [-1, 1, 0], [0, 0, 1]]).unwrap();
        let def = StructureMatcher::default();
        assert!(def.fit(&s, &skew));
        assert!(def.fit(&s, &double) && def.fit(&double, &s));
        let no_prim = StructureMatcher { primitive_cell: false, ..StructureMatcher::default() };
        assert!(no_prim.fit(&s, &skew));
        assert!(!no_prim.fit(&s, &double));
        let sc = StructureMatcher { primitive_cell: false, attempt_supercell: true, ..StructureMatcher::default() };
        assert!(sc.fit(&s, &double) && sc.fit(&double, &s));
        assert!(sc.rms_dist(&double, &s).unwrap().0 < 1e-8);
    }

    #[test]
    fn scaling_rattling_and_different_structures() {
        let s = ternary();
        let big = s.scaled_to_volume(s.volume() * 2.0).unwrap();
        assert!(StructureMatcher::default().fit(&s, &big));
        assert!(!StructureMatcher { scale: false, ..StructureMatcher::default() }.fit(&s, &big));
        // A large displacement of one site breaks the match; a tiny one does not.
        let mut r = s.clone();
        r.frac_coords_mut()[3] += Vector3::new(0.01, -0.005, 0.0);
        assert!(StructureMatcher::default().fit(&s, &r));
        let mut far = s.clone();
        far.frac_coords_mut()[3] += Vector3::new(0.3, 0.2, 0.0);
        assert!(!StructureMatcher::default().fit(&s, &far));
        // Same positions, one species swapped: different composition.
        let mut sw = s.clone();
        sw = sw.substituted(&[(el("Fe"), el("Co"))].into_iter().collect());
        assert!(!StructureMatcher::default().fit(&s, &sw));
        // Rock salt vs the ternary: no.
        assert!(!StructureMatcher::default().fit(&s, &rocksalt(5.0)));
        assert!(StructureMatcher::default().rms_dist(&s, &rocksalt(5.0)).is_none());
    }

    #[test]
    fn grouping() {
        let s = ternary();
        let nacl = rocksalt(5.64);
        let list = vec![
            s.clone(),
            nacl.clone(),
            s.translated(Vector3::new(0.1, 0.2, 0.3)),
            nacl.repeat([1, 1, 2]).unwrap(),
            {
                let mut f = s.clone();
                f.frac_coords_mut()[3] += Vector3::new(0.3, 0.2, 0.0);
                f
            },
        ];
        let g = StructureMatcher::default().group(&list);
        assert_eq!(g, vec![vec![0, 2], vec![1, 3], vec![4]]);
    }

    #[test]
    fn odd_input_does_not_panic() {
        let m = StructureMatcher { ltol: f64::NAN, stol: -1.0, angle_tol_deg: 1e9, ..StructureMatcher::default() };
        let s = ternary();
        let _ = m.fit(&s, &s);
        let _ = m.rms_dist(&s, &s);
        // A very flat cell and a single-site structure.
        let flat = structure([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 1.2]], &["Si"], &[[0.0, 0.0, 0.0]]);
        assert!(StructureMatcher::default().fit(&flat, &flat));
        assert!(StructureMatcher::default().group(&[]).is_empty());
    }
}
