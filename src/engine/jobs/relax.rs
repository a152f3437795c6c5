//! The `relax` job: FIRE relaxation (`energy::relax`) of structures from the dataset or files with a
//! potential, one structure per step. Streams the energy and fmax of every FIRE step as metrics
//! (`energy:<i>` in eV, `fmax:<i>` in eV/Å, i = position in the input list; the step in flight also as the
//! live progress counters `input`, `step`, `energy`, `fmax`), trajectory frames every
//! `frame_every` steps as candidates at stage `frame`, and the relaxed structure at stage `relaxed` with
//! its energy, energy per atom, fmax, pressure, steps and whether it converged.
//!
//! Where the relaxations run is the `[executor]` table ([`crate::engine::executor`]):
//! - `local` (default): `batch` relaxations at once (one batched potential evaluation per FIRE step), a
//!   step relaxing the next `batch` structures; resumes at the first chunk not yet finished (a chunk
//!   interrupted mid-relaxation starts again).
//! - `slurm`: the first step writes a task folder per structure and submits them as job arrays; each later
//!   step polls the queue and stores the results that landed. Structures whose relaxation fails are logged
//!   and skipped (`failed` counter), as on the local executor.

use std::ops::ControlFlow;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crystal::Structure;
use crate::data::Dataset;
use crate::energy::calculator::Calculator;
use crate::energy::spec::from_spec;
use crate::energy::{RelaxOptions, RelaxStep, relax_many};
use crate::engine::error::JobError;
use crate::engine::executor::coordinator::{Coordinator, CoordinatorState, Landed};
use crate::engine::executor::task::{RelaxOutcome, TaskSpec};
use crate::engine::executor::{ExecutorSpec, SlurmProfile};
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::NewCandidate;
use crate::io;

pub const KIND: &str = "relax";

/// Parameters of a `relax` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaxParams {
    /// Dataset ids, labels or reduced formulas, or structure files (every structure in them).
    pub structures: Vec<String>,
    /// `chgnet` (the default: CHGNet 0.3.0), `chgnet:weights=FILE.safetensors` or
    /// `lj:sigma=…,epsilon=…[,cutoff=…]` (Å, eV, Å).
    pub potential: String,
    /// eV/Å.
    pub fmax: f64,
    pub max_steps: usize,
    pub relax_cell: bool,
    /// Store a trajectory frame every this many steps (and the first); 0: none.
    pub frame_every: usize,
    /// Keep each structure's space group, found at this tolerance (Å); absent: relax freely.
    pub symprec: Option<f64>,
    /// Relaxations in flight at once, one batched potential evaluation per FIRE step (on each Slurm
    /// worker too). 1: one structure at a time.
    pub batch: usize,
    /// Where the relaxations run: `kind = "local"` (this process) or `kind = "slurm"` with a profile.
    pub executor: ExecutorSpec,
}

impl Default for RelaxParams {
    fn default() -> Self {
        RelaxParams {
            structures: Vec::new(),
            potential: "chgnet".into(),
            fmax: 0.05,
            max_steps: 500,
            relax_cell: true,
            frame_every: 10,
            symprec: None,
            batch: 8,
            executor: ExecutorSpec::Local,
        }
    }
}

/// Structures named by file paths or dataset ids, labels or formulas (error messages name the key `structures`).
pub(crate) fn inputs(keys: &[String]) -> Result<Vec<(String, Structure)>, JobError> {
    let ds = Dataset::embedded();
    let mut out = Vec::new();
    for k in keys {
        if Path::new(k).is_file() {
            let ss =
                io::read_structures(Path::new(k)).map_err(|e| JobError::Config(format!("key `structures`: {e}")))?;
            out.extend(ss.into_iter().enumerate().map(|(i, s)| (format!("{k}#{i}"), s)));
        } else {
            let hits = ds.lookup(k);
            if hits.is_empty() {
                return Err(JobError::Config(format!(
                    "key `structures`: {k:?} is neither a file nor a dataset id, label or formula"
                )));
            }
            out.extend(hits.into_iter().map(|e| (format!("oqmd-icsd-{}", e.id), e.structure.clone())));
        }
    }
    Ok(out)
}

/// Check input names at submission without reading any file: each is an existing file, or a dataset
/// id, label or formula.
pub(crate) fn check_inputs(key: &str, keys: &[String]) -> Result<(), JobError> {
    let ds = Dataset::embedded();
    for k in keys {
        if !Path::new(k).is_file() && ds.lookup(k).is_empty() {
            return Err(JobError::Config(format!(
                "key `{key}`: {k:?} is neither a file nor a dataset id, label or formula"
            )));
        }
    }
    Ok(())
}

