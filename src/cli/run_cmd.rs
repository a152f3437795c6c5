//! `geode run KIND`, `geode runs …` and `geode candidates …`: the engine and the project store from the
//! command line.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::engine::query::Filter;
use crate::engine::runner::default_threads;
use crate::engine::store::SortBy;
use crate::engine::{Engine, EventKind, RunConfig, RunSpec, RunStatus, Store};
use crate::io::{self, Format};

/// Set by Ctrl-C; the running job is cancelled cleanly (state saved) when it flips.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn install_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// The options every `geode run KIND` takes.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run config (TOML, or JSON by extension): `seed`, `priority` and the job's keys (listed below);
    /// relative paths inside it are read from the config's folder
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Project file (created if missing; never made from a file that is not a project)
    #[arg(long, default_value = "project.geode")]
    pub project: PathBuf,
    /// Override the config's seed
    #[arg(long, value_parser = crate::cli::whole_u64)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores but one)
    #[arg(long, value_parser = crate::cli::whole)]
    pub threads: Option<usize>,
    /// Print the finished run as JSON instead of a progress bar and summary
    #[arg(long)]
    pub json: bool,
}

/// The job kinds, one subcommand each; each one's help lists its config keys from its typed spec.
#[derive(Debug, Subcommand)]
pub enum RunKind {
    /// Analyse the embedded dataset: validity, symmetry, density, duplicates
    #[command(after_long_help = keys_help("analyze"), after_help = KEYS_HINT)]
    Analyze(RunArgs),
    /// Global structure search: genetic algorithm, random search, basin hopping, swarm, Bayesian
    #[command(after_long_help = keys_help("evolve"), after_help = KEYS_HINT)]
    Evolve(RunArgs),
    /// Generate crystals with the crystal VAE (prior samples, targets, seeds, interpolation)
    #[command(after_long_help = keys_help("generate"), after_help = KEYS_HINT)]
    Generate(RunArgs),
    /// Relax structures with a potential (CHGNet by default), storing the trajectory
    #[command(after_long_help = keys_help("relax"), after_help = KEYS_HINT)]
    Relax(RunArgs),
    /// The screening funnel: enumerate, chemistry, models, hull, constraints, Pareto ranks
    #[command(after_long_help = keys_help("screen"), after_help = KEYS_HINT)]
    Screen(RunArgs),
    /// Train a property-model ensemble (composition or graph network)
    #[command(after_long_help = keys_help("train"), after_help = KEYS_HINT)]
    Train(RunArgs),
    /// Train the crystal VAE generator
    #[command(name = "train_generator", after_long_help = keys_help("train_generator"), after_help = KEYS_HINT)]
    TrainGenerator(RunArgs),
}

const KEYS_HINT: &str = "Run with --help (not -h) to list the config keys with their defaults.";

impl RunKind {
    /// The kind's name and its options.
    pub fn split(self) -> (&'static str, RunArgs) {
        use crate::engine::jobs::*;
        match self {
            RunKind::Analyze(a) => (analyze::KIND, a),
            RunKind::Evolve(a) => (evolve::KIND, a),
            RunKind::Generate(a) => (generate::KIND, a),
            RunKind::Relax(a) => (relax::KIND, a),
            RunKind::Screen(a) => (screen::KIND, a),
            RunKind::Train(a) => (train::KIND, a),
            RunKind::TrainGenerator(a) => (train_generator::KIND, a),
        }
    }
}

