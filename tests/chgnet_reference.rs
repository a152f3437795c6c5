//! CHGNet on tch against Python CHGNet 0.4.2 (model 0.3.0): energies, forces, stresses, magnetic moments
//! and graph sizes on dataset crystals and rattled and strained copies, and FIRE + UnitCellFilter
//! relaxations against ASE's driven by CHGNetCalculator. Fixture: `scripts/make_chgnet_fixtures.py`.

use std::ops::ControlFlow;

use geode::crystal::matcher::StructureMatcher;
use geode::crystal::{Element, Lattice, Structure};
use geode::energy::chgnet::{Chgnet, CrystalGraph};
use geode::energy::{Calculator, RelaxOptions, relax};
use nalgebra::Vector3;
use serde_json::Value;

/// eV/Å³ in GPa, CHGNet's factor.
const GPA: f64 = 160.21766208;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chgnet_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn structure(v: &Value) -> Structure {
    let rows: Vec<[f64; 3]> = serde_json::from_value(v["lattice"].clone()).unwrap();
    let lattice = Lattice::from_row_vectors([rows[0], rows[1], rows[2]]).unwrap();
    let species =
        v["z"].as_array().unwrap().iter().map(|z| Element::from_z(z.as_u64().unwrap() as u32).unwrap()).collect();
    let frac: Vec<[f64; 3]> = serde_json::from_value(v["frac"].clone()).unwrap();
    Structure::from_frac(lattice, species, frac.iter().map(|f| Vector3::new(f[0], f[1], f[2])).collect()).unwrap()
}

fn init() {
    // One libtorch thread: the test harness already runs tests in parallel.
    tch::set_num_threads(1);
}

#[test]
fn graphs_have_chgnets_sizes() {
    let fx = fixture();
    for r in fx["structures"].as_array().unwrap() {
        let g = CrystalGraph::chgnet(&structure(r));
        let name = format!("{} ({})", r["name"], r["kind"]);
        assert_eq!(g.edges.len() as u64, r["n_directed"].as_u64().unwrap(), "{name}: directed edges");
        assert_eq!(
            g.undirected_to_directed.len() as u64,
            r["n_undirected"].as_u64().unwrap(),
            "{name}: undirected bonds"
        );
        assert_eq!(g.angles.len() as u64, r["n_angles"].as_u64().unwrap(), "{name}: angles");
    }
}

#[test]
fn energies_forces_stresses_and_magmoms_match_python_chgnet() {
    init();
    let fx = fixture();
    let records = fx["structures"].as_array().unwrap();
    assert!(records.len() >= 300, "the fixture holds {} structures", records.len());
    let structures: Vec<Structure> = records.iter().map(structure).collect();
    let results = Chgnet::pretrained().calculate_batch(&structures);
    let (mut worst_e, mut worst_f, mut worst_s, mut worst_m) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for ((r, s), res) in records.iter().zip(&structures).zip(&results) {
        let name = format!("{} ({})", r["name"], r["kind"]);
        let ev = res.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = s.n_sites() as f64;
        let de = (ev.energy - r["energy"].as_f64().unwrap()).abs() / n;
        worst_e = worst_e.max(de);
        assert!(de <= 1e-3, "{name}: |ΔE| = {de} eV/atom");
        let forces: Vec<[f64; 3]> = serde_json::from_value(r["forces"].clone()).unwrap();
        for (ours, theirs) in ev.forces.iter().zip(&forces) {
            for k in 0..3 {
                let d = (ours[k] - theirs[k]).abs();
                worst_f = worst_f.max(d);
                assert!(d <= 5e-3, "{name}: force {ours:?} vs {theirs:?}");
            }
        }
        let stress: Vec<[f64; 3]> = serde_json::from_value(r["stress"].clone()).unwrap();
        for a in 0..3 {
            for b in 0..3 {
                let d = (ev.stress[(a, b)] - stress[a][b]).abs() * GPA;
                worst_s = worst_s.max(d);
                assert!(d <= 0.05, "{name}: stress {:?} vs {stress:?} (eV/Å³)", ev.stress);
            }
        }
        let magmoms: Vec<f64> = serde_json::from_value(r["magmoms"].clone()).unwrap();
        for (ours, theirs) in ev.magmoms.as_ref().unwrap().iter().zip(&magmoms) {
            worst_m = worst_m.max((ours - theirs).abs());
        }
        assert!(worst_m <= 1e-3, "{name}: magnetic moments {:?} vs {magmoms:?}", ev.magmoms);
    }
    eprintln!(
        "{} structures: worst |ΔE| {:.2e} eV/atom, |ΔF| {:.2e} eV/Å, |Δσ| {:.2e} GPa, |Δm| {:.2e} μB",
        records.len(),
        worst_e,
        worst_f,
        worst_s,
        worst_m
    );
}

