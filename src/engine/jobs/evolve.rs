//! `evolve`: global structure search ([`crate::search::evolve`]) as a run. One step relaxes a chunk
//! of the current generation in parallel (one structure per pool thread); when the generation is
//! complete it is selected, its individuals are committed as candidates (stage `individual`, or
//! `duplicate`, or `failed`; parents linked, so the family tree is in the store) with `energy_per_atom`,
//! `generation`, `e_above_hull` and forward-model values when computed, and the per-generation metrics
//! `best`, `mean`, `diversity`, `front_size`, `evaluated` are recorded. The checkpoint is the whole
//! search state plus the finished part of the generation in flight, so a paused run continues with the
//! next unrelaxed structure.
//!
//! On a Slurm executor (`[executor] kind = "slurm"`) a generation's individuals go out as one job array
//! instead: the first step submits them, later steps poll and keep what landed, and the generation is
//! scored and selected here when the last one lands; `relax_top`'s finals go out as one array too.
//!
//! The result: the best individual (CIF text, energy per atom, space group, lineage), structures
//! evaluated, and where the time went (generation, relaxation, evaluation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crystal::Structure;
use crate::energy::RelaxOptions;
use crate::energy::spec::from_spec;
use crate::engine::error::JobError;
use crate::engine::executor::coordinator::{Coordinator, CoordinatorState, Landed};
use crate::engine::executor::task::TaskSpec;
use crate::engine::executor::{ExecutorSpec, SlurmProfile};
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::NewCandidate;
use crate::search::evolve::evaluate::{RelaxSettings, Relaxed};
use crate::search::evolve::{Evaluator, Evolution, EvolveSettings, EvolveState, ObjectiveSpec, Space};

pub const KIND: &str = "evolve";

/// Parameters of an `evolve` run (`geode run evolve --config run.toml`): the search settings as
/// top-level keys (see [`EvolveSettings`]) plus `relax`, `property_model` and `seeds`.
#[derive(Debug, Clone)]
pub struct EvolveParams {
    pub search: EvolveSettings,
    pub relax: RelaxSettings,
    /// Forward model for property objectives (`graph`, `composition`, a file).
    pub property_model: String,
    /// Starting structures: dataset ids, labels, formulas or files (added to the first generation).
    pub seeds: Vec<String>,
    /// After the search, relax this many of the best (Pareto front first) with `relax.potential` and,
    /// with CHGNet, place them on the CHGNet hull (`relaxed_e_above_hull`); the check prototype-space
    /// searches need, whose stabilities are predictions.
    pub relax_top: usize,
    /// Where each generation's relaxations run: `kind = "local"` (this process, one structure per pool
    /// thread) or `kind = "slurm"` with a profile (the generation's individuals as one job array).
    pub executor: ExecutorSpec,
}

impl Default for EvolveParams {
    fn default() -> Self {
        EvolveParams {
            search: EvolveSettings::default(),
            relax: RelaxSettings::default(),
            property_model: "graph".into(),
            seeds: Vec::new(),
            relax_top: 0,
            executor: ExecutorSpec::Local,
        }
    }
}

/// The keys that are not search settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RunKeys {
    relax: RelaxSettings,
    property_model: String,
    seeds: Vec<String>,
    relax_top: usize,
    executor: ExecutorSpec,
}

impl Default for RunKeys {
    fn default() -> Self {
        let p = EvolveParams::default();
        RunKeys {
            relax: p.relax,
            property_model: p.property_model,
            seeds: p.seeds,
            relax_top: p.relax_top,
            executor: p.executor,
        }
    }
}

impl EvolveParams {
    /// Read parameters from a config table (unknown keys are errors naming the key).
    pub fn from_value(params: &Value) -> Result<EvolveParams, JobError> {
        let mut search = match params {
            Value::Null => serde_json::Map::new(),
            Value::Object(m) => m.clone(),
            _ => return Err(JobError::Config("the config must be a table of keys".into())),
        };
        let mut run = serde_json::Map::new();
        for k in ["relax", "property_model", "seeds", "relax_top", "executor"] {
            if let Some(v) = search.remove(k) {
                run.insert(k.into(), v);
            }
        }
        let keys: RunKeys = super::parse_params(&Value::Object(run))?;
        let search: EvolveSettings = super::parse_params(&Value::Object(search))?;
        Ok(EvolveParams {
            search,
            relax: keys.relax,
            property_model: keys.property_model,
            seeds: keys.seeds,
            relax_top: keys.relax_top,
            executor: keys.executor,
        })
    }

