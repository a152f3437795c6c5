//! Composition/prototype space: individuals are element assignments on template structures (dataset
//! crystals or AFLOW prototypes), judged by the forward models and the dataset's DFT hull without any
//! relaxation. Every individual is charge-balanced by SMACT's rules.
//!
//! Moves: a random assignment; an element swap guided by Hautier's substitution probabilities (the
//! replacing element is drawn with probability ∝ P(new species | old species) over the element pool);
//! crossover of two assignments on the same template (each template element takes the element of one
//! parent); and a template switch (the same elements, by electronegativity order, on another template with
//! as many elements). The template of an individual travels in the structure's `template` property.

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::chem::oxidation::oxidation_states;
use crate::chem::substitution::{SubstitutionTable, species_name};
use crate::crystal::{Element, Structure};
use crate::data::Dataset;
use crate::search::enumerate::{Template, oxidation_assignment, substitute, templates_for};

/// The templates and the element pool of a prototype-space search.
#[derive(Debug, Clone)]
pub struct PrototypeSpace {
    pub templates: Vec<Template>,
    pub pool: Vec<Element>,
    pub max_atoms: usize,
}

fn species(e: Element, q: i8) -> String {
    species_name(&format!("{e}{}{}", q.abs(), if q < 0 { '-' } else { '+' }))
}

impl PrototypeSpace {
    /// Templates by key (`SrTiO3`, dataset ids, `aflow:perovskite`, …) with at most `max_atoms` sites.
    pub fn new(keys: &[String], pool: &[Element], max_atoms: usize) -> Result<PrototypeSpace, String> {
        let ds = Dataset::embedded();
        let mut templates = Vec::new();
        for k in keys {
            let t = templates_for(k, ds);
            if t.is_empty() {
                return Err(format!(
                    "key `templates`: {k:?} is neither a dataset id or formula nor an AFLOW prototype (aflow:KEY)"
                ));
            }
            templates.extend(t.into_iter().filter(|t| t.structure.n_sites() <= max_atoms));
        }
        if templates.is_empty() {
            return Err(format!("key `templates`: none has at most {max_atoms} atoms"));
        }
        let need = templates.iter().map(|t| t.structure.composition().n_elements()).min().unwrap_or(1);
        if pool.len() < need {
            return Err(format!("key `elements`: {} elements cannot fill a template with {need}", pool.len()));
        }
        Ok(PrototypeSpace { templates, pool: pool.to_vec(), max_atoms })
    }

    /// Index of the template an individual sits on.
    pub fn template_of(s: &Structure) -> Option<usize> {
        s.properties.get("template").and_then(|v| v.as_u64()).map(|v| v as usize)
    }

    /// The template's elements (sorted) mapped to `s`'s elements, read site by site.
    fn assignment(&self, s: &Structure) -> Option<(usize, BTreeMap<Element, Element>)> {
        let t = Self::template_of(s)?;
        let tmpl = &self.templates.get(t)?.structure;
        let mut map = BTreeMap::new();
        for (a, b) in tmpl.species().iter().zip(s.species()) {
            map.insert(*a, *b);
        }
        Some((t, map))
    }

    /// The template `t` with its elements replaced by `map`, when the result is charge-balanced and the
    /// new elements are distinct.
    pub fn place(&self, t: usize, map: &BTreeMap<Element, Element>) -> Option<Structure> {
        let mut targets: Vec<Element> = map.values().copied().collect();
        targets.sort();
        targets.dedup();
        if targets.len() != map.len() {
            return None;
        }
        let mut s = substitute(&self.templates[t].structure, map);
        oxidation_assignment(&s)?;
        s.properties.insert("template".into(), serde_json::json!(t));
        s.properties.insert("template_name".into(), serde_json::json!(self.templates[t].name));
        Some(s)
    }

