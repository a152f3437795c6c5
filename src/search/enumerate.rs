//! Candidate enumeration by substitution into template structures (the route of Hautier et al.,
//! Inorg. Chem. 50, 656 (2011)): each template's elements get oxidation states from SMACT's rules, then
//! either the λ-table predictor proposes whole-composition substitutions above a probability threshold
//! (branch and bound, [`by_probability`]), or every assignment of distinct elements from a user's element
//! set is tried and kept when SMACT-valid ([`exhaustive`]). The cell volume is rescaled by the cube of the
//! covalent radii; [`dedupe`] removes repeats by reduced formula + Oganov–Valle fingerprint (the same
//! structure under two prototype labels, e.g. a dataset rock salt and AFLOW's `B1`, counts once).
//! Templates come from the dataset or the 288 AFLOW prototypes ([`templates_for`]).

use std::collections::{BTreeMap, HashMap};

use crate::chem::oxidation::{self, ValidityOptions, Verdict};
use crate::chem::substitution::{Direction, SubstitutionTable, species_name};
use crate::crystal::fingerprint::{OvFingerprint, OvParams, cosine_distance, oganov_valle};
use crate::crystal::{Element, Structure};
use crate::data::{Dataset, prototypes};

/// A structure to substitute into, with a name (e.g. the dataset id) and its prototype label.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub prototype: String,
    pub structure: Structure,
}

/// Templates a user's key names: `aflow:KEY` gives the AFLOW prototypes `KEY` names (label,
/// Strukturbericht, Pearson symbol, stoichiometry, part of a mineral name or `*`; see
/// [`prototypes::Prototype::matches`]); any other key is a dataset lookup (id, `oqmd-icsd-<id>`, label, or
/// every entry with a reduced formula). Empty when nothing matches.
pub fn templates_for(key: &str, ds: &Dataset) -> Vec<Template> {
    match key.trim().strip_prefix("aflow:") {
        Some(k) => prototypes::find(k)
            .into_iter()
            .map(|p| Template {
                name: format!("aflow:{}", p.aflow),
                prototype: p.aflow.clone(),
                structure: p.structure.clone(),
            })
            .collect(),
        None => ds
            .lookup(key)
            .into_iter()
            .map(|e| Template {
                name: format!("oqmd-icsd-{}", e.id),
                prototype: e.prototype.clone(),
                structure: e.structure.clone(),
            })
            .collect(),
    }
}

/// An enumerated candidate.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub structure: Structure,
    /// Name and prototype of the template it came from.
    pub template: String,
    pub prototype: String,
    /// Element replacements `(template element, new element)`, unchanged ones included.
    pub substitutions: Vec<(Element, Element)>,
    /// Hautier probability of the substitution (λ route), `None` for exhaustive enumeration.
    pub probability: Option<f64>,
}

impl Candidate {
    pub fn reduced_formula(&self) -> String {
        self.structure.reduced_formula()
    }
}

/// One oxidation state per element of `s` that makes it charge-balanced and passes the Pauling test
/// (SMACT's first such assignment), with each element's number of atoms; `None` when there is none.
pub fn oxidation_assignment(s: &Structure) -> Option<Vec<(Element, i8, f64)>> {
    let comp = s.composition();
    match oxidation::validity(&comp, ValidityOptions { include_alloys: false, ..Default::default() }) {
        Verdict::ChargeBalanced(v) => Some(v.into_iter().map(|(e, q)| (e, q, comp.amount(e))).collect()),
        _ => None,
    }
}

/// Cube of the covalent radius (Å³); elements without one count as 1.5 Å.
fn r3(e: Element) -> f64 {
    e.data().covalent_radius.unwrap_or(1.5).powi(3)
}

/// The template with elements replaced through `map` and the volume scaled by Σ n r_cov³ (new / old).
/// Per-structure and per-site properties of the template are dropped (they describe the template).
pub fn substitute(template: &Structure, map: &BTreeMap<Element, Element>) -> Structure {
    let mut s = template.substituted(map);
    s.properties.clear();
    s.site_properties.clear();
    let old: f64 = template.species().iter().map(|e| r3(*e)).sum();
    let new: f64 = s.species().iter().map(|e| r3(*e)).sum();
    s.scaled_to_volume(template.volume() * new / old).unwrap_or(s)
}

/// λ-table substitutions of `t` with probability above `threshold` (the identity left out). Templates
/// without a charge-balanced oxidation assignment give nothing.
pub fn by_probability(t: &Template, threshold: f64) -> Vec<Candidate> {
    let Some(ox) = oxidation_assignment(&t.structure) else { return Vec::new() };
    let comp: Vec<(String, f64)> = ox
        .iter()
        .map(|(e, q, n)| (species_name(&format!("{e}{}{}", q.abs(), if *q < 0 { '-' } else { '+' })), *n))
        .collect();
    let Ok(preds) = SubstitutionTable::embedded().predict(&comp, threshold, Direction::FromThis) else {
        return Vec::new();
    };
    preds
        .into_iter()
        .filter_map(|p| {
            let pairs: Vec<(Element, Element)> = p
                .substitutions
                .iter()
                .map(|(from, to)| Some((Element::from_label(from).ok()?.0, Element::from_label(to).ok()?.0)))
                .collect::<Option<_>>()?;
            if pairs.iter().all(|(a, b)| a == b) {
                return None;
            }
            let map: BTreeMap<Element, Element> = pairs.iter().copied().collect();
            Some(Candidate {
                structure: substitute(&t.structure, &map),
                template: t.name.clone(),
                prototype: t.prototype.clone(),
                substitutions: pairs,
                probability: Some(p.probability),
            })
        })
        .collect()
}

