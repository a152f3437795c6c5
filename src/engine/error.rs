//! Errors of the engine: jobs, configs and the project store.

use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum JobError {
    #[error("project store error: {0}")]
    Store(String),
    #[error("invalid run config: {0}")]
    Config(String),
    #[error("invalid filter: {0}")]
    Filter(String),
    #[error("unknown job kind {0:?}; known kinds: {1}")]
    UnknownKind(String, String),
    #[error("no run with id {0}")]
    NoSuchRun(i64),
    #[error("no candidate with id {0}")]
    NoSuchCandidate(i64),
    #[error("run {run_id} is {status}; only queued, paused, cancelled, failed or interrupted runs can be resumed")]
    NotResumable { run_id: i64, status: String },
    #[error("cancelled")]
    Cancelled,
    #[error("job failed: {0}")]
    Failed(String),
}

impl JobError {
    pub fn store(path: &Path, e: rusqlite::Error) -> JobError {
        JobError::Store(format!("{e}: {}", path.display()))
    }
}
