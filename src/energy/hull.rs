//! Convex-hull phase diagrams at 0 K: stable phases, energy above the hull, decomposition products with
//! their fractions, and how far stable phases lie below the hull of the others. Same quantities and
//! conventions as pymatgen's `PhaseDiagram` (`tests/hull_pymatgen.rs` holds them to pymatgen).
//!
//! Energies are per atom (eV/atom) on one scale shared by every entry (total DFT energies, or formation
//! energies). Each element's reference is its lowest-energy elemental entry; formation energies are taken
//! relative to those references. Fractions are atom fractions.
//!
//! The lower hull at composition x is the linear programme
//!   min Σ λ_j E_j  subject to  Σ λ_j x_j = x,  λ ≥ 0
//! over the entries' atom-fraction vectors x_j; the optimal basis is the decomposition and the optimum the
//! hull energy. The programme has one row per element and a known feasible start (the elemental
//! references), so a small dense simplex solves it exactly in microseconds; a generic LP crate would spend
//! more on setting the problem up than on solving it. Stable entries (the hull's vertices) are found once
//! per chemical system and cached, so queries only see the stable set. Each optimal basis a query finds
//! is a facet of the hull and is remembered with its inverse: a later query inside that facet (all
//! λ = B⁻¹x ≥ 0) is answered without a simplex, so many queries on one system get cheaper as the facets
//! fill in.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::crystal::{Composition, Element};

/// An entry lies on the hull (is a vertex) when it is more than this below the hull of the others
/// (eV/atom); entries on a facet without being a vertex are not stable, as in pymatgen.
pub const STABILITY_TOL: f64 = 1e-11;
/// Decomposition products with a smaller atom fraction are dropped (pymatgen's cut-off).
pub const MIN_FRACTION: f64 = 1e-8;

/// What can go wrong building or querying a phase diagram.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum HullError {
    #[error("no elemental reference for {0}: the phase diagram needs an entry of pure {0}")]
    MissingElement(String),
    #[error("entry {name:?}: {reason}")]
    BadEntry { name: String, reason: String },
    #[error("empty composition")]
    EmptyComposition,
    #[error("entry index {0} is not in the phase diagram")]
    NoSuchEntry(usize),
}

/// A reference phase: a composition and its energy per atom (eV/atom).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseEntry {
    pub name: String,
    pub composition: Composition,
    /// Energy per atom (eV/atom) on the scale shared by all entries of the diagram.
    pub energy_per_atom: f64,
}

impl PhaseEntry {
    pub fn new(name: impl Into<String>, composition: Composition, energy_per_atom: f64) -> PhaseEntry {
        PhaseEntry { name: name.into(), composition, energy_per_atom }
    }
}

/// Decomposition products: indices into the diagram's entries with their atom fractions (summing to one),
/// sorted by entry index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decomposition {
    pub products: Vec<(usize, f64)>,
    /// Formation energy of the hull (or of the competing phases) at this composition (eV/atom).
    pub formation_energy_per_atom: f64,
}

/// A composition placed against the hull.
#[derive(Debug, Clone, PartialEq)]
pub struct HullPoint {
    /// Energy above the hull (eV/atom); negative below it.
    pub e_above_hull: f64,
    /// Formation energy per atom of the query relative to the diagram's elemental references (eV/atom).
    pub formation_energy_per_atom: f64,
    pub decomposition: Decomposition,
}

/// A phase diagram over any number of elements, built from reference entries.
pub struct PhaseDiagram {
    entries: Vec<PhaseEntry>,
    /// Formation energy per atom of each entry relative to the elemental references (eV/atom).
    formation: Vec<f64>,
    /// Element set of each entry as a bit mask over atomic numbers.
    masks: Vec<u128>,
    /// Atom fractions of every entry, sorted by atomic number, one entry after another
    /// (entry `i` is `frac_flat[frac_start[i]..frac_start[i + 1]]`).
    frac_flat: Vec<(Element, f64)>,
    frac_start: Vec<usize>,
    /// Per element: (index of the reference entry, its energy per atom).
    refs: BTreeMap<Element, (usize, f64)>,
    /// The same, indexed by atomic number (the query path's lookup).
    refs_by_z: Vec<Option<(usize, f64)>>,
    /// Candidate entries per exact element set: the lowest-energy entry of each distinct composition.
    groups: FxHashMap<u128, Vec<usize>>,
    /// Stable entries per exact element set (computed on demand).
    stable_exact: RwLock<FxHashMap<u128, Arc<Vec<usize>>>>,
    /// Hulls per chemical system (computed on demand).
    systems: RwLock<FxHashMap<u128, Arc<SystemHull>>>,
}

/// Flat columns (atom fractions), costs (formation energies) and start basis of a simplex.
type LpColumns = (Vec<f64>, Vec<f64>, Vec<usize>);

