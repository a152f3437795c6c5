//! Benchmark: write the whole embedded dataset as CIF, parse it back, and build neighbour lists.
//!
//! `cargo run --release --example bench_io -- [--dump DIR] [--cutoff 5.0] [--limit N]`
//! prints one JSON object with timings (seconds). `--dump DIR` also writes every CIF to DIR so that
//! `scripts/bench_io.py` can time pymatgen on exactly the same files in the same run.

use std::time::Instant;

use geode::data::Dataset;
use geode::io::cif;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let cutoff: f64 = arg("--cutoff").and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let limit: usize = arg("--limit").and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);

    let t = Instant::now();
    let ds = Dataset::embedded();
    let load_s = t.elapsed().as_secs_f64();
    let entries: Vec<_> = ds.entries.iter().take(limit).collect();

    let t = Instant::now();
    let texts: Vec<String> = entries.iter().map(|e| cif::write(&e.structure, &format!("oqmd-icsd-{}", e.id))).collect();
    let write_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut n_sites = 0usize;
    for (e, text) in entries.iter().zip(&texts) {
        let parsed = cif::parse(text, "bench.cif", &cif::CifOptions::default())
            .unwrap_or_else(|err| panic!("entry {}: {err}", e.id));
        n_sites += parsed[0].n_sites();
    }
    let parse_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut n_pairs = 0usize;
    for e in &entries {
        n_pairs += e.structure.neighbor_list(cutoff).len();
    }
    let neighbors_s = t.elapsed().as_secs_f64();

    if let Some(dir) = arg("--dump") {
        std::fs::create_dir_all(&dir).expect("create dump dir");
        for (e, text) in entries.iter().zip(&texts) {
            std::fs::write(format!("{dir}/{}.cif", e.id), text).expect("write cif");
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "structures": entries.len(), "sites": n_sites, "cutoff": cutoff, "neighbor_pairs": n_pairs,
            "load_s": load_s, "cif_write_s": write_s, "cif_parse_s": parse_s, "neighbors_s": neighbors_s,
        })
    );
}
