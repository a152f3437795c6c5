//! `geode model stability`: stability classification of one split (test by default), measured like Matbench
//! Discovery ([`crate::search::stability`]), for the composition and graph ensembles, CHGNet on OQMD's
//! scale (single points on the OQMD structures; relaxed with `--relaxed`), and the graph ensemble and CHGNet
//! combined.
//!
//! Probabilities: an ensemble's P(stable) uses its conformal 90 % interval as a Gaussian
//! (σ = half-width / 1.645); CHGNet's uses the RMS error of its fitted scale on the validation split, per
//! anion family; the combination weighs the two estimates by their inverse variances.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;

use crate::data::{Dataset, Split};
use crate::energy::formation_scale::{Family, FormationScale};
use crate::energy::references::chgnet_references;
use crate::energy::{PhaseDiagram, formation_scale::FitRow};
use crate::search::stability::{Calibration, Case, Outcome, Report, cases, classify};

/// z of the two-sided 90 % normal interval.
const Z90: f64 = 1.644_853_626_951_472_2;

/// Matbench Discovery's published figures (WBM test set, MP hull), as issue 30 quotes them: F1 and DAF
/// where given. For comparison only.
const ANCHORS: [(&str, f64, Option<f64>); 3] =
    [("CHGNet", 0.613, Some(3.36)), ("MACE-MPA-0", 0.852, None), ("best models", 0.93, Some(6.0))];

/// A formation-energy estimate: mean and σ (eV/atom).
type Estimate = Option<(f64, f64)>;

/// Verdicts from the estimates as they are; probabilities under `calibration`.
fn outcomes(cases: &[Case], est: &[Estimate], calibration: Calibration) -> Vec<Outcome> {
    cases
        .iter()
        .zip(est)
        .filter_map(|(c, e)| {
            let (m, s) = (*e)?;
            Some(Outcome {
                truth: c.e_above_hull(),
                predicted: m - c.hull_without,
                p_stable: Some(calibration.p_stable(m, s, c.hull_without)),
            })
        })
        .collect()
}

fn ensemble(
    m: &dyn crate::ml::PropertyModel,
    structures: &[crate::crystal::Structure],
) -> anyhow::Result<Vec<Estimate>> {
    let name = m.name();
    let k = m
        .targets()
        .iter()
        .position(|t| *t == crate::ml::Target::FormationEnergyPerAtom)
        .with_context(|| format!("{name} does not predict formation_energy_per_atom"))?;
    let preds = m.predict(structures)?;
    Ok(preds.iter().map(|p| Some((p[k].mean, ((p[k].hi90 - p[k].lo90) / (2.0 * Z90)).max(1e-6)))).collect())
}

/// RMS error of the scale per family on the given rows (the overall RMS for families with < 20 rows).
fn family_sigma(scale: &FormationScale, rows: &[FitRow]) -> BTreeMap<Family, f64> {
    let errs = scale.errors(rows);
    let rms = |v: Vec<f64>| (v.iter().map(|e| e * e).sum::<f64>() / v.len().max(1) as f64).sqrt();
    let all = rms(errs.iter().map(|e| e.1).collect());
    Family::ALL
        .iter()
        .map(|f| {
            let v: Vec<f64> = errs.iter().filter(|e| e.0 == *f).map(|e| e.1).collect();
            (*f, if v.len() >= 20 { rms(v) } else { all })
        })
        .collect()
}

/// CHGNet estimates from total energies by dataset id.
fn chgnet(cases: &[Case], energies: &BTreeMap<u32, f64>, sigma: &BTreeMap<Family, f64>) -> Vec<Estimate> {
    let scale = FormationScale::chgnet();
    cases
        .iter()
        .map(|c| {
            let e = energies.get(&c.id)?;
            let h = scale.formation_energy_per_atom(&c.composition, *e).ok()?;
            Some((h, sigma[&Family::of(&c.composition)]))
        })
        .collect()
}

/// Inverse-variance combination of two estimates.
fn combine(a: &[Estimate], b: &[Estimate]) -> Vec<Estimate> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let ((m1, s1), (m2, s2)) = ((*x)?, (*y)?);
            let (w1, w2) = (1.0 / (s1 * s1), 1.0 / (s2 * s2));
            Some(((m1 * w1 + m2 * w2) / (w1 + w2), (1.0 / (w1 + w2)).sqrt()))
        })
        .collect()
}

/// Total energies per atom of `oqmd-icsd-ID` rows of an energies CSV.
fn energies_by_id(rows: impl Iterator<Item = (String, f64)>) -> BTreeMap<u32, f64> {
    rows.filter_map(|(name, e)| Some((name.strip_prefix("oqmd-icsd-")?.parse().ok()?, e))).collect()
}

