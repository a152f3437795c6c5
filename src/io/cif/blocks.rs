//! `data_` blocks of tokens: tags, loops and tables, and CIF numbers with standard uncertainties.

use super::*;
use crate::io::IoError;

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) val: Val,
    pub(super) line: usize,
}

#[derive(Debug)]
pub(super) struct Loop {
    pub(super) tags: Vec<String>,
    pub(super) values: Vec<Item>,
    pub(super) line: usize,
}

#[derive(Debug)]
pub(super) struct Block {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) items: Vec<(String, Item)>,
    pub(super) loops: Vec<Loop>,
}

impl Block {
    pub(super) fn new(name: String, line: usize) -> Block {
        Block { name, line, items: Vec::new(), loops: Vec::new() }
    }

    /// A single (non-loop) value; the last one wins when a tag repeats.
    pub(super) fn item(&self, tag: &str) -> Option<&Item> {
        self.items.iter().rev().find(|(t, _)| t == tag).map(|(_, v)| v)
    }

    /// A value given either as a single item or in a loop with one row; null values count as absent.
    pub(super) fn scalar(&self, tag: &str) -> Option<&Item> {
        let found = self.item(tag).or_else(|| {
            self.loops.iter().find_map(|l| {
                let k = l.tags.iter().position(|t| t == tag)?;
                if l.values.len() == l.tags.len() { l.values.get(k) } else { None }
            })
        })?;
        if found.val.is_null() { None } else { Some(found) }
    }

    pub(super) fn has_tag(&self, tag: &str) -> bool {
        self.items.iter().any(|(t, _)| t == tag) || self.loops.iter().any(|l| l.tags.iter().any(|t| t == tag))
    }

    pub(super) fn display_name(&self) -> String {
        if self.name.is_empty() { "the unnamed block".to_string() } else { format!("data_{}", self.name) }
    }
}

pub(super) fn current_block(blocks: &mut Vec<Block>, line: usize) -> &mut Block {
    if blocks.is_empty() {
        blocks.push(Block::new(String::new(), line));
    }
    let n = blocks.len();
    &mut blocks[n - 1]
}

pub(super) fn describe(tok: &Tok) -> String {
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

pub(super) fn parse_blocks(tokens: Vec<Token>, path: &str) -> Result<Vec<Block>, IoError> {
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
pub(super) struct Table<'a> {
    pub(super) tags: Vec<&'a str>,
    pub(super) rows: Vec<Vec<&'a Item>>,
    pub(super) line: usize,
}

impl<'a> Table<'a> {
    pub(super) fn col(&self, tag: &str) -> Option<usize> {
        self.tags.iter().position(|t| *t == tag)
    }

    pub(super) fn cell(&self, row: usize, col: Option<usize>) -> Option<&'a Item> {
        col.and_then(|c| self.rows.get(row).and_then(|r| r.get(c)).copied())
    }

    /// A non-null value.
    pub(super) fn value(&self, row: usize, col: Option<usize>) -> Option<&'a Item> {
        self.cell(row, col).filter(|i| !i.val.is_null())
    }
}

/// The loop holding any of `keys`, or a one-row table of the single items starting with `prefix`.
pub(super) fn find_table<'a>(b: &'a Block, keys: &[&str], prefix: &str) -> Option<Table<'a>> {
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
pub(super) fn parse_cif_number(text: &str) -> Option<f64> {
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
pub(super) fn number(item: &Item, tag: &str, path: &str) -> Result<f64, IoError> {
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
