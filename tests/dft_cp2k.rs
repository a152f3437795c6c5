//! CP2K behind the calculator seam, run for real (Debian's `cp2k` and `cp2k-data`, installed by
//! `scripts/setup.sh`): the input written for a structure and parsed back, forces and stress against
//! finite differences of CP2K's own energy, an unconverged SCF reported as a failure, CP2K's own cell
//! relaxation, and the `geode energy` / `geode relax` faces. Cells of 2 atoms at a coarse cutoff and
//! k-mesh: each run takes seconds.

mod common;

use std::ops::ControlFlow;

use common::{geode, json_lines, tmp};
use geode::crystal::{Element, Lattice, Structure};
use geode::energy::cp2k::input::{RunType, kpoint_mesh};
use geode::energy::{CalcError, Calculator, Cp2k, Cp2kSettings, RelaxOptions, relax};
use nalgebra::{Matrix3, Vector3};

/// Coarse but well-defined settings: 150 Ry, a Γ-centred 3×3×3 mesh: a few seconds a run.
fn coarse() -> Cp2kSettings {
    Cp2kSettings { cutoff_ry: 150.0, rel_cutoff_ry: 30.0, kdensity: 0.6, eps_scf: 1e-7, ..Cp2kSettings::default() }
}

/// Tighter SCF and screening, so finite differences of the energy are clean.
fn tight() -> Cp2kSettings {
    Cp2kSettings { eps_scf: 1e-8, eps_default: 1e-12, ..coarse() }
}

fn cp2k(settings: Cp2kSettings) -> Cp2k {
    Cp2k::new(settings).expect("CP2K installed: run scripts/setup.sh (Debian packages cp2k and cp2k-data)")
}

