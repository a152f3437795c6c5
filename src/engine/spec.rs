//! Run specifications: one closed, typed enum with a variant per job kind, each holding that kind's
//! typed parameters. The CLI (from a config file), the studio (from its forms) and the engine pass a
//! [`RunSpec`] around; it is checked once, at submission ([`RunSpec::validate`]: cheap, loads no model
//! or potential and parses no structure file), and becomes JSON only at the store boundary
//! ([`RunSpec::to_stored`] / [`RunSpec::from_stored`], with [`SPEC_VERSION`] so older projects open).
//!
//! ```text
//! config.toml ─ RunConfig::parse (unknown keys rejected, paths made relative to the config) ─┐
//! studio form ─ RunSpec::Relax(RelaxParams { … }) ───────────────────────────────────────────┤
//!                                          Engine::submit ─ validate ─ store (kind, JSON, version)
//!                                          runner ─ RunSpec::from_stored ─ RunSpec::into_job ─ steps
//! ```

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::error::JobError;
use super::job::Job;
use super::jobs::{self, analyze, evolve, generate, relax, screen, train, train_generator};

/// The version of the stored parameter form this Geode writes; projects store it with every run.
/// Version 1: the parameter tables as `geode run KIND --config` reads them, every default filled in.
pub const SPEC_VERSION: i64 = 1;

/// What a run computes: its job kind and typed parameters.
#[derive(Debug, Clone)]
pub enum RunSpec {
    Analyze(analyze::AnalyzeParams),
    Evolve(evolve::EvolveParams),
    Generate(generate::GenerateParams),
    Relax(relax::RelaxParams),
    Screen(screen::ScreenParams),
    Train(train::TrainParams),
    TrainGenerator(train_generator::TrainGeneratorParams),
}

/// A run as a config file states it: the spec plus the run's own keys.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub spec: RunSpec,
    /// `seed` (integer ≥ 0, default 0): every random stream of the run derives from it.
    pub seed: u64,
    /// `priority` (integer, default 0): higher runs first when several are queued.
    pub priority: i64,
}

fn to_value<T: Serialize>(p: &T) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

