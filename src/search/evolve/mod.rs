//! Global structure search at fixed composition (the USPEX / XtalOpt / CALYPSO / AIRSS family): a
//! population of locally relaxed structures improved generation by generation.
//!
//! Algorithms ([`Algorithm`]): `random` (random symmetric search, the AIRSS baseline), `ga` (genetic,
//! tournament selection, elitist survival; NSGA-II ranking when there are several objectives),
//! `anneal` (basin hopping with a simulated-annealing schedule: walkers accept relaxed mutants by the
//! Metropolis rule at a falling temperature) and `swarm` (CALYPSO-style particle swarm: each particle
//! moves towards its personal best and the global best, the worst share is replaced by random
//! structures) and `bo` (Bayesian optimisation: a Gaussian-process surrogate of the relaxed objective,
//! learnt from every structure as proposed, picks by expected improvement which of many cheap proposals
//! to relax; see [`surrogate`]). Duplicates are found with the Oganov–Valle fingerprint; every individual keeps its
//! operator and parents.
//!
//! The search is a pure state machine: [`Evolution::propose`] gives the structures of the next
//! generation, the caller relaxes and scores them ([`evaluate`]), and [`Evolution::accept`] selects. Its
//! state ([`EvolveState`]) serialises to JSON, so the engine's `evolve` job checkpoints and resumes
//! between any two steps; random draws are derived from (seed, generation), so a resumed run repeats
//! what an uninterrupted one would do. Energies in eV/atom.

pub mod evaluate;
pub mod operators;
pub mod prototype;
mod settings;
mod state;
pub mod surrogate;

use std::collections::BTreeMap;

use nalgebra::Vector3;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::crystal::fingerprint::{OvFingerprint, OvParams, cosine_distance, oganov_valle};
use crate::crystal::neighbors::MinImage;
use crate::crystal::structure::wrap_frac;
use crate::crystal::{Element, Lattice, Structure};
use crate::search::objectives::{crowding_distances, non_dominated_fronts};
use crate::search::random_structure::{RandomOptions, feasible_space_groups, random_in_groups};
pub use evaluate::{Evaluated, Evaluator, ObjectiveSpec};
pub use operators::Operator;
pub use prototype::PrototypeSpace;
pub use settings::{Algorithm, EvolveSettings, OperatorShares, Space};
pub use state::{EvolveState, GenerationStats, Individual, Proposal};

/// A formula unit (element, atoms) and a number of formula units per cell.
type CellKey = (Vec<(Element, usize)>, usize);

/// A search in progress.
pub struct Evolution {
    pub settings: EvolveSettings,
    pub state: EvolveState,
    seed: u64,
    /// Feasible space groups per (formula unit, number of formula units), for every cell size allowed.
    groups: BTreeMap<CellKey, Vec<u8>>,
    /// The elements of a variable-composition search.
    elements: Vec<Element>,
    /// Prototype space: the templates and the element pool.
    prototypes: Option<prototype::PrototypeSpace>,
    fingerprints: Vec<Option<OvFingerprint>>,
}

/// Volume per atom (Å³) structures are scaled to before fingerprinting.
const FINGERPRINT_VOLUME_PER_ATOM: f64 = 15.0;

/// Fingerprint parameters for duplicate control: ASE's bins with a shorter cutoff (8 Å at 15 Å³/atom,
/// enough to tell polymorphs of small cells apart) and a wider smearing (σ 0.1 Å instead of 0.02 Å), so
/// the same structure relaxed to a finite fmax from two starts, a little strained, still matches.
fn ov_params() -> OvParams {
    OvParams { rcut_ang: 8.0, sigma_ang: 0.1, ..OvParams::default() }
}