/// The stable entries of one chemical system, as dense columns for the simplex.
struct SystemHull {
    elements: Vec<Element>,
    stable: Vec<usize>,
    /// Atom fractions of the stable entries over `elements`, one column of `elements.len()` after another.
    columns: Vec<f64>,
    energies: Vec<f64>,
    /// Position in `stable` of each element's reference (the start basis).
    corners: Vec<usize>,
    /// Facets found by earlier queries (see [`Facet`]).
    facets: RwLock<Vec<Facet>>,
}

/// At most this many facets are remembered per chemical system.
const MAX_FACETS: usize = 20_000;

/// An optimal simplex basis found by an earlier query: `n` stable phases (positions in
/// [`SystemHull::stable`]) spanning a facet of the hull, with the inverse of their column matrix.
/// Optimality of a basis does not depend on the right-hand side, so wherever λ = B⁻¹x is non-negative the
/// facet is the hull at x and no simplex is needed.
struct Facet {
    basis: Vec<usize>,
    /// `basis` sorted (to recognise a facet found twice).
    key: Vec<usize>,
    /// B⁻¹, row-major n × n.
    binv: Vec<f64>,
}

impl SystemHull {
    /// The hull at atom fractions `x` from a remembered facet containing it: (value, (position, λ)).
    fn facet_at(&self, x: &[f64]) -> Option<(f64, Vec<(usize, f64)>)> {
        let n = x.len();
        let facets = self.facets.read().expect("hull cache lock");
        let mut lambda = [0.0f64; 16];
        'facet: for f in facets.iter() {
            for (slot, row) in lambda[..n].iter_mut().zip(f.binv.chunks_exact(n)) {
                let l: f64 = row.iter().zip(x).map(|(a, b)| a * b).sum();
                if l < -1e-12 {
                    continue 'facet;
                }
                *slot = l.max(0.0);
            }
            let value = f.basis.iter().zip(&lambda[..n]).map(|(&j, l)| self.energies[j] * l).sum();
            return Some((value, f.basis.iter().copied().zip(lambda[..n].iter().copied()).collect()));
        }
        None
    }

    /// Remember an optimal basis and its inverse (row k of `binv` belongs to `basis[k]`) as a facet.
    fn remember(&self, basis: &[usize], binv: &[f64]) {
        let mut key = basis.to_vec();
        key.sort_unstable();
        let known = |facets: &[Facet]| facets.len() >= MAX_FACETS || facets.iter().any(|f| f.key == key);
        // Most misses on a well-explored system find a known facet again: check under the read lock.
        if known(&self.facets.read().expect("hull cache lock")) {
            return;
        }
        let mut facets = self.facets.write().expect("hull cache lock");
        if !known(&facets) {
            facets.push(Facet { basis: basis.to_vec(), key, binv: binv.to_vec() });
        }
    }
}

fn mask_of(els: impl IntoIterator<Item = Element>) -> u128 {
    els.into_iter().fold(0u128, |m, e| m | (1u128 << (e.z() as u32 - 1)))
}

fn elements_of(mask: u128) -> Vec<Element> {
    (0..118u32)
        .filter(|b| mask & (1u128 << b) != 0)
        .map(|b| Element::from_z(b + 1).expect("mask bits are atomic numbers"))
        .collect()
}

fn subset(a: u128, b: u128) -> bool {
    a & !b == 0
}

/// The complete OQMD hull, built once per process ([`PhaseDiagram::complete`]).
static COMPLETE: std::sync::OnceLock<Arc<PhaseDiagram>> = std::sync::OnceLock::new();

