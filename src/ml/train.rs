//! Training ensembles: labelled sets from the embedded dataset (split by reduced formula) or from a
//! formula → property table (crabnet's OQMD tables), one member at a time with AdamW, a cosine
//! learning rate, early stopping on the validation MAE, and evaluation with the metrics
//! `geode model eval` prints.
//!
//! Losses are L1 in standardised units. For non-negative targets (band gap) the loss is censored: a
//! zero label is only penalised when the prediction is positive, so the clamp at 0 used in inference
//! never blocks the gradient.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};

use super::composition_net::CompositionNetConfig;
use super::ensemble::{Architecture, Batch, Ensemble, Member, ModelCard, Sample, mean_std, prepare};
use super::graph::GraphSpec;
use super::graph_net::GraphNetConfig;
use super::{ModelError, Target};
use crate::chem::features::composition_features;
use crate::crystal::Composition;
use crate::data::{Dataset, Split};

/// Where training data come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The embedded OQMD/ICSD dataset: train split for training, val for early stopping and calibration.
    Embedded,
    /// CSV tables `formula,target` (crabnet's OQMD `train/val/test.csv`, concatenated) for a
    /// composition model: every formula whose reduced formula is in the embedded val or test split
    /// is removed; validation and test stay the embedded splits.
    FormulaTables { formation_energy: Vec<String>, band_gap: Vec<String> },
    /// A user's labelled files for one target (see [`crate::data::labelled`]): structures for either
    /// model kind, formulas for composition models. Rows go to train/val/test by their split column,
    /// else by reduced formula as the embedded dataset does.
    Files {
        files: Vec<String>,
        /// Column or key of the label (the target's name).
        target: String,
        /// Column or key of the split (`train`, `val`, `test`).
        #[serde(default)]
        split_column: Option<String>,
        /// Column or key holding the label when it is not named as the target (else `target`).
        #[serde(default)]
        label: Option<String>,
        /// Skip rows that cannot be used (each is logged) instead of refusing the data.
        #[serde(default)]
        skip_bad: bool,
    },
}

/// Everything a training run needs besides the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Name recorded in the model card.
    pub name: String,
    /// `composition` or `graph`.
    pub model: String,
    pub data: DataSource,
    pub targets: Vec<Target>,
    /// Ensemble size (≥ 1; ≥ 5 for shipped models).
    pub members: usize,
    /// Maximum epochs per member.
    pub epochs: usize,
    /// Stop a member after this many epochs without a better validation MAE.
    pub patience: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub composition: CompositionNetConfig,
    pub graph: GraphNetConfig,
    pub graph_spec: GraphSpec,
    /// Use only this many training samples (a seeded random subset of the embedded train split, or the
    /// first n formulas of a table), for quick runs and tests.
    pub limit_train: Option<usize>,
    /// libtorch threads; 0: one per core.
    pub torch_threads: usize,
    /// Where the trained ensemble is written (`.safetensors`); empty: `<name>.safetensors` beside
    /// the project file.
    pub out: String,
    /// Fine-tune: start every member from this ensemble's weights (a shipped name or a `.safetensors`
    /// file; member i from its member i mod n), all but the output head, which starts fresh for the new
    /// targets. The architecture is the source's.
    pub from: Option<String>,
    /// The command that made the model, recorded in its card.
    pub command: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "geode-model".into(),
            model: "graph".into(),
            data: DataSource::Embedded,
            targets: Target::ALL.to_vec(),
            members: 5,
            epochs: 60,
            patience: 12,
            batch_size: 64,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            composition: CompositionNetConfig::default(),
            graph: GraphNetConfig::default(),
            graph_spec: GraphSpec::default(),
            limit_train: None,
            torch_threads: 0,
            out: String::new(),
            from: None,
            command: String::new(),
        }
    }
}