impl Evolution {
    pub fn new(settings: EvolveSettings, seed: u64) -> Result<Evolution, String> {
        settings.validate()?;
        if settings.space == Space::Prototype {
            let space = settings.prototype_space()?;
            let state = EvolveState { temperature: settings.temperature, ..EvolveState::default() };
            let elements = space.pool.clone();
            return Ok(Evolution {
                settings,
                state,
                seed,
                groups: BTreeMap::new(),
                elements,
                prototypes: Some(space),
                fingerprints: Vec::new(),
            });
        }
        let units = settings.formula_units_searched()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let mut groups = BTreeMap::new();
        for unit in &units {
            let per: usize = unit.iter().map(|x| x.1).sum();
            for z in settings.formula_units[0]..=settings.formula_units[1] {
                if z * per > settings.max_atoms {
                    break;
                }
                let counts: Vec<(Element, usize)> = unit.iter().map(|(e, n)| (*e, n * z)).collect();
                let g = feasible_space_groups(&counts, &settings.space_groups, &mut rng);
                if !g.is_empty() {
                    groups.insert((unit.clone(), z), g);
                }
            }
        }
        let elements = units.first().map(|u| u.iter().map(|x| x.0).collect()).unwrap_or_default();
        if groups.is_empty() {
            return Err(format!(
                "no space group among those allowed holds {} with {:?} formula units",
                settings.composition, settings.formula_units
            ));
        }
        let state = EvolveState { temperature: settings.temperature, ..EvolveState::default() };
        Ok(Evolution { settings, state, seed, groups, elements, prototypes: None, fingerprints: Vec::new() })
    }

    /// Continue from a saved state.
    pub fn restore(&mut self, state: EvolveState) {
        self.state = state;
        self.fingerprints.clear();
    }

    /// Structures evaluated so far.
    pub fn evaluated(&self) -> usize {
        self.state.individuals.len()
    }

    /// The best individual by the first objective (duplicates and failures excluded).
    pub fn best(&self) -> Option<&Individual> {
        self.state
            .individuals
            .iter()
            .filter(|i| i.ok() && i.duplicate_of.is_none())
            .min_by(|a, b| a.costs[0].total_cmp(&b.costs[0]))
    }

    /// True when the budget is spent or the stop energy reached.
    pub fn done(&self) -> bool {
        self.evaluated() >= self.settings.budget
            || self
                .settings
                .stop_energy
                .is_some_and(|e| self.state.individuals.iter().any(|i| i.ok() && i.energy_per_atom <= e))
    }

