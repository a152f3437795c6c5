//! A user's own data and properties: labelled files in every format (bad rows named by file and line),
//! classification metrics against scikit-learn's, training and fine-tuning on the user's target, `geode
//! model eval` on any file, and the new property flowing into screening constraints and objectives, the
//! store and `--where` in a later process. Fixtures: `scripts/make_own_data_fixtures.py` (ASE's mass
//! density of 80 cells, written by ASE and pymatgen; scikit-learn's metrics).

use std::path::PathBuf;
use std::sync::Arc;

use geode::data::labelled::{self, Input, ReadOptions};
use geode::ml::train::{self, DataSource, TrainConfig};
use geode::ml::{Target, Task};
use serde_json::json;

mod common;
use common::*;

fn own(name: &str) -> PathBuf {
    root().join("tests/fixtures/own_data").join(name)
}

fn read(path: PathBuf, split: Option<&str>) -> labelled::Labelled {
    let opts =
        ReadOptions { target: "mass_density".into(), classification: false, split_column: split.map(Into::into) };
    labelled::read(&[path], &opts).unwrap()
}

#[test]
fn every_format_reads_the_same_crystals_and_names_its_bad_rows() {
    let expected = fixture("own_data/expected.json");
    let labels: Vec<f64> = expected["labels"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let cases: [(&str, Option<&str>, usize, &str); 5] = [
        ("crystals.extxyz", Some("split"), 5, "crystals.extxyz frame 6"),
        ("crystals.db", Some("split"), 7, "crystals.db id 8"),
        ("crystals.json", Some("split"), 3, "crystals.json [3]"),
        ("matbench_layout.json", None, usize::MAX, ""),
        ("cifs", None, 4, "labels.csv:6"),
    ];
    for (file, split, bad_index, origin) in cases {
        let d = read(own(file), split);
        let n_expected = if file == "cifs" { 24 } else { 80 };
        let n_bad = if file == "cifs" {
            2
        } else if bad_index == usize::MAX {
            0
        } else {
            1
        };
        assert_eq!(d.bad.len(), n_bad, "{file}: {:?}", d.bad);
        // (The folder's CSV also names one missing file, after its 24 crystals.)
        assert_eq!(d.rows.len(), n_expected - usize::from(bad_index != usize::MAX), "{file}");
        if n_bad > 0 {
            assert!(d.bad[0].origin.ends_with(origin), "{file}: {:?}", d.bad[0]);
        }
        let mut k = 0;
        for i in 0..n_expected {
            if i == bad_index {
                continue;
            }
            let r = &d.rows[k];
            k += 1;
            assert!((r.label - labels[i]).abs() < 1e-9, "{file} row {i}: {} vs {}", r.label, labels[i]);
            // The structure read is the one ASE measured: its density is the label.
            let Input::Structure(s) = &r.input else { panic!("{file}: row {i} has no structure") };
            // (ASE's and Geode's atomic masses differ in the last digits.)
            let rel = (s.density() - labels[i]).abs() / labels[i];
            assert!(rel < 1e-3, "{file} row {i}: density {} vs {}", s.density(), labels[i]);
            if split.is_some() {
                let want = expected["splits"][i].as_str().unwrap();
                assert_eq!(r.split.map(|s| s.name()), Some(want), "{file} row {i}");
            }
        }
    }
    // The CSV of a folder names the missing file on its own line.
    let d = read(own("cifs"), None);
    assert!(
        d.bad.iter().any(|b| b.origin.ends_with("labels.csv:26") && b.reason.contains("missing.cif")),
        "{:?}",
        d.bad
    );
}

#[test]
fn formula_tables_report_bad_rows_by_line_and_classes_read_as_words() {
    let d = tmp("formulas");
    let csv = d.join("f.csv");
    std::fs::write(&csv, "formula,expt_gap\nNaCl,8.5\nXx2O,1.0\nMgO,\nZnS,abc\nGaAs,1.42\nSi,inf\n").unwrap();
    let opts = ReadOptions { target: "expt_gap".into(), classification: false, split_column: None };
    let r = labelled::read(std::slice::from_ref(&csv), &opts).unwrap();
    assert_eq!(r.rows.len(), 2);
    let lines: Vec<String> = r.bad.iter().map(|b| b.origin.rsplit(':').next().unwrap().to_string()).collect();
    assert_eq!(lines, ["3", "4", "5", "7"], "{:?}", r.bad);
    assert!(r.bad[0].reason.contains("Xx2O"), "{:?}", r.bad[0]);
    let cls = d.join("c.csv");
    std::fs::write(&cls, "formula,target\nCu,yes\nNaCl,False\nFe,1\nMgO,maybe\n").unwrap();
    let opts = ReadOptions { target: "is_metal".into(), classification: true, split_column: None };
    let r = labelled::read(&[cls], &opts).unwrap();
    assert_eq!(r.rows.iter().map(|r| r.label).collect::<Vec<_>>(), [1.0, 0.0, 1.0]);
    assert!(r.bad[0].reason.contains("not a class"), "{:?}", r.bad);
    // A file of another kind is refused with the formats that are read.
    let e = labelled::read(&[d.join("f.txt")], &opts).unwrap_err();
    assert!(e.contains("f.txt"), "{e}");
}

#[test]
fn classification_metrics_match_scikit_learn() {
    let f = fixture("own_data/classification_sklearn.json");
    let v = |k: &str| -> Vec<f64> { f[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    let m = train::class_metrics(&v("p"), &v("y"), 0.5);
    for (k, ours) in [
        ("roc_auc", m.roc_auc),
        ("f1", m.f1),
        ("accuracy", m.accuracy),
        ("precision", m.precision),
        ("recall", m.recall),
        ("log_loss", m.log_loss),
        ("brier", m.brier),
    ] {
        let want = f[k].as_f64().unwrap();
        assert!((ours - want).abs() < 1e-9, "{k}: {ours} vs scikit-learn {want}");
    }
}

/// A small composition set of the shipped Matbench experimental gaps.
fn expt_gap_sets(n_train: usize) -> (train::LabelledSet, train::LabelledSet, Target) {
    let target = Target::new("expt_gap", "eV", Task::Regression, true).unwrap();
    let arch = TrainConfig { model: "composition".into(), ..Default::default() }.architecture();
    let dir = root().join("assets/matbench/matbench_cv/expt_gap");
    let opts = ReadOptions { target: "expt_gap".into(), classification: false, split_column: None };
    let set = |f: &str, n: usize| {
        let d = labelled::read(&[dir.join(f)], &opts).unwrap();
        let rows: Vec<_> = d.rows.iter().take(n).collect();
        train::set_of_rows(&arch, &rows).unwrap()
    };
    (set("train0.csv", n_train), set("val0.csv", 200), target)
}

#[test]
fn fine_tuning_starts_from_the_shipped_body_changes_it_and_loads_back() {
    geode::ml::init_threads(1);
    let (tr, val, target) = expt_gap_sets(300);
    let cfg = TrainConfig {
        model: "composition".into(),
        data: DataSource::Files {
            files: vec!["x.csv".into()],
            target: "expt_gap".into(),
            split_column: None,
            skip_bad: false,
            label: None,
        },
        targets: vec![target],
        members: 1,
        epochs: 4,
        from: Some("composition".into()),
        ..Default::default()
    };
    let mut cfg = cfg;
    cfg.resolve_from().unwrap();
    let src = geode::ml::shipped::load_ensemble("composition").unwrap();
    let (tr, val) = (Arc::new(tr), Arc::new(val));
    let t = train::Trainer::new(&cfg, tr.clone(), val.clone(), 3, 0).unwrap();
    let body = |m: &geode::ml::ensemble::Member| {
        let mut v: Vec<(String, Vec<f32>)> =
            m.vs.variables()
                .into_iter()
                .filter(|(n, _)| !n.starts_with("net.head.") && !n.starts_with("target_"))
                .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
                .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(body(&t.member), body(&src.members[0]), "fine-tuning must start from the source's body");
    let mut ens = train::train_ensemble(&cfg, tr, val.clone(), 3, &mut |_| {}).unwrap();
    assert_ne!(body(&ens.members[0]), body(&src.members[0]), "training must change the body");
    assert_eq!(ens.card.targets, vec![target]);
    let d = tmp("finetune");
    let path = d.join("ft.safetensors");
    geode::ml::checkpoint::save(&mut ens, &path).unwrap();
    let back = geode::ml::checkpoint::load(&path).unwrap();
    assert_eq!(back.card.targets[0].name(), "expt_gap");
    assert_eq!(back.card.targets[0].unit(), "eV");
    let a = ens.predict_samples(&val.samples).unwrap();
    let b = back.predict_samples(&val.samples).unwrap();
    assert_eq!(a, b, "a saved fine-tuned model predicts bit-exactly the same");
}

/// `geode run KIND --config CONFIG --project PROJECT`, then the run's candidates (`extra` filters them more).
fn run_and_list(
    kind: &str,
    config: &std::path::Path,
    project: &std::path::Path,
    extra: &[&str],
) -> Vec<serde_json::Value> {
    let (p, c) = (project.to_str().unwrap(), config.to_str().unwrap());
    let (code, stdout, err) = geode(&["run", kind, "--config", c, "--project", p, "--json"]);
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let id = run["id"].to_string();
    let mut args = vec!["candidates", "list", "--project", p, "--run", &id, "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, err) = geode(&args);
    assert_eq!(code, 0, "{err}");
    json_lines(&stdout)
}

#[test]
fn a_user_target_is_trained_evaluated_and_flows_into_screening_and_filters() {
    let d = tmp("flow");
    let out = d.join("density.safetensors");
    let project = d.join("p.geode");
    let data = own("crystals.extxyz");
    // Bad rows refuse the data unless skipped, naming the frame.
    let args = |extra: &[&str]| {
        let mut v = vec![
            "model",
            "train",
            "--data",
            data.to_str().unwrap(),
            "--target",
            "mass_density",
            "--unit",
            "g/cm³",
            "--split-column",
            "split",
            "--members",
            "2",
            "--epochs",
            "40",
            "--patience",
            "40",
            "--out",
            out.to_str().unwrap(),
            "--project",
            project.to_str().unwrap(),
            "--threads",
            "1",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a = args(&["--kind", "graph"]);
    let (code, _, err) = geode(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(code, 0);
    assert!(err.contains("crystals.extxyz frame 6") && err.contains("--skip-bad"), "{err}");
    let a = args(&["--kind", "graph", "--skip-bad"]);
    let (code, _, err) = geode(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("test mass_density"), "{err}");
    // The card says what the model is and what made it.
    let card = geode::ml::checkpoint::card_from_file(&out).unwrap();
    assert_eq!(card.targets[0].name(), "mass_density");
    assert_eq!(card.targets[0].unit(), "g/cm³");
    assert_eq!(card.data_files.len(), 1);
    assert_eq!(card.data_files[0].sha256.len(), 64);
    assert!(card.training["command"].as_str().unwrap().contains("--target mass_density"), "{}", card.training);
    assert!(card.training_elements.contains(&"Na".to_string()));
    let test = &card.metrics["mass_density"];
    assert_eq!(test["n"], json!(10), "{test}");
    // Any labelled file evaluates any model; the model beats the mean predictor on the user's property.
    let (code, stdout, err) = geode(&[
        "model",
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        own("crystals.json").to_str().unwrap(),
        "--skip-bad",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let m = &json_lines(&stdout)[0];
    assert_eq!(m["n"], json!(79));
    assert!(m["mae"].as_f64().unwrap() < 0.7 * m["baseline_mae"].as_f64().unwrap(), "{m}");
    // The domain of applicability: the training rows' 99th percentile in the model's representation, so
    // few of the (mostly training) rows fall outside it.
    let dom = card.domain.as_ref().expect("a trained model records its domain");
    assert!(dom.threshold > 0.0 && dom.mean.len() == dom.std.len());
    let n_out = m["rows_out_of_domain"].as_u64().unwrap();
    assert!(n_out <= 8, "{n_out} of 79 rows outside the domain");
    // The models list shows the user's model beside the shipped ones.
    let (code, stdout, _) = geode(&["model", "list", "--project", project.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("mass_density [g/cm³]") && stdout.contains("graph:"), "{stdout}");
    // Screening predicts it with `property_models`; constraints and objectives name it.
    let config = d.join("screen.toml");
    std::fs::write(
        &config,
        "templates = [\"NaCl\"]\nthreshold = 0.01\nproperty_models = [\"density.safetensors\"]\n\
         constraints = [\"mass_density > 2.5\"]\nobjectives = [\"max mass_density\"]\nmin_probability = 0.0\n",
    )
    .unwrap();
    let (code, _, err) =
        geode(&["run", "screen", "--config", config.to_str().unwrap(), "--project", project.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // A later process knows the property from the project: --where and --sort take it.
    let (code, stdout, err) = geode(&[
        "candidates",
        "list",
        "--project",
        project.to_str().unwrap(),
        "--where",
        "mass_density > 2.5",
        "--sort",
        "mass_density",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&stdout);
    assert!(!rows.is_empty());
    for r in &rows {
        let v = r["properties"]["mass_density"]["value"].as_f64().or_else(|| r["properties"]["mass_density"].as_f64());
        assert!(v.is_some_and(|v| v > 2.5), "{r}");
        // The user's model records a domain, so every candidate it judged carries the flag.
        assert!(r["properties"].get("out_of_domain").is_some(), "{r}");
    }
    let (code, _, err) =
        geode(&["candidates", "list", "--project", project.to_str().unwrap(), "--where", "mass_densty > 2"]);
    assert_ne!(code, 0);
    assert!(err.contains("did you mean mass_density"), "{err}");
    // Evolution maximises it (argon cells relaxed with Lennard-Jones, scored by the user's model).
    let config = d.join("evolve.toml");
    std::fs::write(
        &config,
        "composition = \"Ar\"\nformula_units = [1, 2]\npopulation = 4\nbudget = 8\nobjectives = [\"max mass_density\"]\n\
         property_model = \"density.safetensors\"\n[relax]\npotential = \"lj:sigma=3.405,epsilon=0.0104,cutoff=8.5\"\n",
    )
    .unwrap();
    let rows = run_and_list("evolve", &config, &project, &["--where", "stage = 'individual'"]);
    assert!(!rows.is_empty());
    for r in &rows {
        let v = r["properties"]["mass_density"].as_f64().or_else(|| r["properties"]["mass_density"]["value"].as_f64());
        let fit = r["properties"]["fitness"].as_f64().or_else(|| r["properties"]["fitness"]["value"].as_f64());
        assert!(v.is_some() && fit.is_some(), "{r}");
        assert!((fit.unwrap() + v.unwrap()).abs() < 1e-9, "fitness is −mass_density: {r}");
    }
    // Generation aims at it. The generator has no head for mass_density, so of each crystal's four codes
    // the run keeps the one the user's model puts highest: its crystals beat an untargeted run's by that
    // model, and each carries the model's prediction and domain flag.
    let generate = |targets: &str| {
        let config = d.join("generate.toml");
        std::fs::write(
            &config,
            format!(
                "n = 12\nbatch = 12\nproperty_models = [\"density.safetensors\"]\n[settings]\ntargets = [{targets}]\n\
                 oversample = 4\n[settings.sampling]\nsteps_per_level = 2\n"
            ),
        )
        .unwrap();
        let values: Vec<f64> = run_and_list("generate", &config, &project, &[])
            .iter()
            .map(|r| {
                assert!(r["properties"].get("out_of_domain").is_some(), "{r}");
                r["properties"]["mass_density"]["value"].as_f64().expect("mass_density predicted")
            })
            .collect();
        assert!(values.len() >= 8, "{values:?}");
        values.iter().sum::<f64>() / values.len() as f64
    };
    let aimed = generate("\"max mass_density\"");
    let free = generate("");
    assert!(aimed > free, "aimed at max mass_density: mean {aimed:.3} g/cm³; untargeted {free:.3} g/cm³");
    // Without a model that predicts the property, the run is refused at submission, naming the key.
    let config = d.join("generate-bad.toml");
    std::fs::write(&config, "n = 2\n[settings]\ntargets = [\"max mass_density\"]\n").unwrap();
    let (code, _, err) =
        geode(&["run", "generate", "--config", config.to_str().unwrap(), "--project", project.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("property_models") && err.contains("mass_density"), "{err}");
}

#[test]
fn a_torchscript_model_may_predict_a_user_property_calibrated_on_the_users_file() {
    let d = tmp("torchscript");
    let model = d.join("gap.pt");
    std::fs::copy(root().join("tests/assets/models/linear_composition.pt"), &model).unwrap();
    let val = root().join("assets/matbench/matbench_cv/expt_gap/val0.csv");
    // Without labelled files for its own property, the model cannot be calibrated, and says so.
    std::fs::write(
        d.join("gap.pt.json"),
        r#"{"input": "composition", "targets": [{"name": "ts_expt_gap", "unit": "eV"}]}"#,
    )
    .unwrap();
    let e = geode::ml::shipped::open(model.to_str().unwrap()).err().unwrap().to_string();
    assert!(e.contains("ts_expt_gap") && e.contains("calibration"), "{e}");
    std::fs::write(
        d.join("gap.pt.json"),
        format!(
            r#"{{"input": "composition", "targets": [{{"name": "ts_expt_gap", "unit": "eV"}}], "calibration": [{:?}]}}"#,
            val.display().to_string()
        ),
    )
    .unwrap();
    let m = geode::ml::shipped::open(model.to_str().unwrap()).unwrap();
    assert_eq!(m.targets()[0].name(), "ts_expt_gap");
    assert_eq!(geode::data::property::lookup("ts_expt_gap").unwrap().unit, "eV");
    let p = m.predict_compositions(&[geode::crystal::Composition::from_formula("GaAs").unwrap()]).unwrap();
    assert!(p[0][0].lo90 < p[0][0].mean && p[0][0].mean < p[0][0].hi90 && p[0][0].hi90.is_finite(), "{:?}", p[0][0]);
}
