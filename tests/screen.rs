//! The `screen` funnel as a run: enumeration from dataset templates, every stage recorded on every
//! candidate, hull energies consistent with the phase diagram, Pareto ranks that are truly non-dominated,
//! and the same result after cancel + resume.

use std::path::{Path, PathBuf};

use geode::crystal::Composition;
use geode::energy::PhaseDiagram;
use geode::engine::jobs::screen::STAGES;
use geode::engine::store::SortBy;
use geode::engine::{Engine, Store};
use serde_json::{Value, json};

fn tmp_project(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("geode-screen-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("p.geode");
    let _ = std::fs::remove_file(&p);
    p
}

fn params() -> Value {
    json!({
        "templates": ["NaCl", "MgO", "ZnS"],
        "threshold": 0.002,
        "excluded_elements": ["Tl", "Hg", "Cd"],
        "constraints": ["band_gap in [1.0, 8.0]", "e_above_hull < 0.3"],
        "objectives": ["min e_above_hull", "max band_gap"],
        "min_probability": 0.05,
        "chunk_size": 16,
    })
}

fn val(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.get("value").and_then(Value::as_f64).or_else(|| x.as_f64()))
}

fn rows(project: &Path, run: i64) -> Vec<(i64, String, String, Value)> {
    let store = Store::open(project).unwrap();
    store
        .query_candidates(None, Some(run), Some(&SortBy { key: "seq".into(), descending: false }), None)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.formula, r.stage, r.properties))
        .collect()
}

#[test]
fn funnel_records_every_stage_and_ranks_the_survivors() {
    let p = tmp_project("funnel");
    let engine = Engine::new(&p, 2, 1).unwrap();
    let id = engine.submit(&geode::engine::RunSpec::from_params("screen", &params()).unwrap(), 1, 0).unwrap();
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    let result = run.result.unwrap();
    let cands = rows(&p, id);
    assert!(cands.len() > 20, "{} candidates", cands.len());
    assert_eq!(result["candidates"].as_u64().unwrap() as usize, cands.len());
    // Funnel counts: non-increasing, and equal to the stages recorded on the candidates.
    let funnel: Vec<u64> = STAGES.iter().map(|s| result["funnel"][s].as_u64().unwrap()).collect();
    assert!(funnel.windows(2).all(|w| w[0] >= w[1]), "{funnel:?}");
    for (k, s) in STAGES.iter().enumerate() {
        let at_or_beyond = cands.iter().filter(|c| STAGES.iter().position(|x| *x == c.2).unwrap() >= k).count() as u64;
        assert_eq!(at_or_beyond, funnel[k], "stage {s}");
    }
    assert!(funnel[5] > 0 && funnel[5] < funnel[0], "{funnel:?}");
    let pd = PhaseDiagram::complete();
    let mut passed = Vec::new();
    for (_, formula, stage, props) in &cands {
        if stage != "constraints" {
            assert!(props["stopped"].is_string(), "{formula} at {stage} without a reason: {props}");
            continue;
        }
        // The hull energy is the phase diagram's for the predicted formation energy.
        let fe = val(props, "formation_energy_per_atom").unwrap();
        let e = pd.e_above_hull(&Composition::from_formula(formula).unwrap(), fe).unwrap().e_above_hull;
        assert!((val(props, "e_above_hull").unwrap() - e).abs() < 1e-9);
        assert!(val(props, "p_constraints").unwrap() >= 0.05);
        assert!(!formula.contains("Tl") && !formula.contains("Hg"));
        passed.push((
            val(props, "e_above_hull").unwrap(),
            -val(props, "band_gap").unwrap(),
            val(props, "pareto_rank").unwrap(),
        ));
    }
    // Rank 0 is exactly the non-dominated set.
    for a in &passed {
        let dominated = passed.iter().any(|b| b.0 <= a.0 && b.1 <= a.1 && (b.0 < a.0 || b.1 < a.1));
        assert_eq!(a.2 == 0.0, !dominated, "{a:?}");
    }
}

