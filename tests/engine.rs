//! The engine and project store in-process: determinism across thread counts, cancel and resume,
//! pause, filters and sorting, annotations, bad configs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use geode::engine::query::Filter;
use geode::engine::store::{NewCandidate, PropValue, SortBy};
use geode::engine::{Engine, EventKind, RunConfig, RunSpec, RunStatus, Store};
use serde_json::{Value, json};

fn tmp_project(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("geode-engine-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("p.geode");
    let _ = std::fs::remove_file(&p);
    p
}

/// (seq, formula, properties) of every candidate of a run, the comparable outcome.
fn outcome(project: &Path, run_id: i64) -> Vec<(i64, String, Value)> {
    let store = Store::open(project).unwrap();
    store
        .query_candidates(None, Some(run_id), Some(&SortBy { key: "seq".into(), descending: false }), None)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.formula, r.properties))
        .collect()
}

fn run_to_end(project: &Path, threads: usize, params: &Value, seed: u64) -> i64 {
    let engine = Engine::new(project, threads, 1).unwrap();
    let id = engine.submit(&RunSpec::from_params("analyze", params).unwrap(), seed, 0).unwrap();
    engine.wait_idle();
    let store = Store::open(project).unwrap();
    assert_eq!(store.run(id).unwrap().status, "finished", "{:?}", store.run(id).unwrap().error);
    id
}

#[test]
fn same_seed_same_results_whatever_the_thread_count() {
    let params = json!({"sample": 60, "chunk_size": 7});
    let a = tmp_project("det1");
    let b = tmp_project("det3");
    let ra = run_to_end(&a, 1, &params, 11);
    let rb = run_to_end(&b, 3, &params, 11);
    let (oa, ob) = (outcome(&a, ra), outcome(&b, rb));
    assert_eq!(oa.len(), 60);
    assert_eq!(oa, ob);
    // A different seed samples different entries.
    let c = tmp_project("det-other-seed");
    let rc = run_to_end(&c, 2, &params, 12);
    assert_ne!(outcome(&c, rc), oa);
    let run = Store::open(&a).unwrap().run(ra).unwrap();
    assert_eq!(run.result.as_ref().unwrap()["analysed"], 60);
    assert_eq!(run.progress, 1.0);
}

#[test]
fn cancel_then_resume_gives_the_uninterrupted_result() {
    let params = json!({"sample": 120, "chunk_size": 4});
    let reference = tmp_project("ref");
    let rr = run_to_end(&reference, 2, &params, 5);

    let p = tmp_project("cancelled");
    let engine = Engine::new(&p, 2, 1).unwrap();
    let events = engine.events();
    let id = engine.submit(&RunSpec::from_params("analyze", &params).unwrap(), 5, 0).unwrap();
    // Cancel as soon as the first candidates are committed.
    loop {
        let ev = events.recv_timeout(Duration::from_secs(60)).expect("events flow");
        if let EventKind::Candidates(_) = ev.kind {
            engine.cancel(id).unwrap();
            break;
        }
    }
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "cancelled");
    assert!(run.n_candidates > 0 && run.n_candidates < 120, "{}", run.n_candidates);
    engine.resume(id).unwrap();
    engine.wait_idle();
    assert_eq!(store.run(id).unwrap().status, "finished");
    assert_eq!(outcome(&p, id), outcome(&reference, rr));
}

#[test]
fn pause_holds_the_run_and_unpause_finishes_it() {
    let p = tmp_project("pause");
    let engine = Engine::new(&p, 1, 1).unwrap();
    let events = engine.events();
    let id = engine
        .submit(
            &RunSpec::from_params("analyze", &json!({"sample": 40, "chunk_size": 2, "duplicates": false})).unwrap(),
            1,
            0,
        )
        .unwrap();
    loop {
        if let EventKind::Candidates(_) = events.recv_timeout(Duration::from_secs(60)).unwrap().kind {
            engine.pause(id);
            break;
        }
    }
    // Wait until the driver reports the pause, then check nothing more is committed while paused.
    let store = Store::open(&p).unwrap();
    for _ in 0..100 {
        if store.run(id).unwrap().status == "paused" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.run(id).unwrap().status, "paused");
    let n = store.run(id).unwrap().n_candidates;
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(store.run(id).unwrap().n_candidates, n);
    engine.unpause(id);
    engine.wait_idle();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished");
    assert_eq!(run.n_candidates, 40);
}

