//! Searches over candidate crystals: enumeration by substitution into templates, uncertainty-aware
//! constraints and objectives with Pareto ranking (the screening funnel is the engine's `screen` job).
//! Evolution, swarm, annealing and Bayesian optimisation come next.
//!
//! Layer 4: depends on `crystal`, `chem`, `data`, `ml` and `energy`.

pub mod enumerate;
pub mod generate;
pub mod objectives;
