//! What a search is asked to do: the composition or element pool, the algorithm and its population and
//! budget, operator shares, objectives, tolerances; checked by [`EvolveSettings::validate`] with the
//! offending key named.

use serde::{Deserialize, Serialize};

use super::{ObjectiveSpec, prototype};
use crate::crystal::{Composition, Element};

/// The search algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    Ga,
    Random,
    Anneal,
    Swarm,
    /// Bayesian optimisation: many GA offspring and random structures proposed, a Gaussian-process
    /// surrogate of the (first) objective after relaxation, and the expected-improvement best evaluated.
    Bo,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] =
        [Algorithm::Ga, Algorithm::Random, Algorithm::Anneal, Algorithm::Swarm, Algorithm::Bo];

    /// The algorithm of this name (`ga`, `random`, `anneal`, `swarm`, `bo`).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ga => "ga",
            Algorithm::Random => "random",
            Algorithm::Anneal => "anneal",
            Algorithm::Swarm => "swarm",
            Algorithm::Bo => "bo",
        }
    }
}

/// What an individual is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// Crystal structures, relaxed with the potential.
    #[default]
    Structure,
    /// Element assignments on template structures (`templates`), judged by the forward models and the
    /// dataset's DFT hull without relaxation ([`prototype`]).
    Prototype,
}

/// Relative shares of the operators making offspring (normalised when drawn).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorShares {
    pub random: f64,
    pub heredity: f64,
    pub strain: f64,
    pub permutation: f64,
    pub rattle: f64,
    /// Variable composition only: change one atom's element.
    pub transmutation: f64,
}

impl Default for OperatorShares {
    fn default() -> Self {
        OperatorShares { random: 0.2, heredity: 0.4, strain: 0.15, permutation: 0.1, rattle: 0.15, transmutation: 0.1 }
    }
}

/// What to search and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvolveSettings {
    /// Formula of one formula unit, e.g. `"SrTiO3"` (fixed-composition search).
    pub composition: String,
    /// Variable-composition search instead: every charge-neutral stoichiometry of these elements
    /// (SMACT rules, ICSD-24 oxidation states, amounts up to `max_amount`), e.g. `["Sr", "Ti", "O"]`;
    /// the objectives must then compare compositions (`e_above_hull`, property targets).
    pub elements: Vec<String>,
    /// Largest amount of an element in a variable-composition formula unit.
    pub max_amount: u32,
    /// `structure` (default) or `prototype` (element assignments on `templates`, `elements` the pool).
    pub space: Space,
    /// Prototype space: dataset ids or formulas, or `aflow:KEY` prototypes.
    pub templates: Vec<String>,
    /// Formula units per primitive cell, inclusive range.
    pub formula_units: [usize; 2],
    /// Most atoms per cell.
    pub max_atoms: usize,
    pub algorithm: Algorithm,
    /// Individuals per generation (walkers for `anneal`, particles for `swarm`).
    pub population: usize,
    /// Structures relaxed and evaluated in all.
    pub budget: usize,
    pub operators: OperatorShares,
    /// Minimised objectives: `energy` (eV/atom), `e_above_hull` (eV/atom, on the CHGNet hull of the
    /// dataset), or a forward-model target such as `band_gap in [1.5, 2.5]` / `max band_gap`.
    pub objectives: Vec<ObjectiveSpec>,
    /// Atoms i, j start at least this × (rᵢ + rⱼ) apart (covalent radii).
    pub min_distance_factor: f64,
    /// Two relaxed structures are duplicates below this Oganov–Valle cosine distance (fingerprints of
    /// the structures scaled to 15 Å³/atom) and within 0.01 eV/atom.
    pub duplicate_distance: f64,
    /// Space groups for random structures (empty: all 230).
    pub space_groups: Vec<u8>,
    /// `anneal`: starting temperature (eV/atom) and factor per generation.
    pub temperature: f64,
    pub cooling: f64,
    /// Stop as soon as an individual reaches this energy (eV/atom); for benchmarks.
    pub stop_energy: Option<f64>,
}

impl Default for EvolveSettings {
    fn default() -> Self {
        EvolveSettings {
            composition: String::new(),
            elements: Vec::new(),
            max_amount: 4,
            space: Space::Structure,
            templates: Vec::new(),
            formula_units: [1, 4],
            max_atoms: 20,
            algorithm: Algorithm::Ga,
            population: 12,
            budget: 120,
            operators: OperatorShares::default(),
            objectives: vec![ObjectiveSpec::Energy],
            min_distance_factor: 0.7,
            duplicate_distance: 0.01,
            space_groups: Vec::new(),
            temperature: 0.05,
            cooling: 0.85,
            stop_energy: None,
        }
    }
}

