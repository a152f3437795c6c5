//! `generate`: crystals from the crystal VAE streamed into the project (see
//! [`crate::search::generate`]). One step decodes one batch; every crystal the decoder builds becomes
//! a candidate (stage `generated` when structurally and compositionally valid, else `invalid`) with
//! forward-model predictions (mean and σ), the generator's head predictions, validity, novelty and the
//! distance to the targets; its latent code is kept in `extra.latent`. Resumes at the next batch.
//!
//! With `relax` set, every valid crystal is also symmetrised and relaxed ([`crate::search::polish`]) and
//! the result emitted as a child candidate (stage `relaxed`) carrying the forward model's predictions
//! for the relaxed structure and its distance to the targets, under the same names as the parent's.
//!
//! Where the relaxations run is the `[executor]` table ([`crate::engine::executor`]): `local` (each valid
//! crystal relaxed as its batch is decoded) or `slurm` (crystals are symmetrised as they are decoded, and
//! when decoding is done all of them go out as job arrays; later steps poll and emit the relaxed crystals
//! as they land, placed on the hull here).
//!
//! Live counters: `valid`, `hits` (valid and inside every target window), `per_second`, and with
//! `relax` also `relaxed`, `relaxed_hits` (relaxed crystals inside every window) and `stable_novel`
//! (≤ 0.1 eV/atom above the potential's hull, not in the training split).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crystal::Structure;
use crate::engine::error::JobError;
use crate::engine::executor::coordinator::{Coordinator, CoordinatorState, Landed};
use crate::engine::executor::task::TaskSpec;
use crate::engine::executor::{ExecutorSpec, SlurmProfile};
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::{NewCandidate, PropValue};
use crate::ml::PropertyModel;
use crate::ml::generative::CrystalVae;
use crate::ml::joined::Joined;
use crate::search::generate::{Campaign, CampaignSettings};
use crate::search::polish::{PolishSettings, Polished, Polisher};

pub const KIND: &str = "generate";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateParams {
    /// Crystals to decode.
    pub n: usize,
    /// The generator: `crystal-vae` (shipped) or a `.safetensors` file.
    pub model: String,
    /// Forward model for the reported properties.
    pub property_model: String,
    /// More forward models (a user's `.safetensors` or TorchScript `.pt`, or shipped names) whose targets
    /// are predicted for every crystal and stored under their names; targets may name them (e.g.
    /// `refractive_index > 2.5`), and the run then keeps, of each crystal's oversampled codes, the one
    /// these models put nearest the target.
    pub property_models: Vec<String>,
    /// Crystals decoded together (one step of the run).
    pub batch: usize,
    /// Seed crystals (`around`, `interpolate`): dataset ids, labels, formulas or files.
    pub seeds: Vec<String>,
    /// What to decode and towards which targets.
    pub settings: CampaignSettings,
    /// Post-processing of every valid crystal: symmetrise (moyo, 0.1 Å) and relax with this potential
    /// (`chgnet`, `lj:…`, `torchscript:…`); the relaxed crystal is emitted too (stage `relaxed`, its
    /// parent the generated one) with its energy and, with CHGNet, its distance above the hull.
    /// Empty: no post-processing.
    pub relax: String,
    /// FIRE steps per relaxation.
    pub relax_steps: usize,
    /// The hull relaxed crystals are placed on: `dft` (the complete OQMD hull, through the potential's
    /// fitted chemical potentials) or `potential` (the CHGNet-only hull).
    pub hull: crate::energy::HullChoice,
    /// Where the `relax` relaxations run: `kind = "local"` (this process) or `kind = "slurm"` with a
    /// profile.
    pub executor: ExecutorSpec,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            n: 100,
            model: "crystal-vae".into(),
            property_model: "graph".into(),
            property_models: Vec::new(),
            batch: 64,
            seeds: Vec::new(),
            settings: CampaignSettings::default(),
            relax: String::new(),
            relax_steps: 300,
            hull: crate::energy::HullChoice::Dft,
            executor: ExecutorSpec::Local,
        }
    }
}

