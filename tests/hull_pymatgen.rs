//! Convex hulls against pymatgen's `PhaseDiagram`: 60 chemical systems of 2–5 elements built from the
//! embedded dataset's formation energies, 1,440 queries (energy above the hull, decomposition products and
//! fractions) and the phase-separation energy of every stable compound.
//! Fixture: `scripts/make_hull_fixtures.py` (pymatgen 2026.10.24).

use std::collections::{BTreeMap, HashMap};

use geode::crystal::{Composition, Element};
use geode::data::Dataset;
use geode::energy::{PhaseDiagram, PhaseEntry};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hull_pymatgen.json")).unwrap(),
    )
    .unwrap()
}

fn system_diagram(sys: &Value, ds: &Dataset) -> PhaseDiagram {
    let mut entries: Vec<PhaseEntry> = sys["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let e = ds.get(id.as_u64().unwrap() as u32).unwrap();
            PhaseEntry::new(id.to_string(), e.structure.composition(), e.formation_energy_per_atom)
        })
        .collect();
    for el in sys["elements"].as_array().unwrap() {
        let el = el.as_str().unwrap();
        entries.push(PhaseEntry::new(format!("el:{el}"), Composition::from_formula(el).unwrap(), 0.0));
    }
    PhaseDiagram::new(entries).unwrap()
}

fn decomposition_of(v: &Value) -> BTreeMap<String, f64> {
    v.as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_f64().unwrap())).collect()
}

fn named(pd: &PhaseDiagram, products: &[(usize, f64)]) -> BTreeMap<String, f64> {
    products.iter().map(|(i, x)| (pd.entries()[*i].name.clone(), *x)).collect()
}

fn assert_same_decomposition(ours: &BTreeMap<String, f64>, theirs: &BTreeMap<String, f64>, what: &str) {
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{what}: products differ");
    for (k, x) in theirs {
        assert!((ours[k] - x).abs() < 1e-6, "{what}: fraction of {k} {} vs pymatgen {x}", ours[k]);
    }
}