/// The config keys of `kind` with their defaults, read from the kind's typed spec (so the help cannot
/// drift from what the parser takes).
fn keys_help(kind: &str) -> String {
    let mut out = format!(
        "Config keys of `{kind}` (TOML; the defaults shown; dotted keys are tables):\n  seed = 0\n  priority = 0\n"
    );
    match RunSpec::default_for(kind) {
        Ok(spec) => {
            let mut lines = Vec::new();
            flatten_keys("", &spec.params(), &mut lines);
            for (k, v) in lines {
                out.push_str(&format!("  {k} = {v}\n"));
            }
            if spec.params().get("executor").is_some() {
                // The Slurm profile's keys (docs/cluster.md), which the local default does not show.
                let slurm = crate::engine::executor::ExecutorSpec::Slurm(Default::default());
                let mut keys = Vec::new();
                flatten_keys("executor", &serde_json::to_value(&slurm).unwrap_or_default(), &mut keys);
                out.push_str("  with executor.kind = \"slurm\" (docs/cluster.md):\n");
                for (k, v) in keys.into_iter().filter(|(k, _)| k != "executor.kind") {
                    out.push_str(&format!("    {k} = {v}\n"));
                }
            }
        }
        Err(e) => out.push_str(&format!("  ({e})\n")),
    }
    out.push_str("Property names in constraints, objectives and targets: `geode properties`.");
    out
}

/// `(dotted key, TOML-like default)` for every leaf of a parameter table.
fn flatten_keys(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_keys(&key, x, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), "(absent: see the docs)".into())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Start a run from a config file and follow it to the end. The config is read and checked before the
/// project is opened, so a bad config leaves no project file behind.
pub fn run(
    kind: &str,
    config: Option<&Path>,
    project: &Path,
    seed: Option<u64>,
    threads: Option<usize>,
    json_out: bool,
) -> anyhow::Result<i32> {
    let cfg = match config {
        Some(path) => RunConfig::read(kind, path)?,
        None => RunConfig::new(RunSpec::default_for(kind)?),
    };
    cfg.spec.validate().with_context(|| config.map(|p| format!("in {}", p.display())).unwrap_or_default())?;
    submit_and_follow(&cfg.spec, project, seed.unwrap_or(cfg.seed), cfg.priority, threads, json_out)
}

/// A finished run's result in a few readable lines (the whole result is behind `--json` and
/// `geode runs show ID --json`).
fn summary(kind: &str, r: &Value, run_id: i64, project: &Path) -> Vec<String> {
    let num = |v: &Value| match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => format!("{:.4}", n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let p = project.display();
    match kind {
        "screen" => {
            let funnel: Vec<String> =
                crate::engine::jobs::screen::STAGES.iter().map(|s| format!("{s} {}", num(&r["funnel"][*s]))).collect();
            vec![
                format!("funnel: {}", funnel.join(" → ")),
                format!(
                    "passed every constraint: {}; on the Pareto front: {}; relaxed: {}",
                    num(&r["passed"]),
                    num(&r["pareto_front"]),
                    num(&r["relaxed"])
                ),
                format!(
                    "ranked: geode candidates list --project {p} --run {run_id} --where \"stage = 'constraints'\" --sort pareto_rank"
                ),
            ]
        }
        "evolve" => {
            let b = &r["best"];
            let mut out = vec![format!(
                "evaluated {} structures in {} generations ({} duplicates, {} failed)",
                num(&r["evaluated"]),
                num(&r["generations"]),
                num(&r["duplicates"]),
                num(&r["failed"])
            )];
            if !b.is_null() {
                out.push(format!(
                    "best: candidate {} {} ({} sites, {}), {} eV/atom, generation {} ({})",
                    num(&b["id"]),
                    num(&b["formula"]),
                    num(&b["n_sites"]),
                    b["space_group"]["symbol"].as_str().unwrap_or("space group unknown"),
                    num(&b["energy_per_atom"]),
                    num(&b["generation"]),
                    num(&b["operator"])
                ));
                out.push(format!("its structure: geode candidates show {} --project {p} --format cif", num(&b["id"])));
            }
            out
        }
        "train" => {
            let mut out = vec![format!(
                "model: {} ({} members, {} epochs)",
                num(&r["model"]),
                num(&r["members"]),
                num(&r["epochs"])
            )];
            for (t, m) in r["test"].as_object().into_iter().flatten() {
                out.push(if m.get("roc_auc").is_some() {
                    format!(
                        "test {t}: n={} ROC-AUC {}, F1 {}, accuracy {} (majority {}), log loss {}",
                        num(&m["n"]),
                        num(&m["roc_auc"]),
                        num(&m["f1"]),
                        num(&m["accuracy"]),
                        num(&m["baseline_accuracy"]),
                        num(&m["log_loss"])
                    )
                } else {
                    format!(
                        "test {t}: n={} MAE {} (mean predictor {}), RMSE {}, R² {}, 90 % coverage {}",
                        num(&m["n"]),
                        num(&m["mae"]),
                        num(&m["baseline_mae"]),
                        num(&m["rmse"]),
                        num(&m["r2"]),
                        num(&m["coverage90"])
                    )
                });
            }
            out
        }
        _ => match r.as_object() {
            Some(m) => m
                .iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, v)| format!("{}: {}", k.replace('_', " "), num(v)))
                .collect(),
            None => Vec::new(),
        },
    }
}