impl GenerateParams {
    /// Every check that loads no model (run at submission); the job's `new` loads the generator.
    pub fn validate(&self) -> Result<(), JobError> {
        let bad = |key: &str, e: String| JobError::Config(format!("key `{key}`: {e}"));
        if self.n == 0 || self.batch == 0 {
            return Err(JobError::Config("keys `n` and `batch` must be at least 1".into()));
        }
        self.settings.validate(self.seeds.len()).map_err(|e| bad("settings", e))?;
        if !(self.model.is_empty() || self.model == "crystal-vae" || std::path::Path::new(&self.model).is_file()) {
            return Err(bad("model", format!("expected crystal-vae or a .safetensors file, got {:?}", self.model)));
        }
        crate::ml::shipped::check(&self.property_model).map_err(|e| bad("property_model", e.to_string()))?;
        let mut predicted: Vec<String> = Vec::new();
        for (key, m) in std::iter::once(("property_model", &self.property_model))
            .chain(self.property_models.iter().map(|m| ("property_models", m)))
        {
            crate::ml::shipped::check(m).map_err(|e| bad(key, e.to_string()))?;
            predicted.extend(crate::ml::shipped::target_names(m).map_err(|e| bad(key, e.to_string()))?);
        }
        if let Some(t) =
            self.settings.targets.iter().find(|t| !t.has_head() && !predicted.iter().any(|n| n == t.target.name()))
        {
            return Err(bad(
                "settings",
                format!(
                    "target {}: the generator has no head for {} and no forward model of the run predicts it (they \
                     predict {}); add the model that does to `property_models`",
                    t.describe(),
                    t.target.name(),
                    predicted.join(", ")
                ),
            ));
        }
        if !self.relax.is_empty() {
            crate::energy::spec::check_spec(&self.relax).map_err(|e| bad("relax", e.to_string()))?;
        }
        self.executor.validate()?;
        if self.relax.trim().is_empty() && matches!(self.executor, ExecutorSpec::Slurm(_)) {
            return Err(bad(
                "executor",
                "a Slurm executor runs the `relax` relaxations, and `relax` is not set".into(),
            ));
        }
        super::relax::check_inputs("seeds", &self.seeds)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct State {
    next: usize,
    built: usize,
    valid: usize,
    hits: usize,
    novel_valid: usize,
    /// Post-processing: relaxed, and stable (≤ 0.1 eV/atom above the hull) ∧ novel after relaxation.
    relaxed: usize,
    stable_novel: usize,
    /// Relaxed crystals the forward model puts inside every target window.
    relaxed_hits: usize,
    seconds: f64,
    /// Slurm executor: valid crystals symmetrised and waiting for their relaxation, in decoding order.
    queued: Vec<Queued>,
    /// Slurm executor: the coordinator's state once decoding is done and `queued` went out.
    remote: Option<CoordinatorState>,
}

/// A valid crystal prepared for a relaxation elsewhere ([`Polisher::prepare`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Queued {
    /// The generated candidate's sequence number and the crystal's index in the run.
    seq: i64,
    index: usize,
    /// Symmetrised (to `symmetrised_group`, when symmetrising worked).
    structure: Structure,
    symmetrised_group: Option<u8>,
}

pub struct GenerateJob {
    p: GenerateParams,
    seed: u64,
    state: State,
    ready: Option<(Campaign, Joined)>,
    polisher: Option<Polisher>,
    /// Slurm executor: the queued crystals' tasks, made once decoding is done (every poll checks results
    /// against them).
    tasks: Vec<TaskSpec>,
}

impl GenerateJob {
    pub fn new(p: GenerateParams, seed: u64) -> Result<GenerateJob, JobError> {
        p.validate()?;
        Ok(GenerateJob { p, seed, state: State::default(), ready: None, polisher: None, tasks: Vec::new() })
    }

    fn summary(&self) -> Value {
        let s = &self.state;
        json!({"requested": self.p.n, "built": s.built, "valid": s.valid, "target_hits": s.hits, "valid_novel": s.novel_valid, "relaxed": s.relaxed, "stable_novel_after_relaxation": s.stable_novel, "target_hits_after_relaxation": s.relaxed_hits, "seconds": s.seconds,
               "crystals_per_second": s.next as f64 / s.seconds.max(1e-9)})
    }
}

/// What [`emit_relaxed`] needs besides the crystal.
struct RelaxedContext<'a> {
    campaign: &'a Campaign,
    polisher: &'a Polisher,
    /// The forward model, asked again about the relaxed crystal.
    model: &'a dyn PropertyModel,
    source: String,
}

