//! Geode against pymatgen on the complete OQMD references, per query batch: the queries of
//! tests/fixtures/hull_complete_pymatgen.json (made by scripts/make_hull_complete_fixtures.py, which stores
//! pymatgen's time per query: one PhaseDiagram per chemical system from every reference in it, plus the
//! query). Geode answers the same queries on the complete diagram, cold (a fresh diagram: every system's
//! stable set computed on first use) and warm, single thread.
//!
//!     cargo run --release --example bench_hull_complete [FIXTURE.json]
//!
//! `scripts/bench_hull_complete.sh` times pymatgen afresh and this on the same queries, in one run.

use geode::crystal::Composition;
use geode::energy::PhaseDiagram;

fn main() {
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global().ok();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hull_complete_pymatgen.json").into());
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json");
    let queries: Vec<(Composition, f64, f64)> = fx["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .map(|q| {
            (
                Composition::from_formula(q["formula"].as_str().unwrap()).unwrap(),
                q["formation_energy_per_atom"].as_f64().unwrap(),
                q["e_above_hull"].as_f64().unwrap(),
            )
        })
        .collect();
    let pymatgen: f64 = fx["queries"].as_array().unwrap().iter().map(|q| q["pymatgen_seconds"].as_f64().unwrap()).sum();
    let t0 = std::time::Instant::now();
    let pd = PhaseDiagram::complete();
    let build = t0.elapsed().as_secs_f64();
    let run = |pd: &PhaseDiagram| {
        let t = std::time::Instant::now();
        let mut worst = 0f64;
        for (c, e, expected) in &queries {
            let h = pd.e_above_hull(c, *e).expect("query").e_above_hull;
            worst = worst.max((h - expected).abs());
        }
        (t.elapsed().as_secs_f64(), worst)
    };
    let (cold, worst) = run(&pd);
    let (warm, _) = run(&pd);
    println!(
        "{}",
        serde_json::json!({
            "queries": queries.len(),
            "pymatgen_s": pymatgen,
            "geode_build_complete_s": build,
            "geode_cold_s": cold,
            "geode_warm_s": warm,
            "ratio_cold": pymatgen / cold,
            "ratio_warm": pymatgen / warm,
            "ratio_cold_with_build": pymatgen / (cold + build),
            "worst_abs_diff_ev_per_atom": worst,
        })
    );
}