impl TrainConfig {
    /// Check values; messages name the key and the expected form.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |k: &str, m: String| Err(format!("key `{k}`: {m}"));
        if self.model != "composition" && self.model != "graph" {
            return bad("model", format!("expected \"composition\" or \"graph\", got {:?}", self.model));
        }
        if self.targets.is_empty() {
            return bad("targets", "expected at least one of formation_energy_per_atom, band_gap".into());
        }
        if self.members == 0 || self.members > 32 {
            return bad("members", format!("expected 1..=32, got {}", self.members));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return bad("epochs", format!("expected 1..=10000, got {}", self.epochs));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return bad("batch_size", format!("expected 1..=65536, got {}", self.batch_size));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad("learning_rate", format!("expected a number in (0, 1), got {}", self.learning_rate));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay < 1.0) {
            return bad("weight_decay", format!("expected a number in [0, 1), got {}", self.weight_decay));
        }
        if !(self.graph_spec.cutoff_ang > 1.0 && self.graph_spec.cutoff_ang <= 12.0) {
            return bad("graph_spec.cutoff_ang", format!("expected (1, 12] Å, got {}", self.graph_spec.cutoff_ang));
        }
        if self.graph_spec.max_neighbors == 0 || self.graph_spec.max_neighbors > 64 {
            return bad("graph_spec.max_neighbors", format!("expected 1..=64, got {}", self.graph_spec.max_neighbors));
        }
        if self.graph.hidden < 4 || self.graph.layers < 1 || self.graph.n_rbf < 2 || self.graph.embedding < 1 {
            return bad("graph", "expected hidden ≥ 4, layers ≥ 1, n_rbf ≥ 2, embedding ≥ 1".into());
        }
        if self.composition.hidden < 4 || !(0.0..1.0).contains(&self.composition.dropout) {
            return bad("composition", "expected hidden ≥ 4 and dropout in [0, 1)".into());
        }
        if self.model == "graph" && matches!(self.data, DataSource::FormulaTables { .. }) {
            return bad("data", "formula tables have no structures: use model = \"composition\"".into());
        }
        if let DataSource::Files { files, target, .. } = &self.data {
            if files.is_empty() {
                return bad("data.files", "expected at least one labelled file".into());
            }
            if self.targets.len() != 1 || self.targets[0].name() != target {
                return bad("targets", format!("expected the one target {target:?} of the labelled files"));
            }
        } else if let Some(t) = self.targets.iter().find(|t| matches!(t, Target::User(_))) {
            return bad("targets", format!("{} is a user target: give `data.files` that hold it", t.name()));
        }
        if self.limit_train == Some(0) {
            return bad("limit_train", "expected at least 1".into());
        }
        Ok(())
    }

    /// With `from`, take the source model's architecture (read from its card only).
    pub fn resolve_from(&mut self) -> Result<(), ModelError> {
        let Some(from) = &self.from else { return Ok(()) };
        let card = super::shipped::card_of(from)?;
        match card.architecture {
            Architecture::Composition { net } => {
                self.model = "composition".into();
                self.composition = net;
            }
            Architecture::Graph { net, graph } => {
                self.model = "graph".into();
                self.graph = net;
                self.graph_spec = graph;
            }
        }
        Ok(())
    }

    pub fn architecture(&self) -> Architecture {
        if self.model == "composition" {
            Architecture::Composition { net: self.composition.clone() }
        } else {
            Architecture::Graph { net: self.graph.clone(), graph: self.graph_spec }
        }
    }
}

/// Prepared inputs with labels `[sample][target]` (`None`: not known) and a name for each sample.
#[derive(Debug, Clone, Default)]
pub struct LabelledSet {
    pub samples: Vec<Sample>,
    pub labels: Vec<Vec<Option<f64>>>,
    pub names: Vec<String>,
}

impl LabelledSet {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// One split of the embedded dataset, prepared for `arch`.
pub fn embedded_set(arch: &Architecture, targets: &[Target], split: Split) -> LabelledSet {
    embedded_subset(arch, targets, split, None, 0)
}

/// One split of the embedded dataset, or a seeded random subset of `limit` of its entries (kept in
/// dataset order), prepared for `arch`.
pub fn embedded_subset(
    arch: &Architecture,
    targets: &[Target],
    split: Split,
    limit: Option<usize>,
    seed: u64,
) -> LabelledSet {
    let mut entries: Vec<&crate::data::Entry> = Dataset::embedded().split(split).collect();
    if let Some(n) = limit
        && n < entries.len()
    {
        let mut idx: Vec<usize> = (0..entries.len()).collect();
        idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        idx.truncate(n);
        idx.sort_unstable();
        entries = idx.into_iter().map(|i| entries[i]).collect();
    }
    LabelledSet {
        samples: entries.par_iter().map(|e| prepare(arch, &e.structure)).collect(),
        labels: entries.iter().map(|e| targets.iter().map(|&t| t.label(e)).collect()).collect(),
        names: entries.iter().map(|e| format!("oqmd-icsd-{}", e.id)).collect(),
    }
}

/// Read `formula,target` CSV files into reduced formula → value (later files win on duplicates).
fn read_formula_tables(paths: &[String]) -> Result<BTreeMap<String, (Composition, f64)>, ModelError> {
    let mut out = BTreeMap::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| ModelError::Setup(format!("cannot read {p}: {e}")))?;
        for (i, line) in text.lines().enumerate().skip(1) {
            let Some((f, v)) = line.split_once(',') else { continue };
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| ModelError::Setup(format!("{p} line {}: target {v:?} is not a number", i + 1)))?;
            let c = Composition::from_formula(f.trim())
                .map_err(|e| ModelError::Setup(format!("{p} line {}: {e}", i + 1)))?;
            if v.is_finite() {
                out.insert(c.reduced_formula(), (c, v));
            }
        }
    }
    Ok(out)
}