impl RunSpec {
    /// Every job kind, as `geode run KIND` names it.
    pub const KINDS: [&'static str; 7] =
        [analyze::KIND, evolve::KIND, generate::KIND, relax::KIND, screen::KIND, train::KIND, train_generator::KIND];

    /// The kind's name (`relax`, `screen`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            RunSpec::Analyze(_) => analyze::KIND,
            RunSpec::Evolve(_) => evolve::KIND,
            RunSpec::Generate(_) => generate::KIND,
            RunSpec::Relax(_) => relax::KIND,
            RunSpec::Screen(_) => screen::KIND,
            RunSpec::Train(_) => train::KIND,
            RunSpec::TrainGenerator(_) => train_generator::KIND,
        }
    }

    /// The kind's parameters with every default (what `geode run KIND --help` lists).
    pub fn default_for(kind: &str) -> Result<RunSpec, JobError> {
        RunSpec::from_params(kind, &Value::Null)
    }

    /// Read a parameter table for `kind`: unknown keys and wrong types are errors naming the key and
    /// the expected form; absent keys take their defaults. Nothing is checked beyond the types.
    pub fn from_params(kind: &str, params: &Value) -> Result<RunSpec, JobError> {
        Ok(match kind {
            analyze::KIND => RunSpec::Analyze(jobs::parse_params(params)?),
            evolve::KIND => RunSpec::Evolve(evolve::EvolveParams::from_value(params)?),
            generate::KIND => RunSpec::Generate(jobs::parse_params(params)?),
            relax::KIND => RunSpec::Relax(jobs::parse_params(params)?),
            screen::KIND => RunSpec::Screen(jobs::parse_params(params)?),
            train::KIND => RunSpec::Train(jobs::parse_params(params)?),
            train_generator::KIND => RunSpec::TrainGenerator(jobs::parse_params(params)?),
            _ => {
                let near = crate::data::property::closest(kind, RunSpec::KINDS);
                let hint = if near.is_empty() { String::new() } else { format!(" (did you mean {}?)", near[0]) };
                return Err(JobError::UnknownKind(format!("{kind}{hint}"), RunSpec::KINDS.join(", ")));
            }
        })
    }

    /// The parameters as one table, every default filled in (the stored and displayed form).
    pub fn params(&self) -> Value {
        match self {
            RunSpec::Analyze(p) => to_value(p),
            RunSpec::Evolve(p) => p.to_value(),
            RunSpec::Generate(p) => to_value(p),
            RunSpec::Relax(p) => to_value(p),
            RunSpec::Screen(p) => to_value(p),
            RunSpec::Train(p) => to_value(p),
            RunSpec::TrainGenerator(p) => to_value(p),
        }
    }

    /// Everything the job's first step would reject, rejected now with the key and the expected form.
    /// Cheap: no model, potential or structure file is loaded (files are checked to exist).
    pub fn validate(&self) -> Result<(), JobError> {
        match self {
            RunSpec::Analyze(p) => p.validate(),
            RunSpec::Evolve(p) => p.validate(),
            RunSpec::Generate(p) => p.validate(),
            RunSpec::Relax(p) => p.validate(),
            RunSpec::Screen(p) => p.validate(),
            RunSpec::Train(p) => p.validate().map_err(JobError::Config),
            RunSpec::TrainGenerator(p) => p.validate(),
        }
    }

    /// Make every relative file path in the parameters (structure inputs and seeds, model files,
    /// potential files, data tables, outputs) relative to `base`, the folder of the config file that
    /// named them. Dataset ids, labels and formulas are left alone.
    pub fn resolve_paths(&mut self, base: &Path) {
        let input = |s: &mut String| {
            let p = Path::new(s.as_str());
            if p.is_absolute() || s.is_empty() {
                return;
            }
            let joined = base.join(p);
            if joined.exists() || s.contains(['/', '\\']) || p.extension().is_some() {
                *s = joined.display().to_string();
            }
        };
        let model = |s: &mut String| {
            if crate::ml::shipped::is_file_spec(s) && Path::new(s.as_str()).is_relative() {
                *s = base.join(s.as_str()).display().to_string();
            }
        };
        let output = |s: &mut String| {
            if !s.is_empty() && Path::new(s.as_str()).is_relative() {
                *s = base.join(s.as_str()).display().to_string();
            }
        };
        let potential = |s: &mut String| *s = crate::energy::spec::resolve_spec(s, base);
        match self {
            RunSpec::Analyze(_) => {}
            RunSpec::Evolve(p) => {
                p.seeds.iter_mut().for_each(input);
                potential(&mut p.relax.potential);
                model(&mut p.property_model);
            }
            RunSpec::Generate(p) => {
                p.seeds.iter_mut().for_each(input);
                if p.model.ends_with(".safetensors") {
                    input(&mut p.model);
                }
                model(&mut p.property_model);
                p.property_models.iter_mut().for_each(&model);
                model(&mut p.settings.guide_model);
                if !p.relax.is_empty() {
                    potential(&mut p.relax);
                }
            }
            RunSpec::Relax(p) => {
                p.structures.iter_mut().for_each(input);
                potential(&mut p.potential);
            }
            RunSpec::Screen(p) => {
                potential(&mut p.potential);
                model(&mut p.composition_model);
                model(&mut p.structure_model);
                p.property_models.iter_mut().for_each(&model);
            }
            RunSpec::Train(p) => {
                match &mut p.data {
                    crate::ml::train::DataSource::FormulaTables { formation_energy, band_gap } => {
                        formation_energy.iter_mut().chain(band_gap.iter_mut()).for_each(input);
                    }
                    crate::ml::train::DataSource::Files { files, .. } => files.iter_mut().for_each(input),
                    crate::ml::train::DataSource::Embedded => {}
                }
                if let Some(f) = &mut p.from
                    && crate::ml::shipped::is_file_spec(f)
                {
                    input(f);
                }
                output(&mut p.out);
            }
            RunSpec::TrainGenerator(p) => output(&mut p.out),
        }
    }

    /// The stored form: (kind, parameter table, version).
    pub fn to_stored(&self) -> (&'static str, Value, i64) {
        (self.kind(), self.params(), SPEC_VERSION)
    }

    /// Back from the store. A version newer than this Geode's is refused (the project was written by
    /// a newer Geode); older versions are read as they were written.
    pub fn from_stored(kind: &str, params: &Value, version: i64) -> Result<RunSpec, JobError> {
        if version > SPEC_VERSION {
            return Err(JobError::Config(format!(
                "the run's parameters are in form {version}, newer than this Geode's {SPEC_VERSION}: open the project with a newer Geode"
            )));
        }
        // Stored paths are absolute (resolved when the run was submitted).
        register_model_targets(params, None);
        RunSpec::from_params(kind, params)
    }

    /// Build the job (heavy work happens here, on the run's thread: models, potentials, inputs).
    pub fn into_job(self, seed: u64) -> Result<Box<dyn Job>, JobError> {
        Ok(match self {
            RunSpec::Analyze(p) => Box::new(analyze::AnalyzeJob::new(p, seed)?),
            RunSpec::Evolve(p) => Box::new(evolve::EvolveJob::new(p, seed)?),
            RunSpec::Generate(p) => Box::new(generate::GenerateJob::new(p, seed)?),
            RunSpec::Relax(p) => Box::new(relax::RelaxJob::new(p, seed)?),
            RunSpec::Screen(p) => Box::new(screen::ScreenJob::new(p, seed)?),
            RunSpec::Train(p) => Box::new(train::TrainJob::new(p, seed)?),
            RunSpec::TrainGenerator(p) => Box::new(train_generator::TrainGeneratorJob::new(p, seed)?),
        })
    }
}

