//! Deep ensembles (Lakshminarayanan et al. 2017) of composition or graph networks with split-conformal
//! intervals (normalised scores, Lei et al. 2018): on the validation split the score of a sample is
//! |y − μ| / (σ + β), β = the median σ there; q is the ⌈0.9 (n + 1)⌉-th smallest score, and the 90 %
//! interval of a new prediction is μ ± q (σ + β), clamped at 0 for non-negative targets.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

use super::composition_net::{CompositionNet, CompositionNetConfig};
use super::graph::{CrystalGraph, GraphBatch, GraphSpec};
use super::graph_net::{GraphNet, GraphNetConfig};
use super::{ModelError, Prediction, Target};
use crate::chem::features::{N_FEATURES, composition_features};
use crate::crystal::{Composition, Structure};

/// Coverage the conformal intervals are calibrated for.
pub const CONFORMAL_LEVEL: f64 = 0.9;

/// Which network and how its inputs are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    Composition { net: CompositionNetConfig },
    Graph { net: GraphNetConfig, graph: GraphSpec },
}

impl Architecture {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Architecture::Composition { .. } => "composition",
            Architecture::Graph { .. } => "graph",
        }
    }
}

/// Per-target conformal calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conformal {
    pub level: f64,
    /// Quantile of the normalised scores.
    pub q: f64,
    /// Added to σ before scaling (target unit).
    pub beta: f64,
}

/// What a shipped or trained model says about itself; stored in the safetensors header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub architecture: Architecture,
    pub targets: Vec<Target>,
    /// Per target, in the order of `targets`; empty until calibrated.
    pub conformal: Vec<Conformal>,
    pub n_members: usize,
    /// Training data, split and hyper-parameters as given to the trainer.
    pub data: String,
    pub split: String,
    pub training: Value,
    /// Test-split metrics per target (`mae`, `rmse`, `r2`, `coverage90`, `mean_width90`, …).
    pub metrics: BTreeMap<String, Value>,
    /// SHA-256 of the tensors (names, shapes and bytes, in name order), not of the file.
    pub weights_sha256: String,
    pub geode_version: String,
    pub created_at: String,
    /// Per target, in the order of `targets`: the Platt map `p → σ(a·logit p + b)` fitted on the
    /// validation split that calibrates a classifier's mean member probability (`None` for regression).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platt: Vec<Option<[f64; 2]>>,
    /// Element symbols of the training rows, for models trained on a user's files (the embedded data's
    /// are known without listing them); a prediction for another element is flagged as an extrapolation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub training_elements: Vec<String>,
    /// The labelled files the model was trained on, with the SHA-256 of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_files: Vec<DataFile>,
    /// The training rows' region of the representation, for out-of-domain flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
}

/// The domain of applicability: where the training rows sit in the first member's representation (the
/// vector its output head reads). A new input's distance is the root-mean-square of its standardised
/// coordinates, √(mean_k ((e_k − μ_k)/σ_k)²); inputs farther than `threshold` (the `quantile` of the
/// training rows' own distances) are flagged out of domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub quantile: f64,
    pub threshold: f64,
}

/// Share of training rows inside the domain threshold.
pub const DOMAIN_QUANTILE: f64 = 0.99;

/// A training file and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: String,
    pub sha256: String,
}

/// A network of either kind.
#[derive(Debug)]
pub enum Net {
    Composition(CompositionNet),
    Graph(GraphNet),
}

/// A prepared model input.
#[derive(Debug, Clone)]
pub enum Sample {
    Features(Vec<f32>),
    Graph(CrystalGraph),
}

/// A batch of prepared inputs as tensors.
pub enum Batch {
    Features(Tensor),
    Graph(GraphBatch),
}

