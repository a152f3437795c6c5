//! CIF 1.1 reader and writer.
//!
//! Reader: a CIF 1.1 tokenizer (`data_` blocks, `loop_`, tags, bare / `'single'` / `"double"` quoted
//! values whose closing quote must be followed by white space, `;` text fields, `#` comments, `?` and
//! `.` as unknown / inapplicable; `save_` frames are skipped) with 1-based line numbers on every token.
//! Tags are compared case-insensitively and with `.` read as `_`, so DDLm names (`_atom_site.fract_x`)
//! work too. Each data block with a cell and atom sites gives one [`Structure`]:
//!
//! * cell from `_cell_length_a/b/c` and `_cell_angle_alpha/beta/gamma` (a missing angle takes the CIF
//!   dictionary default of 90°), built with pymatgen's orientation ([`Lattice::from_parameters`]);
//! * sites from the `_atom_site_` loop: the element from `_atom_site_type_symbol`, else from
//!   `_atom_site_label` (`Fe2+`, `O1`), positions from `_atom_site_fract_x/y/z` or, failing those,
//!   `_atom_site_Cartn_x/y/z` (in the CIF default Cartesian frame: **a** along x, **b** in the xy plane),
//!   `_atom_site_occupancy` (default 1); numbers may carry standard uncertainties (`5.431(2)`);
//! * symmetry from `_symmetry_equiv_pos_as_xyz` / `_space_group_symop_operation_xyz`, else from the
//!   Hall symbol, else the Hermann–Mauguin symbol (with `:1`/`:2`/`:H`/`:R` setting suffixes), else the
//!   International Tables number, looked up in moyo's table of the 530 Hall settings (the first setting
//!   of a symbol or number unless a suffix says otherwise; a rhombohedral group on a cell with a = b = c
//!   and α = β = γ takes the rhombohedral setting). Without any of them the block is read as P1.
//!
//! The asymmetric unit is expanded by every operation, wrapped into [0, 1) and merged like pymatgen's
//! `CifParser`: images within `site_tolerance_frac` (per fractional component, periodic) are one site,
//! and when symmetry is used, coordinates within 1e-4 (relative) of 1/3 or 2/3 are snapped to them first.
//! Geode stores ordered structures only, so a site with an occupancy other than 1 or two species on one
//! position is an error unless [`CifOptions::order_partial_occupancies`] asks to keep the majority
//! species (the dropped ones are listed in `properties["cif_ordering_notes"]`). The block name goes to
//! `properties["cif_block"]`, the site labels to `site_properties["label"]`.
//!
//! Writer: one P1 data block laid out like pymatgen's `CifWriter` (cell with 8 decimals, fractional
//! coordinates wrapped into [0, 1) with 10 decimals), read back identically by Geode, pymatgen and ASE
//! (`scripts/check_cif_roundtrip.py`).

use nalgebra::{Matrix3, Vector3};
use serde_json::Value as Json;

use super::IoError;
use crate::crystal::structure::wrap_frac;
use crate::crystal::{Element, Lattice, LatticeParams, Structure};

/// Occupancies within this of 1 count as full.
const OCCUPANCY_TOL: f64 = 1e-4;
/// pymatgen's `frac_tolerance` for snapping 1/3 and 2/3 (relative).
const FRAC_SNAP_TOL: f64 = 1e-4;

/// How the reader treats disorder and near-duplicate sites.
#[derive(Debug, Clone, PartialEq)]
pub struct CifOptions {
    /// Opt-in: when true, a site with occupancy < 1 (or > 1) or several species on one position keeps the
    /// species of largest occupancy instead of being an error. The dropped species and occupancies are
    /// listed in `properties["cif_ordering_notes"]`.
    pub order_partial_occupancies: bool,
    /// Two positions closer than this in every fractional component (periodically) are one site;
    /// pymatgen's `site_tolerance`, default 1e-4. A non-positive or non-finite value means the default.
    pub site_tolerance_frac: f64,
}

impl Default for CifOptions {
    fn default() -> Self {
        CifOptions { order_partial_occupancies: false, site_tolerance_frac: 1e-4 }
    }
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------------

/// A value: bare, quoted or a text field. Only bare `?` and `.` are null.
#[derive(Debug, Clone, PartialEq)]
struct Val {
    text: String,
    quoted: bool,
}

impl Val {
    fn is_null(&self) -> bool {
        !self.quoted && (self.text == "?" || self.text == ".")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Data(String),
    Loop,
    Save(String),
    Global,
    Stop,
    /// Normalised tag: lower case, `.` replaced by `_`.
    Tag(String),
    Value(Val),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based line where the token starts.
    line: usize,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

/// At most 40 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn check_controls(line: &str, n: usize, path: &str) -> Result<(), IoError> {
    if let Some(c) = line.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\u{b}' | '\u{c}')) {
        return Err(IoError::at(
            path,
            n,
            format!("control character U+{:04X} in the text, expected a plain-text CIF file", c as u32),
        ));
    }
    Ok(())
}

fn normalize_tag(tag: &str) -> String {
    tag.to_ascii_lowercase().replace('.', "_")
}

fn classify(word: &str) -> Tok {
    let lower = word.to_ascii_lowercase();
    if word.starts_with('_') {
        Tok::Tag(normalize_tag(word))
    } else if lower.starts_with("data_") {
        Tok::Data(word[5..].to_string())
    } else if lower == "loop_" {
        Tok::Loop
    } else if lower.starts_with("save_") {
        Tok::Save(word[5..].to_string())
    } else if lower == "global_" {
        Tok::Global
    } else if lower == "stop_" {
        Tok::Stop
    } else {
        Tok::Value(Val { text: word.to_string(), quoted: false })
    }
}

fn tokenize_line(s: &str, n: usize, path: &str, out: &mut Vec<Token>) -> Result<(), IoError> {
    let bytes = s.as_bytes();
    let mut p = 0;
    while p < bytes.len() {
        let c = bytes[p];
        if is_ws(c) {
            p += 1;
            continue;
        }
        if c == b'#' {
            break;
        }
        if c == b'\'' || c == b'"' {
            let start = p + 1;
            let end = (start..bytes.len()).find(|&q| bytes[q] == c && (q + 1 == bytes.len() || is_ws(bytes[q + 1])));
            let Some(e) = end else {
                return Err(IoError::at(
                    path,
                    n,
                    format!(
                        "unterminated quoted value {}, expected a closing {} before the end of the line",
                        shorten(&s[p..]),
                        c as char
                    ),
                ));
            };
            out.push(Token { tok: Tok::Value(Val { text: s[start..e].to_string(), quoted: true }), line: n });
            p = e + 1;
            continue;
        }
        let start = p;
        while p < bytes.len() && !is_ws(bytes[p]) {
            p += 1;
        }
        out.push(Token { tok: classify(&s[start..p]), line: n });
    }
    Ok(())
}

/// Split CIF text into tokens with their 1-based line numbers.
fn tokenize(text: &str, path: &str) -> Result<Vec<Token>, IoError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Old Mac line endings: lone carriage returns.
    let owned;
    let text = if !text.contains('\n') && text.contains('\r') {
        owned = text.replace('\r', "\n");
        owned.as_str()
    } else {
        text
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        check_controls(line, i + 1, path)?;
        if let Some(first) = line.strip_prefix(';') {
            let start = i + 1;
            let mut content = first.to_string();
            let mut j = i + 1;
            loop {
                let Some(l) = lines.get(j) else {
                    return Err(IoError::at(
                        path,
                        start,
                        "text field opened with ';' is never closed, expected a line starting with ';' before the end of the file",
                    ));
                };
                check_controls(l, j + 1, path)?;
                if let Some(rest) = l.strip_prefix(';') {
                    out.push(Token { tok: Tok::Value(Val { text: content, quoted: true }), line: start });
                    tokenize_line(rest, j + 1, path, &mut out)?;
                    break;
                }
                content.push('\n');
                content.push_str(l);
                j += 1;
            }
            i = j + 1;
        } else {
            tokenize_line(line, i + 1, path, &mut out)?;
            i += 1;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Item {
    val: Val,
    line: usize,
}

#[derive(Debug)]
struct Loop {
    tags: Vec<String>,
    values: Vec<Item>,
    line: usize,
}

#[derive(Debug)]
struct Block {
    name: String,
    line: usize,
    items: Vec<(String, Item)>,
    loops: Vec<Loop>,
}

impl Block {
    fn new(name: String, line: usize) -> Block {
        Block { name, line, items: Vec::new(), loops: Vec::new() }
    }

    /// A single (non-loop) value; the last one wins when a tag repeats.
    fn item(&self, tag: &str) -> Option<&Item> {
        self.items.iter().rev().find(|(t, _)| t == tag).map(|(_, v)| v)
    }

    /// A value given either as a single item or in a loop with one row; null values count as absent.
    fn scalar(&self, tag: &str) -> Option<&Item> {
        let found = self.item(tag).or_else(|| {
            self.loops.iter().find_map(|l| {
                let k = l.tags.iter().position(|t| t == tag)?;
                if l.values.len() == l.tags.len() { l.values.get(k) } else { None }
            })
        })?;
        if found.val.is_null() { None } else { Some(found) }
    }

    fn has_tag(&self, tag: &str) -> bool {
        self.items.iter().any(|(t, _)| t == tag) || self.loops.iter().any(|l| l.tags.iter().any(|t| t == tag))
    }

    fn display_name(&self) -> String {
        if self.name.is_empty() { "the unnamed block".to_string() } else { format!("data_{}", self.name) }
    }
}

fn current_block(blocks: &mut Vec<Block>, line: usize) -> &mut Block {
    if blocks.is_empty() {
        blocks.push(Block::new(String::new(), line));
    }
    let n = blocks.len();
    &mut blocks[n - 1]
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Data(n) => format!("data_{n}"),
        Tok::Loop => "loop_".into(),
        Tok::Save(n) => format!("save_{n}"),
        Tok::Global => "global_".into(),
        Tok::Stop => "stop_".into(),
        Tok::Tag(t) => format!("tag {t}"),
        Tok::Value(v) => format!("value {:?}", shorten(&v.text)),
    }
}

fn parse_blocks(tokens: Vec<Token>, path: &str) -> Result<Vec<Block>, IoError> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut it = tokens.into_iter().peekable();
    let mut in_save = false;
    while let Some(t) = it.next() {
        if in_save {
            match t.tok {
                Tok::Save(n) if n.is_empty() => in_save = false,
                Tok::Data(name) => {
                    in_save = false;
                    blocks.push(Block::new(name, t.line));
                }
                _ => {}
            }
            continue;
        }
        match t.tok {
            Tok::Data(name) => blocks.push(Block::new(name, t.line)),
            Tok::Global => blocks.push(Block::new("global_".into(), t.line)),
            Tok::Stop => {}
            Tok::Save(name) => in_save = !name.is_empty(),
            Tok::Loop => {
                let mut tags = Vec::new();
                while let Some(Token { tok: Tok::Tag(_), .. }) = it.peek() {
                    if let Some(Token { tok: Tok::Tag(tag), .. }) = it.next() {
                        tags.push(tag);
                    }
                }
                if tags.is_empty() {
                    let next = it.peek().map(|n| describe(&n.tok)).unwrap_or_else(|| "the end of the file".into());
                    return Err(IoError::at(
                        path,
                        t.line,
                        format!("loop_ is followed by {next}, expected tags such as _atom_site_label"),
                    ));
                }
                let mut values = Vec::new();
                while let Some(Token { tok: Tok::Value(_), .. }) = it.peek() {
                    if let Some(Token { tok: Tok::Value(v), line }) = it.next() {
                        values.push(Item { val: v, line });
                    }
                }
                if values.len() % tags.len() != 0 {
                    let shown: Vec<&str> = tags.iter().take(4).map(String::as_str).collect();
                    let more = if tags.len() > 4 { ", …" } else { "" };
                    return Err(IoError::at(
                        path,
                        t.line,
                        format!(
                            "loop with {} tags ({}{more}) has {} values, expected a multiple of {} (a row is missing values or the file is truncated)",
                            tags.len(),
                            shown.join(", "),
                            values.len(),
                            tags.len()
                        ),
                    ));
                }
                current_block(&mut blocks, t.line).loops.push(Loop { tags, values, line: t.line });
            }
            Tok::Tag(tag) => match it.next() {
                Some(Token { tok: Tok::Value(v), line }) => {
                    current_block(&mut blocks, t.line).items.push((tag, Item { val: v, line }))
                }
                Some(other) => {
                    return Err(IoError::at(
                        path,
                        t.line,
                        format!("tag {tag} is followed by {}, expected its value", describe(&other.tok)),
                    ));
                }
                None => {
                    return Err(IoError::at(path, t.line, format!("file ends after tag {tag}, expected its value")));
                }
            },
            Tok::Value(v) => {
                return Err(IoError::at(
                    path,
                    t.line,
                    format!(
                        "value {:?} does not follow a tag, expected a tag such as _cell_length_a or loop_",
                        shorten(&v.text)
                    ),
                ));
            }
        }
    }
    Ok(blocks)
}

/// Rows of one category, from a loop or from single items.
struct Table<'a> {
    tags: Vec<&'a str>,
    rows: Vec<Vec<&'a Item>>,
    line: usize,
}