#[test]
fn hull_queries_agree_with_pymatgen() {
    let fx = fixture();
    let ds = Dataset::embedded();
    let (mut n_queries, mut n_sep, mut worst) = (0, 0, 0.0f64);
    for sys in fx["systems"].as_array().unwrap() {
        let pd = system_diagram(sys, ds);
        let els: Vec<Element> = sys["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element::from_symbol(e.as_str().unwrap()).unwrap())
            .collect();
        let system = els.iter().map(|e| e.symbol()).collect::<Vec<_>>().join("-");
        let mut stable: Vec<String> =
            pd.stable_entries(&els).unwrap().iter().map(|i| pd.entries()[*i].name.clone()).collect();
        stable.sort();
        let mut expected: Vec<String> =
            sys["stable"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        expected.sort();
        assert_eq!(stable, expected, "stable entries of {system}");
        for q in sys["queries"].as_array().unwrap() {
            let formula = q["formula"].as_str().unwrap();
            let p = pd
                .e_above_hull(&Composition::from_formula(formula).unwrap(), q["energy_per_atom"].as_f64().unwrap())
                .unwrap();
            let d = (p.e_above_hull - q["e_above_hull"].as_f64().unwrap()).abs();
            worst = worst.max(d);
            assert!(d <= 1e-6, "{system} {formula}: e_above_hull {} vs pymatgen {}", p.e_above_hull, q["e_above_hull"]);
            assert_same_decomposition(
                &named(&pd, &p.decomposition.products),
                &decomposition_of(&q["decomposition"]),
                &format!("{system} {formula}"),
            );
            n_queries += 1;
        }
        let index: HashMap<String, usize> = pd.entries().iter().enumerate().map(|(i, e)| (e.name.clone(), i)).collect();
        for s in sys["phase_separation"].as_array().unwrap() {
            let key = s["key"].as_str().unwrap();
            let p = pd.phase_separation_energy(index[key]).unwrap().expect("compounds have competing phases");
            // pymatgen solves this one with SLSQP (±1e-5); the script also stores the exact hull answer.
            let exact = s["phase_separation_energy_hull"].as_f64().unwrap();
            assert!(
                (p.e_above_hull - exact).abs() <= 1e-6,
                "{system} {key}: phase separation {} vs {exact}",
                p.e_above_hull
            );
            assert!((p.e_above_hull - s["phase_separation_energy"].as_f64().unwrap()).abs() <= 2e-5);
            // The same hull of the other compositions, asked by composition (the stability report's path).
            let without = pd.decomposition_without(&pd.entries()[index[key]].composition).unwrap();
            let hull_others = pd.formation_energy_per_atom(index[key]) - exact;
            assert!(
                (without.formation_energy_per_atom - hull_others).abs() <= 1e-6,
                "{system} {key}: hull without its composition {} vs {hull_others}",
                without.formation_energy_per_atom
            );
            assert!(p.e_above_hull < 0.0, "{system} {key} is stable, so below the others' hull");
            assert_same_decomposition(
                &named(&pd, &p.decomposition.products),
                &decomposition_of(&s["phase_separation_hull_decomposition"]),
                &format!("{system} {key} separation"),
            );
            n_sep += 1;
        }
    }
    assert!(n_queries >= 1000 && n_sep >= 500, "{n_queries} queries, {n_sep} stable compounds");
    eprintln!("{n_queries} queries and {n_sep} phase separations agree; worst |Δ e_above_hull| {worst:.2e} eV/atom");
}

/// The whole dataset as one diagram (the CLI's default references) answers every query the same way as the
/// per-system diagrams: systems are cut out of it on demand and cached.
#[test]
fn dataset_diagram_answers_like_the_system_diagrams() {
    let fx = fixture();
    let pd = PhaseDiagram::from_dataset(Dataset::embedded());
    let mut queries = Vec::new();
    let mut expected = Vec::new();
    for sys in fx["systems"].as_array().unwrap() {
        for q in sys["queries"].as_array().unwrap() {
            queries.push((
                Composition::from_formula(q["formula"].as_str().unwrap()).unwrap(),
                q["energy_per_atom"].as_f64().unwrap(),
            ));
            // Synthetic elemental entries are named by symbol here ("el:Fe" in the fixture).
            let d: BTreeMap<String, f64> = decomposition_of(&q["decomposition"])
                .into_iter()
                .map(|(k, x)| (k.strip_prefix("el:").unwrap_or(&k).to_string(), x))
                .collect();
            expected.push((q["e_above_hull"].as_f64().unwrap(), d));
        }
    }
    for ((res, (e, d)), (c, _)) in pd.e_above_hull_batch(&queries).into_iter().zip(&expected).zip(&queries) {
        let p = res.unwrap();
        assert!((p.e_above_hull - e).abs() <= 1e-6, "{c}: {} vs {e}", p.e_above_hull);
        assert_same_decomposition(&named(&pd, &p.decomposition.products), d, &c.to_string());
    }
}

/// `geode hull --refs R.csv --query Q.csv` on reference files of the kind users concatenate (several
/// systems, repeated elemental rows, elemental rows above and below 0, polymorphs, positive formation
/// energies, unreduced formulas) answers like pymatgen and never panics; the first case is the K–Mg–O file
/// of issue 30, on which `geode hull` used to panic (0.638 eV/atom in pymatgen). Fixture:
/// `scripts/make_hull_random_fixtures.py`.
#[test]
fn concatenated_reference_files_answer_like_pymatgen() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hull_random_pymatgen.json"))
            .unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let dir = std::env::temp_dir().join(format!("geode-hull-random-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() > 50);
    for (k, case) in cases.iter().enumerate() {
        let what = case["name"].as_str().unwrap();
        let mut refs = String::from("formula,formation_energy_per_atom\n");
        for r in case["rows"].as_array().unwrap() {
            refs.push_str(&format!("{},{}\n", r[0].as_str().unwrap(), r[1]));
        }
        let mut queries = String::from("formula,formation_energy_per_atom\n");
        for q in case["queries"].as_array().unwrap() {
            queries.push_str(&format!("{},{}\n", q["formula"].as_str().unwrap(), q["formation_energy_per_atom"]));
        }
        let (r, q) = (dir.join(format!("refs{k}.csv")), dir.join(format!("queries{k}.csv")));
        std::fs::write(&r, refs).unwrap();
        std::fs::write(&q, queries).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geode"))
            .args(["hull", "--refs", r.to_str().unwrap(), "--query", q.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("panicked"), "{what}: {stderr}");
        let lines: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for (got, want) in lines.iter().zip(case["queries"].as_array().unwrap()) {
            let (g, w) = (got["e_above_hull"].as_f64().unwrap(), want["e_above_hull"].as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{what}, {}: e_above_hull {g} vs pymatgen {w}", want["formula"]);
            let mut ours: BTreeMap<String, f64> = BTreeMap::new();
            for p in got["decomposition"].as_array().unwrap() {
                let f = Composition::from_formula(p["formula"].as_str().unwrap()).unwrap().reduced_formula();
                *ours.entry(f).or_default() += p["fraction"].as_f64().unwrap();
            }
            let theirs: BTreeMap<String, f64> = want["decomposition"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(f, x)| (Composition::from_formula(f).unwrap().reduced_formula(), x.as_f64().unwrap()))
                .collect();
            assert_same_decomposition(&ours, &theirs, &format!("{what}, {}", want["formula"]));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The default hull's complete references read known crystals as OQMD does: a seeded sample of
/// OQMD-relaxed ICSD entries of every cell size, each queried with its own composition and formation
/// energy, against OQMD's `stability` (both clamped at 0). The ≤ 20-atom dataset alone put 13 % of such
/// crystals more than 50 meV/atom below its hull (`cargo run --example hull_vs_oqmd` measures both).
#[test]
fn the_complete_hull_agrees_with_oqmds_stability() {
    use geode::data::hull_references::{self, Source};
    let pd = PhaseDiagram::complete();
    let icsd: Vec<_> = hull_references::complete().iter().filter(|r| r.source == Source::Icsd).collect();
    let sample: Vec<_> = icsd.iter().step_by(icsd.len() / 300).collect();
    assert!(sample.iter().any(|r| r.composition.num_atoms() > 20.0), "the sample mixes cell sizes");
    let batch: Vec<_> = sample.iter().map(|r| (r.composition.clone(), r.formation_energy_per_atom)).collect();
    let mut errors = Vec::new();
    for (r, res) in sample.iter().zip(pd.e_above_hull_batch(&batch)) {
        let p = res.unwrap();
        assert!(p.e_above_hull > -0.05, "{} lies {} eV/atom below the hull", r.name, p.e_above_hull);
        errors.push((p.e_above_hull.max(0.0) - r.oqmd_stability.unwrap().max(0.0)).abs());
    }
    let mae = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(mae < 0.002, "MAE {mae} eV/atom against OQMD's stability over {} crystals", errors.len());
}

/// The complete OQMD references against pymatgen (scripts/make_hull_complete_fixtures.py): known ICSD
/// crystals, half of them cells of more than 20 atoms, each queried with its own formation energy; pymatgen
/// built each query's chemical system from every reference in it.
#[test]
fn the_complete_references_agree_with_pymatgen() {
    let fx: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hull_complete_pymatgen.json"))
            .unwrap(),
    )
    .unwrap();
    let pd = PhaseDiagram::complete();
    let queries = fx["queries"].as_array().unwrap();
    let big = queries.iter().filter(|q| q["n_atoms"].as_f64().unwrap() > 20.0).count();
    assert!(queries.len() >= 200 && big >= 100, "{} queries, {big} of more than 20 atoms", queries.len());
    let mut worst = 0f64;
    for q in queries {
        let formula = q["formula"].as_str().unwrap();
        let c = Composition::from_formula(formula).unwrap();
        let p = pd.e_above_hull(&c, q["formation_energy_per_atom"].as_f64().unwrap()).unwrap();
        let d = (p.e_above_hull - q["e_above_hull"].as_f64().unwrap()).abs();
        worst = worst.max(d);
        assert!(d <= 1e-6, "{formula}: e_above_hull {} vs pymatgen {}", p.e_above_hull, q["e_above_hull"]);
        // Same products (by reduced formula: equal-energy polymorphs may stand in for each other) and fractions.
        let mut ours: Vec<(String, f64)> = p
            .decomposition
            .products
            .iter()
            .map(|(k, x)| (pd.entries()[*k].composition.reduced_formula(), *x))
            .collect();
        ours.sort_by(|a, b| a.0.cmp(&b.0));
        let theirs: Vec<(String, f64)> = q["decomposition"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["formula"].as_str().unwrap().to_string(), d["fraction"].as_f64().unwrap()))
            .collect();
        assert_eq!(
            ours.iter().map(|o| &o.0).collect::<Vec<_>>(),
            theirs.iter().map(|o| &o.0).collect::<Vec<_>>(),
            "{formula}"
        );
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a.1 - b.1).abs() < 1e-6, "{formula}: {a:?} vs {b:?}");
        }
    }
    eprintln!(
        "{} queries on the complete references agree with pymatgen; worst |Δ| {worst:.2e} eV/atom",
        queries.len()
    );
}
