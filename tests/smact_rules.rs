//! SMACT's chemical rules against smact 4.0.2 itself: `smact_validity` (defaults, and without alloys) on
//! 20,428 compositions (every reduced formula of the dataset plus 3,000 random ones) and `smact_filter`
//! (threshold 8) on 30 element sets. Fixture: `scripts/make_smact_fixtures.py`.

use geode::chem::oxidation::{self, OxidationSet, ValidityOptions};
use geode::crystal::{Composition, Element};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smact_validity.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn validity_agrees_with_smact() {
    let fx = fixture();
    let rows = fx["compositions"].as_array().unwrap();
    let no_alloys = ValidityOptions { include_alloys: false, ..Default::default() };
    let mut disagree = Vec::new();
    for r in rows {
        let f = r[0].as_str().unwrap();
        let c = Composition::from_formula(f).unwrap();
        let ours = (
            oxidation::validity(&c, ValidityOptions::default()).is_valid(),
            oxidation::validity(&c, no_alloys).is_valid(),
        );
        let theirs = (r[1].as_bool().unwrap(), r[2].as_bool().unwrap());
        if ours != theirs {
            disagree.push(format!("{f}: geode {ours:?}, smact {theirs:?}"));
        }
    }
    assert!(rows.len() >= 5000);
    assert!(
        disagree.is_empty(),
        "{} of {} differ: {:?}",
        disagree.len(),
        rows.len(),
        &disagree[..disagree.len().min(20)]
    );
}

#[test]
fn tables_are_smacts() {
    let fx = fixture();
    let t = &fx["tables"];
    for (sym, eneg) in t["pauling_eneg"].as_object().unwrap() {
        let el = Element::from_symbol(sym).unwrap();
        assert_eq!(oxidation::pauling_electronegativity(el), eneg.as_f64(), "{sym}");
    }
    for sym in t["metals"].as_array().unwrap() {
        assert!(oxidation::is_metal(Element::from_symbol(sym.as_str().unwrap()).unwrap()));
    }
    assert_eq!(Element::all().filter(|e| oxidation::is_metal(*e)).count(), t["metals"].as_array().unwrap().len());
    for (key, set) in
        [("ox_states_validity", OxidationSet::Icsd24Consensus), ("ox_states_filter", OxidationSet::Icsd24)]
    {
        for (sym, states) in t[key].as_object().unwrap() {
            let want: Vec<i8> = states.as_array().unwrap().iter().map(|q| q.as_i64().unwrap() as i8).collect();
            assert_eq!(
                oxidation::oxidation_states(Element::from_symbol(sym).unwrap(), set),
                want.as_slice(),
                "{key} {sym}"
            );
        }
    }
}

#[test]
fn neutral_stoichiometries_agree_with_smact_filter() {
    let fx = fixture();
    for set in fx["filter"].as_array().unwrap() {
        let els: Vec<Element> = set["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element::from_symbol(e.as_str().unwrap()).unwrap())
            .collect();
        let ours = oxidation::neutral_stoichiometries(&els, 8, OxidationSet::Icsd24).unwrap();
        let theirs = set["results"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{:?}", set["elements"]);
        for (o, t) in ours.iter().zip(theirs) {
            let q: Vec<i8> =
                t["oxidation_states"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i8).collect();
            let n: Vec<u32> =
                t["stoichiometry"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!((&o.oxidation_states, &o.amounts), (&q, &n), "{:?}", set["elements"]);
        }
    }
}
