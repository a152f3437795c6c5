//! `geode predict` and `geode model [list|eval]`: property predictions with uncertainty from the
//! shipped ensembles, a trained `.safetensors` ensemble or a user's TorchScript `.pt` model.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::data::Split;
use crate::io;
use crate::ml::train::{embedded_labels, embedded_train_means, metrics_of};
use crate::ml::{Prediction, PropertyModel, shipped};

/// Open a model by shipped name, `.safetensors` ensemble path or TorchScript `.pt` path.
pub fn open_model(spec: &str) -> anyhow::Result<Box<dyn PropertyModel>> {
    Ok(shipped::open(spec)?)
}

fn pred_json(p: &Prediction) -> Value {
    json!({"mean": p.mean, "std": p.std, "lo90": p.lo90, "hi90": p.hi90})
}

/// `geode predict FILE…`.
pub fn predict(files: &[impl AsRef<Path>], model: &str, json_out: bool) -> anyhow::Result<i32> {
    crate::ml::init_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let m = open_model(model)?;
    let targets = m.targets();
    let seen = m.training_elements();
    let mut failed = false;
    for f in files {
        let path = f.as_ref();
        let file = path.display().to_string();
        // A file that cannot be read or predicted is reported and skipped; the others are computed.
        let read = io::read_structures(path).map_err(|e| e.to_string());
        let predicted = read.and_then(|s| m.predict(&s).map(|p| (s, p)).map_err(|e| e.to_string()));
        let (structures, preds) = match predicted {
            Ok(x) => x,
            Err(e) => {
                failed = true;
                if json_out {
                    println!("{}", json!({"file": file, "error": e}));
                } else {
                    eprintln!("{file}: {e}");
                }
                continue;
            }
        };
        for (i, (s, p)) in structures.iter().zip(&preds).enumerate() {
            // Elements the model never saw: the numbers are extrapolations, and say so.
            let unseen: Vec<String> = match &seen {
                Some(seen) => s
                    .composition()
                    .iter()
                    .filter(|(e, _)| !seen.contains(e))
                    .map(|(e, _)| e.symbol().to_string())
                    .collect(),
                None => Vec::new(),
            };
            if !unseen.is_empty() && !json_out {
                eprintln!(
                    "warning: {file}{}: {} not in {}'s training data; these predictions are extrapolations",
                    if structures.len() > 1 { format!(" [{i}]") } else { String::new() },
                    unseen.join(", "),
                    m.name()
                );
            }
            if json_out {
                let mut v = json!({"file": file, "index": i, "formula": s.reduced_formula(), "model": m.name()});
                if seen.is_some() {
                    v["unseen_elements"] = json!(unseen);
                    v["extrapolation"] = json!(!unseen.is_empty());
                }
                for (t, x) in targets.iter().zip(p) {
                    v[t.name()] = pred_json(x);
                }
                println!("{v}");
            } else {
                let tag = if structures.len() > 1 { format!(" [{i}]") } else { String::new() };
                println!("{file}{tag}  {}  ({})", s.reduced_formula(), m.name());
                for (t, x) in targets.iter().zip(p) {
                    println!(
                        "  {:26} {:>8.3} ± {:.3} {}   90 % interval [{:.3}, {:.3}]",
                        t.name(),
                        x.mean,
                        x.std,
                        t.unit(),
                        x.lo90,
                        x.hi90
                    );
                }
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// The shipped models with their cards
    List {
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Test-split metrics of the shipped models (or one model): MAE, RMSE, R², conformal coverage, interval width
    Eval {
        /// A shipped name, a .safetensors ensemble or a TorchScript .pt model (default: every shipped model)
        #[arg(long)]
        model: Option<String>,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// The composition-feature names, in the order a TorchScript composition model receives them
    Features,
    /// Stability classification like Matbench Discovery: each crystal of a split judged stable or not
    /// (e_above_hull ≤ 0 on the complete OQMD hull without its own composition) by the composition and graph
    /// ensembles, CHGNet on OQMD's scale and their combination; F1, precision, recall, accuracy, DAF, MAE
    /// and the calibration (ECE) of P(stable)
    Stability {
        /// The split: train, val or test
        #[arg(long, default_value = "test")]
        split: String,
        /// Relaxed CHGNet energies of the split's crystals (`geode dataset energies --relax --split test
        /// --out FILE`), for the relaxed rows
        #[arg(long)]
        relaxed: Option<std::path::PathBuf>,
        /// Relaxed CHGNet energies of the validation split (`geode dataset energies --relax --split val
        /// --crystals-only --out FILE`), to recalibrate the relaxed rows' P(stable) on relaxed energies (without
        /// it they reuse the single-point calibration)
        #[arg(long, requires = "relaxed")]
        relaxed_val: Option<std::path::PathBuf>,
        /// Print one JSON object per pipeline instead of text
        #[arg(long)]
        json: bool,
    },
}

pub fn model(action: ModelAction) -> anyhow::Result<i32> {
    crate::ml::init_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    match action {
        ModelAction::Stability { split, relaxed, relaxed_val, json } => {
            let split = Split::from_name(&split)
                .with_context(|| format!("--split: unknown split {split:?}; expected train, val or test"))?;
            super::stability_cmd::run(split, relaxed.as_deref(), relaxed_val.as_deref(), json)
        }
        ModelAction::Features => {
            for (i, name) in crate::chem::features::feature_names().iter().enumerate() {
                println!("{i}\t{name}");
            }
            Ok(0)
        }
        ModelAction::List { json } => {
            let cards = shipped::cards();
            if cards.is_empty() {
                bail!(
                    "no shipped models found in {}",
                    shipped::search_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                );
            }
            for (name, c) in cards {
                if json {
                    println!("{}", json!({"name": name, "card": c}));
                } else {
                    println!(
                        "{name}: {} ensemble of {} members, targets {}",
                        c.architecture.kind_name(),
                        c.n_members,
                        c.targets.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                    );
                    println!("  data: {}", c.data);
                    for (t, m) in &c.metrics {
                        println!(
                            "  test {t}: MAE {:.4}, RMSE {:.4}, R² {:.3}, coverage90 {:.3}",
                            m["mae"].as_f64().unwrap_or(f64::NAN),
                            m["rmse"].as_f64().unwrap_or(f64::NAN),
                            m["r2"].as_f64().unwrap_or(f64::NAN),
                            m["coverage90"].as_f64().unwrap_or(f64::NAN)
                        );
                    }
                }
            }
            Ok(0)
        }
        ModelAction::Eval { model, json } => {
            let names: Vec<String> = match model {
                Some(m) => vec![m],
                None => {
                    shipped::NAMES.iter().filter(|n| shipped::path_of(n).is_some()).map(|s| s.to_string()).collect()
                }
            };
            if names.is_empty() {
                bail!(
                    "no shipped models found in {}",
                    shipped::search_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                );
            }
            for name in names {
                let rows = eval_one(&name)?;
                for r in rows {
                    if json {
                        println!("{r}");
                    } else {
                        println!(
                            "{:18} {:26} n={:5}  MAE {:.4}  RMSE {:.4}  R² {:.3}  coverage90 {:.3}  width90 {:.3}  Spearman(σ,|err|) {:.3}  (mean predictor MAE {:.4})",
                            r["model"].as_str().unwrap_or(""),
                            r["target"].as_str().unwrap_or(""),
                            r["n"],
                            r["mae"].as_f64().unwrap_or(f64::NAN),
                            r["rmse"].as_f64().unwrap_or(f64::NAN),
                            r["r2"].as_f64().unwrap_or(f64::NAN),
                            r["coverage90"].as_f64().unwrap_or(f64::NAN),
                            r["mean_width90"].as_f64().unwrap_or(f64::NAN),
                            r["spearman_std_error"].as_f64().unwrap_or(f64::NAN),
                            r["baseline_mae"].as_f64().unwrap_or(f64::NAN),
                        );
                    }
                }
            }
            Ok(0)
        }
    }
}

/// Evaluate one model on the embedded test split: one JSON row per target.
fn eval_one(name: &str) -> anyhow::Result<Vec<Value>> {
    let m = open_model(name)?;
    let targets = m.targets();
    let structures: Vec<_> = crate::data::Dataset::embedded().split(Split::Test).map(|e| e.structure.clone()).collect();
    let preds = m.predict(&structures)?;
    let metrics =
        metrics_of(&targets, &preds, &embedded_labels(&targets, Split::Test), &embedded_train_means(&targets));
    Ok(metrics
        .iter()
        .map(|(t, mt)| {
            let mut v = serde_json::to_value(mt).unwrap_or(Value::Null);
            v["model"] = json!(name);
            v["target"] = json!(t.name());
            v["unit"] = json!(t.unit());
            v
        })
        .collect())
}
