//! The job kinds the engine can run, by name. Each kind has typed parameters (serde, unknown keys
//! rejected) with defaults and a `validate` that names the offending key.

pub mod analyze;
pub mod evolve;
pub mod generate;
pub mod relax;
pub mod screen;
pub mod train;
pub mod train_generator;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::JobError;
use super::job::Job;

/// Names of the registered job kinds.
pub const KINDS: [&str; 7] =
    [analyze::KIND, evolve::KIND, generate::KIND, relax::KIND, screen::KIND, train::KIND, train_generator::KIND];

/// Deserialize parameters, reporting the path of the key that failed and the expected form.
pub fn parse_params<P: DeserializeOwned>(params: &Value) -> Result<P, JobError> {
    let v = if params.is_null() { Value::Object(Default::default()) } else { params.clone() };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            JobError::Config(inner)
        } else {
            JobError::Config(format!("key `{path}`: {inner}"))
        }
    })
}

/// Check `params` for `kind` and return them with every default filled in (what gets stored).
pub fn validate(kind: &str, params: &Value) -> Result<Value, JobError> {
    match kind {
        analyze::KIND => {
            let p: analyze::AnalyzeParams = parse_params(params)?;
            p.validate()?;
            serde_json::to_value(p).map_err(|e| JobError::Config(e.to_string()))
        }
        evolve::KIND => {
            let p = evolve::EvolveParams::from_value(params)?;
            p.validate()?;
            Ok(p.to_value())
        }
        relax::KIND => {
            let p: relax::RelaxParams = parse_params(params)?;
            p.validate()?;
            serde_json::to_value(p).map_err(|e| JobError::Config(e.to_string()))
        }
        screen::KIND => {
            let p: screen::ScreenParams = parse_params(params)?;
            p.validate()?;
            serde_json::to_value(p).map_err(|e| JobError::Config(e.to_string()))
        }
        train::KIND => {
            let p: train::TrainParams = parse_params(params)?;
            p.validate().map_err(JobError::Config)?;
            serde_json::to_value(p).map_err(|e| JobError::Config(e.to_string()))
        }
        generate::KIND => {
            let p: generate::GenerateParams = parse_params(params)?;
            p.validate()?;
            serde_json::to_value(p).map_err(|e| JobError::Config(e.to_string()))
        }
        train_generator::KIND => {
            let p: train_generator::TrainGeneratorParams = parse_params(params)?;
            p.validate()?;
            serde_json::to_value(p).map_err(|e| JobError::Config(e.to_string()))
        }
        _ => Err(JobError::UnknownKind(kind.to_string(), KINDS.join(", "))),
    }
}

/// Build a job of `kind` from stored parameters.
pub fn make(kind: &str, params: &Value, seed: u64) -> Result<Box<dyn Job>, JobError> {
    match kind {
        analyze::KIND => Ok(Box::new(analyze::AnalyzeJob::new(parse_params(params)?, seed)?)),
        evolve::KIND => Ok(Box::new(evolve::EvolveJob::new(evolve::EvolveParams::from_value(params)?, seed)?)),
        relax::KIND => Ok(Box::new(relax::RelaxJob::new(parse_params(params)?, seed)?)),
        screen::KIND => Ok(Box::new(screen::ScreenJob::new(parse_params(params)?, seed)?)),
        train::KIND => Ok(Box::new(train::TrainJob::new(parse_params(params)?, seed)?)),
        generate::KIND => Ok(Box::new(generate::GenerateJob::new(parse_params(params)?, seed)?)),
        train_generator::KIND => Ok(Box::new(train_generator::TrainGeneratorJob::new(parse_params(params)?, seed)?)),
        _ => Err(JobError::UnknownKind(kind.to_string(), KINDS.join(", "))),
    }
}

/// Split a run config (TOML or JSON text) into (seed, priority, job parameters). The top-level keys
/// `seed` (integer ≥ 0, default 0) and `priority` (integer, default 0) belong to the run; every other
/// key is a job parameter.
pub fn split_config(text: &str, is_toml: bool) -> Result<(u64, i64, Value), JobError> {
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
    obj.remove("kind");
    Ok((seed, priority, v))
}
