//! Coverage of a reference set by generated crystals (CDVAE, Xie et al. ICLR 2022; definitions in
//! MISSION.md). Each crystal gets a structure fingerprint (the CrystalNN site fingerprint of matminer's
//! "ops" preset averaged over the sites, [`crate::crystal::site_fingerprint`]) and a composition fingerprint
//! (the 132 Magpie statistics, standardised by the training split's mean and standard deviation).
//! A generated crystal matches a reference crystal when the Euclidean distances between both
//! fingerprints are within the cutoffs (MP-20's: 0.4 and 10).
//!
//! - COV-R (recall): share of reference crystals matched by some generated crystal;
//! - COV-P (precision): share of all generated crystals that match some reference crystal.
//!
//! CDVAE's code (`compute_cov` in `scripts/eval_utils.py`) tests the two distances separately: a
//! reference crystal counts when its nearest generated structure fingerprint and its nearest generated
//! composition fingerprint are both within the cutoffs, even if they belong to different crystals. That
//! looser figure is reported too (`recall_cdvae`, `precision_cdvae`); it can only be higher. As in
//! CDVAE, every generated crystal is fingerprinted (valid or not); one whose fingerprint cannot be made
//! (overlapping atoms) matches nothing but still counts in the precision's denominator.
//!
//! Difference from CDVAE: elemental values missing from the Magpie tables are imputed by
//! [`composition_features`] before standardising, where CDVAE standardises NaN and sets it to 0 (the
//! mean); and the standardisation is fitted on this dataset's training split rather than on MP-20's.

use rayon::prelude::*;
use serde::Serialize;

use crate::chem::features::composition_features;
use crate::crystal::Structure;
use crate::crystal::site_fingerprint::structure_fingerprint;

/// CDVAE's cutoffs for MP-20: structure fingerprint distance and standardised composition distance.
pub const STRUCTURE_CUTOFF: f64 = 0.4;
pub const COMPOSITION_CUTOFF: f64 = 10.0;

/// Number of Magpie statistics in the composition fingerprint (the first features of
/// [`composition_features`]).
const N_MAGPIE: usize = 132;

/// Standardisation of the composition fingerprint.
#[derive(Debug, Clone)]
pub struct CompositionScaler {
    mean: Vec<f64>,
    std: Vec<f64>,
}

fn magpie(s: &Structure) -> Vec<f64> {
    let mut f = composition_features(&s.composition());
    f.truncate(N_MAGPIE);
    f
}

impl CompositionScaler {
    /// Mean and (population) standard deviation of each Magpie statistic over `structures`; a constant
    /// statistic is left unscaled.
    pub fn fit(structures: &[Structure]) -> CompositionScaler {
        let rows: Vec<Vec<f64>> = structures.par_iter().map(magpie).collect();
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; N_MAGPIE];
        for r in &rows {
            mean.iter_mut().zip(r).for_each(|(m, x)| *m += x / n);
        }
        let mut var = vec![0.0; N_MAGPIE];
        for r in &rows {
            var.iter_mut().zip(r.iter().zip(&mean)).for_each(|(v, (x, m))| *v += (x - m) * (x - m) / n);
        }
        let std = var.into_iter().map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 }).collect();
        CompositionScaler { mean, std }
    }

    pub fn transform(&self, s: &Structure) -> Vec<f64> {
        magpie(s).iter().zip(self.mean.iter().zip(&self.std)).map(|(x, (m, sd))| (x - m) / sd).collect()
    }
}

/// Both fingerprints of one crystal; `structure` is `None` when CrystalNN fails (overlapping atoms).
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub structure: Option<Vec<f64>>,
    pub composition: Vec<f64>,
}

/// Fingerprints of many crystals, in parallel.
pub fn fingerprints(structures: &[Structure], scaler: &CompositionScaler) -> Vec<Fingerprint> {
    structures
        .par_iter()
        .map(|s| Fingerprint { structure: structure_fingerprint(s).ok(), composition: scaler.transform(s) })
        .collect()
}

/// The coverage figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub structure_cutoff: f64,
    pub composition_cutoff: f64,
    /// COV-R and COV-P as MISSION.md defines them (one generated crystal within both cutoffs).
    pub recall: f64,
    pub precision: f64,
    /// The same as CDVAE's code computes them (nearest structure and nearest composition tested apart).
    pub recall_cdvae: f64,
    pub precision_cdvae: f64,
    /// Mean distance from each reference crystal to its nearest generated structure fingerprint
    /// (CDVAE's AMSD-R) and the reverse (AMSD-P); the same for compositions (AMCD-R, AMCD-P).
    pub amsd_recall: f64,
    pub amsd_precision: f64,
    pub amcd_recall: f64,
    pub amcd_precision: f64,
    pub n_generated: usize,
    /// Generated crystals with a structure fingerprint.
    pub n_fingerprinted: usize,
    /// Reference crystals with a structure fingerprint (the others are left out).
    pub n_reference: usize,
}

