//! Every seam of issue 29 as a user meets it through the `geode` binary: property names checked
//! everywhere with a suggestion, one expression grammar, typed run specs with keys listed by
//! `geode run KIND --help`, configs whose paths are read from their own folder, no project file from a
//! failed config or a foreign file, structure-only stdout for `show --format`, and exports with σ.

use std::path::{Path, PathBuf};

use geode::engine::store::{NewCandidate, PropValue, StepCommit};
use geode::engine::{RunSpec, Store};
use serde_json::{Value, json};

mod common;
use common::*;

/// A project with three candidates carrying predictions (mean, σ, 90 % interval), as a screen would.
fn project_with_predictions(dir: &Path) -> PathBuf {
    let path = dir.join("p.geode");
    let mut store = Store::open(&path).unwrap();
    let ds = geode::data::Dataset::embedded();
    let spec = RunSpec::default_for("analyze").unwrap();
    let run = store.create_run(&spec, 0, 0).unwrap();
    let cands: Vec<NewCandidate> = (0..3)
        .map(|i| {
            let pred =
                geode::ml::Prediction { mean: 1.0 + i as f64, std: 0.2, lo90: 0.6 + i as f64, hi90: 1.4 + i as f64 };
            let mut extra = serde_json::Map::new();
            extra.insert("template".into(), json!("SrTiO3"));
            extra.insert("model".into(), json!("composition + graph"));
            NewCandidate {
                seq: i,
                structure: ds.entries[i as usize].structure.clone(),
                stage: "constraints".into(),
                source: "template:SrTiO3".into(),
                props: vec![
                    ("band_gap".into(), PropValue::predicted(&pred)),
                    ("space_group".into(), PropValue::from(221.0)),
                    ("e_above_hull".into(), PropValue::with_std(0.01 * i as f64, 0.05)),
                ],
                extra,
                parents: Vec::new(),
            }
        })
        .collect();
    store.commit_step(run, &StepCommit { candidates: cands, ..Default::default() }).unwrap();
    path
}