/// The post-processed crystal as its own candidate, child of the generated one (`seq`).
fn emit_relaxed(ctx: &mut JobContext, state: &mut State, rc: &RelaxedContext, seq: i64, index: usize, r: Polished) {
    let Some(e) = r.energy_per_atom else {
        ctx.log("warn", format!("crystal {}: {}", index + 1, r.note.as_deref().unwrap_or("not relaxed")));
        return;
    };
    state.relaxed += 1;
    let novel = rc.campaign.is_novel(&r.structure);
    let stable = rc.polisher.is_stable(&r);
    state.stable_novel += usize::from(stable && novel);
    let flag = |b: bool| PropValue::from(f64::from(u8::from(b)));
    let mut props: Vec<(String, PropValue)> = vec![
        ("relaxed_energy_per_atom".into(), e.into()),
        ("relax_steps".into(), (r.relax_steps as f64).into()),
        ("relax_converged".into(), flag(r.converged)),
        ("novel".into(), flag(novel)),
    ];
    // The relaxed crystal's own predictions, under the same names as the generated one's.
    match rc.campaign.judge_each(std::slice::from_ref(&r.structure), rc.model).pop() {
        Some(Ok((predicted, distance))) => {
            props.extend(predicted.iter().map(|(t, p)| (t.name().to_string(), PropValue::predicted(p))));
            if let Some(d) = distance {
                props.push(("distance_to_target".into(), d.into()));
                state.relaxed_hits += usize::from(d == 0.0);
            }
        }
        Some(Err(e)) => ctx.log("warn", format!("crystal {}: no prediction for the relaxed crystal: {e}", index + 1)),
        None => {}
    }
    if let Some(h) = r.e_above_hull {
        props.push(("relaxed_e_above_hull".into(), h.into()));
    }
    if let Some(f) = r.formation_energy_per_atom {
        props.push(("relaxed_formation_energy_per_atom".into(), f.into()));
    }
    if let Some(g) = r.space_group {
        props.push(("space_group".into(), f64::from(g).into()));
    }
    let mut extra = serde_json::Map::new();
    extra.insert("index".into(), json!(index));
    extra.insert("relaxed_from_seq".into(), json!(seq));
    ctx.emit(NewCandidate {
        seq: 0,
        structure: r.structure,
        stage: "relaxed".into(),
        source: rc.source.clone(),
        props,
        extra,
        parents: vec![seq],
    });
}

