//! Machine-learned property models on libtorch (tch): a composition network on Magpie features, a
//! crystal-graph network on periodic neighbour graphs, deep ensembles with split-conformal intervals,
//! training, safetensors checkpoints with model cards, and user TorchScript models.
//!
//! Floor: uses `crystal`, `chem`, `data`; never `engine`, `search`, `studio` or `cli`. Only this module
//! (and the interatomic potential in `energy`) touches tch: callers see [`Prediction`]s, never
//! tensors.
//!
//! Conventions: formation energy in eV/atom, band gap in eV (never negative: the gap head is clamped
//! at 0). Every prediction carries the ensemble mean, its standard deviation σ (spread of the
//! members) and a 90 % split-conformal interval calibrated on the validation split.

pub mod checkpoint;
pub mod composition_net;
pub mod ensemble;
pub mod error;
pub mod generative;
pub mod graph;
pub mod graph_net;
pub mod joined;
pub mod shipped;
pub mod torchscript;
pub mod train;

use serde::{Deserialize, Serialize};

pub use ensemble::Ensemble;
pub use error::ModelError;

/// Regression (a value in the target's unit) or binary classification (the probability of the
/// positive class, 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Regression,
    Classification,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Classification => "classification",
        }
    }

    pub fn from_name(s: &str) -> Option<Task> {
        [Task::Regression, Task::Classification].into_iter().find(|t| t.name() == s)
    }
}

/// A property the models predict: one of the two built-in DFT properties of the embedded dataset, or a
/// user's property (any name, registered in [`crate::data::property`] with its unit when a model or a
/// training run introduces it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// DFT formation energy ΔH_f (eV/atom).
    FormationEnergyPerAtom,
    /// DFT band gap (eV), ≥ 0.
    BandGap,
    /// A user's property.
    User(UserTarget),
}

/// The user targets met in this process (model cards, sidecars, training runs), first meaning first.
static USER_TARGETS: std::sync::RwLock<Vec<UserTarget>> = std::sync::RwLock::new(Vec::new());

/// A user's target; its name and unit are those of its [`crate::data::property`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserTarget {
    name: &'static str,
    unit: &'static str,
    task: Task,
    non_negative: bool,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::FormationEnergyPerAtom, Target::BandGap];

    /// A target by name: a built-in one (for a regression in its unit), or a user's property, registered
    /// with `unit` (classification targets are probabilities and have none). Names that are not valid
    /// property names, or clash with a registered name of another unit, are refused.
    pub fn new(name: &str, unit: &str, task: Task, non_negative: bool) -> Result<Target, String> {
        if let Some(t) = Target::from_name(name) {
            if task == Task::Regression && unit == t.unit() {
                return Ok(t);
            }
            return Err(format!(
                "target {name:?} is the built-in {} property in {}: give the user property another name",
                Task::Regression.name(),
                t.unit()
            ));
        }
        let unit = if task == Task::Classification { "" } else { unit };
        let description = match task {
            Task::Regression => "a user model's target (predicted, with σ)".to_string(),
            Task::Classification => "a user classifier's probability (0-1) of the positive class".to_string(),
        };
        let p = crate::data::property::register(name, unit, &description)?;
        let t = UserTarget { name: p.name, unit: p.unit, task, non_negative };
        let mut known = USER_TARGETS.write().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|k| k.name == t.name) {
            known.push(t);
        }
        Ok(Target::User(t))
    }

    /// A built-in target, or a user target some model loaded in this process predicts.
    pub fn registered(name: &str) -> Option<Target> {
        Target::from_name(name).or_else(|| {
            USER_TARGETS
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|t| t.name == name)
                .map(|t| Target::User(*t))
        })
    }

    /// The property name used in the project store and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::FormationEnergyPerAtom => "formation_energy_per_atom",
            Target::BandGap => "band_gap",
            Target::User(u) => u.name,
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Target::FormationEnergyPerAtom => "eV/atom",
            Target::BandGap => "eV",
            Target::User(u) => u.unit,
        }
    }

    pub fn task(self) -> Task {
        match self {
            Target::User(u) => u.task,
            _ => Task::Regression,
        }
    }

    pub fn is_classification(self) -> bool {
        self.task() == Task::Classification
    }

    /// The dataset entry's DFT value of this property, if it has one (user targets have none).
    pub fn label(self, e: &crate::data::Entry) -> Option<f64> {
        match self {
            Target::FormationEnergyPerAtom => Some(e.formation_energy_per_atom),
            Target::BandGap => e.band_gap,
            Target::User(_) => None,
        }
    }

    /// A built-in target by name.
    pub fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// True for properties that cannot be negative (predictions and intervals are clamped at 0).
    pub fn non_negative(self) -> bool {
        match self {
            Target::BandGap => true,
            Target::FormationEnergyPerAtom => false,
            Target::User(u) => u.non_negative || u.task == Task::Classification,
        }
    }
}

