//! Stability classification measured as Matbench Discovery measures it: each test crystal's composition is
//! treated as new (every reference of that composition is left out of the hull,
//! [`PhaseDiagram::decomposition_without`]); "stable" means e_above_hull ≤ 0 against the hull of the other
//! compositions. A predictor gives a formation energy (and, where it can, a probability of being stable);
//! [`classify`] scores its verdicts against the DFT ones: F1, precision, recall, accuracy, the discovery
//! acceleration factor DAF = precision / prevalence, the MAE of e_above_hull, and for probabilities the
//! expected calibration error (ECE, 10 equal-width bins) with its reliability diagram.
//!
//! Units: energies eV/atom.

use serde::Serialize;

use crate::crystal::{Composition, Structure};
use crate::data::{Dataset, Split};
use crate::energy::PhaseDiagram;

/// One test crystal with its DFT verdict.
#[derive(Debug, Clone)]
pub struct Case {
    /// Dataset id.
    pub id: u32,
    pub structure: Structure,
    pub composition: Composition,
    /// OQMD's ΔH_f, eV/atom.
    pub formation_energy_per_atom: f64,
    /// The hull of the other compositions at this composition, eV/atom.
    pub hull_without: f64,
}

impl Case {
    /// The DFT distance to the hull of the other compositions (≤ 0: stable).
    pub fn e_above_hull(&self) -> f64 {
        self.formation_energy_per_atom - self.hull_without
    }
}

/// The cases of one split of the embedded dataset (compounds only: an element has no competing phases),
/// judged on `pd` (the complete OQMD hull). Crystals whose system the hull cannot solve are left out.
pub fn cases(ds: &Dataset, split: Split, pd: &PhaseDiagram) -> Vec<Case> {
    use rayon::prelude::*;
    let entries: Vec<_> = ds.split(split).filter(|e| e.structure.composition().n_elements() > 1).collect();
    entries
        .par_iter()
        .filter_map(|e| {
            let composition = e.structure.composition();
            let d = pd.decomposition_without(&composition).ok()?;
            Some(Case {
                id: e.id,
                structure: e.structure.clone(),
                composition,
                formation_energy_per_atom: e.formation_energy_per_atom,
                hull_without: d.formation_energy_per_atom,
            })
        })
        .collect()
}

/// One prediction for a case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// DFT e_above_hull (eV/atom).
    pub truth: f64,
    /// Predicted e_above_hull (eV/atom).
    pub predicted: f64,
    /// Predicted probability of being stable, when the predictor gives one.
    pub p_stable: Option<f64>,
}

/// P(stable) of a Gaussian formation-energy estimate `mean ± sigma` against a hull at `hull`:
/// Φ((hull − mean) / σ); a step at the hull when σ is 0.
pub fn p_stable(mean: f64, sigma: f64, hull: f64) -> f64 {
    if sigma > 0.0 && sigma.is_finite() {
        0.5 * libm::erfc((mean - hull) / (sigma * std::f64::consts::SQRT_2))
    } else if mean <= hull {
        1.0
    } else {
        0.0
    }
}

/// A recalibration of Gaussian P(stable) fitted on held-out data: P = Φ((hull − mean − shift) / (scale σ)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibration {
    /// eV/atom added to the predicted formation energy.
    pub shift: f64,
    /// Factor on σ.
    pub scale: f64,
}

impl Calibration {
    pub const IDENTITY: Calibration = Calibration { shift: 0.0, scale: 1.0 };