impl RelaxParams {
    /// Cheap checks only (no potential is loaded, no file parsed); the job's `new` reads the inputs.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.structures.is_empty() {
            return Err(JobError::Config("key `structures`: give at least one dataset id, formula or file".into()));
        }
        crate::energy::spec::check_spec(&self.potential)
            .map_err(|e| JobError::Config(format!("key `potential`: {e}")))?;
        if !(self.fmax.is_finite() && self.fmax > 0.0) {
            return Err(JobError::Config(format!("key `fmax`: expected a positive number of eV/Å, got {}", self.fmax)));
        }
        if self.max_steps == 0 {
            return Err(JobError::Config("key `max_steps`: expected at least 1".into()));
        }
        if self.batch == 0 {
            return Err(JobError::Config("key `batch`: expected at least 1".into()));
        }
        self.executor.validate()?;
        check_inputs("structures", &self.structures)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct State {
    /// Local executor: the first structure not yet relaxed.
    next: usize,
    converged: usize,
    failed: usize,
    /// Slurm executor: the coordinator's state (task hashes, arrays, settled items).
    remote: Option<CoordinatorState>,
}

/// The job.
pub struct RelaxJob {
    params: RelaxParams,
    inputs: Vec<(String, Structure)>,
    calc: Box<dyn Calculator>,
    state: State,
    /// Slurm executor: each input's task, made once (every poll checks results against them).
    tasks: Vec<TaskSpec>,
}

impl RelaxJob {
    pub fn new(params: RelaxParams, _seed: u64) -> Result<RelaxJob, JobError> {
        params.validate()?;
        let calc = from_spec(&params.potential).map_err(|e| JobError::Config(format!("key `potential`: {e}")))?;
        Ok(RelaxJob { inputs: inputs(&params.structures)?, calc, params, state: State::default(), tasks: Vec::new() })
    }
}

impl Job for RelaxJob {
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
        match self.params.executor.clone() {
            ExecutorSpec::Local => self.step_local(ctx),
            ExecutorSpec::Slurm(profile) => self.step_slurm(ctx, &profile),
        }
    }

    fn on_cancel(&mut self) -> Vec<(String, String)> {
        crate::engine::executor::coordinator::on_cancel(&self.params.executor, self.state.remote.as_ref())
    }
}

impl RelaxJob {
    fn options(&self) -> RelaxOptions {
        RelaxOptions {
            fmax: self.params.fmax,
            max_steps: self.params.max_steps,
            relax_cell: self.params.relax_cell,
            symprec: self.params.symprec,
            ..RelaxOptions::default()
        }
    }