#[test]
fn unknown_property_names_fail_with_a_suggestion_everywhere() {
    let d = tmp("names");
    let project = project_with_predictions(&d);
    let p = project.to_str().unwrap();
    // --where and --sort
    let (code, out, err) = geode(&["candidates", "list", "--project", p, "--where", "bandgap > 1"]);
    assert_ne!(code, 0);
    assert!(out.is_empty() && err.contains("did you mean band_gap?"), "{err}");
    let (code, _, err) = geode(&["candidates", "list", "--project", p, "--sort", "-bandgap"]);
    assert_ne!(code, 0);
    assert!(err.contains("did you mean band_gap?"), "{err}");
    // One grammar: ranges, has_tag, and an empty result that says so.
    let (code, out, _) = geode(&["candidates", "list", "--project", p, "--where", "band_gap in [1.5, 2.5]", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
    let (code, out, err) = geode(&["candidates", "list", "--project", p, "--where", "has_tag('pv')"]);
    assert_eq!(code, 0);
    assert!(out.is_empty() && err.contains("0 candidates"), "{err}");
    // Screening constraints and objectives, evolution objectives, generation targets: refused at
    // submission, and no project file is made.
    let cases = [
        ("screen", "templates = [\"SrTiO3\"]\nconstraints = [\"e_above_hul < 0.05\"]\n", "did you mean e_above_hull?"),
        ("screen", "templates = [\"SrTiO3\"]\nobjectives = [\"min bandgap\"]\n", "did you mean band_gap?"),
        ("screen", "templates = [\"SrTiO3\"]\nconstraints = [\"density < 5\"]\n", "does not compute density"),
        ("evolve", "composition = \"SrTiO3\"\nobjectives = [\"bandgap in [1, 2]\"]\n", "did you mean band_gap?"),
        (
            "generate",
            "[settings]\ntargets = [\"band_gap in [1, 2]\", \"formation_energy < 0\"]\n",
            "formation_energy_per_atom",
        ),
    ];
    for (kind, text, want) in cases {
        let cfg = d.join(format!("{kind}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let fresh = d.join(format!("new-{kind}.geode"));
        let (code, _, err) =
            geode(&["run", kind, "--config", cfg.to_str().unwrap(), "--project", fresh.to_str().unwrap()]);
        assert_ne!(code, 0, "{kind}: {text}");
        assert!(err.contains(want), "{kind}: {err}");
        assert!(!fresh.exists(), "{kind}: a failed config left a project file");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn run_help_lists_every_kind_and_every_key() {
    let (code, out, _) = geode(&["run", "--help"]);
    assert_eq!(code, 0);
    for kind in RunSpec::KINDS {
        assert!(out.contains(kind), "`geode run --help` lacks {kind}:\n{out}");
    }
    for kind in RunSpec::KINDS {
        let (code, out, err) = geode(&["run", kind, "--help"]);
        assert_eq!(code, 0, "{kind}: {err}");
        let mut keys = Vec::new();
        fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) if !m.is_empty() => {
                    for (k, x) in m {
                        leaves(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
                    }
                }
                _ => out.push(prefix.to_string()),
            }
        }
        leaves("", &RunSpec::default_for(kind).unwrap().params(), &mut keys);
        assert!(keys.len() >= 3, "{kind}");
        for k in keys {
            assert!(out.contains(&format!("  {k} = ")), "`geode run {kind} --help` lacks key {k}:\n{out}");
        }
    }
}

#[test]
fn configs_read_paths_from_their_own_folder() {
    // examples/relax_argon.toml names its structure relative to itself; run it from another folder.
    let d = tmp("relpaths");
    let cfg = root().join("examples/relax_argon.toml");
    let (code, out, err) = geode_in(
        Some(&d),
        &["run", "relax", "--config", cfg.to_str().unwrap(), "--project", "r.geode", "--threads", "1", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let run: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(run["status"], "finished");
    assert!(run["params"]["structures"][0].as_str().unwrap().ends_with("examples/ar_fcc_strained.cif"));
    assert!(d.join("r.geode").is_file());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn empty_and_foreign_files_are_never_turned_into_projects() {
    let d = tmp("foreign");
    let empty = d.join("empty.geode");
    std::fs::write(&empty, "").unwrap();
    let text = d.join("notes.txt");
    std::fs::write(&text, "my notes\n").unwrap();
    let other = d.join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);").unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    for f in [&empty, &text, &other] {
        let (code, _, err) = geode(&["runs", "list", "--project", f.to_str().unwrap()]);
        assert_ne!(code, 0, "{}", f.display());
        assert!(err.contains("not a Geode project"), "{err}");
        let (code, _, err) = geode(&["run", "analyze", "--project", f.to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(err.contains("not a Geode project"), "{err}");
    }
    assert_eq!(std::fs::read(&empty).unwrap().len(), 0);
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "my notes\n");
    assert_eq!(std::fs::read(&other).unwrap(), before);
    // A real project opens again.
    let p = project_with_predictions(&d);
    assert!(Store::open(&p).is_ok());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn show_format_writes_only_the_structure_to_stdout() {
    let d = tmp("show");
    let (code, out, err) = geode(&["dataset", "show", "3", "--format", "cif"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("formation energy"), "the summary goes to stderr: {err}");
    let f = d.join("three.cif");
    std::fs::write(&f, &out).unwrap();
    let back = geode::io::read_structures(&f).unwrap();
    let entry = geode::data::Dataset::embedded().find("3").unwrap();
    assert_eq!(back[0].reduced_formula(), entry.structure.reduced_formula());
    assert_eq!(back[0].n_sites(), entry.structure.n_sites());
    let (code, info, _) = geode(&["info", "--json", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(info.contains(&format!("\"formula\":\"{}\"", entry.structure.reduced_formula())), "{info}");
    let project = project_with_predictions(&d);
    let (code, out, err) =
        geode(&["candidates", "show", "1", "--project", project.to_str().unwrap(), "--format", "poscar"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("candidate 1"), "{err}");
    let g = d.join("POSCAR");
    std::fs::write(&g, &out).unwrap();
    assert_eq!(geode::io::read_structures(&g).unwrap().len(), 1);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn exports_carry_sigma_intervals_units_and_provenance() {
    let d = tmp("export");
    let project = project_with_predictions(&d);
    let p = project.to_str().unwrap();
    let csv_path = d.join("c.csv");
    assert_eq!(geode(&["candidates", "export", "--project", p, "--out", csv_path.to_str().unwrap()]).0, 0);
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for h in [
        "band_gap [eV]",
        "band_gap_std [eV]",
        "band_gap_lo90 [eV]",
        "band_gap_hi90 [eV]",
        "e_above_hull_std [eV/atom]",
        "space_group",
        "stage",
        "source",
        "run_id",
        "template",
        "model",
    ] {
        assert!(header.iter().any(|x| x == h), "no column {h:?} in {header:?}");
    }
    assert!(!header.iter().any(|x| x == "space_group_std"), "{header:?}");
    let col = |name: &str| header.iter().position(|x| x == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[1][col("band_gap [eV]")], "2");
    assert_eq!(&rows[1][col("band_gap_std [eV]")], "0.2");
    assert_eq!(&rows[1][col("band_gap_lo90 [eV]")], "1.6");
    assert_eq!(&rows[0][col("space_group")], "221", "integers print as integers");
    assert_eq!(&rows[0][col("template")], "SrTiO3");
    // The zip has the same table beside the structures.
    let zip_path = d.join("c.zip");
    assert_eq!(geode(&["candidates", "export", "--project", p, "--out", zip_path.to_str().unwrap()]).0, 0);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("properties.csv").unwrap(), &mut text).unwrap();
    assert_eq!(text, std::fs::read_to_string(&csv_path).unwrap());
    // JSON structures carry σ too.
    let json_path = d.join("c.json");
    assert_eq!(geode(&["candidates", "export", "--project", p, "--out", json_path.to_str().unwrap()]).0, 0);
    let back = geode::io::read_structures(&json_path).unwrap();
    assert_eq!(back[0].properties.get("band_gap_std").and_then(Value::as_f64), Some(0.2));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn multi_file_commands_skip_bad_files_alike_and_flag_unseen_elements() {
    use geode::crystal::Element;
    let d = tmp("multi");
    let good = d.join("ar.cif");
    let ar = fcc(5.26, "Ar");
    geode::io::write_structures(&good, &[ar], None).unwrap();
    let bad = d.join("bad.cif");
    std::fs::write(&bad, "data_x\n_cell_length_a 3\n").unwrap();
    let missing = d.join("missing.cif");
    let files = [bad.to_str().unwrap(), good.to_str().unwrap(), missing.to_str().unwrap()];
    for cmd in [vec!["energy", "--potential", "lj:sigma=3.405,epsilon=0.0104", "--json"], vec!["predict", "--json"]] {
        let mut args = cmd.clone();
        args.extend(files);
        let (code, out, _) = geode(&args);
        assert_eq!(code, 1, "{cmd:?}: some files failed");
        let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let errors: Vec<&Value> = lines.iter().filter(|l| l.get("error").is_some()).collect();
        assert_eq!(errors.len(), 2, "{cmd:?}: {out}");
        assert!(
            lines.iter().any(|l| l["file"] == good.to_str().unwrap() && l.get("error").is_none()),
            "{cmd:?}: {out}"
        );
    }
    // An element the shipped models never saw in training: the prediction says it is an extrapolation.
    let seen = geode::ml::embedded_training_elements();
    let unseen = (1..=94).map(|z| Element::from_z(z).unwrap()).find(|e| !seen.contains(e)).expect("an unseen element");
    let s = rock_salt(5.6, unseen.symbol(), "Cl");
    let f = d.join("unseen.cif");
    geode::io::write_structures(&f, &[s], None).unwrap();
    let (_, out, _) = geode(&["predict", "--model", "composition", "--json", f.to_str().unwrap()]);
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["extrapolation"], true, "{v}");
    assert_eq!(v["unseen_elements"][0], unseen.symbol(), "{v}");
    let (_, _, err) = geode(&["predict", "--model", "composition", f.to_str().unwrap()]);
    assert!(err.contains("extrapolation"), "{err}");
    let known = root().join("assets/examples/LiFePO4.cif");
    let (_, out, _) = geode(&["predict", "--model", "composition", "--json", known.to_str().unwrap()]);
    assert!(out.contains("\"extrapolation\":false"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}

/// `geode dataset show ID --format cif > f.cif` gives a file pymatgen reads to the same crystal as Geode
/// does (pymatgen's reading recorded by `scripts/make_show_cif_fixture.py`).
#[test]
fn show_format_cif_reads_the_same_in_geode_and_pymatgen() {
    let d = tmp("show-pmg");
    let fx = fixture("show_cif_pymatgen.json");
    let entries = fx["entries"].as_object().unwrap();
    assert!(entries.len() >= 5);
    for (id, want) in entries {
        let (code, out, err) = geode(&["dataset", "show", id, "--format", "cif"]);
        assert_eq!(code, 0, "{err}");
        let f = d.join(format!("{id}.cif"));
        std::fs::write(&f, &out).unwrap();
        let s = &geode::io::read_structures(&f).unwrap()[0];
        let p = s.lattice.params();
        let close = |a: f64, b: &Value| (a - b.as_f64().unwrap()).abs() < 1e-6;
        assert_eq!(s.n_sites() as u64, want["natoms"].as_u64().unwrap(), "{id}");
        for (k, x) in [p.a, p.b, p.c].into_iter().enumerate() {
            assert!(close(x, &want["abc"][k]), "{id}: a{k} {x} vs {}", want["abc"][k]);
        }
        for (k, x) in [p.alpha_deg, p.beta_deg, p.gamma_deg].into_iter().enumerate() {
            assert!(close(x, &want["angles"][k]), "{id}: angle {k} {x} vs {}", want["angles"][k]);
        }
        assert!(close(s.volume(), &want["volume"]), "{id}");
        let theirs = geode::crystal::Composition::from_formula(want["formula"].as_str().unwrap()).unwrap();
        assert!(
            s.composition().almost_equals_fractional(&theirs, 1e-9),
            "{id}: {} vs {}",
            s.reduced_formula(),
            want["formula"]
        );
        let (_, info, _) = geode(&["info", "--json", f.to_str().unwrap()]);
        assert_eq!(json_lines(&info)[0]["space_group_number"], want["space_group_number"], "{id}");
    }
    std::fs::remove_dir_all(&d).ok();
}