impl Batch {
    pub fn new(samples: &[&Sample], device: Device) -> Result<Batch, ModelError> {
        match samples.first() {
            None | Some(Sample::Features(_)) => {
                let mut flat = Vec::with_capacity(samples.len() * N_FEATURES);
                for s in samples {
                    match s {
                        Sample::Features(f) => flat.extend_from_slice(f),
                        Sample::Graph(_) => return Err(ModelError::Failed("mixed sample kinds in one batch".into())),
                    }
                }
                Ok(Batch::Features(
                    Tensor::from_slice(&flat).reshape([samples.len() as i64, N_FEATURES as i64]).to(device),
                ))
            }
            Some(Sample::Graph(_)) => {
                let graphs = samples
                    .iter()
                    .map(|s| match s {
                        Sample::Graph(g) => Ok(g),
                        Sample::Features(_) => Err(ModelError::Failed("mixed sample kinds in one batch".into())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Batch::Graph(GraphBatch::new(&graphs, device)))
            }
        }
    }

    pub fn len(&self) -> i64 {
        match self {
            Batch::Features(t) => t.size()[0],
            Batch::Graph(g) => g.n_graphs,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One ensemble member: its variables and network. Target normalisation (mean, std per target) is
/// stored with the variables.
pub struct Member {
    pub vs: nn::VarStore,
    pub net: Net,
    pub target_mean: Tensor,
    pub target_std: Tensor,
}

impl Member {
    /// A CPU member of this architecture with the weights of a `.safetensors` file (a training
    /// run's `OUT.partial/memberN.safetensors`).
    pub fn read_weights(arch: &Architecture, n_targets: usize, path: &std::path::Path) -> Result<Member, ModelError> {
        let m = Member::new(arch, n_targets, Device::Cpu);
        tch::no_grad(|| m.vs.read_safetensors(path)).map_err(|e| {
            ModelError::Setup(format!("cannot read {}: {}", path.display(), super::error::first_line(&e.to_string())))
        })?;
        Ok(m)
    }

    pub fn new(arch: &Architecture, n_targets: usize, device: Device) -> Member {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let nt = n_targets as i64;
        let net = match arch {
            Architecture::Composition { net } => Net::Composition(CompositionNet::new(&(&root / "net"), net, nt)),
            Architecture::Graph { net, graph } => {
                Net::Graph(GraphNet::new(&(&root / "net"), net, graph.cutoff_ang, nt))
            }
        };
        let target_mean = root.zeros_no_train("target_mean", &[nt]);
        let target_std = root.ones_no_train("target_std", &[nt]);
        Member { vs, net, target_mean, target_std }
    }

    /// Outputs in standardised units [B, T].
    pub fn forward_t(&self, batch: &Batch, train: bool) -> Result<Tensor, ModelError> {
        match (&self.net, batch) {
            (Net::Composition(n), Batch::Features(x)) => Ok(n.forward_t(x, train)),
            (Net::Graph(n), Batch::Graph(g)) => Ok(n.forward_t(g, train)),
            _ => Err(ModelError::Failed("batch kind does not match the network".into())),
        }
    }

    /// The representation the output head reads [B, hidden], without gradients.
    pub fn embed(&self, batch: &Batch) -> Result<Tensor, ModelError> {
        tch::no_grad(|| match (&self.net, batch) {
            (Net::Composition(n), Batch::Features(x)) => Ok(n.embed_t(x, false)),
            (Net::Graph(n), Batch::Graph(g)) => Ok(n.embed_t(g, false)),
            _ => Err(ModelError::Failed("batch kind does not match the network".into())),
        })
    }

    /// Outputs in physical units [B, T] (eV/atom, eV; the probability of the positive class for
    /// classification targets); non-negative targets clamped at 0.
    pub fn predict_physical(&self, batch: &Batch, targets: &[Target]) -> Result<Tensor, ModelError> {
        let raw = tch::no_grad(|| self.forward_t(batch, false))?;
        let phys = raw * &self.target_std + &self.target_mean;
        let cols: Vec<Tensor> = targets
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let c = phys.select(1, k as i64);
                if t.is_classification() {
                    c.sigmoid()
                } else if t.non_negative() {
                    c.clamp_min(0.0)
                } else {
                    c
                }
            })
            .collect();
        Ok(Tensor::stack(&cols, 1))
    }
}

/// A trained ensemble with its card.
pub struct Ensemble {
    pub card: ModelCard,
    pub members: Vec<Member>,
}

/// Inference batch size (graphs or compositions).
const PREDICT_BATCH: usize = 256;

impl Ensemble {
    /// The input of this model for a structure (graph models build the periodic graph).
    pub fn prepare(&self, s: &Structure) -> Sample {
        prepare(&self.card.architecture, s)
    }

    /// The input for a bare composition; only composition models accept one.
    pub fn prepare_composition(&self, c: &Composition) -> Result<Sample, ModelError> {
        match &self.card.architecture {
            Architecture::Composition { .. } => {
                Ok(Sample::Features(composition_features(c).iter().map(|&x| x as f32).collect()))
            }
            Architecture::Graph { .. } => {
                Err(ModelError::Unsupported(format!("{} needs a structure, not only a composition", self.card.name)))
            }
        }
    }

    /// Member predictions in physical units: `[member][sample][target]`.
    pub fn member_predictions(&self, samples: &[Sample]) -> Result<Vec<Vec<Vec<f64>>>, ModelError> {
        let mut out = vec![Vec::with_capacity(samples.len()); self.members.len()];
        for chunk in samples.chunks(PREDICT_BATCH) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let batch = Batch::new(&refs, Device::Cpu)?;
            for (m, member) in self.members.iter().enumerate() {
                let p = member.predict_physical(&batch, &self.card.targets)?.to_kind(Kind::Double);
                let flat = Vec::<f64>::try_from(p.flatten(0, -1)).map_err(|e| ModelError::Failed(e.to_string()))?;
                let nt = self.card.targets.len();
                out[m].extend(flat.chunks_exact(nt).map(|r| r.to_vec()));
            }
        }
        Ok(out)
    }

    /// Predictions `[sample][target]` with σ and the conformal interval.
    pub fn predict_samples(&self, samples: &[Sample]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        let per_member = self.member_predictions(samples)?;
        let nt = self.card.targets.len();
        let mut out = Vec::with_capacity(samples.len());
        for i in 0..samples.len() {
            let mut row = Vec::with_capacity(nt);
            for (k, &t) in self.card.targets.iter().enumerate() {
                let mut vals: Vec<f64> = per_member.iter().map(|m| m[i][k]).collect();
                if t.is_classification() {
                    // Calibrated probabilities; σ and the range are the members' spread after the same map.
                    let map = self.platt(k);
                    vals.iter_mut().for_each(|p| *p = map(*p));
                    let (mean, std) = mean_std(&vals);
                    if !mean.is_finite() {
                        return Err(ModelError::Failed(format!("non-finite {} prediction for sample {i}", t.name())));
                    }
                    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    row.push(Prediction { mean, std, lo90: lo, hi90: hi });
                    continue;
                }
                let (mean, std) = mean_std(&vals);
                if !mean.is_finite() {
                    return Err(ModelError::Failed(format!("non-finite {} prediction for sample {i}", t.name())));
                }
                row.push(self.interval(k, mean, std));
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Predictions for structures, `[structure][target]`; inputs are prepared in parallel.
    pub fn predict(&self, structures: &[Structure]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        let arch = &self.card.architecture;
        let samples: Vec<Sample> = structures.par_iter().map(|s| prepare(arch, s)).collect();
        self.predict_samples(&samples)
    }

    /// Mean and σ turned into a [`Prediction`] with target `k`'s conformal interval (±∞ if uncalibrated).
    pub fn interval(&self, k: usize, mean: f64, std: f64) -> Prediction {
        let t = self.card.targets[k];
        let (lo, hi) = match self.card.conformal.get(k) {
            Some(c) => (mean - c.q * (std + c.beta), mean + c.q * (std + c.beta)),
            None => (f64::NEG_INFINITY, f64::INFINITY),
        };
        let lo = if t.non_negative() { lo.max(0.0) } else { lo };
        Prediction { mean, std, lo90: lo, hi90: hi }
    }

    /// The first member's representation of samples, `[sample][k]`.
    fn embeddings(&self, samples: &[Sample]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(samples.len());
        for chunk in samples.chunks(PREDICT_BATCH) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let e = self.members[0].embed(&Batch::new(&refs, Device::Cpu)?)?;
            let width = e.size()[1] as usize;
            let flat = Vec::<f32>::try_from(e.to_kind(Kind::Float).flatten(0, -1))
                .map_err(|e| ModelError::Failed(e.to_string()))?;
            out.extend(flat.chunks_exact(width).map(|r| r.to_vec()));
        }
        Ok(out)
    }

    /// Record the domain of applicability from the training samples (see [`Domain`]).
    pub fn fit_domain(&mut self, train: &[Sample]) -> Result<(), ModelError> {
        let e = self.embeddings(train)?;
        let Some(width) = e.first().map(Vec::len) else { return Ok(()) };
        let n = e.len() as f64;
        let mean: Vec<f64> = (0..width).map(|k| e.iter().map(|r| r[k] as f64).sum::<f64>() / n).collect();
        let std: Vec<f64> = (0..width)
            .map(|k| (e.iter().map(|r| (r[k] as f64 - mean[k]).powi(2)).sum::<f64>() / n).sqrt().max(1e-6))
            .collect();
        let mut d: Vec<f64> = e.iter().map(|r| rms_z(r, &mean, &std)).collect();
        d.sort_by(f64::total_cmp);
        let k = ((DOMAIN_QUANTILE * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1;
        self.card.domain = Some(Domain {
            mean: mean.iter().map(|&x| x as f32).collect(),
            std: std.iter().map(|&x| x as f32).collect(),
            quantile: DOMAIN_QUANTILE,
            threshold: d[k],
        });
        Ok(())
    }

    /// Each sample's distance from the training rows and whether it lies beyond the threshold; `None`
    /// for models without a recorded domain.
    pub fn domain_distances(&self, samples: &[Sample]) -> Result<Option<Vec<(f64, bool)>>, ModelError> {
        let Some(dom) = &self.card.domain else { return Ok(None) };
        let mean: Vec<f64> = dom.mean.iter().map(|&x| x as f64).collect();
        let std: Vec<f64> = dom.std.iter().map(|&x| x as f64).collect();
        let e = self.embeddings(samples)?;
        if e.first().is_some_and(|r| r.len() != mean.len()) {
            return Err(ModelError::Setup("the card's domain does not match the network's width".into()));
        }
        Ok(Some(e.iter().map(|r| rms_z(r, &mean, &std)).map(|d| (d, d > dom.threshold)).collect()))
    }

    /// The Platt map of classification target `k` (the identity before calibration).
    fn platt(&self, k: usize) -> impl Fn(f64) -> f64 + use<> {
        let [a, b] = self.card.platt.get(k).copied().flatten().unwrap_or([1.0, 0.0]);
        move |p: f64| {
            let q = p.clamp(1e-7, 1.0 - 1e-7);
            let z = a * (q / (1.0 - q)).ln() + b;
            1.0 / (1.0 + (-z).exp())
        }
    }

    /// Calibrate on labelled samples (`labels[sample][target]`, `None` for missing labels): conformal
    /// intervals for regression targets, a Platt map of the mean member probability for classification
    /// targets.
    pub fn calibrate(&mut self, samples: &[Sample], labels: &[Vec<Option<f64>>]) -> Result<(), ModelError> {
        let per_member = self.member_predictions(samples)?;
        let mut conformal = Vec::new();
        let mut platt = Vec::new();
        for k in 0..self.card.targets.len() {
            if self.card.targets[k].is_classification() {
                let (p, y): (Vec<f64>, Vec<f64>) = labels
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| {
                        l[k].map(|y| (per_member.iter().map(|m| m[i][k]).sum::<f64>() / per_member.len() as f64, y))
                    })
                    .unzip();
                if p.is_empty() {
                    return Err(ModelError::Setup(format!(
                        "no labelled samples to calibrate {}",
                        self.card.targets[k].name()
                    )));
                }
                platt.push(Some(fit_platt(&p, &y)));
                conformal.push(Conformal { level: CONFORMAL_LEVEL, q: 0.0, beta: 0.0 });
                continue;
            }
            platt.push(None);
            let mut stds = Vec::new();
            let mut pairs = Vec::new();
            for (i, lab) in labels.iter().enumerate() {
                if let Some(y) = lab[k] {
                    let vals: Vec<f64> = per_member.iter().map(|m| m[i][k]).collect();
                    let (mean, std) = mean_std(&vals);
                    stds.push(std);
                    pairs.push((y, mean, std));
                }
            }
            if pairs.is_empty() {
                return Err(ModelError::Setup(format!(
                    "no labelled samples to calibrate {}",
                    self.card.targets[k].name()
                )));
            }
            let beta = median(&stds).max(1e-6);
            let mut scores: Vec<f64> = pairs.iter().map(|(y, m, s)| (y - m).abs() / (s + beta)).collect();
            scores.sort_by(f64::total_cmp);
            let n = scores.len();
            let rank = ((CONFORMAL_LEVEL * (n as f64 + 1.0)).ceil() as usize).clamp(1, n);
            conformal.push(Conformal { level: CONFORMAL_LEVEL, q: scores[rank - 1], beta });
        }
        self.card.conformal = conformal;
        self.card.platt = if platt.iter().any(Option::is_some) { platt } else { Vec::new() };
        Ok(())
    }
}

fn rms_z(r: &[f32], mean: &[f64], std: &[f64]) -> f64 {
    (r.iter().zip(mean).zip(std).map(|((&x, m), s)| ((x as f64 - m) / s).powi(2)).sum::<f64>()
        / mean.len().max(1) as f64)
        .sqrt()
}

/// Platt scaling (Platt 1999): (a, b) minimising the log loss of σ(a·logit p + b) against labels y ∈
/// {0, 1}, by Newton's method from the identity (a = 1, b = 0), with a small ridge toward it.
pub fn fit_platt(p: &[f64], y: &[f64]) -> [f64; 2] {
    let z: Vec<f64> = p.iter().map(|&q| q.clamp(1e-7, 1.0 - 1e-7)).map(|q| (q / (1.0 - q)).ln()).collect();
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let ridge = 1e-3 * p.len().max(1) as f64 * 1e-3;
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (ridge * (a - 1.0), ridge * b, ridge, 0.0, ridge);
        for (&zi, &yi) in z.iter().zip(y) {
            let s = 1.0 / (1.0 + (-(a * zi + b)).exp());
            let r = s - yi;
            let w = s * (1.0 - s);
            ga += r * zi;
            gb += r;
            haa += w * zi * zi;
            hab += w * zi;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() { [a, b] } else { [1.0, 0.0] }
}

/// Build the input for `arch` from a structure.
pub fn prepare(arch: &Architecture, s: &Structure) -> Sample {
    match arch {
        Architecture::Composition { .. } => {
            Sample::Features(composition_features(&s.composition()).iter().map(|&x| x as f32).collect())
        }
        Architecture::Graph { graph, .. } => Sample::Graph(CrystalGraph::build(s, graph)),
    }
}

/// Mean and (population) standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { 0.0 } else { s[s.len() / 2] }
}