/// The training set of a formula-table source.
pub fn formula_table_set(fe: &[String], gap: &[String], targets: &[Target]) -> Result<LabelledSet, ModelError> {
    let held_out: HashSet<&str> =
        Dataset::embedded().entries.iter().filter(|e| e.split != Split::Train).map(|e| e.formula.as_str()).collect();
    let fe = read_formula_tables(fe)?;
    let gap = read_formula_tables(gap)?;
    let mut formulas: Vec<&String> = fe.keys().chain(gap.keys()).filter(|f| !held_out.contains(f.as_str())).collect();
    formulas.sort();
    formulas.dedup();
    let rows: Vec<(String, Composition, Vec<Option<f64>>)> = formulas
        .into_iter()
        .map(|f| {
            let comp = fe.get(f).or_else(|| gap.get(f)).map(|x| x.0.clone()).unwrap_or_default();
            let labels = targets.iter().map(|t| match t {
                Target::FormationEnergyPerAtom => fe.get(f).map(|x| x.1),
                Target::BandGap => gap.get(f).map(|x| x.1),
                Target::User(_) => None,
            });
            (f.clone(), comp, labels.collect())
        })
        .collect();
    Ok(LabelledSet {
        samples: rows
            .par_iter()
            .map(|(_, c, _)| Sample::Features(composition_features(c).iter().map(|&x| x as f32).collect()))
            .collect(),
        labels: rows.iter().map(|r| r.2.clone()).collect(),
        names: rows.into_iter().map(|r| r.0).collect(),
    })
}

/// A user's labelled files split for training: train, val (early stopping, calibration) and test.
pub struct FilesData {
    pub train: LabelledSet,
    pub val: LabelledSet,
    pub test: LabelledSet,
    /// Rows that could not be used (only when skipping them was asked for).
    pub bad: Vec<crate::data::labelled::BadRow>,
    /// Each file with the SHA-256 of its bytes.
    pub files: Vec<(String, String)>,
    /// Element symbols of the training rows.
    pub elements: Vec<String>,
}

/// Read labelled files for `target` (see [`crate::data::labelled`]): bad rows refuse the data unless
/// `skip_bad`; a graph model needs structures on every row.
pub fn read_labelled(
    files: &[String],
    target: Target,
    label: Option<&str>,
    split_column: Option<&str>,
    skip_bad: bool,
) -> Result<crate::data::labelled::Labelled, ModelError> {
    use crate::data::labelled;
    let opts = labelled::ReadOptions {
        target: label.unwrap_or(target.name()).to_string(),
        classification: target.is_classification(),
        split_column: split_column.map(str::to_string),
    };
    let paths: Vec<std::path::PathBuf> = files.iter().map(std::path::PathBuf::from).collect();
    let data = labelled::read(&paths, &opts).map_err(ModelError::Setup)?;
    if !data.bad.is_empty() && !skip_bad {
        let mut msg = format!("{} row(s) cannot be used:", data.bad.len());
        for b in data.bad.iter().take(10) {
            msg.push_str(&format!("\n  {}: {}", b.origin, b.reason));
        }
        if data.bad.len() > 10 {
            msg.push_str(&format!("\n  … and {} more", data.bad.len() - 10));
        }
        msg.push_str("\n(skip them with --skip-bad, or fix the files)");
        return Err(ModelError::Setup(msg));
    }
    if data.rows.is_empty() {
        return Err(ModelError::Setup(format!("no labelled rows of {} in {}", target.name(), files.join(", "))));
    }
    Ok(data)
}

/// Rows prepared for `arch`, labelled for the one target.
pub fn set_of_rows(arch: &Architecture, rows: &[&crate::data::labelled::Row]) -> Result<LabelledSet, ModelError> {
    use crate::data::labelled::Input;
    if matches!(arch, Architecture::Graph { .. })
        && let Some(r) = rows.iter().find(|r| matches!(r.input, Input::Composition(_)))
    {
        return Err(ModelError::Setup(format!(
            "{}: a graph model needs a structure on every row, this one has only a formula (use --kind composition)",
            r.origin
        )));
    }
    Ok(LabelledSet {
        samples: rows
            .par_iter()
            .map(|r| match &r.input {
                Input::Structure(s) => prepare(arch, s),
                Input::Composition(c) => Sample::Features(composition_features(c).iter().map(|&x| x as f32).collect()),
            })
            .collect(),
        labels: rows.iter().map(|r| vec![Some(r.label)]).collect(),
        names: rows.iter().map(|r| r.origin.clone()).collect(),
    })
}

/// The train/val/test sets of a `Files` source.
pub fn files_data(
    arch: &Architecture,
    files: &[String],
    target: Target,
    label: Option<&str>,
    split_column: Option<&str>,
    skip_bad: bool,
) -> Result<FilesData, ModelError> {
    use crate::data::labelled::split_of_row;
    let data = read_labelled(files, target, label, split_column, skip_bad)?;
    let by = |want: Split| data.rows.iter().filter(|r| split_of_row(r) == want).collect::<Vec<_>>();
    let (train, val, test) = (by(Split::Train), by(Split::Val), by(Split::Test));
    if train.is_empty() || val.is_empty() {
        return Err(ModelError::Setup(format!(
            "{} training and {} validation rows: both are needed (the split column, or the split by reduced formula, \
             must give each some rows)",
            train.len(),
            val.len()
        )));
    }
    let elements: std::collections::BTreeSet<String> = train
        .iter()
        .flat_map(|r| r.input.composition().iter().map(|(e, _)| e.symbol().to_string()).collect::<Vec<_>>())
        .collect();
    Ok(FilesData {
        train: set_of_rows(arch, &train)?,
        val: set_of_rows(arch, &val)?,
        test: set_of_rows(arch, &test)?,
        bad: data.bad.clone(),
        files: data.files.clone(),
        elements: elements.into_iter().collect(),
    })
}

