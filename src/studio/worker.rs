//! Background work for the studio: one thread owning the property models (libtorch tensors are not
//! `Sync`), answering prediction and parity requests, plus reading and writing files. Results come
//! back over a channel the app drains each frame; the UI thread never waits for any of this.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::crystal::Structure;
use crate::data::{Dataset, Split};
use crate::ml::{Prediction, PropertyModel, Target};

/// Something to do off the UI thread.
/// One model's predictions for one item, or why they are unavailable.
pub type PredictionResult = Result<Predicted, String>;

/// A model's answer for one structure.
#[derive(Debug, Clone)]
pub struct Predicted {
    pub values: Vec<(Target, Prediction)>,
    /// Outside the model's domain of applicability (`None`: the model records no domain).
    pub outside_domain: Option<bool>,
}

pub enum Task {
    /// Predict one structure with a model (shipped name or path); `key` comes back with the answer.
    Predict { key: String, model: String, structure: Box<Structure> },
    /// Predictions of a model on the embedded test split, for parity plots.
    Parity { model: String },
    /// Predictions of a model for every crystal of the embedded dataset (the plots' predicted axes).
    DatasetPredictions { model: String },
    /// The models trained in a project, with their cards.
    ProjectModels { project: PathBuf },
    /// Read a structure file.
    Load { path: PathBuf },
    /// Write bytes to a file.
    Write { path: PathBuf, bytes: Vec<u8> },
}

/// What came back.
pub enum TaskResult {
    Predicted {
        key: String,
        model: String,
        result: PredictionResult,
    },
    Parity {
        model: String,
        result: Result<Vec<ParityRow>, String>,
    },
    /// Per target of the model, its prediction (mean) for each dataset crystal by entry id.
    DatasetPredictions {
        model: String,
        result: Result<Vec<PredictedColumn>, String>,
    },
    ProjectModels {
        project: PathBuf,
        result: Result<Vec<(String, crate::ml::ensemble::ModelCard)>, String>,
    },
    Loaded {
        path: PathBuf,
        result: Result<Vec<Structure>, String>,
    },
    Written {
        path: PathBuf,
        result: Result<(), String>,
    },
}

/// One predicted property of every dataset crystal.
#[derive(Debug, Clone)]
pub struct PredictedColumn {
    pub target: Target,
    /// The ensemble mean by entry id.
    pub values: HashMap<u32, f64>,
    /// Entry ids outside the model's domain of applicability: an element it never saw in training, or far
    /// from its training data in its own representation.
    pub outside: std::collections::HashSet<u32>,
}

/// One test-split crystal in a parity plot.
#[derive(Debug, Clone)]
pub struct ParityRow {
    pub formula: String,
    pub target: Target,
    pub dft: f64,
    pub predicted: Prediction,
}

pub struct Worker {
    tx: Sender<Task>,
    rx: Receiver<TaskResult>,
}

impl Worker {
    /// Start the worker; `wake` is called after every result (e.g. to request a repaint).
    pub fn start(wake: impl Fn() + Send + 'static) -> Worker {
        let (tx, task_rx) = channel::<Task>();
        let (res_tx, rx) = channel::<TaskResult>();
        std::thread::Builder::new()
            .name("geode-studio-worker".into())
            .spawn(move || {
                crate::ml::init_threads(
                    std::thread::available_parallelism().map(|n| n.get().saturating_sub(1).max(1)).unwrap_or(1),
                );
                let mut models: HashMap<String, Box<dyn PropertyModel>> = HashMap::new();
                while let Ok(task) = task_rx.recv() {
                    // A bug in one task must not take the worker (and every later task) down with it: the
                    // task is answered with the failure, and the worker goes on.
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_task(&task, &mut models)))
                        .unwrap_or_else(|panic| {
                            task.failed(format!("internal error: {}", crate::panic_message(&*panic)))
                        });
                    if res_tx.send(out).is_err() {
                        return;
                    }
                    wake();
                }
            })
            .expect("spawn the studio worker thread");
        Worker { tx, rx }
    }

    pub fn send(&self, task: Task) {
        let _ = self.tx.send(task);
    }

    /// Results that arrived since the last call.
    pub fn drain(&self) -> Vec<TaskResult> {
        self.rx.try_iter().collect()
    }
}

fn model<'a>(
    models: &'a mut HashMap<String, Box<dyn PropertyModel>>,
    name: &str,
) -> Result<&'a dyn PropertyModel, String> {
    if !models.contains_key(name) {
        let m = crate::ml::shipped::open(name).map_err(|e| e.to_string())?;
        models.insert(name.to_string(), m);
    }
    Ok(models[name].as_ref())
}

