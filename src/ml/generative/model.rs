//! The network of the crystal VAE: a graph encoder to a latent code z, heads from z (number of atoms,
//! composition, lattice, formation energy and band gap), and a periodic denoiser conditioned on z.
//!
//! Invariances: the encoder reads only element types and interatomic distances of the periodic graph
//! (rotation, translation, permutation and cell-choice invariant); the lattice head predicts the
//! Niggli cell's lengths and angles (rotation invariant); the denoiser's output for atom i is
//! Σ_j w_ij (r_i − r_j)/|r_i − r_j| with invariant weights w_ij, so it turns with the crystal and
//! ignores translations and atom order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::data::N_TYPES;
use crate::ml::graph::{GraphBatch, GraphSpec};
use crate::ml::graph_net::{GraphNet, GraphNetConfig};

/// The heads' error in standard deviations when a card does not record its validation loss.
pub const DEFAULT_HEAD_ERROR: f64 = 0.33;

/// Unclamped head properties [B, 2] (see [`CrystalVae::head_properties_unclamped`]) with the band gap
/// clamped at 0, as [`CrystalVae::head_properties`] gives them.
pub fn clamp_gap(raw: &Tensor) -> Tensor {
    let parts = raw.chunk(2, 1);
    Tensor::cat(&[parts[0].shallow_clone(), parts[1].clamp_min(0.0)], 1)
}

/// Hyper-parameters (stored in the model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenConfig {
    /// Latent dimension.
    pub latent: i64,
    /// Width of heads and denoiser.
    pub hidden: i64,
    pub encoder: GraphNetConfig,
    /// The encoder's graph (clean crystals).
    pub graph: GraphSpec,
    /// Message-passing layers of the denoiser.
    pub score_layers: i64,
    /// Denoiser neighbour cutoff (Å) and neighbours kept per atom.
    pub score_cutoff_ang: f64,
    pub score_neighbors: usize,
    pub n_rbf: i64,
    /// Largest cell (atoms) the model generates.
    pub max_atoms: usize,
    /// Noise levels σ (Å), geometric from `sigma_max` down to `sigma_min`.
    pub sigma_max: f64,
    pub sigma_min: f64,
    pub n_sigmas: usize,
    /// Loss weights.
    pub beta_kl: f64,
    pub w_lattice: f64,
    pub w_coord: f64,
    pub w_property: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            latent: 64,
            hidden: 128,
            encoder: GraphNetConfig { hidden: 96, layers: 3, embedding: 32, n_rbf: 40 },
            graph: GraphSpec { cutoff_ang: 6.0, max_neighbors: 12 },
            score_layers: 4,
            score_cutoff_ang: 6.0,
            score_neighbors: 20,
            n_rbf: 32,
            max_atoms: 20,
            sigma_max: 3.0,
            sigma_min: 0.01,
            n_sigmas: 40,
            beta_kl: 0.01,
            w_lattice: 10.0,
            w_coord: 10.0,
            w_property: 3.0,
        }
    }
}

impl GenConfig {
    /// Noise levels, largest first (Å).
    pub fn sigmas(&self) -> Vec<f64> {
        let n = self.n_sigmas.max(2);
        (0..n).map(|k| self.sigma_max * (self.sigma_min / self.sigma_max).powf(k as f64 / (n - 1) as f64)).collect()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.latent < 2 || self.hidden < 8 || self.score_layers < 1 {
            return Err("latent ≥ 2, hidden ≥ 8 and score_layers ≥ 1 are required".into());
        }
        if !(self.sigma_min > 0.0 && self.sigma_max > self.sigma_min) {
            return Err(format!(
                "noise levels need 0 < sigma_min < sigma_max (got {} and {})",
                self.sigma_min, self.sigma_max
            ));
        }
        if self.max_atoms == 0 || self.max_atoms > 200 {
            return Err(format!("max_atoms must be 1..=200 (got {})", self.max_atoms));
        }
        Ok(())
    }
}

