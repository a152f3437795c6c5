//! Energies of crystals: the calculator seam (energy, forces and stress from any model behind one trait),
//! the CHGNet universal potential on tch, the Lennard-Jones pair potential, FIRE relaxation with a unit-cell filter, and convex-hull phase
//! diagrams (stability from any set of reference energies).
//!
//! Layer 3: depends on `crystal` and `data` only.

pub mod calculator;
pub mod chgnet;
pub mod command;
pub mod cp2k;
pub mod formation_scale;
pub mod hull;
pub mod lj;
pub mod on_hull;
pub mod references;
pub mod relax;
pub mod spec;
pub mod system_refs;
pub mod torchscript;

pub use calculator::{CalcError, Calculator, Evaluation};
pub use chgnet::Chgnet;
pub use cp2k::{Cp2k, Cp2kSettings};
pub use formation_scale::FormationScale;
pub use hull::{Decomposition, HullError, HullPoint, PhaseDiagram, PhaseEntry};
pub use lj::LennardJones;
pub use on_hull::{HullChoice, PotentialHull};
pub use relax::{Next, RelaxOptions, RelaxStep, Relaxation, Relaxer, relax, relax_many};
pub use spec::{PotentialSpec, from_spec};