impl<'a> Table<'a> {
    fn col(&self, tag: &str) -> Option<usize> {
        self.tags.iter().position(|t| *t == tag)
    }

    fn cell(&self, row: usize, col: Option<usize>) -> Option<&'a Item> {
        col.and_then(|c| self.rows.get(row).and_then(|r| r.get(c)).copied())
    }

    /// A non-null value.
    fn value(&self, row: usize, col: Option<usize>) -> Option<&'a Item> {
        self.cell(row, col).filter(|i| !i.val.is_null())
    }
}

/// The loop holding any of `keys`, or a one-row table of the single items starting with `prefix`.
fn find_table<'a>(b: &'a Block, keys: &[&str], prefix: &str) -> Option<Table<'a>> {
    for l in &b.loops {
        if l.tags.iter().any(|t| keys.contains(&t.as_str())) {
            return Some(Table {
                tags: l.tags.iter().map(String::as_str).collect(),
                rows: l.values.chunks(l.tags.len()).map(|c| c.iter().collect()).collect(),
                line: l.line,
            });
        }
    }
    if keys.iter().any(|k| b.item(k).is_some()) {
        let mut tags: Vec<&str> = Vec::new();
        let mut vals: Vec<&Item> = Vec::new();
        for (t, v) in &b.items {
            if t.starts_with(prefix) {
                if let Some(k) = tags.iter().position(|x| *x == t.as_str()) {
                    vals[k] = v;
                } else {
                    tags.push(t);
                    vals.push(v);
                }
            }
        }
        let line = vals.iter().map(|v| v.line).min().unwrap_or(b.line);
        return Some(Table { tags, rows: vec![vals], line });
    }
    None
}

// ---------------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------------

/// A CIF number: optional sign, digits with an optional point (`-.5`, `3.`), optional exponent and an
/// optional standard uncertainty in parentheses (`5.431(2)`). `None` when the text is not one.
fn parse_cif_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let mantissa = match t.strip_suffix(')') {
        Some(head) => {
            let open = head.rfind('(')?;
            let su = &head[open + 1..];
            if su.is_empty() || !su.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &head[..open]
        }
        None => t,
    };
    let b = mantissa.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    // Rust's parser wants a digit before an exponent or after a sign-only point: normalise "-.5" → "-0.5".
    let normalised = mantissa.replacen(".e", ".0e", 1).replacen(".E", ".0E", 1);
    let normalised = match normalised.find('.') {
        Some(p) if p == 0 || !normalised.as_bytes()[p - 1].is_ascii_digit() => {
            format!("{}0{}", &normalised[..p], &normalised[p..])
        }
        _ => normalised,
    };
    normalised.parse::<f64>().ok()
}