    /// All parameters, defaults filled in, as one table.
    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(&self.search).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("relax".into(), serde_json::to_value(&self.relax).unwrap_or(Value::Null));
            m.insert("property_model".into(), json!(self.property_model));
            m.insert("seeds".into(), json!(self.seeds));
            m.insert("relax_top".into(), json!(self.relax_top));
            m.insert("executor".into(), serde_json::to_value(&self.executor).unwrap_or(Value::Null));
        }
        v
    }

    pub fn validate(&self) -> Result<(), JobError> {
        self.search.validate().map_err(JobError::Config)?;
        if self.search.space == Space::Prototype {
            crate::ml::shipped::check(&self.property_model)
                .map_err(|e| JobError::Config(format!("key `property_model`: {e}")))?;
        }
        crate::energy::spec::check_spec(&self.relax.potential)
            .map_err(|e| JobError::Config(format!("key `relax.potential`: {e}")))?;
        if !(self.relax.fmax.is_finite() && self.relax.fmax > 0.0) {
            return Err(JobError::Config(format!(
                "key `relax.fmax`: expected a positive number of eV/Å, got {}",
                self.relax.fmax
            )));
        }
        if self.relax.batch == 0 {
            return Err(JobError::Config("key `relax.batch`: expected at least 1".into()));
        }
        self.executor.validate()?;
        if self.search.space == Space::Prototype && matches!(self.executor, ExecutorSpec::Slurm(_)) {
            return Err(JobError::Config(
                "key `executor`: a prototype-space search relaxes nothing (structures are scored as made); \
                 use `kind = \"local\"`"
                    .into(),
            ));
        }
        super::relax::check_inputs("seeds", &self.seeds)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    search: EvolveState,
    /// Relaxed members of the generation in flight, in order.
    done: Vec<(Structure, f64, usize)>,
    /// Store sequence number of each individual (by id).
    seqs: Vec<i64>,
    seconds_generation: f64,
    seconds_relax: f64,
    seconds_evaluation: f64,
    relax_steps: usize,
    started: bool,
    /// After the search: individuals (ids) to relax, and how many are done.
    finals: Option<Vec<usize>>,
    finals_done: usize,
    /// Slurm executor: the coordinator's state for the generation in flight (one array of its individuals).
    #[serde(default)]
    remote: Option<CoordinatorState>,
    /// Slurm executor: relaxed members of the generation in flight, by position, as they land.
    #[serde(default)]
    landed: BTreeMap<usize, (Structure, f64, usize)>,
    /// Slurm executor: the coordinator's state for the `relax_top` finals.
    #[serde(default)]
    finals_remote: Option<CoordinatorState>,
}

pub struct EvolveJob {
    p: EvolveParams,
    evo: Evolution,
    eval: Option<Evaluator>,
    /// `relax_top`: the potential and, with CHGNet, its hull (made once).
    finisher: Option<(Box<dyn crate::energy::Calculator>, Option<crate::energy::PotentialHull>)>,
    state: State,
}

impl EvolveJob {
    pub fn new(p: EvolveParams, seed: u64) -> Result<EvolveJob, JobError> {
        p.validate()?;
        let evo = Evolution::new(p.search.clone(), seed).map_err(JobError::Config)?;
        Ok(EvolveJob { p, evo, eval: None, finisher: None, state: State::default() })
    }

