//! The candidate filter language of `geode candidates list --where`, compiled to SQL.
//!
//! ```text
//! expr   := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | "(" expr ")" | cmp
//! cmp    := NAME OP NUMBER | NAME ("=" | "!=") 'TEXT' | NAME "is" ["not"] "null"
//! OP     := < <= > >= = == !=
//! ```
//! NAME is a column (`n_sites`, `run_id`, `id`, `seq`; `formula`, `chemical_system`, `stage`, `source`
//! for text), an annotation (`favourite`, `tag`) or any numeric property (`band_gap`, `e_above_hull`…).
//! Example: `band_gap > 1 and e_above_hull < 0.05 and not formula = 'Si'`.

use rusqlite::types::Value as SqlValue;

use super::error::JobError;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Num { name: String, op: Op, value: f64 },
    Text { name: String, equal: bool, value: String },
    Null { name: String, is_null: bool },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn sql(self) -> &'static str {
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

const NUMERIC_COLUMNS: [&str; 4] = ["n_sites", "run_id", "id", "seq"];
const TEXT_COLUMNS: [&str; 4] = ["formula", "chemical_system", "stage", "source"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(Op),
    LParen,
    RParen,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, JobError> {
    let err = |pos: usize, msg: String| JobError::Filter(format!("{msg} at column {} of {text:?}", pos + 1));
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((start, Tok::LParen));
            i += 1;
        } else if c == ')' {
            out.push((start, Tok::RParen));
            i += 1;
        } else if c == '\'' || c == '"' {
            let close =
                chars[i + 1..].iter().position(|&x| x == c).ok_or_else(|| err(start, "unterminated string".into()))?;
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
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ".+-".contains(chars[i])) {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s.parse().map_err(|_| err(start, format!("{s:?} is not a number")))?;
            out.push((start, Tok::Num(v)));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
        } else {
            return Err(err(start, format!("unexpected {c:?}")));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    text: String,
}

impl Parser {
    fn err(&self, msg: &str) -> JobError {
        let col = self.toks.get(self.pos).map(|t| t.0 + 1).unwrap_or(self.text.chars().count() + 1);
        JobError::Filter(format!("{msg} at column {col} of {:?}", self.text))
    }

    fn peek_keyword(&self, k: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((_, Tok::Ident(s))) if s.eq_ignore_ascii_case(k))
    }

    fn expr(&mut self) -> Result<Filter, JobError> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, JobError> {
        let mut left = self.unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, JobError> {
        if self.peek_keyword("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if matches!(self.toks.get(self.pos), Some((_, Tok::LParen))) {
            self.pos += 1;
            let e = self.expr()?;
            if !matches!(self.toks.get(self.pos), Some((_, Tok::RParen))) {
                return Err(self.err("expected ')'"));
            }
            self.pos += 1;
            return Ok(e);
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Filter, JobError> {
        let name = match self.toks.get(self.pos) {
            Some((_, Tok::Ident(n))) => n.clone(),
            _ => return Err(self.err("expected a property name such as band_gap")),
        };
        self.pos += 1;
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
            return Ok(Filter::Null { name, is_null: !negate });
        }
        let op = match self.toks.get(self.pos) {
            Some((_, Tok::Op(op))) => *op,
            _ => return Err(self.err(&format!("expected a comparison (<, <=, >, >=, =, !=) after {name:?}"))),
        };
        self.pos += 1;
        match self.toks.get(self.pos).cloned() {
            Some((_, Tok::Num(v))) => {
                self.pos += 1;
                if TEXT_COLUMNS.contains(&name.as_str()) || name == "tag" {
                    return Err(self.err(&format!(
                        "{name:?} is text: compare it with a quoted value such as '{}'",
                        if name == "tag" { "shortlist" } else { "Si" }
                    )));
                }
                Ok(Filter::Num { name, op, value: v })
            }
            Some((_, Tok::Str(s))) => {
                self.pos += 1;
                let equal = match op {
                    Op::Eq => true,
                    Op::Ne => false,
                    _ => return Err(self.err("text compares only with = or !=")),
                };
                if !(TEXT_COLUMNS.contains(&name.as_str()) || name == "tag") {
                    return Err(self.err(&format!("{name:?} is numeric: compare it with a number")));
                }
                Ok(Filter::Text { name, equal, value: s })
            }
            _ => Err(self.err("expected a number or a quoted text value")),
        }
    }
}

impl Filter {
    /// Parse a filter expression; errors name the column and what was expected.
    pub fn parse(text: &str) -> Result<Filter, JobError> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Err(JobError::Filter("empty filter".into()));
        }
        let mut p = Parser { toks, pos: 0, text: text.to_string() };
        let f = p.expr()?;
        if p.pos != p.toks.len() {
            return Err(p.err("unexpected text (join conditions with 'and' or 'or')"));
        }
        Ok(f)
    }

    /// SQL over `candidates c` with numbered parameters starting at `?first`.
    pub fn to_sql(&self, first: usize) -> (String, Vec<SqlValue>) {
        let mut args = Vec::new();
        let sql = self.build(first, &mut args);
        (sql, args)
    }

    fn build(&self, first: usize, args: &mut Vec<SqlValue>) -> String {
        let next = |v: SqlValue, args: &mut Vec<SqlValue>| {
            args.push(v);
            format!("?{}", first + args.len() - 1)
        };
        match self {
            Filter::And(a, b) => format!("({} AND {})", a.build(first, args), b.build(first, args)),
            Filter::Or(a, b) => format!("({} OR {})", a.build(first, args), b.build(first, args)),
            Filter::Not(a) => format!("(NOT {})", a.build(first, args)),
            Filter::Num { name, op, value } => {
                if NUMERIC_COLUMNS.contains(&name.as_str()) {
                    let p = next(SqlValue::Real(*value), args);
                    format!("c.{name} {} {p}", op.sql())
                } else if name == "favourite" {
                    let p = next(SqlValue::Real(*value), args);
                    format!(
                        "COALESCE((SELECT a.favourite FROM annotations a WHERE a.candidate_id = c.id), 0) {} {p}",
                        op.sql()
                    )
                } else {
                    let n = next(SqlValue::Text(name.clone()), args);
                    let v = next(SqlValue::Real(*value), args);
                    format!(
                        "c.id IN (SELECT candidate_id FROM candidate_props WHERE name = {n} AND value {} {v})",
                        op.sql()
                    )
                }
            }
            Filter::Text { name, equal, value } => {
                let p = next(SqlValue::Text(value.clone()), args);
                let cond = if name == "tag" {
                    format!(
                        "c.id IN (SELECT a.candidate_id FROM annotations a WHERE (' ' || REPLACE(a.tags, ',', ' ') || ' ') LIKE '% ' || {p} || ' %')"
                    )
                } else {
                    format!("c.{name} = {p}")
                };
                if *equal { cond } else { format!("(NOT {cond})") }
            }
            Filter::Null { name, is_null } => {
                let n = next(SqlValue::Text(name.clone()), args);
                let cond = format!("c.id IN (SELECT candidate_id FROM candidate_props WHERE name = {n})");
                if *is_null { format!("(NOT {cond})") } else { cond }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_errors() {
        let f = Filter::parse("band_gap > 1 and e_above_hull < 0.05 or formula = 'Si'").unwrap();
        assert!(matches!(f, Filter::Or(_, _)));
        let f = Filter::parse("not (n_sites >= 4)").unwrap();
        assert!(matches!(f, Filter::Not(_)));
        assert!(Filter::parse("band_gap >").unwrap_err().to_string().contains("expected a number"));
        assert!(Filter::parse("band_gap 1").unwrap_err().to_string().contains("expected a comparison"));
        assert!(Filter::parse("formula > 1").unwrap_err().to_string().contains("is text"));
        assert!(Filter::parse("band_gap = 'x'").unwrap_err().to_string().contains("is numeric"));
        assert!(Filter::parse("band_gap > 1 e_above_hull < 2").unwrap_err().to_string().contains("column 14"));
        assert!(Filter::parse("").is_err());
    }
}
