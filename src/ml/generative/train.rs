//! Training the crystal VAE: the encoder's code z (reparameterised) feeds the heads, trained on the
//! crystal's number of atoms (cross-entropy), composition (cross-entropy against element fractions),
//! lattice (MSE on standardised numbers) and properties (MSE, missing labels masked), plus β·KL to the
//! unit normal prior; the denoiser learns denoising score matching: each crystal gets one noise
//! level σ from the geometric ladder, positions get Cartesian Gaussian noise of that σ, and the network
//! predicts the (minimum-image) noise in units of σ given z.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};

use super::data::{GenSample, N_TYPES, edges_many, frac_diff};
use super::model::{CrystalVae, GenCard, GenConfig, Normalisation, ScoreInput};
use crate::data::{Dataset, Split};
use crate::ml::ModelError;
use crate::ml::graph::GraphBatch;

/// How to train a generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenTrainConfig {
    pub model: GenConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Use only this many training crystals (a random subset), for quick runs.
    pub limit: Option<usize>,
}

impl Default for GenTrainConfig {
    fn default() -> Self {
        GenTrainConfig { model: GenConfig::default(), epochs: 60, batch_size: 64, learning_rate: 1e-3, limit: None }
    }
}

impl GenTrainConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        if self.epochs == 0 || self.batch_size == 0 || !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err("epochs ≥ 1, batch_size ≥ 1 and 0 < learning_rate < 1 are required".into());
        }
        Ok(())
    }
}

/// Standard normal draw (Box–Muller).
pub fn gauss(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The embedded dataset's crystals of one split as training samples (`limit` picks a random subset).
pub fn embedded_samples(cfg: &GenConfig, split: Split, limit: Option<usize>, seed: u64) -> Vec<GenSample> {
    let ds = Dataset::embedded();
    let mut entries: Vec<_> = ds.split(split).filter(|e| e.structure.n_sites() <= cfg.max_atoms).collect();
    if let Some(n) = limit {
        entries.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        entries.truncate(n);
    }
    entries
        .iter()
        .filter_map(|e| {
            GenSample::new(
                &e.name,
                &e.structure,
                [Some(e.formation_energy_per_atom), e.band_gap],
                &cfg.graph,
                cfg.max_atoms,
            )
            .ok()
        })
        .collect()
}

/// Means and standard deviations of the lattice numbers and properties.
pub fn normalisation(samples: &[GenSample]) -> Normalisation {
    let stat = |vals: Vec<f64>| {
        let n = vals.len().max(1) as f64;
        let m = vals.iter().sum::<f64>() / n;
        let s = (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt().max(1e-6);
        (m, s)
    };
    let mut norm = Normalisation { lat_mean: [0.0; 6], lat_std: [1.0; 6], prop_mean: [0.0; 2], prop_std: [1.0; 2] };
    for k in 0..6 {
        (norm.lat_mean[k], norm.lat_std[k]) = stat(samples.iter().map(|s| s.lat6[k]).collect());
    }
    for k in 0..2 {
        (norm.prop_mean[k], norm.prop_std[k]) = stat(samples.iter().filter_map(|s| s.props[k]).collect());
    }
    norm
}

/// Loss parts of a batch (means over crystals or atoms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossParts {
    pub n_atoms: f64,
    pub composition: f64,
    pub lattice: f64,
    pub property: f64,
    pub coord: f64,
    pub kl: f64,
    pub total: f64,
}

impl LossParts {
    fn add(&mut self, o: &LossParts, w: f64) {
        self.n_atoms += w * o.n_atoms;
        self.composition += w * o.composition;
        self.lattice += w * o.lattice;
        self.property += w * o.property;
        self.coord += w * o.coord;
        self.kl += w * o.kl;
        self.total += w * o.total;
    }
}

fn scalar(t: &Tensor) -> f64 {
    f64::try_from(t).unwrap_or(f64::NAN)
}

/// The loss of a batch. With `sample_z` the code is reparameterised (training); otherwise the mean.
pub fn batch_loss(vae: &CrystalVae, batch: &[&GenSample], rng: &mut ChaCha8Rng, sample_z: bool) -> (Tensor, LossParts) {
    let cfg = vae.config().clone();
    let norm = vae.card.norm.clone();
    let b = batch.len() as i64;
    let graphs: Vec<_> = batch.iter().map(|s| &s.graph).collect();
    let g = GraphBatch::new(&graphs, Device::Cpu);
    let (mu, logvar) = vae.encode(&g);
    let z = if sample_z { &mu + (&logvar * 0.5).exp() * mu.randn_like() } else { mu.shallow_clone() };
    let heads = vae.heads(&z);

    let n_target: Vec<i64> = batch.iter().map(|s| (s.z.len().clamp(1, cfg.max_atoms) - 1) as i64).collect();
    let l_n = heads.n_logits.cross_entropy_for_logits(&Tensor::from_slice(&n_target));

    let mut comp = vec![0f32; batch.len() * N_TYPES];
    for (i, s) in batch.iter().enumerate() {
        for &(t, f) in &s.comp {
            comp[i * N_TYPES + t] = f;
        }
    }
    let comp = Tensor::from_slice(&comp).reshape([b, N_TYPES as i64]);
    let l_comp = -(comp * heads.comp_logits.log_softmax(1, Kind::Float))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float);

    let lat: Vec<f32> = batch
        .iter()
        .flat_map(|s| (0..6).map(move |k| ((s.lat6[k] - norm.lat_mean[k]) / norm.lat_std[k]) as f32))
        .collect();
    let l_lat = (&heads.lattice - Tensor::from_slice(&lat).reshape([b, 6])).square().mean(Kind::Float);

    let (mut pv, mut pm) = (Vec::new(), Vec::new());
    for s in batch {
        for k in 0..2 {
            pv.push(s.props[k].map(|v| ((v - norm.prop_mean[k]) / norm.prop_std[k]) as f32).unwrap_or(0.0));
            pm.push(if s.props[k].is_some() { 1f32 } else { 0.0 });
        }
    }
    let pm = Tensor::from_slice(&pm).reshape([b, 2]);
    let l_prop = ((&heads.props - Tensor::from_slice(&pv).reshape([b, 2])).square() * &pm).sum(Kind::Float)
        / pm.sum(Kind::Float).clamp_min(1.0);

    let kl = (((&logvar + 1.0) - mu.square() - logvar.exp()) * -0.5)
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float);

    // Denoising: one noise level per crystal.
    let sigmas = cfg.sigmas();
    let mut noisy = Vec::with_capacity(batch.len());
    let mut target = Vec::new();
    let mut log_sigma = Vec::with_capacity(batch.len());
    for s in batch {
        let sigma = sigmas[rng.random_range(0..sigmas.len())];
        log_sigma.push(sigma.ln() as f32);
        let inv = s.lattice.frac_from_cart();
        let f: Vec<_> = s
            .frac
            .iter()
            .map(|f| {
                let eps = nalgebra::Vector3::new(gauss(rng), gauss(rng), gauss(rng)) * sigma;
                crate::crystal::structure::wrap_frac(&(f + inv * eps))
            })
            .collect();
        for (a, b0) in f.iter().zip(&s.frac) {
            let d = s.lattice.cart_from_frac() * frac_diff(a, b0) / sigma;
            target.extend([d.x as f32, d.y as f32, d.z as f32]);
        }
        noisy.push(f);
    }
    let items: Vec<_> = batch.iter().zip(&noisy).map(|(s, f)| (&s.lattice, s.z.as_slice(), f.as_slice())).collect();
    let edges = edges_many(&items, cfg.score_cutoff_ang, cfg.score_neighbors);
    let input = ScoreTensors::new(batch.iter().map(|s| s.z.as_slice()), &edges, log_sigma);
    let eps_hat = vae.score(&input.view(), &z);
    let n_atoms = target.len() as i64 / 3;
    let l_coord = (eps_hat - Tensor::from_slice(&target).reshape([n_atoms, 3]))
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float);

    let total =
        &l_n + &l_comp + &l_lat * cfg.w_lattice + &l_prop * cfg.w_property + &l_coord * cfg.w_coord + &kl * cfg.beta_kl;
    let parts = LossParts {
        n_atoms: scalar(&l_n),
        composition: scalar(&l_comp),
        lattice: scalar(&l_lat),
        property: scalar(&l_prop),
        coord: scalar(&l_coord),
        kl: scalar(&kl),
        total: scalar(&total),
    };
    (total, parts)
}

