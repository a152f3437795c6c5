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
        // The polynomial path (what validity takes for many-element formulas) gives the same verdicts.
        let by_sums = (
            oxidation::validity_by_charge_sums(&c, ValidityOptions::default()).is_valid(),
            oxidation::validity_by_charge_sums(&c, no_alloys).is_valid(),
        );
        let theirs = (r[1].as_bool().unwrap(), r[2].as_bool().unwrap());
        if ours != theirs || by_sums != theirs {
            disagree.push(format!("{f}: geode {ours:?} (by charge sums {by_sums:?}), smact {theirs:?}"));
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

/// The assignment `geode chem validate` shows: the most plausible of the assignments SMACT accepts,
/// ranked by SMACT's ICSD-24 counts (fixture: `scripts/make_smact_counts.py`, which enumerates with
/// smact's own states and Pauling test); SrTiO3 → Sr2+ Ti4+ O2-, LiFePO4 → Li+ Fe2+ P5+ O2-.
#[test]
fn most_plausible_assignment_follows_icsd_frequencies() {
    let fx: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smact_plausible.json")).unwrap(),
    )
    .unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for c in cases {
        let f = c["formula"].as_str().unwrap();
        let comp = Composition::from_formula(f).unwrap();
        let ours = oxidation::most_plausible(&comp, ValidityOptions::default());
        let theirs: Option<Vec<(Element, i8)>> = c["best"].as_array().map(|qs| {
            c["elements"]
                .as_array()
                .unwrap()
                .iter()
                .zip(qs)
                .map(|(e, q)| (Element::from_symbol(e.as_str().unwrap()).unwrap(), q.as_i64().unwrap() as i8))
                .collect()
        });
        let sorted = |v: Option<Vec<(Element, i8)>>| {
            v.map(|mut v| {
                v.sort_by_key(|(e, _)| e.z());
                v
            })
        };
        assert_eq!(sorted(ours), sorted(theirs), "{f}");
    }
    let sto = Composition::from_formula("SrTiO3").unwrap();
    let v = oxidation::Verdict::ChargeBalanced(oxidation::most_plausible(&sto, ValidityOptions::default()).unwrap());
    assert_eq!(v.explain(), "charge-balanced as Sr2+ Ti4+ O2-");
    // Thirty elements: answered by the dynamic programme, and charge-neutral.
    let big =
        Composition::from_formula("H3Li10Na2K5Mg2Ca8Sr8Ba8Ti11V7Cr4Mn2Fe8Co1Ni7Cu7Zn10Al1Ga12In8Si5Ge12Sn4Pb10O200")
            .unwrap();
    if let Some(a) = oxidation::most_plausible(&big, ValidityOptions { use_pauling_test: false, ..Default::default() })
    {
        let q: i64 = a.iter().map(|(e, q)| i64::from(*q) * big.amount(*e) as i64).sum();
        assert_eq!(q, 0);
    }
}

/// A 30-element formula (issue 37) is decided by charge sums, not by walking its ~10¹⁶ combinations,
/// and the verdict is a real one: its assignment balances, and passes the Pauling test when claimed.
#[test]
fn thirty_element_formulas_are_decided_by_charge_sums() {
    let f = "H3Li10Na2K5Mg2Ca8Sr8Ba8Ti11V7Cr4Mn2Fe8Co1Ni7Cu7Zn10Al1Ga12In8Si5Ge12Sn4Pb10";
    let c = Composition::from_formula(f).unwrap();
    for opts in [ValidityOptions::default(), ValidityOptions { include_alloys: false, ..Default::default() }] {
        let v = oxidation::validity(&c, opts);
        if let oxidation::Verdict::ChargeBalanced(a) | oxidation::Verdict::FailsPauling(a) = &v {
            let q: i64 = a.iter().map(|(e, q)| i64::from(*q) * c.amount(*e) as i64).sum();
            assert_eq!(q, 0, "{v:?}");
        }
    }
    // With an anion the formula balances; the answer agrees with the walk on a smaller relative.
    let oxide = Composition::from_formula(&format!("{f}O150")).unwrap();
    let v = oxidation::validity(&oxide, ValidityOptions::default());
    let oxidation::Verdict::ChargeBalanced(a) = &v else { panic!("{f}O150: {v:?}") };
    let q: i64 = a.iter().map(|(e, q)| i64::from(*q) * oxide.amount(*e) as i64).sum();
    assert_eq!(q, 0);
    let eneg: Vec<Option<f64>> = a.iter().map(|(e, _)| oxidation::pauling_electronegativity(*e)).collect();
    assert!(oxidation::pauling_test(&a.iter().map(|(_, q)| *q).collect::<Vec<_>>(), &eneg));
    let small = Composition::from_formula("Li2Na2K2Mg3O7").unwrap();
    assert_eq!(
        oxidation::validity(&small, ValidityOptions::default()).is_valid(),
        oxidation::validity_by_charge_sums(&small, ValidityOptions::default()).is_valid()
    );
}
