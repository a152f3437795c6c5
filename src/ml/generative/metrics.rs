//! Figures of merit for generated crystals, as defined in the CDVAE protocol (see MISSION.md): structural
//! and compositional (SMACT) validity, uniqueness and novelty by structure matching (pymatgen's
//! defaults: ltol 0.2, stol 0.3, 5°), and 1-D Wasserstein distances to a reference set for density
//! (g/cm³), number of elements and the formation energy predicted by a forward model (eV/atom), and
//! coverage (COV-R, COV-P; [`super::coverage`]).
//! They apply to any folder of crystals, so other generators' output can be scored the same way.

use std::collections::HashMap;

use serde::Serialize;

use crate::chem::oxidation::{ValidityOptions, validity};
use crate::crystal::Structure;
use crate::crystal::matcher::StructureMatcher;
use crate::ml::{ModelError, PropertyModel, Target};

use super::coverage::{COMPOSITION_CUTOFF, CompositionScaler, Coverage, STRUCTURE_CUTOFF, coverage, fingerprints};

/// 1-D Wasserstein distance W₁ between two empirical distributions (scipy's `wasserstein_distance`).
pub fn wasserstein_1d(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let mut all: Vec<f64> = a.iter().chain(&b).copied().collect();
    all.sort_by(f64::total_cmp);
    let cdf = |v: &[f64], x: f64| v.partition_point(|y| *y <= x) as f64 / v.len() as f64;
    all.windows(2).map(|w| (cdf(&a, w[0]) - cdf(&b, w[0])).abs() * (w[1] - w[0])).sum()
}

/// Training crystals by reduced formula, for novelty: a crystal is novel when no training crystal of its
/// reduced formula matches it (pymatgen's StructureMatcher defaults; different formulas never match).
pub struct NoveltyIndex<'a> {
    by_formula: HashMap<String, Vec<&'a Structure>>,
    matcher: StructureMatcher,
}

impl<'a> NoveltyIndex<'a> {
    pub fn new(train: impl IntoIterator<Item = &'a Structure>) -> NoveltyIndex<'a> {
        let mut by_formula: HashMap<String, Vec<&'a Structure>> = HashMap::new();
        for s in train {
            by_formula.entry(s.reduced_formula()).or_default().push(s);
        }
        NoveltyIndex { by_formula, matcher: StructureMatcher::default() }
    }

    pub fn is_novel(&self, s: &Structure) -> bool {
        self.by_formula.get(&s.reduced_formula()).is_none_or(|list| !list.iter().any(|t| self.matcher.fit(s, t)))
    }
}

/// Distributions compared by Wasserstein distance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Distances {
    pub density: f64,
    pub n_elements: f64,
    pub formation_energy: f64,
}

/// The figures for one set of crystals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerationMetrics {
    pub n: usize,
    /// Shares of all crystals.
    pub structural_validity: f64,
    pub compositional_validity: f64,
    pub validity: f64,
    /// Among valid crystals: unique share (distinct structures / valid) and novel share (no match in
    /// the training set).
    pub uniqueness: f64,
    pub novelty: f64,
    /// Valid, unique and novel share of all crystals.
    pub unique_novel: f64,
    /// Share of the charge-balanced compounds whose most plausible oxidation states include a rare one
    /// (under [`crate::chem::oxidation::RARE_STATE_SHARE`] of the element's ICSD compounds: peroxide O⁻,
    /// Cl⁷⁺…), and how many compounds that share is of.
    pub rare_oxidation_share: f64,
    pub n_charge_balanced: usize,
    /// The same for rare states of nonmetals only (peroxide O⁻, S⁻, Cl⁷⁺…: the charge-balance loopholes the
    /// decoder's penalty avoids; [`super::composition::PENALISED_ELEMENTS`]).
    pub rare_nonmetal_share: f64,
    /// Wasserstein distances of the valid crystals to the reference set.
    pub wasserstein: Distances,
    /// The same distances for the training set itself (the floor a perfect generator reaches).
    pub wasserstein_floor: Option<Distances>,
    /// The forward model used for formation energies.
    pub property_model: String,
    /// Coverage of the comparison set (COV-R, COV-P; [`super::coverage`]), unless turned off.
    pub coverage: Option<Coverage>,
    /// The same for the training sample of the floor.
    pub coverage_floor: Option<Coverage>,
}

