//! Energy tables as CSV: one row per phase with a `formula` column and either
//! `formation_energy_per_atom` or `energy_per_atom` (eV/atom); an optional `name` (or `id`) column
//! labels the row. Other columns are ignored. Used by `geode hull` for references and queries.

use std::path::Path;

use super::IoError;
use crate::crystal::Composition;

/// Which energy a table gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergyKind {
    /// `formation_energy_per_atom`: relative to the elements' standard states (eV/atom).
    Formation,
    /// `energy_per_atom`: total energies (eV/atom); the table needs elemental entries.
    Total,
}

impl EnergyKind {
    pub fn column(self) -> &'static str {
        match self {
            EnergyKind::Formation => "formation_energy_per_atom",
            EnergyKind::Total => "energy_per_atom",
        }
    }
}

/// One row of an energy table.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyRow {
    /// 1-based line in the file.
    pub line: usize,
    /// The `name`/`id` column, or the formula when there is none.
    pub name: String,
    pub formula: String,
    pub composition: Composition,
    pub energy_per_atom: f64,
}

/// A parsed energy table.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyTable {
    pub kind: EnergyKind,
    pub rows: Vec<EnergyRow>,
}

/// Largest energy magnitude (eV/atom) a table may hold. All-electron total energies of the heaviest
/// elements are ~10⁵ eV/atom; beyond this a value is a mistake, and hull arithmetic on values near f64's
/// limit would overflow to infinite energies above the hull.
pub const MAX_ABS_ENERGY_PER_ATOM: f64 = 1e7;

/// Read an energy table from a file.
pub fn read(path: &Path) -> Result<EnergyTable, IoError> {
    let text = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    parse(&text, &path.display().to_string())
}

/// Parse an energy table; `path` names the source in errors.
pub fn parse(bytes: &[u8], path: &str) -> Result<EnergyTable, IoError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(bytes);
    let headers = rdr.headers().map_err(|e| IoError::at(path, 1, format!("cannot read the header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let formula_col = col("formula").ok_or_else(|| {
        IoError::at(
            path,
            1,
            format!("no `formula` column (columns: {})", headers.iter().collect::<Vec<_>>().join(", ")),
        )
    })?;
    let (kind, energy_col) = match (col("formation_energy_per_atom"), col("energy_per_atom")) {
        (Some(c), _) => (EnergyKind::Formation, c),
        (None, Some(c)) => (EnergyKind::Total, c),
        (None, None) => return Err(IoError::at(path, 1, "no `formation_energy_per_atom` or `energy_per_atom` column")),
    };
    let name_col = col("name").or_else(|| col("id"));
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            IoError::at(path, line, format!("malformed CSV row: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let formula = rec.get(formula_col).unwrap_or("").to_string();
        let composition = Composition::from_formula(&formula).map_err(|e| IoError::at(path, line, e.to_string()))?;
        let raw = rec.get(energy_col).unwrap_or("");
        let energy_per_atom: f64 =
            raw.parse().map_err(|_| IoError::at(path, line, format!("{} {raw:?} is not a number", kind.column())))?;
        if !energy_per_atom.is_finite() {
            return Err(IoError::at(path, line, format!("{} {raw:?} is not finite", kind.column())));
        }
        if energy_per_atom.abs() > MAX_ABS_ENERGY_PER_ATOM {
            return Err(IoError::at(
                path,
                line,
                format!(
                    "{} {raw:?} is outside ±{MAX_ABS_ENERGY_PER_ATOM:e} eV/atom (no total or formation energy is that large; \
                     a unit or column mix-up?)",
                    kind.column()
                ),
            ));
        }
        let name =
            name_col.and_then(|c| rec.get(c)).filter(|s| !s.is_empty()).map_or_else(|| formula.clone(), str::to_string);
        rows.push(EnergyRow { line, name, formula, composition, energy_per_atom });
    }
    Ok(EnergyTable { kind, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_and_names_bad_lines() {
        let t = parse(b"name,formula,formation_energy_per_atom\nmp-1,Fe2O3,-1.7\n,LiFePO4, -2.5 \n", "r.csv").unwrap();
        assert_eq!(t.kind, EnergyKind::Formation);
        assert_eq!(t.rows.len(), 2);
        assert_eq!((t.rows[0].name.as_str(), t.rows[1].name.as_str(), t.rows[1].line), ("mp-1", "LiFePO4", 3));
        assert_eq!(t.rows[1].energy_per_atom, -2.5);
        let t = parse(b"formula,energy_per_atom,extra\nFe,-8.3,x\n", "r.csv").unwrap();
        assert_eq!(t.kind, EnergyKind::Total);
        let e = parse(b"formula,energy_per_atom\nFe,-8.3\nXq2,-1\n", "r.csv").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("Xq") && e.contains("r.csv"), "{e}");
        let e = parse(b"formula,energy_per_atom\nFe,abc\n", "r.csv").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("abc"), "{e}");
        let e = parse(b"formula,energy\nFe,1\n", "r.csv").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("energy_per_atom"), "{e}");
        let e = parse(b"formula,energy_per_atom\nFe,1,2\n", "r.csv").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse(b"\xff\xfe\x00", "r.csv").is_err());
    }
}
