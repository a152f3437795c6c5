//! How Geode's hulls read known crystals, against OQMD's own `stability` field (issue 30's measure):
//! a seeded random sample of OQMD-relaxed ICSD entries of every cell size, each queried with its own
//! composition and formation energy against (a) the complete references and (b) the embedded ≤ 20-atom
//! dataset. Both numbers are clamped at 0 before comparing (OQMD reports negative distances for stable
//! phases; a query that is itself a reference sits at 0).
//!
//!     cargo run --release --example hull_vs_oqmd -- [N]

use geode::data::Dataset;
use geode::data::hull_references::{self, Source};
use geode::energy::PhaseDiagram;
use rand::SeedableRng;
use rand::seq::IndexedRandom;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let t0 = std::time::Instant::now();
    let complete = PhaseDiagram::complete();
    let t_build = t0.elapsed().as_secs_f64();
    let dataset = PhaseDiagram::from_dataset(Dataset::embedded());
    let icsd: Vec<_> = hull_references::complete().iter().filter(|r| r.source == Source::Icsd).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(30);
    let sample: Vec<_> = icsd.choose_multiple(&mut rng, n).collect();
    let big = sample.iter().filter(|r| r.composition.num_atoms() > 20.0).count();
    let batch: Vec<_> = sample.iter().map(|r| (r.composition.clone(), r.formation_energy_per_atom)).collect();
    let t1 = std::time::Instant::now();
    let on_complete = complete.e_above_hull_batch(&batch);
    let t_query = t1.elapsed().as_secs_f64();
    let on_dataset = dataset.e_above_hull_batch(&batch);
    for (name, results) in [("complete references", &on_complete), ("embedded dataset (≤ 20 atoms)", &on_dataset)] {
        let mut abs = Vec::new();
        let mut below = 0;
        for (r, res) in sample.iter().zip(results.iter()) {
            let Ok(p) = res else { continue };
            let ours = p.e_above_hull.max(0.0);
            let theirs = r.oqmd_stability.unwrap_or(0.0).max(0.0);
            abs.push((ours - theirs).abs());
            below += usize::from(p.e_above_hull < -0.05);
        }
        let mae = abs.iter().sum::<f64>() / abs.len().max(1) as f64;
        println!(
            "{name}: {} of {n} answered; MAE vs OQMD stability {:.4} eV/atom; {} ({:.2} %) more than 50 meV/atom below the hull",
            abs.len(),
            mae,
            below,
            100.0 * below as f64 / abs.len().max(1) as f64
        );
    }
    println!(
        "sample: {n} ICSD entries, {big} with more than 20 atoms per cell; complete diagram built in {t_build:.1} s, {n} queries in {t_query:.2} s"
    );
}
