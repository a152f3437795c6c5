//! Does relaxing with CHGNet bring rattled dataset crystals back? Picks N test-split crystals (seeded),
//! displaces every atom by a Gaussian of σ Å per Cartesian component, relaxes positions and cell with FIRE +
//! UnitCellFilter (fmax 0.05 eV/Å, ≤ 500 steps) and matches the result with the pymatgen-compatible
//! `StructureMatcher` (default tolerances) against (a) the original dataset crystal (OQMD's DFT structure)
//! and (b) the same crystal relaxed with CHGNet from its unrattled positions, which separates failures of
//! the relaxation from places where CHGNet's minimum is not OQMD's.
//!
//! `cargo run --release --example chgnet_rattle_recovery [-- --n 100 --sigma 0.1 --seed 7 --threads 2 --dump DIR]`
//! (`--dump DIR` writes the rattled input and both relaxed structures of every mismatch as CIF files, to check
//! against Python CHGNet with `scripts/check_rattle_mismatches.py DIR`).
//! Prints one line per crystal and a JSON summary.

use std::ops::ControlFlow;
use std::time::Instant;

use geode::crystal::Structure;
use geode::crystal::matcher::StructureMatcher;
use geode::data::{Dataset, Split};
use geode::energy::chgnet::Chgnet;
use geode::energy::{RelaxOptions, relax};
use nalgebra::Vector3;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok())
}

/// Box–Muller normal deviate.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn rattle(s: &Structure, sigma: f64, rng: &mut ChaCha8Rng) -> Structure {
    let cart: Vec<Vector3<f64>> =
        s.cart_coords().iter().map(|c| c + Vector3::new(normal(rng), normal(rng), normal(rng)) * sigma).collect();
    Structure::from_cart(s.lattice.clone(), s.species().to_vec(), &cart).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--n").unwrap_or(100);
    let sigma: f64 = arg(&args, "--sigma").unwrap_or(0.1);
    let seed: u64 = arg(&args, "--seed").unwrap_or(7);
    let threads: usize = arg(&args, "--threads").unwrap_or(2);
    let dump: Option<std::path::PathBuf> = arg(&args, "--dump");
    if let Some(d) = &dump {
        std::fs::create_dir_all(d).unwrap();
    }
    tch::set_num_threads(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let ds = Dataset::embedded();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pool_entries: Vec<_> =
        ds.split(Split::Test).filter(|e| e.structure.species().iter().all(|el| el.z() <= 94)).collect();
    pool_entries.shuffle(&mut rng);
    let picks: Vec<_> = pool_entries.into_iter().take(n).map(|e| (e, rattle(&e.structure, sigma, &mut rng))).collect();
    let chgnet = Chgnet::pretrained();
    let matcher = StructureMatcher::default();
    let opts = RelaxOptions::default();
    let t = Instant::now();
    #[allow(clippy::type_complexity)]
    let results: Vec<(bool, bool, bool, usize, f64, bool, bool)> = pool.install(|| {
        picks
            .par_iter()
            .map(|(e, start)| {
                let t0 = Instant::now();
                let out = relax(&chgnet, start, &opts, &mut |_, _| ControlFlow::Continue(())).unwrap();
                let matched = matcher.fit(&out.structure, &e.structure);
                let rattled_matched = matcher.fit(start, &e.structure);
                let own = relax(&chgnet, &e.structure, &opts, &mut |_, _| ControlFlow::Continue(())).unwrap();
                let matched_own = matcher.fit(&out.structure, &own.structure);
                let own_is_dft = matcher.fit(&own.structure, &e.structure);
                if let Some(d) = dump.as_ref().filter(|_| !matched) {
                    for (what, s) in [("rattled", start), ("relaxed", &out.structure), ("original-relaxed", &own.structure), ("dataset", &e.structure)] {
                        geode::io::write_structures(&d.join(format!("{}.{what}.cif", e.name)), std::slice::from_ref(s), None).unwrap();
                    }
                }
                println!(
                    "{:<28} {:>3} atoms  {:>3} steps  {}  vs DFT: {}  vs CHGNet-relaxed original: {}  (original relaxed {} DFT)  ΔE = {:+.4} eV/atom  {:.1} s",
                    e.name,
                    start.n_sites(),
                    out.steps,
                    if out.converged { "converged" } else { "NOT converged" },
                    if matched { "matches" } else { "DIFFERS" },
                    if matched_own { "matches" } else { "DIFFERS" },
                    if own_is_dft { "matches" } else { "differs from" },
                    out.evaluation.energy_per_atom() - own.evaluation.energy_per_atom(),
                    t0.elapsed().as_secs_f64()
                );
                (matched, out.converged, rattled_matched, out.steps, t0.elapsed().as_secs_f64(), matched_own, own_is_dft)
            })
            .collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let matched = results.iter().filter(|r| r.0).count();
    let converged = results.iter().filter(|r| r.1).count();
    let rattled_matched = results.iter().filter(|r| r.2).count();
    let mut steps: Vec<usize> = results.iter().map(|r| r.3).collect();
    steps.sort_unstable();
    let cpu: f64 = results.iter().map(|r| r.4).sum();
    let matched_own = results.iter().filter(|r| r.5).count();
    let own_is_dft = results.iter().filter(|r| r.6).count();
    println!(
        "{}",
        json!({
            "crystals": n, "sigma_ang": sigma, "seed": seed, "matched_dft": matched, "match_rate_dft": matched as f64 / n as f64,
            "matched_chgnet_relaxed_original": matched_own, "match_rate_chgnet_relaxed_original": matched_own as f64 / n as f64,
            "chgnet_relaxed_originals_matching_dft": own_is_dft,
            "converged": converged, "rattled_inputs_already_matching": rattled_matched,
            "steps_median": steps.get(steps.len() / 2), "steps_max": steps.last(), "wall_s": wall, "relax_cpu_s": cpu, "threads": threads,
        })
    );
}