/// How a target is written in cards, configs and sidecars: a built-in one by its name, a user's as
/// `{name, unit, task, non_negative}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TargetRepr {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        unit: String,
        #[serde(default)]
        task: Task,
        #[serde(default)]
        non_negative: bool,
    },
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Target::User(u) => TargetRepr::Full {
                name: u.name.into(),
                unit: u.unit.into(),
                task: u.task,
                non_negative: u.non_negative,
            }
            .serialize(s),
            t => s.serialize_str(t.name()),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        use serde::de::Error;
        match TargetRepr::deserialize(d)? {
            TargetRepr::Name(n) => Target::from_name(&n).ok_or_else(|| {
                D::Error::custom(format!(
                    "unknown target {n:?}: expected formation_energy_per_atom or band_gap, or a user target as \
                     {{name, unit, task}}"
                ))
            }),
            TargetRepr::Full { name, unit, task, non_negative } => {
                Target::new(&name, &unit, task, non_negative).map_err(D::Error::custom)
            }
        }
    }
}

/// One predicted value: ensemble mean, member spread σ and the 90 % conformal interval, in the
/// target's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub mean: f64,
    pub std: f64,
    pub lo90: f64,
    pub hi90: f64,
}

/// Threads libtorch may use for intra-op parallelism. OpenMP spinning on more threads than cores
/// makes small models 10–30× slower, so Geode sets this once, before the first model runs;
/// `OMP_NUM_THREADS`, when set, wins over `n`.
pub fn init_threads(n: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let env = std::env::var("OMP_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
        tch::set_num_threads(env.unwrap_or(n).max(1) as i32);
        tch::set_num_interop_threads(1);
    });
}

/// Anything that predicts properties of structures: the built-in ensembles and user TorchScript
/// models. Results are `[structure][target]` in the order of [`PropertyModel::targets`].
pub trait PropertyModel: Send {
    fn name(&self) -> String;
    fn targets(&self) -> Vec<Target>;
    fn predict(&self, structures: &[crate::crystal::Structure]) -> Result<Vec<Vec<Prediction>>, ModelError>;
    /// Predictions from compositions alone; structure models answer [`ModelError::Unsupported`].
    fn predict_compositions(&self, comps: &[crate::crystal::Composition]) -> Result<Vec<Vec<Prediction>>, ModelError>;
    /// The elements the model saw in training, where known; a prediction for a crystal with another
    /// element is an extrapolation and is flagged as one.
    fn training_elements(&self) -> Option<std::collections::BTreeSet<crate::crystal::Element>> {
        None
    }
    /// Each structure's distance from the training data in the model's own representation, and whether it
    /// lies outside the domain of applicability; `None` where the model records no domain.
    fn domain(&self, _structures: &[crate::crystal::Structure]) -> Result<Option<Vec<(f64, bool)>>, ModelError> {
        Ok(None)
    }
    /// The same for bare compositions (composition models only).
    fn domain_of_compositions(
        &self,
        _comps: &[crate::crystal::Composition],
    ) -> Result<Option<Vec<(f64, bool)>>, ModelError> {
        Ok(None)
    }
}

/// The elements of the embedded dataset's training split (what the shipped `graph` and `composition`
/// ensembles were trained on).
pub fn embedded_training_elements() -> std::collections::BTreeSet<crate::crystal::Element> {
    static SET: std::sync::OnceLock<std::collections::BTreeSet<crate::crystal::Element>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        crate::data::Dataset::embedded()
            .split(crate::data::Split::Train)
            .flat_map(|e| e.structure.composition().iter().map(|(el, _)| el).collect::<Vec<_>>())
            .collect()
    })
    .clone()
}

impl PropertyModel for Ensemble {
    fn name(&self) -> String {
        self.card.name.clone()
    }

    fn targets(&self) -> Vec<Target> {
        self.card.targets.clone()
    }

    fn predict(&self, structures: &[crate::crystal::Structure]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        Ensemble::predict(self, structures)
    }

    fn predict_compositions(&self, comps: &[crate::crystal::Composition]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        let samples = comps.iter().map(|c| self.prepare_composition(c)).collect::<Result<Vec<_>, _>>()?;
        self.predict_samples(&samples)
    }

    fn domain(&self, structures: &[crate::crystal::Structure]) -> Result<Option<Vec<(f64, bool)>>, ModelError> {
        if self.card.domain.is_none() {
            return Ok(None);
        }
        let samples: Vec<_> = structures.iter().map(|s| self.prepare(s)).collect();
        self.domain_distances(&samples)
    }

    fn domain_of_compositions(
        &self,
        comps: &[crate::crystal::Composition],
    ) -> Result<Option<Vec<(f64, bool)>>, ModelError> {
        if self.card.domain.is_none() {
            return Ok(None);
        }
        let samples = comps.iter().map(|c| self.prepare_composition(c)).collect::<Result<Vec<_>, _>>()?;
        self.domain_distances(&samples)
    }

    fn training_elements(&self) -> Option<std::collections::BTreeSet<crate::crystal::Element>> {
        if !self.card.training_elements.is_empty() {
            return Some(
                self.card
                    .training_elements
                    .iter()
                    .filter_map(|s| crate::crystal::Element::from_symbol(s).ok())
                    .collect(),
            );
        }
        self.card.data.starts_with("embedded").then(embedded_training_elements)
    }
}
