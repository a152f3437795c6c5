//! A user's labelled data: structures or formulas with a value of one named target, read from the
//! files a materials scientist already has.
//!
//! | file | inputs | where the label is |
//! |---|---|---|
//! | `*.csv` with a `formula` column | compositions | the column named as the target, else `target` |
//! | `*.csv` with a `file` column | the structure files it names (CIF, POSCAR, …; paths relative to the CSV) | the same |
//! | a folder | the one `*.csv` inside it, read as above | the same |
//! | extended XYZ | every frame | the frame's `info` key (comment line `key=value`) |
//! | ASE database (`*.db`) | every row | the row's key-value pair |
//! | pymatgen JSON list | `Structure.as_dict()`s, or objects with a `structure` | the structure's `properties`, or the object's key |
//! | Matbench / pandas JSON | `{"columns": [...], "data": [[structure, value], …]}` (split) or `{"structure": {"0": …}, "n": {"0": …}}` (columns) | the named column, or the one that is not `structure` |
//!
//! Every row whose label is missing, not a number (classification: 0/1, true/false, yes/no), not finite,
//! or whose input cannot be read is kept as a [`BadRow`] naming the file and the line (CSV), frame
//! (extxyz), row id (ASE db) or index (JSON): the caller reports them and either skips them or refuses
//! the data. A file that cannot be read at all is an error.
//!
//! An optional split column (`train`, `val`/`validation`, `test`) assigns rows to splits; without it
//! rows are split by reduced formula, as the embedded dataset is.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::split::Split;
use crate::crystal::{Composition, Structure};

/// What a model sees of a row.
#[derive(Debug, Clone)]
pub enum Input {
    Structure(Box<Structure>),
    Composition(Composition),
}

impl Input {
    pub fn composition(&self) -> Composition {
        match self {
            Input::Structure(s) => s.composition(),
            Input::Composition(c) => c.clone(),
        }
    }
}

/// One labelled row.
#[derive(Debug, Clone)]
pub struct Row {
    pub input: Input,
    pub label: f64,
    /// From the split column, when the data have one.
    pub split: Option<Split>,
    /// Where the row came from: `file:line`, `file frame N`, `file id N` or `file [i]`.
    pub origin: String,
}

impl Row {
    pub fn reduced_formula(&self) -> String {
        self.input.composition().reduced_formula()
    }
}

/// A row that could not be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    pub origin: String,
    pub reason: String,
}

/// Everything read from the files.
#[derive(Debug, Clone, Default)]
pub struct Labelled {
    pub rows: Vec<Row>,
    pub bad: Vec<BadRow>,
    /// Each file read (path as given) with the SHA-256 of its bytes; a CSV's structure files are not listed.
    pub files: Vec<(String, String)>,
}

impl Labelled {
    /// True when every row has a structure (a graph model can train on them).
    pub fn all_structures(&self) -> bool {
        self.rows.iter().all(|r| matches!(r.input, Input::Structure(_)))
    }
}

/// How to read the label.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The target's name: the column or key holding the label (falls back to `target`).
    pub target: String,
    /// Labels are classes: 0/1, true/false, yes/no.
    pub classification: bool,
    /// Column or key holding the split (`train`, `val`, `test`).
    pub split_column: Option<String>,
}

/// Read labelled files (see the module notes).
pub fn read(paths: &[PathBuf], opts: &ReadOptions) -> Result<Labelled, String> {
    let mut out = Labelled::default();
    for p in paths {
        read_one(p, opts, &mut out)?;
    }
    Ok(out)
}