#[test]
fn cancelled_screen_resumes_to_the_same_result() {
    let reference = tmp_project("ref");
    let engine = Engine::new(&reference, 1, 1).unwrap();
    let id = engine.submit(&geode::engine::RunSpec::from_params("screen", &params()).unwrap(), 1, 0).unwrap();
    engine.wait_idle();
    let want = rows(&reference, id);

    let p = tmp_project("resume");
    let engine = Engine::new(&p, 1, 1).unwrap();
    let id = engine.submit(&geode::engine::RunSpec::from_params("screen", &params()).unwrap(), 1, 0).unwrap();
    // Cancel once a few chunks are in.
    let t0 = std::time::Instant::now();
    while Store::open(&p).unwrap().run(id).unwrap().progress < 0.2 && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    engine.cancel(id).unwrap();
    engine.wait_idle();
    engine.resume(id).unwrap();
    engine.wait_idle();
    assert_eq!(Store::open(&p).unwrap().run(id).unwrap().status, "finished");
    let got = rows(&p, id);
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert_eq!((a.0, &a.1, &a.2), (b.0, &b.1, &b.2));
        assert_eq!(val(&a.3, "pareto_rank"), val(&b.3, "pareto_rank"));
    }
}

#[test]
fn best_candidates_are_relaxed_with_chgnet_and_placed_on_the_complete_hull() {
    let p = tmp_project("relax");
    let engine = Engine::new(&p, 1, 1).unwrap();
    let mut params = params();
    params["relax_top"] = json!(3);
    let id = engine.submit(&geode::engine::RunSpec::from_params("screen", &params).unwrap(), 1, 0).unwrap();
    engine.wait_idle();
    let store = Store::open(&p).unwrap();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    let cands = rows(&p, id);
    // The three best survivors are relaxed (fewer when fewer pass on the complete hull).
    let result = run.result.unwrap();
    let survivors = result["passed"].as_u64().unwrap() as usize;
    let want = survivors.min(3);
    assert!(want >= 2, "{survivors} survivors");
    assert_eq!(result["relaxed"], want);
    // Each one is a relaxed candidate, or a logged failure (a potential with no minimum near it).
    let failed = store
        .logs(id)
        .unwrap()
        .iter()
        .filter(|(_, level, m)| level == "warn" && m.contains("relaxation failed"))
        .count();
    let relaxed: Vec<_> = cands.iter().filter(|c| c.2 == "relaxed").collect();
    assert_eq!(relaxed.len() + failed, want);
    assert!(!relaxed.is_empty());
    let screened: Vec<_> =
        cands.iter().filter(|c| c.2 == "constraints" && val(&c.3, "relaxed_energy_per_atom").is_some()).collect();
    assert_eq!(screened.len(), relaxed.len());
    // By default relaxed candidates go on the complete OQMD hull, CHGNet's energy put on OQMD's scale.
    let scale = geode::energy::FormationScale::chgnet();
    let pd = PhaseDiagram::complete();
    for c in &screened {
        // Relaxed the front first; the distance is the complete hull's at the scaled relaxed energy, and the
        // relaxed child carries the same numbers.
        assert_eq!(val(&c.3, "pareto_rank"), Some(0.0), "{}", c.1);
        let e = val(&c.3, "relaxed_energy_per_atom").unwrap();
        let h = val(&c.3, "relaxed_e_above_hull").unwrap();
        let comp = Composition::from_formula(&c.1).unwrap();
        let f = scale.formation_energy_per_atom(&comp, e).unwrap();
        let stored = val(&c.3, "relaxed_formation_energy_per_atom").unwrap();
        assert!((stored - f).abs() < 1e-9, "{}: ΔH_f {stored} vs {f}", c.1);
        let want = pd.e_above_hull(&comp, f).unwrap().e_above_hull;
        assert!(
            (h - want).abs() < 1e-9 && e < 0.0,
            "{}: {e} eV/atom, {h} above the complete hull (expected {want})",
            c.1
        );
        assert!(relaxed.iter().any(|r| r.1 == c.1 && val(&r.3, "relaxed_e_above_hull") == Some(h)));
    }
}
