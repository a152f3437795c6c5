//! Extended XYZ reader and writer, following ASE's `ase.io.extxyz`.
//!
//! A frame is an atom-count line, a comment line of `key=value` pairs and one line per atom. The
//! comment line is parsed as ASE's `key_val_str_to_dict` does: values may be quoted with `"…"`,
//! `'…'`, `{…}` or `[…]`, `\` escapes the next character, a key without a value is `true`; values
//! become integers, reals, or arrays of them (tokens split on spaces and commas), booleans
//! (`T`/`F`/`True`/`False`/`true`/`false`/`TRUE`/`FALSE`, or arrays of them), JSON for values written
//! as `_JSON …`, and strings otherwise. `Lattice` holds the lattice vectors as consecutive rows;
//! `stress` and `virial` become 3×3 arrays (Fortran order, as ASE). `Properties=name:type:ncols:…`
//! (types `S`, `R`, `I`, `L`) describes the atom columns: `species` (or `Z`) and `pos` (Cartesian Å)
//! make the structure; every other column goes to `site_properties` under its name (one value per
//! atom, an array when it has several columns), except ASE's `move_mask`, which becomes
//! `selective_dynamics` (both mean "may move"). Other keys go to `properties` (`energy`, `stress`, …).
//! Frames without a `Lattice`, or not periodic in all three directions (`pbc`), are errors naming
//! the frame's comment line: a [`Structure`] is a periodic crystal.
//!
//! Writer: the same format, one frame per structure: `Lattice` (shortest round-trip reals),
//! `Properties=species:S:1:pos:R:3` plus every site property whose values are all numbers, booleans,
//! whitespace-free strings, or equally long arrays of numbers or booleans (`selective_dynamics` as
//! `move_mask:L:3`), every property (scalars and strings as such, 1-D arrays of numbers or booleans as
//! quoted lists, `stress`/`virial` 3×3 in Fortran order, anything else and strings that would read
//! back as another type as `_JSON …`, as ASE does), then `pbc="T T T"`. Positions and real columns
//! have 16 significant digits.

use std::collections::BTreeMap;

use nalgebra::Vector3;
use serde_json::{Number, Value};

use super::IoError;
use super::poscar::{check_plain_text, fmt_sig16};
use crate::crystal::{CrystalError, Element, Lattice, Structure};

/// Keys whose 9 values are a 3×3 matrix in Fortran order (ASE's `SPECIAL_3_3_KEYS`).
const SPECIAL_3_3_KEYS: [&str; 3] = ["Lattice", "virial", "stress"];

