//! The DFT output readers against the reference tools' readings of public files
//! (`tests/fixtures/dft/`, sources and licences in SOURCES.md; values in expected.json written by
//! `scripts/reference/dft_parsers.py` with pymatgen 2026.10.24, ASE 3.29.0 and qeschema 1.5.2):
//! VASP's vasprun.xml (parsevasp's and ASE's test files) against ASE's `read_vasp_xml` and pymatgen's
//! `Vasprun`; Quantum ESPRESSO's XML of two real pw.x 6.7 runs against ASE's reading of the same runs'
//! text output.

mod common;

use std::path::PathBuf;

use geode::io::dft::{qe_xml, vasprun};
use serde_json::Value;

fn dir() -> PathBuf {
    common::root().join("tests/fixtures/dft")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(f).collect()).collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

/// The structure, forces and stress of `r` against ASE's reading `ase` (tolerances: Å for the cell and
/// positions, eV/Å, eV/Å³).
fn compare_with_ase(r: &geode::io::dft::DftResult, ase: &Value, name: &str, tol: [f64; 3]) {
    let lat = rows(&ase["lattice"]);
    let ours = r.structure.lattice.row_vectors();
    for i in 0..3 {
        for j in 0..3 {
            close(ours[i][j], lat[i][j], tol[0], &format!("{name} lattice"));
        }
    }
    let species: Vec<&str> = ase["species"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(r.structure.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), species, "{name}");
    for (a, b) in r.structure.cart_coords().iter().zip(rows(&ase["cart_positions"])) {
        for k in 0..3 {
            close(a[k], b[k], tol[0], &format!("{name} positions"));
        }
    }
    for (a, b) in r.forces.as_ref().unwrap().iter().zip(rows(&ase["forces"])) {
        for k in 0..3 {
            close(a[k], b[k], tol[1], &format!("{name} forces"));
        }
    }
    let s = r.stress.unwrap();
    let want = rows(&ase["stress_ase_3x3"]);
    for i in 0..3 {
        for j in 0..3 {
            close(s[(i, j)], want[i][j], tol[2], &format!("{name} stress"));
        }
    }
}

#[test]
fn vasprun_matches_ase_and_pymatgen_on_public_files() {
    let exp = expected();
    let files = exp["vasp"].as_object().unwrap();
    assert_eq!(files.len(), 4);
    for (name, e) in files {
        let r = vasprun::read(&dir().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        let ase = &e["ase"];
        let pmg = &e["pymatgen"];
        // Energies as ASE reports them (σ → 0, the VASP 5.4 e_0_energy bug repaired, PV removed under PSTRESS).
        close(r.energy, f(&ase["energy"]), 1e-6, &format!("{name} energy"));
        close(r.free_energy, f(&ase["free_energy"]), 1e-6, &format!("{name} free energy"));
        // pymatgen agrees where there is no PSTRESS (it keeps the PV term in final_energy).
        if f(&e["raw"]["params"]["PSTRESS"]) == 0.0 {
            close(r.energy, f(&pmg["final_energy"]), 1e-6, &format!("{name} pymatgen final_energy"));
        }
        assert_eq!(r.ionic_steps, pmg["n_ionic_steps"].as_u64().unwrap() as usize, "{name}");
        assert_eq!(r.electronic_converged, pmg["converged_electronic"].as_bool().unwrap(), "{name}");
        assert_eq!(r.ionic_converged, pmg["converged_ionic"].as_bool().unwrap(), "{name}");
        // The last step's structure, forces and stress.
        compare_with_ase(&r, ase, name, [1e-5, 1e-7, 1e-9]);
    }
}

#[test]
fn quantum_espresso_xml_matches_ase_reading_the_same_runs_text_output() {
    let exp = expected();
    let files = exp["qe"].as_object().unwrap();
    assert_eq!(files.len(), 2);
    for (name, e) in files {
        let r = qe_xml::read(&dir().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        let ase = &e["ase_espresso_out"];
        // ASE reads the Ry text output with CODATA 2006, pw.x 6.7 writes Ha with CODATA 2018: ~1e-7 relative.
        close(r.energy, f(&ase["energy"]), 5e-5, &format!("{name} energy"));
        close(r.energy, f(&e["xml_converted"]["energy_eV"]), 1e-4, &format!("{name} energy (xml, ASE units)"));
        assert!(r.electronic_converged, "{name}");
        assert_eq!(r.ionic_converged, e["raw_xml"]["opt_converged"].as_bool().unwrap_or(true), "{name}");
        compare_with_ase(&r, ase, name, [1e-5, 1e-5, 1e-6]);
    }
}

#[test]
fn truncated_and_foreign_files_are_refused_with_the_file_named() {
    let text = std::fs::read_to_string(dir().join("vasp/parsevasp_basic.vasprun.xml")).unwrap();
    let cut = &text[..text.len() / 2];
    let e = vasprun::parse(cut, "run/vasprun.xml").unwrap_err().to_string();
    assert!(e.contains("run/vasprun.xml") && e.contains("XML"), "{e}");
    let qe = std::fs::read_to_string(dir().join("qe-si/si.xml")).unwrap();
    let e = qe_xml::parse(&text, "x.xml").unwrap_err().to_string();
    assert!(e.contains("not Quantum ESPRESSO"), "{e}");
    // A QE file whose run stopped before <output> was written.
    let start = qe.find("<output>").unwrap();
    let end = qe.find("</output>").unwrap() + "</output>".len();
    let no_output = format!("{}{}", &qe[..start], &qe[end..]);
    let e = qe_xml::parse(&no_output, "pwscf.xml").unwrap_err().to_string();
    assert!(e.contains("no <output>"), "{e}");
}