    /// The next `batch` structures, relaxed together in this process.
    fn step_local(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        let n = self.inputs.len();
        if self.state.next >= n {
            return Ok(self.summary());
        }
        let chunk = self.state.next..(self.state.next + self.params.batch.max(1)).min(n);
        let starts: Vec<Structure> = self.inputs[chunk.clone()].iter().map(|(_, s)| s.clone()).collect();
        let opts = self.options();
        let cancel = ctx.cancel_flag();
        let every = self.params.frame_every;
        let mut frames: Vec<Vec<(usize, Structure)>> = vec![Vec::new(); starts.len()];
        let live = &*ctx;
        let first = chunk.start;
        let t0 = std::time::Instant::now();
        let name = self.calc.name();
        let results = relax_many(
            self.calc.as_ref(),
            &starts,
            &opts,
            self.params.batch,
            &mut |k, p, s| {
                // The step in flight, for live views (the metrics are committed when the chunk is done).
                live.set_counter("input", (first + k) as f64);
                live.set_counter("step", p.step as f64);
                live.set_counter("energy", p.energy);
                live.set_counter("fmax", p.fmax);
                if every > 0 && p.step % every == 0 {
                    frames[k].push((p.step, s.clone()));
                }
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
            &mut |_, _| ControlFlow::Continue(()),
        );
        if results.iter().any(|r| r.as_ref().is_ok_and(|r| r.cancelled)) {
            // Paused or cancelled: this chunk starts again on resume.
            return Ok(StepOutcome::Continue);
        }
        for (k, r) in results.into_iter().enumerate() {
            let i = first + k;
            match r {
                Ok(r) => {
                    let out =
                        RelaxOutcome::new(&r, std::mem::take(&mut frames[k]), name.clone(), t0.elapsed().as_secs_f64());
                    self.store_result(ctx, i, &out);
                }
                Err(e) => self.store_failure(ctx, i, &e.to_string()),
            }
        }
        self.state.next = chunk.end;
        self.report_progress(ctx, self.state.next);
        Ok(StepOutcome::Continue)
    }

    /// Slurm: submit every structure as a task on the first step, then collect what lands.
    fn step_slurm(&mut self, ctx: &mut JobContext, profile: &SlurmProfile) -> Result<StepOutcome, JobError> {
        let n = self.inputs.len();
        if self.tasks.is_empty() {
            let opts = self.options();
            self.tasks = self
                .inputs
                .iter()
                .map(|(_, s)| TaskSpec::relax(s, &self.params.potential, &opts, self.params.frame_every))
                .collect();
        }
        let tasks = &self.tasks;
        let coord = Coordinator::new(profile, &ctx.project, ctx.run_id, self.params.batch);
        let Some(remote) = &mut self.state.remote else {
            self.state.remote = Some(coord.start(ctx, tasks)?);
            ctx.set_progress("submitted", 0, n as u64, 0.0);
            return Ok(StepOutcome::Continue);
        };
        if remote.settled.len() >= n {
            return Ok(self.summary());
        }
        let landed = coord.step(ctx, remote, tasks);
        let settled = remote.settled.len();
        for l in landed {
            match l {
                Landed::Done(i, r) => self.store_result(ctx, i, &r),
                Landed::Failed(i, reason) => self.store_failure(ctx, i, &reason),
            }
        }
        self.report_progress(ctx, settled);
        Ok(StepOutcome::Continue)
    }

    fn summary(&self) -> StepOutcome {
        StepOutcome::Done(json!({
            "structures": self.inputs.len(),
            "converged": self.state.converged,
            "failed": self.state.failed,
            "potential": self.calc.name(),
            "executor": self.params.executor.describe(),
        }))
    }

    fn report_progress(&self, ctx: &JobContext, done: usize) {
        let n = self.inputs.len();
        ctx.set_counter("converged", self.state.converged as f64);
        ctx.set_counter("failed", self.state.failed as f64);
        ctx.set_progress("relax", done as u64, n as u64, done as f64 / n.max(1) as f64);
    }

    fn store_failure(&mut self, ctx: &mut JobContext, i: usize, reason: &str) {
        let name = &self.inputs[i].0;
        ctx.log("warn", format!("{name}: not relaxed: {reason}"));
        self.state.failed += 1;
    }

    /// Metrics, frames and the relaxed candidate of input `i`, the same whichever executor computed it.
    fn store_result(&mut self, ctx: &mut JobContext, i: usize, out: &RelaxOutcome) {
        let name = self.inputs[i].0.clone();
        let points: Vec<RelaxStep> = out.steps();
        for p in &points {
            ctx.metric(&format!("energy:{i}"), p.step as i64, p.energy);
            ctx.metric(&format!("fmax:{i}"), p.step as i64, p.fmax);
        }
        let source = format!("relax:{name}");
        for (step, s) in out.frames() {
            let Some(p) = points.iter().find(|p| p.step == step) else { continue };
            let mut extra = serde_json::Map::new();
            extra.insert("input".into(), json!(name));
            extra.insert("step".into(), json!(p.step));
            let props = vec![
                ("energy".to_string(), p.energy.into()),
                ("fmax".to_string(), p.fmax.into()),
                ("step".to_string(), (p.step as f64).into()),
            ];
            ctx.emit(NewCandidate {
                seq: 0,
                structure: s,
                stage: "frame".into(),
                source: source.clone(),
                props,
                extra,
                parents: Vec::new(),
            });
        }
        let structure = out.structure();
        let natoms = structure.n_sites() as f64;
        let trace = -(out.stress[0][0] + out.stress[1][1] + out.stress[2][2]);
        let pressure_gpa = trace / 3.0 * crate::energy::calculator::EV_PER_ANG3_IN_GPA;
        let mut extra = serde_json::Map::new();
        extra.insert("input".into(), json!(name));
        extra.insert("potential".into(), json!(out.potential));
        let last_fmax = points.last().map_or(0.0, |p| p.fmax);
        let props = vec![
            ("energy".to_string(), out.energy.into()),
            ("energy_per_atom".to_string(), (out.energy / natoms).into()),
            ("fmax".to_string(), last_fmax.into()),
            ("pressure_gpa".to_string(), pressure_gpa.into()),
            ("steps".to_string(), (out.steps as f64).into()),
            ("converged".to_string(), f64::from(u8::from(out.converged)).into()),
            ("initial_energy_per_atom".to_string(), (points[0].energy / natoms).into()),
        ];
        ctx.emit(NewCandidate {
            seq: 0,
            structure,
            stage: "relaxed".into(),
            source,
            props,
            extra,
            parents: Vec::new(),
        });
        ctx.log(
            "info",
            format!(
                "{name}: {} after {} steps, {:.6} eV/atom",
                if out.converged { "converged" } else { "not converged" },
                out.steps,
                out.energy / natoms
            ),
        );
        self.state.converged += usize::from(out.converged);
    }
}