impl Job for GenerateJob {
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
        crate::engine::executor::coordinator::on_cancel(&self.p.executor, self.state.remote.as_ref())
    }

    fn step(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        crate::ml::init_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        if self.ready.is_none() {
            ctx.set_progress("load", 0, self.p.n as u64, 0.0);
            let seeds: Vec<_> = super::relax::inputs(&self.p.seeds)?.into_iter().map(|(_, s)| s).collect();
            let vae = CrystalVae::open(&self.p.model).map_err(|e| JobError::Config(format!("key `model`: {e}")))?;
            let campaign = Campaign::new(vae, self.p.settings.clone(), &seeds).map_err(JobError::Config)?;
            let mut models = vec![
                crate::ml::shipped::open(&self.p.property_model)
                    .map_err(|e| JobError::Config(format!("key `property_model`: {e}")))?,
            ];
            for m in &self.p.property_models {
                models.push(
                    crate::ml::shipped::open(m).map_err(|e| JobError::Config(format!("key `property_models`: {e}")))?,
                );
            }
            let model = Joined::new(models).map_err(|e| JobError::Config(e.to_string()))?;
            campaign.check_forward_model(&model).map_err(JobError::Config)?;
            for note in &campaign.notes {
                ctx.log("info", note.clone());
            }
            if !campaign.targets.is_empty() {
                ctx.log(
                    "info",
                    format!(
                        "targets: {}",
                        campaign.targets.iter().map(|t| t.describe()).collect::<Vec<_>>().join("; ")
                    ),
                );
            }
            self.ready = Some((campaign, model));
            if !self.p.relax.trim().is_empty() {
                self.polisher = Some(
                    Polisher::new(PolishSettings {
                        hull: self.p.hull,
                        ..PolishSettings::relaxing(&self.p.relax, self.p.relax_steps)
                    })
                    .map_err(|e| JobError::Config(format!("key `relax`: {e}")))?,
                );
            }
        }
        let Some((campaign, model)) = &self.ready else { return Err(JobError::Failed("campaign missing".into())) };
        if self.state.next >= self.p.n {
            if let ExecutorSpec::Slurm(profile) = &self.p.executor
                && !self.state.queued.is_empty()
            {
                let profile = profile.clone();
                return self.relax_remote(ctx, &profile);
            }
            return Ok(StepOutcome::Done(self.summary()));
        }
        let remote = matches!(self.p.executor, ExecutorSpec::Slurm(_));
        let t0 = std::time::Instant::now();
        let start = self.state.next;
        let count = self.p.batch.min(self.p.n - start);
        let n_total = self.p.n;
        ctx.set_progress("latent codes", start as u64, n_total as u64, start as f64 / n_total as f64);
        let cancel = ctx.cancel_flag();
        let results = {
            let mut progress = |done: usize, total: usize| {
                let f = (start as f64 + count as f64 * done as f64 / total.max(1) as f64) / n_total as f64;
                ctx.set_progress("decoding", start as u64, n_total as u64, f);
            };
            campaign
                .generate(start, count, n_total, self.seed, model, &mut progress, &|| {
                    cancel.load(std::sync::atomic::Ordering::Relaxed)
                })
                .map_err(JobError::Failed)?
        };
        if ctx.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        let targets: Vec<String> = campaign.targets.iter().map(|t| t.describe()).collect();
        // Per built crystal, the models whose domain of applicability it lies outside (models that record one).
        let built: Vec<crate::crystal::Structure> =
            results.iter().filter_map(|r| r.as_ref().ok().map(|g| g.structure.clone())).collect();
        let mut domains =
            model.outside_domain_of(&built).map_err(|e| JobError::Failed(e.to_string()))?.map(Vec::into_iter);
        // The batch's valid crystals relaxed here, batched (a Slurm executor queues them instead). A cancel
        // mid-relaxation drops the whole batch, which is decoded again on resume.
        let mut relaxed_here: Vec<Option<Polished>> = match (&self.polisher, remote) {
            (Some(p), false) => {
                let valid: Vec<Option<&Structure>> =
                    results.iter().map(|r| r.as_ref().ok().filter(|g| g.valid()).map(|g| &g.structure)).collect();
                ctx.set_progress("relaxing", start as u64, n_total as u64, start as f64 / n_total as f64);
                let out = p.polish_some(&valid, &|| cancel.load(std::sync::atomic::Ordering::Relaxed));
                if ctx.is_cancelled() {
                    return Err(JobError::Cancelled);
                }
                out
            }
            _ => vec![None; results.len()],
        };
        for (k, r) in results.into_iter().enumerate() {
            let g = match r {
                Ok(g) => g,
                Err(e) => {
                    ctx.log("debug", format!("crystal {}: {e}", start + k + 1));
                    continue;
                }
            };
            self.state.built += 1;
            let valid = g.valid();
            let hit = valid && g.distance_to_target == Some(0.0);
            self.state.valid += usize::from(valid);
            self.state.hits += usize::from(hit);
            self.state.novel_valid += usize::from(valid && g.novel);
            let flag = |b: bool| PropValue::from(f64::from(u8::from(b)));
            let mut props: Vec<(String, PropValue)> =
                g.predicted.iter().map(|(t, p)| (t.name().to_string(), PropValue::predicted(p))).collect();
            props.push(("head_formation_energy_per_atom".into(), g.head_properties[0].into()));
            props.push(("head_band_gap".into(), g.head_properties[1].into()));
            props.push(("structurally_valid".into(), flag(g.structurally_valid)));
            props.push(("compositionally_valid".into(), flag(g.compositionally_valid)));
            props.push(("novel".into(), flag(g.novel)));
            if let Some(d) = g.distance_to_target {
                props.push(("distance_to_target".into(), d.into()));
            }
            let mut extra = serde_json::Map::new();
            if let Some(outside) = domains.as_mut().and_then(Iterator::next) {
                props.push(("out_of_domain".into(), flag(!outside.is_empty())));
                if !outside.is_empty() {
                    extra.insert("out_of_domain_of".into(), json!(outside));
                }
            }
            extra.insert("latent".into(), json!(g.latent));
            extra.insert("model".into(), json!(self.p.property_model));
            extra.insert("mode".into(), json!(self.p.settings.mode));
            extra.insert("index".into(), json!(start + k));
            if !targets.is_empty() {
                extra.insert("targets".into(), json!(targets));
            }
            let stage = if valid { "generated" } else { "invalid" };
            let polished = relaxed_here[k].take();
            let to_queue = (remote && valid && self.polisher.is_some()).then(|| g.structure.clone());
            let seq = ctx.emit(NewCandidate {
                seq: 0,
                structure: g.structure,
                stage: stage.into(),
                source: format!("crystal-vae ({})", self.p.model),
                props,
                extra,
                parents: Vec::new(),
            });
            if let (Some(p), Some(s)) = (&self.polisher, to_queue) {
                let mut prepared = p.prepare(&s);
                if p.relaxer(&mut prepared).is_some() {
                    self.state.queued.push(Queued {
                        seq,
                        index: start + k,
                        structure: prepared.structure,
                        symmetrised_group: prepared.symmetrised_group,
                    });
                } else {
                    let why = prepared.note.as_deref().unwrap_or("not relaxed");
                    ctx.log("warn", format!("crystal {}: {why}", start + k + 1));
                }
            }
            if let (Some(r), Some(polisher)) = (polished, &self.polisher) {
                let rc = RelaxedContext {
                    campaign,
                    polisher,
                    model,
                    source: format!("crystal-vae ({}) + {}", self.p.model, self.p.relax.trim()),
                };
                emit_relaxed(ctx, &mut self.state, &rc, seq, start + k, r);
            }
        }
        self.state.next = start + count;
        self.state.seconds += t0.elapsed().as_secs_f64();
        ctx.set_counter("valid", self.state.valid as f64);
        ctx.set_counter("hits", self.state.hits as f64);
        if self.polisher.is_some() {
            ctx.set_counter("relaxed", self.state.relaxed as f64);
            ctx.set_counter("relaxed_hits", self.state.relaxed_hits as f64);
            ctx.set_counter("stable_novel", self.state.stable_novel as f64);
        }
        ctx.set_counter("per_second", self.state.next as f64 / self.state.seconds.max(1e-9));
        ctx.set_progress("decoding", self.state.next as u64, n_total as u64, self.state.next as f64 / n_total as f64);
        if self.state.next >= self.p.n {
            ctx.log(
                "info",
                format!(
                    "{} crystals decoded, {} built, {} valid, {} valid and novel",
                    self.p.n, self.state.built, self.state.valid, self.state.novel_valid
                ),
            );
            if remote && !self.state.queued.is_empty() {
                return Ok(StepOutcome::Continue); // the relaxations go out next step
            }
            return Ok(StepOutcome::Done(self.summary()));
        }
        Ok(StepOutcome::Continue)
    }
}

