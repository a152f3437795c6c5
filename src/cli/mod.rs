//! The headless face of Geode: `geode info`, `geode convert`, `geode dataset`, `geode run`,
//! `geode runs`, `geode candidates`, `geode predict`, `geode model`, `geode hull`, `geode chem`.
//!
//! Floor: the top layer; may use everything below. Errors are `anyhow` here and only here (and in the
//! studio). Every command that prints for machines has `--json` with one object per line.

mod benchmark_cmd;
mod chem_cmd;
mod dataset_cmd;
mod energy_cmd;
mod enumerate_cmd;
mod evolve_cmd;
mod generate_bench;
mod generate_cmd;
mod hull_cmd;
mod info;
mod model_cmd;
mod relax_cmd;
pub mod run_cmd;
mod scale_cmd;
mod stability_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Geode: inverse design of inorganic crystals.
#[derive(Debug, Parser)]
#[command(name = "geode", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Formula, space group, lattice, density, validity and nearest-neighbour distance of structure files
    Info {
        /// Structure files (CIF, POSCAR/CONTCAR, extxyz, ASE .db, pymatgen JSON)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per structure on its own line
        #[arg(long)]
        json: bool,
        /// Symmetry tolerance (Å)
        #[arg(long, default_value_t = crate::crystal::symmetry::DEFAULT_SYMPREC_ANG)]
        symprec: f64,
    },
    /// Convert between structure formats (format from the extensions unless given)
    Convert {
        /// Structure file to read
        input: PathBuf,
        /// File to write (format from its extension unless --to is given)
        output: PathBuf,
        /// Input format: cif, poscar, extxyz, db, json (default: detected from content)
        #[arg(long)]
        from: Option<String>,
        /// Output format: cif, poscar, extxyz, json (default: from the output extension)
        #[arg(long)]
        to: Option<String>,
        /// Keep the majority species on partially occupied CIF sites instead of failing
        #[arg(long)]
        order_partial: bool,
    },
    /// Start a run on the engine and follow it (Ctrl-C cancels cleanly; resume with `geode runs resume`);
    /// `geode run KIND --help` lists the kind's config keys with their defaults
    Run {
        #[command(subcommand)]
        kind: run_cmd::RunKind,
    },
    /// Runs of a project: list, show, resume, cancel
    Runs {
        /// Project file (.geode)
        #[arg(long, default_value = "project.geode", global = true)]
        project: PathBuf,
        #[command(subcommand)]
        action: run_cmd::RunsAction,
    },
    /// Every property name (with its unit) that --where, --sort, constraints, objectives and targets take
    Properties {
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Candidates of a project: list (filter, sort), show, export, annotate
    Candidates {
        /// Project file (.geode)
        #[arg(long, default_value = "project.geode", global = true)]
        project: PathBuf,
        #[command(subcommand)]
        action: run_cmd::CandidatesAction,
    },
    /// Predict formation energy and band gap (mean, σ, 90 % interval) for structure files
    Predict {
        /// Structure files (CIF, POSCAR/CONTCAR, extxyz, ASE .db, pymatgen JSON)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A shipped model (graph, composition, composition-oqmd), a .safetensors ensemble or a TorchScript .pt
        #[arg(long, default_value = "graph")]
        model: String,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Property models: list the shipped ones, evaluate on the test split
    Model {
        #[command(subcommand)]
        action: model_cmd::ModelAction,
    },
    /// Generate crystals with the crystal VAE (prior samples, property targets, around seeds,
    /// interpolation), or score a folder of generated crystals with `geode generate eval DIR`
    #[command(args_conflicts_with_subcommands = true)]
    Generate {
        #[command(subcommand)]
        action: Option<generate_cmd::GenerateAction>,
        #[command(flatten)]
        args: Box<generate_cmd::GenerateArgs>,
    },
    /// Global structure search tools: random symmetric structures, the ground-state recovery
    /// benchmark (searches themselves run with `geode run evolve --config run.toml`)
    Evolve {
        #[command(subcommand)]
        action: evolve_cmd::EvolveAction,
    },
    /// Open the studio (the default when no command is given)
    Studio {
        /// Project file (default: the last one used)
        #[arg(long)]
        project: Option<PathBuf>,
        /// Structure files to open
        files: Vec<PathBuf>,
    },
    /// Energy above the convex hull and decomposition of query compositions (CSV with `formula` and
    /// `formation_energy_per_atom`, or `energy_per_atom` when the references give total energies)
    Hull {
        /// Reference energies (CSV, same columns), or `dataset` for the embedded ≤ 20-atom set, or (with
        /// --structures and CHGNet) `chgnet` for the CHGNet-only hull; default: the complete OQMD references
        /// (every OQMD-relaxed ICSD structure and OQMD's composition table)
        #[arg(long)]
        refs: Option<PathBuf>,
        /// Query compositions and energies (CSV)
        #[arg(long, required_unless_present = "structures", conflicts_with = "structures")]
        query: Option<PathBuf>,
        /// Query structures instead (any structure files): their energies come from --potential, relaxed
        /// first with --relax, and go onto the complete OQMD hull through the potential's fitted chemical
        /// potentials (shipped for CHGNet; --scale for others), or onto --refs holding total energies with
        /// the same potential (`geode dataset energies`)
        #[arg(long, num_args = 1..)]
        structures: Vec<PathBuf>,
        /// The potential for --structures
        #[arg(long, default_value = "chgnet")]
        potential: String,
        /// The fitted chemical potentials of --potential on OQMD's scale (`geode dataset scale --out`);
        /// default: the shipped CHGNet 0.3.0 fit
        #[arg(long, conflicts_with = "refs", requires = "structures")]
        scale: Option<PathBuf>,
        /// A hull of --potential's own energies for the structures' chemical systems: the elements' ground
        /// states and OQMD's stable compounds of each system in the embedded dataset, relaxed with
        /// --potential once and cached in this CSV (reused by later runs; DFT: docs/dft.md)
        #[arg(long, value_name = "CACHE.csv", conflicts_with_all = ["refs", "scale"], requires = "structures")]
        system_refs: Option<PathBuf>,
        /// Relax --structures (positions and cell, fmax 0.05 eV/Å) before taking their energies
        #[arg(long)]
        relax: bool,
        /// One JSON object per query on its own line
        #[arg(long)]
        json: bool,
    },
    /// Chemical rules: SMACT validity, charge-neutral stoichiometries, Hautier substitutions
    Chem {
        #[command(subcommand)]
        action: chem_cmd::ChemAction,
    },
    /// Candidates by substitution into templates (dataset ids, formulas, AFLOW prototypes or files), deduplicated
    Enumerate {
        /// Templates: dataset ids or labels, reduced formulas (every dataset entry with it), AFLOW prototypes
        /// (`aflow:B1`, `aflow:perovskite`, `aflow:AB2`, `aflow:*`; list them with `geode dataset prototypes`), or
        /// structure files
        #[arg(required = true)]
        templates: Vec<String>,
        /// Hautier substitutions above this probability
        #[arg(long, default_value_t = 1e-3, value_parser = crate::cli::probability)]
        threshold: f64,
        /// Instead: every SMACT-valid assignment of these elements (comma-separated), keeping the template's
        /// electronegativity order
        #[arg(long)]
        elements: Option<String>,
        /// Write one CIF per candidate into this directory
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Energy (eV), energy per atom, forces (eV/Å) and stress (GPa) of every structure in the files
    Energy {
        /// Structure files (CIF, POSCAR/CONTCAR, extxyz, ASE .db, pymatgen JSON)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The potential: `chgnet` (CHGNet 0.3.0, the default; `chgnet:weights=FILE.safetensors`) or
        /// `lj:sigma=3.405,epsilon=0.0104[,cutoff=10.2]` (Å, eV, Å), or DFT with CP2K:
        /// `cp2k[:cutoff=1000,kdensity=5,smear=1000,basis=dzvp]` (Ry, per Å⁻¹, K; docs/dft.md)
        #[arg(long, default_value = "chgnet")]
        potential: String,
        /// One JSON object per structure on its own line
        #[arg(long)]
        json: bool,
    },
    /// Relax positions and cell with FIRE (ASE's algorithm and defaults) and write the result; exit code 3
    /// when not converged within --steps
    ///
    /// `geode relax IN OUT`: the one structure of IN, written to OUT (.cif, .vasp, .extxyz, .json; checked
    /// before relaxing). `geode relax FILES… --out-dir DIR`: every structure of every file, as one relax run
    /// in a project (batched here, or on a Slurm cluster with --executor; resumable with `geode runs
    /// resume`), each written to DIR/<stem>.<format> (<stem>_<k> for files holding several); exit code 1
    /// when any failed, else 3 when any did not converge
    Relax {
        /// IN OUT, or with --out-dir the structure files (every structure in them)
        #[arg(required = true, value_name = "FILES")]
        paths: Vec<PathBuf>,
        /// Relax every structure of FILES and write the results here (created)
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// With --out-dir: where the relaxations run, a TOML file holding an `[executor]` table as in run
        /// configs (`kind = "slurm"` and a profile; `geode run relax --help` lists the keys); default: here
        #[arg(long, value_name = "PROFILE.toml", requires = "out_dir")]
        executor: Option<PathBuf>,
        /// With --out-dir: relaxations in flight at once (one batched potential evaluation per FIRE step, on
        /// each Slurm worker too)
        #[arg(long, default_value_t = 8, value_parser = crate::cli::whole)]
        batch: usize,
        /// With --out-dir: the project that holds the run (trajectories, energies; resume from it)
        /// [default: DIR/relax.geode]
        #[arg(long, requires = "out_dir")]
        project: Option<PathBuf>,
        /// With --out-dir: the relaxed structures' file format (cif, vasp, extxyz, json)
        #[arg(long, default_value = "cif", requires = "out_dir")]
        format: String,
        /// The potential: `chgnet` (CHGNet 0.3.0, the default; `chgnet:weights=FILE.safetensors`) or
        /// `lj:sigma=3.405,epsilon=0.0104[,cutoff=10.2]` (Å, eV, Å), or DFT with CP2K:
        /// `cp2k[:cutoff=1000,kdensity=5,smear=1000,basis=dzvp]` (Ry, per Å⁻¹, K; docs/dft.md)
        #[arg(long, default_value = "chgnet")]
        potential: String,
        /// Converged when every force (eV/Å) and cell force is below this
        #[arg(long, default_value_t = 0.05)]
        fmax: f64,
        /// At most this many steps
        #[arg(long, default_value_t = 500, value_parser = crate::cli::whole)]
        steps: usize,
        /// Keep the cell fixed (positions only)
        #[arg(long)]
        fixed_cell: bool,
        /// Keep the starting space group, found at this tolerance (Å), as ASE's FixSymmetry
        #[arg(long, value_name = "ANGSTROM")]
        symprec: Option<f64>,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// The embedded OQMD/ICSD dataset
    Dataset {
        #[command(subcommand)]
        action: dataset_cmd::DatasetAction,
    },
    /// Run task folders of a cluster executor on this node (what a Slurm array element runs): every
    /// folder without a result is computed and its result.json written; finished ones are skipped
    Worker {
        /// Task folders (WORK/tasks/<hash>)
        dirs: Vec<PathBuf>,
        /// A manifest (WORK/arrays/<hash>.txt, one task hash per line) instead of folders
        #[arg(long, requires = "index")]
        manifest: Option<PathBuf>,
        /// This element's index in the array ($SLURM_ARRAY_TASK_ID)
        #[arg(long)]
        index: Option<usize>,
        /// Tasks per array element
        #[arg(long, default_value_t = 1, value_parser = crate::cli::whole)]
        per_task: usize,
        /// Relaxations in flight at once (one batched potential evaluation per step)
        #[arg(long, default_value_t = 8, value_parser = crate::cli::whole)]
        batch: usize,
        /// Threads for the potential (OMP_NUM_THREADS wins)
        #[arg(long, default_value_t = 1, value_parser = crate::cli::whole)]
        threads: usize,
    },
}

#[cfg(feature = "studio")]
fn open_studio(project: Option<PathBuf>, files: Vec<PathBuf>) -> anyhow::Result<i32> {
    crate::studio::run(crate::studio::StudioOptions { project, files, ..Default::default() })?;
    Ok(0)
}

#[cfg(not(feature = "studio"))]
fn open_studio(_project: Option<PathBuf>, _files: Vec<PathBuf>) -> anyhow::Result<i32> {
    anyhow::bail!(
        "this geode was built without the studio (cargo feature `studio`); see `geode --help` for the command line"
    )
}

fn worker(
    mut dirs: Vec<PathBuf>,
    manifest: Option<PathBuf>,
    index: Option<usize>,
    per_task: usize,
    batch: usize,
    threads: usize,
) -> anyhow::Result<i32> {
    use crate::engine::executor::worker;
    if let (Some(m), Some(i)) = (&manifest, index) {
        dirs.extend(worker::manifest_slice(m, i, per_task).map_err(anyhow::Error::msg)?);
    }
    if dirs.is_empty() {
        anyhow::bail!("name task folders, or --manifest with --index");
    }
    crate::ml::init_threads(threads);
    let r = worker::run(&dirs, batch).map_err(anyhow::Error::msg)?;
    eprintln!("worker: {} computed, {} already done, {} failed", r.computed, r.skipped, r.failed);
    Ok(0)
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        None => open_studio(None, Vec::new()),
        Some(Command::Studio { project, files }) => open_studio(project, files),
        Some(Command::Info { files, json, symprec }) => info::run(&files, json, symprec),
        Some(Command::Properties { json }) => properties(json),
        Some(Command::Convert { input, output, from, to, order_partial }) => {
            info::convert(&input, &output, from.as_deref(), to.as_deref(), order_partial)?;
            Ok(0)
        }
        Some(Command::Dataset { action }) => dataset_cmd::run(action),
        Some(Command::Worker { dirs, manifest, index, per_task, batch, threads }) => {
            worker(dirs, manifest, index, per_task, batch, threads)
        }
        Some(Command::Chem { action }) => chem_cmd::run(action),
        Some(Command::Generate { action, args }) => generate_cmd::run(action, *args),
        Some(Command::Evolve { action }) => evolve_cmd::run(action),
        Some(Command::Enumerate { templates, threshold, elements, out, json }) => {
            enumerate_cmd::run(&templates, threshold, elements.as_deref(), out.as_ref(), json)
        }
        Some(Command::Hull { refs, query, structures, potential, scale, system_refs, relax, json }) => match query {
            Some(q) => hull_cmd::run(refs.as_deref(), &q, json),
            None => hull_cmd::run_structures(
                refs.as_deref(),
                scale.as_deref(),
                system_refs.as_deref(),
                &structures,
                &potential,
                relax,
                json,
            ),
        },
        Some(Command::Energy { files, potential, json }) => energy_cmd::energy(&files, &potential, json),
        Some(Command::Relax {
            paths,
            out_dir,
            executor,
            batch,
            project,
            format,
            potential,
            fmax,
            steps,
            fixed_cell,
            symprec,
            json,
        }) => {
            let opts = crate::energy::RelaxOptions {
                fmax,
                max_steps: steps,
                relax_cell: !fixed_cell,
                symprec,
                ..Default::default()
            };
            match (out_dir, paths.as_slice()) {
                (Some(dir), _) => relax_cmd::relax_files(
                    &paths,
                    &relax_cmd::Destination { dir, project, format },
                    &potential,
                    &opts,
                    relax_cmd::Placement { executor: executor.as_deref(), batch },
                    json,
                ),
                (None, [input, output]) => energy_cmd::relax_file(input, output, &potential, opts, json),
                (None, _) => anyhow::bail!(
                    "geode relax takes IN OUT ({} paths given); to relax many files use --out-dir DIR",
                    paths.len()
                ),
            }
        }
        Some(Command::Predict { files, model, json }) => model_cmd::predict(&files, &model, json),
        Some(Command::Model { action }) => model_cmd::model(action),
        Some(Command::Run { kind }) => {
            let (kind, a) = kind.split();
            run_cmd::run(kind, a.config.as_deref(), &a.project, a.seed, a.threads, a.json)
        }
        Some(Command::Runs { project, action }) => run_cmd::runs(action, &project),
        Some(Command::Candidates { project, action }) => run_cmd::candidates(action, &project),
    }
}

/// `geode properties`: the registry, one property a line (or a JSON object a line).
fn properties(json: bool) -> anyhow::Result<i32> {
    use crate::data::property::{Kind, Place};
    for p in crate::data::property::all() {
        let kind = match p.kind {
            Kind::Real => "number",
            Kind::Integer => "integer",
            Kind::Flag => "flag (0/1)",
            Kind::Text => "text",
        };
        let place = match p.place {
            Place::Column => "candidate",
            Place::Stored => "property",
            Place::Annotation => "annotation",
        };
        if json {
            println!(
                "{}",
                serde_json::json!({"name": p.name, "unit": p.unit, "kind": kind, "place": place, "description": p.description})
            );
        } else {
            let unit = if p.unit.is_empty() { String::new() } else { format!("[{}]", p.unit) };
            println!("{:38} {:10} {:11} {}", p.name, unit, kind, p.description);
        }
    }
    Ok(0)
}

/// clap parser for counts and sizes: a whole number ≥ 0, refused in plain words otherwise (clap's own
/// message for `-3` would be "invalid digit found in string").
pub(crate) fn whole(s: &str) -> Result<usize, String> {
    whole_u64(s).and_then(|x| usize::try_from(x).map_err(|_| format!("{s} is too large")))
}

/// [`whole`] for 64-bit values (seeds).
pub(crate) fn whole_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("expected a whole number ≥ 0, got the negative number {t}"));
    }
    t.parse::<u64>().map_err(|_| format!("expected a whole number ≥ 0, got {t:?}"))
}

/// [`whole`] for 32-bit values.
pub(crate) fn whole_u32(s: &str) -> Result<u32, String> {
    whole_u64(s).and_then(|x| u32::try_from(x).map_err(|_| format!("{s} is too large (at most {})", u32::MAX)))
}

/// clap parser for a probability threshold: a finite number in (0, 1) (`nan`, `inf`, 0 and 1 are refused).
pub(crate) fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        Ok(p) => Err(format!("expected a probability between 0 and 1 (exclusive), got {p}")),
        Err(_) => Err(format!("expected a probability between 0 and 1, got {s:?}")),
    }
}

/// clap parser for an international space-group number, 1 to 230.
pub(crate) fn space_group(s: &str) -> Result<u8, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if (1..=230).contains(&n) => Ok(n as u8),
        _ => Err(format!("expected a space-group number from 1 to 230, got {s:?}")),
    }
}