impl Task {
    /// This task's answer when it failed with `error` (a panic the worker caught).
    fn failed(&self, error: String) -> TaskResult {
        match self {
            Task::Predict { key, model, .. } => {
                TaskResult::Predicted { key: key.clone(), model: model.clone(), result: Err(error) }
            }
            Task::Parity { model } => TaskResult::Parity { model: model.clone(), result: Err(error) },
            Task::DatasetPredictions { model } => {
                TaskResult::DatasetPredictions { model: model.clone(), result: Err(error) }
            }
            Task::ProjectModels { project } => {
                TaskResult::ProjectModels { project: project.clone(), result: Err(error) }
            }
            Task::Load { path } => TaskResult::Loaded { path: path.clone(), result: Err(error) },
            Task::Write { path, .. } => TaskResult::Written { path: path.clone(), result: Err(error) },
        }
    }
}

fn run_task(task: &Task, models: &mut HashMap<String, Box<dyn PropertyModel>>) -> TaskResult {
    match task {
        Task::Predict { key, model: name, structure } => {
            let result = model(models, name).and_then(|m| {
                let one = std::slice::from_ref(&**structure);
                let p = m.predict(one).map_err(|e| e.to_string())?;
                let outside_domain = m.domain(one).ok().flatten().and_then(|d| d.first().map(|x| x.1));
                Ok(Predicted {
                    values: m.targets().into_iter().zip(p.into_iter().next().unwrap_or_default()).collect(),
                    outside_domain,
                })
            });
            TaskResult::Predicted { key: key.clone(), model: name.clone(), result }
        }
        Task::Parity { model: name } => {
            let result = model(models, name).and_then(|m| {
                let entries: Vec<_> = Dataset::embedded().split(Split::Test).collect();
                let structures: Vec<Structure> = entries.iter().map(|e| e.structure.clone()).collect();
                let preds = m.predict(&structures).map_err(|e| e.to_string())?;
                let targets = m.targets();
                let mut rows = Vec::new();
                for (e, p) in entries.iter().zip(preds) {
                    for (k, t) in targets.iter().enumerate() {
                        let dft = t.label(e);
                        if let Some(d) = dft {
                            rows.push(ParityRow { formula: e.formula.clone(), target: *t, dft: d, predicted: p[k] });
                        }
                    }
                }
                Ok(rows)
            });
            TaskResult::Parity { model: name.clone(), result }
        }
        Task::DatasetPredictions { model: name } => {
            let result = model(models, name).map(|m| {
                let entries = &Dataset::embedded().entries;
                let targets = m.targets();
                let mut out: Vec<PredictedColumn> = targets
                    .iter()
                    .map(|t| PredictedColumn {
                        target: *t,
                        values: HashMap::with_capacity(entries.len()),
                        outside: Default::default(),
                    })
                    .collect();
                let known = m.training_elements();
                // In chunks, so one crystal the model cannot read costs only its chunk's batch call.
                for chunk in entries.chunks(512) {
                    let structures: Vec<Structure> = chunk.iter().map(|e| e.structure.clone()).collect();
                    let preds = match m.predict(&structures) {
                        Ok(p) => p.into_iter().map(Some).collect::<Vec<_>>(),
                        Err(_) => structures
                            .iter()
                            .map(|s| m.predict(std::slice::from_ref(s)).ok().and_then(|mut p| p.pop()))
                            .collect(),
                    };
                    let far = m.domain(&structures).ok().flatten();
                    for (i, (e, p)) in chunk.iter().zip(preds).enumerate() {
                        let unseen =
                            known.as_ref().is_some_and(|k| e.structure.species().iter().any(|el| !k.contains(el)));
                        let outside = unseen || far.as_ref().is_some_and(|d| d[i].1);
                        for (k, col) in out.iter_mut().enumerate() {
                            if let Some(x) = p.as_ref().and_then(|p| p.get(k)).filter(|x| x.mean.is_finite()) {
                                col.values.insert(e.id, x.mean);
                                if outside {
                                    col.outside.insert(e.id);
                                }
                            }
                        }
                    }
                }
                out
            });
            TaskResult::DatasetPredictions { model: name.clone(), result }
        }
        Task::ProjectModels { project } => {
            let result = crate::engine::store::Store::open(project)
                .and_then(|s| s.models())
                .map_err(|e| e.to_string())
                .map(|models| {
                    // A model whose file is gone or unreadable is left out (the Runs tab shows its run).
                    models
                        .into_iter()
                        .filter_map(|m| {
                            crate::ml::checkpoint::card_from_file(std::path::Path::new(&m.path))
                                .ok()
                                .map(|c| (m.path, c))
                        })
                        .collect()
                });
            TaskResult::ProjectModels { project: project.clone(), result }
        }
        Task::Load { path } => {
            let result = crate::io::read_structures(path).map_err(|e| e.to_string());
            TaskResult::Loaded { path: path.clone(), result }
        }
        Task::Write { path, bytes } => {
            let result = std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()));
            TaskResult::Written { path: path.clone(), result }
        }
    }
}
