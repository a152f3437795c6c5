//! `geode relax FILES… --out-dir DIR`: every structure of many files relaxed as one `relax` run in a
//! project — batched in this process, or as Slurm job arrays through an executor profile — and each
//! relaxed structure written to DIR. The same command run again after Ctrl-C (or a failure such as an
//! unreachable cluster) resumes that run instead of starting over; after the process was killed outright a
//! new run starts, and on a cluster the tasks that finished are reused by their content hash.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::energy::RelaxOptions;
use crate::engine::executor::ExecutorSpec;
use crate::engine::jobs::relax::RelaxParams;
use crate::engine::runner::default_threads;
use crate::engine::{Engine, RunSpec, RunStatus, Store};
use crate::io;

/// Where the results go.
pub struct Destination {
    /// Relaxed structures, one file each (created).
    pub dir: PathBuf,
    /// The project holding the run; default `DIR/relax.geode`.
    pub project: Option<PathBuf>,
    /// `cif`, `vasp`, `extxyz` or `json`.
    pub format: String,
}

/// Where the relaxations run.
pub struct Placement<'a> {
    /// A TOML file with an `[executor]` table; `None`: this process.
    pub executor: Option<&'a Path>,
    /// Relaxations in flight at once.
    pub batch: usize,
}

/// One input structure: its file, its index there, and the output file it goes to.
struct Input {
    file: String,
    index: usize,
    output: PathBuf,
}

/// The output name of structure `index` of `file` (holding `count`): `<stem>.<ext>`, or `<stem>_<index>.<ext>`
/// for files holding several; `-2`, `-3`… added where two inputs share a stem.
fn output_name(file: &Path, index: usize, count: usize, ext: &str, taken: &mut BTreeSet<String>) -> String {
    let stem = file.file_stem().map_or_else(|| "structure".to_string(), |s| s.to_string_lossy().into_owned());
    let base = if count > 1 { format!("{stem}_{index}") } else { stem };
    let mut name = format!("{base}.{ext}");
    let mut k = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{k}.{ext}");
        k += 1;
    }
    name
}

pub fn relax_files(
    files: &[PathBuf],
    dest: &Destination,
    potential: &str,
    opts: &RelaxOptions,
    place: Placement,
    json_out: bool,
) -> anyhow::Result<i32> {
    let ext = dest.format.trim().to_ascii_lowercase();
    if !["cif", "vasp", "extxyz", "json"].contains(&ext.as_str()) {
        bail!("--format {:?}: expected cif, vasp, extxyz or json", dest.format);
    }
    let executor = match place.executor {
        Some(p) => ExecutorSpec::read(p)?,
        None => ExecutorSpec::Local,
    };
    // Every file is read here first, so a bad one stops the command before any work, naming the file.
    let mut inputs = Vec::new();
    let mut keys = Vec::new();
    let mut taken = BTreeSet::new();
    for f in files {
        let abs = std::path::absolute(f).with_context(|| format!("{}: cannot resolve the path", f.display()))?;
        let n = io::read_structures(&abs)?.len();
        if n == 0 {
            bail!("{}: holds no structure", f.display());
        }
        let key = abs.display().to_string();
        for index in 0..n {
            let output = dest.dir.join(output_name(f, index, n, &ext, &mut taken));
            inputs.push(Input { file: key.clone(), index, output });
        }
        keys.push(key);
    }
    let where_ = executor.describe();
    std::fs::create_dir_all(&dest.dir).with_context(|| format!("cannot create {}", dest.dir.display()))?;
    let project = dest.project.clone().unwrap_or_else(|| dest.dir.join("relax.geode"));
    let spec = RunSpec::Relax(RelaxParams {
        structures: keys,
        potential: potential.trim().to_string(),
        fmax: opts.fmax,
        max_steps: opts.max_steps,
        relax_cell: opts.relax_cell,
        symprec: opts.symprec,
        batch: place.batch,
        executor,
        ..RelaxParams::default()
    });
    spec.validate()?;
    let engine = Engine::new(&project, default_threads(), 1)?;
    let store = Store::open(&project)?;
    // The same command interrupted before: continue that run.
    let unfinished = store.runs()?.into_iter().find(|r| {
        matches!(r.status.as_str(), "cancelled" | "paused" | "queued" | "failed")
            && r.spec().is_ok_and(|s| s.params() == spec.params())
    });
    let run_id = match unfinished {
        Some(r) => {
            engine.resume(r.id)?;
            r.id
        }
        None => engine.submit(&spec, 0, 0)?,
    };
    {
        eprintln!(
            "run {run_id} in {}: {} structures from {} file(s), executor {}",
            project.display(),
            inputs.len(),
            files.len(),
            where_
        );
    }
    let (status, error) = super::run_cmd::wait(&engine, run_id, json_out)?;
    match status {
        RunStatus::Finished => {}
        RunStatus::Cancelled => {
            eprintln!("cancelled; run the same command again to continue run {run_id}");
            return Ok(130);
        }
        s => bail!("run {run_id} {}: {}", s.as_str(), error.unwrap_or_default()),
    }
    write_results(&store, run_id, &inputs, json_out)
}

