//! The coordinator side of the Slurm executor: writes task folders, submits them as job arrays, follows
//! the queue, collects results as they land and resubmits lost tasks. Its whole state is a serialisable
//! [`CoordinatorState`] kept in the run's checkpoint, so after the coordinator dies `geode runs resume`
//! reads the job ids back, takes every result that finished meanwhile without recomputing it, and
//! resubmits only what was lost.
//!
//! Fault model: a task's outcome is its folder (`result.json` written by rename, so never half-read;
//! `error.json` for failures a retry does not change). An array element that left the queue without an
//! outcome for each of its tasks (scancel, a node that died, the worker killed, a time limit) makes those
//! tasks *lost*: they are resubmitted up to `max_retries` times, with Slurm's end state logged. A result that
//! does not validate is moved aside and its task treated as lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::access::{Access, Ssh};
use super::slurm::{self, Element};
use super::task::{self, RelaxOutcome, TaskSpec, TaskState};
use super::{ExecutorSpec, SlurmProfile};
use crate::engine::error::JobError;
use crate::engine::job::JobContext;

/// One submitted array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayJob {
    pub job_id: u64,
    /// The manifest's file name in `WORK/arrays/`.
    pub manifest: String,
    /// The run's items each element computes.
    pub elements: Vec<Vec<usize>>,
}

/// Everything the coordinator knows, kept in the run's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorState {
    /// Task hash per item.
    pub hashes: Vec<String>,
    /// Items whose outcome the run has taken (a result or a final failure).
    pub settled: BTreeSet<usize>,
    /// Resubmissions per item.
    pub retries: BTreeMap<usize, u32>,
    /// Arrays in submission order.
    pub arrays: Vec<ArrayJob>,
}

/// An item's outcome, handed to the run once.
#[derive(Debug, Clone, PartialEq)]
pub enum Landed {
    Done(usize, Box<RelaxOutcome>),
    Failed(usize, String),
}

/// What one poll found.
#[derive(Debug, Clone, Default)]
pub struct Poll {
    pub landed: Vec<Landed>,
    /// Lines for the run's log (resubmissions with their reasons, corrupt results, queue trouble).
    pub log: Vec<(String, String)>,
    /// Items queued (pending) and running, by the queue's word.
    pub pending: usize,
    pub running: usize,
}

/// The coordinator of one run.
pub struct Coordinator<'a> {
    pub profile: &'a SlurmProfile,
    /// Task folders' root on this machine: the cluster's own folder, or over SSH a mirror of it.
    pub work: PathBuf,
    /// The same folder as the nodes see it.
    pub remote_work: PathBuf,
    pub access: Access,
    /// Relaxations in flight per worker.
    pub batch: usize,
    /// The arrays' Slurm job name ([`job_name`]).
    pub name: String,
}