/// Submit a typed spec, already validated (the project is opened only now), to the project's engine and
/// follow it.
pub(crate) fn submit_and_follow(
    spec: &RunSpec,
    project: &Path,
    seed: u64,
    priority: i64,
    threads: Option<usize>,
    json_out: bool,
) -> anyhow::Result<i32> {
    let engine = Engine::new(project, threads.unwrap_or_else(default_threads), 1)?;
    let run_id = engine.submit(spec, seed, priority)?;
    if !json_out {
        eprintln!("run {run_id} ({}, seed {seed}) in {}", spec.kind(), project.display());
    }
    follow(&engine, run_id, json_out)
}

/// Resume an unfinished run and follow it.
pub fn resume(run_id: i64, project: &Path, threads: Option<usize>, json_out: bool) -> anyhow::Result<i32> {
    let engine = Engine::new(project, threads.unwrap_or_else(default_threads), 1)?;
    engine.resume(run_id)?;
    follow(&engine, run_id, json_out)
}

/// Follow run `run_id` to its end: a progress bar and its log lines on stderr (nothing with `quiet`),
/// Ctrl-C cancels it (its last completed step is kept for resume). Returns how it ended.
pub(crate) fn wait(engine: &Engine, run_id: i64, quiet: bool) -> anyhow::Result<(RunStatus, Option<String>)> {
    install_ctrl_c();
    let events = engine.events();
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(1000) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut cancel_sent = false;
    let (status, error) = loop {
        if INTERRUPTED.load(Ordering::SeqCst) && !cancel_sent {
            cancel_sent = true;
            bar.println("interrupted: cancelling (the last completed step is saved)");
            engine.cancel(run_id)?;
        }
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) if ev.run_id == run_id => match ev.kind {
                EventKind::Progress(p) => {
                    bar.set_position((p.fraction * 1000.0) as u64);
                    let mut msg = format!("{} {}/{}", p.stage, p.done, p.total);
                    if let Some(t) = p.throughput_per_s {
                        msg.push_str(&format!("  {t:.1}/s"));
                    }
                    if let Some(eta) = p.eta_s {
                        msg.push_str(&format!("  ETA {eta:.0} s"));
                    }
                    for (k, v) in &p.counters {
                        msg.push_str(&format!("  {k} {v}"));
                    }
                    bar.set_message(msg);
                }
                EventKind::Log { level, message } if level != "debug" => bar.println(format!("[{level}] {message}")),
                EventKind::Finished { status, error } => break (status, error),
                _ => {}
            },
            Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => bail!("engine stopped unexpectedly"),
        }
    };
    bar.finish_and_clear();
    engine.wait_idle();
    Ok((status, error))
}