/// Standardisation of the lattice numbers and properties on the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub lat_mean: [f64; 6],
    pub lat_std: [f64; 6],
    /// Formation energy (eV/atom) and band gap (eV).
    pub prop_mean: [f64; 2],
    pub prop_std: [f64; 2],
}

/// What a generator file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenCard {
    pub name: String,
    pub config: GenConfig,
    pub norm: Normalisation,
    /// What it was trained on.
    pub data: String,
    pub epochs: usize,
    pub seed: u64,
    /// Figures measured at the end of training (validation losses and the like).
    pub metrics: BTreeMap<String, f64>,
    pub weights_sha256: String,
    pub created: String,
    /// A Gaussian fitted to the training crystals' codes (the aggregate posterior), which prior
    /// samples are drawn from; `None` = the unit normal.
    #[serde(default)]
    pub latent_prior: Option<LatentPrior>,
    /// ln P(k) for a training crystal to have k distinct elements, index k = 0…[`MAX_ELEMENT_COUNT`]
    /// (add-one smoothing; the last entry holds k ≥ MAX), fitted with the latent prior. Decoding adds
    /// −w·ln P(k) to a formula's cost (`SampleOptions::element_prior`); `None` = no such prior.
    #[serde(default)]
    pub element_count_log_prior: Option<Vec<f64>>,
    /// Calibrated bonus (nats) for a formula of k distinct elements, index k = 0…[`MAX_ELEMENT_COUNT`]:
    /// fitted to prior samples so that decoding them picks k elements as often as the training
    /// crystals have k ([`fit_element_count_offsets`]). Decoding subtracts w·bonus(k) from a formula's
    /// cost; when absent (older files) it uses ln P(k) itself, which overshoots towards the most
    /// common count.
    #[serde(default)]
    pub element_count_offsets: Option<Vec<f64>>,
}

/// Largest element count the element-count prior tells apart (more counts as this many).
pub const MAX_ELEMENT_COUNT: usize = 10;

/// ln P(k distinct elements) over `structures`, add-one smoothed, index k = 0…[`MAX_ELEMENT_COUNT`].
pub fn element_count_log_prior<'a>(structures: impl IntoIterator<Item = &'a crate::crystal::Structure>) -> Vec<f64> {
    // Smoothed at k = 0 too, which no formula has, so every entry is finite (JSON has no −∞).
    let mut counts = [1.0f64; MAX_ELEMENT_COUNT + 1];
    for s in structures {
        counts[s.composition().elements().len().min(MAX_ELEMENT_COUNT)] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| (c / total).ln()).collect()
}

/// Temperature (nats) of the soft assignment in [`fit_element_count_offsets`]: small enough that the
/// hard choice the decoder makes reproduces the fitted shares (checked on held-out codes, within a
/// point or two at 0.02 nats; docs/generative.md).
pub const OFFSET_TEMPERATURE_NATS: f64 = 0.02;
/// The offsets stay within ± this many nats.
pub const MAX_OFFSET_NATS: f64 = 6.0;