/// Write each relaxed structure of run `run_id` to its output and report it; structures the run could
/// not relax are reported with the reason from the run's log.
fn write_results(store: &Store, run_id: i64, inputs: &[Input], json_out: bool) -> anyhow::Result<i32> {
    let rows: Vec<_> =
        store.query_candidates(None, Some(run_id), None, None)?.into_iter().filter(|r| r.stage == "relaxed").collect();
    let logs = store.logs(run_id)?;
    let num = |v: &Value, k: &str| v.get(k).and_then(|x| x.get("value").and_then(Value::as_f64).or(x.as_f64()));
    let (mut failed, mut unconverged) = (0, 0);
    for input in inputs {
        let name = format!("{}#{}", input.file, input.index);
        let Some(row) = rows.iter().find(|r| r.source == format!("relax:{name}")) else {
            failed += 1;
            let prefix = format!("{name}: not relaxed: ");
            let why = logs
                .iter()
                .find_map(|(_, _, m)| m.strip_prefix(&prefix).map(str::to_string))
                .unwrap_or_else(|| "not relaxed".into());
            if json_out {
                println!("{}", json!({"file": input.file, "index": input.index, "error": why}));
            } else {
                eprintln!("{name}: {why}");
            }
            continue;
        };
        let structure = store.candidate_structure(row.id)?;
        io::write_structures(&input.output, std::slice::from_ref(&structure), None)?;
        let p = &row.properties;
        let converged = num(p, "converged").is_some_and(|c| c > 0.5);
        unconverged += usize::from(!converged);
        if json_out {
            println!(
                "{}",
                json!({
                    "file": input.file, "index": input.index, "output": input.output.display().to_string(),
                    "formula": row.formula, "candidate": row.id,
                    "energy": num(p, "energy"), "energy_per_atom": num(p, "energy_per_atom"),
                    "initial_energy_per_atom": num(p, "initial_energy_per_atom"), "fmax": num(p, "fmax"),
                    "pressure_gpa": num(p, "pressure_gpa"), "steps": num(p, "steps"), "converged": converged,
                })
            );
        } else {
            println!(
                "{name} {}: {} after {} steps, {:.6} eV/atom (was {:.6}); written to {}",
                row.formula,
                if converged { "converged" } else { "NOT converged" },
                num(p, "steps").unwrap_or(0.0),
                num(p, "energy_per_atom").unwrap_or(f64::NAN),
                num(p, "initial_energy_per_atom").unwrap_or(f64::NAN),
                input.output.display()
            );
        }
    }
    if !json_out {
        eprintln!(
            "{} of {} relaxed ({} not converged, {failed} failed)",
            inputs.len() - failed,
            inputs.len(),
            unconverged
        );
    }
    Ok(if failed > 0 {
        1
    } else if unconverged > 0 {
        3
    } else {
        0
    })
}