/// Diamond Si in its 2-atom primitive cell (a = 5.43 Å), the second atom pushed off its site.
fn silicon(shift: Vector3<f64>) -> Structure {
    let h = 5.43 / 2.0;
    let lat = Lattice::from_row_vectors([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap();
    let si = Element::from_symbol("Si").unwrap();
    let s = Structure::from_frac(lat.clone(), vec![si, si], vec![Vector3::zeros(), Vector3::repeat(0.25)]).unwrap();
    let mut cart = s.cart_coords();
    cart[1] += shift;
    Structure::from_cart(lat, vec![si, si], &cart).unwrap()
}

fn strained(s: &Structure, eps: &Matrix3<f64>) -> Structure {
    let f = Matrix3::identity() + eps;
    let lat = Lattice::from_cart_from_frac(f * s.lattice.cart_from_frac()).unwrap();
    Structure::from_frac(lat, s.species().to_vec(), s.frac_coords().to_vec()).unwrap()
}

#[test]
fn input_is_written_and_a_real_run_parsed_back() {
    let calc = cp2k(coarse());
    let s = silicon(Vector3::new(0.05, 0.0, 0.0));
    let text = calc.input(&s, &RunType::SinglePoint).unwrap();
    for needle in [
        "RUN_TYPE ENERGY_FORCE",
        "CUTOFF 150",
        "REL_CUTOFF 30",
        "&XC_FUNCTIONAL PBE",
        "BASIS_SET DZVP-MOLOPT-SR-GTH-q4",
        "POTENTIAL GTH-PBE-q4",
        "SCHEME MONKHORST-PACK 3 3 3",
        "METHOD FERMI_DIRAC",
        "STRESS_TENSOR ANALYTICAL",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    // 0.6 per Å⁻¹ asks for 2 divisions; CP2K gets the Γ-centred 3.
    assert_eq!(kpoint_mesh(&s, 0.6), [2, 2, 2]);
    let ev = calc.calculate(&s).unwrap();
    // 8 valence electrons of Si in GTH-PBE-q4: about −3.93 Ha per atom (−106.9 eV/atom).
    assert!((ev.energy_per_atom() - -106.9).abs() < 0.5, "{}", ev.energy_per_atom());
    assert_eq!(ev.forces.len(), 2);
    // Newton's third law in a 2-atom cell, and the push along +x is pulled back.
    assert!((ev.forces[0] + ev.forces[1]).norm() < 1e-3, "{:?}", ev.forces);
    assert!(ev.forces[1].x < -0.05, "{:?}", ev.forces);
    assert!((ev.stress - ev.stress.transpose()).norm() < 1e-6);
    // 5.43 Å is below PBE's lattice constant (5.47 Å): the cell is compressed, so the pressure is positive.
    assert!(ev.pressure_gpa() > 0.5, "{}", ev.pressure_gpa());
    assert!(calc.name().contains("cutoff=150 Ry"), "{}", calc.name());
}

#[test]
fn forces_and_stress_match_finite_differences_of_the_energy() {
    let calc = cp2k(tight());
    let s = silicon(Vector3::new(0.06, 0.03, 0.0));
    let ev = calc.calculate(&s).unwrap();
    // Force on atom 1 along x: −∂E/∂x by central differences (h = 0.01 Å).
    let h = 0.01;
    let e_at = |dx: f64| calc.calculate(&silicon(Vector3::new(0.06 + dx, 0.03, 0.0))).unwrap().energy;
    let fd_force = -(e_at(h) - e_at(-h)) / (2.0 * h);
    assert!(
        (ev.forces[1].x - fd_force).abs() < 0.01 * fd_force.abs().max(0.1),
        "analytic {} vs finite difference {} eV/Å",
        ev.forces[1].x,
        fd_force
    );
    // Stress σ_yz = (1/V) ∂E/∂(2ε_yz) under a symmetric shear and σ_xx = (1/V) ∂E/∂ε_xx, ε = ±0.004.
    let d = 0.004;
    let v = s.volume();
    let e = |m: Matrix3<f64>| calc.calculate(&strained(&s, &m)).unwrap().energy;
    let mut eyz = Matrix3::zeros();
    eyz[(1, 2)] = d / 2.0;
    eyz[(2, 1)] = d / 2.0;
    let fd_yz = (e(eyz) - e(-eyz)) / (2.0 * d) / v;
    let mut exx = Matrix3::zeros();
    exx[(0, 0)] = d;
    let fd_xx = (e(exx) - e(-exx)) / (2.0 * d) / v;
    let gpa = geode::energy::calculator::EV_PER_ANG3_IN_GPA;
    for (name, analytic, fd) in [("yz", ev.stress[(1, 2)], fd_yz), ("xx", ev.stress[(0, 0)], fd_xx)] {
        assert!(
            (analytic - fd).abs() * gpa < 0.05 + 0.03 * fd.abs() * gpa,
            "σ_{name}: analytic {:.4} GPa vs finite difference {:.4} GPa",
            analytic * gpa,
            fd * gpa
        );
    }
}

#[test]
fn an_unconverged_scf_is_a_failure_not_a_number() {
    let calc = cp2k(Cp2kSettings { max_scf: 2, ..coarse() });
    match calc.calculate(&silicon(Vector3::new(0.05, 0.0, 0.0))) {
        Err(CalcError::Failed { reason, .. }) => {
            assert!(reason.contains("did not converge in 2 steps"), "{reason}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn cp2k_relaxes_positions_and_cell_with_its_own_optimiser() {
    let calc = cp2k(coarse());
    let start = strained(&silicon(Vector3::new(0.05, 0.0, 0.0)), &(Matrix3::identity() * 0.01));
    let mut seen = 0;
    let opts = RelaxOptions { fmax: 0.02, max_steps: 40, ..RelaxOptions::default() };
    let r = relax(&calc, &start, &opts, &mut |_, _| {
        seen += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(r.converged, "{:?}", r.trajectory);
    assert!(seen >= 2 && seen == r.trajectory.len());
    // Each step is reported once its forces are in, so every step has its largest force.
    assert!(r.trajectory.iter().all(|s| s.fmax.is_finite()), "{:?}", r.trajectory);
    assert!(r.evaluation.fmax() < 0.02, "{}", r.evaluation.fmax());
    assert!(r.evaluation.pressure_gpa().abs() < 0.05, "{} GPa", r.evaluation.pressure_gpa());
    assert!(r.evaluation.energy < r.trajectory[0].energy);
    // The displaced atom went back to its diamond site: the bond lengths agree.
    let d = r.structure.distance(0, 1);
    assert!((d - r.structure.lattice.lengths()[0] * (3.0f64 / 8.0).sqrt()).abs() < 0.01, "{d}");
    // Stopping at the second evaluation kills CP2K and reports a cancelled relaxation.
    let mut n = 0;
    let stopped = relax(&calc, &start, &opts, &mut |_, _| {
        n += 1;
        if n >= 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert!(stopped.cancelled && !stopped.converged && stopped.trajectory.len() == 2);
}

#[test]
fn geode_energy_and_relax_take_a_cp2k_spec() {
    let dir = tmp("dft-cli");
    let file = dir.join("si.cif");
    let s = silicon(Vector3::new(0.05, 0.0, 0.0));
    std::fs::write(&file, geode::io::cif::write(&s, "Si")).unwrap();
    let spec = "cp2k:cutoff=150,rel_cutoff=30,kdensity=0.6,eps_scf=1e-07";
    let (code, out, err) = geode(&["energy", file.to_str().unwrap(), "--potential", spec, "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["potential"].as_str().unwrap().starts_with("cp2k("));
    let direct = cp2k(coarse()).calculate(&s).unwrap();
    assert!((rows[0]["energy"].as_f64().unwrap() - direct.energy).abs() < 1e-6);
    // A typo in the spec is named with the closest key, before anything runs.
    let (code, _, err) = geode(&["energy", file.to_str().unwrap(), "--potential", "cp2k:kdensty=2"]);
    assert_ne!(code, 0);
    assert!(err.contains("did you mean kdensity"), "{err}");
    let out_file = dir.join("relaxed.cif");
    let (code, out, err) = geode(&[
        "relax",
        file.to_str().unwrap(),
        out_file.to_str().unwrap(),
        "--potential",
        spec,
        "--fmax",
        "0.05",
        "--fixed-cell",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["converged"], true, "{v}");
    assert!(out_file.is_file());
}