/// Per-count bonuses b(k) such that choosing, for every crystal i, the k with the smallest
/// `cheapest[i][k]` − b(k) picks k as often as exp(`log_target[k]`) (as nearly as the crystals allow).
///
/// `cheapest[i][k]` is the cost (nats) of crystal i's cheapest formula with k distinct elements (+∞
/// where it has none). This is a discrete optimal-transport problem (crystals to element counts, cost
/// = formula cost, marginals = the target shares); b are its dual potentials, found by Sinkhorn's
/// iterations on the entropy-smoothed problem at temperature [`OFFSET_TEMPERATURE_NATS`]. The bonus is
/// normalised to 0 at the most common count and clamped to ± [`MAX_OFFSET_NATS`]; counts no crystal
/// can reach, or with a target share under 10⁻³, get no bonus of their own (the most negative one).
pub fn fit_element_count_offsets(cheapest: &[Vec<f64>], log_target: &[f64]) -> Vec<f64> {
    let n_k = log_target.len();
    let tau = OFFSET_TEMPERATURE_NATS;
    let reachable: Vec<bool> =
        (0..n_k).map(|k| cheapest.iter().any(|c| c.get(k).is_some_and(|x| x.is_finite()))).collect();
    let fitted: Vec<bool> = (0..n_k).map(|k| reachable[k] && log_target[k].exp() >= 1e-3).collect();
    let mode = (0..n_k).max_by(|&a, &b| log_target[a].total_cmp(&log_target[b])).unwrap_or(0);
    let mut b = vec![0.0f64; n_k];
    for _ in 0..2000 {
        let mut share = vec![0.0f64; n_k];
        for c in cheapest {
            let logits: Vec<f64> = (0..n_k)
                .map(|k| {
                    c.get(k)
                        .copied()
                        .filter(|x| x.is_finite() && fitted[k])
                        .map_or(f64::NEG_INFINITY, |x| (b[k] - x) / tau)
                })
                .collect();
            let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !top.is_finite() {
                continue;
            }
            let z: f64 = logits.iter().map(|l| (l - top).exp()).sum();
            for k in 0..n_k {
                share[k] += (logits[k] - top).exp() / z;
            }
        }
        let total: f64 = share.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut moved = 0.0f64;
        for k in (0..n_k).filter(|&k| fitted[k]) {
            let step = tau * (log_target[k] - (share[k] / total).max(1e-12).ln());
            b[k] = (b[k] + step).clamp(-MAX_OFFSET_NATS, MAX_OFFSET_NATS);
            moved = moved.max(step.abs());
        }
        let at_mode = b[mode];
        b.iter_mut().for_each(|x| *x = (*x - at_mode).clamp(-MAX_OFFSET_NATS, MAX_OFFSET_NATS));
        if moved < 1e-6 {
            break;
        }
    }
    let floor = (0..n_k).filter(|&k| fitted[k]).map(|k| b[k]).fold(0.0f64, f64::min);
    (0..n_k).map(|k| if fitted[k] { b[k] } else { floor.min(-MAX_OFFSET_NATS) }).collect()
}

/// z ~ N(mean, L Lᵀ), L lower triangular (row-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentPrior {
    pub mean: Vec<f64>,
    pub chol: Vec<f64>,
    /// Number of codes it was fitted to.
    pub n: usize,
}

/// Names of the property heads, in order.
pub const PROPERTY_HEADS: [&str; 2] = ["formation_energy_per_atom", "band_gap"];

struct Mlp {
    a: nn::Linear,
    b: nn::Linear,
    c: nn::Linear,
}

impl Mlp {
    fn new(p: nn::Path, i: i64, h: i64, o: i64) -> Mlp {
        Mlp {
            a: nn::linear(&p / "a", i, h, Default::default()),
            b: nn::linear(&p / "b", h, h, Default::default()),
            c: nn::linear(&p / "c", h, o, Default::default()),
        }
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.c.forward(&self.b.forward(&self.a.forward(x).silu()).silu())
    }
}

struct ScoreLayer {
    src: nn::Linear,
    dst: nn::Linear,
    edge: nn::Linear,
    mix: nn::Linear,
    norm: nn::LayerNorm,
}

/// Inputs of the denoiser for a batch of (noisy) structures.
pub struct ScoreInput<'a> {
    /// [N] type index (Z − 1), int64.
    pub types: &'a Tensor,
    /// [N] structure of each atom, int64.
    pub graph_index: &'a Tensor,
    /// [B] ln σ of each structure.
    pub log_sigma: &'a Tensor,
    /// [E] edge ends, int64.
    pub src: &'a Tensor,
    pub dst: &'a Tensor,
    /// [E, 3] r(dst) − r(src) (Å) and [E] its length.
    pub vec: &'a Tensor,
    pub dist: &'a Tensor,
}

