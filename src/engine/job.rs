//! The job abstraction: a long computation split into short steps, with typed parameters, a seed,
//! progress, live events, cooperative cancellation and a JSON checkpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use super::error::JobError;
use super::store::{NewCandidate, NewModel, PropValue, RunStatus};

/// Progress of a run as the UI shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Progress {
    /// 0..=1.
    pub fraction: f64,
    pub stage: String,
    /// Units of work done and in total for the current stage.
    pub done: u64,
    pub total: u64,
    /// Estimated seconds left, from the throughput since this process started the run.
    pub eta_s: Option<f64>,
    /// Units per second since this process started the run.
    pub throughput_per_s: Option<f64>,
    /// Free counters (e.g. `valid`, `duplicates`).
    pub counters: BTreeMap<String, f64>,
}

/// What happened, for live consumers (studio panels, CLI progress bars). Consumers never block the
/// engine: events go through an unbounded channel and may be dropped by a consumer that lags.
#[derive(Debug, Clone)]
pub struct Event {
    pub run_id: i64,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    Started,
    Progress(Progress),
    /// Store ids of candidates committed by the last step.
    Candidates(Vec<i64>),
    Metric {
        name: String,
        step: i64,
        value: f64,
    },
    Log {
        level: String,
        message: String,
    },
    Finished {
        status: RunStatus,
        error: Option<String>,
    },
}

/// What a step reports back.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    Continue,
    /// The job is complete; the value is its result summary (stored with the run).
    Done(Value),
}

/// A job's resumable state as stored in a checkpoint (the usual `Job::checkpoint`).
pub fn checkpoint_of<T: Serialize>(state: &T) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

/// A job's state back from its checkpoint (the usual `Job::restore`); a mismatch is a failed run.
pub fn state_from_checkpoint<T: serde::de::DeserializeOwned>(checkpoint: &Value) -> Result<T, JobError> {
    serde_json::from_value(checkpoint.clone()).map_err(|e| JobError::Failed(format!("corrupt checkpoint: {e}")))
}

/// A resumable computation. The engine calls `restore` once with the last committed checkpoint (if
/// any), then `step` until it returns `Done`, committing after every step what the step emitted
/// together with `checkpoint()`. Steps should take well under a second, or poll
/// [`JobContext::is_cancelled`] inside, so cancellation takes effect within a second.
///
/// Determinism: a job must produce the same candidates in the same order for the same parameters and
/// seed whatever the number of threads, e.g. by deriving per-item random streams from (seed, item).
pub trait Job: Send {
    fn kind(&self) -> &'static str;
    fn restore(&mut self, checkpoint: &Value) -> Result<(), JobError>;
    fn checkpoint(&self) -> Value;
    fn step(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError>;

    /// The run was cancelled (by the user, or by the engine shutting down): release what the job holds
    /// outside this process (a Slurm executor `scancel`s its arrays). Not called for a pause or a crash.
    fn on_cancel(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// What a step may use and emit.
pub struct JobContext {
    pub run_id: i64,
    pub seed: u64,
    /// The project file the run belongs to (jobs put their side files beside it).
    pub project: std::path::PathBuf,
    pool: Arc<rayon::ThreadPool>,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    pub(crate) next_seq: i64,
    pub(crate) candidates: Vec<NewCandidate>,
    pub(crate) prop_updates: Vec<(i64, String, PropValue)>,
    pub(crate) metrics: Vec<(String, i64, f64)>,
    pub(crate) models: Vec<NewModel>,
    pub(crate) logs: Vec<(String, String)>,
}

impl JobContext {
    pub(crate) fn new(
        run_id: i64,
        seed: u64,
        project: std::path::PathBuf,
        pool: Arc<rayon::ThreadPool>,
        cancel: Arc<AtomicBool>,
        progress: Arc<Mutex<Progress>>,
        next_seq: i64,
    ) -> JobContext {
        JobContext {
            run_id,
            seed,
            project,
            pool,
            cancel,
            progress,
            next_seq,
            candidates: Vec::new(),
            prop_updates: Vec::new(),
            metrics: Vec::new(),
            models: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// The shared rayon pool; run parallel work inside `pool().install(|| …)`.
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }

    /// True once cancellation or a pause was requested; long steps should return early.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// A shareable view of the cancel flag for use inside parallel closures.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Emit a candidate; the engine assigns its sequence number (returned) in emission order.
    pub fn emit(&mut self, mut c: NewCandidate) -> i64 {
        c.seq = self.next_seq;
        self.next_seq += 1;
        self.candidates.push(c);
        self.next_seq - 1
    }

    /// Set (or add) a numeric property on an already emitted candidate of this run, by sequence number.
    pub fn update_prop(&mut self, seq: i64, name: &str, value: PropValue) {
        self.prop_updates.push((seq, name.to_string(), value));
    }

    pub fn metric(&mut self, name: &str, step: i64, value: f64) {
        self.metrics.push((name.to_string(), step, value));
    }

    /// Record a trained model in the project, committed with this step.
    pub fn record_model(&mut self, model: NewModel) {
        self.models.push(model);
    }

    pub fn log(&mut self, level: &str, message: impl Into<String>) {
        self.logs.push((level.to_string(), message.into()));
    }

    /// Report progress within the current stage.
    pub fn set_progress(&self, stage: &str, done: u64, total: u64, fraction: f64) {
        if let Ok(mut p) = self.progress.lock() {
            if p.stage != stage {
                p.eta_s = None;
                p.throughput_per_s = None;
            }
            p.stage = stage.to_string();
            p.done = done;
            p.total = total;
            p.fraction = fraction.clamp(0.0, 1.0);
        }
    }

    pub fn set_counter(&self, name: &str, value: f64) {
        if let Ok(mut p) = self.progress.lock() {
            p.counters.insert(name.to_string(), value);
        }
    }
}
