//! Composition features against matminer 0.10.1 (`tests/fixtures/features_matminer.json`, made by
//! `scripts/make_feature_fixtures.py`): Magpie statistics, stoichiometry norms, valence-orbital
//! fractions and ionic character for 309 compositions.

use geode::chem::features::{N_FEATURES, composition_features, feature_names};
use geode::crystal::{Composition, Element};
use serde_json::Value;

#[test]
fn composition_features_match_matminer() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/features_matminer.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let names = feature_names();
    let rows = fx["rows"].as_array().unwrap();
    assert!(rows.len() >= 300);
    let mut compared = 0;
    let mut bad = Vec::new();
    for r in rows {
        let comp = Composition::from_pairs(
            r["amounts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(s, a)| (Element::from_symbol(s).unwrap(), a.as_f64().unwrap())),
        );
        let got = composition_features(&comp);
        assert_eq!(got.len(), N_FEATURES);
        let want = r["features"].as_array().unwrap();
        assert_eq!(want.len(), N_FEATURES - 1, "fixture has every feature but the charge-balance flag");
        for (k, w) in want.iter().enumerate() {
            let Some(w) = w.as_f64() else { continue };
            compared += 1;
            if (got[k] - w).abs() > 1e-6 * (1.0 + w.abs()) {
                bad.push(format!("{} {}: geode {} matminer {w}", r["formula"], names[k], got[k]));
            }
        }
    }
    assert!(compared > 40_000, "{compared}");
    assert!(bad.is_empty(), "{} disagreements:\n{}", bad.len(), bad[..bad.len().min(30)].join("\n"));
}