fn euclid(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// Coverage of `reference` by `generated` (fingerprints from [`fingerprints`]).
pub fn coverage(
    generated: &[Fingerprint],
    reference: &[Fingerprint],
    structure_cutoff: f64,
    composition_cutoff: f64,
) -> Coverage {
    let generated_fp: Vec<(&[f64], &[f64])> =
        generated.iter().filter_map(|f| Some((f.structure.as_deref()?, f.composition.as_slice()))).collect();
    let refs: Vec<(&[f64], &[f64])> =
        reference.iter().filter_map(|f| Some((f.structure.as_deref()?, f.composition.as_slice()))).collect();
    let (ng, nr) = (generated_fp.len(), refs.len());
    let mut out = Coverage {
        structure_cutoff,
        composition_cutoff,
        n_generated: generated.len(),
        n_fingerprinted: ng,
        n_reference: nr,
        ..Default::default()
    };
    if ng == 0 || nr == 0 {
        return out;
    }
    // Row g: distances to every reference crystal.
    let rows: Vec<(Vec<f64>, Vec<f64>)> = generated_fp
        .par_iter()
        .map(|(gs, gc)| refs.iter().map(|(rs, rc)| (euclid(gs, rs), euclid(gc, rc))).unzip())
        .collect();
    let within = |s: f64, c: f64| s <= structure_cutoff && c <= composition_cutoff;
    let min = |it: &mut dyn Iterator<Item = f64>| it.fold(f64::INFINITY, f64::min);
    let mut precision_hits = 0;
    let mut precision_cdvae_hits = 0;
    let (mut amsd_p, mut amcd_p) = (0.0, 0.0);
    for (ds, dc) in &rows {
        if ds.iter().zip(dc).any(|(s, c)| within(*s, *c)) {
            precision_hits += 1;
        }
        let (ms, mc) = (min(&mut ds.iter().copied()), min(&mut dc.iter().copied()));
        if within(ms, mc) {
            precision_cdvae_hits += 1;
        }
        amsd_p += ms / ng as f64;
        amcd_p += mc / ng as f64;
    }
    let mut recall_hits = 0;
    let mut recall_cdvae_hits = 0;
    let (mut amsd_r, mut amcd_r) = (0.0, 0.0);
    for t in 0..nr {
        if rows.iter().any(|(ds, dc)| within(ds[t], dc[t])) {
            recall_hits += 1;
        }
        let (ms, mc) = (min(&mut rows.iter().map(|r| r.0[t])), min(&mut rows.iter().map(|r| r.1[t])));
        if within(ms, mc) {
            recall_cdvae_hits += 1;
        }
        amsd_r += ms / nr as f64;
        amcd_r += mc / nr as f64;
    }
    let n_all = generated.len() as f64;
    out.recall = recall_hits as f64 / nr as f64;
    out.recall_cdvae = recall_cdvae_hits as f64 / nr as f64;
    out.precision = precision_hits as f64 / n_all;
    out.precision_cdvae = precision_cdvae_hits as f64 / n_all;
    out.amsd_recall = amsd_r;
    out.amsd_precision = amsd_p;
    out.amcd_recall = amcd_r;
    out.amcd_precision = amcd_p;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &[f64], c: &[f64]) -> Fingerprint {
        Fingerprint { structure: Some(s.to_vec()), composition: c.to_vec() }
    }

    #[test]
    fn coupled_and_decoupled_coverage_differ_as_defined() {
        // Reference crystal 0 is near generated 0 in structure and near generated 1 in composition only.
        let reference = [fp(&[0.0], &[0.0]), fp(&[5.0], &[50.0])];
        let generated =
            [fp(&[0.1], &[30.0]), fp(&[3.0], &[1.0]), Fingerprint { structure: None, composition: vec![0.0] }];
        let c = coverage(&generated, &reference, 0.4, 10.0);
        assert_eq!(c.recall, 0.0);
        assert_eq!(c.recall_cdvae, 0.5);
        assert_eq!(c.precision, 0.0);
        assert_eq!((c.n_generated, c.n_fingerprinted, c.n_reference), (3, 2, 2));
        // A generated crystal on top of reference 1 covers it and counts for precision (1 of 3).
        let generated =
            [fp(&[5.0], &[50.0]), fp(&[9.0], &[0.0]), Fingerprint { structure: None, composition: vec![0.0] }];
        let c = coverage(&generated, &reference, 0.4, 10.0);
        assert_eq!(c.recall, 0.5);
        assert!((c.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((c.amsd_recall - 2.5).abs() < 1e-12, "{}", c.amsd_recall);
    }

    #[test]
    fn test_crystals_cover_themselves_and_not_other_chemistry() {
        use crate::data::{Dataset, Split};
        let ds = Dataset::embedded();
        let test: Vec<Structure> = ds.split(Split::Test).take(60).map(|e| e.structure.clone()).collect();
        let train: Vec<Structure> = ds.split(Split::Train).step_by(20).map(|e| e.structure.clone()).collect();
        let scaler = CompositionScaler::fit(&train);
        let (a, b) = test.split_at(30);
        let fa = fingerprints(a, &scaler);
        let c = coverage(&fa, &fa, STRUCTURE_CUTOFF, COMPOSITION_CUTOFF);
        assert_eq!((c.recall, c.precision, c.amsd_recall, c.amcd_recall), (1.0, 1.0, 0.0, 0.0));
        // Other formulas (the split is by formula): some structure types repeat, compositions differ.
        let c = coverage(&fingerprints(b, &scaler), &fa, STRUCTURE_CUTOFF, COMPOSITION_CUTOFF);
        assert!(c.recall < 1.0 && c.amcd_recall > 0.0, "{c:?}");
        assert!(c.recall <= c.recall_cdvae && c.precision <= c.precision_cdvae);
    }
}