fn read_one(path: &Path, opts: &ReadOptions, out: &mut Labelled) -> Result<(), String> {
    let shown = path.display().to_string();
    if path.is_dir() {
        let csvs: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read folder {shown}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
            .collect();
        return match csvs.as_slice() {
            [one] => read_one(one, opts, out),
            [] => Err(format!("folder {shown} has no .csv file listing its structures (`file,{}`)", opts.target)),
            many => Err(format!(
                "folder {shown} has {} .csv files; name the one that lists its structures ({})",
                many.len(),
                many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )),
        };
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    out.files.push((shown.clone(), format!("{:x}", Sha256::digest(&bytes))));
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let gz = ext == "gz";
    let bytes = if gz {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut s)
            .map_err(|e| format!("{shown}: not a gzip file ({e})"))?;
        s
    } else {
        bytes
    };
    let inner_ext = if gz {
        Path::new(path.file_stem().unwrap_or_default())
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    } else {
        ext
    };
    match inner_ext.as_str() {
        "csv" => read_csv(path, &bytes, opts, out),
        "json" => read_json(&shown, &bytes, opts, out),
        "xyz" | "extxyz" => read_extxyz(&shown, &bytes, opts, out),
        "db" | "sqlite" | "sqlite3" => read_ase_db(path, opts, out),
        other => Err(format!(
            "{shown}: cannot read labelled data from a {} file; expected .csv (formula or file column), .json \
             (pymatgen list or Matbench), .xyz/.extxyz, .db (ASE) or a folder with a .csv",
            if other.is_empty() { "extension-less".to_string() } else { format!(".{other}") }
        )),
    }
}

/// A label from text (CSV cells, extxyz values as written).
fn label_of_text(s: &str, classification: bool) -> Result<f64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("label is empty".into());
    }
    if classification {
        return match t.to_ascii_lowercase().as_str() {
            "1" | "1.0" | "true" | "yes" => Ok(1.0),
            "0" | "0.0" | "false" | "no" => Ok(0.0),
            _ => Err(format!("label {t:?} is not a class: expected 0/1, true/false or yes/no")),
        };
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("label {v} is not finite")),
        Err(_) => Err(format!("label {t:?} is not a number")),
    }
}

/// A label from JSON.
fn label_of_value(v: &Value, classification: bool) -> Result<f64, String> {
    match v {
        Value::Null => Err("label is missing (null)".into()),
        Value::Bool(b) if classification => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => label_of_text(&n.to_string(), classification),
        Value::String(s) => label_of_text(s, classification),
        other => Err(format!("label {other} is not a number")),
    }
}

fn split_of(s: &str) -> Result<Split, String> {
    let name = s.trim().to_ascii_lowercase();
    let alias = match name.as_str() {
        "training" => "train",
        "valid" => "val",
        other => other,
    };
    Split::from_name(alias).ok_or_else(|| format!("split {name:?} is not train, val or test"))
}

fn split_of_value(v: Option<&Value>, key: &str) -> Result<Split, String> {
    match v {
        Some(Value::String(s)) => split_of(s),
        Some(other) => Err(format!("split {key:?} is {other}, expected \"train\", \"val\" or \"test\"")),
        None => Err(format!("no split key {key:?}")),
    }
}

fn read_csv(path: &Path, bytes: &[u8], opts: &ReadOptions, out: &mut Labelled) -> Result<(), String> {
    let shown = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{shown}: cannot read the header line: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let label_col = col(&opts.target).or_else(|| col("target")).ok_or_else(|| {
        format!(
            "{shown} line 1: no column {:?} (or `target`) for the label; columns are {}",
            opts.target,
            header.join(", ")
        )
    })?;
    let split_col = match &opts.split_column {
        Some(s) => Some(
            col(s)
                .ok_or_else(|| format!("{shown} line 1: no split column {s:?}; columns are {}", header.join(", ")))?,
        ),
        None => None,
    };
    let (input_col, by_file) = match (col("formula"), col("file")) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => {
            return Err(format!(
                "{shown} line 1: no `formula` column (composition data) or `file` column (structure files); columns are {}",
                header.join(", ")
            ));
        }
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut pending: Vec<(String, String, f64, Option<Split>)> = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let origin = format!("{shown}:{}", i + 2);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.bad.push(BadRow { origin, reason: format!("unreadable CSV record: {e}") });
                continue;
            }
        };
        if rec.iter().all(|c| c.is_empty()) {
            continue;
        }
        let cell = |k: usize| rec.get(k).unwrap_or("");
        let label = match label_of_text(cell(label_col), opts.classification) {
            Ok(v) => v,
            Err(reason) => {
                out.bad.push(BadRow { origin, reason });
                continue;
            }
        };
        let split = match split_col.map(|k| split_of(cell(k))).transpose() {
            Ok(s) => s,
            Err(reason) => {
                out.bad.push(BadRow { origin, reason });
                continue;
            }
        };
        let input = cell(input_col).to_string();
        if input.is_empty() {
            out.bad.push(BadRow { origin, reason: format!("empty {}", if by_file { "file" } else { "formula" }) });
            continue;
        }
        if by_file {
            pending.push((origin, input, label, split));
        } else {
            match Composition::from_formula(&input) {
                Ok(c) if c.num_atoms() > 0.0 => {
                    out.rows.push(Row { input: Input::Composition(c), label, split, origin })
                }
                Ok(_) => out.bad.push(BadRow { origin, reason: format!("formula {input:?} has no atoms") }),
                Err(e) => out.bad.push(BadRow { origin, reason: format!("formula {input:?}: {e}") }),
            }
        }
    }
    // Structure files are read in parallel, in CSV order.
    let read: Vec<Result<Row, BadRow>> = pending
        .into_par_iter()
        .map(|(origin, file, label, split)| {
            let p = base.join(&file);
            match crate::io::read_structures(&p) {
                Ok(mut v) if v.len() == 1 => {
                    Ok(Row { input: Input::Structure(Box::new(v.remove(0))), label, split, origin })
                }
                Ok(v) => Err(BadRow {
                    origin,
                    reason: format!("{} holds {} structures, expected one", p.display(), v.len()),
                }),
                Err(e) => Err(BadRow { origin, reason: e.to_string() }),
            }
        })
        .collect();
    for r in read {
        match r {
            Ok(row) => out.rows.push(row),
            Err(b) => out.bad.push(b),
        }
    }
    Ok(())
}

