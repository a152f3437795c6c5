//! What DFT codes write, read back: VASP's `vasprun.xml` ([`vasprun`]) and Quantum ESPRESSO's XML output
//! ([`qe_xml`], schema `qes`), both to one [`DftResult`] in Geode's units and ASE's conventions: energies
//! in eV, forces in eV/Å, stress in eV/Å³ positive when the cell pulls inwards (`σ = (1/V) ∂E/∂ε`, the
//! negative of the pressure-like stress both codes print).
//!
//! Layer 2 (`io`): parsing only; `energy::command` runs the codes.

pub mod qe_xml;
pub mod vasprun;

use nalgebra::{Matrix3, Vector3};

use crate::crystal::Structure;

/// eV/Å³ in kBar (VASP's stress unit).
pub const EV_PER_ANG3_IN_KBAR: f64 = 1_602.176_634;

/// The last ionic step of a DFT run.
#[derive(Debug, Clone, PartialEq)]
pub struct DftResult {
    /// The structure of the last ionic step (Å).
    pub structure: Structure,
    /// The energy ASE reports (eV): VASP's `e_0_energy` (σ → 0), Quantum ESPRESSO's `etot`.
    pub energy: f64,
    /// The free energy the forces belong to (eV): VASP's `e_fr_energy`; equals `energy` for QE.
    pub free_energy: f64,
    /// eV/Å, one row per site.
    pub forces: Option<Vec<Vector3<f64>>>,
    /// eV/Å³, ASE's sign.
    pub stress: Option<Matrix3<f64>>,
    /// The last electronic minimisation converged (pymatgen's `converged_electronic`).
    pub electronic_converged: bool,
    /// The ionic relaxation converged, or there was none to converge (pymatgen's `converged_ionic`).
    pub ionic_converged: bool,
    /// Ionic steps in the file.
    pub ionic_steps: usize,
}

fn floats(text: &str) -> Vec<f64> {
    text.split_whitespace().filter_map(|w| w.parse::<f64>().ok()).collect()
}
