//! CHGNet throughput on CPU, the Rust side of `scripts/bench_chgnet.sh`: energy + forces + stress of the
//! structures in `tests/fixtures/chgnet_reference.json` (dataset crystals of 1–20 atoms and rattled and
//! strained copies), one structure per forward pass and in batches of 64, with graph construction timed
//! separately from the network (forward + autograd backward), and energies alone (forward only, no
//! autograd graph) to show what the derivatives cost.
//!
//! `cargo run --release --example bench_chgnet [-- --threads 1 --repeat 3]`; prints one JSON line.

use std::time::Instant;

use geode::crystal::{Element, Lattice, Structure};
use geode::energy::Calculator;
use geode::energy::chgnet::{Chgnet, CrystalGraph};
use nalgebra::Vector3;
use serde_json::{Value, json};

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok())
}

fn structure(v: &Value) -> Structure {
    let rows: Vec<[f64; 3]> = serde_json::from_value(v["lattice"].clone()).unwrap();
    let species =
        v["z"].as_array().unwrap().iter().map(|z| Element::from_z(z.as_u64().unwrap() as u32).unwrap()).collect();
    let frac: Vec<[f64; 3]> = serde_json::from_value(v["frac"].clone()).unwrap();
    Structure::from_frac(
        Lattice::from_row_vectors([rows[0], rows[1], rows[2]]).unwrap(),
        species,
        frac.iter().map(|f| Vector3::new(f[0], f[1], f[2])).collect(),
    )
    .unwrap()
}

fn best_of<F: FnMut()>(repeat: usize, mut f: F) -> f64 {
    (0..repeat)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads").unwrap_or(1);
    let repeat: usize = arg(&args, "--repeat").unwrap_or(3);
    tch::set_num_threads(threads as i32);
    tch::set_num_interop_threads(1);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chgnet_reference.json");
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("run scripts/make_chgnet_fixtures.py first"))
            .unwrap();
    let structures: Vec<Structure> = fx["structures"].as_array().unwrap().iter().map(structure).collect();
    let n = structures.len();
    let atoms: usize = structures.iter().map(|s| s.n_sites()).sum();
    let single = Chgnet::pretrained().with_batch_size(1);
    let batched = Chgnet::pretrained().with_batch_size(64);
    // Warm-up (libtorch allocations and kernels).
    let _ = batched.calculate_batch(&structures[..64.min(n)]);
    let graphs_s = best_of(repeat, || {
        std::hint::black_box(structures.iter().map(CrystalGraph::chgnet).collect::<Vec<_>>());
    });
    let single_s = best_of(repeat, || {
        for s in &structures {
            std::hint::black_box(single.calculate(s).unwrap());
        }
    });
    let batch_s = best_of(repeat, || {
        std::hint::black_box(batched.calculate_batch(&structures));
    });
    let energy_only_s = best_of(repeat, || {
        std::hint::black_box(batched.energies(&structures));
    });
    let edges: usize = structures.iter().map(|s| CrystalGraph::chgnet(s).edges.len()).sum();
    let angles: usize = structures.iter().map(|s| CrystalGraph::chgnet(s).angles.len()).sum();
    println!(
        "{}",
        json!({
            "implementation": "geode", "threads": threads, "structures": n, "atoms": atoms, "directed_edges": edges, "angles": angles,
            "graphs_s": graphs_s, "single_s": single_s, "batch64_s": batch_s, "batch64_energy_only_s": energy_only_s,
            "single_per_structure_ms": 1e3 * single_s / n as f64, "batch64_per_structure_ms": 1e3 * batch_s / n as f64,
            "graph_share_single": graphs_s / single_s, "backward_share_batch64": 1.0 - energy_only_s / batch_s,
        })
    );
}
