//! Hautier et al. (Inorg. Chem. 50, 656 (2011)) data-mined ionic substitution probabilities, with the λ
//! table shipped by pymatgen (`assets/lambda.json`, see `assets/README.md`).
//!
//! P(s|t) = exp λ(s,t) / Σ_s′ exp λ(s′,t) over every species s′ in the table; pairs the table lacks
//! have λ = −5 (pymatgen's `alpha`). Species are strings such as `"Fe3+"`, `"O2-"` or `"Li+"` (pymatgen's
//! current spelling; `"Li1+"` and `"Li+1"` are read as the same species).

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Deserialize)]
struct LambdaFile {
    default_lambda: f64,
    pairs: Vec<(String, String, f64)>,
}

/// The λ table: symmetric pair weights over the species it mentions, held densely by species index.
#[derive(Debug)]
pub struct SubstitutionTable {
    default_lambda: f64,
    /// Species the table mentions, sorted (pymatgen's spelling).
    species: Vec<String>,
    index: HashMap<String, usize>,
    /// λ(s, t) at `s * n + t`; `default_lambda` for pairs the table lacks.
    lambda: Vec<f64>,
    /// Σ_s′ exp λ(s′, t) for each target species t.
    partition: Vec<f64>,
}

/// pymatgen's spelling of a species: `Li+`, `O2-`, `Fe3+`; other spellings (`Li1+`, `Fe+3`) are
/// normalised, strings that are not species are returned as they are.
pub fn species_name(s: &str) -> String {
    match crate::crystal::Element::from_label(s) {
        Ok((el, Some(q))) => {
            let sign = if q < 0 { '-' } else { '+' };
            if q.abs() == 1 { format!("{el}{sign}") } else { format!("{el}{}{sign}", q.abs()) }
        }
        _ => s.to_string(),
    }
}

impl SubstitutionTable {
    /// The table embedded from `assets/lambda.json`.
    pub fn embedded() -> &'static SubstitutionTable {
        static T: OnceLock<SubstitutionTable> = OnceLock::new();
        T.get_or_init(|| {
            let f: LambdaFile = serde_json::from_str(include_str!("../../assets/lambda.json"))
                .expect("embedded lambda.json is valid (checked by tests)");
            SubstitutionTable::new(f.default_lambda, f.pairs)
        })
    }

    fn new(default_lambda: f64, pairs: Vec<(String, String, f64)>) -> SubstitutionTable {
        let pairs: Vec<(String, String, f64)> =
            pairs.into_iter().map(|(a, b, l)| (species_name(&a), species_name(&b), l)).collect();
        let species: Vec<String> =
            pairs.iter().flat_map(|(a, b, _)| [a.clone(), b.clone()]).collect::<BTreeSet<_>>().into_iter().collect();
        let index: HashMap<String, usize> = species.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect();
        let n = species.len();
        let mut lambda = vec![default_lambda; n * n];
        for (a, b, l) in &pairs {
            let (i, j) = (index[a], index[b]);
            lambda[i * n + j] = *l;
            lambda[j * n + i] = *l;
        }
        let partition = (0..n).map(|t| (0..n).map(|s| lambda[s * n + t].exp()).sum()).collect();
        SubstitutionTable { default_lambda, species, index, lambda, partition }
    }

    /// λ between species indices.
    fn lambda_at(&self, s: usize, t: usize) -> f64 {
        self.lambda[s * self.species.len() + t]
    }

    /// P(s | t) between species indices.
    fn cond_prob_at(&self, s: usize, t: usize) -> f64 {
        self.lambda_at(s, t).exp() / self.partition[t]
    }

    /// λ(s, t), symmetric; −5 for pairs the table lacks.
    pub fn lambda(&self, s: &str, t: &str) -> f64 {
        match (self.index.get(&species_name(s)), self.index.get(&species_name(t))) {
            (Some(&i), Some(&j)) => self.lambda_at(i, j),
            _ => self.default_lambda,
        }
    }

    /// Species the table knows, sorted.
    pub fn species(&self) -> &[String] {
        &self.species
    }

    /// P(s | t): probability that species `s` substitutes for the fixed species `t` (pymatgen's
    /// `SubstitutionProbability.cond_prob`), the quantity Hautier's predictor multiplies.
    pub fn cond_prob(&self, s: &str, t: &str) -> f64 {
        let z = match self.index.get(&species_name(t)) {
            Some(&j) => self.partition[j],
            None => self.species.iter().map(|x| self.lambda(x, t).exp()).sum(),
        };
        self.lambda(s, t).exp() / z
    }
}

/// Which way a prediction goes (pymatgen's `to_this_composition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Compositions that would turn *into* the given one by substitution (scores P(s | t)).
    ToThis,
    /// Compositions the given one would turn into (scores P(t | s)).
    FromThis,
}

/// One substitution of a whole composition: `(from, to)` species per position, in the input order.
#[derive(Debug, Clone, PartialEq)]
pub struct SubstitutionPrediction {
    /// Product of the conditional probabilities of the position-wise substitutions.
    pub probability: f64,
    pub substitutions: Vec<(String, String)>,
}