impl PhaseDiagram {
    /// A diagram from entries with energies on one scale; every element present needs an elemental entry.
    pub fn new(entries: Vec<PhaseEntry>) -> Result<PhaseDiagram, HullError> {
        let mut frac_flat = Vec::with_capacity(3 * entries.len());
        let mut frac_start = Vec::with_capacity(entries.len() + 1);
        frac_start.push(0);
        for e in &entries {
            let bad = |reason: String| HullError::BadEntry { name: e.name.clone(), reason };
            if !e.energy_per_atom.is_finite() {
                return Err(bad(format!("energy per atom {} is not finite", e.energy_per_atom)));
            }
            if e.composition.n_elements() == 0 {
                return Err(bad("empty composition".into()));
            }
            if let Some((el, a)) = e.composition.iter().find(|(_, a)| !(a.is_finite() && *a > 0.0)) {
                return Err(bad(format!("amount {a} of {el} is not a positive number")));
            }
            let n = e.composition.num_atoms();
            frac_flat.extend(e.composition.iter().map(|(el, a)| (el, a / n)));
            frac_start.push(frac_flat.len());
        }
        let fractions = |i: usize| &frac_flat[frac_start[i]..frac_start[i + 1]];
        let masks: Vec<u128> = entries.iter().map(|e| mask_of(e.composition.iter().map(|(el, _)| el))).collect();
        // Ties (same composition, same energy) go to the smaller name in string order, as in pymatgen, and
        // then to the earlier row: a total order, so the elemental reference and the winner of its
        // composition group are always the same entry (files that repeat `O1,0.0` rows have equal names).
        let wins = |i: usize, j: usize, ei: f64, ej: f64| {
            ei < ej
                || (ei == ej && (entries[i].name < entries[j].name || (entries[i].name == entries[j].name && i < j)))
        };
        let mut refs: BTreeMap<Element, (usize, f64)> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.composition.n_elements() == 1 {
                let el = frac_flat[frac_start[i]].0;
                let better = refs.get(&el).is_none_or(|&(j, best)| wins(i, j, e.energy_per_atom, best));
                if better {
                    refs.insert(el, (i, e.energy_per_atom));
                }
            }
        }
        let mut formation = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let mut ref_energy = 0.0;
            for (el, x) in fractions(i) {
                let (_, mu) = refs.get(el).ok_or_else(|| HullError::MissingElement(el.symbol().to_string()))?;
                ref_energy += x * mu;
            }
            formation.push(e.energy_per_atom - ref_energy);
        }
        // The lowest-energy entry of each distinct composition, grouped by element set.
        // Sorting by (element set, atom fractions to 1e-9) puts equal compositions next to each other.
        let quantised: Vec<u64> = frac_flat.iter().map(|(_, x)| (x * 1e9).round() as u64).collect();
        let q = |i: usize| &quantised[frac_start[i]..frac_start[i + 1]];
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by(|&i, &j| masks[i].cmp(&masks[j]).then_with(|| q(i).cmp(q(j))));
        let mut groups: FxHashMap<u128, Vec<usize>> = FxHashMap::default();
        let mut run_start = 0;
        while run_start < order.len() {
            let first = order[run_start];
            let mut run_end = run_start + 1;
            while run_end < order.len() && masks[order[run_end]] == masks[first] && q(order[run_end]) == q(first) {
                run_end += 1;
            }
            let winner = order[run_start..run_end]
                .iter()
                .copied()
                .reduce(|j, i| if wins(i, j, entries[i].energy_per_atom, entries[j].energy_per_atom) { i } else { j })
                .expect("non-empty run");
            groups.entry(masks[first]).or_default().push(winner);
            run_start = run_end;
        }
        for g in groups.values_mut() {
            g.sort_unstable();
        }
        let mut refs_by_z = vec![None; 119];
        for (el, r) in &refs {
            refs_by_z[el.z() as usize] = Some(*r);
        }
        Ok(PhaseDiagram {
            entries,
            formation,
            masks,
            frac_flat,
            frac_start,
            refs,
            refs_by_z,
            groups,
            stable_exact: RwLock::default(),
            systems: RwLock::default(),
        })
    }

    /// A diagram from formation energies (eV/atom): each element present without an elemental entry at or
    /// below 0 eV/atom gets a synthetic one (named by its symbol) at 0 eV/atom, appended after `entries`.
    /// An elemental entry below 0 is that element's reference, as in pymatgen.
    pub fn from_formation_energies(mut entries: Vec<PhaseEntry>) -> Result<PhaseDiagram, HullError> {
        let mut els: Vec<Element> = entries.iter().flat_map(|e| e.composition.elements()).collect();
        els.sort_unstable();
        els.dedup();
        els.retain(|el| {
            !entries.iter().any(|e| {
                e.composition.n_elements() == 1 && e.composition.elements()[0] == *el && e.energy_per_atom <= 0.0
            })
        });
        for el in els {
            entries.push(PhaseEntry::new(el.symbol(), Composition::from_pairs([(el, 1.0)]), 0.0));
        }
        PhaseDiagram::new(entries)
    }

    /// The complete OQMD references ([`crate::data::hull_references`]: every OQMD-relaxed ICSD structure
    /// and OQMD's composition table), built once per process; the default hull. Entry names say where
    /// each phase comes from (`icsd:…`, `oqmd-table:…`).
    pub fn complete() -> Arc<PhaseDiagram> {
        COMPLETE
            .get_or_init(|| {
                let entries = crate::data::hull_references::complete()
                    .iter()
                    .map(|r| PhaseEntry::new(r.name.clone(), r.composition.clone(), r.formation_energy_per_atom))
                    .collect();
                Arc::new(
                    PhaseDiagram::from_formation_energies(entries)
                        .expect("the complete references are finite and non-empty"),
                )
            })
            .clone()
    }

    /// The complete hull if it is built; otherwise starts building it on a thread of its own (once) and
    /// returns `None`, so an interactive caller never waits for it.
    pub fn complete_if_ready() -> Option<Arc<PhaseDiagram>> {
        if let Some(pd) = COMPLETE.get() {
            return Some(pd.clone());
        }
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            std::thread::spawn(|| {
                PhaseDiagram::complete();
            });
        });
        None
    }

    /// How many distinct compositions with more than one element the diagram knows within the chemical
    /// system of `composition` (its subsystems included).
    pub fn compositions_in_system(&self, composition: &Composition) -> usize {
        let m = mask_of(composition.iter().map(|(el, _)| el));
        self.subsystems(m).into_iter().filter(|k| k.count_ones() > 1).map(|k| self.groups[&k].len()).sum()
    }

    /// The embedded dataset's DFT formation energies as references (entry names are dataset ids).
    pub fn from_dataset(dataset: &crate::data::Dataset) -> PhaseDiagram {
        let entries = dataset
            .entries
            .iter()
            .map(|e| PhaseEntry::new(e.id.to_string(), e.structure.composition(), e.formation_energy_per_atom))
            .collect();
        PhaseDiagram::from_formation_energies(entries).expect("dataset energies are finite and compositions non-empty")
    }

    pub fn entries(&self) -> &[PhaseEntry] {
        &self.entries
    }

    /// Formation energy per atom of entry `i` relative to the elemental references (eV/atom).
    pub fn formation_energy_per_atom(&self, i: usize) -> f64 {
        self.formation[i]
    }

    /// Elements with a reference entry, sorted by atomic number.
    pub fn elements(&self) -> Vec<Element> {
        self.refs.keys().copied().collect()
    }

    /// The entry serving as reference for `el`, if any.
    pub fn elemental_reference(&self, el: Element) -> Option<usize> {
        self.refs.get(&el).map(|(i, _)| *i)
    }

    /// Stable entries (hull vertices) of the chemical system spanned by `elements`, sorted by index.
    pub fn stable_entries(&self, elements: &[Element]) -> Result<Vec<usize>, HullError> {
        Ok(self.system(mask_of(elements.iter().copied()))?.stable.clone())
    }

    /// The hull at `composition`: decomposition products and the hull's formation energy.
    pub fn decomposition(&self, composition: &Composition) -> Result<Decomposition, HullError> {
        let n = composition.num_atoms();
        if composition.n_elements() == 0 || n <= 0.0 {
            return Err(HullError::EmptyComposition);
        }
        let hull = self.system(mask_of(composition.iter().map(|(e, _)| e)))?;
        // Atom fractions over the system's elements (sorted, as the composition's), on the stack for ≤ 16.
        let k = hull.elements.len();
        let mut stack = [0.0f64; 16];
        let mut heap = Vec::new();
        let b: &mut [f64] = if k <= 16 {
            &mut stack[..k]
        } else {
            heap.resize(k, 0.0);
            &mut heap
        };
        for (slot, (_, a)) in b.iter_mut().zip(composition.iter()) {
            *slot = a / n;
        }
        let (value, mut products) = match hull.facet_at(b) {
            Some(hit) => hit,
            None => WORKSPACE.with(|w| {
                let w = &mut w.borrow_mut();
                let value = simplex_in(w, &hull.columns, &hull.energies, b, &hull.corners, None);
                if w.optimal && k <= 16 {
                    hull.remember(&w.basis, &w.binv);
                }
                (value, w.basis.iter().copied().zip(w.xb.iter().copied()).collect())
            }),
        };
        products.retain(|(_, l)| *l > MIN_FRACTION);
        for p in &mut products {
            p.0 = hull.stable[p.0];
        }
        products.sort_unstable_by_key(|p| p.0);
        Ok(Decomposition { products, formation_energy_per_atom: value })
    }

    /// Formation energy per atom of a composition at `energy_per_atom` on the diagram's scale.
    pub fn formation_energy_of(&self, composition: &Composition, energy_per_atom: f64) -> Result<f64, HullError> {
        let n = composition.num_atoms();
        let mut e = energy_per_atom;
        for (el, a) in composition.iter() {
            let (_, mu) =
                self.refs_by_z[el.z() as usize].ok_or_else(|| HullError::MissingElement(el.symbol().to_string()))?;
            e -= a / n * mu;
        }
        Ok(e)
    }

    /// Energy above the hull of a composition with energy `energy_per_atom` (eV/atom, the diagram's scale),
    /// negative when it lies below the hull; pymatgen's `get_decomp_and_e_above_hull(allow_negative=True)`.
    pub fn e_above_hull(&self, composition: &Composition, energy_per_atom: f64) -> Result<HullPoint, HullError> {
        if !energy_per_atom.is_finite() {
            return Err(HullError::BadEntry {
                name: composition.reduced_formula(),
                reason: format!("energy per atom {energy_per_atom} is not finite"),
            });
        }
        let formation = self.formation_energy_of(composition, energy_per_atom)?;
        let decomposition = self.decomposition(composition)?;
        let e_above_hull = formation - decomposition.formation_energy_per_atom;
        if !e_above_hull.is_finite() {
            // Energies near f64's limit (the readers refuse them) would overflow here.
            return Err(HullError::BadEntry {
                name: composition.reduced_formula(),
                reason: format!(
                    "energy above the hull overflows ({energy_per_atom:e} eV/atom against a hull at {:e} eV/atom)",
                    decomposition.formation_energy_per_atom
                ),
            });
        }
        Ok(HullPoint { e_above_hull, formation_energy_per_atom: formation, decomposition })
    }

    /// Many queries at once on the shared thread pool, in input order.
    pub fn e_above_hull_batch(&self, queries: &[(Composition, f64)]) -> Vec<Result<HullPoint, HullError>> {
        queries.par_iter().map(|(c, e)| self.e_above_hull(c, *e)).collect()
    }

    /// Energy above the hull of entry `i` of the diagram (0 for stable entries).
    pub fn entry_e_above_hull(&self, i: usize) -> Result<HullPoint, HullError> {
        let e = self.entries.get(i).ok_or(HullError::NoSuchEntry(i))?;
        self.e_above_hull(&e.composition, e.energy_per_atom)
    }

    /// For entry `i`: its energy relative to the hull of the *other* phases — every entry of its chemical
    /// system except those of the same composition (pymatgen's `get_decomp_and_phase_separation_energy`).
    /// Negative for stable phases (how far below the others' hull they lie), the energy above the hull
    /// for unstable ones. Elemental references have no competing phases and give `None`.
    pub fn phase_separation_energy(&self, i: usize) -> Result<Option<HullPoint>, HullError> {
        let e = self.entries.get(i).ok_or(HullError::NoSuchEntry(i))?;
        if e.composition.n_elements() == 1 {
            return Ok(None);
        }
        let decomposition = self.decomposition_without(&e.composition)?;
        let f = self.formation[i];
        Ok(Some(HullPoint {
            e_above_hull: f - decomposition.formation_energy_per_atom,
            formation_energy_per_atom: f,
            decomposition,
        }))
    }

    /// The hull at `composition` made of every phase of *other* compositions: all polymorphs of this one
    /// left out, as for a crystal whose composition is new (Matbench Discovery's setting). The query is
    /// judged against the stable phases of every proper subsystem plus the other compositions of its own
    /// element set. An element alone has nothing else to compete with: its hull is its reference (0).
    pub fn decomposition_without(&self, composition: &Composition) -> Result<Decomposition, HullError> {
        let n = composition.num_atoms();
        if composition.n_elements() == 0 || n <= 0.0 {
            return Err(HullError::EmptyComposition);
        }
        let mask = mask_of(composition.iter().map(|(e, _)| e));
        let els = elements_of(mask);
        let x: Vec<(Element, f64)> = composition.iter().map(|(e, a)| (e, a / n)).collect();
        let same = |j: usize| {
            self.masks[j] == mask && self.fractions(j).iter().zip(&x).all(|((_, a), (_, b))| (a - b).abs() < 1e-9)
        };
        let mut pool: Vec<usize> = Vec::new();
        for m in self.subsystems(mask).into_iter().filter(|m| *m != mask) {
            pool.extend_from_slice(&self.stable_of_set(m));
        }
        if els.len() > 1 {
            pool.extend(self.groups.get(&mask).into_iter().flatten().copied().filter(|&j| !same(j)));
        }
        pool.sort_unstable();
        pool.dedup();
        let (value, basis) = self.solve_over(&pool, &els, &x, None)?;
        let mut products: Vec<(usize, f64)> = basis.into_iter().filter(|(_, l)| *l > MIN_FRACTION).collect();
        products.sort_by_key(|p| p.0);
        Ok(Decomposition { products, formation_energy_per_atom: value })
    }

    /// The simplex over entries `pool` (which must hold every element's reference) at atom fractions `x`
    /// in the system `els`, leaving out `pool[skip]`; returns the optimum and the basis as (entry index,
    /// fraction).
    fn solve_over(
        &self,
        pool: &[usize],
        els: &[Element],
        x: &[(Element, f64)],
        skip: Option<usize>,
    ) -> Result<(f64, Vec<(usize, f64)>), HullError> {
        let (columns, energies, corners) = self.lp_columns(pool, els)?;
        let b: Vec<f64> = els.iter().map(|e| x.iter().find(|(el, _)| el == e).map_or(0.0, |(_, a)| *a)).collect();
        let (value, basis) = simplex(&columns, &energies, &b, &corners, skip);
        Ok((value, basis.into_iter().map(|(k, l)| (pool[k], l)).collect()))
    }

    /// Flat columns, costs and the start basis of the simplex over `pool` in the system `els`.
    fn lp_columns(&self, pool: &[usize], els: &[Element]) -> Result<LpColumns, HullError> {
        let mut columns = Vec::with_capacity(pool.len() * els.len());
        for &j in pool {
            self.column_into(j, els, &mut columns);
        }
        let energies: Vec<f64> = pool.iter().map(|&j| self.formation[j]).collect();
        let mut corners = Vec::with_capacity(els.len());
        for el in els {
            let (r, _) = self.refs.get(el).ok_or_else(|| HullError::MissingElement(el.symbol().to_string()))?;
            corners.push(
                pool.iter().position(|j| j == r).ok_or_else(|| HullError::MissingElement(el.symbol().to_string()))?,
            );
        }
        Ok((columns, energies, corners))
    }

    /// The element sets with entries that lie within `mask` (itself included when it has entries): by walking
    /// the 2^k submasks of a k-element system (k ≤ 16), not the whole table of element sets.
    fn subsystems(&self, mask: u128) -> Vec<u128> {
        if mask.count_ones() > 16 {
            return self.groups.keys().filter(|m| subset(**m, mask)).copied().collect();
        }
        let mut out = Vec::new();
        let mut sub = mask;
        while sub != 0 {
            if self.groups.contains_key(&sub) {
                out.push(sub);
            }
            sub = (sub - 1) & mask;
        }
        out
    }

    /// Atom fractions of entry `i`, sorted by atomic number.
    fn fractions(&self, i: usize) -> &[(Element, f64)] {
        &self.frac_flat[self.frac_start[i]..self.frac_start[i + 1]]
    }

    fn column_into(&self, j: usize, els: &[Element], out: &mut Vec<f64>) {
        let f = self.fractions(j);
        out.extend(els.iter().map(|e| f.iter().find(|(el, _)| el == e).map_or(0.0, |(_, a)| *a)));
    }

    /// Stable entries whose element set is exactly `mask`.
    fn stable_of_set(&self, mask: u128) -> Arc<Vec<usize>> {
        if let Some(s) = self.stable_exact.read().expect("hull cache lock").get(&mask) {
            return s.clone();
        }
        let group = self.groups.get(&mask).cloned().unwrap_or_default();
        let els = elements_of(mask);
        let stable: Vec<usize> = if els.len() == 1 {
            group.into_iter().filter(|i| self.refs.get(&els[0]).is_some_and(|(r, _)| r == i)).collect()
        } else {
            // Entries of lower systems that are unstable there stay unstable here, so the competition is the
            // stable entries of every proper subsystem plus this set's own candidates.
            let mut pool: Vec<usize> = Vec::new();
            for m in self.subsystems(mask).into_iter().filter(|m| *m != mask) {
                pool.extend_from_slice(&self.stable_of_set(m));
            }
            pool.sort_unstable();
            pool.extend(group.iter().copied());
            match self.lp_columns(&pool, &els) {
                Err(_) => Vec::new(),
                Ok((columns, energies, corners)) => (pool.len() - group.len()..pool.len())
                    .filter(|&k| {
                        let i = pool[k];
                        // The hull is at or below 0 everywhere (the elemental references): entries at or
                        // above it cannot be vertices.
                        if self.formation[i] >= -STABILITY_TOL {
                            return false;
                        }
                        let n = els.len();
                        let hull = simplex_value(&columns, &energies, &columns[k * n..(k + 1) * n], &corners, Some(k));
                        self.formation[i] < hull - STABILITY_TOL
                    })
                    .map(|k| pool[k])
                    .collect(),
            }
        };
        let stable = Arc::new(stable);
        self.stable_exact.write().expect("hull cache lock").insert(mask, stable.clone());
        stable
    }

    fn system(&self, mask: u128) -> Result<Arc<SystemHull>, HullError> {
        if let Some(h) = self.systems.read().expect("hull cache lock").get(&mask) {
            return Ok(h.clone());
        }
        let elements = elements_of(mask);
        for el in &elements {
            if !self.refs.contains_key(el) {
                return Err(HullError::MissingElement(el.symbol().to_string()));
            }
        }
        let mut stable: Vec<usize> = Vec::new();
        for m in self.subsystems(mask) {
            stable.extend_from_slice(&self.stable_of_set(m));
        }
        stable.sort_unstable();
        let mut columns = Vec::with_capacity(stable.len() * elements.len());
        for &j in &stable {
            self.column_into(j, &elements, &mut columns);
        }
        let energies = stable.iter().map(|&j| self.formation[j]).collect();
        let corners = elements
            .iter()
            .map(|el| stable.iter().position(|j| *j == self.refs[el].0).expect("elemental references are stable"))
            .collect();
        let hull = Arc::new(SystemHull { elements, stable, columns, energies, corners, facets: RwLock::default() });
        self.systems.write().expect("hull cache lock").insert(mask, hull.clone());
        Ok(hull)
    }
}