struct ScoreNet {
    type_emb: nn::Embedding,
    z_in: nn::Linear,
    sigma_in: nn::Linear,
    edge_in: nn::Linear,
    layers: Vec<ScoreLayer>,
    out_src: nn::Linear,
    out_dst: nn::Linear,
    out_edge: nn::Linear,
    out: nn::Linear,
    cutoff: f64,
    n_rbf: i64,
    ln_sigma_range: (f64, f64),
}

const SIGMA_FEATURES: i64 = 16;

impl ScoreNet {
    fn new(p: nn::Path, cfg: &GenConfig) -> ScoreNet {
        let h = cfg.hidden;
        let lin = |q: nn::Path, i, o| nn::linear(q, i, o, Default::default());
        let nobias = |q: nn::Path, i, o| nn::linear(q, i, o, nn::LinearConfig { bias: false, ..Default::default() });
        ScoreNet {
            type_emb: nn::embedding(&p / "type_emb", N_TYPES as i64, h, Default::default()),
            z_in: lin(&p / "z_in", cfg.latent, h),
            sigma_in: lin(&p / "sigma_in", SIGMA_FEATURES, h),
            edge_in: lin(&p / "edge_in", cfg.n_rbf, h),
            layers: (0..cfg.score_layers)
                .map(|i| {
                    let l = &p / format!("layer{i}");
                    ScoreLayer {
                        src: lin(&l / "src", h, h),
                        dst: nobias(&l / "dst", h, h),
                        edge: nobias(&l / "edge", h, h),
                        mix: lin(&l / "mix", h, h),
                        norm: nn::layer_norm(&l / "norm", vec![h], Default::default()),
                    }
                })
                .collect(),
            out_src: lin(&p / "out_src", h, h),
            out_dst: nobias(&p / "out_dst", h, h),
            out_edge: nobias(&p / "out_edge", h, h),
            out: nn::linear(&p / "out", h, 1, nn::LinearConfig { bias: false, ..Default::default() }),
            cutoff: cfg.score_cutoff_ang,
            n_rbf: cfg.n_rbf,
            ln_sigma_range: (cfg.sigma_min.ln(), cfg.sigma_max.ln()),
        }
    }

    /// Sinusoidal features of ln σ scaled to [0, 1] over the training range.
    fn sigma_features(&self, log_sigma: &Tensor) -> Tensor {
        let (lo, hi) = self.ln_sigma_range;
        let t = (log_sigma - lo) / (hi - lo);
        let freqs = Tensor::arange(SIGMA_FEATURES / 2, (Kind::Float, log_sigma.device())) + 1.0;
        let arg = t.unsqueeze(1) * freqs.unsqueeze(0) * std::f64::consts::PI;
        Tensor::cat(&[arg.sin(), arg.cos()], 1)
    }