/// Every assignment of distinct elements of `elements` to the template's elements (in their
/// electronegativity order, so anions stay anions when `keep_order` is set) whose composition is
/// SMACT-valid. `keep_order`: only assignments that preserve the template's electronegativity order.
pub fn exhaustive(t: &Template, elements: &[Element], keep_order: bool) -> Vec<Candidate> {
    let old = t.structure.composition().sorted_elements();
    let k = old.len();
    let mut out = Vec::new();
    let mut chosen: Vec<Element> = Vec::with_capacity(k);
    fn rec(
        t: &Template,
        old: &[Element],
        pool: &[Element],
        keep_order: bool,
        chosen: &mut Vec<Element>,
        out: &mut Vec<Candidate>,
    ) {
        if chosen.len() == old.len() {
            let map: BTreeMap<Element, Element> = old.iter().copied().zip(chosen.iter().copied()).collect();
            let s = substitute(&t.structure, &map);
            if oxidation::validity(&s.composition(), ValidityOptions { include_alloys: false, ..Default::default() })
                .is_valid()
            {
                out.push(Candidate {
                    structure: s,
                    template: t.name.clone(),
                    prototype: t.prototype.clone(),
                    substitutions: map.into_iter().collect(),
                    probability: None,
                });
            }
            return;
        }
        for &e in pool {
            if chosen.contains(&e) {
                continue;
            }
            if keep_order
                && chosen.last().is_some_and(|p| {
                    oxidation::pauling_electronegativity(*p).unwrap_or(f64::NAN)
                        > oxidation::pauling_electronegativity(e).unwrap_or(f64::NAN)
                })
            {
                continue;
            }
            chosen.push(e);
            rec(t, old, pool, keep_order, chosen, out);
            chosen.pop();
        }
    }
    rec(t, &old, elements, keep_order, &mut chosen, &mut out);
    out
}

/// Remove repeats: candidates with the same reduced formula whose Oganov–Valle fingerprints (at a common
/// volume per Σ r_cov³) are closer than `max_distance` (cosine distance; 0.01 is a tight default). The
/// first of each is kept
/// (sort by probability first to keep the likeliest).
pub fn dedupe(candidates: Vec<Candidate>, max_distance: f64) -> Vec<Candidate> {
    let params = OvParams { rcut_ang: 8.0, ..OvParams::default() };
    let mut kept: Vec<Candidate> = Vec::new();
    let mut seen: HashMap<String, Vec<(usize, OvFingerprint)>> = HashMap::new();
    for c in candidates {
        let key = c.reduced_formula();
        // Same volume per Σ r_cov³ for every candidate, so one structure substituted from two templates of
        // different cell sizes (an experimental and a DFT rock salt) gives the same fingerprint.
        let reference = 7.0 * c.structure.species().iter().map(|e| r3(*e)).sum::<f64>();
        let scaled = c.structure.scaled_to_volume(reference).unwrap_or_else(|_| c.structure.clone());
        let fp = oganov_valle(&scaled, &params);
        let group = seen.entry(key).or_default();
        if group.iter().any(|(_, f)| cosine_distance(f, &fp) < max_distance) {
            continue;
        }
        group.push((kept.len(), fp));
        kept.push(c);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn template(formula: &str) -> Template {
        let e = Dataset::embedded().entries.iter().find(|e| e.formula == formula).unwrap();
        Template { name: e.id.to_string(), prototype: e.prototype.clone(), structure: e.structure.clone() }
    }

    #[test]
    fn rock_salt_substitutions_are_charge_balanced_and_rescaled() {
        let t = template("NaCl");
        let c = by_probability(&t, 1e-3);
        assert!(c.len() > 5, "{}", c.len());
        let formulas: Vec<String> = c.iter().map(|c| c.reduced_formula()).collect();
        assert!(formulas.iter().any(|f| f == "KCl") && formulas.iter().any(|f| f == "NaBr"), "{formulas:?}");
        for x in &c {
            assert!(oxidation_assignment(&x.structure).is_some(), "{}", x.reduced_formula());
            assert!(x.probability.unwrap() > 1e-3);
            assert!(x.structure.properties.is_empty());
        }
        // KCl from NaCl: volume scales with (r_K³ + r_Cl³) / (r_Na³ + r_Cl³).
        let kcl = c.iter().find(|c| c.reduced_formula() == "KCl").unwrap();
        let r = |s: &str| Element::from_symbol(s).unwrap().data().covalent_radius.unwrap().powi(3);
        let ratio = (r("K") + r("Cl")) / (r("Na") + r("Cl"));
        assert!((kcl.structure.volume() / t.structure.volume() - ratio).abs() < 1e-9);
        // Sorted by probability, highest first.
        assert!(c.windows(2).all(|w| w[0].probability >= w[1].probability));
    }

    #[test]
    fn exhaustive_keeps_valid_compositions_and_dedupe_drops_repeats() {
        let t = template("NaCl");
        let els: Vec<Element> =
            ["Li", "Na", "K", "F", "Cl", "Mg", "O"].iter().map(|s| Element::from_symbol(s).unwrap()).collect();
        let c = exhaustive(&t, &els, true);
        let formulas: Vec<String> = c.iter().map(|c| c.reduced_formula()).collect();
        assert!(formulas.contains(&"LiF".to_string()) && formulas.contains(&"MgO".to_string()), "{formulas:?}");
        assert!(!formulas.contains(&"LiMg".to_string()) && !formulas.contains(&"NaK".to_string()));
        // The same candidate twice, and once from another template of the same prototype, collapse to one.
        let mut twice = c.clone();
        twice.extend(c.iter().cloned());
        assert_eq!(dedupe(twice, 0.01).len(), c.len());
    }
}