/// Reduced costs below −this are improving (eV/atom).
const COST_EPS: f64 = 1e-12;
/// Pivot elements must exceed this.
const PIVOT_EPS: f64 = 1e-12;

/// Work arrays of the simplex, reused between solves on a thread.
#[derive(Default)]
struct Workspace {
    basis: Vec<usize>,
    in_basis: Vec<bool>,
    binv: Vec<f64>,
    xb: Vec<f64>,
    y: Vec<f64>,
    u: Vec<f64>,
    a: Vec<f64>,
    optimal: bool,
}

thread_local! {
    static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::default());
}

/// Dense primal simplex for min cᵀλ, Aλ = b, λ ≥ 0. `cols` holds A column after column (`b.len()` rows);
/// column `start[k]` is the unit vector e_k, so λ = b on that basis is feasible; column `skip` is left
/// out. Dantzig's rule, switching to Bland's after many iterations so degenerate problems cannot cycle.
/// Returns the optimum and the basis as (column, λ).
fn simplex(cols: &[f64], costs: &[f64], b: &[f64], start: &[usize], skip: Option<usize>) -> (f64, Vec<(usize, f64)>) {
    WORKSPACE.with(|w| {
        let w = &mut w.borrow_mut();
        let value = simplex_in(w, cols, costs, b, start, skip);
        (value, w.basis.iter().copied().zip(w.xb.iter().copied()).collect())
    })
}

