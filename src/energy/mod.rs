//! Energies of crystals: convex-hull phase diagrams (stability from any set of reference energies).
//! Calculators (the interatomic potential) and relaxation are the next layer of this module.
//!
//! Layer 3: depends on `crystal` and `data` only.

pub mod hull;

pub use hull::{Decomposition, HullError, HullPoint, PhaseDiagram, PhaseEntry};
