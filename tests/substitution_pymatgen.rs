//! Hautier substitution predictions against pymatgen's `SubstitutionPredictor(threshold=1e-3)`
//! (`composition_prediction`, both directions) for 66 oxidation-state-decorated compositions.
//! Fixture: `scripts/make_substitution_fixtures.py` (pymatgen 2026.10.24).

use geode::chem::substitution::{Direction, SubstitutionTable};
use serde_json::Value;

#[test]
fn predictions_agree_with_pymatgen() {
    let fx: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/substitution_pymatgen.json"))
            .unwrap(),
    )
    .unwrap();
    let threshold = fx["threshold"].as_f64().unwrap();
    let table = SubstitutionTable::embedded();
    let items = fx["compositions"].as_array().unwrap();
    assert!(items.len() >= 50);
    let mut total = 0;
    for it in items {
        let comp: Vec<(String, f64)> = it["species"]
            .as_array()
            .unwrap()
            .iter()
            .zip(it["amounts"].as_array().unwrap())
            .map(|(s, n)| (s.as_str().unwrap().to_string(), n.as_f64().unwrap()))
            .collect();
        for (key, dir) in [("to", Direction::ToThis), ("from", Direction::FromThis)] {
            let ours = table.predict(&comp, threshold, dir).unwrap();
            let theirs = it[key].as_array().unwrap();
            let name = format!("{} ({key})", it["formula"]);
            let pairs = |v: &Value| {
                v["substitutions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
                    .collect::<Vec<_>>()
            };
            let mut a: Vec<_> = ours.iter().map(|p| p.substitutions.clone()).collect();
            let mut b: Vec<_> = theirs.iter().map(pairs).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{name}: different suggestions");
            for (o, t) in ours.iter().zip(theirs) {
                assert!(
                    (o.probability - t["probability"].as_f64().unwrap()).abs()
                        <= 1e-12 * t["probability"].as_f64().unwrap().max(1e-3),
                    "{name}: {o:?} vs {t}"
                );
            }
            total += ours.len();
        }
    }
    assert!(total > 5000, "{total} suggestions compared");
}