/// Per-crystal facts the figures are built from.
#[derive(Debug, Clone, Serialize)]
pub struct CrystalFacts {
    pub structurally_valid: bool,
    pub compositionally_valid: bool,
    pub unique: bool,
    pub novel: bool,
    pub density: f64,
    pub n_elements: usize,
    pub formation_energy: Option<f64>,
    /// Charge-balanced only through a rare oxidation state; `None` for elements, alloys and failures.
    pub rare_oxidation_state: Option<bool>,
    /// … through a rare state of a nonmetal.
    pub rare_nonmetal_state: bool,
}

/// Reference crystals: the training set (for novelty, by reduced formula) and the comparison set (for
/// distributions, usually the test split).
pub struct Reference<'a> {
    pub train: &'a [Structure],
    pub compare: &'a [Structure],
}

fn distribution(structures: &[&Structure], fe: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    (
        structures.iter().map(|s| s.density()).collect(),
        structures.iter().map(|s| s.composition().n_elements() as f64).collect(),
        fe.to_vec(),
    )
}

fn predict_fe(model: &dyn PropertyModel, structures: &[&Structure]) -> Result<Vec<f64>, ModelError> {
    let k = model
        .targets()
        .iter()
        .position(|t| *t == Target::FormationEnergyPerAtom)
        .ok_or_else(|| ModelError::Setup(format!("{} does not predict formation energy", model.name())))?;
    let owned: Vec<Structure> = structures.iter().map(|s| (*s).clone()).collect();
    let mut out = Vec::with_capacity(owned.len());
    for chunk in owned.chunks(512) {
        out.extend(model.predict(chunk)?.into_iter().map(|p| p[k].mean));
    }
    Ok(out)
}

/// What [`evaluate`] computes besides validity, uniqueness, novelty and the Wasserstein distances.
#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    /// Also score a sample of the training set as large as the generated set (the floor).
    pub floor: bool,
    /// Coverage of the comparison set (CrystalNN fingerprints of every crystal: seconds per thousand).
    pub coverage: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { floor: false, coverage: true }
    }
}

