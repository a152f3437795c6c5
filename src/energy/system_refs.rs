//! The hull of a chemical system computed with one evaluator — a DFT code at fixed settings, typically — so
//! that a candidate's energy from that evaluator is judged against references of exactly the same
//! settings. The references are the system's phases that OQMD puts on its hull and the embedded dataset
//! holds (elements and, where the system has them, stable binaries and beyond), each relaxed with the
//! evaluator once and cached in a CSV file (`name,formula,energy_per_atom,…`) that `geode hull --refs`
//! also reads. Rows of other evaluators in the same file are kept and ignored.
//!
//! Elements come from the dataset's lowest-energy elemental crystal (its OQMD ground state); an element
//! the dataset has no crystal of is tried in the fcc, bcc, hcp and diamond prototypes. Gas-phase elements
//! (H, N, O, F, Cl) keep their OQMD cell and relax their positions only: a semilocal functional without
//! dispersion would let a molecular crystal's cell expand without bound.
//!
//! Units: eV/atom.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::calculator::{CalcError, Calculator};
use super::hull::{HullError, PhaseDiagram, PhaseEntry};
use super::references::{ELEMENTAL_PROTOTYPES, Reference, elemental_in};
use super::relax::{RelaxOptions, relax};
use crate::crystal::{Composition, Element, Structure};
use crate::data::{Dataset, prototypes};

/// Elements whose standard state is a molecular gas: their references keep the cell.
pub const GAS_ELEMENTS: [&str; 5] = ["H", "N", "O", "F", "Cl"];

/// The CSV header of a cache file.
const HEADER: &str = "name,formula,energy_per_atom,potential,relaxed,steps,converged";

/// One cached reference energy.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedReference {
    pub name: String,
    pub formula: String,
    pub composition: Composition,
    /// eV/atom.
    pub energy_per_atom: f64,
    pub relaxed: bool,
    pub steps: usize,
    pub converged: bool,
}

/// The cache of one evaluator's reference energies in one file.
#[derive(Debug, Clone)]
pub struct SystemReferences {
    pub path: PathBuf,
    /// `Calculator::name` of the evaluator the rows belong to.
    pub potential: String,
    rows: Vec<CachedReference>,
}