/// Owned tensors of a [`ScoreInput`].
pub struct ScoreTensors {
    types: Tensor,
    graph_index: Tensor,
    log_sigma: Tensor,
    src: Tensor,
    dst: Tensor,
    vec: Tensor,
    dist: Tensor,
}

impl ScoreTensors {
    /// Batch the atoms (`z` per structure) and edges of many structures; `log_sigma` per structure.
    pub fn new<'a>(
        z: impl Iterator<Item = &'a [u8]>,
        edges: &[super::data::Edges],
        log_sigma: Vec<f32>,
    ) -> ScoreTensors {
        let (mut types, mut gi, mut src, mut dst, mut vec, mut dist) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0i64;
        for (b, (zs, e)) in z.zip(edges).enumerate() {
            types.extend(zs.iter().map(|&x| (x as i64 - 1).clamp(0, N_TYPES as i64 - 1)));
            gi.extend(std::iter::repeat_n(b as i64, zs.len()));
            src.extend(e.src.iter().map(|&x| x as i64 + offset));
            dst.extend(e.dst.iter().map(|&x| x as i64 + offset));
            vec.extend(e.vec.iter().flatten().copied());
            dist.extend_from_slice(&e.dist);
            offset += zs.len() as i64;
        }
        let n_e = dist.len() as i64;
        ScoreTensors {
            types: Tensor::from_slice(&types),
            graph_index: Tensor::from_slice(&gi),
            log_sigma: Tensor::from_slice(&log_sigma),
            src: Tensor::from_slice(&src),
            dst: Tensor::from_slice(&dst),
            vec: Tensor::from_slice(&vec).reshape([n_e, 3]),
            dist: Tensor::from_slice(&dist),
        }
    }

    pub fn view(&self) -> ScoreInput<'_> {
        ScoreInput {
            types: &self.types,
            graph_index: &self.graph_index,
            log_sigma: &self.log_sigma,
            src: &self.src,
            dst: &self.dst,
            vec: &self.vec,
            dist: &self.dist,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenEpochReport {
    pub epoch: usize,
    pub train: LossParts,
    pub val: LossParts,
    pub seconds: f64,
}

/// The training loop of one generator.
pub struct GenTrainer {
    pub cfg: GenTrainConfig,
    pub vae: CrystalVae,
    pub train: Arc<Vec<GenSample>>,
    pub val: Arc<Vec<GenSample>>,
    pub epoch: usize,
    pub seed: u64,
    opt: nn::Optimizer,
}

impl GenTrainer {
    pub fn new(
        cfg: GenTrainConfig,
        train: Arc<Vec<GenSample>>,
        val: Arc<Vec<GenSample>>,
        seed: u64,
        data: &str,
    ) -> Result<GenTrainer, ModelError> {
        cfg.validate().map_err(ModelError::Setup)?;
        if train.is_empty() {
            return Err(ModelError::Setup("no training crystals".into()));
        }
        tch::manual_seed((seed & 0x7fff_ffff_ffff) as i64);
        let card = GenCard {
            name: "crystal-vae".into(),
            config: cfg.model.clone(),
            norm: normalisation(&train),
            data: data.to_string(),
            epochs: 0,
            seed,
            metrics: Default::default(),
            weights_sha256: String::new(),
            created: String::new(),
            latent_prior: None,
            element_count_log_prior: None,
            element_count_offsets: None,
        };
        let vae = CrystalVae::new(card);
        let opt = nn::Adam::default().build(&vae.vs, cfg.learning_rate)?;
        Ok(GenTrainer { cfg, vae, train, val, epoch: 0, seed, opt })
    }

    /// Continue from saved weights (the optimiser restarts; the learning-rate schedule continues).
    pub fn restore(&mut self, bytes: &[u8], epoch: usize) -> Result<(), ModelError> {
        let loaded = CrystalVae::from_bytes(bytes, "generator checkpoint")?;
        tch::no_grad(|| -> Result<(), ModelError> {
            let src = loaded.vs.variables();
            for (name, mut var) in self.vae.vs.variables() {
                let s = src.get(&name).ok_or_else(|| ModelError::Setup(format!("checkpoint lacks {name}")))?;
                var.copy_(s);
            }
            Ok(())
        })?;
        self.epoch = epoch;
        Ok(())
    }

    pub fn done(&self) -> bool {
        self.epoch >= self.cfg.epochs
    }

    /// One epoch over shuffled mini-batches, then the validation loss (codes at their means, fixed
    /// noise seed). `cancelled` is polled between batches; `progress(done, total)` after each.
    pub fn epoch(
        &mut self,
        cancelled: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<GenEpochReport, ModelError> {
        let t0 = std::time::Instant::now();
        let e = self.epoch;
        let lr = self.cfg.learning_rate
            * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / self.cfg.epochs as f64).cos()));
        self.opt.set_lr(lr);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (e as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        order.shuffle(&mut rng);
        let mut sum = LossParts::default();
        let chunks: Vec<&[usize]> = order.chunks(self.cfg.batch_size).collect();
        for (k, chunk) in chunks.iter().enumerate() {
            if cancelled() {
                return Err(ModelError::Cancelled);
            }
            let batch: Vec<&GenSample> = chunk.iter().map(|&i| &self.train[i]).collect();
            let (loss, parts) = batch_loss(&self.vae, &batch, &mut rng, true);
            if !parts.total.is_finite() {
                return Err(ModelError::Failed(format!("training loss became {} (epoch {e})", parts.total)));
            }
            self.opt.zero_grad();
            loss.f_backward()?;
            self.opt.clip_grad_norm(10.0);
            self.opt.step();
            sum.add(&parts, 1.0 / chunks.len() as f64);
            progress(k + 1, chunks.len());
        }
        let val = self.validation_loss()?;
        self.epoch += 1;
        self.vae.card.epochs = self.epoch;
        Ok(GenEpochReport { epoch: self.epoch, train: sum, val, seconds: t0.elapsed().as_secs_f64() })
    }

    /// Mean loss parts over the validation crystals.
    pub fn validation_loss(&self) -> Result<LossParts, ModelError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed);
        let mut sum = LossParts::default();
        let n = self.val.len().max(1) as f64;
        tch::no_grad(|| {
            for chunk in self.val.chunks(256) {
                let batch: Vec<&GenSample> = chunk.iter().collect();
                let (_, parts) = batch_loss(&self.vae, &batch, &mut rng, false);
                sum.add(&parts, chunk.len() as f64 / n);
            }
        });
        Ok(sum)
    }
}
