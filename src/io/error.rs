//! Errors of the file-format layer. Messages say what is wrong, then where: `(line N, path)`.

use std::path::Path;

use thiserror::Error;

use crate::crystal::CrystalError;

#[derive(Debug, Error)]
pub enum IoError {
    /// Malformed content. `line` is 1-based where the problem has a line.
    #[error("{message} ({}{path})", line.map(|l| format!("line {l}, ")).unwrap_or_default())]
    Parse { path: String, line: Option<usize>, message: String },
    #[error("{message}: {path}")]
    Os { path: String, message: String },
    #[error("cannot tell the file format from its content or name: {path}")]
    UnknownFormat { path: String },
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl IoError {
    pub fn io(path: &Path, e: std::io::Error) -> IoError {
        IoError::Os { path: path.display().to_string(), message: e.to_string() }
    }

    /// A parse error at 1-based `line` of `path`.
    pub fn at(path: &str, line: usize, message: impl Into<String>) -> IoError {
        IoError::Parse { path: path.to_string(), line: Some(line), message: message.into() }
    }

    /// A parse error without a line.
    pub fn whole(path: &str, message: impl Into<String>) -> IoError {
        IoError::Parse { path: path.to_string(), line: None, message: message.into() }
    }

    /// Wrap a crystal error (bad lattice, unknown element) found while parsing.
    pub fn crystal(path: &str, line: Option<usize>, e: CrystalError) -> IoError {
        IoError::Parse { path: path.to_string(), line, message: e.to_string() }
    }
}