#[test]
fn relaxations_reach_the_same_structures_and_energies_as_ase_with_python_chgnet() {
    init();
    let fx = fixture();
    let chgnet = Chgnet::pretrained();
    let matcher = StructureMatcher::default();
    let relaxations = fx["relaxations"].as_array().unwrap();
    assert!(!relaxations.is_empty());
    for r in relaxations {
        let name = r["name"].as_str().unwrap();
        let start = structure(&r["initial"]);
        let theirs = structure(&r["final"]);
        let opts = RelaxOptions { fmax: 0.05, max_steps: 500, ..Default::default() };
        let ours = relax(&chgnet, &start, &opts, &mut |_, _| ControlFlow::Continue(())).unwrap();
        assert_eq!(
            ours.converged,
            r["converged"].as_bool().unwrap(),
            "{name}: converged after {} steps (ASE: {})",
            ours.steps,
            r["steps"]
        );
        let n = start.n_sites() as f64;
        let de = (ours.evaluation.energy - r["energy"].as_f64().unwrap()).abs() / n;
        assert!(
            de <= 5e-3,
            "{name}: final energy {} vs {} eV ({de} eV/atom apart)",
            ours.evaluation.energy,
            r["energy"]
        );
        assert!(matcher.fit(&ours.structure, &theirs), "{name}: relaxed structures differ");
        eprintln!("{name}: {} steps (ASE {}), final energies {de:.1e} eV/atom apart", ours.steps, r["steps"]);
        // The reference's own final structure is a fixed point for our CHGNet too.
        let check = chgnet.calculate(&theirs).unwrap();
        assert!(
            (check.energy - r["energy"].as_f64().unwrap()).abs() / n <= 1e-3,
            "{name}: energy of ASE's final structure"
        );
    }
}

#[test]
fn symmetry_is_kept_when_asked() {
    init();
    let fx = fixture();
    // A dataset crystal with a free internal coordinate, expanded by 4 %: relaxed with the symmetry kept, it
    // ends in the same space group at a tolerance far below the distances it moved.
    let r = fx["structures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["kind"] == "dataset"
                && structure(r).space_group_number(1e-3).map(|n| (3..=194).contains(&n)).unwrap_or(false)
                && structure(r).n_sites() >= 4
        })
        .expect("a dataset crystal of moderate symmetry");
    let s = structure(r);
    let sg = s.space_group_number(1e-3).unwrap();
    let rows = s.lattice.row_vectors();
    let expanded = s.with_lattice(Lattice::from_row_vectors(rows.map(|v| v.map(|x| x * 1.04))).unwrap());
    let opts = RelaxOptions { symprec: Some(1e-3), fmax: 0.02, ..Default::default() };
    let out = relax(&Chgnet::pretrained(), &expanded, &opts, &mut |_, _| ControlFlow::Continue(())).unwrap();
    assert!(out.converged, "{}: {} steps", r["name"], out.steps);
    assert_eq!(out.structure.space_group_number(1e-4).unwrap(), sg, "{}", r["name"]);
    assert!(out.structure.volume() < expanded.volume());
}

