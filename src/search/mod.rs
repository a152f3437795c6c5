//! Searches over candidate crystals. So far: enumeration of candidates by substitution into templates.
//! The screening funnel, evolution, swarm, annealing and Bayesian optimisation come next.
//!
//! Layer 4: depends on `crystal`, `chem`, `data`, `ml` and `energy`.

pub mod enumerate;
