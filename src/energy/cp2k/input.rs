//! CP2K input files written for a structure: PBE, GTH pseudopotentials, MOLOPT basis sets, plane-wave
//! grids by cutoff, Monkhorst–Pack k-points by a density, Fermi–Dirac smearing, Broyden mixing; a single
//! point with forces and the analytical stress, or CP2K's own BFGS relaxation of positions (and the cell).
//!
//! Units in the file: Å for the cell and positions, Ry for cutoffs, K for the electronic temperature,
//! Hartree/bohr for force thresholds, bar for the pressure tolerance (`fmax · N / V`, Geode's FIRE criterion
//! for the cell with its default cell factor N).

use std::fmt::Write as _;

use super::basis::{BASIS_FILES, BasisTable, POTENTIAL_FILE};
use super::{BOHR_IN_ANG, Cp2kSettings, HARTREE_IN_EV};
use crate::crystal::{Element, Structure};
use crate::energy::calculator::{CalcError, EV_PER_ANG3_IN_GPA};

/// The project name CP2K prefixes its files with.
pub const PROJECT: &str = "geode";

/// What the run does.
#[derive(Debug, Clone, PartialEq)]
pub enum RunType {
    /// Energy, forces and stress of the structure as given.
    SinglePoint,
    /// CP2K's BFGS on the positions (`GEO_OPT`) or on positions and cell (`CELL_OPT`, `DIRECT_CELL_OPT`).
    Relax {
        cell: bool,
        /// Largest force component for convergence (eV/Å).
        fmax: f64,
        /// At most this many optimiser steps.
        max_steps: usize,
    },
}

/// The k-mesh CP2K is given: [`kpoint_mesh`] with every even count raised to the next odd one, so the
/// Monkhorst–Pack grid contains Γ (even grids are shifted off it, and on fcc and hexagonal cells break the
/// lattice's symmetry: a cell relaxation then distorts a cubic crystal).
pub fn gamma_centred_mesh(structure: &Structure, kdensity: f64) -> [usize; 3] {
    kpoint_mesh(structure, kdensity).map(|n| if n % 2 == 0 { n + 1 } else { n })
}

/// Monkhorst–Pack divisions for `kdensity` (points per Å⁻¹ of reciprocal length, ASE's `kptdensity`
/// convention: `n_i = ⌈2π · kdensity · |b_i|⌉` with `b_i` the reciprocal vectors without 2π).
pub fn kpoint_mesh(structure: &Structure, kdensity: f64) -> [usize; 3] {
    let recip = structure.lattice.reciprocal_lattice_crystallographic();
    let l = recip.lengths();
    [0, 1, 2].map(|i| ((2.0 * std::f64::consts::PI * kdensity * l[i]) - 1e-9).ceil().max(1.0) as usize)
}