/// The estimates of every pipeline for `cases` (CHGNet single points from the shipped table).
/// The shipped composition and graph ensembles, opened once for every split.
struct Ensembles {
    composition: Box<dyn crate::ml::PropertyModel>,
    graph: Box<dyn crate::ml::PropertyModel>,
}

fn pipelines(
    models: &Ensembles,
    cases: &[Case],
    single: &BTreeMap<u32, f64>,
    sigma: &BTreeMap<Family, f64>,
) -> anyhow::Result<Vec<(String, Vec<Estimate>)>> {
    let structures: Vec<_> = cases.iter().map(|c| c.structure.clone()).collect();
    let comp = ensemble(models.composition.as_ref(), &structures)?;
    let graph = ensemble(models.graph.as_ref(), &structures)?;
    let sp = chgnet(cases, single, sigma);
    let both = combine(&graph, &sp);
    Ok(vec![
        ("composition ensemble".into(), comp),
        ("graph ensemble".into(), graph),
        ("CHGNet single point (OQMD structure)".into(), sp),
        ("graph + CHGNet single point".into(), both),
    ])
}

/// `(mean − hull, σ, stable)` of the cases with an estimate, for [`Calibration::fit`].
fn calibration_samples(cases: &[Case], est: &[Estimate]) -> Vec<(f64, f64, bool)> {
    cases
        .iter()
        .zip(est)
        .filter_map(|(c, e)| e.map(|(m, s)| (m - c.hull_without, s, c.e_above_hull() <= 0.0)))
        .collect()
}

/// A pipeline's scores with raw and recalibrated probabilities.
struct Row {
    name: String,
    report: Report,
    calibration: Calibration,
    calibrated: Report,
}

fn row(name: String, cases: &[Case], est: &[Estimate], calibration: Calibration) -> Row {
    let report = classify(&outcomes(cases, est, Calibration::IDENTITY));
    let calibrated = classify(&outcomes(cases, est, calibration));
    Row { name, report, calibration, calibrated }
}