/// The reference phases of the chemical system of `elements`: the OQMD-stable dataset crystals made only of
/// them (one per composition, the lowest in energy) and each element's ground state; elements the dataset
/// lacks are given in the four elemental prototypes.
pub fn system_references(ds: &Dataset, elements: &BTreeSet<Element>) -> Vec<Reference> {
    let mut best: std::collections::BTreeMap<String, (f64, Reference)> = Default::default();
    for e in &ds.entries {
        let els = e.structure.species();
        if !els.iter().all(|x| elements.contains(x)) {
            continue;
        }
        let elemental = e.structure.composition().elements().len() == 1;
        // Elements: the lowest-energy crystal whatever OQMD's stability says; compounds: on OQMD's hull.
        if !elemental && e.stability > 1e-6 {
            continue;
        }
        let r = Reference { name: format!("oqmd-icsd-{}", e.id), structure: e.structure.clone() };
        match best.get(&e.formula) {
            Some((energy, _)) if *energy <= e.energy_per_atom => {}
            _ => {
                best.insert(e.formula.clone(), (e.energy_per_atom, r));
            }
        }
    }
    let mut out: Vec<Reference> = best.into_values().map(|(_, r)| r).collect();
    for &el in elements {
        if out.iter().any(|r| r.structure.composition().elements() == [el]) {
            continue;
        }
        for label in ELEMENTAL_PROTOTYPES {
            let Some(p) = prototypes::aflow().iter().find(|p| p.aflow == label) else { continue };
            if let Some(s) = elemental_in(&p.structure, el) {
                out.push(Reference { name: format!("element:{}:{label}", el.symbol()), structure: s });
            }
        }
    }
    // Elements first, then by number of elements and size: the cheap, always-needed ones go first.
    out.sort_by_key(|r| (r.structure.composition().elements().len(), r.structure.n_sites(), r.name.clone()));
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

impl SystemReferences {
    /// Open (or start) the cache at `path` for the evaluator named `potential`; a file that is not such a
    /// cache is an error naming the file and line.
    pub fn open(path: &Path, potential: &str) -> Result<SystemReferences, String> {
        let mut rows = Vec::new();
        if path.exists() {
            let mut rdr = csv::ReaderBuilder::new().from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let headers = rdr.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
            if headers.iter().collect::<Vec<_>>().join(",") != HEADER {
                return Err(format!("{}: not a reference cache (its header is not `{HEADER}`)", path.display()));
            }
            for (k, rec) in rdr.records().enumerate() {
                let line = k + 2;
                let rec = rec.map_err(|e| format!("{} line {line}: {e}", path.display()))?;
                if &rec[3] != potential {
                    continue;
                }
                let bad = |what: &str| format!("{} line {line}: bad {what}", path.display());
                let composition = Composition::from_formula(&rec[1]).map_err(|_| bad("formula"))?;
                let energy_per_atom: f64 = rec[2].parse().map_err(|_| bad("energy_per_atom"))?;
                rows.push(CachedReference {
                    name: rec[0].to_string(),
                    formula: rec[1].to_string(),
                    composition,
                    energy_per_atom,
                    relaxed: &rec[4] == "true",
                    steps: rec[5].parse().map_err(|_| bad("steps"))?,
                    converged: &rec[6] == "true",
                });
            }
        }
        Ok(SystemReferences { path: path.to_path_buf(), potential: potential.to_string(), rows })
    }

    /// The cached rows of this evaluator.
    pub fn rows(&self) -> &[CachedReference] {
        &self.rows
    }

    /// Whether `name` is cached.
    pub fn has(&self, name: &str) -> bool {
        self.rows.iter().any(|r| r.name == name)
    }

    /// Append one row to the file (created with its header), so every finished reference survives a crash.
    fn append(&mut self, row: CachedReference) -> Result<(), String> {
        let new = !self.path.exists();
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut text = String::new();
        if new {
            text.push_str(HEADER);
            text.push('\n');
        }
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            csv_field(&row.name),
            csv_field(&row.formula),
            row.energy_per_atom,
            csv_field(&self.potential),
            row.relaxed,
            row.steps,
            row.converged
        ));
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.rows.push(row);
        Ok(())
    }

    /// Relax and cache every reference of `refs` not cached yet, in order, with `calc` (which must be the
    /// evaluator the cache was opened for). `progress` sees each result; failures are returned with the
    /// reference's name and are not cached (a rerun tries them again).
    pub fn compute_missing(
        &mut self,
        calc: &dyn Calculator,
        refs: &[Reference],
        opts: &RelaxOptions,
        progress: &mut dyn FnMut(&Reference, &Result<CachedReference, CalcError>),
    ) -> Result<Vec<(String, CalcError)>, String> {
        if calc.name() != self.potential {
            return Err(format!("the cache is for {}, not {}", self.potential, calc.name()));
        }
        let mut failed = Vec::new();
        for r in refs {
            if self.has(&r.name) {
                continue;
            }
            let gas = r.structure.composition().elements().iter().all(|e| GAS_ELEMENTS.contains(&e.symbol()));
            let o = RelaxOptions { relax_cell: opts.relax_cell && !gas, ..opts.clone() };
            let result = relax(calc, &r.structure, &o, &mut |_, _| ControlFlow::Continue(())).map(|x| {
                let s: &Structure = &x.structure;
                CachedReference {
                    name: r.name.clone(),
                    formula: s.reduced_formula(),
                    composition: s.composition(),
                    energy_per_atom: x.evaluation.energy / s.n_sites() as f64,
                    relaxed: true,
                    steps: x.steps,
                    converged: x.converged,
                }
            });
            progress(r, &result);
            match result {
                Ok(row) => self.append(row)?,
                Err(e) => failed.push((r.name.clone(), e)),
            }
        }
        Ok(failed)
    }

    /// The hull of the cached total energies (eV/atom) whose elements lie within `elements`.
    pub fn hull(&self, elements: &BTreeSet<Element>) -> Result<PhaseDiagram, HullError> {
        PhaseDiagram::new(
            self.rows
                .iter()
                .filter(|r| r.composition.elements().iter().all(|e| elements.contains(e)))
                .map(|r| PhaseEntry::new(r.name.clone(), r.composition.clone(), r.energy_per_atom))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::LennardJones;

    fn els(s: &[&str]) -> BTreeSet<Element> {
        s.iter().map(|x| Element::from_symbol(x).unwrap()).collect()
    }

    #[test]
    fn a_system_holds_its_ground_state_elements_and_stable_compounds() {
        let ds = Dataset::embedded();
        let refs = system_references(ds, &els(&["Mg", "Si"]));
        let formulas: Vec<String> = refs.iter().map(|r| r.structure.reduced_formula()).collect();
        assert_eq!(formulas.iter().filter(|f| *f == "Mg").count(), 1, "{formulas:?}");
        assert_eq!(formulas.iter().filter(|f| *f == "Si").count(), 1, "{formulas:?}");
        assert!(formulas.contains(&"Mg2Si".to_string()), "{formulas:?}");
        // Elements come first; every compound is on OQMD's hull.
        assert!(refs[..2].iter().all(|r| r.structure.composition().elements().len() == 1));
        for r in &refs[2..] {
            let id: u32 = r.name.trim_start_matches("oqmd-icsd-").parse().unwrap();
            assert!(ds.entries.iter().find(|e| e.id == id).unwrap().stability <= 1e-6);
        }
    }

    #[test]
    fn the_cache_is_appended_reused_and_keeps_other_evaluators_apart() {
        let dir = std::env::temp_dir().join(format!("geode-sysrefs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("refs.csv");
        let lj = LennardJones::new(2.5, 0.01);
        let ar = Element::from_symbol("Ar").unwrap();
        let refs = system_references(Dataset::embedded(), &[ar].into_iter().collect());
        assert!(!refs.is_empty());
        let opts = RelaxOptions { max_steps: 200, ..RelaxOptions::default() };
        let mut cache = SystemReferences::open(&path, &lj.name()).unwrap();
        let mut n = 0;
        let failed = cache.compute_missing(&lj, &refs, &opts, &mut |_, _| n += 1).unwrap();
        assert!(failed.is_empty() && n == refs.len());
        // Reopened: nothing to compute again.
        let mut again = SystemReferences::open(&path, &lj.name()).unwrap();
        assert_eq!(again.rows().len(), refs.len());
        let mut m = 0;
        again.compute_missing(&lj, &refs, &opts, &mut |_, _| m += 1).unwrap();
        assert_eq!(m, 0);
        // Another evaluator sees none of these rows, and a foreign file is refused.
        assert!(SystemReferences::open(&path, "other").unwrap().rows().is_empty());
        std::fs::write(dir.join("bad.csv"), "formula,energy_per_atom\nAr,1\n").unwrap();
        assert!(SystemReferences::open(&dir.join("bad.csv"), "x").unwrap_err().contains("not a reference cache"));
        let pd = again.hull(&[ar].into_iter().collect()).unwrap();
        assert!(!pd.entries().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
