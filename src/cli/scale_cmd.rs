//! `geode dataset scale`: fit (or check) the chemical potentials that put a potential's energies on
//! OQMD's formation-energy scale, and report the MAE of ΔH_f against OQMD per split and anion family.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;

use crate::data::{Dataset, Split};
use crate::energy::formation_scale::{FitRow, FormationScale, mae_by_family};
use crate::io::energy_csv::{self, EnergyKind};

pub fn run(
    energies: &Path,
    out: Option<&Path>,
    scale: Option<&Path>,
    potential: &str,
    json_out: bool,
) -> anyhow::Result<i32> {
    let table = energy_csv::read(energies)?;
    if table.kind != EnergyKind::Total {
        bail!(
            "{} gives formation energies; the fit needs the potential's total energies (`energy_per_atom`)",
            energies.display()
        );
    }
    let ds = Dataset::embedded();
    // Rows named oqmd-icsd-ID are dataset crystals; their OQMD formation energy is the target.
    let mut by_split: Vec<(Split, FitRow)> = Vec::new();
    for r in &table.rows {
        let Some(id) = r.name.strip_prefix("oqmd-icsd-").and_then(|s| s.parse::<u32>().ok()) else { continue };
        let e = ds.get(id).with_context(|| format!("{} line {}: no dataset entry {id}", energies.display(), r.line))?;
        // The reduced formulas must agree; a mismatch means the table was made from another dataset.
        if e.structure.reduced_formula() != r.formula {
            bail!(
                "{} line {}: {} is {} in the dataset, not {}",
                energies.display(),
                r.line,
                r.name,
                e.formula,
                r.formula
            );
        }
        by_split.push((
            e.split,
            FitRow {
                composition: e.structure.composition(),
                energy_per_atom: r.energy_per_atom,
                formation_energy_per_atom: e.formation_energy_per_atom,
            },
        ));
    }
    if by_split.is_empty() {
        bail!("{} has no rows named oqmd-icsd-ID (make it with `geode dataset energies`)", energies.display());
    }
    let rows_of = |s: Split| by_split.iter().filter(|(x, _)| *x == s).map(|(_, r)| r.clone()).collect::<Vec<_>>();
    let fitted;
    let (sc, what) = match (out, scale) {
        (Some(path), _) => {
            let train = rows_of(Split::Train);
            if train.is_empty() {
                bail!("{} has no training-split rows to fit on", energies.display());
            }
            let mut s = FormationScale::fit(potential, &train).map_err(anyhow::Error::msg)?;
            s.comment = format!(
                "ΔH_f = E/N − Σ x_el μ_el − Σ x_M c_M,anion (+U metals in oxides / fluorides), eV/atom\nfitted by least squares on {} training-split rows of {}",
                train.len(),
                energies.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
            );
            std::fs::write(path, s.to_csv()).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "fitted {} chemical potentials and {} corrections on {} rows; written to {}",
                s.mu.len(),
                s.corrections.len(),
                train.len(),
                path.display()
            );
            fitted = s;
            (&fitted, format!("fitted on {} training rows", train.len()))
        }
        (None, Some(path)) => {
            fitted = FormationScale::read(path).map_err(anyhow::Error::msg)?;
            (&fitted, format!("{}", path.display()))
        }
        (None, None) => {
            fitted = (*FormationScale::chgnet()).clone();
            (&fitted, "the shipped CHGNet 0.3.0 fit".to_string())
        }
    };
    let mut report = Vec::new();
    for split in [Split::Train, Split::Val, Split::Test] {
        let rows = rows_of(split);
        if rows.is_empty() {
            continue;
        }
        let errs = sc.errors(&rows);
        for (family, n, mae) in mae_by_family(&errs) {
            report.push((split, family, n, mae, rows.len()));
        }
    }
    if json_out {
        let v: Vec<_> = report
            .iter()
            .map(|(s, f, n, mae, _)| json!({"split": s.name(), "family": f.map(|f| f.name()).unwrap_or("all"), "n": n, "mae": mae}))
            .collect();
        println!(
            "{}",
            json!({"scale": what, "potential": sc.potential, "energies": energies.display().to_string(), "mae": v})
        );
    } else {
        println!("# ΔH_f({}) against OQMD, eV/atom ({what}; energies {})", sc.potential, energies.display());
        println!("{:<6} {:<26} {:>6} {:>8}", "split", "family", "n", "MAE");
        for (s, f, n, mae, total) in &report {
            let family = f.map(|f| f.name()).unwrap_or("all");
            let note = if f.is_none() && n < total {
                format!("  ({} rows outside the fit's elements)", total - n)
            } else {
                String::new()
            };
            println!("{:<6} {:<26} {:>6} {:>8.4}{note}", s.name(), family, n, mae);
        }
    }
    Ok(0)
}
