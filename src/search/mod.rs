//! Searches over candidate crystals: enumeration by substitution into templates, uncertainty-aware
//! constraints and objectives with Pareto ranking (the screening funnel is the engine's `screen` job).
//! latent-space generation campaigns and their post-processing (symmetrise, relax, S.U.N. in `polish`), random symmetric structures through Wyckoff positions, and global
//! structure search (evolutionary, swarm, annealing, random search) in `evolve`.
//!
//! Layer 4: depends on `crystal`, `chem`, `data`, `ml` and `energy`.

pub mod enumerate;
pub mod evolve;
pub mod generate;
pub mod objectives;
pub mod polish;
pub mod random_structure;
