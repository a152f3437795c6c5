//! `screen`: the high-throughput screening funnel. Candidates are enumerated by substitution into
//! template structures (`search::enumerate`), then pass stages in order, each recorded on the candidate
//! (`stage` = the last stage passed, `extra.stopped` = why it stopped):
//! 1. `chemistry`: SMACT validity, allowed / excluded elements, maximum atoms;
//! 2. `composition_model`: predicted formation energy (composition ensemble) below `max_formation_energy`
//!    at the lower confidence bound (mean − 2σ);
//! 3. `structure_model`: formation energy and band gap with σ from the crystal-graph ensemble;
//! 4. `hull`: energy above the complete OQMD hull, with the predicted formation energy;
//! 5. `constraints`: probability that every constraint holds ≥ `min_probability`.
//!
//! Candidates that reach the end are ranked: Pareto front (non-dominated sorting of the objectives) and
//! crowding distance, or the probability of meeting the constraints when there are no objectives.
//!
//! With `relax_top = N`, the N best of them (by that ranking) are then relaxed with the interatomic potential
//! (`potential`, CHGNet by default), `batch` at a time per step (or as Slurm tasks with `[executor]`): each gets `relaxed_energy_per_atom`, `relax_steps`,
//! `relax_converged` and, with the shipped CHGNet, `relaxed_formation_energy_per_atom` and
//! `relaxed_e_above_hull` on the hull `hull` names (by default the complete OQMD hull, through CHGNet's fitted
//! chemical potentials; `potential`: the CHGNet-only hull); the relaxed structure is stored as a candidate
//! at stage `relaxed` whose parent is the screened one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chem::oxidation::{self, ValidityOptions};
use crate::crystal::Element;
use crate::data::Dataset;
use crate::energy::PhaseDiagram;
use crate::engine::error::JobError;
use crate::engine::executor::coordinator::CoordinatorState;
use crate::engine::executor::task::RelaxOutcome;
use crate::engine::executor::{ExecutorSpec, SlurmProfile};
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::{NewCandidate, PropValue};
use crate::ml::{PropertyModel, Target, shipped};
use crate::search::enumerate::{self, Candidate};
use crate::search::objectives::{
    Constraint, Estimate, Objective, crowding_distances, non_dominated_fronts, probability_all,
};

pub const KIND: &str = "screen";

/// The funnel's stages, in order.
pub const STAGES: [&str; 6] =
    ["enumerated", "chemistry", "composition_model", "structure_model", "hull", "constraints"];

/// Parameters of a `screen` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreenParams {
    /// Templates: dataset ids or reduced formulas (every dataset entry with that formula), or AFLOW
    /// prototypes as `aflow:KEY` (`aflow:B1`, `aflow:perovskite`, `aflow:AB2`, `aflow:*`).
    pub templates: Vec<String>,
    /// Hautier substitution probability threshold.
    pub threshold: f64,
    /// When not empty: exhaustive enumeration over these elements instead of the λ table.
    pub substitute_elements: Vec<String>,
    /// Candidates may only contain these elements (empty: any).
    pub allowed_elements: Vec<String>,
    /// Candidates must not contain these elements.
    pub excluded_elements: Vec<String>,
    pub max_atoms: usize,
    /// Composition-model cut (eV/atom): stop when mean − 2σ of the formation energy is above this.
    pub max_formation_energy: f64,
    /// e.g. `band_gap in [1.1, 1.8]`, `e_above_hull < 0.05`.
    pub constraints: Vec<Constraint>,
    /// e.g. `min e_above_hull`, `max band_gap`.
    pub objectives: Vec<Objective>,
    /// Keep candidates whose probability of meeting every constraint is at least this.
    pub min_probability: f64,
    pub composition_model: String,
    pub structure_model: String,
    /// More models (a user's `.safetensors` or TorchScript `.pt`, or shipped names) whose targets are
    /// predicted for every candidate that reaches the structure model, stored under their names; constraints
    /// and objectives may name them (e.g. `refractive_index > 2`).
    pub property_models: Vec<String>,
    /// Candidates per step (each step commits atomically).
    pub chunk_size: usize,
    /// Relax this many of the best-ranked candidates with `potential` after the funnel (0: none).
    pub relax_top: usize,
    /// The potential for `relax_top` (`chgnet`, `chgnet:weights=…`, `lj:…`, `torchscript:path=…`).
    pub potential: String,
    /// The hull `relax_top` places relaxed candidates on: `dft` (the complete OQMD hull through the
    /// potential's fitted chemical potentials) or `potential` (the CHGNet-only hull).
    pub hull: crate::energy::HullChoice,
    /// `relax_top` relaxations in flight at once (one batched potential evaluation per FIRE step).
    pub batch: usize,
    /// Where the `relax_top` relaxations run: `kind = "local"` or `kind = "slurm"` with a profile
    /// (docs/cluster.md).
    pub executor: ExecutorSpec,
}

