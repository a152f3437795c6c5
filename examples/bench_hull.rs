//! Convex-hull benchmark on the work stored in `tests/fixtures/hull_pymatgen.json` (60 systems of 2–5
//! elements, 1,440 queries), timed like `scripts/bench_hull_pymatgen.py` times pymatgen: building every
//! diagram (here: finding the stable set of each system, which Geode otherwise does lazily on the first
//! query) and answering every query on one thread; plus the same queries against the whole dataset as
//! one diagram, in parallel. `scripts/bench_hull.sh` runs both and prints the ratio.
//!
//! `cargo run --release --example bench_hull [-- --repeat 5]`

use std::time::Instant;

use geode::crystal::{Composition, Element};
use geode::data::Dataset;
use geode::energy::{PhaseDiagram, PhaseEntry};
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let fx: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hull_pymatgen.json")).unwrap(),
    )
    .unwrap();
    let ds = Dataset::embedded();
    type System = (Vec<PhaseEntry>, Vec<Element>, Vec<(Composition, f64, f64)>);
    let systems: Vec<System> = fx["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut entries: Vec<PhaseEntry> = s["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| {
                    let e = ds.get(id.as_u64().unwrap() as u32).unwrap();
                    PhaseEntry::new(id.to_string(), e.structure.composition(), e.formation_energy_per_atom)
                })
                .collect();
            let els: Vec<Element> = s["elements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| Element::from_symbol(e.as_str().unwrap()).unwrap())
                .collect();
            entries.extend(
                els.iter().map(|el| PhaseEntry::new(format!("el:{el}"), Composition::from_pairs([(*el, 1.0)]), 0.0)),
            );
            let queries = s["queries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| {
                    (
                        Composition::from_formula(q["formula"].as_str().unwrap()).unwrap(),
                        q["energy_per_atom"].as_f64().unwrap(),
                        q["e_above_hull"].as_f64().unwrap(),
                    )
                })
                .collect();
            (entries, els, queries)
        })
        .collect();
    let n_queries: usize = systems.iter().map(|s| s.2.len()).sum();
    let (mut best_build, mut best_query, mut worst) = (f64::INFINITY, f64::INFINITY, 0.0f64);
    for _ in 0..repeat {
        let inputs: Vec<Vec<PhaseEntry>> = systems.iter().map(|s| s.0.clone()).collect();
        let t = Instant::now();
        let pds: Vec<PhaseDiagram> = inputs
            .into_iter()
            .zip(&systems)
            .map(|(entries, s)| {
                let pd = PhaseDiagram::new(entries).unwrap();
                pd.stable_entries(&s.1).unwrap();
                pd
            })
            .collect();
        best_build = best_build.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut results = Vec::with_capacity(n_queries);
        for (pd, s) in pds.iter().zip(&systems) {
            for (c, e, _) in &s.2 {
                results.push(pd.e_above_hull(c, *e).unwrap().e_above_hull);
            }
        }
        best_query = best_query.min(t.elapsed().as_secs_f64());
        for (r, (_, _, q)) in results.iter().zip(systems.iter().flat_map(|s| s.2.iter())) {
            worst = worst.max((r - q).abs());
        }
    }
    // The CLI's default: the whole dataset as one diagram, systems cut out and cached on demand.
    let batch: Vec<(Composition, f64)> =
        systems.iter().flat_map(|s| s.2.iter().map(|(c, e, _)| (c.clone(), *e))).collect();
    let t = Instant::now();
    let pd = PhaseDiagram::from_dataset(ds);
    let dataset_build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let cold = pd.e_above_hull_batch(&batch);
    let cold_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let warm = pd.e_above_hull_batch(&batch);
    let warm_s = t.elapsed().as_secs_f64();
    assert!(cold.iter().chain(&warm).all(|r| r.is_ok()));
    println!(
        "{}",
        json!({
            "tool": "geode", "systems": systems.len(), "queries": n_queries, "build_s": best_build, "query_s": best_query,
            "per_query_us": best_query / n_queries as f64 * 1e6, "worst_abs_diff_vs_pymatgen": worst,
            "dataset_diagram": {"entries": pd.entries().len(), "build_s": dataset_build_s, "first_batch_s": cold_s, "cached_batch_s": warm_s,
                                "threads": rayon::current_num_threads()},
        })
    );
}