/// Classification metrics of one target: probabilities against 0/1 labels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassMetrics {
    pub n: usize,
    /// Share of positive labels.
    pub positive_share: f64,
    /// Area under the ROC curve (ties count one half, as scikit-learn's `roc_auc_score`).
    pub roc_auc: f64,
    /// At a probability threshold of 0.5.
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Mean negative log-likelihood (natural log; probabilities clipped to [1e-15, 1 − 1e-15] as scikit-learn).
    pub log_loss: f64,
    /// Mean squared error of the probabilities.
    pub brier: f64,
    /// Expected calibration error over 10 equal-width probability bins.
    pub ece: f64,
    /// Accuracy of always answering the training split's majority class.
    pub baseline_accuracy: f64,
}

/// Classification metrics of probabilities `p` against labels `y` (0/1); `train_positive` is the
/// training split's positive share (the baseline).
pub fn class_metrics(p: &[f64], y: &[f64], train_positive: f64) -> ClassMetrics {
    let n = p.len().max(1) as f64;
    let pos = y.iter().filter(|&&v| v > 0.5).count() as f64;
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    let mut correct = 0.0;
    for (&pi, &yi) in p.iter().zip(y) {
        let (pred, truth) = (pi >= 0.5, yi > 0.5);
        if pred == truth {
            correct += 1.0;
        }
        match (pred, truth) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            _ => {}
        }
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let eps = 1e-15;
    let log_loss = p
        .iter()
        .zip(y)
        .map(|(&pi, &yi)| {
            let q = pi.clamp(eps, 1.0 - eps);
            -(yi * q.ln() + (1.0 - yi) * (1.0 - q).ln())
        })
        .sum::<f64>()
        / n;
    let brier = p.iter().zip(y).map(|(pi, yi)| (pi - yi).powi(2)).sum::<f64>() / n;
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (&pi, &yi) in p.iter().zip(y) {
        let b = ((pi * 10.0) as usize).min(9);
        bins[b].0 += pi;
        bins[b].1 += yi;
        bins[b].2 += 1;
    }
    let ece = bins.iter().filter(|b| b.2 > 0).map(|b| (b.0 - b.1).abs()).sum::<f64>() / n;
    let majority = if train_positive >= 0.5 { 1.0 } else { 0.0 };
    ClassMetrics {
        n: p.len(),
        positive_share: pos / n,
        roc_auc: roc_auc(p, y),
        accuracy: correct / n,
        precision,
        recall,
        f1,
        log_loss,
        brier,
        ece,
        baseline_accuracy: y.iter().filter(|&&v| (v > 0.5) == (majority > 0.5)).count() as f64 / n,
    }
}

/// Area under the ROC curve by the rank-sum (Mann–Whitney) statistic with average ranks for ties; 0.5
/// when one class is absent.
pub fn roc_auc(p: &[f64], y: &[f64]) -> f64 {
    // 1-based ranks for the rank-sum statistic.
    let rank: Vec<f64> = average_ranks(p).into_iter().map(|r| r + 1.0).collect();
    let n_pos = y.iter().filter(|&&v| v > 0.5).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return 0.5;
    }
    let sum_pos: f64 = rank.iter().zip(y).filter(|(_, v)| **v > 0.5).map(|(r, _)| r).sum();
    (sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Metrics of predictions against labels for every target, as the card stores them: regression targets
/// as [`TargetMetrics`], classification targets as [`ClassMetrics`]. `train_means[k]` is the training
/// mean (regression baseline) or positive share (classification baseline).
pub fn all_metrics(
    targets: &[Target],
    preds: &[Vec<super::Prediction>],
    labels: &[Vec<Option<f64>>],
    train_means: &[f64],
) -> BTreeMap<String, Value> {
    let mut out = metrics_value(&metrics_of(targets, preds, labels, train_means));
    for (k, &t) in targets.iter().enumerate().filter(|(_, t)| t.is_classification()) {
        let (p, y): (Vec<f64>, Vec<f64>) =
            labels.iter().zip(preds).filter_map(|(l, p)| l.get(k).copied().flatten().map(|y| (p[k].mean, y))).unzip();
        if p.is_empty() {
            continue;
        }
        let m = class_metrics(&p, &y, train_means.get(k).copied().unwrap_or(0.5));
        out.insert(t.name().to_string(), serde_json::to_value(m).unwrap_or(Value::Null));
    }
    out
}

/// Per-target metrics of predictions against labels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetMetrics {
    pub n: usize,
    pub mae: f64,
    pub rmse: f64,
    pub r2: f64,
    /// Share of labels inside the 90 % conformal interval.
    pub coverage90: f64,
    pub mean_width90: f64,
    /// Spearman rank correlation of σ with |error|.
    pub spearman_std_error: f64,
    /// MAE of predicting the training mean for everything.
    pub baseline_mae: f64,
}

