//! The one expression grammar over property names: `geode candidates list --where`, the studio's
//! filter boxes, screening constraints and generation/evolution targets all read it, so
//! `band_gap in [1, 2]` means the same everywhere and a misspelt name fails the same way everywhere.
//!
//! ```text
//! expr   := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | "(" expr ")" | "has_tag" "(" TEXT ")" | cmp
//! cmp    := NAME OP NUMBER | NAME "in" "[" NUMBER "," NUMBER "]"
//!         | NAME ("=" | "!=") TEXT | NAME "is" ["not"] "null"
//! OP     := < <= > >= = == !=
//! TEXT   := 'quoted' | "quoted"
//! ```
//! Every NAME is a registered property ([`super::property`]); numbers must be finite; keywords are
//! case-insensitive. Nesting (brackets and `not`) stops at [`MAX_DEPTH`] with an error, so no
//! expression can exhaust the stack. Example: `band_gap in [1, 2] and e_above_hull < 0.05 and not
//! formula = 'Si'`.

use std::fmt;

use super::property::{self, Kind, Property};

/// How deep brackets and `not`s may nest.
pub const MAX_DEPTH: usize = 64;

/// A parsed expression; every name in it is registered and of the right kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `name OP value` on a numeric property.
    Num {
        name: String,
        op: Op,
        value: f64,
    },
    /// `name in [lo, hi]` (both ends included).
    Range {
        name: String,
        lo: f64,
        hi: f64,
    },
    /// `name = 'value'` (or `!=`) on a text property; `has_tag('x')` is `tag = 'x'`.
    Text {
        name: String,
        equal: bool,
        value: String,
    },
    /// `name is null` / `name is not null`: whether a candidate carries the property.
    Null {
        name: String,
        is_null: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "=",
            Op::Ne => "!=",
        }
    }
}

/// Why an expression was refused: the message names the column and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError(pub String);

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExprError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(Op),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

/// `text` quoted for an error about the character at `col` (0-based): whole when short, else the 60
/// characters around `col` with `…` where text was left out.
fn excerpt(text: &str, col: usize) -> String {
    const WIDTH: usize = 60;
    let n = text.chars().count();
    if n <= WIDTH {
        return format!("{text:?}");
    }
    let start = col.saturating_sub(WIDTH / 2).min(n - WIDTH);
    let part: String = text.chars().skip(start).take(WIDTH).collect();
    let (pre, post) = (if start > 0 { "…" } else { "" }, if start + WIDTH < n { "…" } else { "" });
    format!("{pre}{part:?}{post} ({n} characters)")
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let err = |pos: usize, msg: String| ExprError(format!("{msg} at column {} of {}", pos + 1, excerpt(text, pos)));
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if c.is_whitespace() {
            i += 1;
        } else if let Some(t) = single {
            out.push((start, t));
            i += 1;
        } else if c == '\'' || c == '"' {
            let close =
                chars[i + 1..].iter().position(|&x| x == c).ok_or_else(|| err(start, "unterminated text".into()))?;
            out.push((start, Tok::Str(chars[i + 1..i + 1 + close].iter().collect())));
            i += close + 2;
        } else if "<>=!".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, n) = match two.as_str() {
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                "==" => (Op::Eq, 2),
                "!=" => (Op::Ne, 2),
                _ => match c {
                    '<' => (Op::Lt, 1),
                    '>' => (Op::Gt, 1),
                    '=' => (Op::Eq, 1),
                    _ => return Err(err(start, format!("unexpected {c:?}"))),
                },
            };
            out.push((start, Tok::Op(op)));
            i += n;
        } else if c.is_ascii_digit() || c == '.' || c == '-' || c == '+' {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || (matches!(chars[i], '+' | '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s.parse().map_err(|_| err(start, format!("{s:?} is not a number")))?;
            if !v.is_finite() {
                return Err(err(start, format!("{s:?} is not a finite number")));
            }
            out.push((start, Tok::Num(v)));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
        } else {
            return Err(err(start, format!("unexpected {c:?}")));
        }
    }
    Ok(out)
}

