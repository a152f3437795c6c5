//! Task folders: one evaluation, named by the content hash of what it computes.
//!
//! ```text
//! WORK/tasks/<hash>/task.json     {"format": 1, "code": "geode 0.1.0", "task": {"kind": "relax", …}}
//!                   result.json   written by the worker through a temporary file and a rename, so a
//!                                 node that dies mid-write leaves no result (only result.json.tmp)
//!                   error.json    the evaluation failed for a reason a retry does not change (bad input)
//! ```
//! `<hash>` is the first 32 hex digits of the SHA-256 of task.json's bytes, which hold the inputs, the
//! evaluator's settings and the code version: a folder is never reused for different work, and the same
//! work finds its finished result. Results read back are validated like any input file (size limit, parse
//! errors and impossible values named per task), never trusted.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crystal::Structure;
use crate::energy::{RelaxOptions, RelaxStep, Relaxation};
use crate::io::pmg_json;

/// Version of the task folder layout.
pub const TASK_FORMAT: u32 = 1;

/// The code that computes a task; part of its hash, so a new Geode does not reuse an older one's results.
pub const CODE_VERSION: &str = concat!("geode ", env!("CARGO_PKG_VERSION"));

/// Largest result file read back (bytes); a bigger one is rejected as corrupt.
pub const MAX_RESULT_BYTES: u64 = 64 << 20;

/// One evaluation, as it travels to a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskSpec {
    Relax(RelaxTask),
}

/// A FIRE relaxation with a potential (the `relax` job's, screening's and evolution's relaxations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaxTask {
    /// The starting structure (pymatgen's `Structure.as_dict()` form).
    pub structure: Value,
    /// Potential spec (`chgnet`, `lj:…`, `torchscript:path=…`).
    pub potential: String,
    /// eV/Å.
    pub fmax: f64,
    pub max_steps: usize,
    pub relax_cell: bool,
    /// Keep the space group found at this tolerance (Å).
    pub symprec: Option<f64>,
    /// Keep a frame every this many steps (and the first); 0: none.
    pub frame_every: usize,
}

impl RelaxTask {
    /// The FIRE options the task asks for (ASE's defaults for the rest).
    pub fn options(&self) -> RelaxOptions {
        RelaxOptions {
            fmax: self.fmax,
            max_steps: self.max_steps,
            relax_cell: self.relax_cell,
            symprec: self.symprec,
            ..RelaxOptions::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    format: u32,
    code: String,
    task: TaskSpec,
}

/// A relaxation's result as the worker writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaxOutcome {
    /// The relaxed structure (pymatgen dict).
    pub structure: Value,
    /// eV.
    pub energy: f64,
    /// eV/Å³ (ASE's sign).
    pub stress: [[f64; 3]; 3],
    /// μ_B per site, when the potential gives them.
    pub magmoms: Option<Vec<f64>>,
    pub steps: usize,
    pub converged: bool,
    /// Every point: (step, energy eV, fmax eV/Å, volume Å³).
    pub trajectory: Vec<(usize, f64, f64, f64)>,
    /// Frames every `frame_every` steps: (step, structure).
    pub frames: Vec<(usize, Value)>,
    /// The potential's name.
    pub potential: String,
    /// Seconds from the start of the worker's batch to this result.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultFile {
    format: u32,
    task: String,
    code: String,
    result: RelaxOutcome,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorFile {
    format: u32,
    task: String,
    error: String,
}

/// What a task folder holds now.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    /// No result yet.
    Pending,
    Done(Box<RelaxOutcome>),
    /// The evaluation failed for a reason a retry does not change.
    Failed(String),
    /// A result file that does not validate (it was moved aside; the task can run again).
    Corrupt(String),
}

impl TaskSpec {
    /// A relaxation task.
    pub fn relax(structure: &Structure, potential: &str, opts: &RelaxOptions, frame_every: usize) -> Self {
        TaskSpec::Relax(RelaxTask {
            structure: pmg_json::to_dict(structure),
            potential: potential.to_string(),
            fmax: opts.fmax,
            max_steps: opts.max_steps,
            relax_cell: opts.relax_cell,
            symprec: opts.symprec,
            frame_every,
        })
    }

