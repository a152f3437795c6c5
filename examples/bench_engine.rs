//! Engine and store benchmarks (release): `cargo run --release --example bench_engine -- [--n 1000000]`
//!
//! 1. Store throughput: insert N candidates (dataset structures with two properties each) in batches
//!    of 5,000 per transaction; report candidates/s; then time filter queries on the N rows.
//! 2. Cancellation latency and progress-event rate while every core is busy: an `analyze` run on the
//!    engine plus one spinning thread per core; cancel after 2 s and time until the run has stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use geode::engine::query::Filter;
use geode::engine::store::{NewCandidate, PropValue, SortBy};
use geode::engine::{Engine, EventKind, Store};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("geode-bench-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Store throughput.
    let path = dir.join("store.geode");
    let mut store = Store::open(&path).unwrap();
    let ds = geode::data::Dataset::embedded();
    let batch = 5_000;
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let cands: Vec<NewCandidate> = (done..(done + batch).min(n))
            .map(|i| {
                let e = &ds.entries[i % ds.len()];
                NewCandidate {
                    seq: i as i64,
                    structure: e.structure.clone(),
                    stage: "bench".into(),
                    source: "bench".into(),
                    props: vec![
                        (
                            "band_gap".into(),
                            PropValue::with_std(e.band_gap.unwrap_or(0.0) + (i % 97) as f64 * 1e-3, 0.1),
                        ),
                        ("e_above_hull".into(), (e.e_above_hull + (i % 89) as f64 * 1e-4).into()),
                    ],
                    extra: Default::default(),
                    parents: Vec::new(),
                }
            })
            .collect();
        store.insert_candidates(&cands).unwrap();
        done += cands.len();
    }
    let insert_s = t.elapsed().as_secs_f64();
    println!(
        "insert: {n} candidates in {insert_s:.2} s = {:.0} candidates/s ({} per transaction)",
        n as f64 / insert_s,
        batch
    );
    let size_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("project file: {size_mb:.0} MB");
    for (q, limit) in [
        ("band_gap > 1 and e_above_hull < 0.05", Some(100)),
        ("band_gap > 1 and e_above_hull < 0.05", None),
        ("band_gap > 5.5", None),
        ("formula = 'NaCl'", None),
        ("n_sites <= 2 and band_gap > 3", None),
    ] {
        let f = Filter::parse(q).unwrap();
        let t = Instant::now();
        let rows = store.query_candidates(Some(&f), None, None, limit).unwrap();
        println!("query {q:?} limit {limit:?}: {} rows in {:.3} s", rows.len(), t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let rows = store
        .query_candidates(
            Some(&Filter::parse("e_above_hull < 0.01").unwrap()),
            None,
            Some(&SortBy { key: "band_gap".into(), descending: true }),
            Some(50),
        )
        .unwrap();
    println!(
        "query e_above_hull < 0.01 sorted by -band_gap, top 50: {} rows in {:.3} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    drop(store);

    // 2. Cancellation latency and progress events under full CPU load.
    let project = dir.join("cancel.geode");
    let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(2);
    let engine = Engine::new(&project, cores, 1).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..cores)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let events = engine.events();
    let id = engine
        .submit(&geode::engine::RunSpec::from_params("analyze", &json!({"chunk_size": 256})).unwrap(), 1, 0)
        .unwrap();
    let t0 = Instant::now();
    let mut progress_events = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        if let Ok(ev) = events.recv_timeout(Duration::from_millis(50))
            && matches!(ev.kind, EventKind::Progress(_))
        {
            progress_events += 1;
        }
    }
    let rate = progress_events as f64 / t0.elapsed().as_secs_f64();
    let tc = Instant::now();
    engine.cancel(id).unwrap();
    let latency = loop {
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(ev) if matches!(ev.kind, EventKind::Finished { .. }) => break tc.elapsed().as_secs_f64(),
            Ok(_) => {}
            Err(_) => break f64::NAN,
        }
    };
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        let _ = s.join();
    }
    println!(
        "under full load ({cores} spinning threads + {cores} workers): progress events {rate:.1} Hz; cancellation latency {:.0} ms",
        latency * 1e3
    );
    engine.wait_idle();
    drop(engine);
    std::fs::remove_dir_all(&dir).ok();
}
