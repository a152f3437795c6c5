//! `geode model benchmark TASK`: Matbench v0.1 tasks with Matbench's protocol, fold by fold.
//!
//! Matbench scores a model by five-fold cross-validation (`KFold(n_splits=5, shuffle=True,
//! random_state=18012019)` over the dataset in Matbench's order) and reports the mean test score over the
//! folds. The composition tasks use CrabNet's copies of those folds (`crabnet==2.0.8`,
//! `crabnet/data/matbench_cv/TASK/{train,val,test}{i}.csv`, shipped in `assets/matbench/`): `test{i}` is
//! Matbench's test fold i, and `train{i}` + `val{i}` its training fold, of which `val{i}` serves for early
//! stopping and calibration only. `matbench_dielectric` uses crystal-toolkit's copy of the 4,764 MP
//! structures (`assets/matbench/matbench_dielectric.json.gz`, in Matbench's order) with Matbench's folds
//! computed by scikit-learn (`matbench_dielectric_folds.json`, checked against CrabNet's fold files by
//! `scripts/make_matbench_folds.py`); inside each training fold the rows whose reduced formula hashes to the
//! validation bucket (about 10 %) serve for early stopping and calibration.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::data::labelled::{self, ReadOptions};
use crate::ml::train::{self, DataSource, TrainConfig};
use crate::ml::{Target, Task};

#[derive(Debug, clap::Args)]
pub struct BenchmarkArgs {
    /// matbench_expt_gap (experimental band gap from composition, MAE), matbench_expt_is_metal
    /// (metallicity from composition, ROC-AUC) or matbench_dielectric (refractive index from structure, MAE)
    pub task: String,
    /// composition or graph (default: graph for structure tasks, composition otherwise; with --from, the
    /// source model's)
    #[arg(long)]
    pub kind: Option<String>,
    /// Folder holding `matbench_cv/` (default: the shipped assets/matbench)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folds to run (default: all five), e.g. 0,1
    #[arg(long, value_delimiter = ',')]
    pub folds: Vec<usize>,
    /// Fine-tune from this ensemble (a shipped name such as composition, or a .safetensors file)
    #[arg(long)]
    pub from: Option<String>,
    #[command(flatten)]
    pub schedule: super::model_cmd::Schedule,
    /// Write each fold's ensemble as DIR/TASK-fold{i}.safetensors
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Seed of the members' initial weights and mini-batch order (fold i uses seed + i)
    #[arg(long, default_value_t = 0, value_parser = crate::cli::whole_u64)]
    pub seed: u64,
    /// One JSON object per fold, then one for the mean
    #[arg(long)]
    pub json: bool,
}

