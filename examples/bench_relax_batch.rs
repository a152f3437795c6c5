//! Batched relaxation throughput, the Rust side of `scripts/bench_relax_batch.sh`: FIRE with the unit-cell
//! filter (ASE's algorithm and defaults) and CHGNet 0.3.0 on the same structures as Python CHGNet's
//! `StructOptimizer`: the first N test-split crystals of the embedded dataset, each strained by 3 % and
//! rattled by up to 0.05 Å per axis (fixed seed), relaxed with batch sizes 1, 8 and 32 (structures leave the
//! batch as they converge and new ones enter).
//!
//! `cargo run --release --example bench_relax_batch -- --write FILE.extxyz [--n 200]` writes the structures;
//! `… -- --read FILE.extxyz --batches 1,8,32 [--threads 1]` relaxes them and prints one JSON line.

use std::ops::ControlFlow;
use std::time::Instant;

use geode::crystal::{Lattice, Structure};
use geode::data::Dataset;
use geode::data::split::Split;
use geode::energy::{Chgnet, RelaxOptions, relax_many};
use nalgebra::Vector3;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn structures(n: usize) -> Vec<Structure> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    Dataset::embedded()
        .split(Split::Test)
        .filter(|e| e.structure.species().iter().all(|el| el.z() <= 94))
        .take(n)
        .map(|e| {
            let s = &e.structure;
            let strained = Lattice::from_cart_from_frac(s.lattice.cart_from_frac() * 1.03).unwrap();
            let cart: Vec<Vector3<f64>> = s
                .cart_coords()
                .iter()
                .map(|r| r * 1.03 + Vector3::from_fn(|_, _| rng.random_range(-0.05..0.05)))
                .collect();
            Structure::from_cart(strained, s.species().to_vec(), &cart).unwrap()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(out) = arg(&args, "--write") {
        let n: usize = arg(&args, "--n").and_then(|s| s.parse().ok()).unwrap_or(200);
        let ss = structures(n);
        geode::io::write_structures(std::path::Path::new(&out), &ss, None).unwrap();
        eprintln!("wrote {} structures ({} atoms) to {out}", ss.len(), ss.iter().map(|s| s.n_sites()).sum::<usize>());
        return;
    }
    let input = arg(&args, "--read").expect("--read FILE or --write FILE");
    let threads: i32 = arg(&args, "--threads").and_then(|s| s.parse().ok()).unwrap_or(1);
    let batches: Vec<usize> = arg(&args, "--batches")
        .unwrap_or_else(|| "1,8,32".into())
        .split(',')
        .map(|b| b.trim().parse().expect("batch sizes"))
        .collect();
    tch::set_num_threads(threads);
    tch::set_num_interop_threads(1);
    let starts = geode::io::read_structures(std::path::Path::new(&input)).unwrap();
    let opts = RelaxOptions { fmax: 0.05, max_steps: 500, ..RelaxOptions::default() };
    // Warm-up: libtorch's first calls allocate.
    let _ = relax_many(
        &Chgnet::pretrained(),
        &starts[..2],
        &opts,
        2,
        &mut |_, _, _| ControlFlow::Continue(()),
        &mut |_, _| ControlFlow::Continue(()),
    );
    let mut out = serde_json::Map::new();
    for &b in &batches {
        let chgnet = Chgnet::pretrained().with_batch_size(b);
        let t = Instant::now();
        let results = relax_many(&chgnet, &starts, &opts, b, &mut |_, _, _| ControlFlow::Continue(()), &mut |_, _| {
            ControlFlow::Continue(())
        });
        let secs = t.elapsed().as_secs_f64();
        let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let steps: usize = ok.iter().map(|r| r.steps).sum();
        out.insert(
            format!("batch{b}"),
            json!({
                "seconds": secs,
                "relaxations_per_s": starts.len() as f64 / secs,
                "converged": ok.iter().filter(|r| r.converged).count(),
                "failed": results.len() - ok.len(),
                "steps": steps,
                "energies_per_atom": results.iter().map(|r| r.as_ref().map_or(f64::NAN, |r| r.evaluation.energy_per_atom())).collect::<Vec<_>>(),
            }),
        );
    }
    out.insert("structures".into(), json!(starts.len()));
    out.insert("threads".into(), json!(threads));
    println!("{}", serde_json::Value::Object(out));
}
