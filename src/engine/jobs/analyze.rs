//! `analyze`: a dataset-wide analysis that exercises the whole engine. For each selected entry of the
//! embedded dataset: space group, structural validity, minimum distance, density and the dataset's DFT
//! properties become a candidate; then duplicates are grouped within each reduced formula with the
//! pymatgen-compatible structure matcher, and each candidate gets `duplicate_of` (the sequence number of
//! its group's first member).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crystal::matcher::StructureMatcher;
use crate::data::{Dataset, Split};
use crate::engine::error::JobError;
use crate::engine::job::{Job, JobContext, StepOutcome};
use crate::engine::store::{NewCandidate, PropValue};

pub const KIND: &str = "analyze";

/// Parameters of an `analyze` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzeParams {
    /// `all`, `train`, `val` or `test`.
    pub split: String,
    /// Analyse a random sample of this many entries (chosen with the run's seed); all when absent.
    pub sample: Option<usize>,
    /// Symmetry tolerance (Å), > 0.
    pub symprec: f64,
    /// Entries per step (each step commits atomically), 1..=10000.
    pub chunk_size: usize,
    /// Group duplicates with the structure matcher.
    pub duplicates: bool,
    /// Structure-matcher tolerances (pymatgen's defaults).
    pub ltol: f64,
    pub stol: f64,
    pub angle_tol: f64,
}

impl Default for AnalyzeParams {
    fn default() -> Self {
        AnalyzeParams {
            split: "all".into(),
            sample: None,
            symprec: 0.1,
            chunk_size: 64,
            duplicates: true,
            ltol: 0.2,
            stol: 0.3,
            angle_tol: 5.0,
        }
    }
}

