//! The headless face of Geode: `geode info`, `geode convert`, `geode dataset`, `geode run`,
//! `geode runs`, `geode candidates`.
//!
//! Floor: the top layer; may use everything below. Errors are `anyhow` here and only here (and in the
//! studio). Every command that prints for machines has `--json` with one object per line.

mod dataset_cmd;
mod info;
pub mod run_cmd;

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
        input: PathBuf,
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
    /// Start a run on the engine and follow it (Ctrl-C cancels cleanly; resume with `geode runs resume`)
    Run {
        /// Job kind (analyze)
        kind: String,
        /// Run config (TOML, or JSON by extension): `seed`, `priority` and the job's parameters
        #[arg(long)]
        config: Option<PathBuf>,
        /// Project file (created if missing)
        #[arg(long, default_value = "project.geode")]
        project: PathBuf,
        /// Override the config's seed
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads (default: all cores but one)
        #[arg(long)]
        threads: Option<usize>,
        /// Print the finished run as JSON instead of a progress bar
        #[arg(long)]
        json: bool,
    },
    /// Runs of a project: list, show, resume, cancel
    Runs {
        #[arg(long, default_value = "project.geode", global = true)]
        project: PathBuf,
        #[command(subcommand)]
        action: run_cmd::RunsAction,
    },
    /// Candidates of a project: list (filter, sort), show, export, annotate
    Candidates {
        #[arg(long, default_value = "project.geode", global = true)]
        project: PathBuf,
        #[command(subcommand)]
        action: run_cmd::CandidatesAction,
    },
    /// The embedded OQMD/ICSD dataset
    Dataset {
        #[command(subcommand)]
        action: dataset_cmd::DatasetAction,
    },
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        None => {
            // Until the studio exists: describe the bundled example.
            let example = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/examples/LiFePO4.cif"));
            info::run(&[example], false, crate::crystal::symmetry::DEFAULT_SYMPREC_ANG)
        }
        Some(Command::Info { files, json, symprec }) => info::run(&files, json, symprec),
        Some(Command::Convert { input, output, from, to, order_partial }) => {
            info::convert(&input, &output, from.as_deref(), to.as_deref(), order_partial)?;
            Ok(0)
        }
        Some(Command::Dataset { action }) => dataset_cmd::run(action),
        Some(Command::Run { kind, config, project, seed, threads, json }) => run_cmd::run(&kind, config.as_deref(), &project, seed, threads, json),
        Some(Command::Runs { project, action }) => run_cmd::runs(action, &project),
        Some(Command::Candidates { project, action }) => run_cmd::candidates(action, &project),
    }
}
