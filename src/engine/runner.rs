//! The engine: one shared rayon pool, a priority queue of runs, a driver thread per active run and a
//! monitor thread that publishes progress at 10 Hz and relays cancel requests made by other processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};

use super::error::JobError;
use super::job::{Event, EventKind, Job, JobContext, Progress, StepOutcome};
use super::spec::RunSpec;
use super::store::{RunStatus, StepCommit, Store};

/// Interval of progress events from the monitor thread.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Live handles of one active run.
#[derive(Clone)]
pub struct RunHandle {
    pub run_id: i64,
    cancel: Arc<AtomicBool>,
    paused: Arc<(Mutex<bool>, Condvar)>,
    /// Set when the run should stop because of a pause (not a cancel).
    pausing: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    started: Instant,
    done_at_start: Arc<Mutex<Option<u64>>>,
}

struct Queued {
    run_id: i64,
    priority: i64,
}

struct Shared {
    queue: Vec<Queued>,
    active: HashMap<i64, RunHandle>,
    threads: HashMap<i64, JoinHandle<()>>,
    shutdown: bool,
}

/// The compute engine bound to one project file.
pub struct Engine {
    project: PathBuf,
    pool: Arc<rayon::ThreadPool>,
    max_concurrent: usize,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    monitor: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
    /// Nice value added to the pool's and the runs' threads (0: as the caller).
    nice: i32,
}

/// How much lower than the UI the studio's compute threads run (Linux nice value): a background job
/// then takes the cores the interface leaves idle instead of competing with it for every frame.
pub const BACKGROUND_NICE: i32 = 10;

/// Lower the calling thread's scheduling priority by `nice` (Linux, where nice values are per thread;
/// threads it starts, such as libtorch's OpenMP workers, inherit it). Elsewhere, or for 0, nothing.
pub fn lower_this_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice != 0 {
        // SAFETY: plain system calls on the calling thread's own id.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, (now + nice).min(19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Threads for the shared pool: all cores but one, so the UI thread stays responsive.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).saturating_sub(1).max(1)
}

impl Engine {
    /// Start an engine on `project` with `threads` pool threads running at most `max_concurrent` runs.
    pub fn new(project: &Path, threads: usize, max_concurrent: usize) -> Result<Engine, JobError> {
        Engine::with_nice(project, threads, max_concurrent, 0)
    }

    /// [`Engine::new`] with its compute threads (pool workers and run drivers) at [`BACKGROUND_NICE`]
    /// below the caller: what an interactive front end wants.
    pub fn in_background(project: &Path, threads: usize, max_concurrent: usize) -> Result<Engine, JobError> {
        Engine::with_nice(project, threads, max_concurrent, BACKGROUND_NICE)
    }

