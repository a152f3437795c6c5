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
        let domain = m.domain(&structures).unwrap_or(None);
        for (i, (s, p)) in structures.iter().zip(&preds).enumerate() {
            let dom = domain.as_ref().map(|d| d[i]);
            if let Some((dist, true)) = dom
                && !json_out
            {
                eprintln!(
                    "warning: {file}{}: outside {}'s domain of applicability (distance {dist:.2} from its training data, \
                     beyond its 99th percentile)",
                    if structures.len() > 1 { format!(" [{i}]") } else { String::new() },
                    m.name()
                );
            }
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
                if let Some((dist, out)) = dom {
                    v["domain_distance"] = json!(dist);
                    v["out_of_domain"] = json!(out);
                }
                for (t, x) in targets.iter().zip(p) {
                    v[t.name()] = pred_json(x);
                }
                println!("{v}");
            } else {
                let tag = if structures.len() > 1 { format!(" [{i}]") } else { String::new() };
                println!("{file}{tag}  {}  ({})", s.reduced_formula(), m.name());
                for (t, x) in targets.iter().zip(p) {
                    if t.is_classification() {
                        // A calibrated probability; the range is the members' spread, not a conformal interval.
                        println!("  {:26} P = {:.3}   members {:.3}–{:.3}", t.name(), x.mean, x.lo90, x.hi90);
                        continue;
                    }
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

/// How an ensemble is trained (`geode model train` and `geode model benchmark`).
#[derive(Debug, Clone, clap::Args)]
pub struct Schedule {
    /// Ensemble members
    #[arg(long, default_value_t = 5, value_parser = crate::cli::whole)]
    pub members: usize,
    /// Maximum epochs per member
    #[arg(long, default_value_t = 150, value_parser = crate::cli::whole)]
    pub epochs: usize,
    /// Stop a member after this many epochs without a better validation score
    #[arg(long, default_value_t = 25, value_parser = crate::cli::whole)]
    pub patience: usize,
    /// Mini-batch size
    #[arg(long, default_value_t = 64, value_parser = crate::cli::whole)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW, cosine schedule)
    #[arg(long, default_value_t = 2e-3)]
    pub learning_rate: f64,
}

impl Schedule {
    /// The schedule's keys set in a training config.
    pub fn apply(&self, cfg: crate::ml::train::TrainConfig) -> crate::ml::train::TrainConfig {
        crate::ml::train::TrainConfig {
            members: self.members,
            epochs: self.epochs,
            patience: self.patience,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            ..cfg
        }
    }
}

/// `geode model train`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Labelled files: CSV with a `formula` column (composition models) or a `file` column naming structure
    /// files (or a folder holding one such CSV), extended XYZ (label in each frame's info), ASE .db (label a
    /// key-value pair), pymatgen JSON lists, Matbench JSON
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<std::path::PathBuf>,
    /// The target: the column or key holding the label (else a column named `target`); it becomes a
    /// property name (`geode properties`)
    #[arg(long)]
    pub target: String,
    /// composition or graph (default: graph when every row has a structure, else composition; with --from,
    /// the source model's)
    #[arg(long)]
    pub kind: Option<String>,
    /// regression or classification (labels 0/1, true/false, yes/no)
    #[arg(long, default_value = "regression")]
    pub task: String,
    /// The target's unit (regression), e.g. eV, GPa; recorded in the card and the property registry
    #[arg(long, default_value = "")]
    pub unit: String,
    /// Fine-tune: start from this ensemble's weights (a shipped name such as graph or composition, or a
    /// .safetensors file); only the output head starts fresh
    #[arg(long)]
    pub from: Option<String>,
    /// Column or key holding the label, when it is not named as the target (e.g. Matbench's `n` for a
    /// `refractive_index` target)
    #[arg(long)]
    pub label: Option<String>,
    /// Column or key giving each row's split (train, val, test); default: split by reduced formula 80/10/10
    #[arg(long)]
    pub split_column: Option<String>,
    /// Skip rows that cannot be used (each is reported) instead of refusing the data
    #[arg(long)]
    pub skip_bad: bool,
    #[command(flatten)]
    pub schedule: Schedule,
    /// Where the trained ensemble is written (.safetensors with its model card)
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Project file recording the run (created if missing)
    #[arg(long, default_value = "project.geode")]
    pub project: std::path::PathBuf,
    /// Seed of the members' initial weights and mini-batch order
    #[arg(long, default_value_t = 0, value_parser = crate::cli::whole_u64)]
    pub seed: u64,
    /// Worker threads (default: all cores but one)
    #[arg(long, value_parser = crate::cli::whole)]
    pub threads: Option<usize>,
    /// Print the finished run as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// The shipped models and the models trained in a project, with their cards
    List {
        /// Also list the models trained in this project (when the file exists)
        #[arg(long, default_value = "project.geode")]
        project: std::path::PathBuf,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Metrics of a model: on the embedded test split (default), or on any labelled file (--data): MAE, RMSE,
    /// R², conformal coverage for regression; ROC-AUC, F1, accuracy for classification
    Eval {
        /// A shipped name, a .safetensors ensemble or a TorchScript .pt model (default: every shipped model)
        #[arg(long)]
        model: Option<String>,
        /// Labelled files to evaluate on (formats as `geode model train --data`)
        #[arg(long, num_args = 1.., requires = "model")]
        data: Vec<std::path::PathBuf>,
        /// Which of the model's targets the files label (default: the model's only target)
        #[arg(long)]
        target: Option<String>,
        /// Column or key holding the label, when it is not named as the target
        #[arg(long)]
        label: Option<String>,
        /// Skip rows that cannot be used (each is reported) instead of refusing the data
        #[arg(long)]
        skip_bad: bool,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Train an ensemble on your own labelled data, for any property (regression or classification), from
    /// scratch or fine-tuned from a shipped model; runs as a `train` run in the project
    Train(Box<TrainArgs>),
    /// Matbench v0.1 tasks with Matbench's protocol (five folds; mean test MAE or ROC-AUC), fold by fold
    Benchmark(Box<super::benchmark_cmd::BenchmarkArgs>),
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
        ModelAction::Train(a) => train(&a),
        ModelAction::Benchmark(a) => super::benchmark_cmd::run(&a),
        ModelAction::Eval { model: Some(model), data, target, label, skip_bad, json } if !data.is_empty() => {
            eval_files(&model, &data, target.as_deref(), label, skip_bad, json)
        }
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
        ModelAction::List { project, json } => {
            let mut cards = shipped::cards();
            if project.is_file() {
                let store = crate::engine::store::Store::open(&project)?;
                for m in store.models()? {
                    match crate::ml::checkpoint::card_from_file(Path::new(&m.path)) {
                        Ok(c) => cards.push((m.path.clone(), c)),
                        Err(e) => eprintln!("{}: model {} ({}): {e}", project.display(), m.name, m.path),
                    }
                }
            }
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
                        c.targets
                            .iter()
                            .map(|t| match (t.is_classification(), t.unit()) {
                                (true, _) => format!("{} (classification)", t.name()),
                                (false, "") => t.name().to_string(),
                                (false, u) => format!("{} [{u}]", t.name()),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    println!("  data: {}", c.data);
                    for t in &c.targets {
                        if let Some(m) = c.metrics.get(t.name()) {
                            println!("  test {}: {}", t.name(), crate::ml::train::metrics_line(*t, m));
                        }
                    }
                }
            }
            Ok(0)
        }
        ModelAction::Eval { model, json, .. } => {
            let names: Vec<String> = match model {
                Some(m) => vec![m],
                // Every shipped model with a property the embedded test split labels.
                None => shipped::cards()
                    .into_iter()
                    .filter(|(_, c)| c.targets.iter().any(|t| !matches!(t, crate::ml::Target::User(_))))
                    .map(|(n, _)| n)
                    .collect(),
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

/// `geode model train`: a `train` run on the user's files.
fn train(a: &TrainArgs) -> anyhow::Result<i32> {
    use crate::ml::train::{DataSource, TrainConfig};
    use crate::ml::{Target, Task};
    let task = Task::from_name(&a.task)
        .with_context(|| format!("--task: {:?} is neither regression nor classification", a.task))?;
    let files: Vec<String> = a.data.iter().map(|p| absolute(p).display().to_string()).collect();
    // Read once here to report bad rows and see what the rows hold (structures, labels ≥ 0).
    let opts = crate::data::labelled::ReadOptions {
        target: a.label.clone().unwrap_or_else(|| a.target.clone()),
        classification: task == Task::Classification,
        split_column: a.split_column.clone(),
    };
    let data = crate::data::labelled::read(&a.data, &opts).map_err(anyhow::Error::msg)?;
    for b in &data.bad {
        eprintln!("{}: {}{}", b.origin, b.reason, if a.skip_bad { " (skipped)" } else { "" });
    }
    if !data.bad.is_empty() && !a.skip_bad {
        bail!("{} row(s) cannot be used (listed above): fix them, or skip them with --skip-bad", data.bad.len());
    }
    if data.rows.is_empty() {
        bail!("no labelled rows of {:?} in {}", a.target, files.join(", "));
    }
    let non_negative = task == Task::Regression && data.rows.iter().all(|r| r.label >= 0.0);
    let target = Target::new(&a.target, &a.unit, task, non_negative).map_err(anyhow::Error::msg)?;
    let mut cfg = TrainConfig {
        name: a.out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| a.target.clone()),
        model: match &a.kind {
            Some(k) => k.clone(),
            None if data.all_structures() => "graph".into(),
            None => "composition".into(),
        },
        data: DataSource::Files {
            files,
            target: a.target.clone(),
            split_column: a.split_column.clone(),
            skip_bad: a.skip_bad,
            label: a.label.clone(),
        },
        targets: vec![target],
        out: absolute(&a.out).display().to_string(),
        from: a.from.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..a.schedule.apply(TrainConfig::default())
    };
    if let Some(from) = &a.from {
        cfg.from = Some(if shipped::is_file_spec(from) {
            absolute(Path::new(from)).display().to_string()
        } else {
            from.clone()
        });
        cfg.resolve_from()?;
        if let Some(k) = &a.kind
            && *k != cfg.model
        {
            bail!("--kind {k}: the model fine-tuned from {from} is a {} model", cfg.model);
        }
    }
    if !a.json {
        let n_struct =
            data.rows.iter().filter(|r| matches!(r.input, crate::data::labelled::Input::Structure(_))).count();
        eprintln!(
            "{} labelled rows of {} ({} with structures); a {} {} model{}",
            data.rows.len(),
            a.target,
            n_struct,
            cfg.model,
            task.name(),
            a.from.as_ref().map(|f| format!(" fine-tuned from {f}")).unwrap_or_default()
        );
    }
    let spec = crate::engine::RunSpec::Train(cfg);
    spec.validate()?;
    super::run_cmd::submit_and_follow(&spec, &a.project, a.seed, 0, a.threads, a.json)
}

fn absolute(p: &Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `geode model eval --model M --data FILE…`: metrics of any model on any labelled file.
fn eval_files(
    model: &str,
    data: &[std::path::PathBuf],
    target: Option<&str>,
    label: Option<String>,
    skip_bad: bool,
    json_out: bool,
) -> anyhow::Result<i32> {
    use crate::data::labelled::Input;
    let m = open_model(model)?;
    let targets = m.targets();
    let k = match target {
        Some(name) => targets.iter().position(|t| t.name() == name).with_context(|| {
            format!(
                "--target {name:?}: {model} predicts {}",
                targets.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
            )
        })?,
        None if targets.len() == 1 => 0,
        None => bail!(
            "{model} predicts {}: say which one the files label with --target",
            targets.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
        ),
    };
    let t = targets[k];
    let files: Vec<String> = data.iter().map(|p| p.display().to_string()).collect();
    let read = crate::ml::train::read_labelled(&files, t, label.as_deref(), None, skip_bad)?;
    for b in &read.bad {
        eprintln!("{}: {} (skipped)", b.origin, b.reason);
    }
    // Structures and bare formulas are predicted in two batches, then put back in file order.
    let (mut s_idx, mut structures, mut c_idx, mut comps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, r) in read.rows.iter().enumerate() {
        match &r.input {
            Input::Structure(s) => {
                s_idx.push(i);
                structures.push((**s).clone());
            }
            Input::Composition(c) => {
                c_idx.push(i);
                comps.push(c.clone());
            }
        }
    }
    let mut preds: Vec<Vec<Prediction>> = vec![Vec::new(); read.rows.len()];
    let mut outside: Vec<Option<bool>> = vec![None; read.rows.len()];
    if !structures.is_empty() {
        let dom = m.domain(&structures)?;
        for (j, (&i, p)) in s_idx.iter().zip(m.predict(&structures)?).enumerate() {
            preds[i] = p;
            outside[i] = dom.as_ref().map(|d| d[j].1);
        }
    }
    if !comps.is_empty() {
        let dom = m.domain_of_compositions(&comps)?;
        for (j, (&i, p)) in c_idx.iter().zip(m.predict_compositions(&comps)?).enumerate() {
            preds[i] = p;
            outside[i] = dom.as_ref().map(|d| d[j].1);
        }
    }
    let labels: Vec<Vec<Option<f64>>> =
        read.rows.iter().map(|r| (0..targets.len()).map(|j| (j == k).then_some(r.label)).collect()).collect();
    // Without the training data at hand, the baselines are the evaluated set's own mean (regression)
    // or majority class (classification).
    let mean = read.rows.iter().map(|r| r.label).sum::<f64>() / read.rows.len() as f64;
    let means: Vec<f64> = (0..targets.len()).map(|_| mean).collect();
    let metrics = crate::ml::train::all_metrics(&targets, &preds, &labels, &means);
    let Some(mt) = metrics.get(t.name()) else { bail!("no labelled rows to evaluate") };
    // The same metrics inside and outside the model's domain of applicability, where it records one.
    let domain_split = outside.iter().all(Option::is_some).then(|| {
        let part = |want: bool| {
            let idx: Vec<usize> = (0..read.rows.len()).filter(|&i| outside[i] == Some(want)).collect();
            let p: Vec<Vec<Prediction>> = idx.iter().map(|&i| preds[i].clone()).collect();
            let l: Vec<Vec<Option<f64>>> = idx.iter().map(|&i| labels[i].clone()).collect();
            crate::ml::train::all_metrics(&targets, &p, &l, &means).remove(t.name()).unwrap_or(Value::Null)
        };
        (outside.iter().filter(|o| **o == Some(true)).count(), part(false), part(true))
    });
    // Out-of-domain rows: elements the model never saw in training.
    let seen = m.training_elements();
    let unseen = seen.as_ref().map_or(0, |seen| {
        read.rows.iter().filter(|r| r.input.composition().iter().any(|(e, _)| !seen.contains(&e))).count()
    });
    if json_out {
        let mut v = mt.clone();
        v["model"] = json!(model);
        v["target"] = json!(t.name());
        v["unit"] = json!(t.unit());
        v["task"] = json!(t.task().name());
        v["data"] = json!(files);
        v["skipped"] = json!(read.bad.len());
        v["rows_with_unseen_elements"] = json!(unseen);
        if let Some((n_out, inside, outside)) = &domain_split {
            v["rows_out_of_domain"] = json!(n_out);
            v["inside_domain"] = inside.clone();
            v["outside_domain"] = outside.clone();
        }
        println!("{v}");
    } else {
        println!("{model} on {}: {} {}", files.join(", "), t.name(), crate::ml::train::metrics_line(t, mt));
        if unseen > 0 {
            println!("  {unseen} row(s) hold elements absent from the model's training data (extrapolations)");
        }
        if let Some((n_out, inside, outside)) = &domain_split {
            println!("  {n_out} row(s) outside the model's domain of applicability");
            if !inside.is_null() {
                println!("  inside the domain:  {}", crate::ml::train::metrics_line(t, inside));
            }
            if !outside.is_null() {
                println!("  outside the domain: {}", crate::ml::train::metrics_line(t, outside));
            }
        }
    }
    Ok(0)
}