    /// Predicted unit noise ε̂ [N, 3] (Å per σ), Cartesian.
    fn forward(&self, x: &ScoreInput, z: &Tensor) -> Tensor {
        let n = x.types.size()[0];
        let h_dim = self.z_in.ws.size()[0];
        let cond = self.z_in.forward(z) + self.sigma_in.forward(&self.sigma_features(x.log_sigma));
        let mut h = self.type_emb.forward(x.types) + cond.index_select(0, x.graph_index);
        let centers = Tensor::linspace(0.0, self.cutoff, self.n_rbf, (Kind::Float, z.device()));
        let width = self.cutoff / (self.n_rbf - 1) as f64;
        let diff = x.dist.unsqueeze(1) - centers.unsqueeze(0);
        let rbf = (-(&diff * &diff) / (width * width)).exp();
        // Smooth cutoff envelope, 1 at 0 and 0 at the cutoff.
        let u = (x.dist / self.cutoff).clamp(0.0, 1.0);
        let env = (-(&u * &u) + 1.0).square().unsqueeze(1);
        let e = self.edge_in.forward(&rbf);
        for l in &self.layers {
            let m = (l.src.forward(&h).index_select(0, x.src)
                + l.dst.forward(&h).index_select(0, x.dst)
                + l.edge.forward(&e))
            .silu();
            let m = l.mix.forward(&m) * &env;
            let agg = Tensor::zeros([n, h_dim], (Kind::Float, z.device())).index_add(0, x.dst, &m);
            h = &h + l.norm.forward(&agg).silu();
        }
        let w = self.out.forward(
            &(self.out_src.forward(&h).index_select(0, x.src)
                + self.out_dst.forward(&h).index_select(0, x.dst)
                + self.out_edge.forward(&e))
            .silu(),
        ) * &env;
        let unit = x.vec / x.dist.clamp_min(1e-3).unsqueeze(1);
        Tensor::zeros([n, 3], (Kind::Float, z.device())).index_add(0, x.dst, &(unit * w))
    }
}

/// The crystal VAE.
pub struct CrystalVae {
    pub vs: nn::VarStore,
    pub card: GenCard,
    encoder: GraphNet,
    /// Encoder features + [ln N, N / max_atoms] → (μ, ln σ²): mean pooling alone cannot see the
    /// number of atoms in the cell.
    enc_out: nn::Linear,
    head_n: Mlp,
    head_comp: Mlp,
    head_lattice: Mlp,
    head_props: Mlp,
    score: ScoreNet,
}

/// What the heads say about latent codes: logits and standardised values.
pub struct Heads {
    /// [B, max_atoms] logits over 1..=max_atoms atoms.
    pub n_logits: Tensor,
    /// [B, N_TYPES] logits of the element fractions.
    pub comp_logits: Tensor,
    /// [B, 6] standardised lattice numbers.
    pub lattice: Tensor,
    /// [B, 2] standardised formation energy and band gap.
    pub props: Tensor,
}

impl CrystalVae {
    /// A freshly initialised model.
    pub fn new(card: GenCard) -> CrystalVae {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = card.config.clone();
        let p = vs.root();
        let (l, h) = (cfg.latent, cfg.hidden);
        CrystalVae {
            encoder: GraphNet::new(&(&p / "encoder"), &cfg.encoder, cfg.graph.cutoff_ang, h),
            enc_out: nn::linear(&p / "enc_out", h + 2, 2 * l, Default::default()),
            head_n: Mlp::new(&p / "head_n", l, h, cfg.max_atoms as i64),
            head_comp: Mlp::new(&p / "head_comp", l, h, N_TYPES as i64),
            head_lattice: Mlp::new(&p / "head_lattice", l, h, 6),
            head_props: Mlp::new(&p / "head_props", l, h, 2),
            score: ScoreNet::new(&p / "score", &cfg),
            vs,
            card,
        }
    }

    pub fn config(&self) -> &GenConfig {
        &self.card.config
    }

    pub fn latent_dim(&self) -> i64 {
        self.card.config.latent
    }

    /// Mean and log-variance of q(z | crystal), each [B, latent].
    pub fn encode(&self, g: &GraphBatch) -> (Tensor, Tensor) {
        let feats = self.encoder.forward_t(g, false).silu();
        let n = g.n_nodes.unsqueeze(1);
        let nf = Tensor::cat(&[n.log(), &n / self.card.config.max_atoms as f64], 1);
        let out = self.enc_out.forward(&Tensor::cat(&[feats, nf], 1));
        let parts = out.chunk(2, 1);
        (parts[0].shallow_clone(), parts[1].clamp(-12.0, 6.0))
    }

    pub fn heads(&self, z: &Tensor) -> Heads {
        Heads {
            n_logits: self.head_n.forward(z),
            comp_logits: self.head_comp.forward(z),
            lattice: self.head_lattice.forward(z),
            props: self.head_props.forward(z),
        }
    }