/// Evaluate an ensemble on a labelled set; `train_means[k]` is the mean-predictor baseline.
pub fn evaluate(
    ens: &Ensemble,
    set: &LabelledSet,
    train_means: &[f64],
) -> Result<BTreeMap<Target, TargetMetrics>, ModelError> {
    let preds = ens.predict_samples(&set.samples)?;
    Ok(metrics_of(&ens.card.targets, &preds, &set.labels, train_means))
}

/// Metrics of predictions `[sample][target]` against labels `[sample][target]`.
pub fn metrics_of(
    targets: &[Target],
    preds: &[Vec<super::Prediction>],
    labels: &[Vec<Option<f64>>],
    train_means: &[f64],
) -> BTreeMap<Target, TargetMetrics> {
    let mut out = BTreeMap::new();
    for (k, &t) in targets.iter().enumerate().filter(|(_, t)| !t.is_classification()) {
        let rows: Vec<(f64, super::Prediction)> =
            labels.iter().zip(preds).filter_map(|(l, p)| l.get(k).copied().flatten().map(|y| (y, p[k]))).collect();
        if rows.is_empty() {
            continue;
        }
        let n = rows.len() as f64;
        let errs: Vec<f64> = rows.iter().map(|(y, p)| p.mean - y).collect();
        let mae = errs.iter().map(|e| e.abs()).sum::<f64>() / n;
        let rmse = (errs.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
        let ymean = rows.iter().map(|r| r.0).sum::<f64>() / n;
        let ss_tot: f64 = rows.iter().map(|r| (r.0 - ymean).powi(2)).sum();
        let ss_res: f64 = errs.iter().map(|e| e * e).sum();
        let covered = rows.iter().filter(|(y, p)| *y >= p.lo90 - 1e-12 && *y <= p.hi90 + 1e-12).count() as f64;
        let width = rows.iter().map(|(_, p)| p.hi90 - p.lo90).sum::<f64>() / n;
        let stds: Vec<f64> = rows.iter().map(|r| r.1.std).collect();
        let abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
        let base = train_means.get(k).copied().unwrap_or(ymean);
        out.insert(
            t,
            TargetMetrics {
                n: rows.len(),
                mae,
                rmse,
                r2: if ss_tot > 0.0 { 1.0 - ss_res / ss_tot } else { 0.0 },
                coverage90: covered / n,
                mean_width90: width,
                spearman_std_error: spearman(&stds, &abs),
                baseline_mae: rows.iter().map(|(y, _)| (y - base).abs()).sum::<f64>() / n,
            },
        );
    }
    out
}

/// Labels of the embedded dataset's `split`, `[entry][target]`.
pub fn embedded_labels(targets: &[Target], split: Split) -> Vec<Vec<Option<f64>>> {
    Dataset::embedded().split(split).map(|e| targets.iter().map(|&t| t.label(e)).collect()).collect()
}

/// Mean label of each target over the embedded training split (the mean-predictor baseline).
pub fn embedded_train_means(targets: &[Target]) -> Vec<f64> {
    let labels = embedded_labels(targets, Split::Train);
    (0..targets.len()).map(|k| mean_std(&labels.iter().filter_map(|l| l[k]).collect::<Vec<_>>()).0).collect()
}

/// 0-based ranks of `v`, ties sharing their average rank.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let (ma, _) = mean_std(&ra);
    let (mb, _) = mean_std(&rb);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va > 0.0 && vb > 0.0 { cov / (va * vb).sqrt() } else { 0.0 }
}

/// Mean and standard deviation of each target's labels.
pub fn label_stats(set: &LabelledSet, n_targets: usize) -> Vec<(f64, f64)> {
    (0..n_targets)
        .map(|k| {
            let v: Vec<f64> = set.labels.iter().filter_map(|l| l[k]).collect();
            let (m, s) = mean_std(&v);
            (m, if s > 1e-9 { s } else { 1.0 })
        })
        .collect()
}

/// Training state of one member, resumable at epoch boundaries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemberProgress {
    pub member: usize,
    /// Epochs completed.
    pub epoch: usize,
    pub best_val: f64,
    pub best_epoch: usize,
    pub bad_epochs: usize,
    pub done: bool,
}

/// What one epoch reports.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    pub member: usize,
    pub epoch: usize,
    pub train_loss: f64,
    /// Validation score per target: MAE in the target's unit (regression), log loss (classification).
    pub val_mae: Vec<f64>,
    /// Σ_k MAE_k / std_k: the early-stopping criterion.
    pub val_score: f64,
    pub improved: bool,
    /// Where the epoch's time went (s): batching the samples into tensors, forward pass and loss, backward
    /// pass and optimiser step, validation.
    pub seconds: [f64; 4],
}

/// Trains one member.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub arch: Architecture,
    pub train: Arc<LabelledSet>,
    pub val: Arc<LabelledSet>,
    pub stats: Vec<(f64, f64)>,
    pub seed: u64,
    pub member: Member,
    pub best: Member,
    pub progress: MemberProgress,
    opt: nn::Optimizer,
}