    fn evaluator(&self) -> Result<Evaluator, JobError> {
        let objectives: Vec<ObjectiveSpec> = self.p.search.objectives.clone();
        let prototype = self.p.search.space == Space::Prototype;
        let calc = if prototype {
            None
        } else {
            Some(
                from_spec(&self.p.relax.potential)
                    .map_err(|e| JobError::Config(format!("key `relax.potential`: {e}")))?,
            )
        };
        let hull = match (objectives.contains(&ObjectiveSpec::EAboveHull), &calc) {
            (false, _) => None,
            // Predicted formation energies on the complete OQMD hull.
            (true, None) => Some(crate::energy::PotentialHull::own(
                crate::energy::PhaseDiagram::complete(),
                "complete OQMD hull (predicted formation energies)",
            )),
            (true, Some(c)) => Some(
                crate::energy::PotentialHull::for_potential(&c.name(), self.p.relax.hull)
                    .map_err(|e| JobError::Failed(format!("hull: {e}")))?
                    .ok_or_else(|| {
                        JobError::Config(format!(
                            "objective `e_above_hull` needs a hull for {}: only the shipped CHGNet has one",
                            c.name()
                        ))
                    })?,
            ),
        };
        let model = if prototype || objectives.iter().any(|o| matches!(o, ObjectiveSpec::Property(_))) {
            Some(std::sync::Mutex::new(
                crate::ml::shipped::open(&self.p.property_model)
                    .map_err(|e| JobError::Config(format!("key `property_model`: {e}")))?,
            ))
        } else {
            None
        };
        let relax =
            RelaxOptions { fmax: self.p.relax.fmax, max_steps: self.p.relax.max_steps, ..RelaxOptions::default() };
        Ok(Evaluator { calc, relax, objectives, hull, model })
    }

    fn summary(&self) -> Value {
        let s = &self.state;
        let best = self.evo.best().map(|b| {
            let sg = b.structure.symmetry(0.1).map(|i| json!({"number": i.number, "symbol": i.symbol()})).unwrap_or(Value::Null);
            json!({
                "seq": s.seqs.get(b.id), "id": b.id, "formula": b.structure.reduced_formula(), "n_sites": b.structure.n_sites(),
                "energy_per_atom": b.energy_per_atom, "values": b.values, "costs": b.costs, "space_group": sg,
                "generation": b.generation, "operator": b.operator.name(), "lineage": self.evo.lineage(b.id),
                "cif": crate::io::cif::write(&b.structure, &b.structure.reduced_formula()),
            })
        });
        let n = self.evo.evaluated();
        json!({
            "algorithm": self.p.search.algorithm.name(), "composition": self.p.search.composition, "elements": self.p.search.elements,
            "evaluated": n, "generations": self.evo.state.generation,
            "duplicates": self.evo.state.individuals.iter().filter(|i| i.duplicate_of.is_some()).count(),
            "failed": self.evo.state.individuals.iter().filter(|i| !i.ok()).count(),
            "best": best,
            "pareto_front": self.evo.pareto_front().iter().map(|i| s.seqs.get(*i)).collect::<Vec<_>>(),
            "seconds": {"generation": s.seconds_generation, "relaxation": s.seconds_relax, "evaluation": s.seconds_evaluation},
            "relax_steps": s.relax_steps,
            "individuals_per_second": n as f64 / (s.seconds_generation + s.seconds_relax + s.seconds_evaluation).max(1e-9),
        })
    }