    fn rng(&self, salt: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(
            self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.state.generation as u64) << 8 ^ salt,
        )
    }

    fn random_opts(&self) -> RandomOptions {
        RandomOptions {
            min_distance_factor: self.settings.min_distance_factor,
            space_groups: self.settings.space_groups.clone(),
            ..RandomOptions::default()
        }
    }

    /// A random symmetric structure: a random formula unit (variable composition) and number of them.
    pub fn random_structure(&self, rng: &mut ChaCha8Rng) -> Option<Structure> {
        if let Some(space) = &self.prototypes {
            return space.random(rng);
        }
        let keys: Vec<&CellKey> = self.groups.keys().collect();
        for _ in 0..10 {
            let key = *keys.choose(rng)?;
            let counts: Vec<(Element, usize)> = key.0.iter().map(|(e, n)| (*e, n * key.1)).collect();
            if let Some(r) = random_in_groups(&counts, &self.groups[key], &self.random_opts(), rng) {
                return Some(r.structure);
            }
        }
        None
    }

    /// Queue a structure (by hand, from the dataset or a generator) for the next generation.
    pub fn inject(&mut self, s: Structure) {
        self.state.injected.push(s);
    }

    /// The next generation's proposals (also kept in `state.pending`); empty when done.
    pub fn propose(&mut self) -> Vec<Proposal> {
        if self.done() {
            self.state.pending.clear();
            return Vec::new();
        }
        let mut rng = self.rng(1);
        let n = self.settings.population.min(self.settings.budget - self.evaluated());
        let mut out: Vec<Proposal> = self
            .state
            .injected
            .drain(..)
            .map(|s| Proposal { structure: s, operator: Operator::Seed, parents: Vec::new(), slot: None })
            .collect();
        let first = self.state.individuals.is_empty() || self.state.population.is_empty();
        if self.settings.algorithm == Algorithm::Bo && !first && out.len() < n {
            let k = n - out.len();
            out.extend(self.acquire(k, &mut rng));
        }
        let mut slot = 0;
        while out.len() < n {
            let p = if first || self.settings.algorithm == Algorithm::Random {
                self.random_structure(&mut rng).map(Proposal::random)
            } else {
                let p = match self.settings.algorithm {
                    Algorithm::Anneal => self.walk(slot, &mut rng),
                    Algorithm::Swarm => self.fly(slot, &mut rng),
                    Algorithm::Ga | Algorithm::Bo => self.offspring(&mut rng),
                    Algorithm::Random => None,
                };
                p.or_else(|| self.random_structure(&mut rng).map(Proposal::random))
            };
            match p {
                Some(mut p) => {
                    if matches!(self.settings.algorithm, Algorithm::Anneal | Algorithm::Swarm) && !first {
                        p.slot = Some(slot);
                    }
                    slot += 1;
                    out.push(p);
                }
                None => break,
            }
        }
        self.state.pending = out.clone();
        out
    }

    /// Bayesian optimisation step: propose 8 × `k` structures (GA offspring and random ones), predict
    /// their relaxed first objective with a Gaussian process fitted to every evaluated individual (from
    /// its structure as proposed), and keep the `k` with the largest expected improvement.
    fn acquire(&self, k: usize, rng: &mut ChaCha8Rng) -> Vec<Proposal> {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in &self.state.individuals {
            if let (Some(start), Some(c)) = (&i.start, i.costs.first().filter(|c| c.is_finite())) {
                xs.push(surrogate::descriptor(start, &self.elements));
                ys.push(*c);
            }
        }
        let Some(gp) = surrogate::Gp::fit(&xs, &ys) else { return Vec::new() };
        let best = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let mut pool: Vec<(f64, Proposal, Vec<f64>)> = Vec::new();
        for _ in 0..8 * k {
            let p = if rng.random::<f64>() < self.settings.operators.random.max(0.1) {
                self.random_structure(rng).map(Proposal::random)
            } else {
                self.offspring(rng)
            };
            if let Some(p) = p {
                let d = surrogate::descriptor(&p.structure, &self.elements);
                let (m, s) = gp.predict(&d);
                pool.push((surrogate::expected_improvement(m, s, best), p, d));
            }
        }
        pool.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut out: Vec<(Proposal, Vec<f64>)> = Vec::new();
        for (_, p, d) in pool {
            if out.len() >= k {
                break;
            }
            // Skip near-copies of a proposal already taken.
            if out.iter().all(|(_, e)| e.iter().zip(&d).map(|(a, b)| (a - b).powi(2)).sum::<f64>() > 1e-6) {
                out.push((p, d));
            }
        }
        out.into_iter().map(|x| x.0).collect()
    }

    /// Draw an operator by the configured shares (random included).
    fn draw_operator(&self, rng: &mut ChaCha8Rng, allowed: &[Operator]) -> Operator {
        let s = &self.settings.operators;
        let share = |o: Operator| match o {
            Operator::Random => s.random,
            Operator::Heredity => s.heredity,
            Operator::Strain => s.strain,
            Operator::Permutation => s.permutation,
            Operator::Rattle => s.rattle,
            Operator::Transmutation => s.transmutation,
            _ => 0.0,
        };
        let total: f64 = allowed.iter().map(|o| share(*o)).sum();
        if total <= 0.0 {
            return allowed[0];
        }
        let mut x = rng.random::<f64>() * total;
        for o in allowed {
            x -= share(*o);
            if x <= 0.0 {
                return *o;
            }
        }
        *allowed.last().unwrap_or(&Operator::Random)
    }

    /// Tournament of two from the population (lower rank wins).
    fn tournament(&self, rank: &BTreeMap<usize, usize>, rng: &mut ChaCha8Rng) -> usize {
        let a = *self.state.population.choose(rng).unwrap_or(&0);
        let b = *self.state.population.choose(rng).unwrap_or(&0);
        if rank.get(&a) <= rank.get(&b) { a } else { b }
    }

    /// Prototype-space offspring: random (share `random`), crossover (`heredity`), guided element swap
    /// (`transmutation` + `permutation` + `rattle`), template switch (`strain`).
    fn prototype_offspring(&self, space: &prototype::PrototypeSpace, rng: &mut ChaCha8Rng) -> Option<Proposal> {
        let rank: BTreeMap<usize, usize> = self.state.population.iter().enumerate().map(|(r, id)| (*id, r)).collect();
        let s = &self.settings.operators;
        let shares = [
            (Operator::Random, s.random),
            (Operator::Heredity, s.heredity),
            (Operator::Transmutation, s.transmutation + s.permutation + s.rattle),
            (Operator::Strain, s.strain),
        ];
        let total: f64 = shares.iter().map(|x| x.1).sum();
        for _ in 0..20 {
            let mut x = rng.random::<f64>() * total;
            let op = shares
                .iter()
                .find(|o| {
                    x -= o.1;
                    x <= 0.0
                })
                .map_or(Operator::Transmutation, |o| o.0);
            let a = self.tournament(&rank, rng);
            let sa = &self.state.individuals[a].structure;
            let (child, parents, op) = match op {
                Operator::Random => (space.random(rng), vec![], Operator::Random),
                Operator::Heredity => {
                    let b = self.tournament(&rank, rng);
                    (space.crossover(sa, &self.state.individuals[b].structure, rng), vec![a, b], Operator::Crossover)
                }
                Operator::Strain => (space.switch_template(sa, rng), vec![a], Operator::TemplateSwitch),
                _ => (space.swap(sa, rng), vec![a], Operator::Substitution),
            };
            if let Some(c) = child {
                return Some(Proposal { structure: c, operator: op, parents, slot: None });
            }
        }
        None
    }

    /// GA offspring: tournament parents through a drawn operator.
    fn offspring(&self, rng: &mut ChaCha8Rng) -> Option<Proposal> {
        if let Some(space) = &self.prototypes {
            return self.prototype_offspring(space, rng);
        }
        let rank: BTreeMap<usize, usize> = self.state.population.iter().enumerate().map(|(r, id)| (*id, r)).collect();
        let f = self.settings.min_distance_factor * 0.85;
        let mut ops =
            vec![Operator::Random, Operator::Heredity, Operator::Strain, Operator::Permutation, Operator::Rattle];
        if self.settings.variable() {
            ops.push(Operator::Transmutation);
        }
        for _ in 0..20 {
            let op = self.draw_operator(rng, &ops);
            let a = self.tournament(&rank, rng);
            let sa = &self.state.individuals[a].structure;
            let (child, parents) = match op {
                Operator::Random => (self.random_structure(rng), vec![]),
                Operator::Heredity => {
                    let b = self.tournament(&rank, rng);
                    let sb = &self.state.individuals[b].structure;
                    if b == a || sb.n_sites() != sa.n_sites() {
                        continue;
                    }
                    (operators::heredity(sa, sb, f, rng), vec![a, b])
                }
                Operator::Strain => (operators::strain(sa, 0.15, f, rng), vec![a]),
                Operator::Permutation => (operators::permutation(sa, 1 + sa.n_sites() / 8, f, rng), vec![a]),
                Operator::Transmutation => (
                    operators::transmutation(sa, &self.elements, f, rng)
                        .filter(|c| c.n_sites() <= self.settings.max_atoms),
                    vec![a],
                ),
                _ => (operators::rattle(sa, 0.25, f, rng), vec![a]),
            };
            if let Some(c) = child {
                return Some(Proposal { structure: c, operator: op, parents, slot: None });
            }
        }
        None
    }

    /// Basin hopping: a mutant of walker `w`'s current structure.
    fn walk(&self, w: usize, rng: &mut ChaCha8Rng) -> Option<Proposal> {
        let id = *self.state.walkers.get(w)?;
        let s = &self.state.individuals[id].structure;
        if let Some(space) = &self.prototypes {
            return space.swap(s, rng).map(|c| Proposal {
                structure: c,
                operator: Operator::Substitution,
                parents: vec![id],
                slot: Some(w),
            });
        }
        let f = self.settings.min_distance_factor * 0.85;
        for _ in 0..20 {
            let op = self.draw_operator(rng, &[Operator::Strain, Operator::Permutation, Operator::Rattle]);
            let c = match op {
                Operator::Strain => operators::strain(s, 0.15, f, rng),
                Operator::Permutation => operators::permutation(s, 1, f, rng),
                _ => operators::rattle(s, 0.35, f, rng),
            };
            if let Some(c) = c {
                return Some(Proposal { structure: c, operator: op, parents: vec![id], slot: Some(w) });
            }
        }
        None
    }

    /// Particle swarm: move particle `w` towards its personal best and the global best (atoms paired
    /// with the nearest same-element atom; lattices interpolated); a share (`operators.random`, at
    /// least 0.3) of particles is re-drawn at random each generation, as CALYPSO does.
    fn fly(&self, w: usize, rng: &mut ChaCha8Rng) -> Option<Proposal> {
        let id = *self.state.walkers.get(w)?;
        if rng.random::<f64>() < self.settings.operators.random.max(0.3) {
            return None; // the caller draws a random structure
        }
        let x = &self.state.individuals[id].structure;
        let pbest = self.state.personal_best.get(w).copied().unwrap_or(id);
        let gbest = self.best().map_or(id, |b| b.id);
        let mut frac: Vec<Vector3<f64>> = x.frac_coords().to_vec();
        let mut cell = *x.lattice.cart_from_frac();
        for (target, c) in [(pbest, 2.0), (gbest, 2.0)] {
            let t = &self.state.individuals[target].structure;
            if target == id || t.n_sites() != x.n_sites() {
                continue;
            }
            let r: f64 = rng.random::<f64>() * c * 0.5;
            let mi = MinImage::new(&x.lattice);
            for (i, f) in frac.iter_mut().enumerate() {
                // Nearest atom of the same element in the target (target fractional coords in x's cell).
                let best = t
                    .frac_coords()
                    .iter()
                    .zip(t.species())
                    .filter(|(_, e)| **e == x.species()[i])
                    .map(|(g, _)| (g - *f).map(|d| d - d.round()))
                    .min_by(|a, b| {
                        mi.distance(&x.lattice.to_cart(a), false).total_cmp(&mi.distance(&x.lattice.to_cart(b), false))
                    });
                if let Some(d) = best {
                    *f = wrap_frac(&(*f + d * r));
                }
            }
            cell = cell * (1.0 - r * 0.5) + t.lattice.cart_from_frac() * (r * 0.5);
        }
        let lattice = Lattice::from_cart_from_frac(cell).ok()?;
        let moved = Structure::from_frac(lattice, x.species().to_vec(), frac).ok()?;
        let f = self.settings.min_distance_factor * 0.85;
        let c = operators::rattle(&moved, 0.1, f, rng)?;
        Some(Proposal { structure: c, operator: Operator::Rattle, parents: vec![id], slot: Some(w) })
    }

    fn fingerprint(&mut self, id: usize) -> &OvFingerprint {
        if self.fingerprints.len() <= id {
            self.fingerprints.resize(id + 1, None);
        }
        if self.fingerprints[id].is_none() {
            // At a common volume per atom: relaxations stopped at a finite fmax leave the same structure at
            // slightly different volumes, which shifts every far peak of the fingerprint.
            let s = &self.state.individuals[id].structure;
            let scaled =
                s.scaled_to_volume(FINGERPRINT_VOLUME_PER_ATOM * s.n_sites() as f64).unwrap_or_else(|_| s.clone());
            self.fingerprints[id] = Some(oganov_valle(&scaled, &ov_params()));
        }
        self.fingerprints[id].as_ref().expect("just computed")
    }

    /// Take the evaluated pending proposals (in order) and select; returns the new individuals' ids.
    pub fn accept(&mut self, results: Vec<Evaluated>) -> Vec<usize> {
        let pending = std::mem::take(&mut self.state.pending);
        let mut new_ids = Vec::new();
        for (p, r) in pending.into_iter().zip(results) {
            let id = self.state.individuals.len();
            self.state.individuals.push(Individual {
                id,
                generation: self.state.generation,
                operator: p.operator,
                parents: p.parents,
                structure: r.structure,
                energy_per_atom: r.energy_per_atom,
                values: r.values,
                costs: r.costs,
                duplicate_of: None,
                relax_steps: r.relax_steps,
                start: Some(p.structure),
            });
            if self.state.individuals[id].ok() {
                self.state.individuals[id].duplicate_of = self.find_duplicate(id);
            }
            new_ids.push((id, p.slot));
        }
        match self.settings.algorithm {
            Algorithm::Anneal => self.metropolis(&new_ids),
            Algorithm::Swarm => self.swarm_update(&new_ids),
            _ => {}
        }
        self.select();
        self.record_stats();
        self.state.generation += 1;
        new_ids.into_iter().map(|x| x.0).collect()
    }

    /// Earlier unique individual within the duplicate thresholds, if any.
    fn find_duplicate(&mut self, id: usize) -> Option<usize> {
        if self.prototypes.is_some() {
            // The same elements on the same template.
            let me = &self.state.individuals[id].structure;
            let key = (prototype::PrototypeSpace::template_of(me), me.species().to_vec());
            return (0..id).find(|&j| {
                let o = &self.state.individuals[j];
                o.ok()
                    && o.duplicate_of.is_none()
                    && (prototype::PrototypeSpace::template_of(&o.structure), o.structure.species().to_vec()) == key
            });
        }
        let e = self.state.individuals[id].energy_per_atom;
        let n = self.state.individuals[id].structure.n_sites();
        let formula = self.state.individuals[id].structure.reduced_formula();
        let others: Vec<usize> = (0..id)
            .filter(|&j| {
                let o = &self.state.individuals[j];
                o.ok()
                    && o.duplicate_of.is_none()
                    && (o.energy_per_atom - e).abs() < 0.01
                    && o.structure.reduced_formula() == formula
                    && (o.structure.n_sites() == n
                        || o.structure.n_sites().is_multiple_of(n)
                        || n.is_multiple_of(o.structure.n_sites()))
            })
            .collect();
        self.fingerprint(id);
        for j in others {
            self.fingerprint(j);
            let (a, b) = (self.fingerprints[id].as_ref()?, self.fingerprints[j].as_ref()?);
            if cosine_distance(a, b) < self.settings.duplicate_distance {
                return Some(j);
            }
        }
        None
    }

    /// Survivors: the best `population` unique individuals (NSGA-II fronts and crowding for several
    /// objectives), the walkers' and particles' structures for `anneal` and `swarm`.
    fn select(&mut self) {
        let candidates: Vec<usize> =
            self.state.individuals.iter().filter(|i| i.ok() && i.duplicate_of.is_none()).map(|i| i.id).collect();
        let ranked = self.rank(&candidates);
        self.state.population = ranked.into_iter().take(self.settings.population).collect();
        if matches!(self.settings.algorithm, Algorithm::Anneal | Algorithm::Swarm) && self.state.walkers.is_empty() {
            self.state.walkers = self.state.population.clone();
            self.state.personal_best = self.state.population.clone();
        }
    }

    /// Ids ordered best first (single objective: by cost; several: front, then crowding distance).
    pub fn rank(&self, ids: &[usize]) -> Vec<usize> {
        let costs: Vec<Vec<f64>> = ids.iter().map(|&i| self.state.individuals[i].costs.clone()).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        if self.settings.objectives.len() <= 1 {
            order.sort_by(|&a, &b| costs[a][0].total_cmp(&costs[b][0]).then(a.cmp(&b)));
        } else {
            let fronts = non_dominated_fronts(&costs);
            let crowd = crowding_distances(&costs, &fronts);
            order.sort_by(|&a, &b| fronts[a].cmp(&fronts[b]).then(crowd[b].total_cmp(&crowd[a])).then(a.cmp(&b)));
        }
        order.into_iter().map(|k| ids[k]).collect()
    }

    /// Basin hopping: each walker moves to its new structure by the Metropolis rule; then cool down.
    fn metropolis(&mut self, new: &[(usize, Option<usize>)]) {
        let mut rng = self.rng(2);
        let t = self.state.temperature;
        for &(id, slot) in new {
            let Some(w) = slot else { continue };
            let Some(&cur) = self.state.walkers.get(w) else { continue };
            let (ec, en) = (self.state.individuals[cur].costs[0], self.state.individuals[id].costs[0]);
            if !en.is_finite() {
                continue;
            }
            let accept = en <= ec || (t > 0.0 && rng.random::<f64>() < (-(en - ec) / t).exp());
            if accept {
                self.state.walkers[w] = id;
            }
        }
        self.state.temperature *= self.settings.cooling;
    }

    /// Swarm: particles move to their new structures; personal bests update.
    fn swarm_update(&mut self, new: &[(usize, Option<usize>)]) {
        for (k, &(id, slot)) in new.iter().enumerate() {
            let w = slot.unwrap_or(k);
            if w >= self.state.walkers.len() || !self.state.individuals[id].ok() {
                continue;
            }
            self.state.walkers[w] = id;
            let pb = self.state.personal_best[w];
            if self.state.individuals[id].costs[0] < self.state.individuals[pb].costs[0] {
                self.state.personal_best[w] = id;
            }
        }
    }

    fn record_stats(&mut self) {
        let pop = self.state.population.clone();
        let best = self.best().map(|b| (b.costs[0], b.id));
        let mean = if pop.is_empty() {
            f64::NAN
        } else {
            pop.iter().map(|&i| self.state.individuals[i].costs[0]).sum::<f64>() / pop.len() as f64
        };
        let mut dsum = 0.0;
        let mut npairs = 0;
        for (k, &a) in pop.iter().enumerate() {
            for &b in &pop[..k] {
                self.fingerprint(a);
                self.fingerprint(b);
                if let (Some(fa), Some(fb)) = (&self.fingerprints[a], &self.fingerprints[b]) {
                    dsum += cosine_distance(fa, fb);
                    npairs += 1;
                }
            }
        }
        let costs: Vec<Vec<f64>> = pop.iter().map(|&i| self.state.individuals[i].costs.clone()).collect();
        let front_size = non_dominated_fronts(&costs).iter().filter(|&&f| f == 0).count();
        let duplicates = self.state.individuals.iter().filter(|i| i.duplicate_of.is_some()).count();
        self.state.history.push(GenerationStats {
            generation: self.state.generation,
            evaluated: self.evaluated(),
            best_cost: best.map_or(f64::NAN, |b| b.0),
            best_id: best.map(|b| b.1),
            mean_cost: mean,
            diversity: if npairs > 0 { dsum / npairs as f64 } else { 0.0 },
            front_size,
            duplicates,
        });
    }

    /// Ids of the best individual's ancestry, itself first (breadth first, each id once).
    pub fn lineage(&self, id: usize) -> Vec<usize> {
        let mut out = vec![id];
        let mut k = 0;
        while k < out.len() {
            for &p in &self.state.individuals[out[k]].parents {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            k += 1;
        }
        out
    }

    /// The first Pareto front of all unique individuals (ids), for multi-objective runs.
    pub fn pareto_front(&self) -> Vec<usize> {
        let ids: Vec<usize> =
            self.state.individuals.iter().filter(|i| i.ok() && i.duplicate_of.is_none()).map(|i| i.id).collect();
        let costs: Vec<Vec<f64>> = ids.iter().map(|&i| self.state.individuals[i].costs.clone()).collect();
        let fronts = non_dominated_fronts(&costs);
        ids.into_iter().zip(fronts).filter(|(_, f)| *f == 0).map(|(i, _)| i).collect()
    }
}

/// Run a search in this thread's rayon pool until it is done or `stop` says so after a generation
/// (relaxations of a generation in parallel). Returns the seconds spent relaxing and scoring.
pub fn run(evo: &mut Evolution, eval: &Evaluator, mut stop: impl FnMut(&Evolution, &[usize]) -> bool) -> (f64, f64) {
    use rayon::prelude::*;
    let never = std::sync::atomic::AtomicBool::new(false);
    let (mut t_relax, mut t_score) = (0.0, 0.0);
    loop {
        let proposals = evo.propose();
        if proposals.is_empty() {
            break;
        }
        let t = std::time::Instant::now();
        let relaxed: Vec<evaluate::Relaxed> =
            proposals.par_iter().filter_map(|p| eval.relax_one(&p.structure, &never)).collect();
        t_relax += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let scored = eval.score(relaxed);
        let ids = evo.accept(scored);
        t_score += t.elapsed().as_secs_f64();
        if stop(evo, &ids) {
            break;
        }
    }
    (t_relax, t_score)
}