    /// A random charge-balanced assignment on a random template.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Structure> {
        for _ in 0..200 {
            let t = rng.random_range(0..self.templates.len());
            let els = self.templates[t].structure.composition().sorted_elements();
            let mut pool = self.pool.clone();
            pool.shuffle(rng);
            if pool.len() < els.len() {
                continue;
            }
            let map: BTreeMap<Element, Element> = els.iter().copied().zip(pool).collect();
            if let Some(s) = self.place(t, &map) {
                return Some(s);
            }
        }
        None
    }

    /// Replace one element by another of the pool, drawn by Hautier's substitution probability.
    pub fn swap(&self, s: &Structure, rng: &mut impl Rng) -> Option<Structure> {
        let (t, map) = self.assignment(s)?;
        let ox = oxidation_assignment(s)?;
        let table = SubstitutionTable::embedded();
        for _ in 0..20 {
            let (old, q, _) = *ox.choose(rng)?;
            let old_species = species(old, q);
            let present: Vec<Element> = map.values().copied().collect();
            let options: Vec<(Element, f64)> = self
                .pool
                .iter()
                .filter(|e| !present.contains(e))
                .map(|e| {
                    let p = oxidation_states(*e, crate::chem::oxidation::OxidationSet::Icsd24)
                        .iter()
                        .map(|q| table.cond_prob(&species(*e, *q), &old_species))
                        .fold(0.0, f64::max);
                    (*e, p)
                })
                .filter(|(_, p)| *p > 0.0)
                .collect();
            let total: f64 = options.iter().map(|o| o.1).sum();
            if total <= 0.0 {
                continue;
            }
            let mut x = rng.random::<f64>() * total;
            let new = options.iter().find(|o| {
                x -= o.1;
                x <= 0.0
            })?;
            let m: BTreeMap<Element, Element> =
                map.iter().map(|(k, v)| (*k, if *v == old { new.0 } else { *v })).collect();
            if let Some(c) = self.place(t, &m) {
                return Some(c);
            }
        }
        None
    }

    /// Each template element takes the element one of the parents (on the same template) gives it.
    pub fn crossover(&self, a: &Structure, b: &Structure, rng: &mut impl Rng) -> Option<Structure> {
        let (ta, ma) = self.assignment(a)?;
        let (tb, mb) = self.assignment(b)?;
        if ta != tb {
            return None;
        }
        for _ in 0..10 {
            let m: BTreeMap<Element, Element> =
                ma.iter().map(|(k, v)| (*k, if rng.random::<bool>() { *v } else { mb[k] })).collect();
            if m != ma
                && m != mb
                && let Some(c) = self.place(ta, &m)
            {
                return Some(c);
            }
        }
        None
    }

    /// The same elements, by electronegativity order, on another template with as many elements.
    pub fn switch_template(&self, s: &Structure, rng: &mut impl Rng) -> Option<Structure> {
        let (t, _) = self.assignment(s)?;
        let mut els = s.composition().elements();
        let chi = |e: &Element| e.data().electronegativity.unwrap_or(0.0);
        els.sort_by(|a, b| chi(a).total_cmp(&chi(b)));
        let options: Vec<usize> = (0..self.templates.len())
            .filter(|&u| u != t && self.templates[u].structure.composition().n_elements() == els.len())
            .collect();
        for _ in 0..10 {
            let &u = options.choose(rng)?;
            let mut tel = self.templates[u].structure.composition().elements();
            tel.sort_by(|a, b| chi(a).total_cmp(&chi(b)));
            let m: BTreeMap<Element, Element> = tel.into_iter().zip(els.iter().copied()).collect();
            if let Some(c) = self.place(u, &m) {
                return Some(c);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn moves_stay_charge_balanced_and_on_templates() {
        let pool: Vec<Element> = ["Ca", "Sr", "Ba", "Mg", "Ti", "Zr", "Sn", "O", "S"]
            .iter()
            .map(|s| Element::from_symbol(s).unwrap())
            .collect();
        let space = PrototypeSpace::new(&["SrTiO3".into(), "MgAl2O4".into(), "CaTiO3".into()], &pool, 30).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let a = space.random(&mut rng).unwrap();
        let b = space.random(&mut rng).unwrap();
        let mut made = 0;
        for _ in 0..30 {
            for c in [space.swap(&a, &mut rng), space.crossover(&a, &b, &mut rng), space.switch_template(&a, &mut rng)]
                .into_iter()
                .flatten()
            {
                assert!(oxidation_assignment(&c).is_some(), "{}", c.reduced_formula());
                assert!(c.species().iter().all(|e| pool.contains(e)));
                assert!(PrototypeSpace::template_of(&c).is_some());
                made += 1;
            }
        }
        assert!(made > 20, "{made}");
    }
}