fn read_extxyz(shown: &str, bytes: &[u8], opts: &ReadOptions, out: &mut Labelled) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    let frames = crate::io::extxyz::parse(text, shown).map_err(|e| e.to_string())?;
    for (i, s) in frames.into_iter().enumerate() {
        let origin = format!("{shown} frame {}", i + 1);
        push_structure(s, None, opts, origin, out);
    }
    Ok(())
}

/// A structure whose label (and split) sit in `keys` (a JSON object), or else in its `properties`.
fn push_structure(
    mut s: Structure,
    keys: Option<&serde_json::Map<String, Value>>,
    opts: &ReadOptions,
    origin: String,
    out: &mut Labelled,
) {
    let get = |k: &str| keys.and_then(|m| m.get(k)).or_else(|| s.properties.get(k)).cloned();
    let Some(v) = get(&opts.target).or_else(|| get("target")) else {
        out.bad.push(BadRow { origin, reason: format!("no {:?} (or `target`) value", opts.target) });
        return;
    };
    let label = match label_of_value(&v, opts.classification) {
        Ok(l) => l,
        Err(reason) => {
            out.bad.push(BadRow { origin, reason });
            return;
        }
    };
    let split = match &opts.split_column {
        Some(k) => match split_of_value(get(k).as_ref(), k) {
            Ok(s) => Some(s),
            Err(reason) => {
                out.bad.push(BadRow { origin, reason });
                return;
            }
        },
        None => None,
    };
    s.properties.clear();
    out.rows.push(Row { input: Input::Structure(Box::new(s)), label, split, origin });
}

fn read_ase_db(path: &Path, opts: &ReadOptions, out: &mut Labelled) -> Result<(), String> {
    let shown = path.display().to_string();
    let rows = crate::io::ase_db::read(path).map_err(|e| e.to_string())?;
    for r in rows {
        push_structure(r.structure, Some(&r.key_value_pairs), opts, format!("{shown} id {}", r.id), out);
    }
    Ok(())
}

