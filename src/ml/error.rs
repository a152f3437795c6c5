//! Errors of the model layer, by phase as ASE's calculators sort them: set-up (weights missing or
//! malformed, wrong input convention), unsupported requests, and failures while running.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    /// The model cannot be built: missing or malformed weights, a bad model card, a bad config.
    #[error("model set-up failed: {0}")]
    Setup(String),
    /// The model cannot answer this request (e.g. a structure model asked about a bare composition).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// libtorch failed or produced non-finite values.
    #[error("model failed: {0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
}

impl From<tch::TchError> for ModelError {
    fn from(e: tch::TchError) -> Self {
        ModelError::Failed(first_line(&e.to_string()))
    }
}

/// libtorch errors carry a C++ backtrace after the message; users need the message only.
pub fn first_line(s: &str) -> String {
    s.split("\nException raised from").next().unwrap_or(s).lines().next().unwrap_or(s).trim().to_string()
}