impl AnalyzeParams {
    pub fn validate(&self) -> Result<(), JobError> {
        let bad = |key: &str, msg: String| Err(JobError::Config(format!("key `{key}`: {msg}")));
        if self.split != "all" && Split::from_name(&self.split).is_none() {
            return bad("split", format!("expected one of all, train, val, test, got {:?}", self.split));
        }
        if self.symprec.is_nan() || self.symprec <= 0.0 || self.symprec > 1.0 {
            return bad("symprec", format!("expected a tolerance in (0, 1] Å, got {}", self.symprec));
        }
        if self.chunk_size == 0 || self.chunk_size > 10_000 {
            return bad("chunk_size", format!("expected 1..=10000, got {}", self.chunk_size));
        }
        if self.sample == Some(0) {
            return bad("sample", "expected at least 1 entry".into());
        }
        for (k, v) in [("ltol", self.ltol), ("stol", self.stol), ("angle_tol", self.angle_tol)] {
            if v.is_nan() || v <= 0.0 {
                return bad(k, format!("expected a positive number, got {v}"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct State {
    /// Next entry position to analyse (stage 1).
    next_entry: usize,
    /// Next formula group to deduplicate (stage 2).
    next_group: usize,
    n_valid: u64,
    n_duplicates: u64,
}

/// The job.
pub struct AnalyzeJob {
    params: AnalyzeParams,
    /// Dataset indices to analyse, in output order (fixed by params and seed).
    order: Vec<usize>,
    /// Formula groups (positions in `order`) with at least two members, in deterministic order.
    groups: Vec<Vec<usize>>,
    state: State,
}

impl AnalyzeJob {
    pub fn new(params: AnalyzeParams, seed: u64) -> Result<AnalyzeJob, JobError> {
        params.validate()?;
        let ds = Dataset::embedded();
        let split = Split::from_name(&params.split);
        let mut order: Vec<usize> = (0..ds.len()).filter(|&i| split.is_none_or(|s| ds.entries[i].split == s)).collect();
        if let Some(n) = params.sample {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            order.shuffle(&mut rng);
            order.truncate(n);
            order.sort_unstable();
        }
        let mut by_formula: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (pos, &i) in order.iter().enumerate() {
            by_formula.entry(ds.entries[i].formula.as_str()).or_default().push(pos);
        }
        let groups = by_formula.into_values().filter(|g| g.len() > 1).collect();
        Ok(AnalyzeJob { params, order, groups, state: State::default() })
    }

    fn analyse_entry(&self, i: usize) -> NewCandidate {
        let e = &Dataset::embedded().entries[i];
        let s = &e.structure;
        let validity = s.structural_validity();
        let sym = s.symmetry(self.params.symprec).ok();
        let mut props: Vec<(String, PropValue)> = vec![
            ("valid".into(), (validity.valid as u8 as f64).into()),
            ("min_distance".into(), validity.min_distance_ang.into()),
            ("density".into(), s.density().into()),
            ("volume_per_atom".into(), (s.volume() / s.n_sites() as f64).into()),
            ("formation_energy_per_atom".into(), e.formation_energy_per_atom.into()),
            ("e_above_hull".into(), e.e_above_hull.into()),
        ];
        if let Some(g) = e.band_gap {
            props.push(("band_gap".into(), g.into()));
        }
        let mut extra = serde_json::Map::new();
        extra.insert("dataset_id".into(), json!(e.id));
        extra.insert("name".into(), json!(e.name));
        extra.insert("prototype".into(), json!(e.prototype));
        if let Some(sym) = &sym {
            props.push(("space_group".into(), (sym.number as f64).into()));
            extra.insert("space_group_symbol".into(), json!(sym.symbol()));
        }
        NewCandidate {
            seq: 0,
            structure: s.clone(),
            stage: "analysed".into(),
            source: format!("dataset:oqmd-icsd-{}", e.id),
            props,
            extra,
            parents: Vec::new(),
        }
    }
}

impl Job for AnalyzeJob {
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

    fn step(&mut self, ctx: &mut JobContext) -> Result<StepOutcome, JobError> {
        let n = self.order.len();
        let n_groups = if self.params.duplicates { self.groups.len() } else { 0 };
        let total_units = (n + n_groups).max(1) as f64;
        if self.state.next_entry < n {
            let end = (self.state.next_entry + self.params.chunk_size).min(n);
            let idx = &self.order[self.state.next_entry..end];
            let cancel = ctx.cancel_flag();
            let results: Vec<Option<NewCandidate>> = ctx.pool().install(|| {
                idx.par_iter()
                    .map(|&i| {
                        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                            None
                        } else {
                            Some(self.analyse_entry(i))
                        }
                    })
                    .collect()
            });
            if ctx.is_cancelled() {
                return Ok(StepOutcome::Continue);
            }
            for c in results.into_iter().flatten() {
                if c.props.iter().any(|(k, v)| k == "valid" && v.value == 1.0) {
                    self.state.n_valid += 1;
                }
                ctx.emit(c);
            }
            self.state.next_entry = end;
            ctx.set_counter("valid", self.state.n_valid as f64);
            ctx.set_progress("analyse", end as u64, n as u64, end as f64 / total_units);
            return Ok(StepOutcome::Continue);
        }
        if self.state.next_group < n_groups {
            // Deduplicate a batch of formula groups. Sequence numbers equal positions in `order`.
            let ds = Dataset::embedded();
            let matcher = StructureMatcher {
                ltol: self.params.ltol,
                stol: self.params.stol,
                angle_tol_deg: self.params.angle_tol,
                ..Default::default()
            };
            let end = (self.state.next_group + (self.params.chunk_size / 4).max(1)).min(n_groups);
            let batch = &self.groups[self.state.next_group..end];
            let cancel = ctx.cancel_flag();
            let found: Vec<Vec<(i64, i64)>> = ctx.pool().install(|| {
                batch
                    .par_iter()
                    .map(|g| {
                        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                            return Vec::new();
                        }
                        let structures: Vec<_> =
                            g.iter().map(|&pos| ds.entries[self.order[pos]].structure.clone()).collect();
                        let mut pairs = Vec::new();
                        for sub in matcher.group(&structures) {
                            let first = g[sub[0]] as i64;
                            for &k in &sub[1..] {
                                pairs.push((g[k] as i64, first));
                            }
                        }
                        pairs
                    })
                    .collect()
            });
            if ctx.is_cancelled() {
                return Ok(StepOutcome::Continue);
            }
            for (seq, first) in found.into_iter().flatten() {
                ctx.update_prop(seq, "duplicate_of", (first as f64).into());
                self.state.n_duplicates += 1;
            }
            self.state.next_group = end;
            ctx.set_counter("duplicates", self.state.n_duplicates as f64);
            ctx.set_progress("duplicates", end as u64, n_groups as u64, (n + end) as f64 / total_units);
            return Ok(StepOutcome::Continue);
        }
        ctx.set_progress("done", n as u64, n as u64, 1.0);
        Ok(StepOutcome::Done(json!({
            "analysed": n,
            "valid": self.state.n_valid,
            "duplicates": self.state.n_duplicates,
            "formula_groups_checked": n_groups,
        })))
    }
}