impl Trainer {
    /// Start member `member` (its initial weights depend on (seed, member)).
    pub fn new(
        cfg: &TrainConfig,
        train: Arc<LabelledSet>,
        val: Arc<LabelledSet>,
        seed: u64,
        member: usize,
    ) -> Result<Trainer, ModelError> {
        let cfg = cfg.clone();
        let arch = cfg.architecture();
        // Classification heads give logits: no target normalisation.
        let stats: Vec<(f64, f64)> = label_stats(&train, cfg.targets.len())
            .into_iter()
            .zip(&cfg.targets)
            .map(|(s, t)| if t.is_classification() { (0.0, 1.0) } else { s })
            .collect();
        tch::manual_seed((seed.wrapping_mul(1_000_003).wrapping_add(member as u64) & 0x7fff_ffff_ffff) as i64);
        let mut m = Member::new(&arch, cfg.targets.len(), Device::Cpu);
        let best = Member::new(&arch, cfg.targets.len(), Device::Cpu);
        set_normalisation(&m, &train, &stats)?;
        if let Some(from) = &cfg.from {
            let src = super::shipped::load_ensemble(from)?;
            if src.card.architecture != arch {
                return Err(ModelError::Setup(format!(
                    "cannot fine-tune from {from}: its architecture differs from the one asked for (leave the network \
                     settings to the source model)"
                )));
            }
            transfer_body(&src.members[member % src.members.len()], &mut m)?;
        }
        let opt = nn::AdamW { wd: cfg.weight_decay, ..Default::default() }.build(&m.vs, cfg.learning_rate)?;
        let mut t = Trainer {
            cfg,
            arch,
            train,
            val,
            stats,
            seed,
            member: m,
            best,
            progress: MemberProgress { member, best_val: f64::INFINITY, ..Default::default() },
            opt,
        };
        copy_vars(&t.member, &mut t.best)?;
        Ok(t)
    }

    /// One epoch: shuffled mini-batches, then validation. `cancelled` is polled between batches.
    pub fn epoch(&mut self, cancelled: &dyn Fn() -> bool) -> Result<EpochReport, ModelError> {
        let e = self.progress.epoch;
        let lr = self.cfg.learning_rate
            * (0.02 + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / self.cfg.epochs as f64).cos()));
        self.opt.set_lr(lr);
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            self.seed ^ ((self.progress.member as u64) << 32) ^ (e as u64).wrapping_mul(0x9e37_79b9),
        );
        order.shuffle(&mut rng);
        let mut total = 0.0;
        let mut n_batches = 0;
        let mut seconds = [0.0; 4];
        for chunk in order.chunks(self.cfg.batch_size) {
            if cancelled() {
                return Err(ModelError::Cancelled);
            }
            let samples: Vec<&Sample> = chunk.iter().map(|&i| &self.train.samples[i]).collect();
            let labels: Vec<&Vec<Option<f64>>> = chunk.iter().map(|&i| &self.train.labels[i]).collect();
            let clock = std::time::Instant::now();
            let batch = Batch::new(&samples, Device::Cpu)?;
            seconds[0] += clock.elapsed().as_secs_f64();
            let clock = std::time::Instant::now();
            let out = self.member.forward_t(&batch, true)?;
            let loss = batch_loss(&out, &labels, &self.cfg.targets, &self.stats);
            let l = f64::try_from(&loss).map_err(|e| ModelError::Failed(e.to_string()))?;
            seconds[1] += clock.elapsed().as_secs_f64();
            let clock = std::time::Instant::now();
            if !l.is_finite() {
                return Err(ModelError::Failed(format!(
                    "training loss became {l} (member {}, epoch {e})",
                    self.progress.member
                )));
            }
            self.opt.zero_grad();
            loss.f_backward().map_err(ModelError::from)?;
            self.opt.clip_grad_norm(5.0);
            self.opt.step();
            seconds[2] += clock.elapsed().as_secs_f64();
            total += l;
            n_batches += 1;
        }
        let clock = std::time::Instant::now();
        let val_mae = self.val_mae(&self.member)?;
        seconds[3] += clock.elapsed().as_secs_f64();
        let val_score: f64 = val_mae.iter().zip(&self.stats).map(|(m, (_, s))| m / s).sum();
        self.progress.epoch += 1;
        let improved = val_score < self.progress.best_val;
        if improved {
            self.progress.best_val = val_score;
            self.progress.best_epoch = self.progress.epoch;
            self.progress.bad_epochs = 0;
            copy_vars(&self.member, &mut self.best)?;
        } else {
            self.progress.bad_epochs += 1;
        }
        if self.progress.epoch >= self.cfg.epochs || self.progress.bad_epochs >= self.cfg.patience.max(1) {
            self.progress.done = true;
        }
        Ok(EpochReport {
            member: self.progress.member,
            epoch: self.progress.epoch,
            train_loss: total / n_batches.max(1) as f64,
            val_mae,
            val_score,
            improved,
            seconds,
        })
    }

    /// Validation score per target of a member: MAE in physical units with clamped predictions
    /// (regression), log loss of the member's probabilities (classification).
    fn val_mae(&self, m: &Member) -> Result<Vec<f64>, ModelError> {
        let nt = self.cfg.targets.len();
        let mut sum = vec![0.0; nt];
        let mut cnt = vec![0usize; nt];
        for (chunk, labels) in self.val.samples.chunks(512).zip(self.val.labels.chunks(512)) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let p = m.predict_physical(&Batch::new(&refs, Device::Cpu)?, &self.cfg.targets)?.to_kind(Kind::Double);
            let flat = Vec::<f64>::try_from(p.flatten(0, -1)).map_err(|e| ModelError::Failed(e.to_string()))?;
            for (i, l) in labels.iter().enumerate() {
                for k in 0..nt {
                    if let Some(y) = l[k] {
                        let p = flat[i * nt + k];
                        sum[k] += if self.cfg.targets[k].is_classification() {
                            let q = p.clamp(1e-7, 1.0 - 1e-7);
                            -(y * q.ln() + (1.0 - y) * (1.0 - q).ln())
                        } else {
                            (p - y).abs()
                        };
                        cnt[k] += 1;
                    }
                }
            }
        }
        Ok(sum.iter().zip(&cnt).map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 }).collect())
    }

    /// Save the current and best weights of the member in training (for resume).
    pub fn save_state(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ModelError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        save_vars(&self.member, &dir.join("current.safetensors"))?;
        save_vars(&self.best, &dir.join("best.safetensors"))
    }

    /// Restore a member in training from [`Trainer::save_state`] files and its progress. Adam's
    /// moment estimates restart from zero.
    pub fn restore_state(&mut self, dir: &Path, progress: MemberProgress) -> Result<(), ModelError> {
        load_vars(&mut self.member, &dir.join("current.safetensors"))?;
        load_vars(&mut self.best, &dir.join("best.safetensors"))?;
        self.progress = progress;
        Ok(())
    }
}

