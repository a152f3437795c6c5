//! The Lennard-Jones calculator and FIRE relaxation against ASE 3.29.0 (`LennardJones(smooth=False)`,
//! `FIRE(UnitCellFilter(atoms))`); fixture: `scripts/make_lj_fixtures.py`.

use std::ops::ControlFlow;

use geode::crystal::{Element, Lattice, Structure};
use geode::energy::{Calculator, LennardJones, RelaxOptions, relax, relax_many};
use nalgebra::Vector3;
use serde_json::Value;

mod common;
use common::*;

fn fixture() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lj_ase.json")).unwrap(),
    )
    .unwrap()
}

fn structure(v: &Value) -> Structure {
    let rows: Vec<[f64; 3]> = serde_json::from_value(v["lattice"].clone()).unwrap();
    let lattice = Lattice::from_row_vectors([rows[0], rows[1], rows[2]]).unwrap();
    let species =
        v["species"].as_array().unwrap().iter().map(|s| Element::from_symbol(s.as_str().unwrap()).unwrap()).collect();
    let frac: Vec<[f64; 3]> = serde_json::from_value(v["frac"].clone()).unwrap();
    Structure::from_frac(lattice, species, frac.iter().map(|f| Vector3::new(f[0], f[1], f[2])).collect()).unwrap()
}

fn calculator(fx: &Value) -> LennardJones {
    LennardJones::new(fx["sigma"].as_f64().unwrap(), fx["epsilon"].as_f64().unwrap())
        .with_cutoff(fx["rc"].as_f64().unwrap())
}

#[test]
fn lennard_jones_matches_ase() {
    let fx = fixture();
    let lj = calculator(&fx);
    for s in fx["structures"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let ev = lj.calculate(&structure(s)).unwrap();
        let e = s["energy"].as_f64().unwrap();
        assert!((ev.energy - e).abs() < 1e-10, "{name}: energy {} vs {e}", ev.energy);
        let forces: Vec<[f64; 3]> = serde_json::from_value(s["forces"].clone()).unwrap();
        for (ours, theirs) in ev.forces.iter().zip(&forces) {
            for k in 0..3 {
                assert!((ours[k] - theirs[k]).abs() < 1e-10, "{name}: force {ours:?} vs {theirs:?}");
            }
        }
        let stress: Vec<[f64; 3]> = serde_json::from_value(s["stress"].clone()).unwrap();
        for a in 0..3 {
            for b in 0..3 {
                assert!(
                    (ev.stress[(a, b)] - stress[a][b]).abs() < 1e-12,
                    "{name}: stress {:?} vs {stress:?}",
                    ev.stress
                );
            }
        }
    }
}

#[test]
fn forces_and_stress_are_derivatives_of_the_energy() {
    // Two species with their own pair parameters, checked by central differences.
    let fx = fixture();
    let s = structure(&fx["structures"][3]);
    let (ar, kr) = (Element::from_symbol("Ar").unwrap(), Element::from_symbol("Kr").unwrap());
    let mut species = s.species().to_vec();
    species[1] = kr;
    species[4] = kr;
    let s = Structure::from_frac(s.lattice.clone(), species, s.frac_coords().to_vec()).unwrap();
    let lj = calculator(&fx).with_pair(kr, kr, 3.6, 0.014).with_pair(ar, kr, 3.5, 0.012);
    let ev = lj.calculate(&s).unwrap();
    let h = 1e-5;
    let cart = s.cart_coords();
    for i in [0, 1, 4] {
        for k in 0..3 {
            let moved = |d: f64| {
                let mut c = cart.clone();
                c[i][k] += d;
                lj.calculate(&Structure::from_cart(s.lattice.clone(), s.species().to_vec(), &c).unwrap())
                    .unwrap()
                    .energy
            };
            let fd = -(moved(h) - moved(-h)) / (2.0 * h);
            assert!((fd - ev.forces[i][k]).abs() < 1e-7, "force {i},{k}: {fd} vs {}", ev.forces[i][k]);
        }
    }
    let m0 = *s.lattice.cart_from_frac();
    for (a, b) in [(0, 0), (1, 2), (2, 1), (2, 2)] {
        let strained = |d: f64| {
            let mut eps = nalgebra::Matrix3::<f64>::identity();
            eps[(a, b)] += d;
            lj.calculate(
                &Structure::from_frac(
                    Lattice::from_cart_from_frac(eps * m0).unwrap(),
                    s.species().to_vec(),
                    s.frac_coords().to_vec(),
                )
                .unwrap(),
            )
            .unwrap()
            .energy
        };
        let fd = (strained(h) - strained(-h)) / (2.0 * h) / s.volume();
        let sym = 0.5 * (ev.stress[(a, b)] + ev.stress[(b, a)]);
        assert!((fd - sym).abs() < 1e-9, "stress {a}{b}: {fd} vs {sym}");
    }
}