struct Parser<'t> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    text: &'t str,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> ExprError {
        let col = self.toks.get(self.pos).map(|t| t.0 + 1).unwrap_or(self.text.chars().count() + 1);
        ExprError(format!("{msg} at column {col} of {}", excerpt(self.text, col - 1)))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn peek_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(k))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected {what}")))
        }
    }

    fn number(&mut self, what: &str) -> Result<f64, ExprError> {
        match self.peek() {
            Some(Tok::Num(v)) => {
                let v = *v;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.err(&format!("expected {what}"))),
        }
    }

    fn deeper(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(&format!("brackets and `not`s nest more than {MAX_DEPTH} deep")));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        let mut terms = vec![self.and()?];
        while self.peek_keyword("or") {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut terms = vec![self.unary()?];
        while self.peek_keyword("and") {
            self.pos += 1;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::And(terms) })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek_keyword("not") {
            self.pos += 1;
            self.deeper()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            self.deeper()?;
            let e = self.expr()?;
            self.expect(Tok::RParen, "')'")?;
            self.depth -= 1;
            return Ok(e);
        }
        if self.peek_keyword("has_tag") && self.toks.get(self.pos + 1).map(|t| &t.1) == Some(&Tok::LParen) {
            self.pos += 2;
            let value = match self.peek() {
                Some(Tok::Str(s)) => s.clone(),
                _ => return Err(self.err("expected a quoted tag such as 'shortlist'")),
            };
            self.pos += 1;
            self.expect(Tok::RParen, "')' after the tag")?;
            return Ok(Expr::Text { name: "tag".into(), equal: true, value });
        }
        self.cmp()
    }

    fn property(&mut self) -> Result<&'static Property, ExprError> {
        let name = match self.peek() {
            Some(Tok::Ident(n)) => n.clone(),
            _ => return Err(self.err("expected a property name such as band_gap")),
        };
        let p = property::lookup(&name).map_err(|e| self.err(&e.to_string()))?;
        self.pos += 1;
        Ok(p)
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let prop = self.property()?;
        let name = prop.name.to_string();
        if self.peek_keyword("is") {
            self.pos += 1;
            let negate = self.peek_keyword("not");
            if negate {
                self.pos += 1;
            }
            if !self.peek_keyword("null") {
                return Err(self.err("expected 'null'"));
            }
            self.pos += 1;
            return Ok(Expr::Null { name, is_null: !negate });
        }
        if self.peek_keyword("in") {
            self.pos += 1;
            if prop.kind == Kind::Text {
                return Err(self.err(&format!("{name:?} is text: a range needs a numeric property")));
            }
            self.expect(Tok::LBracket, "'[' (write the range as [lo, hi])")?;
            let lo = self.number("the lower bound of [lo, hi]")?;
            self.expect(Tok::Comma, "',' between the bounds of [lo, hi]")?;
            let hi = self.number("the upper bound of [lo, hi]")?;
            self.expect(Tok::RBracket, "']' closing [lo, hi]")?;
            if lo > hi {
                return Err(ExprError(format!(
                    "empty range: lower bound {lo} is above upper bound {hi} in {:?}",
                    self.text
                )));
            }
            return Ok(Expr::Range { name, lo, hi });
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => {
                return Err(
                    self.err(&format!("expected a comparison (<, <=, >, >=, =, !=, in [lo, hi]) after {name:?}"))
                );
            }
        };
        self.pos += 1;
        match self.peek().cloned() {
            Some(Tok::Num(value)) => {
                if prop.kind == Kind::Text {
                    let example = if name == "tag" { "shortlist" } else { "Si" };
                    return Err(
                        self.err(&format!("{name:?} is text: compare it with a quoted value such as '{example}'"))
                    );
                }
                self.pos += 1;
                Ok(Expr::Num { name, op, value })
            }
            Some(Tok::Str(value)) => {
                let equal = match op {
                    Op::Eq => true,
                    Op::Ne => false,
                    _ => return Err(self.err("text compares only with = or !=")),
                };
                if prop.kind != Kind::Text {
                    return Err(self.err(&format!("{name:?} is numeric: compare it with a number")));
                }
                self.pos += 1;
                Ok(Expr::Text { name, equal, value })
            }
            _ => Err(self.err("expected a number or a quoted text value")),
        }
    }
}