/// [`simplex`]'s optimum only (no allocation).
fn simplex_value(cols: &[f64], costs: &[f64], b: &[f64], start: &[usize], skip: Option<usize>) -> f64 {
    WORKSPACE.with(|w| simplex_in(&mut w.borrow_mut(), cols, costs, b, start, skip))
}

/// The simplex on `w`'s arrays; returns the optimum and leaves the basis in `w.basis`, λ in `w.xb`,
/// and in `w.optimal` whether no improving column was left.
fn simplex_in(w: &mut Workspace, cols: &[f64], costs: &[f64], b: &[f64], start: &[usize], skip: Option<usize>) -> f64 {
    let n = b.len();
    let m = costs.len();
    let col = |j: usize| &cols[j * n..(j + 1) * n];
    w.basis.clear();
    w.basis.extend_from_slice(start);
    w.in_basis.clear();
    w.in_basis.resize(m, false);
    for &j in start {
        w.in_basis[j] = true;
    }
    if let Some(k) = skip {
        w.in_basis[k] = true;
    }
    w.binv.clear();
    w.binv.resize(n * n, 0.0);
    for k in 0..n {
        w.binv[k * n + k] = 1.0;
    }
    w.xb.clear();
    w.xb.extend_from_slice(b);
    w.y.resize(n, 0.0);
    w.u.resize(n, 0.0);
    w.optimal = false;
    let Workspace { basis, in_basis, binv, xb, y, u, a, optimal } = w;
    let bland_after = 4 * (n + m);
    for iter in 0..50 * (n + m) {
        let bland = iter >= bland_after;
        for r in 0..n {
            y[r] = (0..n).map(|k| costs[basis[k]] * binv[k * n + r]).sum();
        }
        let mut enter = None;
        let mut best = -COST_EPS;
        for j in 0..m {
            if in_basis[j] {
                continue;
            }
            let d = costs[j] - col(j).iter().zip(y.iter()).map(|(a, y)| a * y).sum::<f64>();
            if d < best {
                best = d;
                enter = Some(j);
                if bland {
                    break;
                }
            }
        }
        let Some(j) = enter else {
            *optimal = true;
            break;
        };
        let aj = col(j);
        for k in 0..n {
            u[k] = (0..n).map(|r| binv[k * n + r] * aj[r]).sum();
        }
        let mut leave: Option<usize> = None;
        let mut theta = f64::INFINITY;
        for k in 0..n {
            if u[k] > PIVOT_EPS {
                let t = xb[k] / u[k];
                let better = match leave {
                    None => true,
                    Some(l) => t < theta - 1e-15 || (t <= theta + 1e-15 && basis[k] < basis[l]),
                };
                if better {
                    theta = t;
                    leave = Some(k);
                }
            }
        }
        // Columns are atom fractions summing to one, so some u_k > 0 always; guard anyway.
        let Some(r) = leave else { break };
        let piv = u[r];
        for c in 0..n {
            binv[r * n + c] /= piv;
        }
        for k in 0..n {
            if k != r && u[k] != 0.0 {
                let f = u[k];
                for c in 0..n {
                    binv[k * n + c] -= f * binv[r * n + c];
                }
                xb[k] -= theta * u[k];
            }
        }
        xb[r] = theta;
        in_basis[basis[r]] = false;
        basis[r] = j;
        in_basis[j] = true;
    }
    // Recompute λ from the final basis directly, so round-off from the pivots does not accumulate.
    a.clear();
    for (r, br) in b.iter().enumerate() {
        a.extend(basis.iter().map(|&j| col(j)[r]));
        a.push(*br);
    }
    if solve_dense(a, n) {
        for r in 0..n {
            xb[r] = a[r * (n + 1) + n];
        }
    }
    basis.iter().zip(xb.iter()).map(|(j, l)| costs[*j] * l).sum()
}

