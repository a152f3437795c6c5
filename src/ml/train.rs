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
        if self.model == "graph" && self.data != DataSource::Embedded {
            return bad("data", "formula tables have no structures: use model = \"composition\"".into());
        }
        if self.limit_train == Some(0) {
            return bad("limit_train", "expected at least 1".into());
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
    for (k, &t) in targets.iter().enumerate() {
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

/// Spearman rank correlation (average ranks for ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
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
    let (ra, rb) = (ranks(a), ranks(b));
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
    /// Validation MAE per target (physical units).
    pub val_mae: Vec<f64>,
    /// Σ_k MAE_k / std_k: the early-stopping criterion.
    pub val_score: f64,
    pub improved: bool,
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
        let stats = label_stats(&train, cfg.targets.len());
        tch::manual_seed((seed.wrapping_mul(1_000_003).wrapping_add(member as u64) & 0x7fff_ffff_ffff) as i64);
        let m = Member::new(&arch, cfg.targets.len(), Device::Cpu);
        let best = Member::new(&arch, cfg.targets.len(), Device::Cpu);
        set_normalisation(&m, &train, &stats)?;
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
        for chunk in order.chunks(self.cfg.batch_size) {
            if cancelled() {
                return Err(ModelError::Cancelled);
            }
            let samples: Vec<&Sample> = chunk.iter().map(|&i| &self.train.samples[i]).collect();
            let labels: Vec<&Vec<Option<f64>>> = chunk.iter().map(|&i| &self.train.labels[i]).collect();
            let batch = Batch::new(&samples, Device::Cpu)?;
            let out = self.member.forward_t(&batch, true)?;
            let loss = batch_loss(&out, &labels, &self.cfg.targets, &self.stats);
            let l = f64::try_from(&loss).map_err(|e| ModelError::Failed(e.to_string()))?;
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
            total += l;
            n_batches += 1;
        }
        let val_mae = self.val_mae(&self.member)?;
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
        })
    }

    /// Validation MAE per target of a member (physical units, clamped predictions).
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
                        sum[k] += (flat[i * nt + k] - y).abs();
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
        let err = if t.non_negative() {
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
        training: json!({"config": cfg, "seed": seed}),
        metrics: BTreeMap::new(),
        weights_sha256: String::new(),
        geode_version: env!("CARGO_PKG_VERSION").into(),
        created_at: String::new(),
    };
    Ensemble { card, members }
}

/// Metrics as stored in the card: `{target: {mae, rmse, …}}`.
pub fn metrics_value(m: &BTreeMap<Target, TargetMetrics>) -> BTreeMap<String, Value> {
    m.iter().map(|(t, v)| (t.name().to_string(), serde_json::to_value(v).unwrap_or(Value::Null))).collect()
}