#[test]
fn progress_events_and_priorities() {
    let p = tmp_project("prio");
    let engine = Engine::new(&p, 1, 1).unwrap();
    let events = engine.events();
    let low = engine
        .submit(
            &RunSpec::from_params("analyze", &json!({"sample": 30, "chunk_size": 5, "duplicates": false})).unwrap(),
            1,
            0,
        )
        .unwrap();
    let high = engine
        .submit(
            &RunSpec::from_params("analyze", &json!({"sample": 30, "chunk_size": 5, "duplicates": false})).unwrap(),
            2,
            10,
        )
        .unwrap();
    engine.wait_idle();
    let mut finished = Vec::new();
    let mut progress = 0;
    while let Ok(ev) = events.try_recv() {
        match ev.kind {
            EventKind::Finished { status, .. } => {
                assert_eq!(status, RunStatus::Finished);
                finished.push(ev.run_id);
            }
            EventKind::Progress(p) => {
                assert!((0.0..=1.0).contains(&p.fraction));
                progress += 1;
            }
            _ => {}
        }
    }
    assert_eq!(finished.len(), 2);
    // The first run may already be running when the second is queued; both must finish.
    assert!(finished.contains(&low) && finished.contains(&high));
    assert!(progress > 0);
}

#[test]
fn bad_configs_name_the_key() {
    let cases = [
        (json!({"sampel": 3}), "sampel"),
        (json!({"sample": "many"}), "sample"),
        (json!({"symprec": -1.0}), "symprec"),
        (json!({"chunk_size": 0}), "chunk_size"),
        (json!({"split": "dev"}), "split"),
    ];
    for (params, key) in cases {
        let msg = RunSpec::from_params("analyze", &params).and_then(|s| s.validate()).unwrap_err().to_string();
        assert!(msg.contains(key), "{params}: {msg}");
    }
    assert!(RunSpec::from_params("nope", &json!({})).unwrap_err().to_string().contains("analyze"));
    let msg = RunConfig::parse("analyze", "seed = -3\n", true, None).unwrap_err().to_string();
    assert!(msg.contains("seed"), "{msg}");
    let msg = RunConfig::parse("analyze", "sample = \n", true, None).unwrap_err().to_string();
    assert!(msg.contains("line 1"), "{msg}");
    let c = RunConfig::parse("analyze", "seed = 4\npriority = 2\nsample = 10\n", true, None).unwrap();
    assert_eq!((c.seed, c.priority), (4, 2));
    assert_eq!(c.spec.params()["sample"], json!(10));
}

fn candidate(i: i64, gap: f64, hull: f64) -> NewCandidate {
    let s = geode::data::Dataset::embedded().entries[i as usize].structure.clone();
    NewCandidate {
        seq: i,
        structure: s,
        stage: "test".into(),
        source: "unit".into(),
        props: vec![("band_gap".into(), PropValue::with_std(gap, 0.1)), ("e_above_hull".into(), hull.into())],
        extra: Default::default(),
        parents: if i > 0 { vec![1] } else { vec![] },
    }
}

#[test]
fn store_filters_sorts_annotates_and_migrates() {
    let p = tmp_project("store");
    let mut store = Store::open(&p).unwrap();
    assert_eq!(store.schema_version().unwrap(), geode::engine::store::SCHEMA_VERSION);
    let cands: Vec<_> = (0..200).map(|i| candidate(i, (i % 20) as f64 * 0.2, (i % 7) as f64 * 0.02)).collect();
    let ids = store.insert_candidates(&cands).unwrap();
    assert_eq!(ids.len(), 200);
    let f = Filter::parse("band_gap > 1 and e_above_hull < 0.05").unwrap();
    let rows = store.query_candidates(Some(&f), None, None, None).unwrap();
    let expected = (0..200).filter(|i| (i % 20) as f64 * 0.2 > 1.0 && ((i % 7) as f64 * 0.02) < 0.05).count();
    assert_eq!(rows.len(), expected);
    let sorted = store
        .query_candidates(None, None, Some(&SortBy { key: "band_gap".into(), descending: true }), Some(5))
        .unwrap();
    assert!((sorted[0].properties["band_gap"]["value"].as_f64().unwrap() - 3.8).abs() < 1e-12);
    assert_eq!(sorted[0].properties["band_gap"]["std"], 0.1);
    store.annotate(ids[3], Some(true), Some("shortlist, oxide"), Some("check phonons")).unwrap();
    let fav = store.query_candidates(Some(&Filter::parse("favourite = 1").unwrap()), None, None, None).unwrap();
    assert_eq!(fav.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[3]]);
    let tagged = store.query_candidates(Some(&Filter::parse("tag = 'oxide'").unwrap()), None, None, None).unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(store.candidate_parents(ids[5]).unwrap(), vec![1]);
    let formula = &rows[0].formula;
    let by_formula = store
        .query_candidates(Some(&Filter::parse(&format!("formula = '{formula}'")).unwrap()), None, None, None)
        .unwrap();
    assert!(by_formula.iter().all(|r| &r.formula == formula));
    drop(store);
    // Re-opening applies no migration twice and keeps the data.
    let store = Store::open(&p).unwrap();
    assert_eq!(store.candidate_count().unwrap(), 200);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}
