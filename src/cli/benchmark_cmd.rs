//! `geode model benchmark TASK`: Matbench v0.1 tasks with Matbench's protocol, fold by fold.
//!
//! Matbench scores a model by five-fold cross-validation (`KFold(n_splits=5, shuffle=True,
//! random_state=18012019)` over the dataset in Matbench's order) and reports the mean test score over the
//! folds. The composition tasks use CrabNet's copies of those folds (`crabnet==2.0.8`,
//! `crabnet/data/matbench_cv/TASK/{train,val,test}{i}.csv`, shipped in `assets/matbench/`): `test{i}` is
//! Matbench's test fold i, and `train{i}` + `val{i}` its training fold, of which `val{i}` serves for early
//! stopping and calibration only.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::data::labelled::{self, ReadOptions};
use crate::ml::train::{self, DataSource, TrainConfig};
use crate::ml::{Target, Task};

#[derive(Debug, clap::Args)]
pub struct BenchmarkArgs {
    /// matbench_expt_gap (experimental band gap from composition, MAE) or matbench_expt_is_metal
    /// (metallicity from composition, ROC-AUC)
    pub task: String,
    /// Folder holding `matbench_cv/` (default: the shipped assets/matbench)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folds to run (default: all five), e.g. 0,1
    #[arg(long, value_delimiter = ',')]
    pub folds: Vec<usize>,
    /// Fine-tune from this ensemble (a shipped name such as composition, or a .safetensors file)
    #[arg(long)]
    pub from: Option<String>,
    /// Ensemble members
    #[arg(long, default_value_t = 5, value_parser = crate::cli::whole)]
    pub members: usize,
    /// Maximum epochs per member
    #[arg(long, default_value_t = 150, value_parser = crate::cli::whole)]
    pub epochs: usize,
    /// Stop a member after this many epochs without a better validation score
    #[arg(long, default_value_t = 25, value_parser = crate::cli::whole)]
    pub patience: usize,
    /// Write each fold's ensemble as DIR/TASK-fold{i}.safetensors
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[arg(long, default_value_t = 0, value_parser = crate::cli::whole_u64)]
    pub seed: u64,
    /// One JSON object per fold, then one for the mean
    #[arg(long)]
    pub json: bool,
}

/// A benchmark task: its CrabNet fold folder, target and metric.
struct TaskDef {
    name: &'static str,
    folder: &'static str,
    target: &'static str,
    unit: &'static str,
    task: Task,
}

const TASKS: [TaskDef; 2] = [
    TaskDef { name: "matbench_expt_gap", folder: "expt_gap", target: "expt_gap", unit: "eV", task: Task::Regression },
    TaskDef {
        name: "matbench_expt_is_metal",
        folder: "expt_is_metal",
        target: "expt_is_metal",
        unit: "",
        task: Task::Classification,
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
    let dir = a.data.clone().unwrap_or_else(default_dir).join("matbench_cv").join(def.folder);
    let folds: Vec<usize> = if a.folds.is_empty() { (0..5).collect() } else { a.folds.clone() };
    if let Some(f) = folds.iter().find(|&&f| f >= 5) {
        bail!("--folds: fold {f} does not exist (Matbench has folds 0-4)");
    }
    let target =
        Target::new(def.target, def.unit, def.task, def.task == Task::Regression).map_err(anyhow::Error::msg)?;
    let mut cfg = TrainConfig {
        name: def.name.into(),
        model: "composition".into(),
        data: DataSource::Files { files: Vec::new(), target: def.target.into(), split_column: None, skip_bad: false },
        targets: vec![target],
        members: a.members,
        epochs: a.epochs,
        patience: a.patience,
        from: a.from.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..TrainConfig::default()
    };
    cfg.resolve_from()?;
    if cfg.model != "composition" {
        bail!("{} is a composition task: --from needs a composition model", def.name);
    }
    let arch = cfg.architecture();
    crate::ml::init_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let mut scores = Vec::new();
    for &fold in &folds {
        let read = |part: &str| -> anyhow::Result<train::LabelledSet> {
            let p = dir.join(format!("{part}{fold}.csv"));
            let opts = ReadOptions {
                target: def.target.into(),
                classification: def.task == Task::Classification,
                split_column: None,
            };
            let d = labelled::read(std::slice::from_ref(&p), &opts).map_err(anyhow::Error::msg)?;
            if let Some(b) = d.bad.first() {
                bail!("{}: {} ({} bad rows in all)", b.origin, b.reason, d.bad.len());
            }
            let rows: Vec<&labelled::Row> = d.rows.iter().collect();
            Ok(train::set_of_rows(&arch, &rows)?)
        };
        let (tr, val, test) = (read("train")?, read("val")?, read("test")?);
        let t0 = std::time::Instant::now();
        let mut epochs = 0usize;
        let mut ens =
            train::train_ensemble(&cfg, Arc::new(tr.clone()), Arc::new(val.clone()), a.seed + fold as u64, &mut |_| {
                epochs += 1
            })
            .with_context(|| format!("fold {fold}"))?;
        let seconds = t0.elapsed().as_secs_f64();
        let preds = ens.predict_samples(&test.samples)?;
        let means: Vec<f64> = train::label_stats(&tr, 1).iter().map(|s| s.0).collect();
        let metrics = train::all_metrics(&cfg.targets, &preds, &test.labels, &means);
        let m = metrics.get(def.target).cloned().unwrap_or(Value::Null);
        let score = match def.task {
            Task::Regression => m["mae"].as_f64(),
            Task::Classification => m["roc_auc"].as_f64(),
        }
        .unwrap_or(f64::NAN);
        scores.push((score, m.clone()));
        if let Some(d) = &a.save {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            ens.card.metrics = metrics.clone();
            ens.card.data = format!("{}: {}", def.name, dir.display());
            ens.card.split = format!("Matbench fold {fold} (CrabNet's train{fold}/val{fold}/test{fold}.csv)");
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
            println!("{v}");
        } else {
            println!(
                "{} fold {fold}: {} train, {} val, {} test; {} ({epochs} epochs, {seconds:.0} s)",
                def.name,
                tr.len(),
                val.len(),
                test.len(),
                train::metrics_line(cfg.targets[0], &m)
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
            "from": a.from, "members": a.members});
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
