//! Errors of the crystal core.

use thiserror::Error;

/// Everything that can go wrong while building or analysing a crystal.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CrystalError {
    #[error("unknown element symbol {0:?}")]
    UnknownElement(String),
    #[error("atomic number {0} is outside the element table (1..=118)")]
    UnknownAtomicNumber(u32),
    #[error("lattice is singular or degenerate: volume {volume_ang3:e} Å³")]
    SingularLattice { volume_ang3: f64 },
    #[error("non-finite value {value} in {what}")]
    NonFinite { what: String, value: f64 },
    #[error("{n_species} species but {n_coords} coordinates")]
    LengthMismatch { n_species: usize, n_coords: usize },
    #[error("structure has no sites")]
    Empty,
    #[error("invalid lattice parameters: {0}")]
    InvalidParameters(String),
    #[error("symmetry search failed: {0}")]
    Symmetry(String),
    #[error("invalid formula {formula:?}: {reason}")]
    InvalidFormula { formula: String, reason: String },
}