#[test]
fn fire_with_unit_cell_filter_follows_ase() {
    let fx = fixture();
    let lj = calculator(&fx);
    for r in fx["relaxations"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let opts = RelaxOptions {
            fmax: r["fmax"].as_f64().unwrap(),
            max_steps: r["max_steps"].as_u64().unwrap() as usize,
            ..RelaxOptions::default()
        };
        let mut seen = Vec::new();
        let out = relax(&lj, &structure(&r["start"]), &opts, &mut |p, _| {
            seen.push(p.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
        let trace = r["trace"].as_array().unwrap();
        assert!(out.converged && !out.cancelled, "{name}");
        assert_eq!(out.steps as u64, r["steps"].as_u64().unwrap(), "{name}: steps");
        assert_eq!(seen.len(), trace.len(), "{name}");
        for (ours, theirs) in seen.iter().zip(trace) {
            let (e, f) = (theirs["energy"].as_f64().unwrap(), theirs["fmax"].as_f64().unwrap());
            assert!((ours.energy - e).abs() < 1e-8, "{name} step {}: energy {} vs {e}", ours.step, ours.energy);
            assert!((ours.fmax - f).abs() < 1e-7, "{name} step {}: fmax {} vs {f}", ours.step, ours.fmax);
        }
        let final_ref = structure(&r["final"]);
        let (a, b) = (out.structure.lattice.params(), final_ref.lattice.params());
        assert!(
            (a.a - b.a).abs() < 1e-6 && (a.b - b.b).abs() < 1e-6 && (a.c - b.c).abs() < 1e-6,
            "{name}: {a:?} vs {b:?}"
        );
        assert!((out.structure.volume() - final_ref.volume()).abs() < 1e-5, "{name}");
    }
}

#[test]
fn batched_fire_takes_the_same_path_as_one_at_a_time() {
    // ASE's relaxations, each twice and a copy strained by 3 %, relaxed two at a time: structures join the
    // batch as others converge, and each takes exactly the steps it takes alone (and ASE's).
    let fx = fixture();
    let lj = calculator(&fx);
    let opts = |r: &Value| RelaxOptions {
        fmax: r["fmax"].as_f64().unwrap(),
        max_steps: r["max_steps"].as_u64().unwrap() as usize,
        ..RelaxOptions::default()
    };
    let runs = fx["relaxations"].as_array().unwrap();
    let o = opts(&runs[0]);
    assert!(runs.iter().all(|r| opts(r) == o), "the fixture's relaxations share their options");
    let mut starts = Vec::new();
    for r in runs {
        let s = structure(&r["start"]);
        let strained = s.with_lattice(Lattice::from_cart_from_frac(s.lattice.cart_from_frac() * 1.03).unwrap());
        starts.extend([s.clone(), strained, s]);
    }
    let mut order = Vec::new();
    let batch = relax_many(&lj, &starts, &o, 2, &mut |_, _, _| ControlFlow::Continue(()), &mut |i, r| {
        assert!(r.is_ok(), "{i}: {r:?}");
        order.push(i);
        ControlFlow::Continue(())
    });
    assert_eq!(order.len(), starts.len());
    for (i, (s, b)) in starts.iter().zip(&batch).enumerate() {
        let one = relax(&lj, s, &o, &mut |_, _| ControlFlow::Continue(())).unwrap();
        let b = b.as_ref().unwrap();
        assert_eq!(b.steps, one.steps, "structure {i}");
        assert_eq!(b.trajectory, one.trajectory, "structure {i}");
        assert_eq!(b.evaluation.energy, one.evaluation.energy, "structure {i}");
        assert!(b.converged && !b.cancelled);
        if i % 3 != 1 {
            assert_eq!(b.steps as u64, runs[i / 3]["steps"].as_u64().unwrap(), "structure {i}: ASE's step count");
        }
    }
    // Stopped after the first result: the others in flight come back cancelled, the rest not relaxed.
    let mut seen = 0;
    let stopped = relax_many(&lj, &starts, &o, 2, &mut |_, _, _| ControlFlow::Continue(()), &mut |_, _| {
        seen += 1;
        ControlFlow::Break(())
    });
    assert_eq!(seen, 1);
    let finished = stopped.iter().filter(|r| r.as_ref().is_ok_and(|r| r.converged)).count();
    let cancelled = stopped.iter().filter(|r| r.as_ref().is_ok_and(|r| r.cancelled)).count();
    let unstarted = stopped.iter().filter(|r| r.as_ref().is_err_and(|e| e.to_string().contains("stopped"))).count();
    assert_eq!((finished, cancelled, unstarted), (1, 1, starts.len() - 2));
}

#[test]
fn relaxation_can_be_stopped_and_rejects_bad_options() {
    let fx = fixture();
    let lj = calculator(&fx);
    let s = structure(&fx["relaxations"][0]["start"]);
    let tight = RelaxOptions { fmax: 1e-3, ..RelaxOptions::default() };
    let out = relax(&lj, &s, &tight, &mut |p, _| {
        if p.step >= 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert!(out.cancelled && out.steps == 3 && out.trajectory.len() == 4);
    assert!(
        relax(&lj, &s, &RelaxOptions { fmax: 0.0, ..RelaxOptions::default() }, &mut |_, _| ControlFlow::Continue(()))
            .is_err()
    );
    // Positions only: the cell stays.
    let fixed =
        relax(&lj, &s, &RelaxOptions { relax_cell: false, fmax: 1e-3, ..RelaxOptions::default() }, &mut |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!((fixed.structure.volume() - s.volume()).abs() < 1e-9 && fixed.converged && fixed.evaluation.fmax() < 1e-3);
}

#[test]
fn energy_and_relax_commands_agree_with_ase() {
    let fx = fixture();
    let dir = std::env::temp_dir().join(format!("geode-relax-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = &fx["relaxations"][0];
    let start = dir.join("start.cif");
    geode::io::write_structures(&start, &[structure(&r["start"])], None).unwrap();
    let pot = format!("lj:sigma={},epsilon={},cutoff={}", fx["sigma"], fx["epsilon"], fx["rc"]);
    let (code, out, err) = geode(&["energy", start.to_str().unwrap(), "--potential", &pot, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let e0 = r["trace"][0]["energy"].as_f64().unwrap();
    // CIF stores coordinates to a finite precision: agreement to 1e-6 eV.
    assert!((v["energy"].as_f64().unwrap() - e0).abs() < 1e-6, "{v} vs {e0}");
    assert_eq!(v["forces"].as_array().unwrap().len(), 4);
    let relaxed = dir.join("relaxed.cif");
    let (code, out, err) = geode(&[
        "relax",
        start.to_str().unwrap(),
        relaxed.to_str().unwrap(),
        "--potential",
        &pot,
        "--fmax",
        "0.001",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["converged"], true);
    assert!((v["energy"].as_f64().unwrap() - r["final_energy"].as_f64().unwrap()).abs() < 1e-6, "{v}");
    let back = geode::io::read_structures(&relaxed).unwrap();
    assert!((back[0].volume() - structure(&r["final"]).volume()).abs() < 1e-3);
    // Not converged within the step budget: exit code 3, the structure still written.
    let (code, out, _) = geode(&[
        "relax",
        start.to_str().unwrap(),
        relaxed.to_str().unwrap(),
        "--potential",
        &pot,
        "--fmax",
        "0.001",
        "--steps",
        "2",
        "--json",
    ]);
    assert_eq!(code, 3);
    assert!(out.contains("\"converged\":false") && out.contains("\"steps\":2"), "{out}");
    let (code, _, err) = geode(&["energy", start.to_str().unwrap(), "--potential", "lj:sigma=3"]);
    assert_ne!(code, 0);
    assert!(err.contains("epsilon"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn relax_job_streams_the_trajectory_and_resumes() {
    use geode::engine::store::SortBy;
    use geode::engine::{Engine, Store};
    let fx = fixture();
    let dir = std::env::temp_dir().join(format!("geode-relax-job-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Three inputs: the ASE relaxations' starting cells, written as one extxyz file.
    let mut starts: Vec<Structure> =
        fx["relaxations"].as_array().unwrap().iter().map(|r| structure(&r["start"])).collect();
    // A fourth, larger input (a 3×3×3 supercell of the strained cell, 108 atoms) takes long enough that
    // the cancel below lands in the middle of its relaxation.
    starts.push(starts[0].repeat([3, 3, 3]).unwrap());
    let file = dir.join("starts.extxyz");
    geode::io::write_structures(&file, &starts, None).unwrap();
    let params = serde_json::json!({
        "structures": [file.to_str().unwrap()],
        "potential": format!("lj:sigma={},epsilon={},cutoff={}", fx["sigma"], fx["epsilon"], fx["rc"]),
        "fmax": 1e-3, "max_steps": 400, "frame_every": 10, "batch": 1,
    });
    let p = dir.join("p.geode");
    let _ = std::fs::remove_file(&p);
    let engine = Engine::new(&p, 1, 1).unwrap();
    let id = engine.submit(&geode::engine::RunSpec::from_params("relax", &params).unwrap(), 0, 0).unwrap();
    // Cancel once the three small inputs are done (progress 3/4), i.e. during the large one, then resume.
    let t0 = std::time::Instant::now();
    while Store::open(&p).unwrap().run(id).unwrap().progress < 0.7 && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    engine.cancel(id).unwrap();
    engine.wait_idle();
    let mid = Store::open(&p).unwrap().run(id).unwrap();
    assert_ne!(mid.status, "finished", "the cancel came too late to test resuming");
    engine.resume(id).unwrap();
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    assert_eq!(run.result.as_ref().unwrap()["converged"], 4);
    let rows =
        store.query_candidates(None, Some(id), Some(&SortBy { key: "seq".into(), descending: false }), None).unwrap();
    let relaxed: Vec<_> = rows.iter().filter(|r| r.stage == "relaxed").collect();
    assert_eq!(relaxed.len(), 4);
    // The interrupted structure was relaxed again from its start: one set of frames, one relaxed row.
    let big = relaxed[3];
    let big_frames: Vec<_> = rows.iter().filter(|row| row.stage == "frame" && row.source == big.source).collect();
    let big_steps =
        big.properties["steps"]["value"].as_f64().unwrap_or_else(|| big.properties["steps"].as_f64().unwrap()) as usize;
    assert_eq!(big_frames.len(), big_steps / 10 + 1);
    assert_eq!(store.metrics(id, "energy:3").unwrap().len(), big_steps + 1);
    for (k, r) in fx["relaxations"].as_array().unwrap().iter().enumerate() {
        // extxyz keeps enough digits for the same trajectory as ASE.
        let e = relaxed[k].properties["energy"]["value"]
            .as_f64()
            .unwrap_or_else(|| relaxed[k].properties["energy"].as_f64().unwrap());
        assert!((e - r["final_energy"].as_f64().unwrap()).abs() < 1e-6, "{k}: {e}");
        let energies = store.metrics(id, &format!("energy:{k}")).unwrap();
        assert_eq!(energies.len(), r["trace"].as_array().unwrap().len(), "{k}: one metric per FIRE step");
        let frames = rows.iter().filter(|row| row.stage == "frame" && row.source == relaxed[k].source).count();
        assert_eq!(frames, r["steps"].as_u64().unwrap() as usize / 10 + 1, "{k}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
