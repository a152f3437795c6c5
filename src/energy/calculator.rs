//! The calculator seam: every energy model (the Lennard-Jones pair potential, CHGNet, a user's
//! TorchScript potential, CP2K, a user's DFT command) answers one question — energy, forces and stress of a periodic structure — behind one trait,
//! as ASE's `Calculator` does.
//!
//! Units and conventions (ASE's): energy in eV, forces in eV/Å (Cartesian, `F = −∂E/∂r`), stress as the
//! 3 × 3 tensor `σ = (1/V) ∂E/∂ε` in eV/Å³, positive when the cell pulls inwards (tensile), so the pressure
//! is `−tr σ / 3`. [`Evaluation::stress_gpa`] converts to GPa.
//!
//! This file holds the trait only: the potentials live in their own modules and the factory from a
//! text spec (`chgnet`, `lj:…`, `torchscript:…`) in [`super::spec`].

use std::ops::ControlFlow;

use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;
use thiserror::Error;

use super::relax::{RelaxOptions, RelaxStep, Relaxation};
use crate::crystal::{Element, Structure};

/// eV/Å³ in GPa.
pub const EV_PER_ANG3_IN_GPA: f64 = 160.217_663_4;

/// What a calculator can fail on.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CalcError {
    #[error("{calculator} has no parameters for {element}")]
    UnsupportedElement { calculator: String, element: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{calculator} failed: {reason}")]
    Failed { calculator: String, reason: String },
}

/// Energy, forces and stress of one structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Total energy (eV).
    pub energy: f64,
    /// Force on each site (eV/Å, Cartesian).
    pub forces: Vec<Vector3<f64>>,
    /// Stress tensor (eV/Å³, ASE's sign: `(1/V) ∂E/∂ε`).
    pub stress: Matrix3<f64>,
    /// Energy of each site (eV) when the model decomposes it.
    pub site_energies: Option<Vec<f64>>,
    /// Magnetic moment of each site (μ_B) when the model predicts them (CHGNet).
    pub magmoms: Option<Vec<f64>>,
}

impl Evaluation {
    pub fn energy_per_atom(&self) -> f64 {
        self.energy / self.forces.len().max(1) as f64
    }

    /// Stress in GPa (same sign convention).
    pub fn stress_gpa(&self) -> Matrix3<f64> {
        self.stress * EV_PER_ANG3_IN_GPA
    }

    /// Pressure `−tr σ / 3` (GPa).
    pub fn pressure_gpa(&self) -> f64 {
        -self.stress_gpa().trace() / 3.0
    }

    /// Largest force magnitude (eV/Å).
    pub fn fmax(&self) -> f64 {
        self.forces.iter().map(|f| f.norm()).fold(0.0, f64::max)
    }
}

/// An energy model.
pub trait Calculator: Send + Sync {
    /// Name for logs and provenance (e.g. `lennard-jones(σ=3.4 Å, ε=0.0104 eV, rc=10.2 Å)`).
    fn name(&self) -> String;

    /// Whether the model can evaluate structures containing `element` (all elements by default).
    fn supports(&self, element: Element) -> bool {
        let _ = element;
        true
    }

    /// Energy, forces and stress of `structure`.
    fn calculate(&self, structure: &Structure) -> Result<Evaluation, CalcError>;

    /// Many structures; the default runs [`Calculator::calculate`] on the shared thread pool. Models that
    /// batch natively (one forward pass for many graphs) override it.
    fn calculate_batch(&self, structures: &[Structure]) -> Vec<Result<Evaluation, CalcError>> {
        structures.par_iter().map(|s| self.calculate(s)).collect()
    }

    /// Whether the model relaxes with an optimiser of its own ([`Calculator::relax_natively`]).
    fn relaxes_natively(&self) -> bool {
        false
    }

    /// A relaxation run by the model's own optimiser (a DFT code's BFGS, its wavefunction kept from step to
    /// step), reporting each step to `on_step` and stopping on `Break`. `None` (the default, or options the
    /// code cannot honour) lets Geode's FIRE drive [`Calculator::calculate`] ([`super::relax::relax`]).
    fn relax_natively(
        &self,
        start: &Structure,
        opts: &RelaxOptions,
        on_step: &mut dyn FnMut(&RelaxStep, &Structure) -> ControlFlow<()>,
    ) -> Option<Result<Relaxation, CalcError>> {
        let _ = (start, opts, on_step);
        None
    }
}
