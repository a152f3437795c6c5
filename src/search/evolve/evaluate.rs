//! Scoring individuals: local relaxation with a potential (any [`Calculator`]), then the objectives —
//! energy per atom, distance above the potential's hull, forward-model property targets.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::crystal::Structure;
use crate::energy::calculator::Calculator;
use crate::energy::on_hull::PotentialHull;
use crate::energy::{RelaxOptions, relax, relax_many};
use crate::ml::PropertyModel;
use crate::search::generate::{Extreme, PropertyTarget};

/// One minimised objective.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectiveSpec {
    /// Energy per atom of the relaxed structure (eV/atom).
    Energy,
    /// Distance above the potential's convex hull (eV/atom; negative below it).
    EAboveHull,
    /// A forward-model property: distance to a window, or the value itself (min) or its negative (max).
    Property(PropertyTarget),
}

impl ObjectiveSpec {
    pub fn parse(text: &str) -> Result<ObjectiveSpec, String> {
        match text.trim() {
            "energy" | "energy_per_atom" => Ok(ObjectiveSpec::Energy),
            "e_above_hull" | "stability" => Ok(ObjectiveSpec::EAboveHull),
            t => PropertyTarget::parse(t)
                .map(ObjectiveSpec::Property)
                .map_err(|e| format!("{t:?}: {e} (or use `energy`, `e_above_hull`)")),
        }
    }

    /// The stored value the objective's cost is computed from (`energy_per_atom`, `e_above_hull`,
    /// `band_gap`, …).
    pub fn column(&self) -> &'static str {
        match self {
            ObjectiveSpec::Energy => "energy_per_atom",
            ObjectiveSpec::EAboveHull => "e_above_hull",
            ObjectiveSpec::Property(t) => t.target.name(),
        }
    }

    /// Column name of the objective's cost.
    pub fn name(&self) -> String {
        match self {
            ObjectiveSpec::Energy => "energy_per_atom".into(),
            ObjectiveSpec::EAboveHull => "e_above_hull".into(),
            ObjectiveSpec::Property(t) => t.describe(),
        }
    }
}

// Objectives travel as their text (`"energy_per_atom"`, `"e_above_hull"`, `"band_gap in [1, 2]"`) in
// configs and the store, and are parsed once, where they are read.
serde_as_text!(ObjectiveSpec, name);

/// What evaluation found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluated {
    pub structure: Structure,
    pub energy_per_atom: f64,
    pub values: BTreeMap<String, f64>,
    pub costs: Vec<f64>,
    pub relax_steps: usize,
}

/// Relaxation settings of a search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RelaxSettings {
    /// `chgnet`, `chgnet:weights=…` or `lj:…` (see `geode relax --potential`).
    pub potential: String,
    /// eV/Å.
    pub fmax: f64,
    /// FIRE steps at most; 0: single-point energies of the structures as made (no relaxation).
    pub max_steps: usize,
    /// Relaxations in flight at once on each thread, one batched potential evaluation per FIRE step
    /// (on each Slurm worker too); 1: one structure at a time.
    pub batch: usize,
    /// The hull `e_above_hull` and `relax_top` use: `dft` (the complete OQMD hull through the potential's
    /// fitted chemical potentials) or `potential` (the CHGNet-only hull).
    pub hull: crate::energy::on_hull::HullChoice,
}

impl Default for RelaxSettings {
    fn default() -> Self {
        RelaxSettings { potential: "chgnet".into(), fmax: 0.1, max_steps: 250, batch: 4, hull: Default::default() }
    }
}

/// Relaxes and scores structures.
pub struct Evaluator {
    /// The potential; `None` in prototype space (no energies: structures are scored as made, and
    /// `e_above_hull` comes from the predicted formation energy on `hull`, the complete OQMD hull).
    pub calc: Option<Box<dyn Calculator>>,
    pub relax: RelaxOptions,
    pub objectives: Vec<ObjectiveSpec>,
    /// Needed for `e_above_hull`.
    pub hull: Option<PotentialHull>,
    /// Needed for property objectives (behind a lock: models are not shareable between threads).
    pub model: Option<std::sync::Mutex<Box<dyn PropertyModel>>>,
}

/// A relaxed structure (before scoring).
#[derive(Debug, Clone)]
pub struct Relaxed {
    pub structure: Structure,
    pub energy_per_atom: f64,
    pub steps: usize,
}

impl Relaxed {
    /// The end of a relaxation of `energy` eV after `steps` FIRE steps, checked: a relaxation that pushed
    /// atoms on top of each other (or ended at a non-finite energy) is not a structure and scores +∞.
    pub fn checked(structure: Structure, energy: f64, steps: usize) -> Relaxed {
        let e = energy / structure.n_sites() as f64;
        let v = structure.structural_validity();
        let sane = v.valid && v.min_distance_ang > 0.7 && e.is_finite();
        Relaxed { energy_per_atom: if sane { e } else { f64::INFINITY }, steps, structure }
    }

    /// A relaxation that failed (a collapsing cell, a potential error): the start, at +∞.
    pub fn failed(start: &Structure) -> Relaxed {
        Relaxed { structure: start.clone(), energy_per_atom: f64::INFINITY, steps: 0 }
    }
}