/// Where a task's rows and folds come from.
enum Source {
    /// CrabNet's `matbench_cv/FOLDER/{train,val,test}{i}.csv` (formulas).
    CrabnetFolds(&'static str),
    /// A file of structures (label in `column`) and a JSON of each fold's test indices.
    Structures { file: &'static str, column: &'static str, folds: &'static str },
}

/// A benchmark task: its data, target and metric.
struct TaskDef {
    name: &'static str,
    source: Source,
    target: &'static str,
    unit: &'static str,
    task: Task,
}

const TASKS: [TaskDef; 3] = [
    TaskDef {
        name: "matbench_expt_gap",
        source: Source::CrabnetFolds("expt_gap"),
        target: "expt_gap",
        unit: "eV",
        task: Task::Regression,
    },
    TaskDef {
        name: "matbench_expt_is_metal",
        source: Source::CrabnetFolds("expt_is_metal"),
        target: "expt_is_metal",
        unit: "",
        task: Task::Classification,
    },
    TaskDef {
        name: "matbench_dielectric",
        source: Source::Structures {
            file: "matbench_dielectric.json.gz",
            column: "n",
            folds: "matbench_dielectric_folds.json",
        },
        target: "refractive_index",
        unit: "",
        task: Task::Regression,
    },
];

fn default_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/matbench"))
}

pub fn run(a: &BenchmarkArgs) -> anyhow::Result<i32> {
    let Some(def) = TASKS.iter().find(|t| t.name == a.task) else {
        let names: Vec<&str> = TASKS.iter().map(|t| t.name).collect();
        let near = crate::data::property::closest(&a.task, names.iter().copied());
        bail!(
            "unknown benchmark task {:?}{}: expected one of {}",
            a.task,
            if near.is_empty() { String::new() } else { format!(" (did you mean {}?)", near.join(" or ")) },
            names.join(", ")
        );
    };
    let base = a.data.clone().unwrap_or_else(default_dir);
    let folds: Vec<usize> = if a.folds.is_empty() { (0..5).collect() } else { a.folds.clone() };
    if let Some(f) = folds.iter().find(|&&f| f >= 5) {
        bail!("--folds: fold {f} does not exist (Matbench has folds 0-4)");
    }
    let target =
        Target::new(def.target, def.unit, def.task, def.task == Task::Regression).map_err(anyhow::Error::msg)?;
    let structures = matches!(def.source, Source::Structures { .. });
    let mut cfg = TrainConfig {
        name: def.name.into(),
        model: a.kind.clone().unwrap_or_else(|| if structures { "graph" } else { "composition" }.into()),
        data: DataSource::Files {
            files: vec![base.display().to_string()],
            target: def.target.into(),
            split_column: None,
            skip_bad: false,
            label: None,
        },
        targets: vec![target],
        from: a.from.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..a.schedule.apply(TrainConfig::default())
    };
    cfg.resolve_from()?;
    if !["composition", "graph"].contains(&cfg.model.as_str()) {
        bail!("--kind {:?}: expected composition or graph", cfg.model);
    }
    if cfg.model == "graph" && !structures {
        bail!("{} has formulas only: it needs a composition model", def.name);
    }
    let arch = cfg.architecture();
    crate::ml::init_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let classification = def.task == Task::Classification;
    // A bad training row is skipped and reported (CrabNet's expt_is_metal folds hold a few formulas whose
    // duplicates disagreed, labelled 0.5); a bad test row stops the benchmark.
    let skipped = std::cell::Cell::new(0usize);
    let read_file = |p: PathBuf, column: &str, may_skip: bool| -> anyhow::Result<Vec<labelled::Row>> {
        let opts = ReadOptions { target: column.into(), classification, split_column: None };
        let d = labelled::read(std::slice::from_ref(&p), &opts).map_err(anyhow::Error::msg)?;
        if let Some(b) = d.bad.first() {
            if !may_skip {
                bail!("{}: {} ({} bad rows in all)", b.origin, b.reason, d.bad.len());
            }
            for b in &d.bad {
                eprintln!("skipped training row {}: {}", b.origin, b.reason);
            }
            skipped.set(skipped.get() + d.bad.len());
        }
        Ok(d.rows)
    };
    // Structure tasks: every row once, and the folds' test indices.
    let (all_rows, fold_tests): (Vec<labelled::Row>, Vec<Vec<usize>>) = match &def.source {
        Source::CrabnetFolds(_) => (Vec::new(), Vec::new()),
        Source::Structures { file, column, folds } => {
            let rows = read_file(base.join(file), column, false)?;
            let f = base.join(folds);
            let v: Value = serde_json::from_str(
                &std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?,
            )
            .with_context(|| format!("{}: not JSON", f.display()))?;
            let tests: Vec<Vec<usize>> = serde_json::from_value(v["folds"].clone())
                .with_context(|| format!("{}: no \"folds\" list of index lists", f.display()))?;
            if v["n"].as_u64() != Some(rows.len() as u64) || tests.len() != 5 {
                bail!("{}: folds for {} rows, but {} has {}", f.display(), v["n"], file, rows.len());
            }
            (rows, tests)
        }
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    let mut scores = Vec::new();
    for &fold in &folds {
        skipped.set(0);
        let prep = std::time::Instant::now();
        let (tr, val, test) = match &def.source {
            Source::CrabnetFolds(folder) => {
                let dir = base.join("matbench_cv").join(folder);
                let set = |part: &str| -> anyhow::Result<train::LabelledSet> {
                    let rows = read_file(dir.join(format!("{part}{fold}.csv")), def.target, part != "test")?;
                    Ok(train::set_of_rows(&arch, &rows.iter().collect::<Vec<_>>())?)
                };
                (set("train")?, set("val")?, set("test")?)
            }
            Source::Structures { .. } => {
                let test: std::collections::BTreeSet<usize> = fold_tests[fold].iter().copied().collect();
                let (mut tr, mut val, mut te) = (Vec::new(), Vec::new(), Vec::new());
                for (i, r) in all_rows.iter().enumerate() {
                    if test.contains(&i) {
                        te.push(r);
                    } else if crate::data::Split::of_formula(&r.reduced_formula()) == crate::data::Split::Val {
                        val.push(r);
                    } else {
                        tr.push(r);
                    }
                }
                (train::set_of_rows(&arch, &tr)?, train::set_of_rows(&arch, &val)?, train::set_of_rows(&arch, &te)?)
            }
        };
        // Reading and preparing inputs (periodic graphs or composition features) happens once per fold.
        let prepare_seconds = prep.elapsed().as_secs_f64();
        let n_train = tr.len();
        let t0 = std::time::Instant::now();
        let mut epochs = 0usize;
        let mut samples_seen = 0usize;
        let mut parts = [0.0f64; 4];
        let mut ens =
            train::train_ensemble(&cfg, Arc::new(tr.clone()), Arc::new(val.clone()), a.seed + fold as u64, &mut |r| {
                epochs += 1;
                samples_seen += n_train;
                for (p, s) in parts.iter_mut().zip(r.seconds) {
                    *p += s;
                }
            })
            .with_context(|| format!("fold {fold}"))?;
        let seconds = t0.elapsed().as_secs_f64();
        let preds = ens.predict_samples(&test.samples)?;
        let means: Vec<f64> = train::label_stats(&tr, 1).iter().map(|s| s.0).collect();
        let metrics = train::all_metrics(&cfg.targets, &preds, &test.labels, &means);
        let m = metrics.get(def.target).cloned().unwrap_or(Value::Null);
        // The validation rows' score, for choosing settings without looking at the test folds.
        let val_preds = ens.predict_samples(&val.samples)?;
        let val_m =
            train::all_metrics(&cfg.targets, &val_preds, &val.labels, &means).remove(def.target).unwrap_or(Value::Null);
        let val_score = match def.task {
            Task::Regression => val_m["mae"].as_f64(),
            Task::Classification => val_m["roc_auc"].as_f64(),
        };
        let score = match def.task {
            Task::Regression => m["mae"].as_f64(),
            Task::Classification => m["roc_auc"].as_f64(),
        }
        .unwrap_or(f64::NAN);
        scores.push((score, m.clone()));
        if let Some(d) = &a.save {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            ens.card.metrics = metrics.clone();
            ens.card.data = format!("{}: {}", def.name, base.display());
            ens.card.split = match def.source {
                Source::CrabnetFolds(_) => {
                    format!("Matbench fold {fold} (CrabNet's train{fold}/val{fold}/test{fold}.csv)")
                }
                Source::Structures { .. } => {
                    format!("Matbench fold {fold}; validation: training rows in the formula-hash validation bucket")
                }
            };
            ens.card.created_at = crate::engine::store::now_iso();
            crate::ml::checkpoint::save(&mut ens, &d.join(format!("{}-fold{fold}.safetensors", def.name)))?;
        }
        if a.json {
            let mut v = m.clone();
            v["task"] = json!(def.name);
            v["fold"] = json!(fold);
            v["n_train"] = json!(tr.len());
            v["n_val"] = json!(val.len());
            v["seconds"] = json!(seconds);
            v["epochs"] = json!(epochs);
            v["val_score"] = json!(val_score);
            v["skipped_training_rows"] = json!(skipped.get());
            // Throughput: training samples per second of the epochs' own time, and where that time went.
            let epoch_time: f64 = parts.iter().sum();
            v["train_samples_per_s"] = json!(samples_seen as f64 / (parts[0] + parts[1] + parts[2]).max(1e-9));
            v["time_s"] = json!({"prepare_inputs": prepare_seconds, "batching": parts[0], "forward_and_loss": parts[1],
                "backward_and_step": parts[2], "validation": parts[3], "epochs_total": epoch_time});
            println!("{v}");
        } else {
            println!(
                "{} fold {fold}: {} train, {} val, {} test; {} (validation {:.4}; {epochs} epochs, {seconds:.0} s)",
                def.name,
                tr.len(),
                val.len(),
                test.len(),
                train::metrics_line(cfg.targets[0], &m),
                val_score.unwrap_or(f64::NAN)
            );
        }
    }
    let n = scores.len() as f64;
    let mean = scores.iter().map(|s| s.0).sum::<f64>() / n;
    let sd = (scores.iter().map(|s| (s.0 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let metric = if def.task == Task::Regression { "mae" } else { "roc_auc" };
    let mean_of = |k: &str| scores.iter().filter_map(|s| s.1[k].as_f64()).sum::<f64>() / n;
    if a.json {
        let mut v = json!({"task": def.name, "folds": folds, "metric": metric, "mean": mean, "std": sd,
            "from": a.from, "members": a.schedule.members});
        for k in ["mae", "rmse", "r2", "coverage90", "roc_auc", "f1", "accuracy", "log_loss", "ece"] {
            if scores.iter().all(|s| s.1.get(k).is_some()) {
                v[format!("mean_{k}")] = json!(mean_of(k));
            }
        }
        println!("{v}");
    } else {
        println!("{}: mean {metric} over {} fold(s) {mean:.4} ± {sd:.4}", def.name, folds.len());
    }
    Ok(0)
}
