//! Geode's `StructureMatcher` against pymatgen's verdicts on OQMD/ICSD structure pairs.
//!
//! Fixture: `tests/fixtures/matcher_pymatgen.json`, made by `scripts/make_matcher_fixtures.py`
//! (pymatgen `StructureMatcher(**cfg).fit(a, b)` for several configurations, `get_rms_dist` for the
//! default one, and one `group_structures` partition).

use std::time::Instant;

use geode::crystal::matcher::StructureMatcher;
use geode::crystal::{Element, Lattice, Structure};
use nalgebra::Vector3;
use serde::Deserialize;

#[derive(Deserialize)]
struct Embedded {
    lattice: [[f64; 3]; 3],
    species: Vec<String>,
    frac_coords: Vec<[f64; 3]>,
}

#[derive(Deserialize)]
struct Config {
    ltol: f64,
    stol: f64,
    angle_tol: f64,
    primitive_cell: bool,
    scale: bool,
    attempt_supercell: bool,
}

#[derive(Deserialize)]
struct Pair {
    kind: String,
    note: String,
    a: Embedded,
    b: Embedded,
    fit: std::collections::BTreeMap<String, bool>,
    rms_dist: Option<[f64; 2]>,
}

#[derive(Deserialize)]
struct Groups {
    structures: Vec<Embedded>,
    groups: Vec<Vec<usize>>,
}

#[derive(Deserialize)]
struct Fixture {
    configs: std::collections::BTreeMap<String, Config>,
    pairs: Vec<Pair>,
    groups: Groups,
}

fn structure(e: &Embedded) -> Structure {
    let lattice = Lattice::from_row_vectors(e.lattice).expect("fixture lattice");
    let species = e.species.iter().map(|s| Element::from_symbol(s).expect("fixture element")).collect();
    let frac = e.frac_coords.iter().map(|f| Vector3::from(*f)).collect();
    Structure::from_frac(lattice, species, frac).expect("fixture structure")
}

fn load() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/matcher_pymatgen.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture")).expect("parse fixture")
}

#[test]
fn agrees_with_pymatgen() {
    let fx = load();
    let start = Instant::now();
    let pairs: Vec<(Structure, Structure)> = fx.pairs.iter().map(|p| (structure(&p.a), structure(&p.b))).collect();
    let mut report = Vec::new();
    let mut default_disagree = 0;
    let mut total = 0;
    let mut total_disagree = 0;
    for (name, cfg) in &fx.configs {
        let m = StructureMatcher {
            ltol: cfg.ltol,
            stol: cfg.stol,
            angle_tol_deg: cfg.angle_tol,
            primitive_cell: cfg.primitive_cell,
            scale: cfg.scale,
            attempt_supercell: cfg.attempt_supercell,
        };
        for (k, (p, (a, b))) in fx.pairs.iter().zip(&pairs).enumerate() {
            let Some(&want) = p.fit.get(name) else { continue };
            let got = m.fit(a, b);
            total += 1;
            if got != want {
                total_disagree += 1;
                if name == "default" {
                    default_disagree += 1;
                }
                report.push(format!("[{name}] pair {k} ({}: {}): pymatgen {want}, geode {got}", p.kind, p.note));
            }
        }
    }
    // Normalised rms and max distance, default configuration.
    let m = StructureMatcher::default();
    let mut rms_bad = 0;
    let mut max_dev: f64 = 0.0;
    for (k, (p, (a, b))) in fx.pairs.iter().zip(&pairs).enumerate() {
        let got = m.rms_dist(a, b);
        let ok = match (got, p.rms_dist) {
            (None, None) => true,
            (Some((r, x)), Some([wr, wx])) => {
                if wr >= 1e-5 {
                    max_dev = max_dev.max((r - wr).abs()).max((x - wx).abs());
                }
                // Below 1e-5 pymatgen stops at the first superposition found, so only the scale matters.
                let tol = |w: f64| if w < 1e-5 { 1e-5 } else { 1e-6 };
                (r - wr).abs() <= tol(wr) && (x - wx).abs() <= tol(wr).max(if wr < 1e-5 { 1e-4 } else { 1e-6 })
            }
            _ => false,
        };
        if !ok {
            rms_bad += 1;
            report.push(format!(
                "[rms_dist] pair {k} ({}: {}): pymatgen {:?}, geode {:?}",
                p.kind, p.note, p.rms_dist, got
            ));
        }
    }
    let n = fx.pairs.len();
    eprintln!(
        "matcher vs pymatgen: {n} pairs, {total} (pair, config) verdicts, {total_disagree} disagreements \
         ({default_disagree} with defaults), {rms_bad} rms_dist mismatches (largest deviation {max_dev:.1e}), {:.2} s",
        start.elapsed().as_secs_f64()
    );
    for r in &report {
        eprintln!("  {r}");
    }
    assert!(n >= 250, "fixture has only {n} pairs");
    assert!(default_disagree * 100 <= n, "default config: {default_disagree} of {n} pairs disagree");
    assert!(total_disagree * 100 <= total, "{total_disagree} of {total} verdicts disagree");
    assert!(rms_bad * 100 <= n, "{rms_bad} of {n} rms_dist values disagree");
}

#[test]
fn grouping_agrees_with_pymatgen() {
    let fx = load();
    let list: Vec<Structure> = fx.groups.structures.iter().map(structure).collect();
    let mut got = StructureMatcher::default().group(&list);
    got.sort();
    let mut want = fx.groups.groups.clone();
    want.sort();
    assert_eq!(got, want);
}