fn read_json(shown: &str, bytes: &[u8], opts: &ReadOptions, out: &mut Labelled) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    let strict = crate::io::python_json_to_strict(text);
    let v: Value =
        serde_json::from_str(&strict).map_err(|e| format!("{shown} line {}: invalid JSON: {e}", e.line()))?;
    let structure =
        |v: &Value, at: &str| crate::io::pmg_json::structure_from_value(v, at, shown).map_err(|e| e.to_string());
    match &v {
        // pandas' "split" orient (Matbench's own files): columns + data rows.
        Value::Object(m) if m.contains_key("columns") && m.contains_key("data") => {
            let cols: Vec<&str> = m["columns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let s_col = cols.iter().position(|c| *c == "structure").ok_or_else(|| {
                format!("{shown}: Matbench JSON without a \"structure\" column (columns: {})", cols.join(", "))
            })?;
            let t_col = label_column(&cols, opts, shown)?;
            let split_col = split_column(&cols, opts, shown)?;
            for (i, row) in m["data"].as_array().into_iter().flatten().enumerate() {
                let origin = format!("{shown} data[{i}]");
                let cell = |k: usize| row.get(k).unwrap_or(&Value::Null);
                let r = structure(cell(s_col), &format!("data[{i}]")).and_then(|s| {
                    let label = label_of_value(cell(t_col), opts.classification)?;
                    let split = split_col.map(|k| split_of_value(Some(cell(k)), cols[k])).transpose()?;
                    Ok(Row { input: Input::Structure(Box::new(s)), label, split, origin: origin.clone() })
                });
                push(r, origin, out);
            }
            Ok(())
        }
        // pandas' "columns" orient: {column: {index: value}}.
        Value::Object(m)
            if m.get("structure").is_some_and(Value::is_object) && m.len() >= 2 && !m.contains_key("lattice") =>
        {
            let cols: Vec<&str> = m.keys().map(String::as_str).collect();
            let t_col = cols[label_column(&cols, opts, shown)?];
            let split_col = split_column(&cols, opts, shown)?.map(|k| cols[k]);
            let structs =
                m["structure"].as_object().ok_or_else(|| format!("{shown}: \"structure\" is not an object"))?;
            let mut keys: Vec<&String> = structs.keys().collect();
            // pandas writes the index as strings: keep numeric order.
            keys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), (*k).clone()));
            let parsed: Vec<(String, Result<Row, String>)> = keys
                .par_iter()
                .map(|k| {
                    let origin = format!("{shown} [{k}]");
                    let r = structure(&structs[*k], &format!("structure[{k}]")).and_then(|s| {
                        let label =
                            label_of_value(m[t_col].get(k.as_str()).unwrap_or(&Value::Null), opts.classification)?;
                        let split = split_col.map(|c| split_of_value(m[c].get(k.as_str()), c)).transpose()?;
                        Ok(Row { input: Input::Structure(Box::new(s)), label, split, origin: origin.clone() })
                    });
                    (origin, r)
                })
                .collect();
            for (origin, r) in parsed {
                push(r, origin, out);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let origin = format!("{shown} [{i}]");
                let (sv, keys) = match item.get("structure") {
                    Some(s) if item.get("lattice").is_none() => (s, item.as_object()),
                    _ => (item, None),
                };
                match structure(sv, &format!("[{i}]")) {
                    Ok(s) => push_structure(s, keys, opts, origin, out),
                    Err(reason) => out.bad.push(BadRow { origin, reason }),
                }
            }
            Ok(())
        }
        _ => Err(format!(
            "{shown}: expected a JSON list of pymatgen structures (or objects with a \"structure\"), or Matbench's \
             {{\"columns\", \"data\"}} layout"
        )),
    }
}

fn push(r: Result<Row, String>, origin: String, out: &mut Labelled) {
    match r {
        Ok(row) => out.rows.push(row),
        Err(reason) => out.bad.push(BadRow { origin, reason }),
    }
}

/// The label column of a table: named as the target, else `target`, else the one column that is neither
/// the structure nor the split.
fn label_column(cols: &[&str], opts: &ReadOptions, shown: &str) -> Result<usize, String> {
    if let Some(k) = cols.iter().position(|c| *c == opts.target).or_else(|| cols.iter().position(|c| *c == "target")) {
        return Ok(k);
    }
    let others: Vec<usize> =
        (0..cols.len()).filter(|&k| cols[k] != "structure" && Some(cols[k]) != opts.split_column.as_deref()).collect();
    match others.as_slice() {
        [one] => Ok(*one),
        _ => Err(format!(
            "{shown}: no column {:?} (or `target`) for the label; columns are {}",
            opts.target,
            cols.join(", ")
        )),
    }
}

fn split_column(cols: &[&str], opts: &ReadOptions, shown: &str) -> Result<Option<usize>, String> {
    match &opts.split_column {
        Some(s) => cols
            .iter()
            .position(|c| c == s)
            .map(Some)
            .ok_or_else(|| format!("{shown}: no split column {s:?}; columns are {}", cols.join(", "))),
        None => Ok(None),
    }
}

/// Which split a row falls in: its own split column, else the embedded dataset's rule by reduced formula.
pub fn split_of_row(row: &Row) -> Split {
    row.split.unwrap_or_else(|| Split::of_formula(&row.reduced_formula()))
}