impl Default for ScreenParams {
    fn default() -> Self {
        ScreenParams {
            templates: Vec::new(),
            threshold: 1e-3,
            substitute_elements: Vec::new(),
            allowed_elements: Vec::new(),
            excluded_elements: Vec::new(),
            max_atoms: 40,
            max_formation_energy: 0.2,
            constraints: Vec::new(),
            objectives: Vec::new(),
            min_probability: 0.1,
            composition_model: "composition".into(),
            structure_model: "graph".into(),
            property_models: Vec::new(),
            chunk_size: 256,
            relax_top: 0,
            potential: "chgnet".into(),
            hull: crate::energy::HullChoice::Dft,
            batch: 8,
            executor: ExecutorSpec::Local,
        }
    }
}

fn elements(key: &str, v: &[String]) -> Result<Vec<Element>, JobError> {
    v.iter()
        .map(|s| Element::from_symbol(s).map_err(|_| JobError::Config(format!("key `{key}`: unknown element {s:?}"))))
        .collect()
}

/// The properties the funnel estimates (with σ) for constraints and objectives.
pub const JUDGED: [&str; 3] = ["formation_energy_per_atom", "band_gap", "e_above_hull"];

impl ScreenParams {
    pub fn validate(&self) -> Result<(), JobError> {
        let bad = |key: &str, msg: String| Err(JobError::Config(format!("key `{key}`: {msg}")));
        if self.templates.is_empty() {
            return bad("templates", "give at least one dataset id, formula or aflow:PROTOTYPE".into());
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad("threshold", format!("expected a probability in (0, 1), got {}", self.threshold));
        }
        if !(0.0..=1.0).contains(&self.min_probability) {
            return bad("min_probability", format!("expected 0..=1, got {}", self.min_probability));
        }
        if self.chunk_size == 0 || self.chunk_size > 100_000 {
            return bad("chunk_size", format!("expected 1..=100000, got {}", self.chunk_size));
        }
        if self.max_atoms == 0 {
            return bad("max_atoms", "expected at least 1".into());
        }
        if self.relax_top > 0 {
            crate::energy::spec::check_spec(&self.potential)
                .map_err(|e| JobError::Config(format!("key `potential`: {e}")))?;
        }
        if self.batch == 0 {
            return bad("batch", "expected at least 1".into());
        }
        self.executor.validate()?;
        elements("substitute_elements", &self.substitute_elements)?;
        elements("allowed_elements", &self.allowed_elements)?;
        elements("excluded_elements", &self.excluded_elements)?;
        let mut extra: Vec<String> = Vec::new();
        for m in &self.property_models {
            shipped::check(m).map_err(|e| JobError::Config(format!("key `property_models`: {e}")))?;
            extra
                .extend(shipped::target_names(m).map_err(|e| JobError::Config(format!("key `property_models`: {e}")))?);
        }
        let judged = |key: &str, name: &str| {
            if JUDGED.contains(&name) || extra.iter().any(|e| e == name) {
                Ok(())
            } else {
                let all: Vec<&str> = JUDGED.iter().copied().chain(extra.iter().map(String::as_str)).collect();
                bad(
                    key,
                    format!(
                        "the screen does not compute {name} (it judges {}; add the model that predicts it to \
                         `property_models`)",
                        all.join(", ")
                    ),
                )
            }
        };
        for c in &self.constraints {
            judged("constraints", &c.property)?;
        }
        for o in &self.objectives {
            judged("objectives", &o.property)?;
        }
        let ds = Dataset::embedded();
        for t in &self.templates {
            if enumerate::templates_for(t, ds).is_empty() {
                return bad(
                    "templates",
                    format!(
                        "{t:?} is neither a dataset id, a formula in the dataset, nor an AFLOW prototype (aflow:KEY)"
                    ),
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct State {
    next: usize,
    /// Candidates that reached each stage (index = position in `STAGES`).
    reached: Vec<u64>,
    /// (seq, objective costs, probability) of candidates that passed every stage.
    passed: Vec<(i64, Vec<f64>, f64)>,
    /// Wall time spent in each stage (s): chemistry, composition model, structure model, hull + constraints.
    seconds: [f64; 4],
    /// After the funnel: the seqs chosen for relaxation, in rank order, and how many are done.
    #[serde(default)]
    to_relax: Option<Vec<i64>>,
    #[serde(default)]
    relaxed: usize,
    /// Wall time of the relaxations (s).
    #[serde(default)]
    relax_seconds: f64,
    /// Slurm executor: the coordinator's state for the `relax_top` relaxations.
    #[serde(default)]
    remote: Option<CoordinatorState>,
}

/// The job.
pub struct ScreenJob {
    params: ScreenParams,
    candidates: Vec<Candidate>,
    constraints: Vec<Constraint>,
    objectives: Vec<Objective>,
    allowed: Vec<Element>,
    excluded: Vec<Element>,
    models: Option<(Box<dyn PropertyModel>, Box<dyn PropertyModel>)>,
    /// The `property_models`, loaded with the others.
    extra_models: Vec<Box<dyn PropertyModel>>,
    hull: Option<std::sync::Arc<PhaseDiagram>>,
    /// The potential for `relax_top` and, for the shipped CHGNet, its hull; loaded when first needed.
    potential: Option<(Box<dyn crate::energy::Calculator>, Option<crate::energy::PotentialHull>)>,
    state: State,
}

impl ScreenJob {
    pub fn new(params: ScreenParams, _seed: u64) -> Result<ScreenJob, JobError> {
        params.validate()?;
        let ds = Dataset::embedded();
        let mut templates = Vec::new();
        for t in &params.templates {
            templates.extend(enumerate::templates_for(t, ds));
        }
        let subst = elements("substitute_elements", &params.substitute_elements)?;
        let mut cands = Vec::new();
        for t in &templates {
            if subst.is_empty() {
                cands.extend(enumerate::by_probability(t, params.threshold));
            } else {
                cands.extend(enumerate::exhaustive(t, &subst, true));
            }
        }
        cands.sort_by(|a, b| b.probability.unwrap_or(0.0).total_cmp(&a.probability.unwrap_or(0.0)));
        let candidates = enumerate::dedupe(cands, 0.01);
        Ok(ScreenJob {
            constraints: params.constraints.clone(),
            objectives: params.objectives.clone(),
            allowed: elements("allowed_elements", &params.allowed_elements)?,
            excluded: elements("excluded_elements", &params.excluded_elements)?,
            params,
            candidates,
            models: None,
            extra_models: Vec::new(),
            hull: None,
            potential: None,
            state: State { reached: vec![0; STAGES.len()], ..Default::default() },
        })
    }

    /// The potential for `relax_top` and, for the shipped CHGNet, its hull (loaded once).
    fn load_potential(&mut self, ctx: &mut JobContext) -> Result<(), JobError> {
        use crate::energy::PotentialHull;
        use crate::energy::spec::from_spec;
        if self.potential.is_none() {
            crate::ml::init_threads(1);
            let calc =
                from_spec(&self.params.potential).map_err(|e| JobError::Config(format!("key `potential`: {e}")))?;
            let hull = PotentialHull::for_potential(&calc.name(), self.params.hull).map_err(JobError::Failed)?;
            if let Some(h) = &hull {
                ctx.log("info", format!("relaxed candidates go on the {}", h.label()));
            }
            self.potential = Some((calc, hull));
        }
        Ok(())
    }

    /// `relax_top` on a Slurm cluster: submit every chosen candidate on the first call, then record what
    /// landed on each later one.
    fn relax_slurm(&mut self, ctx: &mut JobContext, profile: &SlurmProfile, seqs: &[i64]) -> Result<(), JobError> {
        use crate::engine::executor::coordinator::{Coordinator, Landed};
        use crate::engine::executor::task::TaskSpec;
        self.load_potential(ctx)?;
        let opts = crate::energy::RelaxOptions::default();
        let tasks: Vec<TaskSpec> = seqs
            .iter()
            .map(|&q| TaskSpec::relax(&self.candidates[q as usize].structure, &self.params.potential, &opts, 0))
            .collect();
        let coord = Coordinator::new(profile, &ctx.project, ctx.run_id, self.params.batch);
        let Some(remote) = &mut self.state.remote else {
            self.state.remote = Some(coord.start(ctx, &tasks)?);
            return Ok(());
        };
        let landed = coord.step(ctx, remote, &tasks);
        let settled = remote.settled.len();
        for l in landed {
            match l {
                Landed::Done(i, r) => self.record_relaxed(ctx, seqs[i], &r),
                Landed::Failed(i, reason) => self.record_failure(ctx, seqs[i], &reason),
            }
        }
        self.state.relaxed = settled;
        Ok(())
    }

    /// Relax the candidates emitted as `seqs` together in this process (`batch` in flight).
    fn relax_local(&mut self, ctx: &mut JobContext, seqs: &[i64]) -> Result<(), JobError> {
        use crate::energy::{RelaxOptions, relax_many};
        self.load_potential(ctx)?;
        let (calc, _) = self.potential.as_ref().expect("loaded above");
        let starts: Vec<_> = seqs.iter().map(|&q| self.candidates[q as usize].structure.clone()).collect();
        let name = calc.name();
        let cancel = ctx.cancel_flag();
        let results = relax_many(
            calc.as_ref(),
            &starts,
            &RelaxOptions::default(),
            self.params.batch,
            &mut |_, _, _| {
                if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            },
            &mut |_, _| std::ops::ControlFlow::Continue(()),
        );
        if ctx.is_cancelled() {
            // Discarded by the runner; these candidates are relaxed again on resume.
            return Ok(());
        }
        for (&seq, r) in seqs.iter().zip(results) {
            match r {
                Ok(r) => {
                    let out = RelaxOutcome::new(&r, Vec::new(), name.clone(), 0.0);
                    self.record_relaxed(ctx, seq, &out);
                }
                Err(e) => self.record_failure(ctx, seq, &e.to_string()),
            }
        }
        Ok(())
    }

    fn record_failure(&self, ctx: &mut JobContext, seq: i64, reason: &str) {
        let name = self.candidates[seq as usize].structure.reduced_formula();
        ctx.log("warn", format!("candidate {seq} ({name}): relaxation failed: {reason}"));
        ctx.update_prop(seq, "relax_converged", 0.0.into());
    }

    /// Record the relaxation of the candidate emitted as `seq`, wherever it ran: its relaxed energy (and,
    /// with the shipped CHGNet, its place on the hull) and the relaxed structure as its child.
    fn record_relaxed(&self, ctx: &mut JobContext, seq: i64, out: &RelaxOutcome) {
        let (_, hull) = self.potential.as_ref().expect("loaded before relaxing");
        let c = &self.candidates[seq as usize];
        let name = c.structure.reduced_formula();
        let structure = out.structure();
        let per_atom = out.energy / structure.n_sites() as f64;
        let mut props: Vec<(String, PropValue)> = vec![
            ("relaxed_energy_per_atom".into(), per_atom.into()),
            ("relax_steps".into(), (out.steps as f64).into()),
            ("relax_converged".into(), f64::from(u8::from(out.converged)).into()),
        ];
        let mut extra = serde_json::Map::new();
        extra.insert("relaxed_from_seq".into(), json!(seq));
        extra.insert("potential".into(), json!(out.potential));
        if let Some(on) = hull {
            match on.place(&structure.composition(), per_atom) {
                Ok(h) => {
                    props.push(("relaxed_e_above_hull".into(), h.e_above_hull.into()));
                    props.push(("relaxed_formation_energy_per_atom".into(), h.formation_energy_per_atom.into()));
                    let ents = on.diagram().entries();
                    extra.insert("decomposition".into(), json!(h.point.decomposition.products.iter().map(|(k, x)| json!({"formula": ents[*k].composition.reduced_formula(), "name": ents[*k].name, "fraction": x})).collect::<Vec<_>>()));
                    extra.insert("hull".into(), json!(on.label()));
                }
                Err(e) => ctx.log("warn", format!("candidate {seq} ({name}): hull: {e}")),
            }
        }
        for (k, v) in &props {
            ctx.update_prop(seq, k, *v);
        }
        ctx.log(
            "info",
            format!(
                "candidate {seq} ({name}) relaxed in {} steps: {per_atom:.4} eV/atom{}",
                out.steps,
                props
                    .iter()
                    .find(|(k, _)| k == "relaxed_e_above_hull")
                    .map(|(_, v)| format!(", {:.3} eV/atom above the hull", v.value))
                    .unwrap_or_default()
            ),
        );
        ctx.emit(NewCandidate {
            seq: 0,
            structure,
            stage: "relaxed".into(),
            source: format!("relax:{}", c.template),
            props,
            extra,
            parents: Vec::new(),
        });
    }

    fn chemistry(&self, c: &Candidate) -> Result<(), String> {
        let s = &c.structure;
        if s.n_sites() > self.params.max_atoms {
            return Err(format!("{} atoms > max_atoms {}", s.n_sites(), self.params.max_atoms));
        }
        let comp = s.composition();
        if let Some(e) = comp
            .elements()
            .into_iter()
            .find(|e| self.excluded.contains(e) || (!self.allowed.is_empty() && !self.allowed.contains(e)))
        {
            return Err(format!("element {e} not allowed"));
        }
        let v = oxidation::validity(&comp, ValidityOptions::default());
        if !v.is_valid() { Err(format!("SMACT: {}", v.explain())) } else { Ok(()) }
    }
}

fn est(p: &crate::ml::Prediction) -> Estimate {
    Estimate { mean: p.mean, std: p.std }
}

fn model_err(e: crate::ml::ModelError) -> JobError {
    JobError::Failed(e.to_string())
}

impl Job for ScreenJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn restore(&mut self, checkpoint: &Value) -> Result<(), JobError> {
        self.state = crate::engine::job::state_from_checkpoint(checkpoint)?;
        Ok(())
    }

    fn checkpoint(&self) -> Value {
        crate::engine::job::checkpoint_of(&self.state)
    }

    fn on_cancel(&mut self) -> Vec<(String, String)> {
        crate::engine::executor::coordinator::on_cancel(&self.params.executor, self.state.remote.as_ref())
    }

    fn step(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        let n = self.candidates.len();
        if self.models.is_none() {
            crate::ml::init_threads(1);
            let comp = shipped::open(&self.params.composition_model).map_err(model_err)?;
            let graph = shipped::open(&self.params.structure_model).map_err(model_err)?;
            self.models = Some((comp, graph));
            self.extra_models = self
                .params
                .property_models
                .iter()
                .map(|m| shipped::open(m))
                .collect::<Result<_, _>>()
                .map_err(model_err)?;
            self.hull = Some(PhaseDiagram::complete());
            ctx.log("info", format!("{n} candidates enumerated from {} template queries", self.params.templates.len()));
        }
        if self.state.next < n {
            let end = (self.state.next + self.params.chunk_size).min(n);
            let (comp_model, graph_model) = self.models.as_ref().expect("loaded above");
            let hull = self.hull.as_ref().expect("loaded above");
            let chunk = &self.candidates[self.state.next..end];
            // Stage 1: chemistry.
            let clock = std::time::Instant::now();
            let chem: Vec<Result<(), String>> = chunk.iter().map(|c| self.chemistry(c)).collect();
            self.state.seconds[0] += clock.elapsed().as_secs_f64();
            let clock = std::time::Instant::now();
            // Stage 2: composition model on the survivors.
            let idx2: Vec<usize> = (0..chunk.len()).filter(|&i| chem[i].is_ok()).collect();
            let comps: Vec<_> = idx2.iter().map(|&i| chunk[i].structure.composition()).collect();
            let p2 = if comps.is_empty() {
                Vec::new()
            } else {
                comp_model.predict_compositions(&comps).map_err(model_err)?
            };
            let t2 = comp_model.targets();
            let fe_k = t2.iter().position(|t| *t == Target::FormationEnergyPerAtom);
            let mut comp_pred: BTreeMap<usize, Vec<crate::ml::Prediction>> = BTreeMap::new();
            for (&i, p) in idx2.iter().zip(p2) {
                comp_pred.insert(i, p);
            }
            let pass2 = |i: usize| {
                comp_pred.get(&i).is_some_and(|p| {
                    fe_k.is_none_or(|k| p[k].mean - 2.0 * p[k].std <= self.params.max_formation_energy)
                })
            };
            self.state.seconds[1] += clock.elapsed().as_secs_f64();
            // Stage 3: structure model.
            let clock = std::time::Instant::now();
            let idx3: Vec<usize> = idx2.iter().copied().filter(|&i| pass2(i)).collect();
            let structs: Vec<_> = idx3.iter().map(|&i| chunk[i].structure.clone()).collect();
            let p3 = if structs.is_empty() { Vec::new() } else { graph_model.predict(&structs).map_err(model_err)? };
            let mut t3 = graph_model.targets();
            let mut graph_pred: BTreeMap<usize, Vec<crate::ml::Prediction>> = BTreeMap::new();
            // Per candidate that a property model with a recorded domain judged: the models it lies outside of.
            let mut domain: BTreeMap<usize, Vec<String>> = BTreeMap::new();
            for (&i, p) in idx3.iter().zip(p3) {
                graph_pred.insert(i, p);
            }
            // The property models' targets join the structure model's, in the same rows.
            for m in &self.extra_models {
                if structs.is_empty() {
                    break;
                }
                let p = m.predict(&structs).map_err(model_err)?;
                // Inputs outside the model's domain of applicability are flagged, per candidate.
                if let Some(d) = m.domain(&structs).map_err(model_err)? {
                    for (&i, (_, out)) in idx3.iter().zip(d) {
                        let flags = domain.entry(i).or_default();
                        if out {
                            flags.push(m.name());
                        }
                    }
                }
                t3.extend(m.targets());
                for (&i, p) in idx3.iter().zip(p) {
                    if let Some(row) = graph_pred.get_mut(&i) {
                        row.extend(p);
                    }
                }
            }
            self.state.seconds[2] += clock.elapsed().as_secs_f64();
            let clock = std::time::Instant::now();
            for (i, c) in chunk.iter().enumerate() {
                let mut props: Vec<(String, PropValue)> = Vec::new();
                let mut extra = serde_json::Map::new();
                extra.insert("template".into(), json!(c.template));
                extra.insert(
                    "model".into(),
                    json!(format!("{} + {}", self.params.composition_model, self.params.structure_model)),
                );
                extra.insert("prototype".into(), json!(c.prototype));
                extra.insert(
                    "substitutions".into(),
                    json!(c.substitutions.iter().map(|(a, b)| [a.symbol(), b.symbol()]).collect::<Vec<_>>()),
                );
                if let Some(p) = c.probability {
                    props.push(("substitution_probability".into(), p.into()));
                }
                props.push(("n_atoms".into(), (c.structure.n_sites() as f64).into()));
                if let Some(models) = domain.get(&i) {
                    props.push(("out_of_domain".into(), (if models.is_empty() { 0.0 } else { 1.0 }).into()));
                    if !models.is_empty() {
                        extra.insert("out_of_domain_of".into(), json!(models));
                    }
                }
                let mut stage = 0;
                let mut stopped: Option<String> = None;
                let mut estimates: BTreeMap<String, Estimate> = BTreeMap::new();
                if let Err(why) = &chem[i] {
                    stopped = Some(why.clone());
                } else {
                    stage = 1;
                    if let Some(p) = comp_pred.get(&i) {
                        for (t, x) in t2.iter().zip(p) {
                            props.push((format!("{}_composition", t.name()), PropValue::predicted(x)));
                        }
                    }
                    if !pass2(i) {
                        stopped = Some(format!(
                            "composition model: formation energy lower bound above {} eV/atom",
                            self.params.max_formation_energy
                        ));
                    } else {
                        let p = &graph_pred[&i];
                        for (t, x) in t3.iter().zip(p) {
                            props.push((t.name().to_string(), PropValue::predicted(x)));
                            estimates.insert(t.name().to_string(), est(x));
                        }
                        stage = 3;
                        match estimates
                            .get("formation_energy_per_atom")
                            .map(|fe| (fe, hull.e_above_hull(&c.structure.composition(), fe.mean)))
                        {
                            Some((fe, Ok(h))) => {
                                let e = Estimate { mean: h.e_above_hull, std: fe.std };
                                props.push(("e_above_hull".into(), PropValue::with_std(e.mean, e.std)));
                                estimates.insert("e_above_hull".into(), e);
                                let ents = hull.entries();
                                extra.insert("decomposition".into(), json!(h.decomposition.products.iter().map(|(k, x)| json!({"formula": ents[*k].composition.reduced_formula(), "fraction": x})).collect::<Vec<_>>()));
                                stage = 4;
                                let prob = probability_all(&self.constraints, &estimates);
                                props.push(("p_constraints".into(), prob.into()));
                                if prob < self.params.min_probability {
                                    stopped =
                                        Some(format!("P(constraints) = {prob:.3} < {}", self.params.min_probability));
                                } else {
                                    stage = 5;
                                    let costs = self
                                        .objectives
                                        .iter()
                                        .map(|o| estimates.get(&o.property).map_or(f64::INFINITY, |e| o.cost(*e, 0.0)))
                                        .collect();
                                    self.state.passed.push((self.state.next as i64 + i as i64, costs, prob));
                                }
                            }
                            Some((_, Err(e))) => stopped = Some(format!("hull: {e}")),
                            None => stopped = Some("the structure model predicts no formation energy".into()),
                        }
                    }
                }
                for s in 0..=stage {
                    self.state.reached[s] += 1;
                }
                if let Some(w) = &stopped {
                    extra.insert("stopped".into(), json!(w));
                }
                ctx.emit(NewCandidate {
                    seq: 0,
                    structure: c.structure.clone(),
                    stage: STAGES[stage].into(),
                    source: format!("substitution:{}", c.template),
                    props,
                    extra,
                    parents: Vec::new(),
                });
            }
            self.state.seconds[3] += clock.elapsed().as_secs_f64();
            self.state.next = end;
            for (s, name) in STAGES.iter().enumerate() {
                ctx.set_counter(name, self.state.reached[s] as f64);
            }
            ctx.set_progress("screen", end as u64, n as u64, end as f64 / n.max(1) as f64 * 0.99);
            return Ok(StepOutcome::Continue);
        }
        // Rank the candidates that passed: Pareto fronts of the objectives, or the constraint probability.
        let passed = &self.state.passed;
        let costs: Vec<Vec<f64>> =
            passed.iter().map(|(_, c, p)| if c.is_empty() { vec![-p] } else { c.clone() }).collect();
        let fronts = non_dominated_fronts(&costs);
        let crowd = crowding_distances(&costs, &fronts);
        if self.state.to_relax.is_none() {
            for (k, (seq, _, _)) in passed.iter().enumerate() {
                ctx.update_prop(*seq, "pareto_rank", (fronts[k] as f64).into());
                ctx.update_prop(*seq, "crowding_distance", (if crowd[k].is_finite() { crowd[k] } else { 1e9 }).into());
            }
            // Best first: lower front, then larger crowding distance, then higher constraint probability.
            let mut order: Vec<usize> = (0..passed.len()).collect();
            order.sort_by(|&a, &b| {
                fronts[a].cmp(&fronts[b]).then(crowd[b].total_cmp(&crowd[a])).then(passed[b].2.total_cmp(&passed[a].2))
            });
            self.state.to_relax = Some(order.into_iter().take(self.params.relax_top).map(|k| passed[k].0).collect());
            if self.params.relax_top > 0 {
                return Ok(StepOutcome::Continue);
            }
        }
        let to_relax = self.state.to_relax.clone().unwrap_or_default();
        if self.state.relaxed < to_relax.len() {
            let clock = std::time::Instant::now();
            match self.params.executor.clone() {
                ExecutorSpec::Local => {
                    let end = (self.state.relaxed + self.params.batch.max(1)).min(to_relax.len());
                    let seqs = &to_relax[self.state.relaxed..end];
                    self.relax_local(ctx, seqs)?;
                    if ctx.is_cancelled() {
                        return Ok(StepOutcome::Continue);
                    }
                    self.state.relaxed = end;
                }
                ExecutorSpec::Slurm(profile) => self.relax_slurm(ctx, &profile, &to_relax)?,
            }
            self.state.relax_seconds += clock.elapsed().as_secs_f64();
            ctx.set_counter("relaxed", self.state.relaxed as f64);
            ctx.set_progress(
                "relax",
                self.state.relaxed as u64,
                to_relax.len() as u64,
                0.99 + 0.01 * self.state.relaxed as f64 / to_relax.len() as f64,
            );
            return Ok(StepOutcome::Continue);
        }
        ctx.set_progress("done", n as u64, n as u64, 1.0);
        let funnel: serde_json::Map<String, Value> =
            STAGES.iter().zip(&self.state.reached).map(|(s, n)| (s.to_string(), json!(n))).collect();
        // Throughput of each stage: candidates that entered it per second of its wall time (the hull stage
        // includes emitting the candidates).
        let r = &self.state.reached;
        let t = &self.state.seconds;
        let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        let throughput = json!({"chemistry": rate(r[0], t[0]), "composition_model": rate(r[1], t[1]), "structure_model": rate(r[2], t[2]), "hull_and_constraints": rate(r[3], t[3])});
        Ok(StepOutcome::Done(
            json!({"candidates": n, "funnel": funnel, "passed": passed.len(), "pareto_front": fronts.iter().filter(|f| **f == 0).count(),
                                    "stage_seconds": t, "candidates_per_second": throughput, "relaxed": self.state.relaxed, "relax_seconds": self.state.relax_seconds}),
        ))
    }
}