    /// The (shift, scale) that minimise the log loss of P(stable) over `(mean − hull, σ, stable)` triples,
    /// on a grid: shift −0.15…0.15 eV/atom in 2.5 meV steps, scale 0.25…4 geometrically (41 values).
    pub fn fit(samples: &[(f64, f64, bool)]) -> Calibration {
        let mut best = (f64::INFINITY, Calibration::IDENTITY);
        for i in 0..=120 {
            let shift = -0.15 + 0.0025 * i as f64;
            for j in 0..=40 {
                let scale = 0.25 * 16f64.powf(j as f64 / 40.0);
                let loss: f64 = samples
                    .iter()
                    .map(|&(d, sd, stable)| {
                        let p = p_stable(d + shift, sd * scale, 0.0).clamp(1e-9, 1.0 - 1e-9);
                        -(if stable { p.ln() } else { (1.0 - p).ln() })
                    })
                    .sum();
                if loss < best.0 {
                    best = (loss, Calibration { shift, scale });
                }
            }
        }
        best.1
    }

    /// P(stable) of `mean ± sigma` against `hull` under this calibration.
    pub fn p_stable(&self, mean: f64, sigma: f64, hull: f64) -> f64 {
        p_stable(mean + self.shift, sigma * self.scale, hull)
    }
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    /// Mean predicted P(stable) in the bin.
    pub mean_p: f64,
    /// Fraction of the bin's crystals that are stable.
    pub frac_stable: f64,
}

/// The scores of one predictor.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub n: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
    /// Share of stable crystals among the cases.
    pub prevalence: f64,
    /// Discovery acceleration factor: precision / prevalence.
    pub daf: f64,
    /// MAE of e_above_hull (eV/atom).
    pub mae: f64,
    /// Expected calibration error of P(stable) (10 equal-width bins), when every outcome has one.
    pub ece: Option<f64>,
    pub reliability: Vec<Bin>,
}

