//! Reference energies for convex hulls computed with one potential, so that a candidate's energy from the
//! same potential lands on a consistent hull: every dataset crystal (optionally relaxed) plus relaxed
//! elemental phases for each element present (the dataset's own elemental crystals and the fcc, bcc, hcp
//! and diamond AFLOW prototypes, the lowest per element is the reference).
//!
//! Energies are total energies per atom (eV/atom) on the potential's own scale; a hull built from them
//! (`PhaseDiagram::new`) needs nothing else.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use rayon::prelude::*;

use super::calculator::{CalcError, Calculator};
use super::hull::{HullError, PhaseDiagram, PhaseEntry};
use super::relax::{RelaxOptions, relax};
use crate::crystal::{Element, Structure};
use crate::data::{Dataset, prototypes};
use crate::io::energy_csv::{self, EnergyTable};

/// AFLOW labels of the elemental prototypes tried for every element: fcc (A1), bcc (A2), hcp (A3), diamond (A4).
pub const ELEMENTAL_PROTOTYPES: [&str; 4] = ["A_cF4_225_a", "A_cI2_229_a", "A_hP2_194_c", "A_cF8_227_a"];

/// CHGNet 0.3.0 reference energies shipped with Geode: every dataset crystal as stored (single points) and
/// each element relaxed in the fcc, bcc, hcp and diamond prototypes, made by
/// `geode dataset energies --out chgnet-0.3.0-references.csv` (21,319 rows; gzip).
const CHGNET_REFERENCES: &[u8] = include_bytes!("../../assets/potentials/chgnet-0.3.0-references.csv.gz");

/// The shipped CHGNet 0.3.0 reference table (`name`, `formula`, `energy_per_atom` in eV/atom, …), parsed once.
pub fn chgnet_references() -> &'static EnergyTable {
    static TABLE: std::sync::OnceLock<EnergyTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(CHGNET_REFERENCES), &mut text)
            .expect("the embedded reference table is gzip");
        energy_csv::parse(&text, "chgnet-0.3.0-references.csv").expect("the embedded reference table parses")
    })
}

/// The convex hull of the shipped CHGNet table ([`chgnet_references`]).
pub fn chgnet_hull() -> Result<PhaseDiagram, HullError> {
    PhaseDiagram::new(
        chgnet_references()
            .rows
            .iter()
            .map(|r| PhaseEntry::new(r.name.clone(), r.composition.clone(), r.energy_per_atom))
            .collect(),
    )
}

/// One reference phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// `oqmd-icsd-ID` for dataset crystals, `element:Fe:A_cI2_229_a` for prototype elements.
    pub name: String,
    pub structure: Structure,
}

/// Its energy.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceEnergy {
    pub name: String,
    pub formula: String,
    /// eV/atom.
    pub energy_per_atom: f64,
    /// Relaxation steps taken (0 for single points).
    pub steps: usize,
    pub converged: bool,
    /// The energy is that of a relaxed structure.
    pub relaxed: bool,
    /// Why the relaxation failed when the single-point energy was kept instead.
    pub relax_error: Option<String>,
    /// The structure the energy belongs to (relaxed when asked).
    pub structure: Structure,
}

/// `el` in an elemental prototype, scaled so that the nearest neighbours sit at twice the covalent radius.
pub fn elemental_in(prototype: &Structure, el: Element) -> Option<Structure> {
    let s = Structure::from_frac(
        prototype.lattice.clone(),
        vec![el; prototype.n_sites()],
        prototype.frac_coords().to_vec(),
    )
    .ok()?;
    let d = s.min_distance();
    let target = 2.0 * el.data().covalent_radius?;
    if !(d.is_finite() && d > 0.0 && target > 0.0) {
        return None;
    }
    s.scaled_to_volume(s.volume() * (target / d).powi(3)).ok()
}

/// The reference phases of `elements` (all the dataset's elements when empty): every dataset crystal made
/// only of them, and each element in the elemental prototypes.
pub fn references(ds: &Dataset, elements: &BTreeSet<Element>, supported: impl Fn(Element) -> bool) -> Vec<Reference> {
    let within =
        |s: &Structure| s.species().iter().all(|e| (elements.is_empty() || elements.contains(e)) && supported(*e));
    let mut out: Vec<Reference> = ds
        .entries
        .iter()
        .filter(|e| within(&e.structure))
        .map(|e| Reference { name: format!("oqmd-icsd-{}", e.id), structure: e.structure.clone() })
        .collect();
    let present: BTreeSet<Element> = out
        .iter()
        .flat_map(|r| r.structure.species().iter().copied())
        .chain(elements.iter().copied())
        .filter(|e| supported(*e))
        .collect();
    for el in present {
        for label in ELEMENTAL_PROTOTYPES {
            let Some(p) = prototypes::aflow().iter().find(|p| p.aflow == label) else { continue };
            if let Some(s) = elemental_in(&p.structure, el) {
                out.push(Reference { name: format!("element:{}:{label}", el.symbol()), structure: s });
            }
        }
    }
    out
}