impl Expr {
    /// Parse an expression; errors name the column and what was expected there.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Err(ExprError("empty expression".into()));
        }
        let mut p = Parser { toks, pos: 0, text, depth: 0 };
        let e = p.expr()?;
        if p.pos != p.toks.len() {
            return Err(p.err("unexpected text (join conditions with 'and' or 'or')"));
        }
        Ok(e)
    }

    /// The single condition `name in [lo, hi]`, `name < x`, `name > x` (`<=`/`>=` read the same) as
    /// (property, lo, hi) with ±∞ for open ends: constraints and targets take exactly one of these.
    pub fn as_window(&self) -> Option<(&'static Property, f64, f64)> {
        let prop = |n: &str| property::lookup(n).ok();
        match self {
            Expr::Range { name, lo, hi } => Some((prop(name)?, *lo, *hi)),
            Expr::Num { name, op: Op::Lt | Op::Le, value } => Some((prop(name)?, f64::NEG_INFINITY, *value)),
            Expr::Num { name, op: Op::Gt | Op::Ge, value } => Some((prop(name)?, *value, f64::INFINITY)),
            _ => None,
        }
    }

    /// Parse a single window condition (see [`Expr::as_window`]); `what` names the thing in errors
    /// (`constraint`, `target`).
    pub fn parse_window(text: &str, what: &str) -> Result<(&'static Property, f64, f64), ExprError> {
        let e = Expr::parse(text).map_err(|e| ExprError(format!("{what} {}", e.0)))?;
        e.as_window().ok_or_else(|| {
            ExprError(format!(
                "{what} {text:?}: expected one condition `name in [lo, hi]`, `name < x` or `name > x` on a numeric property"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_ranges_and_tags() {
        let f = Expr::parse("band_gap > 1 and e_above_hull < 0.05 or formula = 'Si'").unwrap();
        assert!(matches!(&f, Expr::Or(v) if v.len() == 2 && matches!(v[0], Expr::And(_))));
        assert!(matches!(Expr::parse("not (n_sites >= 4)").unwrap(), Expr::Not(_)));
        assert_eq!(
            Expr::parse("band_gap in [1, 2.5]").unwrap(),
            Expr::Range { name: "band_gap".into(), lo: 1.0, hi: 2.5 }
        );
        assert_eq!(
            Expr::parse("has_tag('pv')").unwrap(),
            Expr::Text { name: "tag".into(), equal: true, value: "pv".into() }
        );
        assert_eq!(Expr::parse("formation_energy_per_atom<-1e-2").unwrap().as_window().unwrap().2, -0.01);
        let (p, lo, hi) = Expr::parse_window("e_above_hull <= 0.05", "constraint").unwrap();
        assert_eq!((p.name, lo, hi), ("e_above_hull", f64::NEG_INFINITY, 0.05));
    }

    #[test]
    fn errors_name_the_place_and_the_fix() {
        let msg = |t: &str| Expr::parse(t).unwrap_err().to_string();
        assert!(msg("band_gap >").contains("expected a number"));
        assert!(msg("band_gap 1").contains("expected a comparison"));
        assert!(msg("formula > 1").contains("is text"));
        assert!(msg("band_gap = 'x'").contains("is numeric"));
        assert!(msg("band_gap > 1 e_above_hull < 2").contains("column 14"));
        assert!(msg("bandgap > 1").contains("did you mean band_gap?"));
        assert!(msg("band_gap in [2, 1]").contains("empty range"));
        assert!(msg("band_gap in [1 2]").contains("','"));
        assert!(msg("band_gap > 1e999").contains("finite"));
        assert!(Expr::parse("").is_err());
        assert!(
            Expr::parse_window("band_gap > 1 and density < 3", "constraint").unwrap_err().0.contains("one condition")
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}band_gap > 1{}", "(".repeat(9_600), ")".repeat(9_600));
        assert!(Expr::parse(&deep).unwrap_err().0.contains("nest more than"));
        let nots = format!("{}band_gap > 1", "not ".repeat(30_000));
        assert!(Expr::parse(&nots).unwrap_err().0.contains("nest more than"));
        let long = vec!["band_gap > 1"; 20_000].join(" and ");
        assert!(matches!(Expr::parse(&long).unwrap(), Expr::And(v) if v.len() == 20_000));
        let ok = format!("{}band_gap > 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Expr::parse(&ok).is_ok());
    }
}