/// Scores verdicts (stable ⟺ e_above_hull ≤ 0, both sides) and probabilities.
pub fn classify(outcomes: &[Outcome]) -> Report {
    let (mut tp, mut fp, mut tn, mut fneg) = (0, 0, 0, 0);
    let mut abs = 0.0;
    for o in outcomes {
        match (o.predicted <= 0.0, o.truth <= 0.0) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
        abs += (o.predicted - o.truth).abs();
    }
    let n = outcomes.len();
    let ratio = |a: usize, b: usize| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let prevalence = ratio(tp + fneg, n);
    let (ece, reliability) = if n > 0 && outcomes.iter().all(|o| o.p_stable.is_some()) {
        let mut bins: Vec<(usize, f64, usize)> = vec![(0, 0.0, 0); 10];
        for o in outcomes {
            let p = o.p_stable.expect("checked above").clamp(0.0, 1.0);
            let b = &mut bins[((p * 10.0) as usize).min(9)];
            b.0 += 1;
            b.1 += p;
            b.2 += usize::from(o.truth <= 0.0);
        }
        let mut ece = 0.0;
        let mut diagram = Vec::new();
        for (k, (m, sum_p, stable)) in bins.into_iter().enumerate() {
            if m == 0 {
                continue;
            }
            let (mean_p, frac) = (sum_p / m as f64, stable as f64 / m as f64);
            ece += m as f64 / n as f64 * (mean_p - frac).abs();
            diagram.push(Bin { lo: k as f64 / 10.0, hi: (k + 1) as f64 / 10.0, n: m, mean_p, frac_stable: frac });
        }
        (Some(ece), diagram)
    } else {
        (None, Vec::new())
    };
    Report {
        n,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fneg,
        precision,
        recall,
        f1,
        accuracy: ratio(tp + tn, n),
        prevalence,
        daf: precision / prevalence,
        mae: if n == 0 { f64::NAN } else { abs / n as f64 },
        ece,
        reliability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(truth: f64, predicted: f64, p: f64) -> Outcome {
        Outcome { truth, predicted, p_stable: Some(p) }
    }

    /// Ten outcomes worked by hand: 3 TP, 1 FP, 4 TN, 2 FN.
    #[test]
    fn the_metrics_match_a_hand_calculation() {
        let outs = [
            o(-0.10, -0.05, 0.95), // TP
            o(-0.02, -0.01, 0.55), // TP
            o(0.00, -0.03, 0.65),  // TP (0 counts as stable)
            o(0.05, -0.02, 0.62),  // FP
            o(0.20, 0.10, 0.05),   // TN
            o(0.30, 0.40, 0.01),   // TN
            o(0.01, 0.02, 0.45),   // TN
            o(0.15, 0.05, 0.25),   // TN
            o(-0.04, 0.03, 0.35),  // FN
            o(-0.30, 0.01, 0.48),  // FN
        ];
        let r = classify(&outs);
        assert_eq!((r.true_positives, r.false_positives, r.true_negatives, r.false_negatives), (3, 1, 4, 2));
        assert!((r.precision - 0.75).abs() < 1e-12);
        assert!((r.recall - 0.6).abs() < 1e-12);
        assert!((r.f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        assert!((r.accuracy - 0.7).abs() < 1e-12);
        assert!((r.prevalence - 0.5).abs() < 1e-12);
        assert!((r.daf - 1.5).abs() < 1e-12);
        // |errors|: .05 .01 .03 .07 .10 .10 .01 .10 .07 .31 → 0.85 / 10.
        assert!((r.mae - 0.085).abs() < 1e-12);
        // Bins: [0.0,0.1): 0.05, 0.01 → mean 0.03, 0 stable; [0.2,0.3): 0.25, 0 stable; [0.3,0.4): 0.35, 1 stable;
        // [0.4,0.5): 0.45, 0.48 → 0.465, 1 of 2; [0.5,0.6): 0.55, 1; [0.6,0.7): 0.65, 0.62 → 0.635, 1 of 2;
        // [0.9,1.0]: 0.95, 1.
        let ece = (2.0 * 0.03
            + 0.25
            + (1.0 - 0.35)
            + 2.0 * (0.5 - 0.465f64).abs()
            + (1.0 - 0.55)
            + 2.0 * (0.635 - 0.5f64).abs()
            + (1.0 - 0.95))
            / 10.0;
        assert!((r.ece.unwrap() - ece).abs() < 1e-12, "{:?} vs {ece}", r.ece);
        assert_eq!(r.reliability.len(), 7);
        assert_eq!(r.reliability.iter().map(|b| b.n).sum::<usize>(), 10);
    }

    #[test]
    fn probabilities_follow_the_normal_distribution() {
        assert!((p_stable(0.0, 0.1, 0.0) - 0.5).abs() < 1e-7);
        // Φ(1) = 0.841345, Φ(−2) = 0.0227501.
        assert!((p_stable(-0.1, 0.1, 0.0) - 0.841_344_746).abs() < 1e-9);
        assert!((p_stable(0.2, 0.1, 0.0) - 0.022_750_132).abs() < 1e-9);
        assert_eq!(p_stable(-0.1, 0.0, 0.0), 1.0);
        assert_eq!(p_stable(0.1, 0.0, 0.0), 0.0);
    }

    /// Estimates whose σ is twice too large and biased by +0.05 eV/atom are recalibrated to (−0.05, ½).
    #[test]
    fn a_calibration_recovers_a_known_bias_and_spread() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let noise = Normal::new(0.0, 0.05).unwrap();
        let samples: Vec<(f64, f64, bool)> = (0..4000)
            .map(|_| {
                let truth: f64 = rng.random_range(-0.3..0.3);
                let predicted = truth + noise.sample(&mut rng) + 0.05;
                (predicted, 0.1, truth <= 0.0)
            })
            .collect();
        let c = Calibration::fit(&samples);
        assert!((c.shift + 0.05).abs() <= 0.01, "{c:?}");
        assert!((c.scale - 0.5).abs() <= 0.1, "{c:?}");
    }

    #[test]
    fn no_probabilities_no_calibration() {
        let r = classify(&[Outcome { truth: -0.1, predicted: -0.2, p_stable: None }]);
        assert!(r.ece.is_none() && r.reliability.is_empty());
        assert_eq!(r.f1, 1.0);
    }
}