    fn file_bytes(&self) -> Vec<u8> {
        let f = TaskFile { format: TASK_FORMAT, code: CODE_VERSION.into(), task: self.clone() };
        serde_json::to_vec_pretty(&f).expect("a task serialises")
    }

    /// The content hash that names the task's folder (32 hex digits).
    pub fn hash(&self) -> String {
        content_hash(&self.file_bytes())
    }
}

/// The first 32 hex digits of the SHA-256 of `bytes`: names task folders and manifests.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The folder of task `hash` under `work`.
pub fn task_dir(work: &Path, hash: &str) -> PathBuf {
    work.join("tasks").join(hash)
}

/// Whether `name` is a task hash (so it can name a folder and travel in commands as it is).
pub fn is_hash(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Write `bytes` to `path` so that a reader sees the whole file or none: a temporary file beside it,
/// flushed to disk, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Create the folder of `task` under `work` (nothing is written when it exists with a task file); returns its hash.
pub fn write_task(work: &Path, task: &TaskSpec) -> Result<String, String> {
    let hash = task.hash();
    let dir = task_dir(work, &hash);
    let file = dir.join("task.json");
    if file.is_file() {
        return Ok(hash);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_atomic(&file, &task.file_bytes()).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(hash)
}

/// Read the task of folder `dir`; the folder's name must be the task's hash.
pub fn read_task(dir: &Path) -> Result<TaskSpec, String> {
    let file = dir.join("task.json");
    let bytes = read_limited(&file, MAX_RESULT_BYTES)?;
    let f: TaskFile =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a Geode task file: {e}", file.display()))?;
    if f.format != TASK_FORMAT {
        return Err(format!("{}: task format {} (this Geode reads {TASK_FORMAT})", file.display(), f.format));
    }
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if f.code != CODE_VERSION {
        return Err(format!("{}: written for {}, this worker is {CODE_VERSION}", file.display(), f.code));
    }
    if f.task.hash() != name {
        return Err(format!("{}: the task's content hash is not the folder's name {name:?}", file.display()));
    }
    Ok(f.task)
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{}: larger than {limit} bytes", path.display()));
    }
    Ok(bytes)
}

impl RelaxOutcome {
    /// From a finished relaxation.
    pub fn new(r: &Relaxation, frames: Vec<(usize, Structure)>, potential: String, seconds: f64) -> RelaxOutcome {
        let st = r.evaluation.stress;
        RelaxOutcome {
            structure: pmg_json::to_dict(&r.structure),
            energy: r.evaluation.energy,
            stress: std::array::from_fn(|i| std::array::from_fn(|j| st[(i, j)])),
            magmoms: r.evaluation.magmoms.clone(),
            steps: r.steps,
            converged: r.converged,
            trajectory: r.trajectory.iter().map(|p| (p.step, p.energy, p.fmax, p.volume)).collect(),
            frames: frames.into_iter().map(|(k, s)| (k, pmg_json::to_dict(&s))).collect(),
            potential,
            seconds,
        }
    }

    /// The relaxed structure.
    pub fn structure(&self) -> Structure {
        pmg_json::structure_from_value(&self.structure, "result", "result.json").expect("validated when read")
    }

    /// The trajectory as [`RelaxStep`]s.
    pub fn steps(&self) -> Vec<RelaxStep> {
        self.trajectory.iter().map(|&(step, energy, fmax, volume)| RelaxStep { step, energy, fmax, volume }).collect()
    }

    /// The frames' structures.
    pub fn frames(&self) -> Vec<(usize, Structure)> {
        self.frames
            .iter()
            .map(|(k, v)| (*k, pmg_json::structure_from_value(v, "frame", "result.json").expect("validated when read")))
            .collect()
    }

    /// Everything a consumer relies on, checked against the task: the structures parse and keep the task's
    /// sites, numbers are finite, the trajectory is complete.
    fn check(&self, task: &TaskSpec, file: &str) -> Result<(), String> {
        let TaskSpec::Relax(t) = task;
        let start = pmg_json::structure_from_value(&t.structure, "task", file).map_err(|e| e.to_string())?;
        let species = start.species().to_vec();
        let check_structure = |v: &Value, what: &str| -> Result<(), String> {
            let s = pmg_json::structure_from_value(v, what, file).map_err(|e| e.to_string())?;
            if s.species() != species.as_slice() {
                return Err(format!("{file}: {what} does not hold the task's {} sites", species.len()));
            }
            Ok(())
        };
        check_structure(&self.structure, "structure")?;
        let finite = self.energy.is_finite()
            && self.stress.iter().flatten().all(|x| x.is_finite())
            && self.magmoms.as_ref().is_none_or(|m| m.len() == species.len() && m.iter().all(|x| x.is_finite()))
            && self.trajectory.iter().all(|p| p.1.is_finite() && p.2.is_finite() && p.3.is_finite())
            && self.seconds.is_finite();
        if !finite {
            return Err(format!("{file}: a value is not a finite number or magmoms do not match the sites"));
        }
        if self.steps > t.max_steps || self.trajectory.len() != self.steps + 1 {
            return Err(format!(
                "{file}: {} steps with {} trajectory points (at most {} steps)",
                self.steps,
                self.trajectory.len(),
                t.max_steps
            ));
        }
        if self.frames.len() > self.trajectory.len() {
            return Err(format!("{file}: more frames than steps"));
        }
        for (k, f) in &self.frames {
            check_structure(f, &format!("frame {k}"))?;
        }
        Ok(())
    }
}

/// Write the result of task `hash` in `dir` (atomically).
pub fn write_result(dir: &Path, hash: &str, result: &RelaxOutcome) -> std::io::Result<()> {
    let f = ResultFile { format: TASK_FORMAT, task: hash.into(), code: CODE_VERSION.into(), result: result.clone() };
    write_atomic(&dir.join("result.json"), &serde_json::to_vec(&f).expect("a result serialises"))
}

/// Record that task `hash` failed for a reason a retry does not change.
pub fn write_error(dir: &Path, hash: &str, error: &str) -> std::io::Result<()> {
    let f = ErrorFile { format: TASK_FORMAT, task: hash.into(), error: error.into() };
    write_atomic(&dir.join("error.json"), &serde_json::to_vec(&f).expect("an error serialises"))
}

/// What the folder of `task` (hash `hash`) under `work` holds. A result that does not validate is moved
/// aside (`result.json.rejected`, so it is kept for inspection and the task can run again) and reported as
/// [`TaskState::Corrupt`] with the reason.
pub fn read_state(work: &Path, hash: &str, task: &TaskSpec) -> TaskState {
    let dir = task_dir(work, hash);
    let file = dir.join("result.json");
    if file.is_file() {
        let shown = file.display().to_string();
        let parsed = read_limited(&file, MAX_RESULT_BYTES).and_then(|bytes| {
            let f: ResultFile =
                serde_json::from_slice(&bytes).map_err(|e| format!("{shown}: not a Geode result: {e}"))?;
            if f.task != hash {
                return Err(format!("{shown}: the result of task {:?}, not {hash}", f.task));
            }
            f.result.check(task, &shown)?;
            Ok(f.result)
        });
        return match parsed {
            Ok(r) => TaskState::Done(Box::new(r)),
            Err(reason) => {
                let _ = std::fs::rename(&file, dir.join("result.json.rejected"));
                TaskState::Corrupt(reason)
            }
        };
    }
    let err = dir.join("error.json");
    if err.is_file() {
        let reason = read_limited(&err, 1 << 20)
            .ok()
            .and_then(|b| serde_json::from_slice::<ErrorFile>(&b).ok())
            .filter(|f| f.task == hash)
            .map(|f| f.error.chars().take(2000).collect())
            .unwrap_or_else(|| format!("{}: unreadable error file", err.display()));
        return TaskState::Failed(reason);
    }
    TaskState::Pending
}