pub fn run(split: Split, relaxed: Option<&Path>, relaxed_val: Option<&Path>, json_out: bool) -> anyhow::Result<i32> {
    let t0 = std::time::Instant::now();
    let ds = Dataset::embedded();
    let pd = PhaseDiagram::complete();
    let cases = cases(ds, split, &pd);
    if cases.is_empty() {
        bail!("no compounds in the {} split", split.name());
    }
    // Probabilities are recalibrated (shift and σ scale) on the validation split; reported on `split`.
    let val_cases = if split == Split::Val { Vec::new() } else { crate::search::stability::cases(ds, Split::Val, &pd) };
    eprintln!(
        "{} {} crystals ({} validation crystals for calibration) judged on the complete OQMD hull without their own compositions ({:.1} s)",
        cases.len(),
        split.name(),
        val_cases.len(),
        t0.elapsed().as_secs_f64()
    );
    let single = energies_by_id(chgnet_references().rows.iter().map(|r| (r.name.clone(), r.energy_per_atom)));
    // CHGNet's σ per family: RMS error of the shipped scale on the validation split's single points.
    let val_rows: Vec<FitRow> = ds
        .split(Split::Val)
        .filter_map(|e| {
            Some(FitRow {
                composition: e.structure.composition(),
                energy_per_atom: *single.get(&e.id)?,
                formation_energy_per_atom: e.formation_energy_per_atom,
            })
        })
        .collect();
    let sigma = family_sigma(&FormationScale::chgnet(), &val_rows);
    let models =
        Ensembles { composition: crate::ml::shipped::open("composition")?, graph: crate::ml::shipped::open("graph")? };
    let here = pipelines(&models, &cases, &single, &sigma)?;
    let val = if val_cases.is_empty() { Vec::new() } else { pipelines(&models, &val_cases, &single, &sigma)? };
    let calib: Vec<Calibration> = here
        .iter()
        .enumerate()
        .map(|(k, _)| {
            val.get(k).map_or(Calibration::IDENTITY, |(_, e)| Calibration::fit(&calibration_samples(&val_cases, e)))
        })
        .collect();
    let mut rows: Vec<Row> =
        here.iter().zip(&calib).map(|((name, est), c)| row(name.clone(), &cases, est, *c)).collect();
    if let Some(path) = relaxed {
        let table = crate::io::energy_csv::read(path)?;
        let by_id = energies_by_id(table.rows.iter().map(|r| (r.name.clone(), r.energy_per_atom)));
        let rel = chgnet(&cases, &by_id, &sigma);
        let n = rel.iter().flatten().count();
        if n == 0 {
            bail!(
                "{} has no {} crystals (rows named oqmd-icsd-ID from `geode dataset energies --relax --split {} --crystals-only`)",
                path.display(),
                split.name(),
                split.name()
            );
        }
        // The other pipelines on the same subset, for a like-for-like comparison. The relaxed rows are
        // recalibrated on relaxed validation energies when given, else they reuse the single-point calibrations.
        let keep = |e: &[Estimate]| -> Vec<Estimate> { e.iter().zip(&rel).map(|(x, r)| r.and(*x)).collect() };
        let (graph, sp) = (&here[1].1, &here[2].1);
        let (cal_rel, cal_both) = match relaxed_val {
            Some(vp) if !val.is_empty() => {
                let t = crate::io::energy_csv::read(vp)?;
                let rel_val = chgnet(
                    &val_cases,
                    &energies_by_id(t.rows.iter().map(|r| (r.name.clone(), r.energy_per_atom))),
                    &sigma,
                );
                if rel_val.iter().flatten().count() == 0 {
                    bail!(
                        "{} has no validation crystals (`geode dataset energies --relax --split val --crystals-only`)",
                        vp.display()
                    );
                }
                let both_val = combine(&val[1].1, &rel_val);
                (
                    Calibration::fit(&calibration_samples(&val_cases, &rel_val)),
                    Calibration::fit(&calibration_samples(&val_cases, &both_val)),
                )
            }
            _ => (calib[2], calib[3]),
        };
        if n < cases.len() {
            rows.push(row(format!("graph ensemble (the {n} relaxed)"), &cases, &keep(graph), calib[1]));
            rows.push(row(format!("CHGNet single point (the {n} relaxed)"), &cases, &keep(sp), calib[2]));
        }
        rows.push(row(format!("CHGNet relaxed ({n})"), &cases, &rel, cal_rel));
        rows.push(row(format!("graph + CHGNet relaxed ({n})"), &cases, &combine(graph, &rel), cal_both));
    }
    if json_out {
        for r in &rows {
            println!(
                "{}",
                json!({"pipeline": r.name, "split": split.name(), "report": r.report, "calibration": r.calibration, "calibrated": r.calibrated})
            );
        }
        println!(
            "{}",
            json!({"matbench_discovery_anchors": ANCHORS.iter().map(|(m, f1, daf)| json!({"model": m, "f1": f1, "daf": daf})).collect::<Vec<_>>(), "note": "WBM test set on the MP hull: different data, for comparison only"})
        );
        return Ok(0);
    }
    println!(
        "# stability classification, {} split: stable ⟺ e_above_hull ≤ 0 against the complete OQMD hull without the crystal's own composition",
        split.name()
    );
    println!("# ECE: P(stable) as predicted; ECE cal: recalibrated on the validation split (shift eV/atom, σ scale)");
    println!(
        "{:<40} {:>5} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6} {:>6} {:>7}  {:>16}  prevalence",
        "pipeline", "n", "F1", "prec", "recall", "acc", "DAF", "MAE", "ECE", "ECE cal", "calibration"
    );
    let ece = |r: &Report| r.ece.map(|e| format!("{e:.3}")).unwrap_or_else(|| "-".into());
    for r in &rows {
        let x = &r.report;
        println!(
            "{:<40} {:>5} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>5.2} {:>6.3} {:>6} {:>7}  {:>+7.3} ×{:<7.2}  {:.3}",
            r.name,
            x.n,
            x.f1,
            x.precision,
            x.recall,
            x.accuracy,
            x.daf,
            x.mae,
            ece(x),
            ece(&r.calibrated),
            r.calibration.shift,
            r.calibration.scale,
            x.prevalence
        );
    }
    println!("# Matbench Discovery (WBM test set, MP hull; different data, beside ours, not equal):");
    for (m, f1, daf) in ANCHORS {
        println!("#   {m:<20} F1 {f1:.3}  DAF {}", daf.map(|d| format!("{d:.2}")).unwrap_or_else(|| "-".into()));
    }
    if let Some(best) = rows.iter().max_by(|a, b| a.report.f1.total_cmp(&b.report.f1)) {
        println!("# reliability of the recalibrated P(stable), {}: bin, n, mean P, fraction stable", best.name);
        for b in &best.calibrated.reliability {
            println!("#   [{:.1}, {:.1})  {:>5}  {:.3}  {:.3}", b.lo, b.hi, b.n, b.mean_p, b.frac_stable);
        }
    }
    Ok(0)
}
