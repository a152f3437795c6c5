//! The CIF 1.1 tokenizer: values with their 1-based line numbers, quotes, text fields and comments.

use crate::io::IoError;

/// A value: bare, quoted or a text field. Only bare `?` and `.` are null.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Val {
    pub(super) text: String,
    pub(super) quoted: bool,
}

impl Val {
    pub(super) fn is_null(&self) -> bool {
        !self.quoted && (self.text == "?" || self.text == ".")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based line where the token starts.
    pub(super) line: usize,
}

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

/// At most 40 characters of `s`, for messages.
pub(super) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

pub(super) fn check_controls(line: &str, n: usize, path: &str) -> Result<(), IoError> {
    if let Some(c) = line.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\u{b}' | '\u{c}')) {
        return Err(IoError::at(
            path,
            n,
            format!("control character U+{:04X} in the text, expected a plain-text CIF file", c as u32),
        ));
    }
    Ok(())
}

pub(super) fn normalize_tag(tag: &str) -> String {
    tag.to_ascii_lowercase().replace('.', "_")
}

pub(super) fn classify(word: &str) -> Tok {
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

pub(super) fn tokenize_line(s: &str, n: usize, path: &str, out: &mut Vec<Token>) -> Result<(), IoError> {
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
pub(super) fn tokenize(text: &str, path: &str) -> Result<Vec<Token>, IoError> {
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
