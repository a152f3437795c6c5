//! `geode hull` and `geode chem` as a user runs them, checked against pymatgen's and SMACT's answers
//! stored in the fixtures (`tests/fixtures/hull_pymatgen.json`, `smact_validity.json`).

use geode::data::Dataset;
use serde_json::Value;

mod common;
use common::*;

#[test]
fn hull_from_csv_matches_pymatgen() {
    let fx = fixture("hull_pymatgen.json");
    let ds = Dataset::embedded();
    let dir = tmp("hull");
    // A ternary system from the fixture, written as the CSVs a user would have.
    let sys = fx["systems"].as_array().unwrap().iter().find(|s| s["elements"].as_array().unwrap().len() == 3).unwrap();
    let mut refs = String::from("name,formula,formation_energy_per_atom\n");
    for id in sys["references"].as_array().unwrap() {
        let e = ds.get(id.as_u64().unwrap() as u32).unwrap();
        refs.push_str(&format!(
            "{id},{},{:?}\n",
            e.structure.composition().formula().replace(' ', ""),
            e.formation_energy_per_atom
        ));
    }
    for el in sys["elements"].as_array().unwrap() {
        refs.push_str(&format!("el:{0},{0},0\n", el.as_str().unwrap()));
    }
    let mut queries = String::from("formula,formation_energy_per_atom\n");
    for q in sys["queries"].as_array().unwrap() {
        queries.push_str(&format!("{},{:?}\n", q["formula"].as_str().unwrap(), q["energy_per_atom"].as_f64().unwrap()));
    }
    std::fs::write(dir.join("refs.csv"), refs).unwrap();
    std::fs::write(dir.join("q.csv"), queries).unwrap();
    let (code, out, err) = geode(&[
        "hull",
        "--refs",
        dir.join("refs.csv").to_str().unwrap(),
        "--query",
        dir.join("q.csv").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    let expected = sys["queries"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (r, q) in rows.iter().zip(expected) {
        assert!((r["e_above_hull"].as_f64().unwrap() - q["e_above_hull"].as_f64().unwrap()).abs() < 1e-6, "{r} vs {q}");
        let mut ours: Vec<&str> =
            r["decomposition"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
        ours.sort();
        let theirs: Vec<&str> = q["decomposition"].as_array().unwrap().iter().map(|d| d[0].as_str().unwrap()).collect();
        assert_eq!(ours, theirs, "{r}");
    }
    // `--refs dataset` is the embedded dataset, and the answers are the same.
    let (code, out, err) =
        geode(&["hull", "--refs", "dataset", "--query", dir.join("q.csv").to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    for (r, q) in json_lines(&out).iter().zip(expected) {
        assert!((r["e_above_hull"].as_f64().unwrap() - q["e_above_hull"].as_f64().unwrap()).abs() < 1e-6);
    }
    // Without --refs the complete OQMD references are used: never higher than the dataset's hull (more
    // competitors can only lower it), and each product names its source.
    let (code, out, err) = geode(&["hull", "--query", dir.join("q.csv").to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    for (r, q) in json_lines(&out).iter().zip(expected) {
        assert!(r["e_above_hull"].as_f64().unwrap() >= q["e_above_hull"].as_f64().unwrap() - 1e-9, "{r}");
        for d in r["decomposition"].as_array().unwrap() {
            assert!(
                matches!(
                    d["source"].as_str(),
                    Some("ICSD (OQMD-relaxed)" | "OQMD composition table" | "elemental reference (0 eV/atom)")
                ),
                "{d}"
            );
        }
    }
    // The text table names the products.
    let (code, out, _) = geode(&["hull", "--query", dir.join("q.csv").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("e_above_hull") && out.lines().count() == expected.len() + 2, "{out}");
}

#[test]
fn hull_bad_input_names_file_and_line() {
    let dir = tmp("bad");
    std::fs::write(dir.join("q.csv"), "formula,formation_energy_per_atom\nFe2O3,-1.7\nFe2Q3,-1\n").unwrap();
    let (code, _, err) = geode(&["hull", "--query", dir.join("q.csv").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("line 3") && err.contains("q.csv") && err.contains("Q"), "{err}");
    // Total energies against formation-energy references are refused with a reason.
    std::fs::write(dir.join("t.csv"), "formula,energy_per_atom\nFe2O3,-7.1\n").unwrap();
    let (code, _, err) = geode(&["hull", "--query", dir.join("t.csv").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("formation_energy_per_atom"), "{err}");
    // An element the references lack is reported for that query, the others still answered.
    std::fs::write(dir.join("r.csv"), "formula,formation_energy_per_atom\nFeO,-1.4\n").unwrap();
    std::fs::write(dir.join("q2.csv"), "formula,formation_energy_per_atom\nFe3O4,-1.5\nNaCl,-2\n").unwrap();
    let (code, out, _) = geode(&[
        "hull",
        "--refs",
        dir.join("r.csv").to_str().unwrap(),
        "--query",
        dir.join("q2.csv").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1);
    let rows = json_lines(&out);
    assert!(rows[0]["e_above_hull"].is_number() && rows[1]["error"].as_str().unwrap().contains("Na"), "{out}");
}

#[test]
fn chem_validate_matches_smact() {
    let fx = fixture("smact_validity.json");
    let rows: Vec<&Value> = fx["compositions"].as_array().unwrap().iter().step_by(97).collect();
    let formulas: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    let mut args = vec!["chem", "validate", "--json"];
    args.extend(&formulas);
    let (code, out, err) = geode(&args);
    assert_eq!(code, 0, "{err}");
    let got = json_lines(&out);
    assert_eq!(got.len(), rows.len());
    for (g, r) in got.iter().zip(&rows) {
        assert_eq!(g["valid"], r[1], "{g}");
        if g["reason"] == "charge_balanced" {
            assert!(g["oxidation_states"].is_object());
        }
    }
    let (code, out, _) = geode(&["chem", "validate", "Fe2O3", "Fe3O4"]);
    assert_eq!(code, 0);
    assert!(out.contains("Fe3+") && out.contains("invalid"), "{out}");
    let (code, out, _) = geode(&["chem", "stoichiometries", "Li", "O", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out).len(), fx["filter"][0]["count"].as_u64().unwrap() as usize);
    let (code, out, err) = geode(&["chem", "substitute", "Fe3+:2", "O2-:3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(identity)") && out.contains("Fe3+→"), "{out}");
    // A species given twice, a non-finite amount and a threshold that is not a probability are refused.
    for (args, needle) in [
        (vec!["Fe3+:2", "Fe3+:1", "O2-:3"], "given twice"),
        (vec!["Fe3+:nan", "O2-:3"], "positive number"),
        (vec!["Fe3+:2", "O2-:3", "--threshold", "nan"], "probability"),
        (vec!["Fe3+:2", "O2-:3", "--threshold", "1"], "probability"),
    ] {
        let mut a = vec!["chem", "substitute"];
        a.extend(args);
        let (code, _, err) = geode(&a);
        assert_ne!(code, 0, "{a:?}");
        assert!(err.contains(needle), "{a:?}: {err}");
    }
}

#[test]
fn enumerate_writes_charge_balanced_cifs() {
    let dir = tmp("enum");
    let (code, out, err) =
        geode(&["enumerate", "NaCl", "--threshold", "0.01", "--json", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert!(rows.iter().any(|r| r["formula"] == "KCl"), "{out}");
    for r in &rows {
        assert!(r["probability"].as_f64().unwrap() > 0.01);
        let f = r["file"].as_str().unwrap();
        let (code, info, err) = geode(&["info", "--json", f]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(json_lines(&info)[0]["formula"], r["formula"]);
        let (_, v, _) = geode(&["chem", "validate", "--json", r["formula"].as_str().unwrap()]);
        assert_eq!(json_lines(&v)[0]["valid"], true, "{v}");
    }
    let (code, out, _) = geode(&["enumerate", "NaCl", "--elements", "Li,K,F,Br", "--json"]);
    assert_eq!(code, 0);
    let formulas: Vec<String> = json_lines(&out).iter().map(|r| r["formula"].as_str().unwrap().to_string()).collect();
    assert!(
        formulas.contains(&"LiF".to_string())
            && formulas.contains(&"KBr".to_string())
            && !formulas.contains(&"FBr".to_string()),
        "{formulas:?}"
    );
    let (code, _, err) = geode(&["enumerate", "Xx2"]);
    assert_ne!(code, 0);
    assert!(err.contains("Xx2"), "{err}");
}

#[test]
fn enumerate_on_aflow_prototypes() {
    let (code, out, err) = geode(&["dataset", "prototypes", "B1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["aflow"], "AB_cF8_225_a_b");
    assert_eq!(v[0]["space_group"], 225);
    let (code, out, err) = geode(&["enumerate", "aflow:B1", "aflow:B3", "--elements", "Zn,Mg,O,S", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert!(rows.iter().any(|r| r["formula"] == "ZnS" && r["prototype"] == "AB_cF8_216_c_a"), "{out}");
    assert!(rows.iter().any(|r| r["formula"] == "MgO" && r["prototype"] == "AB_cF8_225_a_b"), "{out}");
    let (code, _, err) = geode(&["dataset", "prototypes", "nothing like this"]);
    assert_ne!(code, 0);
    assert!(err.contains("nothing like this"), "{err}");
}
