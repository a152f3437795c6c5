//! File formats: CIF, POSCAR/CONTCAR, extended XYZ, ASE SQLite databases and pymatgen JSON.
//!
//! Floor: depends on `crystal` only. Readers never panic on bad input: they return an [`IoError`]
//! naming the file, the line (where there is one) and the problem. Anything Geode writes is read
//! back identically by pymatgen and ASE (see `tests/io_roundtrip.rs` and `scripts/check_written_files.py`).

pub mod ase_db;
pub mod cif;
pub mod dft;
pub mod energy_csv;
pub mod error;
pub mod extxyz;
pub mod pmg_json;
pub mod poscar;

use std::path::Path;

pub use error::IoError;

use crate::crystal::Structure;

/// The structure file formats Geode reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Cif,
    Poscar,
    Extxyz,
    /// ASE SQLite database (read only).
    AseDb,
    /// pymatgen `Structure.as_dict()` JSON (one object or a list).
    PymatgenJson,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Cif, Format::Poscar, Format::Extxyz, Format::AseDb, Format::PymatgenJson];

    pub fn name(self) -> &'static str {
        match self {
            Format::Cif => "CIF",
            Format::Poscar => "POSCAR",
            Format::Extxyz => "extxyz",
            Format::AseDb => "ASE database",
            Format::PymatgenJson => "pymatgen JSON",
        }
    }

    /// Parse a user-facing format name (`cif`, `poscar`, `vasp`, `xyz`, `extxyz`, `json`, `db`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "cif" => Some(Format::Cif),
            "poscar" | "contcar" | "vasp" => Some(Format::Poscar),
            "xyz" | "extxyz" => Some(Format::Extxyz),
            "db" | "ase" | "asedb" => Some(Format::AseDb),
            "json" | "pymatgen" => Some(Format::PymatgenJson),
            _ => None,
        }
    }

    /// Guess from the file name alone.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        match ext.as_str() {
            "cif" | "mcif" => return Some(Format::Cif),
            "vasp" | "poscar" | "contcar" => return Some(Format::Poscar),
            "xyz" | "extxyz" => return Some(Format::Extxyz),
            "db" | "sqlite" | "sqlite3" => return Some(Format::AseDb),
            "json" => return Some(Format::PymatgenJson),
            _ => {}
        }
        if name.starts_with("poscar") || name.starts_with("contcar") {
            return Some(Format::Poscar);
        }
        None
    }

    /// Guess from the first bytes of the content.
    pub fn from_content(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"SQLite format 3\0") {
            return Some(Format::AseDb);
        }
        let text = std::str::from_utf8(&head[..head.len().min(4096)]).ok().or_else(|| {
            // A multi-byte character may be cut at the boundary: decode the valid prefix.
            let n = std::str::from_utf8(head).err()?.valid_up_to();
            std::str::from_utf8(&head[..n]).ok()
        })?;
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return Some(Format::PymatgenJson);
        }
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.iter().any(|l| l.starts_with("data_")) || lines.iter().any(|l| l.starts_with("_cell_length_a")) {
            return Some(Format::Cif);
        }
        if lines.first().is_some_and(|l| l.parse::<usize>().is_ok())
            && lines.get(1).is_some_and(|l| l.contains("Lattice="))
        {
            return Some(Format::Extxyz);
        }
        if lines.len() >= 7
            && lines[1].split_whitespace().count() >= 1
            && lines[1].split_whitespace().next()?.parse::<f64>().is_ok()
        {
            return Some(Format::Poscar);
        }
        None
    }
}

/// Detect the format of `path` from its content, falling back to its name.
pub fn detect_format(path: &Path) -> Result<Format, IoError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    Format::from_content(&bytes)
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| IoError::UnknownFormat { path: path.display().to_string() })
}

/// Read every structure in a file, detecting its format from content and extension.
pub fn read_structures(path: &Path) -> Result<Vec<Structure>, IoError> {
    let format = match Format::from_path(path) {
        // The extension decides for binary databases; content sniffing decides otherwise.
        Some(Format::AseDb) => Format::AseDb,
        _ => detect_format(path)?,
    };
    read_structures_as(path, format)
}

/// Read every structure in a file of a known format.
pub fn read_structures_as(path: &Path, format: Format) -> Result<Vec<Structure>, IoError> {
    let name = path.display().to_string();
    if format == Format::AseDb {
        return Ok(ase_db::read(path)?.into_iter().map(|r| r.structure).collect());
    }
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| IoError::Parse {
        path: name.clone(),
        line: None,
        message: format!("file is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })?;
    parse_str(&text, format, &name)
}

/// Parse text of a known format; `name` is used in error messages.
pub fn parse_str(text: &str, format: Format, name: &str) -> Result<Vec<Structure>, IoError> {
    match format {
        Format::Cif => cif::parse(text, name, &cif::CifOptions::default()),
        Format::Poscar => poscar::parse(text, name).map(|s| vec![s]),
        Format::Extxyz => extxyz::parse(text, name),
        Format::PymatgenJson => pmg_json::parse(text, name),
        Format::AseDb => Err(IoError::Parse {
            path: name.to_string(),
            line: None,
            message: "ASE databases are binary files and must be read from disk".into(),
        }),
    }
}

/// Render structures as text in `format`. POSCAR holds one structure per file: asking for several
/// is an error; CIF and extxyz hold many; JSON writes a list when there is more than one.
pub fn to_string(structures: &[Structure], format: Format) -> Result<String, IoError> {
    match format {
        Format::Cif => Ok(structures.iter().enumerate().map(|(i, s)| cif::write(s, &cif_block_name(s, i))).collect()),
        Format::Poscar => match structures {
            [s] => Ok(poscar::write(s)),
            _ => Err(IoError::Unsupported(format!("POSCAR holds one structure, got {}", structures.len()))),
        },
        Format::Extxyz => Ok(extxyz::write(structures)),
        Format::PymatgenJson => Ok(pmg_json::write(structures)),
        Format::AseDb => Err(IoError::Unsupported("writing ASE databases".into())),
    }
}

fn cif_block_name(s: &Structure, i: usize) -> String {
    match s.properties.get("id").and_then(|v| v.as_str()) {
        Some(id) => id.to_string(),
        None if i == 0 => s.reduced_formula(),
        None => format!("{}_{}", s.reduced_formula(), i),
    }
}

/// Write structures to `path` in `format` (from the extension when `None`).
pub fn write_structures(path: &Path, structures: &[Structure], format: Option<Format>) -> Result<(), IoError> {
    let format = format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| IoError::UnknownFormat { path: path.display().to_string() })?;
    let text = to_string(structures, format)?;
    std::fs::write(path, text).map_err(|e| IoError::io(path, e))
}

/// Python's `json` (pymatgen's `as_dict` dumps, ASE's key-value pairs) emits bare `NaN`, `Infinity` and `-Infinity`; read them (outside strings) as `null`.
pub fn python_json_to_strict(text: &str) -> std::borrow::Cow<'_, str> {
    if !(text.contains("NaN") || text.contains("Infinity")) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(t) = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t)) {
            out.push_str("null");
            rest = &rest[t.len()..];
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    std::borrow::Cow::Owned(out)
}