impl EvolveSettings {
    /// The formula units searched: the composition's, or every neutral stoichiometry of `elements`.
    pub fn formula_units_searched(&self) -> Result<Vec<Vec<(Element, usize)>>, String> {
        if !self.elements.is_empty() {
            if !self.composition.trim().is_empty() {
                return Err("keys `composition` and `elements`: give one (fixed or variable composition)".into());
            }
            let els: Vec<Element> = self
                .elements
                .iter()
                .map(|e| Element::from_symbol(e.trim()).map_err(|e| format!("key `elements`: {e}")))
                .collect::<Result<_, _>>()?;
            use crate::chem::oxidation::{MAX_STOICHIOMETRY_ENUMERATION, stoichiometry_enumeration_size};
            let size = stoichiometry_enumeration_size(
                &els,
                self.max_amount.max(1),
                crate::chem::oxidation::OxidationSet::Icsd24,
            );
            if size > MAX_STOICHIOMETRY_ENUMERATION {
                return Err(format!(
                    "keys `elements` and `max_amount`: {} elements with amounts up to {} give {size:.1e} combinations of \
                     oxidation states and amounts to search for neutral formula units (the limit is \
                     {MAX_STOICHIOMETRY_ENUMERATION:.0e}): give fewer elements or a lower max_amount",
                    els.len(),
                    self.max_amount.max(1)
                ));
            }
            let stoich = crate::chem::oxidation::neutral_stoichiometries(
                &els,
                self.max_amount.max(1),
                crate::chem::oxidation::OxidationSet::Icsd24,
            )
            .map_err(|e| format!("key `elements`: {e} has no known oxidation states"))?;
            let mut units: Vec<Vec<(Element, usize)>> = stoich
                .into_iter()
                .map(|s| els.iter().copied().zip(s.amounts.iter().map(|a| *a as usize)).collect())
                .collect();
            units.sort();
            units.dedup();
            if units.is_empty() {
                return Err(format!(
                    "key `elements`: no charge-neutral stoichiometry of {} with amounts up to {}",
                    self.elements.join("-"),
                    self.max_amount
                ));
            }
            return Ok(units);
        }
        let c = Composition::from_formula(&self.composition).map_err(|e| format!("key `composition`: {e}"))?;
        if c.n_elements() == 0 {
            return Err(
                "key `composition`: give a formula such as \"SrTiO3\" (or `elements` for a variable composition)"
                    .into(),
            );
        }
        let unit = c
            .iter()
            .map(|(e, n)| {
                if n.fract() == 0.0 && n >= 1.0 {
                    Ok((e, n as usize))
                } else {
                    Err(format!("key `composition`: {} has a non-integer amount {n}", e))
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(vec![unit])
    }

    fn validate_prototype(&self) -> Result<(), String> {
        if self.elements.is_empty() || !self.composition.trim().is_empty() {
            return Err("key `elements`: a prototype-space search needs the element pool (and no `composition`)".into());
        }
        if self.templates.is_empty() {
            return Err("key `templates`: give dataset formulas or ids, or aflow:KEY prototypes".into());
        }
        if !matches!(self.algorithm, Algorithm::Ga | Algorithm::Random | Algorithm::Anneal) {
            return Err(format!(
                "key `algorithm`: {} works on structures; use ga, random or anneal in prototype space",
                self.algorithm.name()
            ));
        }
        if self.objectives.is_empty() || self.objectives.contains(&ObjectiveSpec::Energy) {
            return Err("key `objectives`: prototype space has no relaxed energies; use e_above_hull (predicted) and property targets".into());
        }
        if self.population < 2 || self.budget < self.population {
            return Err("keys `population`/`budget`: expected 2 ≤ population ≤ budget".into());
        }
        self.prototype_space().map(|_| ())
    }

    /// The prototype space of these settings.
    pub fn prototype_space(&self) -> Result<prototype::PrototypeSpace, String> {
        let pool: Vec<Element> = self
            .elements
            .iter()
            .map(|e| Element::from_symbol(e.trim()).map_err(|e| format!("key `elements`: {e}")))
            .collect::<Result<_, _>>()?;
        prototype::PrototypeSpace::new(&self.templates, &pool, self.max_atoms)
    }

    /// True for a variable-composition search.
    pub fn variable(&self) -> bool {
        !self.elements.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.space == Space::Prototype {
            return self.validate_prototype();
        }
        if !self.templates.is_empty() {
            return Err("key `templates`: only for space = \"prototype\"".into());
        }
        let units = self.formula_units_searched()?;
        let per: usize = units.iter().map(|u| u.iter().map(|x| x.1).sum::<usize>()).min().unwrap_or(0);
        let [lo, hi] = self.formula_units;
        if lo == 0 || hi < lo {
            return Err(format!("key `formula_units`: expected [min, max] with 1 ≤ min ≤ max, got [{lo}, {hi}]"));
        }
        if per * lo > self.max_atoms {
            return Err(format!(
                "key `max_atoms`: {} formula unit(s) of {} already hold {} atoms",
                lo,
                self.composition,
                per * lo
            ));
        }
        if self.variable() && self.objectives.contains(&ObjectiveSpec::Energy) {
            return Err("key `objectives`: energies per atom of different compositions do not compare; use `e_above_hull` for a variable composition".into());
        }
        if self.population < 2 {
            return Err("key `population`: expected at least 2".into());
        }
        if self.budget < self.population {
            return Err(format!("key `budget`: expected at least the population ({})", self.population));
        }
        if self.objectives.is_empty() {
            return Err("key `objectives`: give at least one (e.g. \"energy\")".into());
        }
        if let Some(bad) = self.space_groups.iter().find(|n| !(1..=230).contains(*n)) {
            return Err(format!("key `space_groups`: {bad} is not a space-group number (1–230)"));
        }
        let s = &self.operators;
        let shares = [s.random, s.heredity, s.strain, s.permutation, s.rattle, s.transmutation];
        if shares.iter().any(|x| !x.is_finite() || *x < 0.0) || shares.iter().sum::<f64>() <= 0.0 {
            return Err("key `operators`: shares must be non-negative with a positive sum".into());
        }
        if !(self.min_distance_factor > 0.0 && self.min_distance_factor < 2.0) {
            return Err(format!(
                "key `min_distance_factor`: expected a number in (0, 2), got {}",
                self.min_distance_factor
            ));
        }
        if !(self.cooling > 0.0 && self.cooling <= 1.0 && self.temperature >= 0.0) {
            return Err("key `cooling`/`temperature`: expected 0 < cooling ≤ 1 and temperature ≥ 0".into());
        }
        Ok(())
    }
}
