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
pub mod shipped;
pub mod torchscript;
pub mod train;

use serde::{Deserialize, Serialize};

pub use ensemble::Ensemble;
pub use error::ModelError;

/// A property the models predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// DFT formation energy ΔH_f (eV/atom).
    FormationEnergyPerAtom,
    /// DFT band gap (eV), ≥ 0.
    BandGap,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::FormationEnergyPerAtom, Target::BandGap];

    /// The property name used in the project store and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::FormationEnergyPerAtom => "formation_energy_per_atom",
            Target::BandGap => "band_gap",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Target::FormationEnergyPerAtom => "eV/atom",
            Target::BandGap => "eV",
        }
    }

    /// The dataset entry's DFT value of this property, if it has one.
    pub fn label(self, e: &crate::data::Entry) -> Option<f64> {
        match self {
            Target::FormationEnergyPerAtom => Some(e.formation_energy_per_atom),
            Target::BandGap => e.band_gap,
        }
    }

    pub fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// True for properties that cannot be negative (predictions and intervals are clamped at 0).
    pub fn non_negative(self) -> bool {
        matches!(self, Target::BandGap)
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

    fn training_elements(&self) -> Option<std::collections::BTreeSet<crate::crystal::Element>> {
        self.card.data.starts_with("embedded").then(embedded_training_elements)
    }
}