impl SubstitutionTable {
    /// pymatgen's `SubstitutionPredictor(threshold).composition_prediction`: every assignment of distinct
    /// species to the positions of `composition` (species such as `"Fe3+"` with amounts) whose product of
    /// conditional probabilities exceeds `threshold`, found by depth-first branch and bound, keeping only
    /// those whose substituted composition is charge-balanced. The identity substitution is included.
    /// Sorted by probability, highest first. `Err` names a species the table lacks.
    pub fn predict(
        &self,
        composition: &[(String, f64)],
        threshold: f64,
        direction: Direction,
    ) -> Result<Vec<SubstitutionPrediction>, String> {
        let composition: Vec<(String, f64)> = composition.iter().map(|(s, n)| (species_name(s), *n)).collect();
        let fixed_idx: Vec<usize> = composition
            .iter()
            .map(|(s, _)| {
                self.index.get(s).copied().ok_or_else(|| format!("species {s:?} is not in the substitution table"))
            })
            .collect::<Result<_, _>>()?;
        let score = |s: usize, t: usize| match direction {
            Direction::ToThis => self.cond_prob_at(s, t),
            Direction::FromThis => self.cond_prob_at(t, s),
        };
        let fixed: Vec<&str> = composition.iter().map(|(s, _)| s.as_str()).collect();
        // Scores of every table species at every position, and the best one (the bound).
        let scores: Vec<Vec<f64>> =
            fixed_idx.iter().map(|&t| (0..self.species.len()).map(|s| score(s, t)).collect()).collect();
        let best: Vec<f64> = scores.iter().map(|row| row.iter().copied().fold(0.0, f64::max)).collect();
        let charge: Vec<f64> = self
            .species
            .iter()
            .map(|s| crate::crystal::Element::from_label(s).ok().and_then(|(_, q)| q).unwrap_or(0) as f64)
            .collect();
        let mut out = Vec::new();
        let mut chosen: Vec<usize> = Vec::with_capacity(fixed.len());
        let mut probs: Vec<f64> = Vec::with_capacity(fixed.len());
        let mut budget = MAX_SUBSTITUTION_NODES;
        let mut search = Search { scores: &scores, best: &best, threshold, budget: &mut budget };
        let complete = self.branch(&mut search, &mut chosen, &mut probs, &mut |chosen: &[usize], p: f64| {
            let q: f64 = chosen.iter().zip(&composition).map(|(&s, (_, n))| charge[s] * n).sum();
            if q.abs() < 1e-8 {
                let substitutions = chosen
                    .iter()
                    .zip(&fixed)
                    .map(|(&s, t)| match direction {
                        Direction::ToThis => (self.species[s].clone(), t.to_string()),
                        Direction::FromThis => (t.to_string(), self.species[s].clone()),
                    })
                    .collect();
                out.push(SubstitutionPrediction { probability: p, substitutions });
            }
        });
        if !complete {
            return Err(format!(
                "threshold {threshold:e} admits more than {MAX_SUBSTITUTION_NODES:e} partial substitutions of {} \
                 species (the search is exponential in the number of species): raise the threshold",
                fixed.len()
            ));
        }
        out.sort_by(|a, b| b.probability.total_cmp(&a.probability).then_with(|| a.substitutions.cmp(&b.substitutions)));
        Ok(out)
    }

    /// Depth-first branch and bound; `false` when the node budget ran out before the search was complete.
    fn branch(
        &self,
        search: &mut Search<'_>,
        chosen: &mut Vec<usize>,
        probs: &mut Vec<f64>,
        found: &mut dyn FnMut(&[usize], f64),
    ) -> bool {
        let (scores, best, threshold) = (search.scores, search.best, search.threshold);
        let i = chosen.len();
        for s in 0..self.species.len() {
            let p = scores[i][s];
            // Upper bound: the choices so far, this one, and the best possible for the rest (multiplied
            // left to right, as pymatgen does, so results at the threshold agree).
            let bound = probs.iter().copied().chain([p]).chain(best[i + 1..].iter().copied()).fold(1.0, |a, b| a * b);
            if bound <= threshold || chosen.contains(&s) {
                continue;
            }
            if *search.budget == 0 {
                return false;
            }
            *search.budget -= 1;
            chosen.push(s);
            probs.push(p);
            let complete = if chosen.len() == scores.len() {
                found(chosen, bound);
                true
            } else {
                self.branch(search, chosen, probs, found)
            };
            chosen.pop();
            probs.pop();
            if !complete {
                return false;
            }
        }
        true
    }
}

/// Most partial assignments the substitution search visits (a few seconds): with a tiny threshold every
/// assignment of the table's ~200 species passes the bound, and 4 positions would be 10⁹ of them.
pub const MAX_SUBSTITUTION_NODES: u64 = 20_000_000;

/// What [`SubstitutionTable::branch`] reads, and its remaining node budget.
struct Search<'a> {
    scores: &'a [Vec<f64>],
    best: &'a [f64],
    threshold: f64,
    budget: &'a mut u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const COND_AL_FE: f64 = 0.046519749499403226;

    #[test]
    fn probabilities_are_normalised() {
        let t = SubstitutionTable::embedded();
        assert!(t.species().len() > 100);
        let total: f64 = t.species().iter().map(|s| t.cond_prob(s, "Fe3+")).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(t.lambda("Xx9+", "Fe3+"), -5.0);
        // pymatgen 2026.10.24: SubstitutionProbability().cond_prob("Al3+", "Fe3+")
        assert!((t.cond_prob("Al3+", "Fe3+") - COND_AL_FE).abs() < 1e-12);
        assert_eq!(t.lambda("Fe3+", "Al3+"), t.lambda("Al3+", "Fe3+"));
    }
}
