//! Chemical-stage throughput: SMACT validity over the 20,428 compositions of
//! `tests/fixtures/smact_validity.json` and Hautier substitution predictions (threshold 1e-3, both
//! directions) for the 66 compositions of `tests/fixtures/substitution_pymatgen.json`, on one thread.
//! `scripts/bench_chem.py` times smact and pymatgen on the same work and prints the ratios.
//!
//! `cargo run --release --example bench_chem`

use std::time::Instant;

use geode::chem::oxidation::{self, ValidityOptions};
use geode::chem::substitution::{Direction, SubstitutionTable};
use geode::crystal::Composition;
use serde_json::{Value, json};

fn load(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap()
}

fn main() {
    let fx = load("smact_validity.json");
    let formulas: Vec<String> =
        fx["compositions"].as_array().unwrap().iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
    let mut best = f64::INFINITY;
    let mut valid = 0;
    for _ in 0..3 {
        let t = Instant::now();
        // Parsing the formula is part of the work, as in smact_validity(str).
        valid = formulas
            .iter()
            .filter(|f| {
                oxidation::validity(&Composition::from_formula(f).unwrap(), ValidityOptions::default()).is_valid()
            })
            .count();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let sub = load("substitution_pymatgen.json");
    let table = SubstitutionTable::embedded();
    let comps: Vec<Vec<(String, f64)>> = sub["compositions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            it["species"]
                .as_array()
                .unwrap()
                .iter()
                .zip(it["amounts"].as_array().unwrap())
                .map(|(s, n)| (s.as_str().unwrap().to_string(), n.as_f64().unwrap()))
                .collect()
        })
        .collect();
    let mut best_sub = f64::INFINITY;
    let mut n_sub = 0;
    for _ in 0..3 {
        let t = Instant::now();
        n_sub = comps
            .iter()
            .map(|c| {
                table.predict(c, 1e-3, Direction::ToThis).unwrap().len()
                    + table.predict(c, 1e-3, Direction::FromThis).unwrap().len()
            })
            .sum();
        best_sub = best_sub.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        json!({"tool": "geode", "validity": {"compositions": formulas.len(), "valid": valid, "s": best, "per_s": formulas.len() as f64 / best},
               "substitution": {"compositions": comps.len(), "predictions": n_sub, "s": best_sub}})
    );
}
