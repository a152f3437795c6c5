//! Property-model throughput on CPU: predictions per second over the whole embedded dataset (20,988
//! crystals) for each shipped ensemble (input preparation — features or periodic graphs — and the forward
//! passes of all members, timed separately), and training wall time per epoch for the shipped configs.
//!
//! `cargo run --release --example bench_models [-- --threads 1 --epochs 1 --skip-training --skip-predict]`
//! Prints one JSON object. `--threads` sets both libtorch's and the preparation pool's threads.

use std::sync::Arc;
use std::time::Instant;

use geode::crystal::Structure;
use geode::data::{Dataset, Split};
use geode::ml::train::{self, TrainConfig, Trainer};
use geode::ml::{ensemble::Sample, shipped};
use rayon::prelude::*;
use serde_json::json;

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads").unwrap_or(1);
    let epochs: usize = arg(&args, "--epochs").unwrap_or(1);
    geode::ml::init_threads(threads);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let ds = Dataset::embedded();
    let structures: Vec<Structure> = ds.entries.iter().map(|e| e.structure.clone()).collect();
    let mut models = Vec::new();
    for name in shipped::NAMES.iter().filter(|_| !args.iter().any(|a| a == "--skip-predict")) {
        let Ok(ens) = shipped::load(name) else { continue };
        // Warm up libtorch's kernels on a few crystals.
        ens.predict(&structures[..64]).unwrap();
        let t = Instant::now();
        let arch = ens.card.architecture.clone();
        let samples: Vec<Sample> =
            pool.install(|| structures.par_iter().map(|s| geode::ml::ensemble::prepare(&arch, s)).collect());
        let prepare_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let preds = ens.predict_samples(&samples).unwrap();
        let forward_s = t.elapsed().as_secs_f64();
        assert_eq!(preds.len(), structures.len());
        let total = prepare_s + forward_s;
        models.push(json!({
            "model": name, "kind": ens.card.architecture.kind_name(), "members": ens.members.len(), "crystals": structures.len(),
            "prepare_s": prepare_s, "forward_s": forward_s, "total_s": total, "crystals_per_s": structures.len() as f64 / total,
        }));
        eprintln!("{}", models.last().unwrap());
    }
    let mut training = Vec::new();
    if !args.iter().any(|a| a == "--skip-training") {
        for name in ["composition", "graph"] {
            // The shipped configs also carry the run's `seed`, which is not a training parameter.
            let mut table: toml::Table = toml::from_str(shipped::config(name).unwrap()).unwrap();
            table.remove("seed");
            table.remove("priority");
            let mut cfg: TrainConfig = table.try_into().unwrap();
            cfg.torch_threads = threads;
            let arch = cfg.architecture();
            let t = Instant::now();
            let tr = Arc::new(pool.install(|| train::embedded_set(&arch, &cfg.targets, Split::Train)));
            let val = Arc::new(pool.install(|| train::embedded_set(&arch, &cfg.targets, Split::Val)));
            let prepare_s = t.elapsed().as_secs_f64();
            let mut trainer = Trainer::new(&cfg, tr.clone(), val, 0, 0).unwrap();
            let mut times = Vec::new();
            for _ in 0..epochs {
                let t = Instant::now();
                trainer.epoch(&|| false).unwrap();
                times.push(t.elapsed().as_secs_f64());
            }
            let per_epoch = times.iter().sum::<f64>() / times.len() as f64;
            training.push(json!({
                "config": name, "train_samples": tr.len(), "batch_size": cfg.batch_size, "prepare_s": prepare_s,
                "epoch_s": per_epoch, "epochs_timed": epochs, "member_epochs_in_shipped_run": format!("≤ {} × {}", cfg.members, cfg.epochs),
            }));
            eprintln!("{}", training.last().unwrap());
        }
    }
    println!("{}", json!({"threads": threads, "models": models, "training": training}));
}
