//! The candidate filter of `geode candidates list --where` and the studio's filter box: the one
//! expression grammar of [`crate::data::expr`] (every name a registered property), compiled to SQL over
//! the project's tables.
//!
//! Columns (`n_sites`, `formula`, …) compare on the candidate row, `favourite` and `tag` on the user's
//! annotations, every other name on the stored numeric properties (a candidate without the property
//! never matches a comparison). Example: `band_gap in [1, 2] and e_above_hull < 0.05 and has_tag('pv')`.

use rusqlite::types::Value as SqlValue;

pub use crate::data::expr::{Expr as Filter, ExprError, Op};
use crate::data::property::{self, Place};

use super::error::JobError;

impl From<ExprError> for JobError {
    fn from(e: ExprError) -> Self {
        JobError::Filter(e.0)
    }
}

impl Filter {
    /// SQL over `candidates c` with numbered parameters starting at `?first`.
    pub fn to_sql(&self, first: usize) -> (String, Vec<SqlValue>) {
        let mut args = Vec::new();
        let sql = build(self, first, &mut args);
        (sql, args)
    }
}

/// Where a name's value is read: the row's column, the annotation, or the stored properties.
fn place(name: &str) -> Place {
    property::lookup(name).map(|p| p.place).unwrap_or(Place::Stored)
}

fn build(f: &Filter, first: usize, args: &mut Vec<SqlValue>) -> String {
    let next = |v: SqlValue, args: &mut Vec<SqlValue>| {
        args.push(v);
        format!("?{}", first + args.len() - 1)
    };
    // The SQL that reads a numeric name, and the condition `value_sql(v) OP ?` is put in.
    let numeric =
        |name: &str, cond: &dyn Fn(&str, &mut Vec<SqlValue>) -> String, args: &mut Vec<SqlValue>| match place(name) {
            Place::Column => cond(&format!("c.{name}"), args),
            Place::Annotation => {
                cond(&format!("COALESCE((SELECT a.{name} FROM annotations a WHERE a.candidate_id = c.id), 0)"), args)
            }
            Place::Stored => {
                let n = next(SqlValue::Text(name.to_string()), args);
                let inner = cond("value", args);
                format!("c.id IN (SELECT candidate_id FROM candidate_props WHERE name = {n} AND {inner})")
            }
        };
    let join = |v: &[Filter], word: &str, args: &mut Vec<SqlValue>| {
        let parts: Vec<String> = v.iter().map(|e| build(e, first, args)).collect();
        format!("({})", parts.join(word))
    };
    match f {
        Filter::And(v) => join(v, " AND ", args),
        Filter::Or(v) => join(v, " OR ", args),
        Filter::Not(a) => format!("(NOT {})", build(a, first, args)),
        Filter::Num { name, op, value } => numeric(
            name,
            &|col, args| {
                let p = next(SqlValue::Real(*value), args);
                format!("{col} {} {p}", op.symbol())
            },
            args,
        ),
        Filter::Range { name, lo, hi } => numeric(
            name,
            &|col, args| {
                let a = next(SqlValue::Real(*lo), args);
                let b = next(SqlValue::Real(*hi), args);
                format!("{col} BETWEEN {a} AND {b}")
            },
            args,
        ),
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
            let cond = match place(name) {
                Place::Stored => {
                    let n = next(SqlValue::Text(name.clone()), args);
                    format!("c.id IN (SELECT candidate_id FROM candidate_props WHERE name = {n})")
                }
                Place::Column => format!("c.{name} IS NOT NULL"),
                Place::Annotation => "c.id IN (SELECT candidate_id FROM annotations)".to_string(),
            };
            if *is_null { format!("(NOT {cond})") } else { cond }
        }
    }
}
