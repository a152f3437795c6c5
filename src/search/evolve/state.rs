//! The search's serialisable state: every individual with its lineage, the population, walkers and
//! particles, the generation in flight and the per-generation figures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::operators::Operator;
use crate::crystal::Structure;

/// One evaluated structure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Individual {
    /// Order of evaluation in the run, from 0.
    pub id: usize,
    pub generation: usize,
    pub operator: Operator,
    /// Ids of the parents.
    pub parents: Vec<usize>,
    /// The relaxed structure.
    pub structure: Structure,
    pub energy_per_atom: f64,
    /// Named values (eV/atom, eV): `energy_per_atom`, `e_above_hull`, forward-model predictions.
    pub values: BTreeMap<String, f64>,
    /// One cost per objective (minimised); +∞ for failed relaxations.
    pub costs: Vec<f64>,
    /// Id of an earlier individual this one duplicates.
    pub duplicate_of: Option<usize>,
    /// Relaxation steps taken.
    pub relax_steps: usize,
    /// The structure as proposed, before relaxation (what the `bo` surrogate learns from).
    #[serde(default)]
    pub start: Option<Structure>,
}

impl Individual {
    pub fn ok(&self) -> bool {
        self.costs.iter().all(|c| c.is_finite())
    }
}

/// A structure to evaluate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    pub structure: Structure,
    pub operator: Operator,
    pub parents: Vec<usize>,
    /// The walker or particle this proposal belongs to (`anneal`, `swarm`).
    pub slot: Option<usize>,
}

impl Proposal {
    /// A structure drawn at random (no parents).
    pub(super) fn random(structure: Structure) -> Proposal {
        Proposal { structure, operator: Operator::Random, parents: Vec::new(), slot: None }
    }
}

/// Per-generation figures (what the studio plots).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerationStats {
    pub generation: usize,
    pub evaluated: usize,
    /// Best first-objective cost so far.
    pub best_cost: f64,
    pub best_id: Option<usize>,
    /// Mean first-objective cost of the population.
    pub mean_cost: f64,
    /// Mean pairwise Oganov–Valle cosine distance within the population.
    pub diversity: f64,
    /// Individuals on the first Pareto front of the population.
    pub front_size: usize,
    pub duplicates: usize,
}

/// Everything needed to continue a search (serialisable).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct EvolveState {
    pub generation: usize,
    pub individuals: Vec<Individual>,
    /// Ids of the current population (parents pool).
    pub population: Vec<usize>,
    /// `anneal`: the walkers' current ids; `swarm`: each particle's current id.
    pub walkers: Vec<usize>,
    /// `swarm`: each particle's best id.
    pub personal_best: Vec<usize>,
    pub temperature: f64,
    /// The generation being evaluated.
    pub pending: Vec<Proposal>,
    pub history: Vec<GenerationStats>,
    /// Structures injected by hand, evaluated with the next generation.
    pub injected: Vec<Structure>,
}