    /// Commit a finished generation: candidates, metrics, progress.
    fn publish(&mut self, ids: &[usize], ctx: &mut JobContext) {
        for &id in ids {
            let ind = &self.evo.state.individuals[id];
            let stage = if !ind.ok() {
                "failed"
            } else if ind.duplicate_of.is_some() {
                "duplicate"
            } else {
                "individual"
            };
            let mut props: Vec<(String, crate::engine::store::PropValue)> = ind
                .values
                .iter()
                .filter(|(k, v)| !k.ends_with("_std") && v.is_finite())
                .map(|(k, v)| (k.clone(), (*v).into()))
                .collect();
            props.push(("generation".into(), (ind.generation as f64).into()));
            props.push(("relax_steps".into(), (ind.relax_steps as f64).into()));
            if let Some(c) = ind.costs.first().filter(|c| c.is_finite()) {
                props.push(("fitness".into(), (*c).into()));
            }
            let mut extra = serde_json::Map::new();
            extra.insert("operator".into(), json!(ind.operator.name()));
            extra.insert("individual".into(), json!(ind.id));
            if let Some(d) = ind.duplicate_of {
                extra.insert("duplicate_of".into(), json!(self.state.seqs.get(d)));
            }
            if let Ok(sym) = ind.structure.symmetry(0.1) {
                extra.insert("space_group".into(), json!(sym.symbol()));
            }
            let parents = ind.parents.iter().filter_map(|p| self.state.seqs.get(*p).copied()).collect();
            let seq = ctx.emit(NewCandidate {
                seq: 0,
                structure: ind.structure.clone(),
                stage: stage.into(),
                source: format!("evolve:{}", self.p.search.algorithm.name()),
                props,
                extra,
                parents,
            });
            if self.state.seqs.len() <= id {
                self.state.seqs.resize(id + 1, -1);
            }
            self.state.seqs[id] = seq;
        }
        if let Some(h) = self.evo.state.history.last() {
            let g = h.generation as i64;
            ctx.metric("best", g, h.best_cost);
            ctx.metric("mean", g, h.mean_cost);
            ctx.metric("diversity", g, h.diversity);
            ctx.metric("front_size", g, h.front_size as f64);
            ctx.metric("evaluated", g, h.evaluated as f64);
            ctx.log(
                "info",
                format!(
                    "generation {}: best {:.4}, mean {:.4}, diversity {:.3}, {} evaluated, {} duplicates",
                    h.generation, h.best_cost, h.mean_cost, h.diversity, h.evaluated, h.duplicates
                ),
            );
        }
    }
}

/// Folder beside the project where structure files dropped for run `run_id` wait to join its next
/// generation (`geode runs inject`, the studio's Inject button).
pub fn inject_dir(project: &Path, run_id: i64) -> PathBuf {
    let name = project.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    project.with_file_name(format!("{name}.inject")).join(format!("run-{run_id}"))
}

/// Queue a structure for run `run_id`'s next generation.
pub fn inject(project: &Path, run_id: i64, s: &Structure) -> std::io::Result<PathBuf> {
    let dir = inject_dir(project, run_id);
    std::fs::create_dir_all(&dir)?;
    let n = std::fs::read_dir(&dir)?.count();
    let path = dir.join(format!("{:04}-{}.cif", n, s.reduced_formula()));
    std::fs::write(&path, crate::io::cif::write(s, &s.reduced_formula()))?;
    Ok(path)
}

impl EvolveJob {
    /// Move structures dropped in the inject folder into the next generation (files that do not parse
    /// are logged and left in place, renamed `.rejected`).
    fn take_injections(&mut self, ctx: &mut JobContext) {
        let dir = inject_dir(&ctx.project, ctx.run_id);
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x != "rejected"))
            .collect();
        files.sort();
        for f in files {
            match crate::io::read_structures(&f) {
                Ok(ss) => {
                    let want = crate::crystal::Composition::from_formula(&self.p.search.composition)
                        .map(|c| c.reduced_formula())
                        .unwrap_or_default();
                    let elements = &self.p.search.elements;
                    for s in ss {
                        let fits = if self.p.search.variable() {
                            s.species().iter().all(|e| elements.iter().any(|x| x.trim() == e.symbol()))
                        } else {
                            s.reduced_formula() == want
                        };
                        if !fits {
                            let what = if self.p.search.variable() {
                                format!("made of {}", elements.join(", "))
                            } else {
                                want.clone()
                            };
                            ctx.log(
                                "warn",
                                format!("not injected: {} from {} is not {what}", s.reduced_formula(), f.display()),
                            );
                            continue;
                        }
                        ctx.log(
                            "info",
                            format!("injected {} ({}) from {}", s.reduced_formula(), s.n_sites(), f.display()),
                        );
                        self.evo.inject(s);
                    }
                    let _ = std::fs::remove_file(&f);
                }
                Err(e) => {
                    ctx.log("warn", format!("cannot inject {}: {e}", f.display()));
                    let _ = std::fs::rename(&f, f.with_extension("rejected"));
                }
            }
        }
    }
}