impl Evaluator {
    /// Relax one structure. `Ok(None)` when cancelled; failures (a collapsing cell, a potential error)
    /// give a +∞ energy rather than an error, so one bad individual never stops a search.
    pub fn relax_one(&self, s: &Structure, cancel: &AtomicBool) -> Option<Relaxed> {
        let Some(calc) = &self.calc else {
            return Some(Relaxed { structure: s.clone(), energy_per_atom: f64::NAN, steps: 0 });
        };
        let mut stop = |_: &crate::energy::RelaxStep, _: &Structure| {
            if cancel.load(Ordering::Relaxed) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        };
        match relax(calc.as_ref(), s, &self.relax, &mut stop) {
            Ok(r) if r.cancelled => None,
            Ok(r) => Some(Relaxed::checked(r.structure, r.evaluation.energy, r.steps)),
            Err(_) => Some(Relaxed::failed(s)),
        }
    }

    /// Relax `structures` with up to `batch` in flight (one batched potential evaluation per FIRE step; each
    /// relaxation follows the path [`Evaluator::relax_one`] takes). `None` when cancelled; failures score +∞.
    pub fn relax_batch(&self, structures: &[Structure], batch: usize, cancel: &AtomicBool) -> Option<Vec<Relaxed>> {
        let Some(calc) = &self.calc else {
            return Some(
                structures
                    .iter()
                    .map(|s| Relaxed { structure: s.clone(), energy_per_atom: f64::NAN, steps: 0 })
                    .collect(),
            );
        };
        let results = relax_many(
            calc.as_ref(),
            structures,
            &self.relax,
            batch.max(1),
            &mut |_, _, _| {
                if cancel.load(Ordering::Relaxed) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            },
            &mut |_, _| ControlFlow::Continue(()),
        );
        if results.iter().any(|r| r.as_ref().is_ok_and(|r| r.cancelled)) {
            return None;
        }
        Some(
            results
                .into_iter()
                .zip(structures)
                .map(|(r, s)| match r {
                    Ok(r) => Relaxed::checked(r.structure, r.evaluation.energy, r.steps),
                    Err(_) => Relaxed::failed(s),
                })
                .collect(),
        )
    }

    /// Objectives of relaxed structures (one forward-model batch). Failed relaxations (+∞ energy) get
    /// +∞ costs; structures without an energy (prototype space) are scored on predictions alone.
    pub fn score(&self, relaxed: Vec<Relaxed>) -> Vec<Evaluated> {
        let ok: Vec<usize> = (0..relaxed.len()).filter(|&i| relaxed[i].energy_per_atom != f64::INFINITY).collect();
        let predicted_hull = self.calc.is_none() && self.objectives.contains(&ObjectiveSpec::EAboveHull);
        let predictions = match &self.model {
            Some(m) if predicted_hull || self.objectives.iter().any(|o| matches!(o, ObjectiveSpec::Property(_))) => {
                let ss: Vec<Structure> = ok.iter().map(|&i| relaxed[i].structure.clone()).collect();
                let m = m.lock().unwrap_or_else(|e| e.into_inner());
                m.predict(&ss).ok().map(|p| (m.targets(), p))
            }
            _ => None,
        };
        relaxed
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let mut values = BTreeMap::new();
                if r.energy_per_atom.is_finite() {
                    values.insert("energy_per_atom".to_string(), r.energy_per_atom);
                }
                if r.energy_per_atom != f64::INFINITY {
                    if let Some((targets, preds)) = &predictions
                        && let Some(k) = ok.iter().position(|&j| j == i)
                    {
                        for (t, p) in targets.iter().zip(&preds[k]) {
                            values.insert(t.name().to_string(), p.mean);
                            values.insert(format!("{}_std", t.name()), p.std);
                        }
                    }
                    if let Some(h) = &self.hull {
                        let comp = r.structure.composition();
                        if r.energy_per_atom.is_finite() {
                            if let Ok(p) = h.place(&comp, r.energy_per_atom) {
                                values.insert("e_above_hull".into(), p.e_above_hull);
                            }
                        } else if let Some(fe) = values.get("formation_energy_per_atom").copied() {
                            // Predicted: also at mean + σ, which the objective uses, so a search cannot win by
                            // exploiting the model where it is unsure (it otherwise finds compositions the
                            // model places far below the DFT hull).
                            let sd = values.get("formation_energy_per_atom_std").copied().unwrap_or(0.0);
                            if let (Ok(p), Ok(q)) = (h.place(&comp, fe), h.place(&comp, fe + sd)) {
                                values.insert("e_above_hull".into(), p.e_above_hull);
                                values.insert("e_above_hull_upper".into(), q.e_above_hull);
                            }
                        }
                    }
                }
                let costs = if r.energy_per_atom == f64::INFINITY {
                    vec![f64::INFINITY; self.objectives.len()]
                } else {
                    self.objectives.iter().map(|o| cost(o, &values)).collect()
                };
                Evaluated {
                    structure: r.structure,
                    energy_per_atom: r.energy_per_atom,
                    values,
                    costs,
                    relax_steps: r.steps,
                }
            })
            .collect()
    }
}

/// Cost of one objective (+∞ when its value is missing).
pub fn cost(o: &ObjectiveSpec, values: &BTreeMap<String, f64>) -> f64 {
    let get = |k: &str| values.get(k).copied().filter(|v| v.is_finite()).unwrap_or(f64::INFINITY);
    match o {
        ObjectiveSpec::Energy => get("energy_per_atom"),
        // Predicted stabilities are judged at mean + σ (see `Evaluator::score`).
        ObjectiveSpec::EAboveHull => {
            values.get("e_above_hull_upper").copied().filter(|v| v.is_finite()).unwrap_or_else(|| get("e_above_hull"))
        }
        ObjectiveSpec::Property(t) => {
            let v = get(t.target.name());
            if !v.is_finite() {
                return f64::INFINITY;
            }
            match t.extreme {
                Some(Extreme::Min) => v,
                Some(Extreme::Max) => -v,
                None => t.distance(v).unwrap_or(f64::INFINITY),
            }
        }
    }
}
