//! `geode energy` and `geode relax`: energies, forces and stresses of structure files, and FIRE relaxation,
//! with a potential chosen by `--potential`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;

use crate::energy::{Calculator, Evaluation, RelaxOptions, relax};
use crate::io;

/// Parse `--potential` ([`crate::energy::spec::from_spec`]).
pub fn potential(spec: &str) -> anyhow::Result<Box<dyn Calculator>> {
    crate::energy::spec::from_spec(spec).map_err(|e| anyhow::anyhow!("--potential {spec:?}: {e}"))
}

fn evaluation_json(ev: &Evaluation) -> serde_json::Value {
    let s = ev.stress_gpa();
    json!({
        "energy": ev.energy, "energy_per_atom": ev.energy_per_atom(),
        "forces": ev.forces.iter().map(|f| [f.x, f.y, f.z]).collect::<Vec<_>>(),
        "stress_gpa": (0..3).map(|a| (0..3).map(|b| s[(a, b)]).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "pressure_gpa": ev.pressure_gpa(), "fmax": ev.fmax(),
        "magmoms": ev.magmoms,
    })
}

/// `geode energy FILE...`: like every multi-file command, a file that cannot be read (or a structure
/// the potential cannot evaluate) is reported and skipped, the rest are computed, and the exit code is
/// 1 when anything failed.
pub fn energy(files: &[PathBuf], spec: &str, json_out: bool) -> anyhow::Result<i32> {
    let calc = potential(spec)?;
    let mut failed = false;
    let mut report = |file: &str, index: Option<usize>, e: String| {
        failed = true;
        if json_out {
            println!("{}", json!({"file": file, "index": index, "error": e}));
        } else {
            match index {
                Some(i) => eprintln!("{file}#{i}: {e}"),
                None => eprintln!("{file}: {e}"),
            }
        }
    };
    for f in files {
        let file = f.display().to_string();
        let structures = match io::read_structures(f) {
            Ok(s) => s,
            Err(e) => {
                report(&file, None, e.to_string());
                continue;
            }
        };
        let results = calc.calculate_batch(&structures);
        for (i, (s, r)) in structures.iter().zip(results).enumerate() {
            let ev = match r {
                Ok(ev) => ev,
                Err(e) => {
                    report(&file, Some(i), e.to_string());
                    continue;
                }
            };
            if json_out {
                let mut v = evaluation_json(&ev);
                v["file"] = json!(file);
                v["index"] = json!(i);
                v["formula"] = json!(s.reduced_formula());
                v["potential"] = json!(calc.name());
                println!("{v}");
            } else {
                println!(
                    "{file}#{i} {}: E = {:.6} eV ({:.6} eV/atom), fmax = {:.4} eV/Å, pressure = {:.4} GPa",
                    s.reduced_formula(),
                    ev.energy,
                    ev.energy_per_atom(),
                    ev.fmax(),
                    ev.pressure_gpa()
                );
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Fail before any work when `output` cannot be written: an unknown format, or a file that cannot be
/// created there (the probe leaves no file behind).
fn check_writable(output: &Path) -> anyhow::Result<()> {
    if io::Format::from_path(output).is_none() {
        bail!("{}: unknown output format (use .cif, .vasp/POSCAR, .extxyz or .json)", output.display());
    }
    let existed = output.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    if !existed {
        std::fs::remove_file(output).ok();
    }
    Ok(())
}

pub fn relax_file(input: &Path, output: &Path, spec: &str, opts: RelaxOptions, json_out: bool) -> anyhow::Result<i32> {
    check_writable(output)?;
    let calc = potential(spec)?;
    let structures = io::read_structures(input)?;
    let [start] = structures.as_slice() else {
        bail!("{}: holds {} structures; relax takes one", input.display(), structures.len())
    };
    let out = relax(calc.as_ref(), start, &opts, &mut |p, _| {
        if !json_out {
            eprintln!("step {:>4}  E = {:.6} eV  fmax = {:.5} eV/Å  V = {:.3} Å³", p.step, p.energy, p.fmax, p.volume);
        }
        ControlFlow::Continue(())
    })
    .with_context(|| format!("relaxing {}", input.display()))?;
    io::write_structures(output, std::slice::from_ref(&out.structure), None)?;
    let n = out.structure.n_sites() as f64;
    let first = &out.trajectory[0];
    if json_out {
        let mut v = evaluation_json(&out.evaluation);
        v["converged"] = json!(out.converged);
        v["steps"] = json!(out.steps);
        v["initial_energy"] = json!(first.energy);
        v["initial_volume"] = json!(first.volume);
        v["volume"] = json!(out.structure.volume());
        v["output"] = json!(output.display().to_string());
        v["potential"] = json!(calc.name());
        println!("{v}");
    } else {
        println!(
            "{}: {} after {} steps; E = {:.6} eV ({:.6} eV/atom, was {:.6}), V = {:.3} Å³ (was {:.3}); written to {}",
            out.structure.reduced_formula(),
            if out.converged { "converged" } else { "NOT converged" },
            out.steps,
            out.evaluation.energy,
            out.evaluation.energy / n,
            first.energy / n,
            out.structure.volume(),
            first.volume,
            output.display()
        );
    }
    Ok(if out.converged { 0 } else { 3 })
}