/// Fine-tuning: copy every variable of `src` into `dst` except the output head and the target
/// normalisation (the new targets have their own); the source's feature normalisation is kept, since its
/// weights expect it.
pub fn transfer_body(src: &Member, dst: &mut Member) -> Result<(), ModelError> {
    let from = src.vs.variables();
    let to = dst.vs.variables();
    let mut copied = 0;
    tch::no_grad(|| -> Result<(), ModelError> {
        for (name, mut t) in to {
            if name.starts_with("net.head.") || name == "target_mean" || name == "target_std" {
                continue;
            }
            let s = from.get(&name).ok_or_else(|| ModelError::Setup(format!("source model has no variable {name}")))?;
            if s.size() != t.size() {
                return Err(ModelError::Setup(format!(
                    "variable {name}: source shape {:?}, model {:?}",
                    s.size(),
                    t.size()
                )));
            }
            t.copy_(s);
            copied += 1;
        }
        Ok(())
    })?;
    if copied == 0 {
        return Err(ModelError::Setup("fine-tuning copied no weights from the source model".into()));
    }
    Ok(())
}

/// Train every member of an ensemble in this thread (no engine, no checkpoints: benchmarks and tests),
/// calibrate it on `val` and return it. `report` sees every epoch.
pub fn train_ensemble(
    cfg: &TrainConfig,
    train: Arc<LabelledSet>,
    val: Arc<LabelledSet>,
    seed: u64,
    report: &mut dyn FnMut(&EpochReport),
) -> Result<Ensemble, ModelError> {
    let mut members = Vec::with_capacity(cfg.members);
    for m in 0..cfg.members {
        let mut t = Trainer::new(cfg, train.clone(), val.clone(), seed, m)?;
        while !t.progress.done {
            let r = t.epoch(&|| false)?;
            report(&r);
        }
        members.push(t.best);
    }
    let mut ens = assemble(cfg, members, "in-memory labelled sets", seed);
    ens.calibrate(&val.samples, &val.labels)?;
    ens.fit_domain(&train.samples)?;
    Ok(ens)
}

/// Set a member's feature (composition models) and target normalisation from the training set.
fn set_normalisation(m: &Member, train: &LabelledSet, stats: &[(f64, f64)]) -> Result<(), ModelError> {
    tch::no_grad(|| {
        let mean: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
        let std: Vec<f32> = stats.iter().map(|s| s.1 as f32).collect();
        m.target_mean.shallow_clone().copy_(&Tensor::from_slice(&mean));
        m.target_std.shallow_clone().copy_(&Tensor::from_slice(&std));
        if let super::ensemble::Net::Composition(net) = &m.net {
            let rows: Vec<&Vec<f32>> =
                train.samples.iter().filter_map(|s| if let Sample::Features(f) = s { Some(f) } else { None }).collect();
            if rows.is_empty() {
                return;
            }
            let nf = rows[0].len();
            let mut mu = vec![0.0f64; nf];
            let mut sq = vec![0.0f64; nf];
            for r in &rows {
                for k in 0..nf {
                    mu[k] += r[k] as f64;
                    sq[k] += (r[k] as f64).powi(2);
                }
            }
            let n = rows.len() as f64;
            let m_: Vec<f32> = mu.iter().map(|s| (s / n) as f32).collect();
            let s_: Vec<f32> =
                mu.iter().zip(&sq).map(|(s, q)| ((q / n - (s / n).powi(2)).max(0.0).sqrt().max(1e-6)) as f32).collect();
            net.feature_mean.shallow_clone().copy_(&Tensor::from_slice(&m_));
            net.feature_std.shallow_clone().copy_(&Tensor::from_slice(&s_));
        }
    });
    Ok(())
}