/// The number in `item` for `tag`, with errors naming the line.
fn number(item: &Item, tag: &str, path: &str) -> Result<f64, IoError> {
    let t = item.val.text.trim();
    if item.val.is_null() {
        return Err(IoError::at(path, item.line, format!("{tag} is {t:?} (unknown), expected a number")));
    }
    let lower = t.to_ascii_lowercase();
    if lower.contains("nan") || lower.contains("inf") {
        return Err(IoError::at(path, item.line, format!("{tag} is {:?}, expected a finite number", shorten(t))));
    }
    match parse_cif_number(t) {
        Some(v) if v.is_finite() => Ok(v),
        Some(_) => Err(IoError::at(path, item.line, format!("{tag} is {:?}, expected a finite number", shorten(t)))),
        None => {
            Err(IoError::at(path, item.line, format!("{tag} is {:?}, expected a number such as 5.431(2)", shorten(t))))
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Symmetry
// ---------------------------------------------------------------------------------------------------

/// A symmetry operation on fractional coordinates: x' = R x + t.
#[derive(Debug, Clone, PartialEq)]
struct SymOp {
    rot: Matrix3<f64>,
    trans: Vector3<f64>,
}

impl SymOp {
    fn apply(&self, f: &Vector3<f64>) -> Vector3<f64> {
        self.rot * f + self.trans
    }
}

/// One part of an operation (`-x+y`, `1/2+x`, `z-0.25`): coefficients of x, y, z and the translation.
fn parse_symop_part(part: &str) -> Result<([f64; 3], f64), String> {
    let chars: Vec<char> = part.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_lowercase()).collect();
    if chars.is_empty() {
        return Err("has an empty part".into());
    }
    let mut row = [0.0; 3];
    let mut t = 0.0;
    let mut i = 0;
    let read_digits = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_digit() || chars[*i] == '.') {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    while i < chars.len() {
        let mut sign = 1.0;
        if chars[i] == '+' || chars[i] == '-' {
            if chars[i] == '-' {
                sign = -1.0;
            }
            i += 1;
        }
        let num = read_digits(&mut i);
        let mut coef = None;
        if !num.is_empty() {
            let mut v = parse_cif_number(&num).ok_or_else(|| format!("has a bad number {num:?}"))?;
            if i < chars.len() && chars[i] == '/' {
                i += 1;
                let den = read_digits(&mut i);
                let d = parse_cif_number(&den)
                    .filter(|d| *d != 0.0)
                    .ok_or_else(|| format!("has a bad fraction {num}/{den}"))?;
                v /= d;
            }
            if i < chars.len() && chars[i] == '*' {
                i += 1;
            }
            coef = Some(v);
        }
        match chars.get(i) {
            Some(&c @ ('x' | 'y' | 'z')) => {
                let k = (c as u8 - b'x') as usize;
                row[k] += sign * coef.unwrap_or(1.0);
                i += 1;
            }
            _ => match coef {
                Some(v) => t += sign * v,
                None => {
                    return Err(match chars.get(i) {
                        Some(c) => format!("has an unexpected character {c:?}"),
                        None => "ends with a sign".into(),
                    });
                }
            },
        }
    }
    Ok((row, t))
}

/// Parse an operation such as `x,y+1/2,-z` or `-x+y, 1/2+x, z-0.25`. A fourth part `+1`/`-1` (time
/// reversal in magnetic CIFs) is ignored.
fn parse_symop(s: &str) -> Result<SymOp, String> {
    let mut parts: Vec<&str> = s.split(',').collect();
    if parts.len() == 4 && matches!(parts[3].trim(), "+1" | "-1" | "1") {
        parts.pop();
    }
    if parts.len() != 3 {
        return Err(format!("has {} comma-separated parts", parts.len()));
    }
    let mut rot = Matrix3::zeros();
    let mut trans = Vector3::zeros();
    for (i, p) in parts.iter().enumerate() {
        let (row, t) = parse_symop_part(p)?;
        for (j, v) in row.iter().enumerate() {
            rot[(i, j)] = *v;
        }
        trans[i] = t;
    }
    if rot.iter().any(|v| (v - v.round()).abs() > 1e-6) {
        return Err("has non-integer coefficients of x, y, z".into());
    }
    let det = rot.determinant();
    if (det.abs() - 1.0).abs() > 1e-6 {
        return Err(format!("has a rotation with determinant {}", (det * 1e6).round() / 1e6));
    }
    Ok(SymOp { rot, trans })
}

/// Every operation of Hall setting `h` (1..=530), centring translations included.
fn hall_operations(h: i32) -> Option<Vec<SymOp>> {
    let hs = moyo::data::HallSymbol::from_hall_number(h)?;
    let mut out = Vec::new();
    for op in hs.traverse() {
        let rot = op.rotation.map(|x| x as f64);
        out.push(SymOp { rot, trans: op.translation });
        for c in &hs.centering_translations {
            out.push(SymOp { rot, trans: (op.translation + c).map(|x| x.rem_euclid(1.0)) });
        }
    }
    Some(out)
}

fn hall_entries() -> impl Iterator<Item = moyo::data::HallSymbolEntry> {
    (1..=530).filter_map(moyo::data::hall_symbol_entry)
}

fn normalize_hall(s: &str) -> String {
    let s = s.replace('"', "=").replace('\'', "^").replace(',', " ").replace('(', " (").to_ascii_lowercase();
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.replace("( ", "(").replace(" )", ")")
}

/// Hall setting of a Hall symbol, and an extra origin shift (in 1/12) when the symbol adds one to a
/// tabulated setting.
fn find_hall(symbol: &str) -> Option<(i32, Option<Vector3<f64>>)> {
    let target = normalize_hall(symbol);
    if let Some(e) = hall_entries().find(|e| normalize_hall(e.hall_symbol) == target) {
        return Some((e.hall_number, None));
    }
    let (core, rest) = target.split_once(" (")?;
    let inner = rest.strip_suffix(')')?;
    let v: Vec<i32> = inner.split_whitespace().map(|x| x.parse::<i32>().ok()).collect::<Option<_>>()?;
    if v.len() != 3 {
        return None;
    }
    let e = hall_entries().find(|e| !e.hall_symbol.contains('(') && normalize_hall(e.hall_symbol) == core)?;
    Some((e.hall_number, Some(Vector3::new(v[0], v[1], v[2]).map(|x| f64::from(x) / 12.0))))
}

/// Operations of Hall setting `h` with the origin shifted by `shift` (fractional): (R, t + v − Rv).
fn shifted_operations(h: i32, shift: Option<Vector3<f64>>) -> Option<Vec<SymOp>> {
    let ops = hall_operations(h)?;
    Some(match shift {
        None => ops,
        Some(v) => ops
            .into_iter()
            .map(|o| SymOp { trans: (o.trans + v - o.rot * v).map(|x| x.rem_euclid(1.0)), rot: o.rot })
            .collect(),
    })
}

fn normalize_hm(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '_').collect::<String>().to_ascii_lowercase()
}

/// Short monoclinic symbol from a full one: `P 1 2_1/n 1` → `P 2_1/n`.
fn monoclinic_short(full: &str) -> Option<String> {
    let t: Vec<&str> = full.split_whitespace().collect();
    if t.len() == 4 && t[1..].iter().filter(|x| **x == "1").count() == 2 {
        let axis = t[1..].iter().find(|x| **x != "1")?;
        Some(format!("{}{}", t[0], axis))
    } else {
        None
    }
}

/// A normalised full symbol with the two-fold axes in front of planes dropped (`i21/b21/c21/a` →
/// `ibca`, `p4/m21/b2/m` → `p4/mbm`), so full symbols from other tables match moyo's. Only a `2/` or
/// `21/` right after a letter is dropped, which keeps `42/m` and `-32/m`; unambiguous for groups 16–230.
fn reduce_full(normalized: &str) -> String {
    let mut out = String::with_capacity(normalized.len());
    let mut rest = normalized;
    let mut prev_alpha = false;
    while let Some(c) = rest.chars().next() {
        if prev_alpha && let Some(r) = rest.strip_prefix("21/").or_else(|| rest.strip_prefix("2/")) {
            rest = r;
            prev_alpha = false;
            continue;
        }
        out.push(c);
        prev_alpha = c.is_ascii_alphabetic();
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// True when the cell looks rhombohedral (a = b = c, α = β = γ ≠ 90°).
fn is_rhombohedral_cell(p: &LatticeParams) -> bool {
    let rel = |x: f64, y: f64| (x - y).abs() <= 1e-3 * x.abs().max(y.abs());
    rel(p.a, p.b)
        && rel(p.b, p.c)
        && (p.alpha_deg - p.beta_deg).abs() < 1e-2
        && (p.beta_deg - p.gamma_deg).abs() < 1e-2
        && (p.alpha_deg - 90.0).abs() > 1e-2
}

/// Pick among settings of one symbol: by suffix (`1`, `2`, `H`, `R`), else by the cell for
/// rhombohedral groups, else the first.
fn choose_setting(cands: &[moyo::data::HallSymbolEntry], suffix: Option<&str>, cell: &LatticeParams) -> Option<i32> {
    if let Some(sfx) = suffix
        && let Some(e) = cands.iter().find(|e| e.setting.eq_ignore_ascii_case(sfx))
    {
        return Some(e.hall_number);
    }
    let has_r = cands.iter().any(|e| e.setting == "R");
    if has_r && suffix.is_none() && is_rhombohedral_cell(cell) {
        return cands.iter().find(|e| e.setting == "R").map(|e| e.hall_number);
    }
    cands.first().map(|e| e.hall_number)
}

/// Hall setting of a Hermann–Mauguin symbol (`P 42/m n m`, `Fm-3m`, `R -3 m :H`, `P 21/n`, `Cmca`).
fn find_hm(symbol: &str, cell: &LatticeParams) -> Option<i32> {
    let s = symbol.trim();
    let (core, mut suffix) = match s.split_once(':') {
        Some((c, x)) => (c.trim().to_string(), Some(x.trim().to_string())),
        None => (s.to_string(), None),
    };
    let mut core = core;
    if suffix.is_none() {
        // Trailing setting letters written without a colon: `R -3 m H`, `F d -3 m Z` (ICSD style).
        let toks: Vec<&str> = core.split_whitespace().collect();
        if toks.len() >= 2 {
            let last = toks[toks.len() - 1];
            let first = toks[0].to_ascii_uppercase();
            let mapped = match last {
                "H" | "R" if first.starts_with('R') => Some(last.to_string()),
                "S" => Some("1".to_string()),
                "Z" => Some("2".to_string()),
                _ => None,
            };
            if mapped.is_some() {
                suffix = mapped;
                core = toks[..toks.len() - 1].join(" ");
            }
        }
    }
    let suffix = suffix.map(|x| match x.to_ascii_uppercase().as_str() {
        "S" => "1".to_string(),
        "Z" => "2".to_string(),
        _ => x,
    });
    let target = normalize_hm(&core);
    if target.is_empty() {
        return None;
    }
    let entries: Vec<_> = hall_entries().collect();
    let exact: Vec<_> = entries
        .iter()
        .filter(|e| {
            normalize_hm(e.hm_short) == target
                || normalize_hm(e.hm_full) == target
                || monoclinic_short(e.hm_full).is_some_and(|m| normalize_hm(&m) == target)
        })
        .cloned()
        .collect();
    if !exact.is_empty() {
        return choose_setting(&exact, suffix.as_deref(), cell);
    }
    // Full symbols from other tables (`I 21/b 21/c 21/a`), older cubic symbols without the bar (`Fm3m`),
    // and the e-glide groups written with a, b or c (`Cmca`).
    let no_bar = target.replace('-', "");
    let reduced = reduce_full(&target);
    let loose: Vec<_> = entries
        .iter()
        .filter(|e| {
            let short = normalize_hm(e.hm_short);
            (e.number >= 16 && (reduce_full(&normalize_hm(e.hm_full)) == reduced || short == reduced))
                || (e.number >= 195 && short.replace('-', "") == no_bar)
                || ([39, 41, 64, 67, 68].contains(&e.number)
                    && short.len() == target.len()
                    && short
                        .chars()
                        .zip(target.chars())
                        .all(|(a, b)| a == b || (a == 'e' && matches!(b, 'a' | 'b' | 'c'))))
        })
        .cloned()
        .collect();
    choose_setting(&loose, suffix.as_deref(), cell)
}

/// Hall setting of an International Tables number (the first setting, or the rhombohedral one on a
/// rhombohedral cell).
fn find_number(n: i32, cell: &LatticeParams) -> Option<i32> {
    let cands: Vec<_> = hall_entries().filter(|e| e.number == n).collect();
    choose_setting(&cands, None, cell)
}

/// The symmetry operations of a block: listed operations, else Hall, H-M or number, else P1.
fn block_operations(b: &Block, cell: &LatticeParams, path: &str) -> Result<Vec<SymOp>, IoError> {
    const OP_TAGS: [&str; 4] = [
        "_symmetry_equiv_pos_as_xyz",
        "_space_group_symop_operation_xyz",
        "_space_group_symop_magn_operation_xyz",
        "_space_group_symop_magn_centering_xyz",
    ];
    if let Some(table) = find_table(b, &OP_TAGS[..2], "_") {
        let col = OP_TAGS[..2].iter().find_map(|t| table.col(t));
        let mut ops = Vec::new();
        for r in 0..table.rows.len() {
            let Some(item) = table.value(r, col) else { continue };
            let op = parse_symop(&item.val.text).map_err(|why| {
                IoError::at(
                    path,
                    item.line,
                    format!(
                        "symmetry operation {:?} {why}, expected three parts like \"x, y+1/2, -z\"",
                        shorten(&item.val.text)
                    ),
                )
            })?;
            ops.push(op);
        }
        if !ops.is_empty() {
            return Ok(ops);
        }
    }
    let mut unknown: Vec<(usize, String)> = Vec::new();
    for tag in ["_space_group_name_hall", "_symmetry_space_group_name_hall"] {
        if let Some(item) = b.scalar(tag) {
            match find_hall(&item.val.text).and_then(|(h, shift)| shifted_operations(h, shift)) {
                Some(ops) => return Ok(ops),
                None => unknown.push((item.line, format!("Hall symbol {:?}", shorten(&item.val.text)))),
            }
        }
    }
    for tag in ["_space_group_name_h-m_alt", "_symmetry_space_group_name_h-m", "_space_group_name_h-m"] {
        if let Some(item) = b.scalar(tag) {
            match find_hm(&item.val.text, cell).and_then(hall_operations) {
                Some(ops) => return Ok(ops),
                None => unknown.push((item.line, format!("Hermann-Mauguin symbol {:?}", shorten(&item.val.text)))),
            }
        }
    }
    for tag in ["_space_group_it_number", "_symmetry_int_tables_number"] {
        if let Some(item) = b.scalar(tag) {
            let v = number(item, tag, path)?;
            let n = v.round();
            if (v - n).abs() > 1e-9 || !(1.0..=230.0).contains(&n) {
                return Err(IoError::at(
                    path,
                    item.line,
                    format!("space group number {v}, expected an integer from 1 to 230"),
                ));
            }
            if let Some(ops) = find_number(n as i32, cell).and_then(hall_operations) {
                return Ok(ops);
            }
        }
    }
    if let Some((line, what)) = unknown.first() {
        return Err(IoError::at(
            path,
            *line,
            format!("unknown space group {what}, expected a standard symbol or a _symmetry_equiv_pos_as_xyz loop"),
        ));
    }
    Ok(vec![SymOp { rot: Matrix3::identity(), trans: Vector3::zeros() }])
}

// ---------------------------------------------------------------------------------------------------
// Structures
// ---------------------------------------------------------------------------------------------------

/// One contribution of an asymmetric-unit site to a position.
#[derive(Debug, Clone)]
struct Contribution {
    asym: usize,
    element: Element,
    occupancy: f64,
}

struct Position {
    frac: Vector3<f64>,
    contribs: Vec<Contribution>,
}

/// One row of the atom-site table.
struct AsymSite {
    label: String,
    element: Element,
    frac: Vector3<f64>,
    occupancy: f64,
    line: usize,
}

fn same_position(a: &Vector3<f64>, b: &Vector3<f64>, tol: f64) -> bool {
    (a - b).iter().all(|d| (d - d.round()).abs() < tol)
}

fn fmt_num(x: f64) -> String {
    let r = (x * 1e6).round() / 1e6;
    format!("{r}")
}

const ORDERING_HINT: &str =
    "Geode stores ordered structures only (pass order_partial_occupancies to keep the majority species)";

/// Why a block gave no structure (for the error when no block gives one).
enum Skip {
    NoAtoms,
    NoCell,
}

fn read_cell(b: &Block, path: &str) -> Result<Option<(LatticeParams, usize)>, IoError> {
    const LENGTHS: [&str; 3] = ["_cell_length_a", "_cell_length_b", "_cell_length_c"];
    const ANGLES: [&str; 3] = ["_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"];
    if !LENGTHS.iter().chain(ANGLES.iter()).any(|t| b.has_tag(t)) {
        return Ok(None);
    }
    let mut len = [0.0; 3];
    let mut first_line = usize::MAX;
    for (k, tag) in LENGTHS.iter().enumerate() {
        let Some(item) = b.scalar(tag) else {
            let why = if b.has_tag(tag) { "is unknown ('?')" } else { "is missing" };
            return Err(IoError::at(
                path,
                b.line,
                format!("{tag} {why} in {}, expected the cell length in Å", b.display_name()),
            ));
        };
        let v = number(item, tag, path)?;
        if v <= 0.0 {
            return Err(IoError::at(path, item.line, format!("cell length {tag} = {v} Å, expected a positive length")));
        }
        len[k] = v;
        first_line = first_line.min(item.line);
    }
    let mut ang = [90.0; 3];
    let mut angle_line = first_line;
    for (k, tag) in ANGLES.iter().enumerate() {
        if let Some(item) = b.scalar(tag) {
            let v = number(item, tag, path)?;
            if v <= 0.0 || v >= 180.0 {
                return Err(IoError::at(
                    path,
                    item.line,
                    format!("cell angle {tag} = {v}°, expected an angle strictly between 0° and 180°"),
                ));
            }
            ang[k] = v;
            angle_line = item.line;
        }
    }
    let [ca, cb, cg] = ang.map(|a: f64| a.to_radians().cos());
    let factor = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg;
    if factor <= 1e-10 {
        return Err(IoError::at(
            path,
            angle_line,
            format!(
                "cell angles α = {}°, β = {}°, γ = {}° give a cell of zero volume, expected angles of a three-dimensional cell",
                ang[0], ang[1], ang[2]
            ),
        ));
    }
    let p = LatticeParams { a: len[0], b: len[1], c: len[2], alpha_deg: ang[0], beta_deg: ang[1], gamma_deg: ang[2] };
    Ok(Some((p, first_line)))
}

/// The CIF default Cartesian frame (a along x, b in the xy plane, c* along z): frac = M⁻¹ cart.
fn cif_cartesian_to_frac(p: &LatticeParams) -> Option<Matrix3<f64>> {
    let (al, be, ga) = (p.alpha_deg.to_radians(), p.beta_deg.to_radians(), p.gamma_deg.to_radians());
    let cy = (al.cos() - be.cos() * ga.cos()) / ga.sin();
    let cz = (1.0 - be.cos().powi(2) - cy * cy).max(0.0).sqrt();
    let m = Matrix3::new(p.a, p.b * ga.cos(), p.c * be.cos(), 0.0, p.b * ga.sin(), p.c * cy, 0.0, 0.0, p.c * cz);
    m.try_inverse()
}

fn read_sites(b: &Block, table: &Table, cell: &LatticeParams, path: &str) -> Result<Vec<AsymSite>, IoError> {
    let c_label = table.col("_atom_site_label");
    let c_type = table.col("_atom_site_type_symbol");
    if c_label.is_none() && c_type.is_none() {
        return Err(IoError::at(
            path,
            table.line,
            "atom sites have neither _atom_site_type_symbol nor _atom_site_label, expected one of them to name the element",
        ));
    }
    let fract = ["_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"];
    let cartn = ["_atom_site_cartn_x", "_atom_site_cartn_y", "_atom_site_cartn_z"];
    let fcols = fract.map(|t| table.col(t));
    let ccols = cartn.map(|t| table.col(t));
    let (cols, tags, cart) = if fcols.iter().any(Option::is_some) {
        (fcols, fract, false)
    } else if ccols.iter().any(Option::is_some) {
        (ccols, cartn, true)
    } else {
        return Err(IoError::at(
            path,
            table.line,
            format!(
                "atom sites in {} have no coordinates, expected _atom_site_fract_x/y/z or _atom_site_Cartn_x/y/z",
                b.display_name()
            ),
        ));
    };
    if let Some(k) = cols.iter().position(Option::is_none) {
        return Err(IoError::at(
            path,
            table.line,
            format!("atom sites have no {} column, expected x, y and z coordinates", tags[k]),
        ));
    }
    let to_frac = if cart {
        Some(cif_cartesian_to_frac(cell).ok_or_else(|| {
            IoError::at(path, table.line, "cell cannot convert Cartesian coordinates, expected a regular cell")
        })?)
    } else {
        None
    };
    let c_occ = table.col("_atom_site_occupancy");
    let c_flag = table.col("_atom_site_calc_flag");
    let mut out = Vec::with_capacity(table.rows.len());
    for r in 0..table.rows.len() {
        let line = table.rows[r].first().map(|i| i.line).unwrap_or(table.line);
        if table.value(r, c_flag).is_some_and(|f| f.val.text.eq_ignore_ascii_case("dum")) {
            continue; // dummy atoms (e.g. centroids) are not atoms
        }
        let label_item = table.value(r, c_label);
        let type_item = table.value(r, c_type);
        let label =
            label_item.or(type_item).map(|i| i.val.text.trim().to_string()).unwrap_or_else(|| format!("site{}", r + 1));
        let element = type_item
            .and_then(|i| Element::from_label(&i.val.text).ok())
            .or_else(|| label_item.and_then(|i| Element::from_label(&i.val.text).ok()))
            .map(|(e, _)| e);
        let Some(element) = element else {
            let what = match (type_item, label_item) {
                (Some(t), _) => format!("type symbol {:?}", shorten(&t.val.text)),
                (None, Some(l)) => format!("label {:?}", shorten(&l.val.text)),
                (None, None) => "no type symbol or label".into(),
            };
            return Err(IoError::at(
                path,
                line,
                format!("unknown element in site {label:?} ({what}), expected an element symbol such as Fe or O2-"),
            ));
        };
        let mut xyz = [0.0; 3];
        for k in 0..3 {
            let Some(item) = table.cell(r, cols[k]) else {
                return Err(IoError::at(path, line, format!("site {label:?} has no {}, expected a number", tags[k])));
            };
            if item.val.is_null() {
                return Err(IoError::at(
                    path,
                    item.line,
                    format!("site {label:?} has {} = {:?}, expected a number", tags[k], item.val.text),
                ));
            }
            xyz[k] = number(item, tags[k], path)?;
        }
        let mut frac = Vector3::from(xyz);
        if let Some(m) = &to_frac {
            frac = m * frac;
        }
        let occupancy = match table.value(r, c_occ) {
            Some(item) => number(item, "_atom_site_occupancy", path)?,
            None => 1.0,
        };
        if occupancy < 0.0 {
            return Err(IoError::at(
                path,
                line,
                format!("site {label:?} has occupancy {occupancy}, expected a value between 0 and 1"),
            ));
        }
        if occupancy == 0.0 {
            continue; // an empty site holds nothing
        }
        out.push(AsymSite { label, element, frac, occupancy, line });
    }
    Ok(out)
}

fn block_structure(b: &Block, path: &str, opts: &CifOptions) -> Result<Result<Structure, Skip>, IoError> {
    const SITE_KEYS: [&str; 8] = [
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_cartn_x",
        "_atom_site_cartn_y",
        "_atom_site_cartn_z",
        "_atom_site_label",
        "_atom_site_type_symbol",
    ];
    let Some(table) = find_table(b, &SITE_KEYS, "_atom_site_") else {
        return Ok(Err(Skip::NoAtoms));
    };
    if table.rows.is_empty() {
        return Ok(Err(Skip::NoAtoms));
    }
    let Some((cell, cell_line)) = read_cell(b, path)? else {
        return Ok(Err(Skip::NoCell));
    };
    let lattice = Lattice::from_parameters(cell).map_err(|e| IoError::crystal(path, Some(cell_line), e))?;
    let ops = block_operations(b, &cell, path)?;
    let mut sites = read_sites(b, &table, &cell, path)?;
    if sites.is_empty() {
        return Ok(Err(Skip::NoAtoms));
    }
    if ops.len() > 1 {
        for s in &mut sites {
            for x in s.frac.iter_mut() {
                for ideal in [1.0 / 3.0, 2.0 / 3.0] {
                    if (*x / ideal - 1.0).abs() <= FRAC_SNAP_TOL + 1e-9 {
                        *x = ideal;
                    }
                }
            }
        }
    }
    let tol = if opts.site_tolerance_frac.is_finite() && opts.site_tolerance_frac > 0.0 {
        opts.site_tolerance_frac
    } else {
        1e-4
    };

    // Expand and merge.
    let mut positions: Vec<Position> = Vec::new();
    for (a, site) in sites.iter().enumerate() {
        for op in &ops {
            let f = wrap_frac(&op.apply(&site.frac));
            match positions.iter_mut().find(|p| same_position(&p.frac, &f, tol)) {
                Some(p) => {
                    if !p.contribs.iter().any(|c| c.asym == a) {
                        p.contribs.push(Contribution { asym: a, element: site.element, occupancy: site.occupancy });
                    }
                }
                None => positions.push(Position {
                    frac: f,
                    contribs: vec![Contribution { asym: a, element: site.element, occupancy: site.occupancy }],
                }),
            }
        }
    }

    // Resolve each position to one species.
    let mut species = Vec::with_capacity(positions.len());
    let mut coords = Vec::with_capacity(positions.len());
    let mut labels = Vec::with_capacity(positions.len());
    let mut notes: Vec<String> = Vec::new();
    for p in &positions {
        // Occupancy per element, in order of first appearance. Duplicate listings of a fully occupied
        // site (same element, each occupancy 1) count once.
        let mut per: Vec<(Element, f64, usize)> = Vec::new(); // (element, occupancy, first asym index)
        for c in &p.contribs {
            match per.iter_mut().find(|(e, _, _)| *e == c.element) {
                Some((_, occ, _)) => {
                    let full_dup = c.occupancy >= 1.0 - OCCUPANCY_TOL && *occ >= 1.0 - OCCUPANCY_TOL;
                    if !full_dup {
                        *occ += c.occupancy;
                    }
                }
                None => per.push((c.element, c.occupancy, c.asym)),
            }
        }
        let (best, best_occ, best_asym) = per.iter().copied().fold(per[0], |acc, x| if x.1 > acc.1 { x } else { acc });
        let ordered = per.len() == 1 && (best_occ - 1.0).abs() <= OCCUPANCY_TOL;
        if !ordered {
            let main = &sites[best_asym];
            if per.len() == 1 {
                if !opts.order_partial_occupancies {
                    let msg = if best_occ > 1.0 {
                        format!(
                            "site {:?} has occupancy {}, expected at most 1 ({ORDERING_HINT})",
                            main.label,
                            fmt_num(best_occ)
                        )
                    } else {
                        format!("site {:?} has occupancy {}; {ORDERING_HINT}", main.label, fmt_num(best_occ))
                    };
                    return Err(IoError::at(path, main.line, msg));
                }
                notes.push(format!(
                    "site {:?} (line {}): kept {} with occupancy {} as a full site",
                    main.label,
                    main.line,
                    best.symbol(),
                    fmt_num(best_occ)
                ));
            } else {
                if !opts.order_partial_occupancies {
                    let shared: Vec<String> = p
                        .contribs
                        .iter()
                        .map(|c| {
                            format!(
                                "{:?} ({}, occupancy {})",
                                sites[c.asym].label,
                                c.element.symbol(),
                                fmt_num(c.occupancy)
                            )
                        })
                        .collect();
                    let line = p.contribs.iter().map(|c| sites[c.asym].line).max().unwrap_or(main.line);
                    return Err(IoError::at(
                        path,
                        line,
                        format!("sites {} share one position; {ORDERING_HINT}", shared.join(" and ")),
                    ));
                }
                let dropped: Vec<String> = per
                    .iter()
                    .filter(|(e, _, _)| *e != best)
                    .map(|(e, occ, a)| {
                        format!(
                            "{} {:?} (occupancy {}, line {})",
                            e.symbol(),
                            sites[*a].label,
                            fmt_num(*occ),
                            sites[*a].line
                        )
                    })
                    .collect();
                notes.push(format!(
                    "site {:?} (line {}): kept {} (occupancy {}), dropped {}",
                    main.label,
                    main.line,
                    best.symbol(),
                    fmt_num(best_occ),
                    dropped.join(", ")
                ));
            }
        }
        species.push(best);
        coords.push(p.frac);
        labels.push(Json::String(sites[best_asym].label.clone()));
    }
    let mut s =
        Structure::from_frac(lattice, species, coords).map_err(|e| IoError::crystal(path, Some(table.line), e))?;
    s.site_properties.insert("label".into(), labels);
    s.properties.insert("cif_block".into(), Json::String(b.name.clone()));
    let mut unique: Vec<String> = Vec::new();
    for n in notes {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    if !unique.is_empty() {
        s.properties.insert("cif_ordering_notes".into(), Json::Array(unique.into_iter().map(Json::String).collect()));
    }
    Ok(Ok(s))
}

/// Parse CIF text: one [`Structure`] per data block with a cell and atom sites, in file order.
/// Blocks without atom sites (or without any cell tag) are skipped; an error when none is left.
pub fn parse(text: &str, path: &str, opts: &CifOptions) -> Result<Vec<Structure>, IoError> {
    let tokens = tokenize(text, path)?;
    if tokens.is_empty() {
        return Err(IoError::whole(path, "file has no CIF content, expected a data_ block with a cell and atom sites"));
    }
    let blocks = parse_blocks(tokens, path)?;
    let mut out = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut first_no_cell: Option<usize> = None;
    for b in &blocks {
        match block_structure(b, path, opts)? {
            Ok(s) => out.push(s),
            Err(Skip::NoAtoms) => skipped.push(format!("{} has no atom sites", b.display_name())),
            Err(Skip::NoCell) => {
                first_no_cell.get_or_insert(b.line);
                skipped.push(format!("{} has atom sites but no _cell_length_a/b/c", b.display_name()));
            }
        }
    }
    if out.is_empty() {
        let why = if skipped.is_empty() { "no data blocks".to_string() } else { skipped.join("; ") };
        let msg =
            format!("no structure in the file ({why}), expected a data_ block with _cell_length_a/b/c and atom sites");
        return Err(match first_no_cell {
            Some(line) => IoError::at(path, line, msg),
            None => IoError::whole(path, msg),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------------

/// A value as a CIF token: bare when possible, else quoted.
fn cif_value(s: &str) -> String {
    let needs_quote = s.is_empty()
        || s.chars().any(|c| c.is_whitespace())
        || s.starts_with(['_', '#', '$', '\'', '"', ';', '[', ']'])
        || s == "?"
        || s == "."
        || {
            let l = s.to_ascii_lowercase();
            l.starts_with("data_") || l.starts_with("save_") || l == "loop_" || l == "global_" || l == "stop_"
        };
    if !needs_quote {
        s.to_string()
    } else if !s.contains("' ") && !s.ends_with('\'') {
        format!("'{s}'")
    } else if !s.contains("\" ") && !s.ends_with('"') {
        format!("\"{s}\"")
    } else {
        format!("\n;{s}\n;")
    }
}

fn block_name_token(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).collect();
    if cleaned.is_empty() { "geode".into() } else { cleaned }
}

/// A label usable as a bare token that every reader keeps as it is.
fn plain_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_+-()*.".contains(c))
}

/// Site labels for the writer: the stored `label` site property when every label is plain and unique,
/// else pymatgen's `Fe0`, `O1`, … (symbol plus site index).
fn write_labels(s: &Structure) -> Vec<String> {
    let stored: Option<Vec<String>> = s
        .site_properties
        .get("label")
        .filter(|vals| vals.len() == s.n_sites())
        .and_then(|vals| vals.iter().map(|v| v.as_str().filter(|l| plain_label(l)).map(str::to_string)).collect());
    if let Some(labels) = stored {
        let mut sorted = labels.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() == labels.len() {
            return labels;
        }
    }
    s.species().iter().enumerate().map(|(i, e)| format!("{}{}", e.symbol(), i)).collect()
}

/// Fixed-point text without a negative zero.
fn fixed(x: f64, decimals: usize) -> String {
    let t = format!("{:.*}", decimals, x);
    if t.starts_with('-') && t[1..].chars().all(|c| c == '0' || c == '.') { t[1..].to_string() } else { t }
}

/// Render `s` as one P1 CIF data block named `block_name`, laid out like pymatgen's `CifWriter`.
pub fn write(s: &Structure, block_name: &str) -> String {
    let p = s.lattice.params();
    let comp = s.composition();
    let (reduced, factor) = comp.reduced_formula_and_factor();
    let z = factor.round().max(1.0) as u64;
    let mut out = String::with_capacity(1024 + 96 * s.n_sites());
    out.push_str("# generated using Geode\n");
    out.push_str(&format!("data_{}\n", block_name_token(block_name)));
    out.push_str("_symmetry_space_group_name_H-M   'P 1'\n");
    for (tag, v) in [
        ("_cell_length_a", p.a),
        ("_cell_length_b", p.b),
        ("_cell_length_c", p.c),
        ("_cell_angle_alpha", p.alpha_deg),
        ("_cell_angle_beta", p.beta_deg),
        ("_cell_angle_gamma", p.gamma_deg),
    ] {
        out.push_str(&format!("{tag}   {}\n", fixed(v, 8)));
    }
    out.push_str("_symmetry_Int_Tables_number   1\n");
    out.push_str(&format!("_chemical_formula_structural   {}\n", cif_value(&reduced)));
    out.push_str(&format!("_chemical_formula_sum   {}\n", cif_value(&comp.formula())));
    out.push_str(&format!("_cell_volume   {}\n", fixed(s.volume(), 8)));
    out.push_str(&format!("_cell_formula_units_Z   {z}\n"));
    out.push_str("loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n");
    out.push_str("loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n");
    out.push_str(" _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n");
    let labels = write_labels(s);
    for ((e, f), label) in s.species().iter().zip(s.frac_coords()).zip(&labels) {
        let w = wrap_frac(f);
        out.push_str(&format!(
            "  {}  {}  1  {}  {}  {}  1\n",
            e.symbol(),
            label,
            fixed(w[0], 10),
            fixed(w[1], 10),
            fixed(w[2], 10)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fmt::Display;

    use super::*;

    const P: &str = "x.cif";

    fn opts() -> CifOptions {
        CifOptions::default()
    }

    fn read(text: &str) -> Vec<Structure> {
        match parse(text, P, &opts()) {
            Ok(v) => v,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn read_one(text: &str) -> Structure {
        let mut v = read(text);
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn err(text: &str) -> String {
        match parse(text, P, &opts()) {
            Ok(v) => panic!("expected an error, got {} structures", v.len()),
            Err(e) => e.to_string(),
        }
    }

    fn el(s: &str) -> Element {
        Element::from_symbol(s).unwrap()
    }

    fn count(s: &Structure, sym: &str) -> usize {
        s.species().iter().filter(|e| e.symbol() == sym).count()
    }

    fn cell(
        a: impl Display,
        b: impl Display,
        c: impl Display,
        al: impl Display,
        be: impl Display,
        ga: impl Display,
    ) -> String {
        format!(
            "_cell_length_a {a}\n_cell_length_b {b}\n_cell_length_c {c}\n_cell_angle_alpha {al}\n_cell_angle_beta {be}\n_cell_angle_gamma {ga}\n"
        )
    }

    const SITES_HEAD: &str =
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n";

    fn nacl_asym(symmetry: &str) -> String {
        format!(
            "data_NaCl\n{}{symmetry}\n{SITES_HEAD}Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n",
            cell(5.64, 5.64, 5.64, 90, 90, 90)
        )
    }

    fn has_site(s: &Structure, sym: &str, f: [f64; 3]) -> bool {
        let f = Vector3::from(f);
        s.species().iter().zip(s.frac_coords()).any(|(e, g)| e.symbol() == sym && same_position(g, &f, 1e-6))
    }

    // ---- tokenizer ----

    #[test]
    fn tokenizer_handles_quotes_text_fields_comments_and_lines() {
        let text = "# comment\ndata_a\n_t1 'it''s' # c\n_t2 \"a b\"\n_t3\n;line one\nline two\n;\n_t4 'x'y z' _t5 ?\n_t6 a#b\nloop_ _l 1 2\n";
        let toks = tokenize(text, P).unwrap();
        let vals: Vec<(String, bool, usize)> = toks
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Value(v) => Some((v.text.clone(), v.quoted, t.line)),
                _ => None,
            })
            .collect();
        assert_eq!(vals[0], ("it''s".into(), true, 3));
        assert_eq!(vals[1], ("a b".into(), true, 4));
        assert_eq!(vals[2], ("line one\nline two".into(), true, 6));
        assert_eq!(vals[3], ("x'y z".into(), true, 9));
        assert_eq!(vals[4], ("?".into(), false, 9));
        assert_eq!(vals[5], ("a#b".into(), false, 10));
        assert_eq!(vals[6].2, 11);
        assert_eq!(toks[0], Token { tok: Tok::Data("a".into()), line: 2 });
        assert!(toks.iter().any(|t| t.tok == Tok::Tag("_t5".into()) && t.line == 9));
        assert!(toks.iter().any(|t| t.tok == Tok::Loop && t.line == 11));
        // A quoted '?' is a string, not unknown.
        assert!(!Val { text: "?".into(), quoted: true }.is_null());
    }

    #[test]
    fn numbers_with_uncertainties() {
        for (t, v) in [
            ("5.431(2)", 5.431),
            ("0.25(1)", 0.25),
            ("-.5", -0.5),
            ("1e-3", 1e-3),
            ("+2.", 2.0),
            ("3", 3.0),
            ("1.5E+2(12)", 150.0),
            (".5(3)", 0.5),
        ] {
            assert_eq!(parse_cif_number(t), Some(v), "{t}");
        }
        for t in ["", "nan", "inf", "1.2.3", "(2)", "1(2", "1(a)", "e5", "1e", "--1", "0x10", "1/2"] {
            assert_eq!(parse_cif_number(t), None, "{t}");
        }
    }

    #[test]
    fn symmetry_operation_strings() {
        let op = parse_symop("x,y+1/2,-z").unwrap();
        assert_eq!(op.rot, Matrix3::new(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0));
        assert_eq!(op.trans, Vector3::new(0.0, 0.5, 0.0));
        let op = parse_symop("-x+y, 1/2+x, z-0.25").unwrap();
        assert_eq!(op.rot, Matrix3::new(-1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0));
        assert_eq!(op.trans, Vector3::new(0.0, 0.5, -0.25));
        assert_eq!(parse_symop("+x,+y,+z").unwrap().rot, Matrix3::identity());
        let op = parse_symop("x-y,x,z+5/6").unwrap();
        assert!((op.trans[2] - 5.0 / 6.0).abs() < 1e-15);
        let op = parse_symop("X, Y, Z+1/2, +1").unwrap();
        assert_eq!(op.trans, Vector3::new(0.0, 0.0, 0.5));
        assert!(parse_symop("x,y").unwrap_err().contains("2 comma-separated parts"));
        assert!(parse_symop("x,q,z").unwrap_err().contains("'q'"));
        assert!(parse_symop("x,x,z").unwrap_err().contains("determinant 0"));
        assert!(parse_symop("x,y+,z").unwrap_err().contains("ends with a sign"));
        assert!(parse_symop("x,y,z+1/0").is_err());
        assert!(parse_symop("x,,z").is_err());
    }

    // ---- symmetry expansion ----

    #[test]
    fn nacl_from_operations_symbols_hall_and_number() {
        let ops_loop = {
            let mut s = String::from("loop_\n_space_group_symop_id\n_space_group_symop_operation_xyz\n");
            for (i, op) in hall_operations(523).unwrap().iter().enumerate() {
                let part = |k: usize| {
                    let mut t = String::new();
                    for (j, v) in ["x", "y", "z"].iter().enumerate() {
                        let c = op.rot[(k, j)];
                        if c != 0.0 {
                            t.push_str(if c > 0.0 { "+" } else { "-" });
                            t.push_str(v);
                        }
                    }
                    if op.trans[k] != 0.0 {
                        t.push_str(&format!("+{}", op.trans[k]));
                    }
                    t
                };
                s.push_str(&format!("{} '{}, {}, {}'\n", i + 1, part(0), part(1), part(2)));
            }
            s
        };
        for sym in [
            ops_loop.as_str(),
            "_symmetry_space_group_name_H-M 'F m -3 m'",
            "_space_group_name_H-M_alt 'Fm-3m'",
            "_symmetry_space_group_name_H-M 'Fm3m'",
            "_space_group_name_Hall '-F 4 2 3'",
            "_space_group_IT_number 225",
            "_symmetry_Int_Tables_number 225",
        ] {
            let s = read_one(&nacl_asym(sym));
            assert_eq!(s.n_sites(), 8, "{sym}");
            assert_eq!(count(&s, "Na"), 4, "{sym}");
            assert!(has_site(&s, "Cl", [0.0, 0.0, 0.5]), "{sym}");
            assert!(has_site(&s, "Na", [0.5, 0.0, 0.5]), "{sym}");
            let labels = &s.site_properties["label"];
            assert_eq!(labels.len(), 8);
            assert_eq!(labels.iter().filter(|l| l.as_str() == Some("Cl1")).count(), 4);
        }
    }

    #[test]
    fn rutile_from_hermann_mauguin_only() {
        let text = format!(
            "data_rutile\n{}_symmetry_space_group_name_H-M 'P 42/m n m'\n{SITES_HEAD}Ti1 Ti 0 0 0\nO1 O 0.3053(2) 0.3053(2) 0\n",
            cell(4.5937, 4.5937, 2.9587, 90, 90, 90)
        );
        let s = read_one(&text);
        assert_eq!(s.n_sites(), 6);
        assert_eq!(count(&s, "Ti"), 2);
        assert!(has_site(&s, "Ti", [0.5, 0.5, 0.5]));
        assert!(has_site(&s, "O", [0.6947, 0.6947, 0.0]));
        assert!(has_site(&s, "O", [0.8053, 0.1947, 0.5]));
        assert_eq!(s.properties["cif_block"], "rutile");
        // Same from the symbol with underscores and without spaces.
        let text2 = text.replace("'P 42/m n m'", "P4_2/mnm");
        assert_eq!(read_one(&text2).n_sites(), 6);
    }

    /// Bi2Te3 (R-3m, hexagonal setting): Te1 3a, Bi 6c, Te2 6c → 15 sites.
    fn bi2te3(symbol: &str, cellp: &str) -> String {
        format!(
            "data_Bi2Te3\n{cellp}_symmetry_space_group_name_H-M '{symbol}'\n{SITES_HEAD}Te1 Te 0 0 0\nBi1 Bi 0 0 0.4001\nTe2 Te 0 0 0.7907\n"
        )
    }

    #[test]
    fn rhombohedral_groups_in_both_settings() {
        let hex = cell(4.386, 4.386, 30.497, 90, 90, 120);
        for sym in ["R -3 m", "R -3 m :H", "R-3m H", "R -3 2/m"] {
            let s = read_one(&bi2te3(sym, &hex));
            assert_eq!(s.n_sites(), 15, "{sym}");
            assert_eq!(count(&s, "Bi"), 6);
            assert!(has_site(&s, "Te", [2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]), "{sym}");
        }
        // The same crystal on its rhombohedral cell: x, x, x positions.
        let rho = cell(10.473, 10.473, 10.473, 24.17, 24.17, 24.17);
        let text = format!(
            "data_r\n{rho}_symmetry_space_group_name_H-M 'R -3 m'\n{SITES_HEAD}Te1 Te 0 0 0\nBi1 Bi 0.4001 0.4001 0.4001\nTe2 Te 0.7907 0.7907 0.7907\n"
        );
        let s = read_one(&text);
        assert_eq!(s.n_sites(), 5);
        let s = read_one(&text.replace("'R -3 m'", "'R -3 m :R'"));
        assert_eq!(s.n_sites(), 5);
        let s = read_one(&text.replace("_symmetry_space_group_name_H-M 'R -3 m'", "_space_group_IT_number 166"));
        assert_eq!(s.n_sites(), 5);
    }

    #[test]
    fn hermann_mauguin_lookup_variants() {
        let c = LatticeParams { a: 5.0, b: 6.0, c: 7.0, alpha_deg: 90.0, beta_deg: 100.0, gamma_deg: 90.0 };
        let num = |h: i32| moyo::data::hall_symbol_entry(h).unwrap().number;
        assert_eq!(find_hm("P 21/c", &c), Some(81));
        assert_eq!(find_hm("P 1 21/c 1", &c), Some(81));
        assert_eq!(find_hm("P 21/n", &c), Some(82));
        assert_eq!(find_hm("Pnma", &c).map(num), Some(62));
        assert_eq!(find_hm("P b n m", &c).map(num), Some(62));
        assert_eq!(find_hm("Cmca", &c).map(num), Some(64));
        assert_eq!(find_hm("C m c e", &c).map(num), Some(64));
        assert_eq!(find_hm("F d -3 m", &c), Some(525));
        assert_eq!(find_hm("F d -3 m :2", &c), Some(526));
        assert_eq!(find_hm("Fd-3mZ", &c), None); // a suffix needs a space or a colon
        assert_eq!(find_hm("F d -3 m Z", &c), Some(526));
        assert_eq!(find_hm("P 63/m m c", &c).map(num), Some(194));
        assert_eq!(find_hm("Q 1", &c), None);
        assert_eq!(find_hm("I 21/b 21/c 21/a", &c).map(num), Some(73));
        assert_eq!(find_hm("P 4/m 21/b 2/m", &c).map(num), Some(127));
        assert_eq!(find_hm("P 42/m 2/m 2/c", &c).map(num), Some(131));
        assert_eq!(find_hm("P 4/m 2/m 2/m", &c).map(num), Some(123));
        assert_eq!(reduce_full("p42/m2/m2/c"), "p42/mmc");
        assert_eq!(find_hall("-P 2ybc"), Some((81, None)));
        assert_eq!(find_hall("R 3 -2\""), Some((hall_of("R 3 -2\""), None)));
        assert_eq!(find_hall("P 31 2 (0 0 4)").map(|x| x.0).map(num), Some(151));
        let (h, shift) = find_hall("-P 4 2 3 (1 1 1)").unwrap();
        assert_eq!(num(h), 221);
        assert!(shift.is_some());
        assert_eq!(find_hall("-P 4 2 3 (nan 0 0)"), None);
    }

    fn hall_of(symbol: &str) -> i32 {
        hall_entries().find(|e| normalize_hall(e.hall_symbol) == normalize_hall(symbol)).unwrap().hall_number
    }

    #[test]
    fn hall_origin_shift_moves_the_inversion_centre() {
        // Inversion at (1/24, 1/24, 1/24) instead of the origin: -x+1/12 for each axis.
        let ops = shifted_operations(2, Some(Vector3::new(1.0, 1.0, 1.0) / 24.0)).unwrap();
        let inv = ops.iter().find(|o| o.rot == -Matrix3::identity()).unwrap();
        assert!((inv.trans - Vector3::repeat(1.0 / 12.0)).norm() < 1e-12);
    }

    #[test]
    fn centred_operations_include_translations() {
        assert_eq!(hall_operations(523).unwrap().len(), 192); // Fm-3m: 48 × 4
        assert_eq!(hall_operations(458).unwrap().len(), 36); // R-3m hexagonal: 12 × 3
        assert_eq!(hall_operations(1).unwrap().len(), 1);
    }

    #[test]
    fn no_symmetry_means_p1() {
        let s =
            read_one(&format!("data_p1\n{}{SITES_HEAD}Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n", cell(3, 3, 3, 90, 90, 90)));
        assert_eq!(s.n_sites(), 2);
    }

    #[test]
    fn one_third_snapping_merges_hexagonal_images() {
        // 0.3333 / 0.6667 with the P 63/m m c operations: 2 Ni (2a) + 2 As (2c) after snapping.
        let text = format!(
            "data_NiAs\n{}_symmetry_space_group_name_H-M 'P 63/m m c'\n{SITES_HEAD}Ni1 Ni 0 0 0\nAs1 As 0.3333 0.6667 0.25\n",
            cell(3.619, 3.619, 5.034, 90, 90, 120)
        );
        let s = read_one(&text);
        assert_eq!(s.n_sites(), 4);
        assert!(has_site(&s, "As", [2.0 / 3.0, 1.0 / 3.0, 0.75]));
    }

    #[test]
    fn cartesian_coordinates_when_fractional_are_missing() {
        let text = format!(
            "data_c\n{}loop_\n_atom_site_label\n_atom_site_Cartn_x\n_atom_site_Cartn_y\n_atom_site_Cartn_z\nNa1 0 0 0\nCl1 2 3 2.5\n",
            cell(4, 6, 5, 90, 90, 90)
        );
        let s = read_one(&text);
        assert!(has_site(&s, "Cl", [0.5, 0.5, 0.5]));
        // Oblique cell: the fractional result does not depend on the orientation of the Cartesian frame.
        let p = LatticeParams { a: 4.0, b: 5.0, c: 6.0, alpha_deg: 80.0, beta_deg: 95.0, gamma_deg: 110.0 };
        let m = cif_cartesian_to_frac(&p).unwrap().try_inverse().unwrap();
        let f = Vector3::new(0.1, 0.2, 0.3);
        let cart = m * f;
        let text = format!(
            "data_c\n{}loop_\n_atom_site_type_symbol\n_atom_site_Cartn_x\n_atom_site_Cartn_y\n_atom_site_Cartn_z\nO {} {} {}\n",
            cell(4, 5, 6, 80, 95, 110),
            cart[0],
            cart[1],
            cart[2]
        );
        let s = read_one(&text);
        assert!((s.frac_coords()[0] - f).norm() < 1e-9);
        // And the Cartesian frame is a real orthogonalisation: lengths agree.
        assert!(((m * Vector3::new(0.0, 0.0, 1.0)).norm() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn same_species_listed_twice_merges_and_split_sites_add_up() {
        let base = cell(4, 4, 4, 90, 90, 90);
        let s = read_one(&format!("data_d\n{base}{SITES_HEAD}Fe1 Fe 0 0 0\nFe2 Fe 1.00001 0 0\n"));
        assert_eq!(s.n_sites(), 1);
        assert_eq!(s.site_properties["label"][0], "Fe1");
        let head = SITES_HEAD.replace("_fract_z\n", "_fract_z\n_atom_site_occupancy\n");
        let s = read_one(&format!("data_d\n{base}{head}Fe1 Fe 0 0 0 0.5\nFe2 Fe 0 0 0 0.5\n"));
        assert_eq!(s.n_sites(), 1);
        // Two halves of different species are disorder.
        let e = err(&format!("data_d\n{base}{head}Fe1 Fe 0 0 0 0.5\nCo2 Co 0 0 0 0.5\n"));
        assert!(e.contains("share one position"), "{e}");
        // Zero occupancy: nothing there.
        let s = read_one(&format!("data_d\n{base}{head}Fe1 Fe 0 0 0 1\nCo2 Co 0 0 0 0\n"));
        assert_eq!(s.species(), &[el("Fe")]);
    }

    // ---- occupancies ----

    fn partial_text() -> String {
        format!(
            "data_p\n{}loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\nFe1 Fe 0 0 0 0.5\nMn1 Mn 0 0 0 0.3\nO1 O 0.5 0.5 0.5 1.0\nCu1 Cu 0.5 0 0 0.75\n",
            cell(4, 4, 4, 90, 90, 90)
        )
    }

    #[test]
    fn partial_occupancy_is_an_error_by_default() {
        let e = err(&partial_text());
        assert!(
            e.contains("sites \"Fe1\" (Fe, occupancy 0.5) and \"Mn1\" (Mn, occupancy 0.3) share one position"),
            "{e}"
        );
        assert!(e.contains("order_partial_occupancies") && e.contains("line 16, x.cif"), "{e}");
        let single =
            format!("data_p\n{}{}_atom_site_occupancy\nFe1 Fe 0 0 0 0.5\n", cell(4, 4, 4, 90, 90, 90), SITES_HEAD);
        let e = err(&single);
        assert_eq!(
            e,
            "site \"Fe1\" has occupancy 0.5; Geode stores ordered structures only (pass order_partial_occupancies to keep the majority species) (line 15, x.cif)"
        );
        let over = single.replace("0 0 0 0.5", "0 0 0 1.2(1)");
        assert!(err(&over).contains("occupancy 1.2, expected at most 1"));
        // Close enough to 1 is full.
        assert_eq!(read_one(&single.replace("0 0 0 0.5", "0 0 0 0.99995")).n_sites(), 1);
    }

    #[test]
    fn ordering_keeps_the_majority_species_and_notes_the_rest() {
        let o = CifOptions { order_partial_occupancies: true, ..CifOptions::default() };
        let s = parse(&partial_text(), P, &o).unwrap().remove(0);
        assert_eq!(s.n_sites(), 3);
        assert_eq!(s.species(), &[el("Fe"), el("O"), el("Cu")]);
        let notes = s.properties["cif_ordering_notes"].as_array().unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].as_str().unwrap().contains("kept Fe (occupancy 0.5), dropped Mn \"Mn1\" (occupancy 0.3, line 16)"),
            "{notes:?}"
        );
        assert!(notes[1].as_str().unwrap().contains("\"Cu1\" (line 18): kept Cu with occupancy 0.75"), "{notes:?}");
        assert_eq!(s.site_properties["label"][0], "Fe1");
    }

    // ---- blocks and properties ----

    #[test]
    fn multiple_blocks_skip_those_without_atoms() {
        let text = format!(
            "data_global\n_publ_section_title\n;\nA paper\n;\n{}\n{}",
            nacl_asym("_space_group_IT_number 225"),
            nacl_asym("").replace("data_NaCl", "data_second")
        );
        let v = read(&text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].n_sites(), 8);
        assert_eq!(v[1].n_sites(), 2);
        assert_eq!(v[1].properties["cif_block"], "second");
    }

    #[test]
    fn dotted_tags_and_single_atom_without_loop() {
        let text = "data_x\n_cell.length_a 3\n_cell.length_b 3\n_cell.length_c 3\n_cell.angle_alpha 90\n_cell.angle_beta 90\n_cell.angle_gamma 90\n_atom_site.label Po1\n_atom_site.fract_x 0\n_atom_site.fract_y 0\n_atom_site.fract_z 0\n";
        let s = read_one(text);
        assert_eq!(s.species(), &[el("Po")]);
    }

    #[test]
    fn labels_decide_the_element_without_type_symbols() {
        let text = format!(
            "data_x\n{}loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nFe2+ 0 0 0\nO1 0.5 0.5 0.5\n'Cl 2' 0.5 0 0\n",
            cell(4, 4, 4, 90, 90, 90)
        );
        let s = read_one(&text);
        assert_eq!(s.species(), &[el("Fe"), el("O"), el("Cl")]);
        assert_eq!(s.site_properties["label"][2], "Cl 2");
    }

    // ---- errors ----

    #[test]
    fn error_unterminated_quote_and_text_field() {
        let e = err("data_a\n_cell_length_a 'abc\n");
        assert!(e.contains("unterminated quoted value") && e.contains("line 2"), "{e}");
        let e = err("data_a\n_title\n;some text\nmore\n");
        assert!(e.contains("text field opened with ';' is never closed") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn error_truncated_file() {
        let e = err("data_a\n_cell_length_a 4\n_cell_length_b");
        assert!(e.contains("file ends after tag _cell_length_b, expected its value (line 3"), "{e}");
        let e = err("data_a\n_cell_length_a\n_cell_length_b 4\n");
        assert!(e.contains("tag _cell_length_a is followed by tag _cell_length_b") && e.contains("line 2"), "{e}");
        let e = err("data_a\nloop_\n");
        assert!(e.contains("loop_ is followed by the end of the file") && e.contains("line 2"), "{e}");
        let e = err("");
        assert!(e.contains("no CIF content"), "{e}");
        let e = err("data_a\n_cell_length_a 4\n");
        assert!(e.contains("data_a has no atom sites"), "{e}");
    }

    #[test]
    fn error_missing_loop_values_names_the_loop_line() {
        let text = format!("data_a\n{}{SITES_HEAD}Na1 Na 0 0 0\nCl1 Cl 0.5 0.5\n", cell(4, 4, 4, 90, 90, 90));
        let e = err(&text);
        assert!(
            e.contains(
                "loop with 5 tags (_atom_site_label, _atom_site_type_symbol, _atom_site_fract_x, _atom_site_fract_y, …) has 9 values"
            ),
            "{e}"
        );
        assert!(e.contains("(line 8, x.cif)"), "{e}");
    }

    #[test]
    fn error_non_finite_numbers() {
        let text = nacl_asym("").replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.5 NaN 0.5");
        let e = err(&text);
        assert!(e.contains("_atom_site_fract_y is \"NaN\", expected a finite number (line 16"), "{e}");
        let e = err(&nacl_asym("").replace("_cell_length_b 5.64", "_cell_length_b inf"));
        assert!(e.contains("_cell_length_b is \"inf\"") && e.contains("line 3"), "{e}");
        let e = err(&nacl_asym("").replace("_cell_length_b 5.64", "_cell_length_b 1e999"));
        assert!(e.contains("expected a finite number"), "{e}");
        let e = err(&nacl_asym("").replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.5 abc 0.5"));
        assert!(e.contains("_atom_site_fract_y is \"abc\", expected a number"), "{e}");
    }

    #[test]
    fn error_bad_cells() {
        let e = err(&nacl_asym("").replace("_cell_length_c 5.64", "_cell_length_c -1"));
        assert!(e.contains("cell length _cell_length_c = -1 Å, expected a positive length (line 4"), "{e}");
        let e = err(&nacl_asym("").replace("_cell_length_a 5.64", "_cell_length_a 0"));
        assert!(e.contains("_cell_length_a = 0 Å"), "{e}");
        let bad = nacl_asym("")
            .replace("_cell_angle_alpha 90", "_cell_angle_alpha 120")
            .replace("_cell_angle_beta 90", "_cell_angle_beta 120")
            .replace("_cell_angle_gamma 90", "_cell_angle_gamma 120");
        let e = err(&bad);
        assert!(e.contains("give a cell of zero volume") && e.contains("line 7"), "{e}");
        let e = err(&nacl_asym("").replace("_cell_angle_beta 90", "_cell_angle_beta 180"));
        assert!(e.contains("_cell_angle_beta = 180°") && e.contains("line 6"), "{e}");
        let e = err(&nacl_asym("")
            .replace("_cell_angle_alpha 90", "_cell_angle_alpha 10")
            .replace("_cell_angle_beta 90", "_cell_angle_beta 10"));
        assert!(e.contains("zero volume"), "{e}");
    }

    #[test]
    fn error_missing_cell_tags() {
        let e = err(&nacl_asym("").replace("_cell_length_b 5.64\n", ""));
        assert!(e.contains("_cell_length_b is missing in data_NaCl") && e.contains("line 1"), "{e}");
        let no_cell = format!("data_a\n{SITES_HEAD}Na1 Na 0 0 0\n");
        let e = err(&no_cell);
        assert!(e.contains("data_a has atom sites but no _cell_length_a/b/c") && e.contains("line 1"), "{e}");
        let e = err(&nacl_asym("").replace("_cell_length_a 5.64", "_cell_length_a ?"));
        assert!(e.contains("_cell_length_a is unknown"), "{e}");
        // Missing angles take the dictionary default of 90°.
        let s = read_one(&nacl_asym("").replace("_cell_angle_gamma 90\n", ""));
        assert!((s.lattice.params().gamma_deg - 90.0).abs() < 1e-9);
    }

    #[test]
    fn error_missing_coordinates() {
        let text =
            format!("data_a\n{}loop_\n_atom_site_label\n_atom_site_occupancy\nNa1 1\n", cell(4, 4, 4, 90, 90, 90));
        let e = err(&text);
        assert!(e.contains("atom sites in data_a have no coordinates") && e.contains("line 8"), "{e}");
        let text = format!(
            "data_a\n{}loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\nNa1 0 0\n",
            cell(4, 4, 4, 90, 90, 90)
        );
        let e = err(&text);
        assert!(e.contains("no _atom_site_fract_z column") && e.contains("line 8"), "{e}");
        let e = err(&nacl_asym("").replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.5 ? 0.5"));
        assert!(e.contains("site \"Cl1\" has _atom_site_fract_y = \"?\", expected a number (line 16"), "{e}");
    }

    #[test]
    fn error_unknown_element_names_label_and_line() {
        let text = format!("data_bad\n{}{SITES_HEAD}Na1 Na 0 0 0\nQ1 Qq 0.5 0.5 0.5\n", cell(4, 4, 4, 90, 90, 90));
        let e = err(&text);
        assert_eq!(
            e,
            "unknown element in site \"Q1\" (type symbol \"Qq\"), expected an element symbol such as Fe or O2- (line 15, x.cif)"
        );
    }

    #[test]
    fn error_bad_symmetry() {
        let text = nacl_asym("loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n'x,y'\n");
        let e = err(&text);
        assert!(e.contains("symmetry operation \"x,y\" has 2 comma-separated parts") && e.contains("line 11"), "{e}");
        let e = err(&nacl_asym("_symmetry_space_group_name_H-M 'X 99'"));
        assert!(e.contains("unknown space group Hermann-Mauguin symbol \"X 99\"") && e.contains("line 8"), "{e}");
        let e = err(&nacl_asym("_space_group_IT_number 231"));
        assert!(e.contains("space group number 231, expected an integer from 1 to 230"), "{e}");
        // An unknown Hall symbol falls back to a known H-M symbol.
        let s = read_one(&nacl_asym("_space_group_name_Hall 'weird'\n_space_group_name_H-M_alt 'F m -3 m'"));
        assert_eq!(s.n_sites(), 8);
    }

    #[test]
    fn error_control_characters_and_stray_values() {
        let e = err("data_a\n_cell_length_a 4\u{1}\n");
        assert!(e.contains("control character U+0001") && e.contains("line 2"), "{e}");
        let e = err("\u{0}\u{7f}garbage");
        assert!(e.contains("control character"), "{e}");
        let e = err("data_a\n_cell_length_a 4 5\n");
        assert!(e.contains("value \"5\" does not follow a tag") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn accepts_bom_crlf_cr_and_utf8_text() {
        let text = nacl_asym("_space_group_IT_number 225")
            .replace("data_NaCl\n", "data_NaCl\n_publ_author_name 'Schönfeld, Å.' # ü\n");
        assert_eq!(read_one(&format!("\u{feff}{text}")).n_sites(), 8);
        assert_eq!(read_one(&text.replace('\n', "\r\n")).n_sites(), 8);
        assert_eq!(read_one(&text.replace('\n', "\r")).n_sites(), 8);
        let with_field = text.replace("data_NaCl\n", "data_NaCl\n_title\n;\nü\n;\n");
        assert_eq!(read_one(&with_field.replace('\n', "\r\n")).n_sites(), 8);
    }

    #[test]
    fn never_panics_on_mutated_files() {
        let (text, _) = asset("quoted_labels_uncertainties.cif");
        let chars: Vec<char> = text.chars().collect();
        for i in (0..chars.len()).step_by(3) {
            for c in ['\'', '"', ';', '_', '#', '\n', '.'] {
                let mut m = chars.clone();
                m[i] = c;
                let t: String = m.into_iter().collect();
                let _ = parse(&t, P, &opts());
            }
        }
    }

    #[test]
    fn never_panics_on_prefixes_of_a_valid_file() {
        let full = write(&read_one(&nacl_asym("_space_group_IT_number 225")), "NaCl");
        let text = format!("{}\n{}", nacl_asym("_symmetry_space_group_name_H-M 'F m -3 m'"), full);
        for (i, _) in text.char_indices() {
            let _ = parse(&text[..i], P, &opts());
        }
    }

    // ---- writer ----

    fn sample() -> Structure {
        let l = Lattice::from_parameters(LatticeParams {
            a: 3.1,
            b: 4.2,
            c: 5.3,
            alpha_deg: 81.0,
            beta_deg: 97.0,
            gamma_deg: 105.5,
        })
        .unwrap();
        Structure::from_frac(
            l,
            vec![el("Fe"), el("O"), el("O"), el("Li")],
            vec![
                Vector3::new(0.0, 0.0, 0.0),
                Vector3::new(0.123456789012, 0.987654321098, 0.5),
                Vector3::new(1.25, -0.1, 0.999999999),
                Vector3::new(0.3, 0.7, 0.1),
            ],
        )
        .unwrap()
    }

    #[test]
    fn writer_layout_like_pymatgen() {
        let text = write(&sample(), "my block");
        assert!(text.contains("data_my_block\n"));
        assert!(text.contains("_symmetry_space_group_name_H-M   'P 1'\n"));
        assert!(text.contains("_cell_length_a   3.10000000\n"));
        assert!(text.contains("_cell_angle_gamma   105.50000000\n"));
        assert!(text.contains("_symmetry_Int_Tables_number   1\n"));
        assert!(text.contains("_chemical_formula_structural   LiFeO2\n"), "{text}");
        assert!(text.contains("_chemical_formula_sum   'Li1 Fe1 O2'\n"), "{text}");
        assert!(text.contains("_cell_formula_units_Z   1\n"));
        assert!(text.contains("  1  'x, y, z'\n"));
        assert!(text.contains("  Fe  Fe0  1  0.0000000000  0.0000000000  0.0000000000  1\n"), "{text}");
        assert!(text.contains("  O  O2  1  0.2500000000  0.9000000000  0.9999999990  1\n"), "{text}");
    }

    #[test]
    fn read_back_our_own_output() {
        let s = sample();
        let text = write(&s, "sample");
        let r = read_one(&text);
        assert_eq!(r.species(), s.species());
        let (p, q) = (s.lattice.params(), r.lattice.params());
        for (x, y) in [
            (p.a, q.a),
            (p.b, q.b),
            (p.c, q.c),
            (p.alpha_deg, q.alpha_deg),
            (p.beta_deg, q.beta_deg),
            (p.gamma_deg, q.gamma_deg),
        ] {
            assert!((x - y).abs() < 1e-8, "{x} vs {y}");
        }
        // Same lattice vectors (pymatgen orientation on both sides) and positions to 1e-6 Å.
        for (a, b) in s.lattice.row_vectors().iter().zip(r.lattice.row_vectors().iter()) {
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 1e-6);
            }
        }
        for (f, g) in s.wrapped().cart_coords().iter().zip(r.cart_coords()) {
            assert!((f - g).norm() < 1e-6, "{f} vs {g}");
        }
        assert_eq!(r.site_properties["label"], vec![Json::from("Fe0"), "O1".into(), "O2".into(), "Li3".into()]);
        assert_eq!(r.properties["cif_block"], "sample");
        // Labels read from a file are written back unchanged, and the text is stable.
        let again = write(&r, "sample");
        assert_eq!(write(&read_one(&again), "sample"), again);
        // Non-unique labels fall back to generated ones.
        let mut t = s.clone();
        t.site_properties.insert("label".into(), vec!["A".into(), "A".into(), "B".into(), "C".into()]);
        assert!(write(&t, "x").contains("  Fe  Fe0  1"));
    }

    #[test]
    fn read_back_symmetrised_structures() {
        let s = read_one(&bi2te3("R -3 m", &cell(4.386, 4.386, 30.497, 90, 90, 120)));
        let r = read_one(&write(&s, "Bi2Te3"));
        assert_eq!(r.n_sites(), 15);
        for (f, g) in s.frac_coords().iter().zip(r.frac_coords()) {
            assert!(same_position(f, g, 1e-9));
        }
        assert!(
            write(&s, "x")
                .contains("_chemical_formula_structural   Bi2Te3\n_chemical_formula_sum   'Bi6 Te9'\n_cell_volume")
        );
        assert!(write(&s, "x").contains("_cell_formula_units_Z   3\n"));
    }

    #[test]
    fn value_quoting() {
        assert_eq!(cif_value("Fe1"), "Fe1");
        assert_eq!(cif_value("Fe 1"), "'Fe 1'");
        assert_eq!(cif_value("a' b"), "\"a' b\"");
        assert_eq!(cif_value("?"), "'?'");
        assert_eq!(cif_value("_x"), "'_x'");
        assert_eq!(cif_value("data_x"), "'data_x'");
        assert_eq!(fixed(-1e-12, 10), "0.0000000000");
    }

    /// Writes sample CIFs and the values they hold to `target/cif-roundtrip/` for
    /// `scripts/check_cif_roundtrip.py` (pymatgen and ASE read-back).
    #[test]
    fn write_roundtrip_samples() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("cif-roundtrip");
        std::fs::create_dir_all(&dir).unwrap();
        let mut samples: Vec<(String, Structure)> = vec![("triclinic_LiFeO2".into(), sample())];
        samples.push(("NaCl_Fm-3m".into(), read_one(&nacl_asym("_space_group_IT_number 225"))));
        samples.push(("Bi2Te3_R-3m".into(), read_one(&bi2te3("R -3 m", &cell(4.386, 4.386, 30.497, 90, 90, 120)))));
        let rutile = format!(
            "data_rutile\n{}_symmetry_space_group_name_H-M 'P 42/m n m'\n{SITES_HEAD}Ti1 Ti 0 0 0\nO1 O 0.3053 0.3053 0\n",
            cell(4.5937, 4.5937, 2.9587, 90, 90, 90)
        );
        samples.push(("TiO2_rutile".into(), read_one(&rutile)));
        let mono = format!(
            "data_mono\n{}_symmetry_space_group_name_H-M 'P 21/c'\n{SITES_HEAD}Zr1 Zr 0.2754 0.0395 0.2083\nO1 O 0.0700 0.3317 0.3447\nO2 O 0.4496 0.7569 0.4792\n",
            cell(5.1505, 5.2116, 5.3173, 90, 99.23, 90)
        );
        samples.push(("ZrO2_P21c".into(), read_one(&mono)));
        for (name, s) in &samples {
            std::fs::write(dir.join(format!("{name}.cif")), write(s, name)).unwrap();
            let w = s.wrapped();
            let p = s.lattice.params();
            let expected = serde_json::json!({
                "abc": [p.a, p.b, p.c],
                "angles": [p.alpha_deg, p.beta_deg, p.gamma_deg],
                "matrix": s.lattice.row_vectors(),
                "species": s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(),
                "frac_coords": w.frac_coords().iter().map(|f| [f[0], f[1], f[2]]).collect::<Vec<_>>(),
            });
            std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&expected).unwrap()).unwrap();
        }
    }

    // ---- test assets ----

    fn asset(name: &str) -> (String, String) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/cif").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (text, path.display().to_string())
    }

    fn read_asset(name: &str) -> Vec<Structure> {
        let (text, path) = asset(name);
        parse(&text, &path, &opts()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn formula(s: &Structure) -> String {
        s.composition().formula()
    }

    #[test]
    fn asset_multi_block_text_fields() {
        let v = read_asset("multi_block_text_fields.cif");
        assert_eq!(v.len(), 2);
        assert_eq!(formula(&v[0]), "Na4 Cl4");
        assert_eq!(v[0].properties["cif_block"], "NaCl");
        assert!(has_site(&v[0], "Cl", [0.0, 0.5, 0.0]));
        assert_eq!(formula(&v[1]), "Cs1 Cl1");
        assert_eq!(v[1].properties["cif_block"], "CsCl");
        assert!(has_site(&v[1], "Cl", [0.5, 0.5, 0.5]));
        assert!((v[0].lattice.params().a - 5.6402).abs() < 1e-12);
    }

    #[test]
    fn asset_quoted_labels_uncertainties() {
        let s = read_asset("quoted_labels_uncertainties.cif").remove(0);
        assert_eq!(formula(&s), "Ti2 O4");
        assert!(has_site(&s, "O", [0.1947, 0.8053, 0.5]));
        let labels: Vec<&str> = s.site_properties["label"].iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(labels, ["Ti 1", "Ti 1", "O 'a'", "O 'a'", "O 'a'", "O 'a'"]);
        // Labels with spaces are written under generated names, quoted ones never break the file.
        let text = write(&s, "rutile");
        assert!(text.contains("  Ti  Ti0  1"));
        assert_eq!(read_one(&text).n_sites(), 6);
    }

    #[test]
    fn asset_ops_with_id_mixed_styles() {
        let s = read_asset("ops_with_id_mixed_styles.cif").remove(0);
        assert_eq!(formula(&s), "Al12 O18");
        // The same crystal from its Hall symbol alone.
        let h = read_asset("hall_only_corundum.cif").remove(0);
        assert_eq!(formula(&h), "Al12 O18");
        for (e, f) in h.species().iter().zip(h.frac_coords()) {
            assert!(has_site(&s, e.symbol(), [f[0], f[1], f[2]]), "{e} at {f}");
        }
    }

    #[test]
    fn asset_hm_only_origin_choice() {
        let s = read_asset("hm_only_origin_choice.cif").remove(0);
        assert_eq!(formula(&s), "Si8");
        assert!(has_site(&s, "Si", [0.875, 0.375, 0.375]));
        // Nearest neighbours at a√3/4: the diamond structure, not two interpenetrating copies.
        let d = (0..s.n_sites())
            .flat_map(|j| (0..j).map(move |i| (i, j)))
            .map(|(i, j)| s.distance(i, j))
            .fold(f64::MAX, f64::min);
        assert!((d - 5.4309 * 3f64.sqrt() / 4.0).abs() < 1e-6, "{d}");
    }

    #[test]
    fn asset_partial_occupancy() {
        let (text, path) = asset("partial_occupancy.cif");
        let e = parse(&text, &path, &opts()).unwrap_err().to_string();
        assert!(
            e.contains("sites \"Fe1\" (Fe, occupancy 0.6) and \"Mn1\" (Mn, occupancy 0.4) share one position"),
            "{e}"
        );
        assert!(e.contains("(line 20, "), "{e}");
        let o = CifOptions { order_partial_occupancies: true, ..CifOptions::default() };
        let s = parse(&text, &path, &o).unwrap().remove(0);
        assert_eq!(formula(&s), "Fe4 O4");
        let notes: Vec<&str> =
            s.properties["cif_ordering_notes"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("dropped Mn"), "{notes:?}");
        assert!(notes[1].contains("\"O1\" (line 21): kept O with occupancy 0.95"), "{notes:?}");
    }

    #[test]
    fn asset_rhombohedral_it_number() {
        let s = read_asset("rhombohedral_it_number.cif").remove(0);
        assert_eq!(formula(&s), "Bi2 Te3");
        assert!(has_site(&s, "Bi", [0.5999, 0.5999, 0.5999]));
    }

    #[test]
    fn asset_cartesian_dotted_tags() {
        let s = read_asset("cartesian_dotted_tags.cif").remove(0);
        assert_eq!(s.species(), &[el("Cs"), el("Cl")]);
        assert!(has_site(&s, "Cl", [0.5, 0.5, 0.5]));
        assert_eq!(s.site_properties["label"][1], "Cl");
    }

    #[test]
    fn asset_cod_minerals() {
        let s = read_asset("cod_9007661_MoS2_3R.cif").remove(0);
        assert_eq!(formula(&s), "Mo3 S6");
        assert_eq!(s.properties["cif_block"], "9007661");
        let s = read_asset("cod_9017338_cristobalite.cif").remove(0);
        assert_eq!(formula(&s), "Si4 O8");
        // Operations removed: the Hall symbol, then the H-M symbol, then the number give the same sites.
        let (text, path) = asset("cod_9017338_cristobalite.cif");
        let no_ops = text.replace("_space_group_symop_operation_xyz", "_geode_removed");
        let no_hall = no_ops.replace("_space_group_name_Hall", "_geode_removed_hall");
        let no_hm = no_hall
            .replace("_space_group_name_H-M_alt", "_geode_x1")
            .replace("_symmetry_space_group_name_H-M", "_geode_x2");
        for variant in [no_ops, no_hall, no_hm] {
            let t = parse(&variant, &path, &opts()).unwrap().remove(0);
            assert_eq!(t.n_sites(), 12);
            for (e, f) in t.species().iter().zip(t.frac_coords()) {
                assert!(has_site(&s, e.symbol(), [f[0], f[1], f[2]]));
            }
        }
    }

    #[test]
    fn every_asset_is_listed_in_the_readme() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/cif");
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if name.ends_with(".cif") {
                n += 1;
                assert!(readme.contains(&name), "{name} is not in tests/assets/cif/README.md");
            }
        }
        assert!(n >= 6);
    }
}