/// How [`energies`] treats each reference.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// The energy of the structure as given.
    SinglePoint,
    /// Relax first (positions and cell); a failed relaxation is an error.
    Relax(&'a RelaxOptions),
    /// Relax first; when the relaxation fails, keep the single-point energy (marked unrelaxed, with the reason).
    RelaxOrSinglePoint(&'a RelaxOptions),
}

/// Energies of `refs` with `calc`; runs on the shared thread pool and reports each finished reference to
/// `progress`.
pub fn energies(
    calc: &dyn Calculator,
    refs: &[Reference],
    mode: Mode,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<Result<ReferenceEnergy, CalcError>> {
    refs.par_iter()
        .enumerate()
        .map(|(i, r)| {
            let single = || calc.calculate(&r.structure).map(|e| (e.energy, 0, true, false, r.structure.clone()));
            let relaxed = |o: &RelaxOptions| {
                relax(calc, &r.structure, o, &mut |_, _| ControlFlow::Continue(()))
                    .map(|x| (x.evaluation.energy, x.steps, x.converged, true, x.structure))
            };
            let mut relax_error = None;
            let res = match mode {
                Mode::SinglePoint => single(),
                Mode::Relax(o) => relaxed(o),
                Mode::RelaxOrSinglePoint(o) => relaxed(o).or_else(|e| {
                    relax_error = Some(e.to_string());
                    single()
                }),
            };
            progress(i);
            res.map(|(energy, steps, converged, relaxed, structure)| ReferenceEnergy {
                name: r.name.clone(),
                formula: structure.reduced_formula(),
                energy_per_atom: energy / structure.n_sites() as f64,
                steps,
                converged,
                relaxed,
                relax_error,
                structure,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elemental_prototypes_are_scaled_to_covalent_contacts() {
        let fe = Element::from_symbol("Fe").unwrap();
        for label in ELEMENTAL_PROTOTYPES {
            let p = prototypes::aflow()
                .iter()
                .find(|p| p.aflow == label)
                .unwrap_or_else(|| panic!("{label} is not among the AFLOW prototypes"));
            let s = elemental_in(&p.structure, fe).unwrap();
            assert!((s.min_distance() - 2.0 * fe.data().covalent_radius.unwrap()).abs() < 1e-9, "{label}");
        }
    }

    #[test]
    fn the_shipped_chgnet_table_has_every_dataset_crystal_and_element() {
        let t = chgnet_references();
        assert_eq!(t.kind, energy_csv::EnergyKind::Total);
        let ds = Dataset::embedded();
        let ids: std::collections::HashSet<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
        assert!(ds.entries.iter().all(|e| ids.contains(format!("oqmd-icsd-{}", e.id).as_str())));
        let elemental: BTreeSet<String> = t
            .rows
            .iter()
            .filter(|r| r.composition.elements().len() == 1)
            .map(|r| r.composition.elements()[0].symbol().to_string())
            .collect();
        let present: BTreeSet<String> =
            ds.entries.iter().flat_map(|e| e.structure.species().iter().map(|x| x.symbol().to_string())).collect();
        assert!(
            present.is_subset(&elemental),
            "no elemental reference for {:?}",
            present.difference(&elemental).collect::<Vec<_>>()
        );
    }

    #[test]
    fn references_of_a_system_hold_its_dataset_crystals_and_elements() {
        let ds = Dataset::embedded();
        let els: BTreeSet<Element> = ["Li", "O"].iter().map(|s| Element::from_symbol(s).unwrap()).collect();
        let refs = references(ds, &els, |_| true);
        assert!(refs.iter().any(|r| r.structure.reduced_formula() == "Li2O"));
        assert!(refs.iter().all(|r| r.structure.species().iter().all(|e| els.contains(e))));
        assert_eq!(refs.iter().filter(|r| r.name.starts_with("element:")).count(), 8);
    }
}