impl EvolveJob {
    /// After the search: relax the `relax_top` best (Pareto front first), one per step here, or all of them
    /// as one array on a Slurm executor; then done.
    fn relax_finals(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        if self.p.relax_top == 0 {
            return Ok(StepOutcome::Done(self.summary()));
        }
        if self.state.finals.is_none() {
            let ids: Vec<usize> = self
                .evo
                .state
                .individuals
                .iter()
                .filter(|i| i.ok() && i.duplicate_of.is_none())
                .map(|i| i.id)
                .collect();
            self.state.finals = Some(self.evo.rank(&ids).into_iter().take(self.p.relax_top).collect());
        }
        let finals = self.state.finals.clone().unwrap_or_default();
        if self.state.finals_done >= finals.len() {
            let relaxed: Vec<Value> = finals.iter().filter_map(|i| self.state.seqs.get(*i)).map(|s| json!(s)).collect();
            let mut summary = self.summary();
            summary["relaxed_top"] = json!(relaxed);
            return Ok(StepOutcome::Done(summary));
        }
        ctx.set_progress(
            "relax top",
            self.state.finals_done as u64,
            finals.len() as u64,
            self.state.finals_done as f64 / finals.len().max(1) as f64,
        );
        if self.finisher.is_none() {
            let calc = from_spec(&self.p.relax.potential)
                .map_err(|e| JobError::Config(format!("key `relax.potential`: {e}")))?;
            let hull = crate::energy::PotentialHull::for_potential(&calc.name(), self.p.relax.hull)
                .map_err(JobError::Failed)?;
            self.finisher = Some((calc, hull));
        }
        let opts = RelaxOptions {
            fmax: self.p.relax.fmax.min(0.05),
            max_steps: self.p.relax.max_steps.max(500),
            ..RelaxOptions::default()
        };
        if let ExecutorSpec::Slurm(profile) = &self.p.executor {
            let profile = profile.clone();
            return self.relax_finals_remote(ctx, &profile, &finals, &opts);
        }
        let Some((calc, _)) = &self.finisher else { return Err(JobError::Failed("potential missing".into())) };
        let id = finals[self.state.finals_done];
        let cancel = ctx.cancel_flag();
        let out = crate::energy::relax(calc.as_ref(), &self.evo.state.individuals[id].structure, &opts, &mut |_, _| {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        });
        match out {
            Ok(r) if r.cancelled => return Ok(StepOutcome::Continue),
            Ok(r) => self.store_final(ctx, id, Ok((r.structure, r.evaluation.energy, r.steps))),
            Err(e) => self.store_final(ctx, id, Err(e.to_string())),
        }
        self.state.finals_done += 1;
        Ok(StepOutcome::Continue)
    }

    /// `relax_top` on a Slurm executor: the finals go out as one array; later steps store what lands.
    fn relax_finals_remote(
        &mut self,
        ctx: &mut JobContext,
        profile: &SlurmProfile,
        finals: &[usize],
        opts: &RelaxOptions,
    ) -> Result<StepOutcome, JobError> {
        let tasks: Vec<TaskSpec> = finals
            .iter()
            .map(|&id| TaskSpec::relax(&self.evo.state.individuals[id].structure, &self.p.relax.potential, opts, 0))
            .collect();
        let coord = Coordinator::new(profile, &ctx.project, ctx.run_id, self.p.relax.batch.max(1));
        let Some(remote) = &mut self.state.finals_remote else {
            self.state.finals_remote = Some(coord.start(ctx, &tasks)?);
            return Ok(StepOutcome::Continue);
        };
        let landed = coord.step(ctx, remote, &tasks);
        let settled = remote.settled.len();
        for l in landed {
            match l {
                Landed::Done(k, out) => self.store_final(ctx, finals[k], Ok((out.structure(), out.energy, out.steps))),
                Landed::Failed(k, why) => self.store_final(ctx, finals[k], Err(why)),
            }
        }
        self.state.finals_done = settled;
        Ok(StepOutcome::Continue)
    }

