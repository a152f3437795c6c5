//! Multi-objective campaign: stability × band-gap window in a ternary system, searched two ways in one
//! project and compared on the same two costs.
//!
//! 1. Screening (`screen` run): every assignment of the system's elements onto the sites of ternary
//!    oxide templates from the dataset, the funnel's models, then CHGNet relaxation of the 20 best-ranked
//!    survivors onto the complete OQMD hull (`relaxed_e_above_hull`; the band gap is the one predicted in the
//!    funnel, on the template-substituted structure).
//! 2. Evolution (`evolve` run, NSGA-II): variable composition over the same elements (every
//!    charge-neutral stoichiometry), random symmetric structures and variation operators, each
//!    individual relaxed with CHGNet; objectives `e_above_hull` (complete OQMD hull via CHGNet's fitted chemical potentials) and `band_gap in [lo, hi]`
//!    (graph-network forward model on the relaxed structure).
//!
//! Costs compared: (energy above the complete OQMD hull, distance of the predicted band gap to the window).
//! The report says which screening results the evolutionary Pareto front dominates.
//!
//!     cargo run --release --no-default-features --example evolve_pareto -- Ba,Ti,O 2.0 3.0 200
//!
//! Arguments: elements (comma-separated), window low and high (eV), evolution budget (structures).

use std::path::PathBuf;

use geode::engine::query::Filter;
use geode::engine::{Engine, Store};
use serde_json::{Value, json};

fn value(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.get("value").and_then(Value::as_f64).or_else(|| x.as_f64()))
}

fn dominates(a: [f64; 2], b: [f64; 2]) -> bool {
    a[0] <= b[0] && a[1] <= b[1] && (a[0] < b[0] || a[1] < b[1])
}

/// Non-dominated members of `points` (index, costs).
fn front(points: &[(i64, String, [f64; 2])]) -> Vec<(i64, String, [f64; 2])> {
    points.iter().filter(|p| !points.iter().any(|q| dominates(q.2, p.2))).cloned().collect()
}

fn main() -> anyhow::Result<()> {
    geode::ml::init_threads(1);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let elements: Vec<String> =
        args.first().map_or("Ba,Ti,O", |s| s.as_str()).split(',').map(|s| s.trim().to_string()).collect();
    let lo: f64 = args.get(1).map_or(Ok(2.0), |s| s.parse())?;
    let hi: f64 = args.get(2).map_or(Ok(3.0), |s| s.parse())?;
    let budget: usize = args.get(3).map_or(Ok(200), |s| s.parse())?;
    let window = format!("band_gap in [{lo}, {hi}]");
    let gap_cost = |g: f64| (lo - g).max(g - hi).max(0.0);

    let dir = std::env::temp_dir().join(format!("geode-evolve-pareto-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let project: PathBuf = dir.join("campaign.geode");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = Engine::new(&project, threads, 1)?;

    // 1. Screening over ternary oxide templates of the dataset, with exhaustive element assignment.
    let candidates = [
        "SrTiO3", "CaTiO3", "MgAl2O4", "ZnGa2O4", "LiCoO2", "CuAlO2", "LiNbO3", "MgTiO3", "Sr2TiO4", "CaTi2O4",
        "Mg2TiO4", "ZnTiO3", "Ca3Ti2O7", "BaTi2O5", "Li2TiO3", "Na2Ti3O7", "FeTiO3", "NiTiO3", "PbTiO3", "CdTiO3",
    ];
    let ds = geode::data::Dataset::embedded();
    let templates: Vec<&str> =
        candidates.into_iter().filter(|t| !geode::search::enumerate::templates_for(t, ds).is_empty()).collect();
    let screen = json!({
        "templates": templates, "substitute_elements": elements, "allowed_elements": elements,
        "max_atoms": 40, "max_formation_energy": 0.5, "constraints": [window], "objectives": ["min e_above_hull", "max band_gap"],
        "min_probability": 0.0, "relax_top": 20,
    });
    let t = std::time::Instant::now();
    let screen_id = engine.submit(&geode::engine::RunSpec::from_params("screen", &screen)?, 1, 0)?;
    engine.wait_idle();
    let screen_s = t.elapsed().as_secs_f64();

    // 2. Evolution, variable composition, NSGA-II on the same two costs.
    let evolve = json!({
        "elements": elements, "max_amount": 3, "formula_units": [1, 2], "max_atoms": 14,
        "algorithm": "ga", "population": 16, "budget": budget,
        "objectives": ["e_above_hull", window],
        "relax": {"potential": "chgnet", "fmax": 0.1, "max_steps": 250},
    });
    let t = std::time::Instant::now();
    let evolve_id = engine.submit(&geode::engine::RunSpec::from_params("evolve", &evolve)?, 1, 0)?;
    engine.wait_idle();
    let evolve_s = t.elapsed().as_secs_f64();

    let store = Store::open(&project)?;
    for id in [screen_id, evolve_id] {
        let r = store.run(id)?;
        anyhow::ensure!(r.status == "finished", "run {id} ({}) {}: {:?}", r.kind, r.status, r.error);
    }
    // Screening results: the screened candidates that were relaxed carry the CHGNet hull distance
    // (`relaxed_e_above_hull`) beside the band gap predicted for them.
    let mut screened = Vec::new();
    for r in store.query_candidates(None, Some(screen_id), None, None)? {
        if let (Some(e), Some(g)) = (value(&r.properties, "relaxed_e_above_hull"), value(&r.properties, "band_gap")) {
            screened.push((r.id, r.formula.clone(), [e, gap_cost(g)]));
        }
    }
    let individuals =
        store.query_candidates(Some(&Filter::parse("stage = 'individual'")?), Some(evolve_id), None, None)?;
    let evolved: Vec<(i64, String, [f64; 2])> = individuals
        .iter()
        .filter_map(|r| {
            Some((
                r.id,
                r.formula.clone(),
                [value(&r.properties, "e_above_hull")?, gap_cost(value(&r.properties, "band_gap")?)],
            ))
        })
        .collect();
    let (sf, ef) = (front(&screened), front(&evolved));
    let dominated: Vec<&(i64, String, [f64; 2])> =
        sf.iter().filter(|s| ef.iter().any(|e| dominates(e.2, s.2))).collect();
    let matched: Vec<&(i64, String, [f64; 2])> =
        sf.iter().filter(|s| ef.iter().any(|e| e.2[0] <= s.2[0] + 1e-9 && e.2[1] <= s.2[1] + 1e-9)).collect();
    let show = |f: &[(i64, String, [f64; 2])]| {
        f.iter()
            .map(|p| json!({"candidate": p.0, "formula": p.1, "e_above_hull": p.2[0], "gap_distance": p.2[1]}))
            .collect::<Vec<_>>()
    };
    let report = json!({
        "system": elements.join("-"), "window": window, "project": project,
        "screening": {"run": screen_id, "relaxed": screened.len(), "all": show(&screened), "front": show(&sf), "seconds": screen_s},
        "evolution": {"run": evolve_id, "budget": budget, "unique_individuals": evolved.len(), "front": show(&ef), "seconds": evolve_s,
                      "result": store.run(evolve_id)?.result},
        "screening_front_points_dominated": dominated.len(), "screening_front_points_matched_or_dominated": matched.len(), "screening_front_size": sf.len(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "{}: screening front {} points, evolution front {} points; evolution dominates {} and matches or dominates {} of the screening front",
        elements.join("-"),
        sf.len(),
        ef.len(),
        dominated.len(),
        matched.len()
    );
    Ok(())
}