    fn with_nice(project: &Path, threads: usize, max_concurrent: usize, nice: i32) -> Result<Engine, JobError> {
        Store::open(project)?; // create and migrate once, up front
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .thread_name(|i| format!("geode-worker-{i}"))
                .start_handler(move |_| lower_this_thread_priority(nice))
                .build()
                .map_err(|e| JobError::Failed(format!("cannot start the thread pool: {e}")))?,
        );
        let (events_tx, events_rx) = unbounded();
        let shared = Arc::new((
            Mutex::new(Shared { queue: Vec::new(), active: HashMap::new(), threads: HashMap::new(), shutdown: false }),
            Condvar::new(),
        ));
        let mut engine = Engine {
            project: project.to_path_buf(),
            pool,
            max_concurrent: max_concurrent.max(1),
            shared,
            events_tx,
            events_rx,
            monitor: None,
            scheduler: None,
            nice,
        };
        engine.monitor = Some(engine.spawn_monitor());
        engine.scheduler = Some(engine.spawn_scheduler());
        Ok(engine)
    }

    pub fn project(&self) -> &Path {
        &self.project
    }

    /// Live events of every run of this engine.
    pub fn events(&self) -> Receiver<Event> {
        self.events_rx.clone()
    }

    /// Record a new run and queue it; returns its id. The spec is validated before anything is stored.
    pub fn submit(&self, spec: &RunSpec, seed: u64, priority: i64) -> Result<i64, JobError> {
        spec.validate()?;
        let store = Store::open(&self.project)?;
        let run_id = store.create_run(spec, seed, priority)?;
        self.enqueue(run_id, priority);
        Ok(run_id)
    }

    /// Queue an existing, unfinished run again; it continues from its last checkpoint.
    pub fn resume(&self, run_id: i64) -> Result<(), JobError> {
        let store = Store::open(&self.project)?;
        let run = store.run(run_id)?;
        if run.status == "finished" {
            return Err(JobError::NotResumable { run_id, status: run.status });
        }
        if self.is_active(run_id) {
            // A paused run in this engine: just unpause it.
            self.unpause(run_id);
            return Ok(());
        }
        store.set_status(run_id, RunStatus::Queued, None)?;
        self.enqueue(run_id, run.priority);
        Ok(())
    }

    fn enqueue(&self, run_id: i64, priority: i64) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut s) = lock.lock() {
            s.queue.push(Queued { run_id, priority });
            cv.notify_all();
        }
    }

    fn is_active(&self, run_id: i64) -> bool {
        self.shared.0.lock().map(|s| s.active.contains_key(&run_id)).unwrap_or(false)
    }

    /// Request cancellation; takes effect at the job's next check (well under a second).
    pub fn cancel(&self, run_id: i64) -> Result<(), JobError> {
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().map_err(|_| JobError::Failed("engine state poisoned".into()))?;
        if let Some(pos) = s.queue.iter().position(|q| q.run_id == run_id) {
            s.queue.remove(pos);
            drop(s);
            let store = Store::open(&self.project)?;
            store.set_status(run_id, RunStatus::Cancelled, None)?;
            let _ = self
                .events_tx
                .send(Event { run_id, kind: EventKind::Finished { status: RunStatus::Cancelled, error: None } });
            return Ok(());
        }
        if let Some(h) = s.active.get(&run_id) {
            h.cancel.store(true, Ordering::SeqCst);
            let (m, c) = &*h.paused;
            if let Ok(mut p) = m.lock() {
                *p = false;
            }
            c.notify_all();
            cv.notify_all();
            return Ok(());
        }
        drop(s);
        Store::open(&self.project)?.request_cancel(run_id)
    }

    /// Pause an active run after its current step.
    pub fn pause(&self, run_id: i64) {
        if let Ok(s) = self.shared.0.lock()
            && let Some(h) = s.active.get(&run_id)
        {
            if let Ok(mut p) = h.paused.0.lock() {
                *p = true;
            }
            h.pausing.store(true, Ordering::SeqCst);
        }
    }

    pub fn unpause(&self, run_id: i64) {
        if let Ok(s) = self.shared.0.lock()
            && let Some(h) = s.active.get(&run_id)
        {
            h.pausing.store(false, Ordering::SeqCst);
            let (m, c) = &*h.paused;
            if let Ok(mut p) = m.lock() {
                *p = false;
            }
            c.notify_all();
        }
    }

    /// Current progress of an active run.
    pub fn progress(&self, run_id: i64) -> Option<Progress> {
        let s = self.shared.0.lock().ok()?;
        let h = s.active.get(&run_id)?;
        h.progress.lock().ok().map(|p| p.clone())
    }

    /// Block until no run is queued or active.
    pub fn wait_idle(&self) {
        let (lock, cv) = &*self.shared;
        let Ok(mut s) = lock.lock() else { return };
        while !(s.queue.is_empty() && s.active.is_empty()) {
            s = match cv.wait_timeout(s, Duration::from_millis(50)) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
        let threads: Vec<_> = s.threads.drain().map(|(_, t)| t).collect();
        drop(s);
        for t in threads {
            let _ = t.join();
        }
    }

    fn spawn_scheduler(&self) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let project = self.project.clone();
        let pool = self.pool.clone();
        let tx = self.events_tx.clone();
        let max = self.max_concurrent;
        let nice = self.nice;
        std::thread::Builder::new()
            .name("geode-scheduler".into())
            .spawn(move || {
                let (lock, cv) = &*shared;
                loop {
                    let Ok(mut s) = lock.lock() else { return };
                    while !s.shutdown && (s.queue.is_empty() || s.active.len() >= max) {
                        s = match cv.wait_timeout(s, Duration::from_millis(100)) {
                            Ok((g, _)) => g,
                            Err(_) => return,
                        };
                    }
                    if s.shutdown {
                        return;
                    }
                    // Highest priority first; FIFO among equals.
                    let best = s
                        .queue
                        .iter()
                        .enumerate()
                        .max_by_key(|(i, q)| (q.priority, std::cmp::Reverse(*i)))
                        .map(|(i, _)| i);
                    let Some(i) = best else { continue };
                    let q = s.queue.remove(i);
                    let handle = RunHandle {
                        run_id: q.run_id,
                        cancel: Arc::new(AtomicBool::new(false)),
                        paused: Arc::new((Mutex::new(false), Condvar::new())),
                        pausing: Arc::new(AtomicBool::new(false)),
                        progress: Arc::new(Mutex::new(Progress::default())),
                        started: Instant::now(),
                        done_at_start: Arc::new(Mutex::new(None)),
                    };
                    s.active.insert(q.run_id, handle.clone());
                    let (shared2, project2, pool2, tx2) = (shared.clone(), project.clone(), pool.clone(), tx.clone());
                    let t = std::thread::Builder::new().name(format!("geode-run-{}", q.run_id)).spawn(move || {
                        lower_this_thread_priority(nice);
                        drive(&project2, pool2, &handle, &tx2);
                        let (lock, cv) = &*shared2;
                        if let Ok(mut s) = lock.lock() {
                            s.active.remove(&handle.run_id);
                            cv.notify_all();
                        }
                    });
                    if let Ok(t) = t {
                        s.threads.insert(q.run_id, t);
                    }
                }
            })
            .expect("spawn scheduler thread")
    }

    fn spawn_monitor(&self) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let tx = self.events_tx.clone();
        let project = self.project.clone();
        std::thread::Builder::new()
            .name("geode-monitor".into())
            .spawn(move || {
                let mut last_db_check = Instant::now();
                loop {
                    std::thread::sleep(PROGRESS_INTERVAL);
                    let handles: Vec<RunHandle> = match shared.0.lock() {
                        Ok(s) if s.shutdown => return,
                        Ok(s) => s.active.values().cloned().collect(),
                        Err(_) => return,
                    };
                    for h in &handles {
                        let snapshot = match h.progress.lock() {
                            Ok(mut p) => {
                                let mut base = h.done_at_start.lock().map(|b| *b).unwrap_or(None);
                                if base.is_none() && p.total > 0 {
                                    base = Some(p.done);
                                    if let Ok(mut b) = h.done_at_start.lock() {
                                        *b = base;
                                    }
                                }
                                let elapsed = h.started.elapsed().as_secs_f64();
                                let done_here = p.done.saturating_sub(base.unwrap_or(p.done));
                                if elapsed > 0.5 && done_here > 0 {
                                    let rate = done_here as f64 / elapsed;
                                    p.throughput_per_s = Some(rate);
                                    p.eta_s = Some(p.total.saturating_sub(p.done) as f64 / rate);
                                }
                                p.clone()
                            }
                            Err(_) => continue,
                        };
                        let _ = tx.send(Event { run_id: h.run_id, kind: EventKind::Progress(snapshot) });
                    }
                    // Cancel requests from other processes (`geode runs cancel`), four times a second.
                    if !handles.is_empty() && last_db_check.elapsed() >= Duration::from_millis(250) {
                        last_db_check = Instant::now();
                        if let Ok(store) = Store::open(&project) {
                            for h in &handles {
                                if store.cancel_requested(h.run_id).unwrap_or(false) {
                                    h.cancel.store(true, Ordering::SeqCst);
                                }
                            }
                        }
                    }
                }
            })
            .expect("spawn monitor thread")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.shutdown = true;
            for h in s.active.values() {
                h.cancel.store(true, Ordering::SeqCst);
                h.paused.1.notify_all();
            }
        }
        self.shared.1.notify_all();
        if let Some(t) = self.scheduler.take() {
            let _ = t.join();
        }
        let threads: Vec<_> =
            self.shared.0.lock().map(|mut s| s.threads.drain().map(|(_, t)| t).collect()).unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
        if let Some(t) = self.monitor.take() {
            let _ = t.join();
        }
    }
}