impl RunConfig {
    /// A config with every default: seed 0, priority 0.
    pub fn new(spec: RunSpec) -> RunConfig {
        RunConfig { spec, seed: 0, priority: 0 }
    }

    /// Read a config text (TOML, or JSON when `is_toml` is false) for `kind`. The top-level keys `seed`
    /// and `priority` belong to the run, `kind` (if present) must agree, every other key is a
    /// parameter. With `base` (the config file's folder), relative paths are taken from there.
    pub fn parse(kind: &str, text: &str, is_toml: bool, base: Option<&Path>) -> Result<RunConfig, JobError> {
        let mut v: Value = if is_toml {
            let t: toml::Value = toml::from_str(text).map_err(|e| JobError::Config(e.to_string()))?;
            serde_json::to_value(t).map_err(|e| JobError::Config(e.to_string()))?
        } else {
            serde_json::from_str(text).map_err(|e| JobError::Config(format!("not valid JSON: {e}")))?
        };
        let obj = v.as_object_mut().ok_or_else(|| JobError::Config("the config must be a table of keys".into()))?;
        let seed = match obj.remove("seed") {
            None => 0,
            Some(s) => s
                .as_u64()
                .ok_or_else(|| JobError::Config(format!("key `seed`: expected a non-negative integer, got {s}")))?,
        };
        let priority = match obj.remove("priority") {
            None => 0,
            Some(p) => {
                p.as_i64().ok_or_else(|| JobError::Config(format!("key `priority`: expected an integer, got {p}")))?
            }
        };
        if let Some(k) = obj.remove("kind")
            && k.as_str() != Some(kind)
        {
            return Err(JobError::Config(format!("key `kind`: the config is for {k}, but the run is {kind:?}")));
        }
        register_model_targets(&v, base);
        let mut spec = RunSpec::from_params(kind, &v)?;
        if let Some(base) = base {
            spec.resolve_paths(base);
        }
        Ok(RunConfig { spec, seed, priority })
    }

    /// Read a config file; relative paths inside it are taken from its folder.
    pub fn read(kind: &str, path: &Path) -> Result<RunConfig, JobError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JobError::Config(format!("cannot read run config {}: {e}", path.display())))?;
        let is_toml = !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let base = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
        RunConfig::parse(kind, &text, is_toml, base)
            .map_err(|e| JobError::Config(format!("{} (in {})", strip_prefix(&e), path.display())))
    }
}

/// Every model file a config names (a string ending in `.safetensors`, `.pt`, …; relative to `base`)
/// has its targets registered as properties before the config is parsed, so constraints, objectives and
/// filters in the same config may name a user model's property. Unreadable files are left to validation.
fn register_model_targets(v: &Value, base: Option<&Path>) {
    match v {
        Value::String(s) if crate::ml::shipped::is_file_spec(s) => {
            let p = Path::new(s);
            let p = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.to_path_buf(),
            };
            if p.is_file() {
                let _ = crate::ml::shipped::target_names(&p.display().to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| register_model_targets(x, base)),
        Value::Object(m) => m.values().for_each(|x| register_model_targets(x, base)),
        _ => {}
    }
}

/// A config error's message without the "invalid run config: " its Display adds.
fn strip_prefix(e: &JobError) -> String {
    match e {
        JobError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_defaults_and_round_trips_through_the_store() {
        for kind in RunSpec::KINDS {
            let spec = RunSpec::default_for(kind).unwrap();
            assert_eq!(spec.kind(), kind);
            let (k, params, version) = spec.to_stored();
            let back = RunSpec::from_stored(k, &params, version).unwrap();
            assert_eq!(back.params(), params, "{kind}");
        }
        assert!(
            RunSpec::from_stored("relax", &Value::Null, SPEC_VERSION + 1).unwrap_err().to_string().contains("newer")
        );
        let e = RunSpec::default_for("relx").unwrap_err().to_string();
        assert!(e.contains("did you mean relax?"), "{e}");
    }

    #[test]
    fn configs_take_paths_from_their_folder() {
        let text =
            "seed = 3\nstructures = [\"ar.cif\", \"NaCl\", \"sub/x.vasp\"]\npotential = \"torchscript:path=m.pt\"\n";
        let c = RunConfig::parse("relax", text, true, Some(Path::new("/cfg"))).unwrap();
        assert_eq!(c.seed, 3);
        let RunSpec::Relax(p) = c.spec else { panic!("a relax spec") };
        assert_eq!(p.structures, ["/cfg/ar.cif", "NaCl", "/cfg/sub/x.vasp"]);
        assert_eq!(p.potential, "torchscript:path=/cfg/m.pt");
        let e = RunConfig::parse("relax", "kind = \"screen\"\n", true, None).unwrap_err().to_string();
        assert!(e.contains("key `kind`"), "{e}");
        let e = RunConfig::parse("relax", "fmx = 0.1\n", true, None).unwrap_err().to_string();
        assert!(e.contains("fmx"), "{e}");
    }
}