impl<'a> Coordinator<'a> {
    pub fn new(profile: &'a SlurmProfile, project: &Path, run_id: i64, batch: usize) -> Coordinator<'a> {
        let access = access_of(profile);
        let work = profile.work_dir_for(project);
        let remote_work = if profile.host.is_some() { PathBuf::from(&profile.work_dir) } else { work.clone() };
        Coordinator { profile, work, remote_work, access, batch, name: job_name(project, run_id) }
    }

    /// Write every task's folder (existing ones are kept: their results are reused) and record the hashes.
    pub fn prepare(&self, state: &mut CoordinatorState, tasks: &[TaskSpec]) -> Result<(), String> {
        for d in ["tasks", "arrays", "logs"] {
            let p = self.work.join(d);
            std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        state.hashes = tasks.iter().map(|t| task::write_task(&self.work, t)).collect::<Result<_, _>>()?;
        // Outcomes the cluster already holds (an earlier campaign's) come back first, so they are reused.
        let hashes: Vec<&str> = state.hashes.iter().map(String::as_str).collect();
        self.access.pull(&self.work, &self.remote_work, &hashes)
    }

    /// Submit `items` as one array (`tasks_per_array_task` per element; several arrays past
    /// `array_size_limit` elements). Items whose folder already holds an outcome are not submitted.
    pub fn submit(&self, state: &mut CoordinatorState, items: &[usize]) -> Result<usize, String> {
        let todo: Vec<usize> = items
            .iter()
            .copied()
            .filter(|&i| {
                let dir = task::task_dir(&self.work, &state.hashes[i]);
                !(dir.join("result.json").is_file() || dir.join("error.json").is_file())
            })
            .collect();
        let per = self.profile.tasks_per_array_task.max(1);
        let mut submitted = 0;
        for chunk in todo.chunks(per * self.profile.array_size_limit.max(1)) {
            let lines: Vec<&str> = chunk.iter().map(|&i| state.hashes[i].as_str()).collect();
            let body = lines.join("\n") + "\n";
            let id = task::content_hash(body.as_bytes());
            let manifest = self.work.join("arrays").join(format!("{id}.txt"));
            let script = self.work.join("arrays").join(format!("{id}.sh"));
            task::write_atomic(&manifest, body.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;
            let remote_manifest = self.remote_work.join("arrays").join(format!("{id}.txt"));
            let remote_script = self.remote_work.join("arrays").join(format!("{id}.sh"));
            let text = slurm::job_script(self.profile, &remote_manifest, self.batch);
            task::write_atomic(&script, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
            let mut rels: Vec<String> = chunk.iter().map(|&i| format!("tasks/{}", state.hashes[i])).collect();
            rels.extend([format!("arrays/{id}.txt"), format!("arrays/{id}.sh"), "logs".into()]);
            self.access.push(&self.work, &self.remote_work, &rels)?;
            let elements: Vec<Vec<usize>> = chunk.chunks(per).map(<[usize]>::to_vec).collect();
            let logs = self.remote_work.join("logs");
            let args = slurm::sbatch_args(self.profile, &self.name, elements.len(), &remote_script, &logs);
            let job_id = slurm::parse_job_id(&self.access.run(&args)?)?;
            state.arrays.push(ArrayJob { job_id, manifest: format!("{id}.txt"), elements });
            submitted += chunk.len();
        }
        Ok(submitted)
    }

    /// A run's first step on the cluster: write every task's folder, submit those without an outcome, log
    /// what went where. The returned state goes into the run's checkpoint.
    pub fn start(&self, ctx: &mut JobContext, tasks: &[TaskSpec]) -> Result<CoordinatorState, JobError> {
        let n = tasks.len();
        let mut state = CoordinatorState::default();
        self.prepare(&mut state, tasks).map_err(JobError::Failed)?;
        let all: Vec<usize> = (0..n).collect();
        let k = self.submit(&mut state, &all).map_err(JobError::Failed)?;
        ctx.log(
            "info",
            format!(
                "{}: {k} of {n} relaxations submitted ({} already computed) in {} array(s); task folders in {}",
                self.profile.describe(),
                n - k,
                state.arrays.len(),
                self.work.display()
            ),
        );
        Ok(state)
    }

    /// A later step: wait a poll interval (in short slices, so a cancel is seen at once), poll, log what the
    /// poll found and set the `pending`/`running` counters. The outcomes that landed are the caller's to
    /// store in this same step (none when the run was cancelled meanwhile).
    pub fn step(&self, ctx: &mut JobContext, state: &mut CoordinatorState, tasks: &[TaskSpec]) -> Vec<Landed> {
        let wait = std::time::Duration::from_secs_f64(self.profile.poll_interval_s);
        let t0 = std::time::Instant::now();
        while t0.elapsed() < wait && !ctx.is_cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(50).min(wait));
        }
        if ctx.is_cancelled() {
            return Vec::new();
        }
        let poll = self.poll(state, tasks);
        for (level, message) in poll.log {
            ctx.log(&level, message);
        }
        ctx.set_counter("pending", poll.pending as f64);
        ctx.set_counter("running", poll.running as f64);
        poll.landed
    }

    /// The element that last took each unsettled item.
    fn latest_elements(state: &CoordinatorState) -> BTreeMap<usize, Element> {
        let mut m = BTreeMap::new();
        for a in &state.arrays {
            for (k, items) in a.elements.iter().enumerate() {
                for &i in items {
                    if !state.settled.contains(&i) {
                        m.insert(i, (a.job_id, k));
                    }
                }
            }
        }
        m
    }

    /// Look at the queue and the task folders: hand back every outcome that landed (each item once: the
    /// caller commits them with the state) and resubmit lost tasks.
    pub fn poll(&self, state: &mut CoordinatorState, tasks: &[TaskSpec]) -> Poll {
        let mut poll = Poll::default();
        let owner = Self::latest_elements(state);
        let jobs: BTreeSet<u64> = owner.values().map(|e| e.0).collect();
        // The queue first, then the folders: an element that left the queue wrote its results before it did.
        let queue = if jobs.is_empty() {
            BTreeMap::new()
        } else {
            match self.access.run(&slurm::squeue_args(&jobs.iter().copied().collect::<Vec<_>>())) {
                Ok(out) => slurm::parse_squeue(&out),
                Err(e) if slurm::is_unknown_job(&e) => BTreeMap::new(),
                Err(e) => {
                    poll.log.push(("warn".into(), format!("cannot read the queue, will try again: {e}")));
                    return poll;
                }
            }
        };
        let unsettled: Vec<&str> =
            (0..state.hashes.len()).filter(|i| !state.settled.contains(i)).map(|i| state.hashes[i].as_str()).collect();
        if let Err(e) = self.access.pull(&self.work, &self.remote_work, &unsettled) {
            poll.log.push(("warn".into(), format!("cannot fetch results, will try again: {e}")));
            return poll;
        }
        let mut lost: Vec<(usize, String)> = Vec::new();
        let mut ended: BTreeMap<Element, String> = BTreeMap::new();
        for (i, t) in tasks.iter().enumerate().take(state.hashes.len()) {
            if state.settled.contains(&i) {
                continue;
            }
            match task::read_state(&self.work, &state.hashes[i], t) {
                TaskState::Done(r) => {
                    state.settled.insert(i);
                    poll.landed.push(Landed::Done(i, r));
                }
                TaskState::Failed(reason) => {
                    state.settled.insert(i);
                    poll.landed.push(Landed::Failed(i, reason));
                }
                TaskState::Corrupt(reason) => {
                    poll.log.push(("warn".into(), format!("item {i}: rejected its result: {reason}")));
                    if let Err(e) = self.access.reject(&self.remote_work, &state.hashes[i]) {
                        poll.log.push(("warn".into(), format!("item {i}: {e}")));
                    }
                    lost.push((i, "its result was corrupt".into()));
                }
                TaskState::Pending => {
                    let Some(el) = owner.get(&i) else {
                        lost.push((i, "never submitted".into()));
                        continue;
                    };
                    match queue.get(el) {
                        Some(q) if q.state == "PENDING" => poll.pending += 1,
                        Some(_) => poll.running += 1,
                        None => {
                            let why = ended.entry(*el).or_insert_with(|| {
                                let id = format!("{}_{}", el.0, el.1);
                                self.access
                                    .run(&["scontrol".into(), "show".into(), "job".into(), "-o".into(), id.clone()])
                                    .ok()
                                    .and_then(|o| slurm::parse_scontrol_end(&o))
                                    .map(|s| format!("Slurm task {id} ended {s} without its result"))
                                    .unwrap_or_else(|| format!("Slurm task {id} left the queue without its result"))
                            });
                            lost.push((i, why.clone()));
                        }
                    }
                }
            }
        }
        let mut again = Vec::new();
        for (i, why) in lost {
            let n = state.retries.get(&i).copied().unwrap_or(0);
            if n < self.profile.max_retries {
                state.retries.insert(i, n + 1);
                poll.log.push((
                    "warn".into(),
                    format!("item {i}: {why}; resubmitting (retry {} of {})", n + 1, self.profile.max_retries),
                ));
                again.push(i);
            } else {
                state.settled.insert(i);
                poll.landed.push(Landed::Failed(i, format!("{why}, after {n} retries")));
            }
        }
        if !again.is_empty() {
            match self.submit(state, &again) {
                Ok(k) => poll.pending += k,
                Err(e) => {
                    // Not resubmitted: undo the count so the next poll tries again.
                    for i in &again {
                        if let Some(n) = state.retries.get_mut(i) {
                            *n -= 1;
                        }
                    }
                    poll.log
                        .push(("warn".into(), format!("cannot resubmit {} tasks, will try again: {e}", again.len())));
                }
            }
        }
        poll
    }
}

/// Relax `tasks` on the cluster of `profile` and wait for all of them, outside any run (commands that
/// write folders rather than projects, such as `geode generate --relax`): task folders under the
/// profile's `work_dir` (default `ROOT.cluster/`), finished tasks reused, lost ones resubmitted as in a run.
/// `log(level, message)` gets the coordinator's lines; when `cancelled()` turns true the arrays are
/// cancelled and the call returns an error. Outcomes come back in the order of `tasks`.
pub fn relax_and_wait(
    profile: &SlurmProfile,
    root: &Path,
    tasks: &[TaskSpec],
    batch: usize,
    log: &mut dyn FnMut(&str, &str),
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Result<RelaxOutcome, String>>, String> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let coord = Coordinator::new(profile, root, 0, batch);
    let mut state = CoordinatorState::default();
    coord.prepare(&mut state, tasks)?;
    let all: Vec<usize> = (0..tasks.len()).collect();
    let k = coord.submit(&mut state, &all)?;
    log(
        "info",
        &format!(
            "{}: {k} of {} relaxations submitted ({} already computed)",
            profile.describe(),
            tasks.len(),
            tasks.len() - k
        ),
    );
    let mut out: Vec<Option<Result<RelaxOutcome, String>>> = vec![None; tasks.len()];
    let wait = std::time::Duration::from_secs_f64(profile.poll_interval_s);
    while state.settled.len() < tasks.len() {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < wait && !cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(50).min(wait));
        }
        if cancelled() {
            cancel(profile, &state)?;
            return Err("cancelled; the arrays were cancelled (finished tasks are kept and reused)".into());
        }
        let poll = coord.poll(&mut state, tasks);
        for (level, message) in &poll.log {
            log(level, message);
        }
        for l in poll.landed {
            match l {
                Landed::Done(i, r) => out[i] = Some(Ok(*r)),
                Landed::Failed(i, why) => out[i] = Some(Err(why)),
            }
        }
    }
    Ok(out.into_iter().map(|o| o.unwrap_or_else(|| Err("no outcome".into()))).collect())
}