/// Score `generated` against `reference`.
pub fn evaluate(
    generated: &[Structure],
    reference: &Reference,
    model: &dyn PropertyModel,
    options: EvalOptions,
) -> Result<(GenerationMetrics, Vec<CrystalFacts>), ModelError> {
    let n = generated.len();
    let matcher = StructureMatcher::default();
    let opts = ValidityOptions::default();
    let mut facts: Vec<CrystalFacts> = generated
        .iter()
        .map(|s| CrystalFacts {
            structurally_valid: s.is_structurally_valid(),
            compositionally_valid: validity(&s.composition(), opts).is_valid(),
            unique: false,
            novel: false,
            density: s.density(),
            n_elements: s.composition().n_elements(),
            formation_energy: None,
            rare_oxidation_state: crate::chem::oxidation::rare_states(&s.composition(), opts).map(|r| !r.is_empty()),
            rare_nonmetal_state: super::composition::relies_on_rare_nonmetal_state(&s.composition()),
        })
        .collect();
    let valid: Vec<usize> = (0..n).filter(|&i| facts[i].structurally_valid && facts[i].compositionally_valid).collect();
    let valid_s: Vec<Structure> = valid.iter().map(|&i| generated[i].clone()).collect();
    for g in matcher.group(&valid_s) {
        facts[valid[g[0]]].unique = true;
    }
    let index = NoveltyIndex::new(reference.train);
    let novel: Vec<bool> = {
        use rayon::prelude::*;
        valid.par_iter().map(|&i| index.is_novel(&generated[i])).collect()
    };
    for (k, &i) in valid.iter().enumerate() {
        facts[i].novel = novel[k];
    }
    // Distributions: valid generated crystals against the comparison set, E_f from the forward model.
    let gen_refs: Vec<&Structure> = valid.iter().map(|&i| &generated[i]).collect();
    let fe = predict_fe(model, &gen_refs)?;
    for (k, &i) in valid.iter().enumerate() {
        facts[i].formation_energy = Some(fe[k]);
    }
    let cmp_refs: Vec<&Structure> = reference.compare.iter().collect();
    let cmp_fe = predict_fe(model, &cmp_refs)?;
    let (cd, cn, cf) = distribution(&cmp_refs, &cmp_fe);
    let dist_to_compare = |refs: &[&Structure], fe: &[f64]| {
        let (d, e, f) = distribution(refs, fe);
        Distances {
            density: wasserstein_1d(&d, &cd),
            n_elements: wasserstein_1d(&e, &cn),
            formation_energy: wasserstein_1d(&f, &cf),
        }
    };
    let wasserstein = dist_to_compare(&gen_refs, &fe);
    // Coverage: every generated crystal against the comparison set, compositions standardised on the
    // training set.
    let cov_setup = options.coverage.then(|| {
        let scaler =
            CompositionScaler::fit(if reference.train.is_empty() { reference.compare } else { reference.train });
        let compare_fp = fingerprints(reference.compare, &scaler);
        (scaler, compare_fp)
    });
    let cov = cov_setup.as_ref().map(|(scaler, compare_fp)| {
        coverage(&fingerprints(generated, scaler), compare_fp, STRUCTURE_CUTOFF, COMPOSITION_CUTOFF)
    });
    let (wasserstein_floor, coverage_floor) = if options.floor && !reference.train.is_empty() {
        let step = (reference.train.len() / n.max(1)).max(1);
        let sample: Vec<&Structure> = reference.train.iter().step_by(step).take(n.max(1)).collect();
        let sfe = predict_fe(model, &sample)?;
        let owned: Vec<Structure> = sample.iter().map(|s| (*s).clone()).collect();
        let cov_floor = cov_setup.as_ref().map(|(scaler, compare_fp)| {
            coverage(&fingerprints(&owned, scaler), compare_fp, STRUCTURE_CUTOFF, COMPOSITION_CUTOFF)
        });
        (Some(dist_to_compare(&sample, &sfe)), cov_floor)
    } else {
        (None, None)
    };
    let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let n_valid = valid.len();
    let of_valid = |k: usize| if n_valid == 0 { 0.0 } else { k as f64 / n_valid as f64 };
    let m = GenerationMetrics {
        n,
        structural_validity: share(facts.iter().filter(|f| f.structurally_valid).count()),
        compositional_validity: share(facts.iter().filter(|f| f.compositionally_valid).count()),
        validity: share(n_valid),
        uniqueness: of_valid(facts.iter().filter(|f| f.unique).count()),
        novelty: of_valid(facts.iter().filter(|f| f.novel).count()),
        unique_novel: share(facts.iter().filter(|f| f.unique && f.novel).count()),
        rare_oxidation_share: {
            let balanced: Vec<bool> = facts.iter().filter_map(|f| f.rare_oxidation_state).collect();
            balanced.iter().filter(|r| **r).count() as f64 / balanced.len().max(1) as f64
        },
        n_charge_balanced: facts.iter().filter(|f| f.rare_oxidation_state.is_some()).count(),
        rare_nonmetal_share: facts.iter().filter(|f| f.rare_nonmetal_state).count() as f64
            / facts.iter().filter(|f| f.rare_oxidation_state.is_some()).count().max(1) as f64,
        wasserstein,
        wasserstein_floor,
        property_model: model.name(),
        coverage: cov,
        coverage_floor,
    };
    Ok((m, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasserstein_matches_scipy() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5.0; ([0, 1], [0, 0, 2]) = 0.5
        assert!((wasserstein_1d(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]) - 5.0).abs() < 1e-12);
        assert!((wasserstein_1d(&[0.0, 1.0], &[0.0, 0.0, 2.0]) - 0.5).abs() < 1e-12);
    }
}
