//! Hautier et al. (Inorg. Chem. 50, 656 (2011)) data-mined ionic substitution probabilities, with the λ
//! table shipped by pymatgen (`assets/lambda.json`, see `assets/README.md`).
//!
//! P(s|t) = exp λ(s,t) / Σ_s′ exp λ(s′,t) over every species s′ in the table; pairs the table lacks
//! have λ = −5 (pymatgen's `alpha`). Species are strings such as `"Fe3+"` or `"O2-"`.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Deserialize)]
struct LambdaFile {
    default_lambda: f64,
    pairs: Vec<(String, String, f64)>,
}

/// The λ table: symmetric pair weights and the species they mention.
#[derive(Debug)]
pub struct SubstitutionTable {
    default_lambda: f64,
    lambda: HashMap<(String, String), f64>,
    species: Vec<String>,
    /// Σ_s′ exp λ(s′, t) for each target species t.
    partition: HashMap<String, f64>,
}

impl SubstitutionTable {
    /// The table embedded from `assets/lambda.json`.
    pub fn embedded() -> &'static SubstitutionTable {
        static T: OnceLock<SubstitutionTable> = OnceLock::new();
        T.get_or_init(|| {
            let f: LambdaFile = serde_json::from_str(include_str!("../../assets/lambda.json")).expect("embedded lambda.json is valid (checked by tests)");
            SubstitutionTable::new(f.default_lambda, f.pairs)
        })
    }

    fn new(default_lambda: f64, pairs: Vec<(String, String, f64)>) -> SubstitutionTable {
        let mut lambda = HashMap::new();
        let mut species = BTreeSet::new();
        for (a, b, l) in pairs {
            species.insert(a.clone());
            species.insert(b.clone());
            lambda.insert((a.clone(), b.clone()), l);
            lambda.insert((b, a), l);
        }
        let species: Vec<String> = species.into_iter().collect();
        let mut t = SubstitutionTable { default_lambda, lambda, species, partition: HashMap::new() };
        let partition = t.species.iter().map(|target| (target.clone(), t.species.iter().map(|s| t.lambda(s, target).exp()).sum())).collect();
        t.partition = partition;
        t
    }

    /// λ(s, t), symmetric; −5 for pairs the table lacks.
    pub fn lambda(&self, s: &str, t: &str) -> f64 {
        self.lambda.get(&(s.to_string(), t.to_string())).copied().unwrap_or(self.default_lambda)
    }

    /// Species the table knows, sorted.
    pub fn species(&self) -> &[String] {
        &self.species
    }

    /// P(s | t): probability that species `s` substitutes for the fixed species `t` (pymatgen's
    /// `SubstitutionProbability.cond_prob`), the quantity Hautier's predictor multiplies.
    pub fn cond_prob(&self, s: &str, t: &str) -> f64 {
        let z = self.partition.get(t).copied().unwrap_or_else(|| self.species.iter().map(|x| self.lambda(x, t).exp()).sum());
        self.lambda(s, t).exp() / z
    }
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