/// Run one job to a terminal state (or a pause), committing after each step.
fn drive(project: &Path, pool: Arc<rayon::ThreadPool>, h: &RunHandle, tx: &Sender<Event>) {
    let run_id = h.run_id;
    let send = |kind| {
        let _ = tx.send(Event { run_id, kind });
    };
    let body = || -> Result<RunStatus, JobError> {
        let mut store = Store::open(project)?;
        let run = store.run(run_id)?;
        let mut job: Box<dyn Job> = run.spec()?.into_job(run.seed)?;
        // A cancelled run lets its job release what it holds elsewhere (Slurm arrays), logging what it did.
        let stop = |job: &mut Box<dyn Job>, store: &Store| -> Result<RunStatus, JobError> {
            for (level, message) in job.on_cancel() {
                let _ = store.log(run_id, &level, &message);
            }
            Ok(RunStatus::Cancelled)
        };
        let mut next_seq = 0;
        if let Some(cp) = store.checkpoint(run_id)? {
            job.restore(&cp["job"])?;
            next_seq = cp["next_seq"].as_i64().unwrap_or(0);
            if let Ok(mut p) = h.progress.lock() {
                p.fraction = run.progress;
                p.stage = run.stage.clone();
            }
        }
        store.set_status(run_id, RunStatus::Running, None)?;
        store.log(run_id, "info", if next_seq > 0 || run.started_at.is_some() { "resumed" } else { "started" })?;
        send(EventKind::Started);
        loop {
            if h.cancel.load(Ordering::SeqCst) {
                return stop(&mut job, &store);
            }
            if h.pausing.load(Ordering::SeqCst) {
                store.set_status(run_id, RunStatus::Paused, None)?;
                send(EventKind::Log { level: "info".into(), message: "paused".into() });
                let (m, c) = &*h.paused;
                let mut p = m.lock().map_err(|_| JobError::Failed("pause lock poisoned".into()))?;
                while *p && !h.cancel.load(Ordering::SeqCst) {
                    p = c
                        .wait_timeout(p, Duration::from_millis(200))
                        .map_err(|_| JobError::Failed("pause lock poisoned".into()))?
                        .0;
                }
                drop(p);
                if h.cancel.load(Ordering::SeqCst) {
                    return stop(&mut job, &store);
                }
                store.set_status(run_id, RunStatus::Running, None)?;
            }
            let mut ctx = JobContext::new(
                run_id,
                run.seed,
                project.to_path_buf(),
                pool.clone(),
                h.cancel.clone(),
                h.progress.clone(),
                next_seq,
            );
            let outcome = job.step(&mut ctx);
            if h.cancel.load(Ordering::SeqCst) {
                // The step may be incomplete: discard it; the last checkpoint stays valid.
                return stop(&mut job, &store);
            }
            let outcome = outcome?;
            let progress = h.progress.lock().map(|p| p.clone()).unwrap_or_default();
            let commit = StepCommit {
                candidates: std::mem::take(&mut ctx.candidates),
                prop_updates: std::mem::take(&mut ctx.prop_updates),
                metrics: std::mem::take(&mut ctx.metrics),
                models: std::mem::take(&mut ctx.models),
                checkpoint: json!({"job": job.checkpoint(), "next_seq": ctx.next_seq}),
                progress: progress.fraction,
                stage: progress.stage.clone(),
                counters: serde_json::to_value(&progress.counters).unwrap_or(Value::Null),
            };
            let metrics = commit.metrics.clone();
            let ids = store.commit_step(run_id, &commit)?;
            next_seq = ctx.next_seq;
            for (level, message) in std::mem::take(&mut ctx.logs) {
                store.log(run_id, &level, &message)?;
                send(EventKind::Log { level, message });
            }
            for (name, step, value) in metrics {
                send(EventKind::Metric { name, step, value });
            }
            if !ids.is_empty() {
                send(EventKind::Candidates(ids));
            }
            if let StepOutcome::Done(mut result) = outcome {
                resolve_best(&store, run_id, &mut result)?;
                store.set_result(run_id, &result)?;
                store.set_progress(run_id, 1.0, "done", &commit.counters)?;
                return Ok(RunStatus::Finished);
            }
        }
    };
    // A panicking job (a bug, or a library that panics on bad input) fails its run instead of
    // leaving it `running` with nobody to finish it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|p| {
        let msg = crate::panic_message(&*p);
        Err(JobError::Failed(format!(
            "the job panicked: {}",
            msg.split("\nException raised from").next().unwrap_or(&msg)
        )))
    });
    let (status, error) = match result {
        Ok(s) => (s, None),
        Err(JobError::Cancelled) => (RunStatus::Cancelled, None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    if let Ok(store) = Store::open(project) {
        let _ = store.set_status(run_id, status, error.as_deref());
        let _ = store.log(
            run_id,
            if error.is_some() { "error" } else { "info" },
            &error.clone().unwrap_or_else(|| status.as_str().to_string()),
        );
    }
    send(EventKind::Finished { status, error });
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_here() -> i32 {
        // SAFETY: reads the calling thread's own priority.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn background_engines_compute_at_a_lower_priority_than_their_caller() {
        let dir = std::env::temp_dir().join(format!("geode-nice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let own = nice_here();
        let background = Engine::in_background(&dir.join("a.geode"), 1, 1).unwrap();
        assert_eq!(background.pool.install(nice_here), (own + BACKGROUND_NICE).min(19));
        let plain = Engine::new(&dir.join("b.geode"), 1, 1).unwrap();
        assert_eq!(plain.pool.install(nice_here), own);
        assert_eq!(nice_here(), own, "the caller keeps its priority");
        drop((background, plain));
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// A result's `best` names its candidate by the run's sequence number (`best.seq`, all a job knows);
/// give it `best.id`, the store id every other command takes (`geode candidates show ID`). A job's own
/// number for the individual, if any, moves to `best.individual`.
fn resolve_best(store: &Store, run_id: i64, result: &mut Value) -> Result<(), JobError> {
    let Some(best) = result.get_mut("best").and_then(Value::as_object_mut) else { return Ok(()) };
    let Some(seq) = best.get("seq").and_then(Value::as_i64) else { return Ok(()) };
    if let Some(own) = best.remove("id") {
        best.insert("individual".into(), own);
    }
    best.insert("id".into(), json!(store.candidate_id(run_id, seq)?));
    Ok(())
}