/// Split a comment line into (key, value) pairs the way ASE's `key_val_str_to_dict` does.
fn split_key_values(line: &str) -> Vec<(String, Option<String>)> {
    // Each entry: the key's characters, then one list per '='-separated value part.
    let mut pairs: Vec<Vec<String>> = vec![vec![String::new()]];
    let mut delimiter: Option<char> = None;
    let mut escaped = false;
    for c in line.trim().chars() {
        let current = pairs.last_mut().and_then(|p| p.last_mut());
        if escaped {
            if let Some(cur) = current {
                cur.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if let Some(d) = delimiter {
            if c == d {
                delimiter = None;
            } else if let Some(cur) = current {
                cur.push(c);
            }
        } else if let Some(close) = match c {
            '"' => Some('"'),
            '\'' => Some('\''),
            '{' => Some('}'),
            '[' => Some(']'),
            _ => None,
        } {
            delimiter = Some(close);
        } else if c.is_whitespace() {
            let last_empty = pairs.last().and_then(|p| p.last()).is_none_or(|s| s.is_empty());
            if !last_empty {
                pairs.push(vec![String::new()]);
            }
        } else if c == '=' {
            if pairs.last().is_some_and(|p| p.len() == 1 && p[0].is_empty()) && pairs.len() > 1 {
                pairs.pop();
            }
            if let Some(p) = pairs.last_mut() {
                p.push(String::new());
            }
        } else if let Some(cur) = current {
            cur.push(c);
        }
    }
    pairs
        .into_iter()
        .filter(|p| !(p.len() == 1 && p[0].is_empty()))
        .map(|mut p| {
            let key = p.remove(0);
            if p.is_empty() { (key, None) } else { (key, Some(p.join("="))) }
        })
        .collect()
}

fn parse_bool_token(t: &str) -> Option<bool> {
    match t {
        "T" | "true" | "True" | "TRUE" => Some(true),
        "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Convert a value string to JSON as ASE does (ints, floats, arrays, booleans, `_JSON`, strings).
/// Non-finite reals cannot be JSON numbers: such values stay strings.
fn convert_value(key: &str, value: &str) -> Value {
    if key.eq_ignore_ascii_case("uid") {
        return Value::String(value.to_string());
    }
    let tokens: Vec<&str> = value.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()).collect();
    let one_or_many = |mut v: Vec<Value>| if v.len() == 1 { v.remove(0) } else { Value::Array(v) };
    if let Ok(ints) = tokens.iter().map(|t| t.parse::<i64>()).collect::<Result<Vec<_>, _>>() {
        return one_or_many(ints.into_iter().map(Value::from).collect());
    }
    if let Ok(reals) = tokens.iter().map(|t| t.parse::<f64>()).collect::<Result<Vec<_>, _>>() {
        if let Some(nums) = reals.iter().map(|x| Number::from_f64(*x).map(Value::Number)).collect::<Option<Vec<_>>>() {
            return one_or_many(nums);
        }
        return Value::String(value.to_string());
    }
    if !tokens.is_empty()
        && let Some(bools) = tokens.iter().map(|t| parse_bool_token(t).map(Value::Bool)).collect::<Option<Vec<_>>>()
    {
        return one_or_many(bools);
    }
    if let Some(json) = value.strip_prefix("_JSON ")
        && let Ok(v) = serde_json::from_str::<Value>(json)
    {
        return v;
    }
    Value::String(value.to_string())
}

/// A 9-number value as a 3×3 matrix in Fortran order: `m[i][j] = flat[i + 3 j]`.
fn fortran_3x3(v: &Value) -> Option<[[f64; 3]; 3]> {
    let flat: Vec<f64> = v.as_array()?.iter().map(Value::as_f64).collect::<Option<_>>()?;
    (flat.len() == 9).then(|| [0, 1, 2].map(|i| [0, 1, 2].map(|j| flat[i + 3 * j])))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum ColType {
    Real,
    Int,
    Str,
    Logical,
}

struct Column {
    name: String,
    kind: ColType,
    ncols: usize,
}

fn parse_properties(spec: &str) -> Result<Vec<Column>, String> {
    let fields: Vec<&str> = spec.split(':').collect();
    if !fields.len().is_multiple_of(3) {
        return Err(format!("Properties={spec:?} has {} fields, expected name:type:columns triples", fields.len()));
    }
    let mut cols = Vec::new();
    for f in fields.chunks_exact(3) {
        let kind = match f[1] {
            "R" => ColType::Real,
            "I" => ColType::Int,
            "S" => ColType::Str,
            "L" => ColType::Logical,
            other => return Err(format!("property type {other:?} of {:?}, expected R, I, S or L", f[0])),
        };
        let ncols = match f[2].parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => return Err(format!("column count {:?} of property {:?}, expected a whole number from 1", f[2], f[0])),
        };
        if f[0].is_empty() {
            return Err(format!("empty property name in Properties={spec:?}, expected name:type:columns triples"));
        }
        cols.push(Column { name: f[0].to_string(), kind, ncols });
    }
    Ok(cols)
}

/// Parse every frame of an extended XYZ file. `path` names the file in error messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<Structure>, IoError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_plain_text(text, path, "extended XYZ")?;
    if text.trim().is_empty() {
        return Err(IoError::whole(path, "file is empty, expected an extended XYZ frame"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut frames = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let (s, next) = parse_frame(&lines, i, frames.len() + 1, path)?;
        frames.push(s);
        i = next;
    }
    Ok(frames)
}

/// Parse the frame whose count line is `lines[start]`; returns it and the index after it.
fn parse_frame(lines: &[&str], start: usize, frame: usize, path: &str) -> Result<(Structure, usize), IoError> {
    let count_line = start + 1;
    let count_text = lines[start].trim();
    let natoms: usize = count_text.parse().map_err(|_| {
        IoError::at(
            path,
            count_line,
            format!("{count_text:?} where the atom count of frame {frame} is expected (a whole number)"),
        )
    })?;
    if natoms == 0 {
        return Err(IoError::at(path, count_line, format!("frame {frame} declares 0 atoms, expected at least one")));
    }
    let comment_line = count_line + 1;
    let Some(comment) = lines.get(start + 1) else {
        return Err(IoError::at(
            path,
            comment_line,
            format!(
                "file ends after the atom count of frame {frame}, expected its comment line with Lattice= and Properties="
            ),
        ));
    };
    let at = |m: String| IoError::at(path, comment_line, m);

    let mut info: BTreeMap<String, Value> = BTreeMap::new();
    let mut raw: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in split_key_values(comment) {
        let v = match &value {
            None => Value::Bool(true),
            Some(v) => convert_value(&key, v),
        };
        if let Some(v) = value {
            raw.insert(key.clone(), v);
        }
        info.insert(key, v);
    }

    // Lattice and periodicity.
    let lattice_value = info.remove("Lattice").ok_or_else(|| {
        at(format!("frame {frame} has no Lattice (a non-periodic molecule), expected Lattice=\"a1 a2 a3 b1 b2 b3 c1 c2 c3\" for a crystal"))
    })?;
    let Some(m) = fortran_3x3(&lattice_value) else {
        let seen = raw.get("Lattice").cloned().unwrap_or_default();
        return Err(at(format!("Lattice={seen:?} in frame {frame}, expected nine finite numbers")));
    };
    // ASE: cell = Lattice(3x3, Fortran order).T, so rows are consecutive triples.
    let rows = [0, 1, 2].map(|i| [0, 1, 2].map(|j| m[j][i]));
    let lattice = Lattice::from_row_vectors(rows).map_err(|e| match e {
        CrystalError::SingularLattice { volume_ang3 } => {
            at(format!("Lattice of frame {frame} spans a volume of {volume_ang3:e} Å³, expected a non-degenerate cell"))
        }
        other => at(format!("Lattice of frame {frame}: {other}")),
    })?;
    if let Some(pbc) = info.remove("pbc") {
        let all_true = match &pbc {
            Value::Bool(b) => *b,
            Value::Array(a) => a.len() == 3 && a.iter().all(|v| v == &Value::Bool(true)),
            _ => false,
        };
        if !all_true {
            let seen = raw.get("pbc").cloned().unwrap_or_else(|| pbc.to_string());
            return Err(at(format!(
                "pbc={seen:?} in frame {frame}, expected \"T T T\" (periodic in all three directions)"
            )));
        }
    }

    // Columns.
    let spec = match info.remove("Properties") {
        None => "species:S:1:pos:R:3".to_string(),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(at(format!("Properties={other} in frame {frame}, expected name:type:columns triples")));
        }
    };
    let columns = parse_properties(&spec).map_err(|m| at(format!("{m} (frame {frame})")))?;
    let find = |names: &[&str], kind: ColType, n: usize| {
        columns.iter().position(|c| names.contains(&c.name.as_str()) && c.kind == kind && c.ncols == n)
    };
    let pos_col = find(&["pos", "positions"], ColType::Real, 3).ok_or_else(|| {
        at(format!("Properties={spec} in frame {frame} has no pos:R:3 column, expected Cartesian positions"))
    })?;
    let species_col = find(&["species", "symbols"], ColType::Str, 1)
        .or_else(|| find(&["Z", "numbers"], ColType::Int, 1))
        .ok_or_else(|| {
            at(format!("Properties={spec} in frame {frame} has no species:S:1 or Z:I:1 column, expected the elements"))
        })?;
    let total_cols: usize = columns.iter().map(|c| c.ncols).sum();

    let mut species = Vec::with_capacity(natoms.min(lines.len()));
    let mut cart = Vec::with_capacity(natoms.min(lines.len()));
    let mut site_values: Vec<Vec<Value>> = columns.iter().map(|_| Vec::new()).collect();
    for a in 0..natoms {
        let li = start + 2 + a;
        let n = li + 1;
        let Some(line) = lines.get(li) else {
            return Err(IoError::at(
                path,
                n,
                format!(
                    "file ends after {a} of {natoms} atom lines of frame {frame} (count on line {count_line}), expected {natoms}"
                ),
            ));
        };
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(IoError::at(
                path,
                n,
                format!(
                    "empty line after {a} of {natoms} atom lines of frame {frame} (count on line {count_line}), expected {natoms}"
                ),
            ));
        }
        if tokens.len() < total_cols {
            return Err(IoError::at(
                path,
                n,
                format!("atom line has {} columns, expected {total_cols} (Properties={spec})", tokens.len()),
            ));
        }
        let mut k = 0;
        for (ci, col) in columns.iter().enumerate() {
            let mut vals = Vec::with_capacity(col.ncols);
            for t in &tokens[k..k + col.ncols] {
                let v = match col.kind {
                    ColType::Real => match t.parse::<f64>() {
                        Ok(x) if x.is_finite() => Value::from(x),
                        Ok(x) => {
                            return Err(IoError::at(
                                path,
                                n,
                                format!("{x} in column {}, expected a finite number", col.name),
                            ));
                        }
                        Err(_) => {
                            return Err(IoError::at(
                                path,
                                n,
                                format!("{t:?} in column {}, expected a real number", col.name),
                            ));
                        }
                    },
                    ColType::Int => match t.parse::<i64>() {
                        Ok(x) => Value::from(x),
                        Err(_) => {
                            return Err(IoError::at(
                                path,
                                n,
                                format!("{t:?} in column {}, expected an integer", col.name),
                            ));
                        }
                    },
                    ColType::Str => Value::String((*t).to_string()),
                    ColType::Logical => match parse_bool_token(t) {
                        Some(b) => Value::Bool(b),
                        None => {
                            return Err(IoError::at(path, n, format!("{t:?} in column {}, expected T or F", col.name)));
                        }
                    },
                };
                vals.push(v);
            }
            k += col.ncols;
            if ci == pos_col {
                let p: Vec<f64> = vals.iter().filter_map(Value::as_f64).collect();
                cart.push(Vector3::new(p[0], p[1], p[2]));
            } else if ci == species_col {
                let el = match &vals[0] {
                    Value::String(sym) => Element::from_symbol(sym).map_err(|_| {
                        IoError::at(
                            path,
                            n,
                            format!("unknown element {sym:?} in column {}, expected an element symbol", col.name),
                        )
                    })?,
                    v => {
                        let z = v.as_i64().unwrap_or(-1);
                        Element::from_z(u32::try_from(z).unwrap_or(0)).map_err(|_| {
                            IoError::at(path, n, format!("atomic number {z} in column {}, expected 1 to 118", col.name))
                        })?
                    }
                };
                species.push(el);
            } else {
                site_values[ci].push(if vals.len() == 1 { vals.remove(0) } else { Value::Array(vals) });
            }
        }
    }

    let mut s =
        Structure::from_cart(lattice, species, &cart).map_err(|e| IoError::crystal(path, Some(comment_line), e))?;
    let skip = |c: &Column| ["species", "symbols", "Z", "numbers"].contains(&c.name.as_str());
    for (ci, (col, values)) in columns.iter().zip(site_values).enumerate() {
        if ci == pos_col || ci == species_col || skip(col) {
            continue;
        }
        if col.name == "move_mask" && col.kind == ColType::Logical && (col.ncols == 1 || col.ncols == 3) {
            let sd = values
                .into_iter()
                .map(|v| if let Value::Bool(b) = v { Value::Array(vec![Value::Bool(b); 3]) } else { v })
                .collect();
            s.site_properties.insert("selective_dynamics".into(), sd);
        } else {
            s.site_properties.insert(col.name.clone(), values);
        }
    }
    for (key, mut v) in info {
        if SPECIAL_3_3_KEYS.contains(&key.as_str())
            && let Some(m) = fortran_3x3(&v)
        {
            v = serde_json::json!(m);
        }
        s.properties.insert(key, v);
    }
    Ok((s, start + 2 + natoms))
}

/// Render structures as extended XYZ, one frame each (see the module notes).
pub fn write(structures: &[Structure]) -> String {
    let mut out = String::new();
    for s in structures {
        write_frame(s, &mut out);
    }
    out
}

/// A per-atom column the writer can express: its type, width and the formatted tokens per site.
fn site_column(values: &[Value]) -> Option<(char, usize, Vec<Vec<String>>)> {
    let first = values.first()?;
    let width = match first {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    if width == 0 {
        return None;
    }
    let flat = |v: &Value| -> Option<Vec<Value>> {
        match v {
            Value::Array(a) if a.len() == width && width > 1 => Some(a.clone()),
            Value::Array(_) => None,
            other if width == 1 => Some(vec![other.clone()]),
            _ => None,
        }
    };
    let rows: Vec<Vec<Value>> = values.iter().map(flat).collect::<Option<_>>()?;
    let all = |f: &dyn Fn(&Value) -> bool| rows.iter().flatten().all(f);
    let (kind, fmt): (char, fn(&Value) -> String) = if all(&|v| v.is_i64()) {
        ('I', |v| v.to_string())
    } else if all(&Value::is_number) {
        ('R', |v| fmt_sig16(v.as_f64().unwrap_or(f64::NAN)))
    } else if all(&Value::is_boolean) {
        ('L', |v| if v.as_bool() == Some(true) { "T".into() } else { "F".into() })
    } else if width == 1
        && all(&|v| {
            v.as_str().is_some_and(|s| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()))
        })
    {
        ('S', |v| v.as_str().unwrap_or("").to_string())
    } else {
        return None;
    };
    Some((kind, width, rows.iter().map(|r| r.iter().map(fmt).collect()).collect()))
}

fn write_frame(s: &Structure, out: &mut String) {
    let n = s.n_sites();
    let rows = s.lattice.row_vectors();
    let lattice = rows.iter().flatten().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(" ");
    let mut spec = String::from("species:S:1:pos:R:3");
    let mut columns: Vec<Vec<Vec<String>>> = Vec::new();
    let reserved = ["species", "symbols", "pos", "positions", "Z", "numbers"];
    let has_sd = s.site_properties.contains_key("selective_dynamics");
    for (name, values) in &s.site_properties {
        if values.len() != n || reserved.contains(&name.as_str()) || (has_sd && name == "move_mask") {
            continue;
        }
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control() || ":\"'{}[]=\\,".contains(c)) {
            continue;
        }
        if name == "selective_dynamics" {
            let flags: Vec<Vec<String>> = values
                .iter()
                .map(|v| {
                    let f = match v {
                        Value::Bool(b) => [*b; 3],
                        Value::Array(a) if a.len() == 3 => [0, 1, 2].map(|k| a[k].as_bool().unwrap_or(true)),
                        _ => [true; 3],
                    };
                    f.iter().map(|b| if *b { "T".to_string() } else { "F".to_string() }).collect()
                })
                .collect();
            spec.push_str(":move_mask:L:3");
            columns.push(flags);
            continue;
        }
        if let Some((kind, width, cells)) = site_column(values) {
            spec.push_str(&format!(":{name}:{kind}:{width}"));
            columns.push(cells);
        }
    }
    let mut comment = format!("Lattice=\"{lattice}\" Properties={spec}");
    for (key, value) in &s.properties {
        if ["Lattice", "Properties", "pbc"].contains(&key.as_str()) || key.is_empty() {
            continue;
        }
        comment.push(' ');
        comment.push_str(&quote_if_needed(key));
        comment.push('=');
        comment.push_str(&info_value(key, value));
    }
    comment.push_str(" pbc=\"T T T\"");
    out.push_str(&format!("{n}\n{comment}\n"));
    for (i, (e, c)) in s.species().iter().zip(s.cart_coords()).enumerate() {
        out.push_str(&format!(
            "{:<2} {:>22} {:>22} {:>22}",
            e.symbol(),
            fmt_sig16(c[0]),
            fmt_sig16(c[1]),
            fmt_sig16(c[2])
        ));
        for col in &columns {
            for t in &col[i] {
                out.push(' ');
                out.push_str(t);
            }
        }
        out.push('\n');
    }
}

/// Quote a key or value for the comment line when ASE's parser would otherwise split or alter it.
fn quote_if_needed(s: &str) -> String {
    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || "\"'{}[]=\\".contains(c)) {
        return s.to_string();
    }
    quote(s)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn real(x: &Value) -> String {
    match x.as_i64() {
        Some(i) => i.to_string(),
        None => format!("{:?}", x.as_f64().unwrap_or(f64::NAN)),
    }
}

/// The comment-line form of a property value; `_JSON` where the plain form would read back differently.
fn info_value(key: &str, v: &Value) -> String {
    let json = || quote(&format!("_JSON {v}"));
    let plain = match v {
        Value::Bool(b) => (if *b { "T" } else { "F" }).to_string(),
        Value::Number(_) => real(v),
        Value::String(s) => {
            let q = quote_if_needed(s);
            // Strings that look like numbers or booleans (or are empty, or hold control characters)
            // would come back as another type: write them as JSON, as ASE does for objects.
            if s.is_empty() || s.chars().any(char::is_control) || convert_value(key, s) != *v {
                return json();
            }
            return q;
        }
        Value::Array(a) if a.len() >= 2 && a.iter().all(Value::is_number) => {
            quote(&a.iter().map(real).collect::<Vec<_>>().join(" "))
        }
        Value::Array(a) if a.len() >= 2 && a.iter().all(Value::is_boolean) => {
            quote(&a.iter().map(|b| if b.as_bool() == Some(true) { "T" } else { "F" }).collect::<Vec<_>>().join(" "))
        }
        Value::Array(a) if SPECIAL_3_3_KEYS.contains(&key) && a.len() == 3 => {
            let m: Option<Vec<Vec<f64>>> = a
                .iter()
                .map(|r| r.as_array().filter(|r| r.len() == 3).and_then(|r| r.iter().map(Value::as_f64).collect()))
                .collect();
            match m {
                Some(m) => quote(&(0..9).map(|k| format!("{:?}", m[k % 3][k / 3])).collect::<Vec<_>>().join(" ")),
                None => return json(),
            }
        }
        _ => return json(),
    };
    // Numbers and booleans read back as written; a quoted list might not (e.g. ints and reals mixed
    // come back as reals, which JSON compares as different): check and fall back to JSON.
    let unquoted: String = plain.trim_matches('"').to_string();
    let back = convert_value(key, &unquoted);
    let back = if SPECIAL_3_3_KEYS.contains(&key) {
        fortran_3x3(&back).map(|m| serde_json::json!(m)).unwrap_or(back)
    } else {
        back
    };
    if same_value(&back, v) { plain } else { json() }
}

/// JSON equality that treats 2 and 2.0 alike (a written real may come back as an integer).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64() && x.is_f64() == y.is_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::super::poscar::fixtures::*;
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> String {
        parse(text, "x/a.xyz").unwrap_err().to_string()
    }

    /// Written by `ase.io.write(..., format="extxyz")` (ASE 3.29) for a structure with a
    /// SinglePointCalculator (energy, forces, stress), info entries and extra arrays.
    const ASE: &str = r#"3
Lattice="3.0 0.1 0.0 0.2 4.0 0.0 0.1 0.3 5.0" Properties=species:S:1:pos:R:3:initial_magmoms:R:1:tag_int:I:1:flagb:L:1:forces:R:3 name="my thing" n=3 flag=T vec="1.0 2.0 3.0" energy=-3.5 stress="0.0 0.05 0.04 0.05 0.01 0.03 0.04 0.03 0.02" pbc="T T T"
Fe       0.00000000       0.00000000       0.00000000       1.00000000        1  T       0.00000000       0.10000000       0.20000000
O        1.65000000       2.20000000       2.50000000       2.00000000        2  F       0.30000000       0.40000000       0.50000000
O        0.37000000       0.90000000       1.50000000       3.00000000        3  T       0.60000000       0.70000000       0.80000000
"#;

    #[test]
    fn reads_ase_output() {
        let text = format!("{ASE}{ASE}");
        let frames = parse(&text, "a.xyz").unwrap();
        assert_eq!(frames.len(), 2);
        let s = &frames[1];
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Fe", "O", "O"]);
        assert_eq!(s.lattice.row_vectors(), [[3.0, 0.1, 0.0], [0.2, 4.0, 0.0], [0.1, 0.3, 5.0]]);
        assert!((s.cart_coords()[1] - Vector3::new(1.65, 2.2, 2.5)).norm() < 1e-12);
        assert_eq!(s.properties["energy"], json!(-3.5));
        assert_eq!(s.properties["name"], json!("my thing"));
        assert_eq!(s.properties["n"], json!(3));
        assert_eq!(s.properties["flag"], json!(true));
        assert_eq!(s.properties["vec"], json!([1.0, 2.0, 3.0]));
        assert_eq!(s.properties["stress"], json!([[0.0, 0.05, 0.04], [0.05, 0.01, 0.03], [0.04, 0.03, 0.02]]));
        assert!(
            !s.properties.contains_key("pbc")
                && !s.properties.contains_key("Lattice")
                && !s.properties.contains_key("Properties")
        );
        assert_eq!(s.site_properties["forces"][2], json!([0.6, 0.7, 0.8]));
        assert_eq!(s.site_properties["initial_magmoms"][1], json!(2.0));
        assert_eq!(s.site_properties["tag_int"], vec![json!(1), json!(2), json!(3)]);
        assert_eq!(s.site_properties["flagb"], vec![json!(true), json!(false), json!(true)]);
    }

    #[test]
    fn comment_line_syntax() {
        let kv = split_key_values(r#"a=1 b = "x y" c={1 2 3} d=[T F] e f='q=r' g="say \"hi\"" h=1,2"#);
        let m: BTreeMap<_, _> = kv.into_iter().collect();
        assert_eq!(m["a"], Some("1".into()));
        assert_eq!(m["b"], Some("x y".into()));
        assert_eq!(m["c"], Some("1 2 3".into()));
        assert_eq!(m["e"], None);
        assert_eq!(m["f"], Some("q=r".into()));
        assert_eq!(m["g"], Some("say \"hi\"".into()));
        assert_eq!(convert_value("d", "T F"), json!([true, false]));
        assert_eq!(convert_value("h", "1,2"), json!([1, 2]));
        assert_eq!(convert_value("x", "1.5e3"), json!(1500.0));
        assert_eq!(convert_value("x", "nan"), json!("nan"));
        assert_eq!(convert_value("x", "_JSON {\"a\": [1, 2]}"), json!({"a": [1, 2]}));
        assert_eq!(convert_value("uid", "123"), json!("123"));
        // Z column instead of species, and a move_mask becomes selective dynamics.
        let t =
            "2\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=Z:I:1:pos:R:3:move_mask:L:3\n11 0 0 0 T T F\n17 2 2 2 F F F\n";
        let s = &parse(t, "p").unwrap()[0];
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Na", "Cl"]);
        assert_eq!(s.site_properties["selective_dynamics"][0], json!([true, true, false]));
        // Default Properties, no pbc key, lowercase symbols, trailing blank lines, CRLF.
        let t = "1\r\nLattice=\"4 0 0 0 4 0 0 0 4\"\r\nna 0 0 0\r\n\r\n\r\n";
        assert_eq!(parse(t, "p").unwrap()[0].species()[0].symbol(), "Na");
    }

    #[test]
    fn malformed_inputs_name_line_and_problem() {
        let lat = "Lattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3";
        let cases: Vec<(String, &str, &str)> = vec![
            ("".into(), "", "empty"),
            ("\n  \n".into(), "", "empty"),
            ("x\n".into(), "line 1", "atom count"),
            ("-1\n".into(), "line 1", "atom count"),
            ("0\nLattice=\"4 0 0 0 4 0 0 0 4\"\n".into(), "line 1", "0 atoms"),
            ("2\n".into(), "line 2", "comment line"),
            (format!("2\n{lat}\nNa 0 0 0\n"), "line 4", "after 1 of 2 atom lines"),
            (format!("1\n{lat}\nNa 0 0 0\nCl 1 1 1\n"), "line 4", "atom count"),
            ("1\nProperties=species:S:1:pos:R:3 pbc=\"F F F\"\nNa 0 0 0\n".into(), "line 2", "no Lattice"),
            ("1\nLattice=\"4 0 0 0 4 0 0 0 4\" pbc=\"T T F\"\nNa 0 0 0\n".into(), "line 2", "pbc=\"T T F\""),
            ("1\nLattice=\"4 0 0 0 4 0 0 0\"\nNa 0 0 0\n".into(), "line 2", "nine finite numbers"),
            ("1\nLattice=\"4 0 0 0 4 0 0 0 nan\"\nNa 0 0 0\n".into(), "line 2", "nine finite numbers"),
            ("1\nLattice=\"4 0 0 8 0 0 0 0 4\"\nNa 0 0 0\n".into(), "line 2", "volume"),
            (
                "1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:X:3\nNa 0 0 0\n".into(),
                "line 2",
                "property type \"X\"",
            ),
            ("1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R\nNa 0 0 0\n".into(), "line 2", "triples"),
            (
                "1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:99999999999999999999\nNa 0 0 0\n".into(),
                "line 2",
                "column count",
            ),
            ("1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1\nNa 0 0 0\n".into(), "line 2", "no pos:R:3"),
            (format!("1\n{lat}\nXx 0 0 0\n"), "line 3", "unknown element \"Xx\""),
            (format!("1\n{lat}\nNa 0 0\n"), "line 3", "3 columns, expected 4"),
            (format!("1\n{lat}\nNa 0 NaN 0\n"), "line 3", "finite"),
            (format!("1\n{lat}\nNa 0 inf 0\n"), "line 3", "finite"),
            (format!("1\n{lat}\nNa 0 abc 0\n"), "line 3", "\"abc\""),
            (
                "1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=Z:I:1:pos:R:3\n999 0 0 0\n".into(),
                "line 3",
                "atomic number 999",
            ),
            (
                "1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3:f:L:1\nNa 0 0 0 X\n".into(),
                "line 3",
                "T or F",
            ),
            (
                "1\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3:f:I:1\nNa 0 0 0 1.5\n".into(),
                "line 3",
                "integer",
            ),
            ("1\nLattice=\"4 \0 0 0 4 0 0 0 4\"\nNa 0 0 0\n".into(), "line 2", "control character U+0000"),
            ("\u{1}\u{2}\u{3}\u{ff}".into(), "line 1", "control character"),
        ];
        for (text, line, msg) in &cases {
            let e = err(text);
            assert!(e.contains(line) && e.contains(msg) && e.contains("x/a.xyz"), "{text:?} gave {e}");
        }
        // The corpus file: 3 atoms announced, 2 given.
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/malformed/truncated.xyz");
        if let Ok(t) = std::fs::read_to_string(&p) {
            let e = parse(&t, "truncated.xyz").unwrap_err().to_string();
            assert!(e.contains("line 5") && e.contains("truncated.xyz"), "{e}");
        }
    }

    #[test]
    fn every_prefix_is_an_error_or_frames() {
        for (i, _) in ASE.char_indices() {
            let _ = parse(&ASE[..i], "p");
        }
    }

    fn with_extras(mut s: Structure) -> Structure {
        let n = s.n_sites();
        s.site_properties.insert("forces".into(), (0..n).map(|i| json!([0.1 * i as f64, -0.2, 1e-9])).collect());
        s.site_properties.insert("magmom".into(), (0..n).map(|i| json!(i as f64 * 0.5)).collect());
        s.site_properties.insert("tag".into(), (0..n).map(|i| json!(i)).collect());
        s.site_properties.insert("label".into(), (0..n).map(|i| json!(format!("X{i}"))).collect());
        s.site_properties.insert("fixed".into(), (0..n).map(|i| json!(i % 2 == 0)).collect());
        s.site_properties
            .insert("selective_dynamics".into(), (0..n).map(|i| json!([i % 2 == 0, true, false])).collect());
        s.site_properties.insert("weird".into(), (0..n).map(|i| json!({"i": i})).collect()); // not writable: dropped
        s.properties.insert("energy".into(), json!(-12.25));
        s.properties.insert("count".into(), json!(7));
        s.properties.insert("ok".into(), json!(true));
        s.properties.insert("name".into(), json!("a \"quoted\" name with spaces and \\ backslash"));
        s.properties.insert("looks_numeric".into(), json!("42"));
        s.properties.insert("looks_bool".into(), json!("T"));
        s.properties.insert("empty".into(), json!(""));
        s.properties.insert("vec".into(), json!([1.0, 2.5, -3.0]));
        s.properties.insert("ints".into(), json!([1, 2, 3]));
        s.properties.insert("mixed".into(), json!([1, 2.5]));
        s.properties.insert("flags".into(), json!([true, false]));
        s.properties.insert("stress".into(), json!([[1.0, 0.5, 0.25], [0.5, 2.0, 0.125], [0.25, 0.125, 3.0]]));
        s.properties.insert("nested".into(), json!({"a": [1, 2], "b": null}));
        s.properties.insert("single".into(), json!([4.0]));
        s.properties.insert("with space".into(), json!(1.5));
        s
    }

    #[test]
    fn round_trip() {
        let a = with_extras(triclinic());
        let b = rocksalt();
        let text = write(&[a.clone(), b.clone()]);
        let back = parse(&text, "p").unwrap();
        assert_eq!(back.len(), 2);
        assert_same(&a, &back[0], 1e-10);
        assert_same(&b, &back[1], 1e-10);
        let mut expected = a.properties.clone();
        assert_eq!(back[0].properties, expected, "{text}");
        expected.clear();
        assert_eq!(back[1].properties, expected);
        let mut sp = a.site_properties.clone();
        sp.remove("weird");
        for (k, v) in &sp {
            let got = &back[0].site_properties[k];
            for (x, y) in v.iter().zip(got) {
                assert!(
                    same_value(x, y)
                        || (x.as_f64().zip(y.as_f64()).is_some_and(|(p, q)| (p - q).abs() < 1e-12))
                        || close_arrays(x, y),
                    "{k}: {x} vs {y}"
                );
            }
        }
        assert_eq!(back[0].site_properties.len(), sp.len());
        assert!(back[1].site_properties.is_empty());
    }

    fn close_arrays(x: &Value, y: &Value) -> bool {
        match (x.as_array(), y.as_array()) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(p, q)| {
                        (p.as_f64().unwrap_or(f64::NAN) - q.as_f64().unwrap_or(f64::NAN)).abs() < 1e-12 || p == q
                    })
            }
            _ => false,
        }
    }

    /// Writes the cross-check files for `scripts/check_io_roundtrip.py` and reads them back.
    #[test]
    fn write_roundtrip_files() {
        let dir = roundtrip_dir();
        let mut a = triclinic();
        let n = a.n_sites();
        a.site_properties
            .insert("forces".into(), (0..n).map(|i| json!([0.125 * i as f64, -0.5, 0.0078125 * i as f64])).collect());
        a.properties.insert("energy".into(), json!(-42.125));
        a.properties.insert("stress".into(), json!([[0.01, 0.002, 0.003], [0.002, 0.02, 0.004], [0.003, 0.004, 0.03]]));
        a.properties.insert("comment".into(), json!("triclinic with forces"));
        let mut b = rocksalt();
        b.site_properties
            .insert("selective_dynamics".into(), (0..b.n_sites()).map(|i| json!([i % 2 == 0, true, false])).collect());
        let frames = [a, b];
        std::fs::write(dir.join("frames.extxyz"), write(&frames)).unwrap();
        let side = json!({"format": "extxyz", "structures": sidecar(&frames)});
        std::fs::write(dir.join("frames.extxyz.expected.json"), serde_json::to_string_pretty(&side).unwrap()).unwrap();
        // What the script will read, Geode reads back the same.
        let back = crate::io::read_structures(&dir.join("frames.extxyz")).unwrap();
        assert_eq!(back.len(), frames.len());
        for (a, b) in frames.iter().zip(&back) {
            assert_same(a, b, 1e-9);
        }
    }

    #[test]
    fn reference_file_from_ase() {
        let (text, expected) = expected_for("ase_frames.extxyz");
        let frames = parse(&text, "ase_frames.extxyz").unwrap();
        assert_eq!(frames.len(), expected.len());
        for (s, e) in frames.iter().zip(&expected) {
            assert_matches_expected(s, e, 1e-9);
            for key in ["energy", "stress", "name", "n", "flag", "vec"] {
                if let Some(v) = e["properties"].get(key) {
                    assert!(
                        same_value(&s.properties[key], v) || close_arrays(&s.properties[key], v) || {
                            let (p, q) = (s.properties[key].as_array(), v.as_array());
                            p.zip(q).is_some_and(|(p, q)| p.iter().zip(q).all(|(r, t)| close_arrays(r, t)))
                        },
                        "{key}: {} vs {v}",
                        s.properties[key]
                    );
                }
            }
            if let Some(f) = e["site_properties"].get("forces") {
                for (x, y) in s.site_properties["forces"].iter().zip(f.as_array().unwrap()) {
                    assert!(close_arrays(x, y), "{x} vs {y}");
                }
            }
            if let Some(sd) = e["site_properties"].get("selective_dynamics") {
                assert_eq!(&serde_json::to_value(&s.site_properties["selective_dynamics"]).unwrap(), sd);
            }
        }
    }
}