fn follow(engine: &Engine, run_id: i64, json_out: bool) -> anyhow::Result<i32> {
    let (status, error) = wait(engine, run_id, json_out)?;
    let store = Store::open(engine.project())?;
    let row = store.run(run_id)?;
    if json_out {
        println!("{}", serde_json::to_string(&row)?);
    } else {
        match status {
            RunStatus::Finished => {
                eprintln!("run {run_id} ({}) finished: {} candidates", row.kind, row.n_candidates);
                for line in summary(&row.kind, row.result.as_ref().unwrap_or(&Value::Null), run_id, engine.project()) {
                    eprintln!("  {line}");
                }
            }
            RunStatus::Cancelled => eprintln!(
                "run {run_id} cancelled after {} candidates; continue with: geode runs resume {run_id} --project {}",
                row.n_candidates,
                engine.project().display()
            ),
            _ => eprintln!("run {run_id} {}: {}", status.as_str(), error.clone().unwrap_or_default()),
        }
    }
    Ok(match status {
        RunStatus::Finished => 0,
        RunStatus::Cancelled => 130,
        _ => 1,
    })
}

#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// All runs of the project
    List {
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// One run: parameters, status, progress, result and log
    Show {
        /// Run id
        id: i64,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Continue an interrupted, paused or cancelled run from its last checkpoint
    Resume {
        /// Run id
        id: i64,
        /// Worker threads (default: all cores but one)
        #[arg(long, value_parser = crate::cli::whole)]
        threads: Option<usize>,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Ask a run (possibly running in another process) to stop; its state is kept for resume
    Cancel {
        /// Run id
        id: i64,
    },
    /// Add structures (files of any supported format) to an evolve run's next generation
    Inject {
        /// Run id (an evolve run)
        id: i64,
        /// Structure files (CIF, POSCAR/CONTCAR, extxyz, ASE .db, pymatgen JSON)
        files: Vec<PathBuf>,
    },
}

/// A numeric property of a candidate row (stored as `{value, std}` or a bare number).
fn prop(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.get("value").and_then(Value::as_f64).or_else(|| x.as_f64()))
}

/// The best individual of an evolve run so far, from its candidates: store id, formula, energy per
/// atom, fitness, CIF text; plus the number of structures evaluated.
pub fn evolve_best(store: &Store, run_id: i64) -> anyhow::Result<Value> {
    let filter = crate::engine::query::Filter::parse("stage = 'individual'")?;
    let rows = store.query_candidates(
        Some(&filter),
        Some(run_id),
        Some(&crate::engine::store::SortBy { key: "fitness".into(), descending: false }),
        Some(1),
    )?;
    let evaluated = store.run(run_id)?.n_candidates;
    let Some(r) = rows.first() else { return Ok(json!({"best": null, "evaluated": evaluated})) };
    let s = store.candidate_structure(r.id)?;
    Ok(json!({
        "best": {"candidate": r.id, "seq": r.seq, "formula": r.formula, "n_sites": r.n_sites,
                 "energy_per_atom": prop(&r.properties, "energy_per_atom"), "fitness": prop(&r.properties, "fitness"),
                 "space_group": r.properties.get("space_group"), "cif": crate::io::cif::write(&s, &r.formula)},
        "evaluated": evaluated,
    }))
}

pub fn runs(action: RunsAction, project: &Path) -> anyhow::Result<i32> {
    if !project.exists() {
        bail!("no project file {}", project.display());
    }
    match action {
        RunsAction::List { json } => {
            let store = Store::open(project)?;
            let rows = store.runs()?;
            if rows.is_empty() && !json {
                eprintln!("0 candidates");
            }
            for r in rows {
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "{:>4}  {:10} {:10} {:>5.1}%  {:>7} candidates  {}  {}",
                        r.id,
                        r.kind,
                        r.status,
                        r.progress * 100.0,
                        r.n_candidates,
                        r.created_at,
                        r.stage
                    );
                }
            }
            Ok(0)
        }
        RunsAction::Show { id, json } => {
            let store = Store::open(project)?;
            let r = store.run(id)?;
            let logs = store.logs(id)?;
            if json {
                let mut v = serde_json::to_value(&r)?;
                if r.kind == crate::engine::jobs::evolve::KIND {
                    let b = evolve_best(&store, id)?;
                    v["best"] = b["best"].clone();
                    v["evaluated"] = b["evaluated"].clone();
                }
                v["log"] = json!(
                    logs.iter().map(|(at, l, m)| json!({"at": at, "level": l, "message": m})).collect::<Vec<_>>()
                );
                println!("{v}");
            } else {
                println!("run {} ({}) {} — {:.1}% {}", r.id, r.kind, r.status, r.progress * 100.0, r.stage);
                println!("  seed {}  priority {}  geode {}", r.seed, r.priority, r.code_version);
                println!(
                    "  created {}  started {}  finished {}",
                    r.created_at,
                    r.started_at.as_deref().unwrap_or("-"),
                    r.finished_at.as_deref().unwrap_or("-")
                );
                println!("  parameters {}", r.params);
                println!("  candidates {}", r.n_candidates);
                if r.kind == crate::engine::jobs::evolve::KIND
                    && let Ok(b) = evolve_best(&store, id)
                    && !b["best"].is_null()
                {
                    let best = &b["best"];
                    println!(
                        "  best: candidate {} {} ({} sites, {}) {} eV/atom",
                        best["candidate"],
                        best["formula"].as_str().unwrap_or(""),
                        best["n_sites"],
                        best["space_group"].as_str().unwrap_or("?"),
                        best["energy_per_atom"]
                    );
                }
                if let Some(res) = &r.result {
                    println!("  result {res}");
                }
                if let Some(e) = &r.error {
                    println!("  error {e}");
                }
                for (at, level, msg) in logs {
                    println!("  {at} [{level}] {msg}");
                }
            }
            Ok(0)
        }
        RunsAction::Resume { id, threads, json } => resume(id, project, threads, json),
        RunsAction::Inject { id, files } => {
            let store = Store::open(project)?;
            let r = store.run(id)?;
            if r.kind != crate::engine::jobs::evolve::KIND {
                bail!("run {id} is a {} run; only evolve runs take injected structures", r.kind);
            }
            if RunStatus::parse(&r.status).is_some_and(|s| s.is_terminal()) && r.status != "cancelled" {
                bail!("run {id} is {}; inject into a running, paused or cancelled run", r.status);
            }
            for f in &files {
                for s in crate::io::read_structures(f)? {
                    let path = crate::engine::jobs::evolve::inject(project, id, &s)?;
                    eprintln!(
                        "{} ({} sites) queued for run {id}: {}",
                        s.reduced_formula(),
                        s.n_sites(),
                        path.display()
                    );
                }
            }
            Ok(0)
        }
        RunsAction::Cancel { id } => {
            let store = Store::open(project)?;
            let r = store.run(id)?;
            if RunStatus::parse(&r.status).is_some_and(|s| s.is_terminal()) {
                eprintln!("run {id} is already {}", r.status);
                return Ok(0);
            }
            store.request_cancel(id)?;
            if r.status != "running" {
                store.set_status(id, RunStatus::Cancelled, None)?;
            }
            eprintln!("cancel requested for run {id}");
            Ok(0)
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CandidatesAction {
    /// Candidates, filtered and sorted
    List {
        /// Filter, e.g. "band_gap > 1 and e_above_hull < 0.05"
        #[arg(long = "where")]
        filter: Option<String>,
        /// Sort key (a property or id, formula, n_sites); prefix with - for descending
        #[arg(long, allow_hyphen_values = true)]
        sort: Option<String>,
        /// Only the candidates of this run
        #[arg(long)]
        run: Option<i64>,
        /// At most this many candidates
        #[arg(long, default_value_t = 50, value_parser = crate::cli::whole)]
        limit: usize,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// One candidate with its properties, lineage and structure
    Show {
        /// Candidate id
        id: i64,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
        /// Print the structure in this format (cif, poscar, extxyz, json)
        #[arg(long)]
        format: Option<String>,
    },
    /// Export candidates: a .cif/.extxyz/.json file, a .csv of properties, a .zip or a folder (with --format)
    Export {
        /// Filter, e.g. "band_gap in [1, 2] and e_above_hull < 0.05" (`geode properties` lists the names)
        #[arg(long = "where")]
        filter: Option<String>,
        /// Sort key; prefix with - for descending
        #[arg(long, allow_hyphen_values = true)]
        sort: Option<String>,
        /// Only the candidates of this run
        #[arg(long)]
        run: Option<i64>,
        /// At most this many candidates
        #[arg(long, value_parser = crate::cli::whole)]
        limit: Option<usize>,
        /// Output: FILE.cif, FILE.extxyz, FILE.json, FILE.csv, FILE.zip or a folder
        #[arg(long)]
        out: PathBuf,
        /// Per-structure format for folders and zips: cif (default), poscar, extxyz, json
        #[arg(long)]
        format: Option<String>,
    },
    /// Mark, tag or annotate a candidate
    Annotate {
        /// Candidate id
        id: i64,
        /// Mark (true) or unmark (false) the candidate as a favourite
        #[arg(long)]
        favourite: Option<bool>,
        /// Tags, separated by commas (replace the candidate's tags)
        #[arg(long)]
        tags: Option<String>,
        /// Free-text notes (replace the candidate's notes)
        #[arg(long)]
        notes: Option<String>,
    },
}

fn sort_arg(s: &Option<String>) -> anyhow::Result<Option<SortBy>> {
    Ok(s.as_deref().map(SortBy::parse).transpose()?)
}

fn fmt_props(p: &Value) -> String {
    let Some(o) = p.as_object() else { return String::new() };
    o.iter()
        .filter_map(|(k, v)| {
            let x = v.get("value").and_then(Value::as_f64)?;
            Some(match v.get("std").and_then(Value::as_f64) {
                Some(s) => format!("{k}={x:.4}±{s:.4}"),
                None => format!("{k}={x:.4}"),
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn candidates(action: CandidatesAction, project: &Path) -> anyhow::Result<i32> {
    if !project.exists() {
        bail!("no project file {}", project.display());
    }
    let store = Store::open(project)?;
    match action {
        CandidatesAction::List { filter, sort, run, limit, json } => {
            let f = filter.as_deref().map(Filter::parse).transpose().map_err(crate::engine::JobError::from)?;
            let rows = store.query_candidates(f.as_ref(), run, sort_arg(&sort)?.as_ref(), Some(limit))?;
            if rows.is_empty() && !json {
                eprintln!("0 candidates");
            }
            for r in rows {
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!("{:>7}  {:14} {:>3} sites  {}", r.id, r.formula, r.n_sites, fmt_props(&r.properties));
                }
            }
            Ok(0)
        }
        CandidatesAction::Show { id, json, format } => {
            // With --format, stdout carries the structure alone; the summary goes to stderr.
            let format =
                format.map(|f| Format::from_name(&f).with_context(|| format!("unknown format {f:?}"))).transpose()?;
            let say = |line: String| if format.is_some() { eprintln!("{line}") } else { println!("{line}") };
            let rows = store.query_candidates(
                Some(&Filter::Num { name: "id".into(), op: crate::engine::query::Op::Eq, value: id as f64 }),
                None,
                None,
                Some(1),
            )?;
            let r = rows.into_iter().next().with_context(|| format!("no candidate with id {id}"))?;
            let s = store.candidate_structure(id)?;
            let parents = store.candidate_parents(id)?;
            let (fav, tags, notes) = store.annotation(id)?;
            if json {
                let mut v = serde_json::to_value(&r)?;
                v["parents"] = json!(parents);
                v["favourite"] = json!(fav);
                v["tags"] = json!(tags);
                v["notes"] = json!(notes);
                v["cif"] = json!(io::cif::write(&s, &format!("candidate-{id}")));
                say(v.to_string());
            } else {
                let run = r.run_id.map(|x| format!("run {x} seq {}", r.seq)).unwrap_or_else(|| "no run".into());
                say(format!(
                    "candidate {} {} ({} sites), {run}, stage {}, source {}",
                    r.id, r.formula, r.n_sites, r.stage, r.source
                ));
                say(format!("  {}", fmt_props(&r.properties)));
                if !parents.is_empty() {
                    let ids: Vec<String> = parents.iter().map(|p| p.to_string()).collect();
                    say(format!("  parents {}", ids.join(", ")));
                }
                if fav || !tags.is_empty() || !notes.is_empty() {
                    say(format!("  favourite {}  tags {tags}  notes {notes}", if fav { "yes" } else { "no" }));
                }
            }
            if let Some(f) = format {
                print!("{}", io::to_string(&[s], f)?);
            }
            Ok(0)
        }
        CandidatesAction::Export { filter, sort, run, limit, out, format } => {
            let f = filter.as_deref().map(Filter::parse).transpose().map_err(crate::engine::JobError::from)?;
            let rows = store.query_candidates(f.as_ref(), run, sort_arg(&sort)?.as_ref(), limit)?;
            let n = export(&store, &rows, &out, format.as_deref())?;
            eprintln!("exported {n} candidates to {}", out.display());
            Ok(0)
        }
        CandidatesAction::Annotate { id, favourite, tags, notes } => {
            store.candidate_structure(id)?;
            store.annotate(id, favourite, tags.as_deref(), notes.as_deref())?;
            Ok(0)
        }
    }
}

/// Text facts of candidates that go into exports beside the numbers (what made the candidate).
const EXPORTED_FACTS: [&str; 9] =
    ["template", "prototype", "potential", "model", "input", "mode", "operator", "space_group_symbol", "name"];

/// The CSV of candidates' properties: the row's columns, then for each property its mean, σ and 90 %
/// interval (the σ and interval columns only where some candidate has them), units in the headers
/// (`band_gap [eV]`), integers and flags written as integers, then the text facts (template, prototype,
/// potential, model, …) that say where each candidate came from.
pub fn properties_csv(rows: &[crate::engine::store::CandidateRow]) -> anyhow::Result<String> {
    use std::collections::BTreeSet;
    let mut numeric: BTreeSet<String> = BTreeSet::new();
    let mut parts: BTreeSet<(String, &str)> = BTreeSet::new();
    let mut facts: BTreeSet<&str> = BTreeSet::new();
    for r in rows {
        for (k, v) in r.properties.as_object().into_iter().flatten() {
            if v.get("value").is_some() {
                numeric.insert(k.clone());
                for part in ["std", "lo90", "hi90"] {
                    if v.get(part).is_some_and(|x| !x.is_null()) {
                        parts.insert((k.clone(), part));
                    }
                }
            } else if let Some(f) = EXPORTED_FACTS.iter().find(|f| **f == k.as_str()) {
                facts.insert(f);
            }
        }
    }
    let unit = |k: &str| crate::data::property::lookup(k).map(|p| p.unit).unwrap_or("");
    let head = |k: &str, part: &str| {
        let name = if part.is_empty() { k.to_string() } else { format!("{k}_{part}") };
        match unit(k) {
            "" => name,
            u => format!("{name} [{u}]"),
        }
    };
    let integer = |k: &str| {
        crate::data::property::lookup(k)
            .is_ok_and(|p| matches!(p.kind, crate::data::property::Kind::Integer | crate::data::property::Kind::Flag))
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> =
        ["id", "run_id", "seq", "formula", "chemical_system", "n_sites", "stage", "source"].map(String::from).to_vec();
    for k in &numeric {
        header.push(head(k, ""));
        for part in ["std", "lo90", "hi90"] {
            if parts.contains(&(k.clone(), part)) {
                header.push(head(k, part));
            }
        }
    }
    header.extend(facts.iter().map(|f| f.to_string()));
    w.write_record(&header)?;
    for r in rows {
        let mut rec = vec![
            r.id.to_string(),
            r.run_id.map(|x| x.to_string()).unwrap_or_default(),
            r.seq.to_string(),
            r.formula.clone(),
            r.chemical_system.clone(),
            r.n_sites.to_string(),
            r.stage.clone(),
            r.source.clone(),
        ];
        for k in &numeric {
            let v = r.properties.get(k);
            let num = |part: &str| v.and_then(|v| v.get(part)).and_then(Value::as_f64);
            rec.push(match num("value") {
                Some(x) if integer(k) && x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
                Some(x) => x.to_string(),
                None => String::new(),
            });
            for part in ["std", "lo90", "hi90"] {
                if parts.contains(&(k.clone(), part)) {
                    rec.push(num(part).map(|x| x.to_string()).unwrap_or_default());
                }
            }
        }
        for f in &facts {
            rec.push(match r.properties.get(*f) {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            });
        }
        w.write_record(&rec)?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?)
}

/// Write candidates to `out`: by extension one multi-structure file or a CSV of properties; a `.zip`
/// or a directory gets one file per candidate in `format` (CIF by default).
pub fn export(
    store: &Store,
    rows: &[crate::engine::store::CandidateRow],
    out: &Path,
    format: Option<&str>,
) -> anyhow::Result<usize> {
    let ext = out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let per_file = format
        .map(|f| Format::from_name(f).with_context(|| format!("unknown format {f:?}")))
        .transpose()?
        .unwrap_or(Format::Cif);
    let structure_of = |r: &crate::engine::store::CandidateRow| -> anyhow::Result<crate::crystal::Structure> {
        let mut s = store.candidate_structure(r.id)?;
        s.properties.insert("id".into(), json!(format!("candidate-{}", r.id)));
        if let Some(o) = r.properties.as_object() {
            for (k, v) in o {
                match v.get("value") {
                    Some(val) => {
                        s.properties.insert(k.clone(), val.clone());
                        for part in ["std", "lo90", "hi90"] {
                            if let Some(x) = v.get(part) {
                                s.properties.insert(format!("{k}_{part}"), x.clone());
                            }
                        }
                    }
                    None => {
                        s.properties.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        s.properties.insert("stage".into(), json!(r.stage));
        s.properties.insert("source".into(), json!(r.source));
        if let Some(run) = r.run_id {
            s.properties.insert("run_id".into(), json!(run));
        }
        Ok(s)
    };
    let file_name = |r: &crate::engine::store::CandidateRow| {
        format!(
            "{}-{}.{}",
            r.id,
            r.formula,
            match per_file {
                Format::Cif => "cif",
                Format::Poscar => "vasp",
                Format::Extxyz => "extxyz",
                _ => "json",
            }
        )
    };
    match ext.as_str() {
        "csv" => {
            std::fs::write(out, properties_csv(rows)?).with_context(|| format!("cannot write {}", out.display()))?;
        }
        "zip" => {
            let file = std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
            let mut zip = zip::ZipWriter::new(file);
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for r in rows {
                let text = io::to_string(&[structure_of(r)?], per_file)?;
                zip.start_file(file_name(r), opts)?;
                std::io::Write::write_all(&mut zip, text.as_bytes())?;
            }
            zip.start_file("properties.csv", opts)?;
            std::io::Write::write_all(&mut zip, properties_csv(rows)?.as_bytes())?;
            zip.finish()?;
        }
        "cif" | "xyz" | "extxyz" | "json" | "vasp" => {
            let structures = rows.iter().map(structure_of).collect::<anyhow::Result<Vec<_>>>()?;
            io::write_structures(out, &structures, None)?;
        }
        _ if out.is_dir() || ext.is_empty() => {
            std::fs::create_dir_all(out).with_context(|| format!("cannot create folder {}", out.display()))?;
            for r in rows {
                let text = io::to_string(&[structure_of(r)?], per_file)?;
                std::fs::write(out.join(file_name(r)), text)?;
            }
        }
        _ => bail!("cannot export to {}: use .cif, .extxyz, .json, .csv, .zip or a folder", out.display()),
    }
    Ok(rows.len())
}
