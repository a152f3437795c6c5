//! Property models as a user meets them: `geode run train` writes an ensemble with its card and
//! records it in the project; `geode predict` and `geode model eval` use it, a TorchScript model, or
//! the shipped models; a cancelled training run resumes; bad configs name the key.

use std::path::PathBuf;

use geode::engine::{Engine, Store};
use serde_json::{Value, json};

mod common;
use common::*;

fn check_prediction(v: &Value, target: &str) {
    let p = &v[target];
    let (mean, std, lo, hi) = (
        p["mean"].as_f64().unwrap(),
        p["std"].as_f64().unwrap(),
        p["lo90"].as_f64().unwrap(),
        p["hi90"].as_f64().unwrap(),
    );
    assert!(mean.is_finite() && std >= 0.0 && lo <= mean && mean <= hi, "{target}: {p}");
    if target == "band_gap" {
        assert!(mean >= 0.0 && lo >= 0.0, "band gap must not be negative: {p}");
    }
}

#[test]
fn train_predict_and_evaluate_a_small_composition_ensemble() {
    let d = tmp("train");
    let out = d.join("tiny.safetensors");
    let config = d.join("train.toml");
    std::fs::write(&config, format!("name = \"tiny\"\nmodel = \"composition\"\nmembers = 2\nepochs = 3\nlimit_train = 600\ntorch_threads = 1\nout = \"{}\"\n[composition]\nhidden = 32\nblocks = 1\n", out.display())).unwrap();
    let project = d.join("p.geode");
    let (code, stdout, err) = geode(&[
        "run",
        "train",
        "--config",
        config.to_str().unwrap(),
        "--project",
        project.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let run = &json_lines(&stdout)[0];
    assert_eq!(run["status"], "finished");
    assert_eq!(run["result"]["members"], 2);
    assert!(run["result"]["test"]["formation_energy_per_atom"]["mae"].as_f64().unwrap() > 0.0);
    assert!(out.is_file());
    assert!(!PathBuf::from(format!("{}.partial", out.display())).exists(), "partial weights are cleaned up");

    let store = Store::open(&project).unwrap();
    let models = store.models().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].path, out.display().to_string());
    assert_eq!(store.metrics(1, "train_loss").unwrap().len(), 6, "one loss point per epoch and member");

    let example = root().join("assets/examples/LiFePO4.cif");
    let (code, stdout, err) =
        geode(&["predict", example.to_str().unwrap(), "--model", out.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let p = &json_lines(&stdout)[0];
    assert_eq!(p["formula"], "LiFePO4");
    check_prediction(p, "formation_energy_per_atom");
    check_prediction(p, "band_gap");

    let (code, stdout, err) = geode(&["model", "eval", "--model", out.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&stdout);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert!(r["n"].as_u64().unwrap() > 1500, "{r}");
        for k in ["mae", "rmse", "r2", "coverage90", "mean_width90", "baseline_mae"] {
            assert!(r[k].as_f64().is_some_and(f64::is_finite), "{k} in {r}");
        }
    }
    // The card's test metrics are what `model eval` measures.
    let fe = rows.iter().find(|r| r["target"] == "formation_energy_per_atom").unwrap();
    let card_mae = run["result"]["test"]["formation_energy_per_atom"]["mae"].as_f64().unwrap();
    assert!((fe["mae"].as_f64().unwrap() - card_mae).abs() < 1e-6);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn cancelled_training_resumes_to_a_complete_model() {
    geode::ml::init_threads(1);
    let d = tmp("resume");
    let project = d.join("p.geode");
    let out = d.join("r.safetensors");
    let params = json!({"name": "r", "model": "composition", "members": 2, "epochs": 6, "patience": 6, "limit_train": 500, "torch_threads": 1,
                        "out": out.display().to_string(), "composition": {"hidden": 16, "blocks": 1, "dropout": 0.0}});
    let engine = Engine::new(&project, 1, 1).unwrap();
    let id = engine.submit(&geode::engine::RunSpec::from_params("train", &params).unwrap(), 4, 0).unwrap();
    let store = Store::open(&project).unwrap();
    // Cancel once a few epochs are committed.
    let t0 = std::time::Instant::now();
    while store.metrics(id, "train_loss").unwrap().len() < 3 {
        assert!(t0.elapsed().as_secs() < 120, "training made no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    engine.cancel(id).unwrap();
    engine.wait_idle();
    assert_eq!(store.run(id).unwrap().status, "cancelled");
    assert!(!out.exists());
    let done_before = store.metrics(id, "train_loss").unwrap().len();
    assert!(done_before < 12);
    engine.resume(id).unwrap();
    engine.wait_idle();
    let run = store.run(id).unwrap();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    assert_eq!(store.metrics(id, "train_loss").unwrap().len(), 12, "every epoch of both members ran exactly once");
    let ens = geode::ml::checkpoint::load(&out).unwrap();
    assert_eq!(ens.members.len(), 2);
    assert_eq!(ens.card.conformal.len(), 2);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn torchscript_models_work_from_the_command_line() {
    let model = root().join("tests/assets/models/linear_composition.pt");
    let example = root().join("assets/examples/LiFePO4.cif");
    let (code, stdout, err) =
        geode(&["predict", example.to_str().unwrap(), "--model", model.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let p = &json_lines(&stdout)[0];
    check_prediction(p, "formation_energy_per_atom");
    assert!(p.get("band_gap").is_none());
    let (code, stdout, err) = geode(&["model", "eval", "--model", model.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&stdout).len(), 1);
}

#[test]
fn bad_inputs_are_named() {
    let d = tmp("bad");
    let project = d.join("p.geode");
    let config = d.join("t.toml");
    for (text, key) in [
        ("model = \"composition\"\nepochs = 0\n", "epochs"),
        ("model = \"transformer\"\n", "model"),
        ("model = \"composition\"\nlearning_rat = 0.1\n", "learning_rat"),
        ("model = \"graph\"\n[data]\nsource = \"formula_tables\"\nformation_energy = []\nband_gap = []\n", "data"),
    ] {
        std::fs::write(&config, text).unwrap();
        let (code, _, err) =
            geode(&["run", "train", "--config", config.to_str().unwrap(), "--project", project.to_str().unwrap()]);
        assert_ne!(code, 0, "{text}");
        assert!(err.contains(key), "{text}: {err}");
    }
    let example = root().join("assets/examples/LiFePO4.cif");
    let (code, _, err) = geode(&["predict", example.to_str().unwrap(), "--model", "no-such-model"]);
    assert_ne!(code, 0);
    assert!(err.contains("no-such-model") && err.contains("graph"), "{err}");
    let (code, stdout, _) = geode(&[
        "predict",
        root().join("tests/assets/malformed/truncated.cif").to_str().unwrap(),
        "--model",
        root().join("tests/assets/models/linear_composition.pt").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1);
    assert!(json_lines(&stdout)[0]["error"].as_str().unwrap().contains("truncated.cif"));
    std::fs::remove_dir_all(&d).ok();
}

/// The shipped models meet the goals of the forward-model issue on the embedded test split
/// (grouped by formula): formation energy MAE ≤ 0.07 eV/atom (graph) and ≤ 0.10 (composition), band gap
/// MAE ≤ 0.45 eV, conformal 90 % coverage within 0.88–0.92, and σ ranking formation-energy errors
/// (Spearman > 0.3). Every model whose weights are installed in `assets/models/` is checked.
#[test]
fn shipped_models_meet_their_goals_on_the_test_split() {
    let mut checked = 0;
    // The issue's goals hold for the two models trained on the embedded dataset. composition-oqmd is trained
    // on crabnet's OQMD table (338k formulas, mostly hypothetical structures' hull energies) and only
    // transferred to this ICSD test split; it is held to what it measured when shipped (MAE 0.152 eV/atom,
    // Spearman 0.24) with a margin, so a regression still fails.
    for (name, fe_goal, rho_goal) in [("graph", 0.07, 0.3), ("composition", 0.10, 0.3), ("composition-oqmd", 0.16, 0.2)]
    {
        if !root().join(format!("assets/models/{name}.safetensors")).exists() {
            continue;
        }
        let (code, stdout, err) = geode(&["model", "eval", "--model", name, "--json"]);
        assert_eq!(code, 0, "{err}");
        for v in json_lines(&stdout) {
            let (mae, cov, rho) = (
                v["mae"].as_f64().unwrap(),
                v["coverage90"].as_f64().unwrap(),
                v["spearman_std_error"].as_f64().unwrap(),
            );
            assert!(v["n"].as_u64().unwrap() > 1500, "{v}");
            assert!(mae < v["baseline_mae"].as_f64().unwrap() / 2.0, "{name}: no better than the mean predictor: {v}");
            match v["target"].as_str().unwrap() {
                "formation_energy_per_atom" => {
                    assert!(mae <= fe_goal, "{name}: formation energy MAE {mae} > {fe_goal}");
                    assert!(rho > rho_goal, "{name}: σ does not rank errors (Spearman {rho})");
                }
                "band_gap" => assert!(mae <= 0.45, "{name}: band gap MAE {mae} > 0.45"),
                t => panic!("unexpected target {t}"),
            }
            assert!((0.88..=0.92).contains(&cov), "{name} {}: coverage {cov}", v["target"]);
            checked += 1;
        }
    }
    assert!(checked >= 2, "the composition model ships with the repository");
}