/// The Slurm job name of run `run_id` of `project`: `geode-RUN-HASH`, the hash (8 hex digits of the
/// project's path) telling apart projects whose runs share an id.
pub fn job_name(project: &Path, run_id: i64) -> String {
    let abs = std::path::absolute(project).unwrap_or_else(|_| project.to_path_buf());
    let h = task::content_hash(abs.as_os_str().as_encoded_bytes());
    format!("geode-{run_id}-{}", &h[..8])
}

/// How `profile` reaches its cluster.
pub fn access_of(profile: &SlurmProfile) -> Access {
    match &profile.host {
        None => Access::Local,
        Some(h) => Access::Ssh(Ssh { host: h.clone(), config: profile.ssh_config.as_ref().map(PathBuf::from) }),
    }
}

/// What a cancelled run's job does with its executor: `scancel` the arrays of a Slurm run; the log lines
/// say how that went (nothing for a local run or one that submitted nothing).
pub fn on_cancel(executor: &ExecutorSpec, state: Option<&CoordinatorState>) -> Vec<(String, String)> {
    let (ExecutorSpec::Slurm(profile), Some(state)) = (executor, state) else { return Vec::new() };
    match cancel(profile, state) {
        Ok(()) => vec![("info".into(), "cancelled the run's Slurm arrays (scancel)".into())],
        Err(e) => vec![("warn".into(), format!("could not cancel the Slurm arrays: {e}"))],
    }
}

/// `scancel` every array of `state` that still has unsettled items.
pub fn cancel(profile: &SlurmProfile, state: &CoordinatorState) -> Result<(), String> {
    let jobs: BTreeSet<u64> = Coordinator::latest_elements(state).values().map(|e| e.0).collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let mut args = vec!["scancel".to_string()];
    args.extend(jobs.iter().map(u64::to_string));
    access_of(profile).run(&args).map(|_| ())
}
