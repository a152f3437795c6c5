//! The `relax` job: FIRE relaxation (`energy::relax`) of structures from the dataset or files with a
//! potential, one structure per step. Streams the energy and fmax of every FIRE step as metrics
//! (`energy:<i>` in eV, `fmax:<i>` in eV/Å, i = position in the input list; the step in flight also as the
//! live progress counters `input`, `step`, `energy`, `fmax`), trajectory frames every
//! `frame_every` steps as candidates at stage `frame`, and the relaxed structure at stage `relaxed` with
//! its energy, energy per atom, fmax, pressure, steps and whether it converged. Resumes at the first
//! structure not yet finished (a structure interrupted mid-relaxation starts again).

use std::ops::ControlFlow;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crystal::Structure;
use crate::data::Dataset;
use crate::energy::calculator::Calculator;
use crate::energy::spec::from_spec;
use crate::energy::{RelaxOptions, relax};
use crate::engine::error::JobError;
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
        check_inputs("structures", &self.structures)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct State {
    next: usize,
    converged: usize,
}

/// The job.
pub struct RelaxJob {
    params: RelaxParams,
    inputs: Vec<(String, Structure)>,
    calc: Box<dyn Calculator>,
    state: State,
}

impl RelaxJob {
    pub fn new(params: RelaxParams, _seed: u64) -> Result<RelaxJob, JobError> {
        params.validate()?;
        let calc = from_spec(&params.potential).map_err(|e| JobError::Config(format!("key `potential`: {e}")))?;
        Ok(RelaxJob { inputs: inputs(&params.structures)?, calc, params, state: State::default() })
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
        let n = self.inputs.len();
        if self.state.next >= n {
            return Ok(StepOutcome::Done(
                json!({"structures": n, "converged": self.state.converged, "potential": self.calc.name()}),
            ));
        }
        let i = self.state.next;
        let (name, start) = &self.inputs[i];
        let opts = RelaxOptions {
            fmax: self.params.fmax,
            max_steps: self.params.max_steps,
            relax_cell: self.params.relax_cell,
            symprec: self.params.symprec,
            ..RelaxOptions::default()
        };
        let cancel = ctx.cancel_flag();
        let every = self.params.frame_every;
        let mut points = Vec::new();
        let mut frames = Vec::new();
        let live = &*ctx;
        let out = relax(self.calc.as_ref(), start, &opts, &mut |p, s| {
            // The step in flight, for live views (the metrics are committed when the structure is done).
            live.set_counter("input", i as f64);
            live.set_counter("step", p.step as f64);
            live.set_counter("energy", p.energy);
            live.set_counter("fmax", p.fmax);
            points.push(p.clone());
            if every > 0 && p.step % every == 0 {
                frames.push((p.clone(), s.clone()));
            }
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .map_err(|e| JobError::Failed(format!("{name}: {e}")))?;
        if out.cancelled {
            // Paused or cancelled: this structure starts again on resume.
            return Ok(StepOutcome::Continue);
        }
        for p in &points {
            ctx.metric(&format!("energy:{i}"), p.step as i64, p.energy);
            ctx.metric(&format!("fmax:{i}"), p.step as i64, p.fmax);
        }
        let source = format!("relax:{name}");
        for (p, s) in frames {
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
        let ev = &out.evaluation;
        let natoms = out.structure.n_sites() as f64;
        let mut extra = serde_json::Map::new();
        extra.insert("input".into(), json!(name));
        extra.insert("potential".into(), json!(self.calc.name()));
        let props = vec![
            ("energy".to_string(), ev.energy.into()),
            ("energy_per_atom".to_string(), (ev.energy / natoms).into()),
            ("fmax".to_string(), out.trajectory.last().map_or(ev.fmax(), |p| p.fmax).into()),
            ("pressure_gpa".to_string(), ev.pressure_gpa().into()),
            ("steps".to_string(), (out.steps as f64).into()),
            ("converged".to_string(), f64::from(u8::from(out.converged)).into()),
            ("initial_energy_per_atom".to_string(), (out.trajectory[0].energy / natoms).into()),
        ];
        ctx.emit(NewCandidate {
            seq: 0,
            structure: out.structure.clone(),
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
                ev.energy / natoms
            ),
        );
        self.state.converged += usize::from(out.converged);
        self.state.next += 1;
        ctx.set_counter("converged", self.state.converged as f64);
        ctx.set_progress("relax", self.state.next as u64, n as u64, self.state.next as f64 / n as f64);
        Ok(StepOutcome::Continue)
    }
}
