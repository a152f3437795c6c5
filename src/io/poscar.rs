//! placeholder (being written): POSCAR reader/writer
use super::IoError;
use crate::crystal::Structure;
pub fn parse(_text: &str, path: &str) -> Result<Structure, IoError> { Err(IoError::whole(path, "POSCAR reader not built yet")) }
pub fn write(_s: &Structure) -> String { String::new() }
