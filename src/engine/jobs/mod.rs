//! The job kinds the engine can run. Each kind has typed parameters (serde, unknown keys rejected) with
//! defaults and a cheap `validate` that names the offending key; [`super::spec::RunSpec`] is the closed
//! enum over them that the CLI, the studio and the store pass around.

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
