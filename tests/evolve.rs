//! Global structure search: random symmetric structures, the search algorithms on a Lennard-Jones
//! solid (whose ground state, close packing, is known), and the `evolve` run with lineage, results,
//! cancel and resume. CHGNet recoveries of real ground states are measured by `geode evolve benchmark`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use geode::crystal::{Element, Lattice, Structure};
use geode::energy::spec::from_spec;
use geode::energy::{RelaxOptions, relax};
use geode::engine::store::SortBy;
use geode::engine::{Engine, EventKind, Store};
use geode::search::evolve::{self, Algorithm, Evaluator, Evolution, EvolveSettings, ObjectiveSpec};
use nalgebra::Vector3;
use serde_json::{Value, json};

const ARGON: &str = "lj:sigma=3.405,epsilon=0.0104,cutoff=8.5";

fn evaluator() -> Evaluator {
    Evaluator {
        calc: Some(from_spec(ARGON).unwrap()),
        relax: RelaxOptions { fmax: 0.01, max_steps: 300, ..RelaxOptions::default() },
        objectives: vec![ObjectiveSpec::Energy],
        hull: None,
        model: None,
    }
}

/// fcc argon relaxed with the same potential (eV/atom).
fn fcc_energy() -> f64 {
    let ar = Element::from_symbol("Ar").unwrap();
    let a = 5.26;
    let l =
        Lattice::from_row_vectors([[0.0, a / 2.0, a / 2.0], [a / 2.0, 0.0, a / 2.0], [a / 2.0, a / 2.0, 0.0]]).unwrap();
    let s = Structure::from_frac(l, vec![ar], vec![Vector3::zeros()]).unwrap();
    let r = relax(
        evaluator().calc.unwrap().as_ref(),
        &s,
        &RelaxOptions { fmax: 0.001, ..RelaxOptions::default() },
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    r.evaluation.energy
}

fn argon(algorithm: Algorithm, budget: usize) -> EvolveSettings {
    EvolveSettings {
        composition: "Ar".into(),
        formula_units: [1, 4],
        algorithm,
        population: 6,
        budget,
        ..EvolveSettings::default()
    }
}

#[test]
fn every_algorithm_reaches_close_packing_of_lennard_jones_argon() {
    geode::ml::init_threads(1);
    let e_fcc = fcc_energy();
    let eval = evaluator();
    for alg in [Algorithm::Ga, Algorithm::Random, Algorithm::Anneal, Algorithm::Swarm, Algorithm::Bo] {
        let mut evo = Evolution::new(argon(alg, 30), 3).unwrap();
        evolve::run(&mut evo, &eval, |_, _| false);
        assert_eq!(evo.evaluated(), 30, "{alg:?}");
        let best = evo.best().unwrap();
        // fcc and hcp differ by < 0.1 % for Lennard-Jones; anything close-packed is the ground state.
        assert!(best.energy_per_atom <= e_fcc * 0.995, "{alg:?}: best {} vs fcc {e_fcc}", best.energy_per_atom);
        assert!(evo.state.history.len() >= 5);
        // Lineage: every non-random individual names parents evaluated before it.
        for i in &evo.state.individuals {
            assert!(i.parents.iter().all(|p| *p < i.id), "{alg:?}: individual {} has a later parent", i.id);
        }
        assert!(
            evo.state.individuals.iter().any(|i| !i.parents.is_empty()) || alg == Algorithm::Random,
            "{alg:?}: no offspring"
        );
    }
}

#[test]
fn duplicates_are_recognised() {
    geode::ml::init_threads(1);
    let eval = evaluator();
    let mut evo = Evolution::new(argon(Algorithm::Random, 24), 1).unwrap();
    evolve::run(&mut evo, &eval, |_, _| false);
    // Random argon cells relax to a handful of close-packed stackings: most repeat.
    let dups = evo.state.individuals.iter().filter(|i| i.duplicate_of.is_some()).count();
    assert!(dups >= 6, "{dups} duplicates of 24");
    for i in evo.state.individuals.iter().filter(|i| i.duplicate_of.is_some()) {
        let j = &evo.state.individuals[i.duplicate_of.unwrap()];
        assert!((i.energy_per_atom - j.energy_per_atom).abs() < 0.01 && j.id < i.id);
    }
}

#[test]
fn same_seed_same_search() {
    geode::ml::init_threads(1);
    let eval = evaluator();
    let energies = |seed| {
        let mut evo = Evolution::new(argon(Algorithm::Ga, 18), seed).unwrap();
        evolve::run(&mut evo, &eval, |_, _| false);
        evo.state.individuals.iter().map(|i| i.energy_per_atom).collect::<Vec<_>>()
    };
    assert_eq!(energies(4), energies(4));
    assert_ne!(energies(4), energies(5));
}

#[test]
fn bad_settings_name_the_key() {
    for (settings, key) in [
        (json!({"composition": "Xx2"}), "composition"),
        (json!({"composition": "NaCl", "formula_units": [0, 2]}), "formula_units"),
        (json!({"composition": "NaCl", "objectives": ["band_gap in [1"]}), "objectives"),
        (json!({"composition": "NaCl", "space_groups": [300]}), "space_groups"),
        (json!({"composition": "NaCl", "populaton": 3}), "populaton"),
        (json!({"composition": "NaCl", "relax": {"potential": "nope"}}), "relax.potential"),
    ] {
        let e = geode::engine::RunSpec::from_params("evolve", &settings)
            .and_then(|s| s.validate())
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{settings}: {e}");
    }
}

fn tmp_project(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("geode-evolve-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("p.geode");
    let _ = std::fs::remove_file(&p);
    p
}

fn params() -> Value {
    json!({"composition": "Ar", "formula_units": [1, 3], "population": 4, "budget": 16, "relax": {"potential": ARGON, "fmax": 0.01}})
}

fn outcome(project: &Path, run_id: i64) -> Vec<(i64, String, String, Value)> {
    let store = Store::open(project).unwrap();
    let rows = store
        .query_candidates(None, Some(run_id), Some(&SortBy { key: "seq".into(), descending: false }), None)
        .unwrap();
    rows.into_iter()
        .map(|r| {
            let mut p = r.properties.clone();
            p.as_object_mut().unwrap().retain(|k, _| k == "energy_per_atom" || k == "generation" || k == "operator");
            (r.seq, r.formula, r.stage, p)
        })
        .collect()
}

#[test]
fn evolve_run_records_individuals_lineage_and_the_best() {
    let p = tmp_project("run");
    let engine = Engine::new(&p, 2, 1).unwrap();
    let id = engine.submit(&geode::engine::RunSpec::from_params("evolve", &params()).unwrap(), 7, 0).unwrap();
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    assert_eq!(run.n_candidates, 16);
    let result = run.result.unwrap();
    assert_eq!(result["evaluated"], 16);
    let best = &result["best"];
    let cif = best["cif"].as_str().unwrap();
    let s = geode::io::cif::parse(cif, "best.cif", &Default::default()).unwrap().remove(0);
    assert_eq!(s.reduced_formula(), "Ar");
    assert!((best["energy_per_atom"].as_f64().unwrap() - fcc_energy()).abs() < 0.01 * fcc_energy().abs());
    // `best.id` is the store's candidate id, the one `geode candidates show` takes.
    let best_id = best["id"].as_i64().expect("best.id is a candidate id");
    assert_eq!(store.candidate_structure(best_id).unwrap().reduced_formula(), "Ar");
    assert_eq!(
        store.query_candidates(None, Some(id), None, None).unwrap().iter().find(|r| r.id == best_id).unwrap().seq,
        best["seq"].as_i64().unwrap()
    );
    // The family tree is in the store: offspring point at earlier candidates of the run.
    let rows = store.query_candidates(None, Some(id), None, None).unwrap();
    let mut linked = 0;
    for r in &rows {
        for parent in store.candidate_parents(r.id).unwrap() {
            assert!(parent < r.id);
            linked += 1;
        }
    }
    assert!(linked > 0);
    assert_eq!(store.metrics(id, "best").unwrap().len(), 4);
}

#[test]
fn cancelled_evolve_run_resumes_to_the_uninterrupted_result() {
    let reference = tmp_project("ref");
    let engine = Engine::new(&reference, 2, 1).unwrap();
    let rr = engine.submit(&geode::engine::RunSpec::from_params("evolve", &params()).unwrap(), 9, 0).unwrap();
    engine.wait_idle();

    let p = tmp_project("cancel");
    let engine = Engine::new(&p, 2, 1).unwrap();
    let events = engine.events();
    let id = engine.submit(&geode::engine::RunSpec::from_params("evolve", &params()).unwrap(), 9, 0).unwrap();
    loop {
        let ev = events.recv_timeout(Duration::from_secs(120)).expect("events flow");
        if let EventKind::Candidates(_) = ev.kind {
            engine.cancel(id).unwrap();
            break;
        }
    }
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    assert_eq!(store.run(id).unwrap().status, "cancelled");
    engine.resume(id).unwrap();
    engine.wait_idle();
    assert_eq!(store.run(id).unwrap().status, "finished");
    assert_eq!(outcome(&p, id), outcome(&reference, rr));
}

#[test]
fn variable_composition_draws_neutral_stoichiometries_of_the_system() {
    let settings = EvolveSettings {
        elements: vec!["Sr".into(), "Ti".into(), "O".into()],
        objectives: vec![ObjectiveSpec::EAboveHull],
        formula_units: [1, 2],
        max_atoms: 14,
        ..EvolveSettings::default()
    };
    let units = settings.formula_units_searched().unwrap();
    let formulas: Vec<String> = units
        .iter()
        .map(|u| geode::crystal::Composition::from_pairs(u.iter().map(|(e, n)| (*e, *n as f64))).reduced_formula())
        .collect();
    for f in ["SrTiO3", "Sr2TiO4", "Sr3TiO4"] {
        assert!(formulas.contains(&f.to_string()), "{f} missing from {formulas:?}");
    }
    let mut evo = Evolution::new(settings.clone(), 2).unwrap();
    let drawn: std::collections::BTreeSet<String> =
        evo.propose().iter().map(|p| p.structure.reduced_formula()).collect();
    assert!(drawn.len() >= 3, "one generation draws several compositions: {drawn:?}");
    // Energies per atom of different compositions do not compare.
    let bad = EvolveSettings { objectives: vec![ObjectiveSpec::Energy], ..settings };
    assert!(Evolution::new(bad, 0).err().unwrap().contains("e_above_hull"));
}

#[test]
fn random_symmetric_structures_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("geode-evolve-random-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(["evolve", "random", "--composition", "Ti2O4", "--n", "6", "--seed", "3", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let s = geode::io::read_structures(&f).unwrap().remove(0);
        assert_eq!(s.reduced_formula(), "TiO2");
        assert!(s.is_structurally_valid());
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(["evolve", "random", "--composition", "NaCl", "--space-group", "300", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn prototype_space_search_runs_without_relaxation() {
    let p = tmp_project("prototype");
    let engine = Engine::new(&p, 2, 1).unwrap();
    let params = json!({
        "space": "prototype", "templates": ["SrTiO3", "MgAl2O4"], "elements": ["Ca", "Sr", "Ba", "Mg", "Zn", "Al", "Ga", "Ti", "Zr", "Sn", "O", "S"],
        "max_atoms": 30, "population": 8, "budget": 32, "objectives": ["e_above_hull", "band_gap in [2, 3]"],
        "relax_top": 2, "relax": {"potential": "lj:sigma=2.0,epsilon=0.01,cutoff=6"},
    });
    let id = engine.submit(&geode::engine::RunSpec::from_params("evolve", &params).unwrap(), 3, 0).unwrap();
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    let result = run.result.unwrap();
    assert_eq!(result["evaluated"], 32);
    assert_eq!(result["relax_steps"], 0);
    // The two best were relaxed afterwards, each linked to the individual it came from.
    assert_eq!(result["relaxed_top"].as_array().unwrap().len(), 2);
    let relaxed = store
        .query_candidates(
            Some(&geode::engine::query::Filter::parse("stage = 'relaxed'").unwrap()),
            Some(id),
            None,
            None,
        )
        .unwrap();
    assert_eq!(relaxed.len(), 2, "{:?}", store.logs(id).unwrap().iter().rev().take(3).collect::<Vec<_>>());
    for r in &relaxed {
        assert_eq!(store.candidate_parents(r.id).unwrap().len(), 1);
    }
    assert!(!result["pareto_front"].as_array().unwrap().is_empty());
    let rows = store.query_candidates(None, Some(id), None, None).unwrap();
    let mut operators = std::collections::BTreeSet::new();
    for r in rows.iter().filter(|r| r.stage != "relaxed") {
        operators.insert(r.properties["operator"].as_str().unwrap().to_string());
        if r.stage == "individual" {
            assert!(
                r.properties.get("e_above_hull").is_some()
                    && r.properties.get("e_above_hull_upper").is_some()
                    && r.properties.get("band_gap").is_some(),
                "{:?}",
                r.properties
            );
            // Charge-balanced by SMACT's rules, only pool elements.
            let s = store.candidate_structure(r.id).unwrap();
            assert!(geode::search::enumerate::oxidation_assignment(&s).is_some(), "{}", r.formula);
        }
    }
    assert!(
        operators.contains("random") && (operators.contains("substitution") || operators.contains("crossover")),
        "{operators:?}"
    );
    // Energies per atom have no meaning here.
    let bad =
        json!({"space": "prototype", "templates": ["SrTiO3"], "elements": ["Sr", "Ti", "O"], "objectives": ["energy"]});
    assert!(
        geode::engine::RunSpec::from_params("evolve", &bad)
            .and_then(|s| s.validate())
            .unwrap_err()
            .to_string()
            .contains("objectives")
    );
}