fn geode_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("run geode");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn energy_and_relax_commands_use_chgnet_by_default() {
    let fx = fixture();
    let dir = std::env::temp_dir().join(format!("geode-chgnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = fx["structures"].as_array().unwrap().iter().find(|r| r["kind"] == "rattled").unwrap();
    let input = dir.join("in.json");
    geode::io::write_structures(&input, &[structure(r)], None).unwrap();
    let (code, out, err) = geode_cli(&["energy", input.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let n = r["z"].as_array().unwrap().len() as f64;
    assert!((v["energy"].as_f64().unwrap() - r["energy"].as_f64().unwrap()).abs() / n < 1e-3, "{v}");
    assert_eq!(v["potential"], "chgnet-0.3.0");
    assert_eq!(v["magmoms"].as_array().unwrap().len(), n as usize);
    let output = dir.join("out.cif");
    let (code, out, err) = geode_cli(&["relax", input.to_str().unwrap(), output.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["converged"], true);
    assert!(v["energy"].as_f64().unwrap() <= r["energy"].as_f64().unwrap() + 1e-6, "{v}");
    let (code, _, err) =
        geode_cli(&["energy", input.to_str().unwrap(), "--potential", "chgnet:weights=/nonexistent.safetensors"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn chgnet_hull_puts_rock_salt_on_it_and_zinc_blende_above() {
    let dir = std::env::temp_dir().join(format!("geode-chgnet-hull-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let refs = dir.join("refs.csv");
    let (code, _, err) =
        geode_cli(&["dataset", "energies", "--elements", "Na,Cl", "--steps", "150", "--out", refs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let table = std::fs::read_to_string(&refs).unwrap();
    assert!(table.starts_with("name,formula,energy_per_atom"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("element:Na:A_cI2_229_a,Na,")), "{table}");
    // Rock salt and zinc blende NaCl at a = 5.6 Å (B1 and B3), relaxed with CHGNet and placed on that hull.
    let (na, cl) = (Element::from_symbol("Na").unwrap(), Element::from_symbol("Cl").unwrap());
    let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
    let polymorph = |shift: f64| {
        let frac: Vec<Vector3<f64>> = fcc
            .iter()
            .map(|f| Vector3::from(*f))
            .chain(fcc.iter().map(|f| Vector3::from(*f) + Vector3::repeat(shift)))
            .collect();
        Structure::from_frac(Lattice::cubic(5.6).unwrap(), [vec![na; 4], vec![cl; 4]].concat(), frac).unwrap()
    };
    let files = [("b1.cif", polymorph(0.5)), ("b3.cif", polymorph(0.25))].map(|(name, s)| {
        let p = dir.join(name);
        geode::io::write_structures(&p, &[s], None).unwrap();
        p
    });
    let (code, out, err) = geode_cli(&[
        "hull",
        "--refs",
        refs.to_str().unwrap(),
        "--structures",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
        "--relax",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (b1, b3) = (rows[0]["e_above_hull"].as_f64().unwrap(), rows[1]["e_above_hull"].as_f64().unwrap());
    assert!(b1.abs() < 0.01, "rock salt {b1} eV/atom from the hull");
    assert!(b3 > 0.05, "zinc blende NaCl only {b3} eV/atom above the hull");
    // --refs chgnet: the shipped CHGNet energies of the whole dataset and the relaxed elements.
    let hull_of = |extra: &[&str]| {
        let mut args =
            vec!["hull", "--structures", files[0].to_str().unwrap(), files[1].to_str().unwrap(), "--relax", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = geode_cli(&args);
        assert_eq!(code, 0, "{err}");
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<Value>>()
    };
    let rows = hull_of(&["--refs", "chgnet"]);
    let (b1_shipped, b3_shipped) =
        (rows[0]["e_above_hull"].as_f64().unwrap(), rows[1]["e_above_hull"].as_f64().unwrap());
    assert!(
        b1_shipped.abs() < 0.01 && (b3_shipped - b3).abs() < 0.02,
        "shipped table: B1 {b1_shipped}, B3 {b3_shipped} (own table: {b1}, {b3})"
    );
    // Default: the complete OQMD hull, CHGNet's energies put on OQMD's scale by the fitted chemical
    // potentials. Rock salt lands near OQMD's own NaCl; the polymorphs keep CHGNet's energy difference.
    let rows = hull_of(&[]);
    let (b1_dft, b3_dft) = (rows[0]["e_above_hull"].as_f64().unwrap(), rows[1]["e_above_hull"].as_f64().unwrap());
    assert!(b1_dft.abs() < 0.06, "rock salt {b1_dft} eV/atom from the complete OQMD hull");
    assert!(((b3_dft - b1_dft) - (b3_shipped - b1_shipped)).abs() < 1e-6, "B1 {b1_dft}, B3 {b3_dft}");
    let oqmd_nacl = geode::data::Dataset::embedded()
        .entries
        .iter()
        .filter(|e| e.formula == "NaCl")
        .map(|e| e.formation_energy_per_atom)
        .fold(f64::INFINITY, f64::min);
    let f = rows[0]["formation_energy_per_atom"].as_f64().unwrap();
    assert!((f - oqmd_nacl).abs() < 0.06, "ΔH_f(CHGNet) {f} vs OQMD {oqmd_nacl}");
    // The hull at NaCl is OQMD's (its composition table holds NaCl 15 meV/atom below the ICSD entry).
    let source = rows[0]["decomposition"][0]["source"].as_str().unwrap();
    assert!(source.starts_with("ICSD") || source == "OQMD composition table", "{}", rows[0]);
    // Another potential needs its own fitted chemical potentials (or references).
    let (code, _, err) =
        geode_cli(&["hull", "--structures", files[0].to_str().unwrap(), "--potential", "lj:sigma=3,epsilon=0.01"]);
    assert_ne!(code, 0);
    assert!(err.contains("--scale") && err.contains("--refs"), "{err}");
    // A scale fitted for another potential is refused.
    let (code, _, err) = geode_cli(&[
        "hull",
        "--structures",
        files[0].to_str().unwrap(),
        "--potential",
        "lj:sigma=3,epsilon=0.01",
        "--scale",
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/potentials/chgnet-0.3.0-formation-scale.csv"),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("fitted for \"chgnet-0.3.0\""), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
