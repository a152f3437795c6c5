//! The pretrained ensembles Geode ships in `assets/models/` (trained by `geode run train` with the
//! configs in `assets/models/*.toml`; see each file's model card).
//!
//! Looked up, in order, in `$GEODE_MODELS`, in `models/` beside the executable, in
//! `../share/geode/models/` above it, and in the source tree's `assets/models/`.

use std::path::PathBuf;

use super::checkpoint;
use super::ensemble::{Ensemble, ModelCard};
use super::{ModelError, Target};

/// Names of the shipped ensembles, best first for each target: the two DFT properties of the embedded
/// dataset, then the Matbench-trained models of user properties (refractive index from structure;
/// experimental band gap and metallicity from composition; each card holds the command that made it).
pub const NAMES: [&str; 6] =
    ["graph", "composition", "composition-oqmd", "refractive-index", "expt-gap", "expt-is-metal"];

/// Directories searched for model files.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("GEODE_MODELS") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(parent) = exe.parent()
    {
        dirs.push(parent.join("models"));
        dirs.push(parent.join("../share/geode/models"));
    }
    dirs.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/models")));
    dirs
}

/// Path of a shipped model file, if present.
pub fn path_of(name: &str) -> Option<PathBuf> {
    search_dirs().into_iter().map(|d| d.join(format!("{name}.safetensors"))).find(|p| p.is_file())
}

/// Load a shipped ensemble by name.
pub fn load(name: &str) -> Result<Ensemble, ModelError> {
    let path = path_of(name).ok_or_else(|| {
        ModelError::Setup(format!(
            "no shipped model {name:?} (looked for {name}.safetensors in {})",
            search_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    checkpoint::load(&path)
}

/// Cards of the shipped models that are present (only the files' headers are read).
pub fn cards() -> Vec<(String, ModelCard)> {
    NAMES.iter().filter_map(|n| checkpoint::card_from_file(&path_of(n)?).ok().map(|c| (n.to_string(), c))).collect()
}

/// The TOML training config a shipped model was made with.
pub fn config(name: &str) -> Option<&'static str> {
    match name {
        "graph" => Some(include_str!("../../assets/models/graph.toml")),
        "composition" => Some(include_str!("../../assets/models/composition.toml")),
        "composition-oqmd" => Some(include_str!("../../assets/models/composition-oqmd.toml")),
        _ => None,
    }
}

/// The name of the best shipped model predicting `target` from a structure.
pub fn default_for(target: Target) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| cards().iter().any(|(m, c)| m == n && c.targets.contains(&target)))
}

/// The card of a shipped name or a `.safetensors` file (its header only); a user target in it joins the
/// property registry.
pub fn card_of(spec: &str) -> Result<ModelCard, ModelError> {
    if spec.to_ascii_lowercase().ends_with(".safetensors") {
        return checkpoint::card_from_file(std::path::Path::new(spec));
    }
    let path = path_of(spec).ok_or_else(|| {
        ModelError::Setup(format!(
            "no shipped model {spec:?} (expected one of {}, or a .safetensors file)",
            NAMES.join(", ")
        ))
    })?;
    checkpoint::card_from_file(&path)
}

/// The target names of a model spec without loading its weights: a shipped name or `.safetensors` file
/// (its card), or a TorchScript model (its sidecar). User targets join the property registry.
pub fn target_names(spec: &str) -> Result<Vec<String>, ModelError> {
    let lower = spec.to_ascii_lowercase();
    if is_file_spec(spec) && !lower.ends_with(".safetensors") {
        let sidecar = format!("{spec}.json");
        let spec: super::torchscript::TorchScriptSpec = match std::fs::read_to_string(&sidecar) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ModelError::Setup(format!("{sidecar}: {e}")))?,
            Err(_) => super::torchscript::TorchScriptSpec::default(),
        };
        return Ok(spec.targets.iter().map(|t| t.name().to_string()).collect());
    }
    Ok(card_of(spec)?.targets.iter().map(|t| t.name().to_string()).collect())
}

/// An ensemble by shipped name or `.safetensors` path (fine-tuning starts from one; TorchScript models
/// cannot be fine-tuned).
pub fn load_ensemble(spec: &str) -> Result<Ensemble, ModelError> {
    if spec.to_ascii_lowercase().ends_with(".safetensors") {
        return checkpoint::load(std::path::Path::new(spec));
    }
    if is_file_spec(spec) {
        return Err(ModelError::Setup(format!(
            "{spec}: only a Geode ensemble (.safetensors or a shipped name) can be fine-tuned"
        )));
    }
    load(spec)
}

/// True for a model spec that names a file (`.safetensors` ensemble or TorchScript `.pt`/`.pth`/`.ts`).
pub fn is_file_spec(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    [".pt", ".pth", ".ts", ".safetensors"].iter().any(|e| lower.ends_with(e))
}

/// Check a model spec without loading it (run configs at submission): a shipped name, or a model file
/// that exists. The closest shipped names are offered for a misspelt one.
pub fn check(spec: &str) -> Result<(), ModelError> {
    if is_file_spec(spec) {
        return if std::path::Path::new(spec).is_file() {
            // A Geode ensemble's targets join the property registry, so run configs may name them.
            if spec.to_ascii_lowercase().ends_with(".safetensors") {
                checkpoint::card_from_file(std::path::Path::new(spec))?;
            }
            Ok(())
        } else {
            Err(ModelError::Setup(format!("no model file {spec}")))
        };
    }
    if NAMES.contains(&spec) {
        return Ok(());
    }
    let near = crate::data::property::closest(spec, NAMES);
    Err(ModelError::Setup(format!(
        "unknown model {spec:?}{}: use one of {} or a path to a .safetensors ensemble or a TorchScript .pt file",
        if near.is_empty() { String::new() } else { format!(" (did you mean {}?)", near.join(" or ")) },
        NAMES.join(", ")
    )))
}

/// Open a model by shipped name, `.safetensors` ensemble path or TorchScript `.pt` path.
pub fn open(spec: &str) -> Result<Box<dyn super::PropertyModel>, ModelError> {
    let lower = spec.to_ascii_lowercase();
    if lower.ends_with(".pt") || lower.ends_with(".pth") || lower.ends_with(".ts") {
        return Ok(Box::new(super::torchscript::TorchScriptModel::load(std::path::Path::new(spec))?));
    }
    if lower.ends_with(".safetensors") {
        return Ok(Box::new(checkpoint::load(std::path::Path::new(spec))?));
    }
    if !NAMES.contains(&spec) {
        return Err(ModelError::Setup(format!(
            "unknown model {spec:?}: use one of {} or a path to a .safetensors ensemble or a TorchScript .pt file",
            NAMES.join(", ")
        )));
    }
    Ok(Box::new(load(spec)?))
}