/// The loss of a batch: mean over labelled entries of the (censored) L1 error in standardised units,
/// summed over targets.
fn batch_loss(out: &Tensor, labels: &[&Vec<Option<f64>>], targets: &[Target], stats: &[(f64, f64)]) -> Tensor {
    let mut total = Tensor::zeros([], (Kind::Float, out.device()));
    for (k, &t) in targets.iter().enumerate() {
        let (mean, std) = stats[k];
        let y: Vec<f32> = labels.iter().map(|l| l[k].unwrap_or(0.0) as f32).collect();
        let mask: Vec<f32> = labels.iter().map(|l| if l[k].is_some() { 1.0 } else { 0.0 }).collect();
        let n = mask.iter().sum::<f32>();
        if n == 0.0 {
            continue;
        }
        let y = Tensor::from_slice(&y);
        let mask = Tensor::from_slice(&mask);
        let pred = out.select(1, k as i64);
        let err = if t.is_classification() {
            // Binary cross-entropy on logits, in the stable form max(x, 0) − x y + ln(1 + e^−|x|).
            pred.relu() - &pred * &y + (-pred.abs()).exp().log1p()
        } else if t.non_negative() {
            let phys = &pred * std + mean;
            let zero = y.eq(0.0).to_kind(Kind::Float);
            (&zero * phys.relu() + (1.0 - &zero) * (&phys - &y).abs()) / std
        } else {
            (&pred - (&y - mean) / std).abs()
        };
        total += (err * mask).sum(Kind::Float) / n as f64;
    }
    total
}

/// Copy every variable of `src` into `dst` (same architecture).
pub fn copy_vars(src: &Member, dst: &mut Member) -> Result<(), ModelError> {
    dst.vs.copy(&src.vs).map_err(ModelError::from)
}

fn save_vars(m: &Member, path: &Path) -> Result<(), ModelError> {
    let mut vars: Vec<(String, Tensor)> = m.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&vars, path).map_err(ModelError::from)
}

fn load_vars(m: &mut Member, path: &Path) -> Result<(), ModelError> {
    tch::no_grad(|| m.vs.read_safetensors(path)).map_err(|e| {
        ModelError::Setup(format!("cannot restore {}: {}", path.display(), super::error::first_line(&e.to_string())))
    })
}

/// Assemble an ensemble from trained members and fill in the card (conformal calibration and test
/// metrics are added by the caller).
pub fn assemble(cfg: &TrainConfig, members: Vec<Member>, data: &str, seed: u64) -> Ensemble {
    let card = ModelCard {
        name: cfg.name.clone(),
        architecture: cfg.architecture(),
        targets: cfg.targets.clone(),
        conformal: Vec::new(),
        n_members: members.len(),
        data: data.to_string(),
        split: "embedded OQMD/ICSD, grouped by reduced formula: FNV-1a(formula) mod 10 = 0 test, 1 val, else train"
            .into(),
        training: json!({"config": cfg, "seed": seed, "command": cfg.command}),
        metrics: BTreeMap::new(),
        weights_sha256: String::new(),
        geode_version: env!("CARGO_PKG_VERSION").into(),
        created_at: String::new(),
        platt: Vec::new(),
        training_elements: Vec::new(),
        data_files: Vec::new(),
        domain: None,
    };
    Ensemble { card, members }
}

/// One line of a target's stored metrics, for logs and `geode model eval`.
pub fn metrics_line(t: Target, m: &Value) -> String {
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    if t.is_classification() {
        format!(
            "n={} ROC-AUC {:.4}, F1 {:.4}, accuracy {:.4} (majority class {:.4}), log loss {:.4}, ECE {:.4}",
            m["n"],
            f("roc_auc"),
            f("f1"),
            f("accuracy"),
            f("baseline_accuracy"),
            f("log_loss"),
            f("ece")
        )
    } else {
        format!(
            "n={} MAE {:.4}{} (mean predictor {:.4}), RMSE {:.4}, R² {:.3}, 90 % coverage {:.3}, width {:.3}, Spearman(σ, |err|) {:.3}",
            m["n"],
            f("mae"),
            if t.unit().is_empty() { String::new() } else { format!(" {}", t.unit()) },
            f("baseline_mae"),
            f("rmse"),
            f("r2"),
            f("coverage90"),
            f("mean_width90"),
            f("spearman_std_error")
        )
    }
}

/// Metrics as stored in the card: `{target: {mae, rmse, …}}`.
pub fn metrics_value(m: &BTreeMap<Target, TargetMetrics>) -> BTreeMap<String, Value> {
    m.iter().map(|(t, v)| (t.name().to_string(), serde_json::to_value(v).unwrap_or(Value::Null))).collect()
}
