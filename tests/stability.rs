//! Stability on the DFT hull (issue 30): the test cases' hull without their own composition against OQMD's
//! own `stability` field; `geode dataset scale` fitting and checking chemical potentials from an energies
//! table, with errors naming the file and line.

use geode::data::{Dataset, Split};
use geode::energy::PhaseDiagram;
use geode::search::stability::cases;

mod common;
use common::*;

/// OQMD's `stability` of a phase on its hull is how far it lies below the hull of the other compositions
/// (negative); the stability report's truth, the complete hull without the crystal's composition, reproduces
/// it. For phases above OQMD's hull, `stability` is the distance to the full hull (their own composition's
/// lower polymorphs included), which leaving the composition out can only lower.
#[test]
fn the_hull_without_a_composition_reproduces_oqmds_stability() {
    let ds = Dataset::embedded();
    let pd = PhaseDiagram::complete();
    let cs = cases(ds, Split::Test, &pd);
    assert!(cs.len() > 2000, "{} cases", cs.len());
    let stability: std::collections::HashMap<u32, f64> = ds.entries.iter().map(|e| (e.id, e.stability)).collect();
    let (on, above): (Vec<_>, Vec<_>) = cs.iter().partition(|c| stability[&c.id] < 0.0);
    let errors: Vec<f64> = on.iter().map(|c| (c.e_above_hull() - stability[&c.id]).abs()).collect();
    let mae = errors.iter().sum::<f64>() / errors.len() as f64;
    let within = errors.iter().filter(|e| **e < 0.01).count() as f64 / errors.len() as f64;
    let lower =
        above.iter().filter(|c| c.e_above_hull() <= stability[&c.id] + 0.01).count() as f64 / above.len() as f64;
    eprintln!(
        "{} test compounds on OQMD's hull: MAE {mae:.4} eV/atom against its stability, {within:.3} within 10 meV/atom; {} above it: {lower:.3} at or below their stability",
        on.len(),
        above.len()
    );
    assert!(on.len() > 1000 && mae < 0.005 && within > 0.9, "MAE {mae}, within 10 meV {within}");
    assert!(lower > 0.95, "{lower}");
}

#[test]
fn scale_fits_and_checks_a_table_and_names_bad_rows() {
    let dir = tmp("scale");
    // The shipped single points of the first 3,000 dataset crystals.
    let text = {
        let mut gz = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(
                &include_bytes!("../assets/potentials/chgnet-0.3.0-references.csv.gz")[..],
            ),
            &mut gz,
        )
        .unwrap();
        String::from_utf8(gz).unwrap()
    };
    let lines: Vec<&str> = text.lines().collect();
    let energies = dir.join("e.csv");
    std::fs::write(&energies, lines[..3000].join("\n") + "\n").unwrap();
    let fitted = dir.join("scale.csv");
    let (code, out, err) =
        geode(&["dataset", "scale", "--energies", energies.to_str().unwrap(), "--out", fitted.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("fitted") && out.contains("test   all"), "{out}\n{err}");
    let scale = geode::energy::FormationScale::read(&fitted).unwrap();
    assert_eq!(scale.potential, "chgnet-0.3.0");
    assert!(scale.mu.len() > 50);
    let (code, out, err) = geode(&[
        "dataset",
        "scale",
        "--energies",
        energies.to_str().unwrap(),
        "--scale",
        fitted.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = json_lines(&out);
    let test_all =
        v[0]["mae"].as_array().unwrap().iter().find(|r| r["split"] == "test" && r["family"] == "all").unwrap();
    assert!(test_all["mae"].as_f64().unwrap() < 0.06, "{test_all}");
    // A row whose formula is not the dataset crystal's, and an unknown id, are named with their line.
    let bad = dir.join("bad.csv");
    let id_line = lines.iter().position(|l| l.starts_with("oqmd-icsd-")).unwrap();
    let fields: Vec<&str> = lines[id_line].splitn(3, ',').collect();
    std::fs::write(&bad, format!("{}\n{},Xe2,{}\n", lines[0], fields[0], fields[2])).unwrap();
    let (code, _, err) =
        geode(&["dataset", "scale", "--energies", bad.to_str().unwrap(), "--out", fitted.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.csv line") && err.contains("Xe2"), "{err}");
    std::fs::write(&bad, format!("{}\noqmd-icsd-999999999,NaCl,-3.0,false,0,true\n", lines[0])).unwrap();
    let (code, _, err) =
        geode(&["dataset", "scale", "--energies", bad.to_str().unwrap(), "--out", fitted.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("line 2") && err.contains("999999999"), "{err}");
    // A malformed scale file names its line.
    std::fs::write(&bad, "kind,key,value,rows\nmu,Li,abc,3\n").unwrap();
    let (code, _, err) =
        geode(&["dataset", "scale", "--energies", energies.to_str().unwrap(), "--scale", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.csv: line 2"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