/// Solves the n × (n+1) augmented system `a` (row-major) in place by Gauss–Jordan elimination with partial
/// pivoting, leaving λ_r in `a[r][n]` (clamped at 0); false if singular.
fn solve_dense(a: &mut [f64], n: usize) -> bool {
    let w = n + 1;
    for c in 0..n {
        let Some(p) = (c..n).max_by(|x, y| a[x * w + c].abs().total_cmp(&a[y * w + c].abs())) else { return false };
        if a[p * w + c].abs() < 1e-14 {
            return false;
        }
        if p != c {
            for k in 0..w {
                a.swap(c * w + k, p * w + k);
            }
        }
        for r in 0..n {
            if r != c {
                let f = a[r * w + c] / a[c * w + c];
                if f != 0.0 {
                    for k in c..w {
                        a[r * w + k] -= f * a[c * w + k];
                    }
                }
            }
        }
    }
    for r in 0..n {
        a[r * w + n] = (a[r * w + n] / a[r * w + r]).max(0.0);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(f: &str) -> Composition {
        Composition::from_formula(f).unwrap()
    }

    fn entry(f: &str, e: f64) -> PhaseEntry {
        PhaseEntry::new(f, comp(f), e)
    }

    #[test]
    fn binary_hull_by_hand() {
        // Li–O with Li2O at −2.0 and Li2O2 at −1.6 eV/atom; LiO2 at −0.5 is above the Li2O2–O line.
        let pd =
            PhaseDiagram::from_formation_energies(vec![entry("Li2O", -2.0), entry("Li2O2", -1.6), entry("LiO2", -0.5)])
                .unwrap();
        let names = |idx: &[usize]| idx.iter().map(|i| pd.entries()[*i].name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&pd.stable_entries(&[comp("Li").elements()[0], comp("O").elements()[0]]).unwrap()),
            ["Li2O", "Li2O2", "Li", "O"]
        );
        // LiO2 (x_O = 2/3) sits between Li2O2 (1/2, −1.6) and O (1, 0): hull = −1.6·(2/3) = −16/15.
        let p = pd.e_above_hull(&comp("LiO2"), -0.5).unwrap();
        assert!((p.e_above_hull - (-0.5 + 16.0 / 15.0)).abs() < 1e-12, "{p:?}");
        assert_eq!(names(&p.decomposition.products.iter().map(|x| x.0).collect::<Vec<_>>()), ["Li2O2", "O"]);
        let fr: Vec<f64> = p.decomposition.products.iter().map(|x| x.1).collect();
        assert!((fr[0] - 2.0 / 3.0).abs() < 1e-12 && (fr[1] - 1.0 / 3.0).abs() < 1e-12);
        // A stable phase: its own decomposition, and how far below the others it lies.
        assert!(pd.entry_e_above_hull(0).unwrap().e_above_hull.abs() < 1e-12);
        let sep = pd.phase_separation_energy(1).unwrap().unwrap();
        // Without Li2O2, x_O = 1/2 lies on the Li2O–O line (−1.5), below the Li2O–LiO2 line (−1.25).
        assert!((sep.e_above_hull - (-0.1)).abs() < 1e-12, "{sep:?}");
        assert_eq!(names(&sep.decomposition.products.iter().map(|x| x.0).collect::<Vec<_>>()), ["Li2O", "O"]);
        assert!(pd.phase_separation_energy(3).unwrap().is_none());
    }

    #[test]
    fn missing_elements_and_bad_entries_are_errors() {
        let pd = PhaseDiagram::new(vec![entry("Fe", -8.0), entry("FeO", -7.0)]);
        assert_eq!(pd.err(), Some(HullError::MissingElement("O".into())));
        let pd = PhaseDiagram::from_formation_energies(vec![entry("FeO", -1.0)]).unwrap();
        assert_eq!(pd.e_above_hull(&comp("NaCl"), 0.0).unwrap_err(), HullError::MissingElement("Na".into()));
        assert!(PhaseDiagram::new(vec![entry("Fe", f64::NAN)]).is_err());
    }

    #[test]
    fn total_energies_use_the_lowest_elemental_reference() {
        // Two Fe polymorphs; formation energies are relative to the lower one.
        let pd = PhaseDiagram::new(vec![entry("Fe", -8.0), entry("Fe", -8.3), entry("O", -4.9), entry("FeO", -8.0)])
            .unwrap();
        let f = pd.formation_energy_per_atom(3);
        assert!((f - (-8.0 - 0.5 * (-8.3 - 4.9))).abs() < 1e-12);
        assert!((pd.entry_e_above_hull(0).unwrap().e_above_hull - 0.3).abs() < 1e-12);
    }

    #[test]
    fn ternary_point_inside_a_facet() {
        let pd =
            PhaseDiagram::from_formation_energies(vec![entry("AlN", -1.5), entry("GaN", -0.6), entry("Al2O3", -3.4)])
                .unwrap();
        let p = pd.e_above_hull(&comp("AlGaN2O3"), -1.0).unwrap();
        let total: f64 = p.decomposition.products.iter().map(|x| x.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        // Hull energy equals the fraction-weighted energies of the products.
        let e: f64 = p.decomposition.products.iter().map(|(i, x)| x * pd.formation_energy_per_atom(*i)).sum();
        assert!((e - p.decomposition.formation_energy_per_atom).abs() < 1e-12);
    }
}