    /// A final's relaxation (structure, energy in eV, FIRE steps) or why it failed: its relaxed energy and
    /// place on the hull go onto the individual's candidate, and the relaxed structure becomes a candidate.
    fn store_final(&mut self, ctx: &mut JobContext, id: usize, relaxed: Result<(Structure, f64, usize), String>) {
        let ind = &self.evo.state.individuals[id];
        let seq = self.state.seqs.get(id).copied().unwrap_or(-1);
        let (structure, energy, steps) = match relaxed {
            Ok(r) => r,
            Err(e) => {
                ctx.log("warn", format!("individual {id}: relaxation failed: {e}"));
                return;
            }
        };
        let hull = self.finisher.as_ref().and_then(|(_, h)| h.as_ref());
        let per_atom = energy / structure.n_sites() as f64;
        let mut props: Vec<(String, crate::engine::store::PropValue)> =
            vec![("relaxed_energy_per_atom".into(), per_atom.into()), ("relax_steps".into(), (steps as f64).into())];
        if let Some(h) = hull
            && let Ok(p) = h.place(&structure.composition(), per_atom)
        {
            props.push(("relaxed_e_above_hull".into(), p.e_above_hull.into()));
            props.push(("relaxed_formation_energy_per_atom".into(), p.formation_energy_per_atom.into()));
        }
        for (k, v) in &props {
            ctx.update_prop(seq, k, *v);
        }
        ctx.log(
            "info",
            format!(
                "individual {id} ({}) relaxed: {per_atom:.4} eV/atom{}",
                ind.structure.reduced_formula(),
                props
                    .iter()
                    .find(|(k, _)| k == "relaxed_e_above_hull")
                    .map(|(_, v)| format!(", {:.3} eV/atom above the hull", v.value))
                    .unwrap_or_default()
            ),
        );
        let mut extra = serde_json::Map::new();
        extra.insert("relaxed_from_seq".into(), json!(seq));
        ctx.emit(NewCandidate {
            seq: 0,
            structure,
            stage: "relaxed".into(),
            source: format!("evolve:{}:relax_top", self.p.search.algorithm.name()),
            props,
            extra,
            parents: vec![seq],
        });
    }
}

impl Job for EvolveJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn restore(&mut self, checkpoint: &Value) -> Result<(), JobError> {
        self.state = crate::engine::job::state_from_checkpoint(checkpoint)?;
        self.evo.restore(self.state.search.clone());
        Ok(())
    }

    fn checkpoint(&self) -> Value {
        let mut s = self.state.clone();
        s.search = self.evo.state.clone();
        crate::engine::job::checkpoint_of(&s)
    }

    fn step(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        crate::ml::init_threads(1);
        if self.eval.is_none() {
            self.eval = Some(self.evaluator()?);
        }
        if !self.state.started {
            for (_, s) in super::relax::inputs(&self.p.seeds)? {
                self.evo.inject(s);
            }
            self.state.started = true;
        }
        let budget = self.p.search.budget as u64;
        if self.evo.state.pending.is_empty() {
            self.take_injections(ctx);
            if self.evo.done() {
                return self.relax_finals(ctx);
            }
            let t = Instant::now();
            let n = self.evo.propose().len();
            self.state.seconds_generation += t.elapsed().as_secs_f64();
            self.state.done.clear();
            if n == 0 {
                return self.relax_finals(ctx);
            }
        }
        let remote = match &self.p.executor {
            ExecutorSpec::Slurm(profile) if self.eval.as_ref().is_some_and(|e| e.calc.is_some()) => {
                Some(profile.clone())
            }
            _ => None,
        };
        if let Some(profile) = remote {
            let t = Instant::now();
            let complete = self.relax_remote(ctx, &profile)?;
            self.state.seconds_relax += t.elapsed().as_secs_f64();
            if !complete {
                return Ok(StepOutcome::Continue);
            }
            return self.select(ctx);
        }
        let Some(eval) = &self.eval else { return Err(JobError::Failed("evaluator missing".into())) };
        let pending = &self.evo.state.pending;
        let start = self.state.done.len();
        // Up to `relax.batch` structures per pool thread, spread evenly over the threads, each thread
        // relaxing its share at once.
        let threads = ctx.pool().current_num_threads().max(1);
        let batch = self.p.relax.batch.max(1);
        let end = (start + threads * batch).min(pending.len());
        let per = (end - start).div_ceil(threads).max(1);
        let cancel = ctx.cancel_flag();
        let t = Instant::now();
        let structures: Vec<Structure> = pending[start..end].iter().map(|p| p.structure.clone()).collect();
        let relaxed: Vec<Option<Vec<Relaxed>>> =
            ctx.pool().install(|| structures.par_chunks(per).map(|c| eval.relax_batch(c, per, &cancel)).collect());
        self.state.seconds_relax += t.elapsed().as_secs_f64();
        if relaxed.iter().any(Option::is_none) {
            return Ok(StepOutcome::Continue); // paused: the chunk is relaxed again on resume
        }
        for r in relaxed.into_iter().flatten().flatten() {
            self.state.relax_steps += r.steps;
            self.state.done.push((r.structure, r.energy_per_atom, r.steps));
        }
        let evaluated = self.evo.evaluated() + self.state.done.len();
        ctx.set_progress("relax", evaluated as u64, budget, evaluated as f64 / budget as f64);
        ctx.set_counter("generation", self.evo.state.generation as f64);
        if let Some(b) = self.evo.best() {
            ctx.set_counter("best", b.costs[0]);
        }
        if self.state.done.len() < self.evo.state.pending.len() {
            return Ok(StepOutcome::Continue);
        }
        self.select(ctx)
    }

    fn on_cancel(&mut self) -> Vec<(String, String)> {
        let state = self.state.remote.as_ref().or(self.state.finals_remote.as_ref());
        crate::engine::executor::coordinator::on_cancel(&self.p.executor, state)
    }
}