    /// Properties predicted by the heads [B, 2] in physical units (eV/atom, eV; the gap clamped at 0).
    pub fn head_properties(&self, z: &Tensor) -> Tensor {
        clamp_gap(&self.head_properties_unclamped(z))
    }

    /// [`CrystalVae::head_properties`] without the clamp: the band gap may be negative, so latent
    /// optimisation still has a gradient where the head calls a code metallic.
    pub fn head_properties_unclamped(&self, z: &Tensor) -> Tensor {
        let n = &self.card.norm;
        let mean = Tensor::from_slice(&[n.prop_mean[0] as f32, n.prop_mean[1] as f32]);
        let std = Tensor::from_slice(&[n.prop_std[0] as f32, n.prop_std[1] as f32]);
        self.head_props.forward(z) * std.unsqueeze(0) + mean.unsqueeze(0)
    }

    /// The property heads' error in standard deviations of each property: the square root of the
    /// card's validation loss (`val_property`, a standardised MSE), or [`DEFAULT_HEAD_ERROR`].
    pub fn head_error(&self) -> f64 {
        self.card
            .metrics
            .get("val_property")
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .map_or(DEFAULT_HEAD_ERROR, f64::sqrt)
    }

    /// Predicted unit noise ε̂ [N, 3] for noisy structures conditioned on their codes `z` [B, latent].
    pub fn score(&self, x: &ScoreInput, z: &Tensor) -> Tensor {
        self.score.forward(x, z)
    }

    pub fn n_parameters(&self) -> i64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Hard choice of k per crystal under bonus b: shares.
    fn shares(cheapest: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
        let mut s = vec![0.0; b.len()];
        for c in cheapest {
            let k = (0..b.len())
                .filter(|&k| c[k].is_finite())
                .min_by(|&x, &y| (c[x] - b[x]).total_cmp(&(c[y] - b[y])))
                .unwrap();
            s[k] += 1.0 / cheapest.len() as f64;
        }
        s
    }

    #[test]
    fn element_count_offsets_reproduce_the_target_shares() {
        // 4,000 crystals whose cheapest formula mostly has 3–4 elements (costs grow with the distance
        // from a random favourite count), as blurred heads give; the target wants 30 % binaries.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cheapest: Vec<Vec<f64>> = (0..4000)
            .map(|_| {
                let fav = rng.random_range(2.5..4.5f64);
                (0..=MAX_ELEMENT_COUNT)
                    .map(|k| {
                        if (1..=5).contains(&k) {
                            (k as f64 - fav).abs() * rng.random_range(0.2..1.0)
                        } else {
                            f64::INFINITY
                        }
                    })
                    .collect()
            })
            .collect();
        let target: [f64; 6] = [0.0, 0.02, 0.30, 0.52, 0.14, 0.02];
        let log_target: Vec<f64> =
            (0..=MAX_ELEMENT_COUNT).map(|k| target.get(k).copied().unwrap_or(0.0).max(1e-6).ln()).collect();
        let none = shares(&cheapest, &[0.0; MAX_ELEMENT_COUNT + 1]);
        assert!(none[2] < 0.2 && none[4] > 0.25, "without a bonus binaries are rare and quaternaries common: {none:?}");
        let b = fit_element_count_offsets(&cheapest, &log_target);
        assert_eq!(b[3], 0.0, "normalised at the most common count");
        assert!(b.iter().all(|x| x.abs() <= MAX_OFFSET_NATS));
        assert_eq!(b[0], -MAX_OFFSET_NATS, "unreachable counts get the largest penalty");
        let got = shares(&cheapest, &b);
        for k in 1..=5 {
            assert!((got[k] - target[k]).abs() < 0.02, "k = {k}: {:.3} against {:.3} ({got:?})", got[k], target[k]);
        }
    }
}