impl GenerateJob {
    /// Slurm: once decoding is done, the queued crystals go out as job arrays (first call); later calls
    /// poll and emit each relaxed crystal as it lands, placed on the hull here, as a local run would.
    fn relax_remote(&mut self, ctx: &mut JobContext, profile: &SlurmProfile) -> Result<StepOutcome, JobError> {
        let (Some((campaign, model)), Some(polisher)) = (&self.ready, &self.polisher) else {
            return Err(JobError::Failed("campaign or potential missing".into()));
        };
        let potential = self.p.relax.trim();
        if self.tasks.is_empty() {
            let opts = polisher.relax_options();
            self.tasks = self.state.queued.iter().map(|q| TaskSpec::relax(&q.structure, potential, &opts, 0)).collect();
        }
        let tasks = &self.tasks;
        let coord = Coordinator::new(profile, &ctx.project, ctx.run_id, profile.tasks_per_array_task.max(1));
        let n = tasks.len();
        let Some(remote) = &mut self.state.remote else {
            self.state.remote = Some(coord.start(ctx, tasks)?);
            ctx.set_progress("relaxing", 0, n as u64, 0.0);
            return Ok(StepOutcome::Continue);
        };
        if remote.settled.len() >= n {
            return Ok(StepOutcome::Done(self.summary()));
        }
        let landed = coord.step(ctx, remote, tasks);
        let settled = remote.settled.len();
        let rc = RelaxedContext {
            campaign,
            polisher,
            model,
            source: format!("crystal-vae ({}) + {}", self.p.model, potential),
        };
        for l in landed {
            let (i, relaxed) = match l {
                Landed::Done(i, out) => (i, Ok((out.structure(), out.energy, out.steps, out.converged))),
                Landed::Failed(i, why) => (i, Err(why)),
            };
            let q = &self.state.queued[i];
            let (seq, index) = (q.seq, q.index);
            let polished = polisher.finish(Polished::start(q.structure.clone(), q.symmetrised_group), relaxed);
            emit_relaxed(ctx, &mut self.state, &rc, seq, index, polished);
        }
        ctx.set_counter("relaxed", self.state.relaxed as f64);
        ctx.set_counter("relaxed_hits", self.state.relaxed_hits as f64);
        ctx.set_counter("stable_novel", self.state.stable_novel as f64);
        ctx.set_progress("relaxing", settled as u64, n as u64, settled as f64 / n.max(1) as f64);
        Ok(StepOutcome::Continue)
    }
}