impl EvolveJob {
    /// The generation in flight is relaxed (`state.done`): score, select, publish.
    fn select(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        let Some(eval) = &self.eval else { return Err(JobError::Failed("evaluator missing".into())) };
        let t = Instant::now();
        let relaxed: Vec<Relaxed> = self
            .state
            .done
            .drain(..)
            .map(|(structure, energy_per_atom, steps)| Relaxed { structure, energy_per_atom, steps })
            .collect();
        let scored = eval.score(relaxed);
        let ids = self.evo.accept(scored);
        self.state.seconds_evaluation += t.elapsed().as_secs_f64();
        self.publish(&ids, ctx);
        ctx.set_counter("duplicates", self.evo.state.history.last().map_or(0.0, |h| h.duplicates as f64));
        Ok(StepOutcome::Continue)
    }

    /// Slurm: the generation in flight goes out as one array (its first step submits, later steps poll and
    /// keep what landed; a relaxation that failed for good scores +∞, as locally). True once every
    /// individual of the generation is relaxed, in order, in `state.done`.
    fn relax_remote(&mut self, ctx: &mut JobContext, profile: &SlurmProfile) -> Result<bool, JobError> {
        let Some(eval) = &self.eval else { return Err(JobError::Failed("evaluator missing".into())) };
        let pending = &self.evo.state.pending;
        let tasks: Vec<TaskSpec> =
            pending.iter().map(|p| TaskSpec::relax(&p.structure, &self.p.relax.potential, &eval.relax, 0)).collect();
        let coord = Coordinator::new(profile, &ctx.project, ctx.run_id, self.p.relax.batch.max(1));
        let generation = self.evo.state.generation;
        let Some(remote) = &mut self.state.remote else {
            self.state.landed.clear();
            self.state.remote = Some(coord.start(ctx, &tasks)?);
            ctx.set_counter("generation", generation as f64);
            return Ok(false);
        };
        for l in coord.step(ctx, remote, &tasks) {
            let (i, r) = match l {
                Landed::Done(i, out) => (i, Relaxed::checked(out.structure(), out.energy, out.steps)),
                Landed::Failed(i, why) => {
                    ctx.log("warn", format!("generation {generation}, individual {i}: not relaxed ({why}); scored +∞"));
                    (i, Relaxed::failed(&pending[i].structure))
                }
            };
            self.state.landed.insert(i, (r.structure, r.energy_per_atom, r.steps));
        }
        let evaluated = self.evo.evaluated() + self.state.landed.len();
        let budget = self.p.search.budget as u64;
        ctx.set_progress("relax", evaluated as u64, budget, evaluated as f64 / budget.max(1) as f64);
        if remote.settled.len() < tasks.len() {
            return Ok(false);
        }
        self.state.remote = None;
        self.state.done = std::mem::take(&mut self.state.landed).into_values().collect();
        for (_, _, steps) in &self.state.done {
            self.state.relax_steps += steps;
        }
        Ok(true)
    }
}