/// The input file for `structure`; errors name an element the data files have no basis or potential for.
pub fn write(
    structure: &Structure,
    settings: &Cp2kSettings,
    table: &BasisTable,
    run: &RunType,
) -> Result<String, CalcError> {
    let mut kinds: Vec<Element> = structure.species().to_vec();
    kinds.sort();
    kinds.dedup();
    let mut valence = 0u32;
    for &e in structure.species() {
        valence += table
            .get(e)
            .ok_or_else(|| CalcError::UnsupportedElement { calculator: "cp2k".into(), element: e.symbol().into() })?
            .valence;
    }
    let mesh = gamma_centred_mesh(structure, settings.kdensity);
    let mut s = String::new();
    let w = &mut s;
    let run_type = match run {
        RunType::SinglePoint => "ENERGY_FORCE",
        RunType::Relax { cell: true, .. } => "CELL_OPT",
        RunType::Relax { cell: false, .. } => "GEO_OPT",
    };
    let _ = writeln!(w, "# Written by Geode: {}", structure.reduced_formula());
    let _ = writeln!(w, "&GLOBAL\n  PROJECT {PROJECT}\n  RUN_TYPE {run_type}\n  PRINT_LEVEL MEDIUM\n&END GLOBAL");
    let _ = writeln!(w, "&FORCE_EVAL\n  METHOD Quickstep\n  STRESS_TENSOR ANALYTICAL\n  &DFT");
    for f in BASIS_FILES {
        if table.data_dir.join(f).is_file() {
            let _ = writeln!(w, "    BASIS_SET_FILE_NAME {}", table.data_dir.join(f).display());
        }
    }
    let _ = writeln!(w, "    POTENTIAL_FILE_NAME {}", table.data_dir.join(POTENTIAL_FILE).display());
    let _ = writeln!(
        w,
        "    &MGRID\n      CUTOFF {}\n      REL_CUTOFF {}\n    &END MGRID",
        settings.cutoff_ry, settings.rel_cutoff_ry
    );
    let _ = writeln!(w, "    &QS\n      EPS_DEFAULT {:e}\n    &END QS", settings.eps_default);
    if mesh != [1, 1, 1] {
        let _ = writeln!(
            w,
            "    &KPOINTS\n      SCHEME MONKHORST-PACK {} {} {}\n    &END KPOINTS",
            mesh[0], mesh[1], mesh[2]
        );
    }
    // Unoccupied bands for the smearing: a third of the occupied ones, at least 8.
    let added = ((valence as f64 / 2.0) * 0.3).ceil().max(8.0) as usize;
    let _ = writeln!(w, "    &SCF\n      MAX_SCF {}\n      EPS_SCF {:e}", settings.max_scf, settings.eps_scf);
    if settings.smear_kelvin > 0.0 {
        let _ = writeln!(
            w,
            "      ADDED_MOS {added}\n      &SMEAR ON\n        METHOD FERMI_DIRAC\n        ELECTRONIC_TEMPERATURE [K] {}\n      &END SMEAR",
            settings.smear_kelvin
        );
    }
    let _ = writeln!(
        w,
        "      &MIXING\n        METHOD BROYDEN_MIXING\n        ALPHA {}\n        NBROYDEN 8\n      &END MIXING\n    &END SCF",
        settings.mixing
    );
    let _ = writeln!(w, "    &XC\n      &XC_FUNCTIONAL PBE\n      &END XC_FUNCTIONAL\n    &END XC\n  &END DFT");
    let _ = writeln!(w, "  &SUBSYS\n    &CELL");
    for (name, row) in ["A", "B", "C"].iter().zip(structure.lattice.row_vectors()) {
        let _ = writeln!(w, "      {name} {:.10} {:.10} {:.10}", row[0], row[1], row[2]);
    }
    let _ = writeln!(w, "      PERIODIC XYZ\n    &END CELL\n    &COORD");
    for (e, r) in structure.species().iter().zip(structure.cart_coords()) {
        let _ = writeln!(w, "      {} {:.10} {:.10} {:.10}", e.symbol(), r.x, r.y, r.z);
    }
    let _ = writeln!(w, "    &END COORD");
    for e in kinds {
        let k = table.get(e).expect("checked above");
        let _ = writeln!(
            w,
            "    &KIND {}\n      BASIS_SET {}\n      POTENTIAL {}\n    &END KIND",
            e.symbol(),
            k.basis,
            k.potential
        );
    }
    let _ = writeln!(w, "  &END SUBSYS");
    let _ = writeln!(
        w,
        "  &PRINT\n    &FORCES ON\n    &END FORCES\n    &STRESS_TENSOR ON\n    &END STRESS_TENSOR\n  &END PRINT\n&END FORCE_EVAL"
    );
    if let RunType::Relax { cell, fmax, max_steps } = run {
        let max_force = fmax / (HARTREE_IN_EV / BOHR_IN_ANG);
        let section = if *cell { "CELL_OPT" } else { "GEO_OPT" };
        let _ = writeln!(w, "&MOTION\n  &{section}\n    OPTIMIZER BFGS\n    MAX_ITER {max_steps}");
        let _ = writeln!(w, "    MAX_FORCE {max_force:.6e}\n    RMS_FORCE {max_force:.6e}");
        if *cell {
            // Geode's FIRE judges the cell rows by fmax with the cell factor N: a stress of fmax · N / V (eV/Å³).
            // CP2K's default 100 bar is below the stress noise of a Gaussian basis at finite cutoff.
            let tol_bar = (fmax * structure.n_sites() as f64 / structure.volume()) * EV_PER_ANG3_IN_GPA * 1e4;
            let _ = writeln!(w, "    TYPE DIRECT_CELL_OPT\n    PRESSURE_TOLERANCE [bar] {:.1}", tol_bar.max(100.0));
        }
        let _ = writeln!(w, "  &END {section}");
        let _ = writeln!(
            w,
            "  &PRINT\n    &TRAJECTORY ON\n      FORMAT XYZ\n    &END TRAJECTORY\n    &CELL ON\n    &END CELL\n  &END PRINT\n&END MOTION"
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Lattice;
    use nalgebra::Vector3;

    #[test]
    fn kpoint_mesh_follows_the_density() {
        let si = Element::from_symbol("Si").unwrap();
        let lat = Lattice::from_row_vectors([[0.0, 2.715, 2.715], [2.715, 0.0, 2.715], [2.715, 2.715, 0.0]]).unwrap();
        let s = Structure::from_frac(lat, vec![si, si], vec![Vector3::zeros(), Vector3::repeat(0.25)]).unwrap();
        // |b| = √3 / (2 · 2.715) Å⁻¹ = 0.319; 2π · 3 · 0.319 = 6.01 → 7.
        assert_eq!(kpoint_mesh(&s, 3.0), [7, 7, 7]);
        assert_eq!(kpoint_mesh(&s, 0.1), [1, 1, 1]);
        let long = Structure::from_frac(
            Lattice::from_row_vectors([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 30.0]]).unwrap(),
            vec![si],
            vec![Vector3::zeros()],
        )
        .unwrap();
        assert_eq!(kpoint_mesh(&long, 2.0), [5, 5, 1]);
        assert_eq!(kpoint_mesh(&s, 0.6), [2, 2, 2]);
        assert_eq!(gamma_centred_mesh(&s, 0.6), [3, 3, 3]);
        assert_eq!(gamma_centred_mesh(&long, 2.0), [5, 5, 1]);
    }
}
