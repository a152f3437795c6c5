//! Decoding latent codes into crystals, and moving codes towards property targets.
//!
//! Decoding (CDVAE's): the heads give the number of atoms (most likely count allowed by the
//! constraints), the element fractions (restricted to allowed elements) rounded to whole atoms by
//! largest remainders (when that formula fails SMACT's charge balance, the nearest charge-balanced
//! formula over the likely elements and cell sizes, [`super::composition`]), and the lattice; atoms
//! start at uniformly random fractional positions and the denoiser moves them by annealed Langevin
//! dynamics, for each noise level σ (largest first) `steps_per_level` steps x ← x + (η/σ)·(−ε̂) + √(2η)·ξ with η = step_lr·(σ/σ_min)² (Å², Cartesian).

use nalgebra::Vector3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::composition::{
    RARE_STATE_PENALTY_NATS, cheapest_by_element_count, counts_rely_on_rare_states, counts_valid, nearest_valid_counts,
    ranked_valid_counts,
};
use super::data::{N_TYPES, edges_many, lattice_from6};
use super::model::{CrystalVae, clamp_gap};
use super::train::{ScoreTensors, gauss};
use crate::crystal::neighbors::MinImage;
use crate::crystal::structure::wrap_frac;
use crate::crystal::validity::MIN_DISTANCE_ANG;
use crate::crystal::{Element, Lattice, Structure};

/// How the denoiser samples positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleOptions {
    /// Langevin steps at each noise level.
    pub steps_per_level: usize,
    /// η at the smallest noise level (Å²); CDVAE uses 1e-4 with σ_min = 0.01 Å.
    pub step_lr: f64,
    /// Random seed of the initial positions and the Langevin noise.
    pub seed: u64,
    /// Temperature of the composition head when picking elements: an element stays when it holds at
    /// least half an atom under p^(1/T) (T < 1 drops the minor elements that averaging codes blurs in).
    pub composition_temperature: f64,
    /// When the rounded formula fails SMACT's charge-balance test, decode the nearest charge-balanced
    /// formula instead (see [`super::composition`]); off gives the heads' plain rounding.
    pub charge_balance: bool,
    /// Rounds of collapsed-site repair after annealing (see [`reseed_collapsed`]); 0 turns it off.
    pub repair_rounds: usize,
    /// Weight w of a crystal's anchor composition (element fractions of the training crystal the
    /// conditional sampler started from) in the fractions the formula is rounded from:
    /// (1 − w)·head + w·anchor. Crystals decoded without an anchor ignore it. Off (0) by default: it
    /// helps some targets and hurts others (docs/generative.md).
    pub composition_anchor: f64,
    /// Weight of a property guide in the choice of formula (see [`FormulaGuide`]): among the
    /// [`GUIDE_CANDIDATES`] charge-balanced formulas within [`GUIDE_BUDGET_NATS`] of the heads' nearest, the
    /// decoder keeps the one with the smallest cost + guidance × penalty. 0 (or no guide) = off.
    /// Only targeted campaigns have a guide; decoding without one ignores this.
    pub guidance: f64,
    /// Weight w of the model's element-count prior in the choice of formula: every formula is then
    /// chosen among the charge-balanced ones near the heads by cost − w·b(k), for its number of
    /// distinct elements k, not only those whose rounding fails. b is the card's calibrated bonus
    /// ([`super::model::GenCard::element_count_offsets`]: prior samples then have k elements as often
    /// as the training crystals), or ln P(k) of the training crystals for files without one. Without
    /// it, blurred fractions from prior samples round to single elements or 6–13-element alloys far
    /// more often than real crystals have them (docs/generative.md). 0, or a model without the prior,
    /// = off.
    pub element_prior: f64,
    /// Formulas tried per code (analysis by synthesis): the K best formulas (by the decoder's own
    /// ranking: cost, element-count bonus and guide) are each decoded, the crystals encoded again,
    /// and the one whose code lies nearest the code decoded is kept (structurally valid ones first).
    /// Costs K decodings; 1 = the best formula only.
    pub formula_candidates: usize,
    /// Nats added to the cost of a formula balanced only through rare oxidation states (peroxide O⁻,
    /// Cl⁷⁺…; [`super::composition::RARE_STATE_PENALTY_NATS`] by default); 0 = off.
    pub rare_state_penalty: f64,
}

/// The guidance weight targeted runs use unless told otherwise (measured in docs/generative.md).
pub const DEFAULT_GUIDANCE: f64 = 1.0;

/// Formulas a guide chooses among, per crystal, and how far (nats) their cost may exceed the nearest's:
/// the element-count prior's pool, so guide and prior weigh the same formulas.
pub const GUIDE_CANDIDATES: usize = PRIOR_CANDIDATES;
pub const GUIDE_BUDGET_NATS: f64 = PRIOR_BUDGET_NATS;

/// The element-count prior's weight unless told otherwise (measured in docs/generative.md).
pub const DEFAULT_ELEMENT_PRIOR: f64 = 1.0;
/// Formulas ranked (cost − w·b(k), the element-count prior included) per crystal, and how far (nats)
/// their cost may exceed the cheapest's: the formulas a guide chooses among.
pub const PRIOR_CANDIDATES: usize = 64;
pub const PRIOR_BUDGET_NATS: f64 = 6.0;

/// Prior codes the element-count calibration decodes formulas for (at most; no more than the crystals
/// the prior is fitted to), and their sampling seed.
pub const CALIBRATION_CODES: usize = 8000;
const CALIBRATION_SEED: u64 = 0xca1b;

/// A property guide for decoding: a penalty for each formula (whole-atom counts indexed by Z − 1),
/// lower = closer to the target (`search::generate::composition_guide`: −ln P(in window) in nats for
/// windows, ± the prediction in standard deviations for min/max).
pub type FormulaGuide<'a> = dyn Fn(&[Vec<usize>]) -> Vec<f64> + 'a;

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            steps_per_level: 5,
            step_lr: 1e-4,
            seed: 0,
            composition_temperature: 1.0,
            charge_balance: true,
            repair_rounds: 2,
            composition_anchor: 0.0,
            guidance: DEFAULT_GUIDANCE,
            element_prior: DEFAULT_ELEMENT_PRIOR,
            formula_candidates: 1,
            rare_state_penalty: RARE_STATE_PENALTY_NATS,
        }
    }
}

/// What decoded crystals may be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Constraints {
    /// Only these elements (symbols); empty = any.
    pub elements: Vec<String>,
    /// Fewest and most atoms in the cell.
    pub min_atoms: Option<usize>,
    pub max_atoms: Option<usize>,
}

impl Constraints {
    /// Allowed type indices (Z − 1); errors name an unknown symbol.
    pub fn allowed_types(&self) -> Result<Option<Vec<usize>>, String> {
        if self.elements.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for s in &self.elements {
            let e = Element::from_symbol(s.trim()).map_err(|e| format!("allowed elements: {e}"))?;
            if e.z() as usize > N_TYPES {
                return Err(format!(
                    "allowed elements: {e} is beyond Z = {N_TYPES}, which the generator does not place"
                ));
            }
            out.push(e.z() as usize - 1);
        }
        Ok(Some(out))
    }
}

/// One decoded crystal.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The crystal, or why none could be built (e.g. the lattice head gave an impossible cell).
    pub structure: Result<Structure, String>,
    /// Formation energy (eV/atom) and band gap (eV) the generator's heads predict for the code.
    pub head_properties: [f64; 2],
}

/// Whole-atom counts from fractions `p` for `n` atoms: elements expected to hold less than half an
/// atom under the sharpened fractions p^(1/T) are dropped (the most likely one always stays), then
/// the others' fractions `p` are rounded by largest remainders (ties to the lower type), so the counts
/// sum to `n`. The temperature picks the elements; it does not change their ratios.
pub fn round_counts(p: &[f64], n: usize, temperature: f64) -> Vec<usize> {
    let inv_t = 1.0 / temperature.clamp(0.05, 10.0);
    let sharp: Vec<f64> = p.iter().map(|x| x.max(0.0).powf(inv_t)).collect();
    let total: f64 = sharp.iter().sum::<f64>().max(1e-300);
    let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0);
    let kept: Vec<f64> = p
        .iter()
        .enumerate()
        .map(|(i, &x)| if i == best || sharp[i] / total * n as f64 >= 0.5 { x } else { 0.0 })
        .collect();
    let total: f64 = kept.iter().sum::<f64>().max(1e-12);
    let exact: Vec<f64> = kept.iter().map(|x| x / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut left = n - counts.iter().sum::<usize>().min(n);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in &order {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

/// Noise level (Å) from which a crystal with collapsed sites is annealed again after the repair moves
/// an atom: large enough for its neighbours to make room, small enough to keep the rest of the crystal.
pub const REPAIR_SIGMA_ANG: f64 = 0.5;

/// Atoms per denoiser call while annealing. Measured on 2 cores (`geode generate --n 128 --seed 3
/// --batch B`): 16 crystals per call decoded 128 prior samples in 50 s, 64 per call in 71–90 s; the
/// edge tensors of a few hundred atoms stay in cache.
pub const ANNEAL_CHUNK_ATOMS: usize = 192;

/// Consecutive groups of `items` whose sizes add up to at most `limit` (a larger item stands alone).
pub fn chunk_by_atoms(items: &[usize], size: impl Fn(usize) -> usize, limit: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut used = 0;
    for &i in items {
        let n = size(i);
        match out.last_mut() {
            Some(last) if used + n <= limit => {
                last.push(i);
                used += n;
            }
            _ => {
                out.push(vec![i]);
                used = n;
            }
        }
    }
    out
}

/// Candidate points tried when looking for a cell's largest void.
const VOID_TRIALS: usize = 64;

/// For every pair of sites closer than [`MIN_DISTANCE_ANG`] (periodic), move the later site to the
/// most open of [`VOID_TRIALS`] random points (the one farthest from every other site). Returns how
/// many sites moved.
pub fn reseed_collapsed(lattice: &Lattice, frac: &mut [Vector3<f64>], rng: &mut ChaCha8Rng) -> usize {
    let mi = MinImage::new(lattice);
    let dist = |a: &Vector3<f64>, b: &Vector3<f64>| mi.distance(&lattice.to_cart(&wrap_frac(&(a - b))), false);
    let mut moved = 0;
    for j in 1..frac.len() {
        if !(0..j).any(|i| dist(&frac[i], &frac[j]) < MIN_DISTANCE_ANG) {
            continue;
        }
        let mut best = (f64::NEG_INFINITY, frac[j]);
        for _ in 0..VOID_TRIALS {
            let p = Vector3::new(rng.random(), rng.random(), rng.random());
            let d = (0..frac.len()).filter(|&k| k != j).map(|k| dist(&frac[k], &p)).fold(f64::INFINITY, f64::min);
            if d > best.0 {
                best = (d, p);
            }
        }
        frac[j] = best.1;
        moved += 1;
    }
    moved
}

fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Rows of a [B, K] tensor as f64.
pub(crate) fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let t = t.to_kind(Kind::Double).contiguous();
    let (b, k) = (t.size()[0] as usize, t.size()[1] as usize);
    let flat = Vec::<f64>::try_from(t.flatten(0, -1)).unwrap_or_default();
    (0..b).map(|i| flat[i * k..(i + 1) * k].to_vec()).collect()
}

impl CrystalVae {
    /// Decode latent codes `z` [B, latent] into crystals. `progress(done, total)` is called after each
    /// Langevin step; `cancelled` stops early (the result is then empty).
    pub fn decode(
        &self,
        z: &Tensor,
        c: &Constraints,
        o: &SampleOptions,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Decoded>, String> {
        self.decode_anchored(z, &[], c, o, progress, cancelled)
    }

    /// [`CrystalVae::decode`] with an anchor composition per code (element fractions over the
    /// generator's types, or `None`), mixed into the composition head's fractions with weight
    /// `o.composition_anchor` before rounding.
    pub fn decode_anchored(
        &self,
        z: &Tensor,
        anchors: &[Option<Vec<f64>>],
        c: &Constraints,
        o: &SampleOptions,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Decoded>, String> {
        self.decode_guided(z, anchors, c, o, None, progress, cancelled)
    }

    /// Decode every code of `z` in chunks of 128 without constraints or anchors (the chunk at `start` is
    /// sampled with seed `o.seed + start`, so a result does not depend on the chunking elsewhere); a
    /// crystal that could not be built is `None`.
    pub fn decode_in_chunks(
        &self,
        z: &Tensor,
        o: &SampleOptions,
        guide: Option<&FormulaGuide>,
    ) -> Result<Vec<Option<Structure>>, String> {
        let n = z.size()[0];
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let len = 128.min(n - start);
            let oc = SampleOptions { seed: o.seed.wrapping_add(start as u64), ..o.clone() };
            let d = self.decode_guided(
                &z.narrow(0, start, len),
                &[],
                &Constraints::default(),
                &oc,
                guide,
                &mut |_, _| {},
                &|| false,
            )?;
            out.extend(d.into_iter().map(|d| d.structure.ok()));
            start += len;
        }
        Ok(out)
    }

    /// [`CrystalVae::decode_anchored`] with a property guide on the choice of formula (used when
    /// `o.guidance > 0` and charge balancing is on). With `o.formula_candidates` K > 1, each code is
    /// decoded with each of its K best formulas and keeps the crystal whose own code (encoded again)
    /// lies nearest it: structurally valid crystals first, then the smallest Euclidean distance.
    #[allow(clippy::too_many_arguments)]
    pub fn decode_guided(
        &self,
        z: &Tensor,
        anchors: &[Option<Vec<f64>>],
        c: &Constraints,
        o: &SampleOptions,
        guide: Option<&FormulaGuide>,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Decoded>, String> {
        let k = o.formula_candidates.max(1);
        if k == 1 {
            return self.decode_with_formula_rank(z, anchors, c, o, guide, 0, progress, cancelled);
        }
        let codes = rows(z);
        // Every rank ranks the same formulas: ask the guide once.
        type Asked = Option<(Vec<Vec<usize>>, Vec<f64>)>;
        let asked: std::cell::RefCell<Asked> = std::cell::RefCell::new(None);
        let once = |formulas: &[Vec<usize>]| -> Vec<f64> {
            if let Some((f, p)) = asked.borrow().as_ref().filter(|(f, _)| f.as_slice() == formulas) {
                debug_assert_eq!(f.len(), p.len());
                return p.clone();
            }
            let p = guide.map_or_else(Vec::new, |g| g(formulas));
            *asked.borrow_mut() = Some((formulas.to_vec(), p.clone()));
            p
        };
        let guide: Option<&FormulaGuide> = guide.map(|_| &once as &FormulaGuide);
        let mut best: Vec<Option<(bool, f64, Decoded)>> = (0..codes.len()).map(|_| None).collect();
        for rank in 0..k {
            let mut part = |done: usize, total: usize| progress(rank * total + done, k * total);
            let decoded = self.decode_with_formula_rank(z, anchors, c, o, guide, rank, &mut part, cancelled)?;
            if decoded.len() != codes.len() {
                return Ok(Vec::new()); // cancelled
            }
            let built: Vec<usize> = (0..decoded.len()).filter(|&i| decoded[i].structure.is_ok()).collect();
            let again =
                rows(&self.encode_structures(built.iter().filter_map(|&i| decoded[i].structure.as_ref().ok()))?);
            let mut distance = vec![f64::INFINITY; decoded.len()];
            for (r, &i) in built.iter().enumerate() {
                distance[i] = again[r].iter().zip(&codes[i]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
            }
            for (i, d) in decoded.into_iter().enumerate() {
                let valid = d.structure.as_ref().is_ok_and(|s| s.is_structurally_valid());
                let better = match &best[i] {
                    None => true,
                    Some((v, dist, _)) => (valid, -distance[i]) > (*v, -dist),
                };
                if better {
                    best[i] = Some((valid, distance[i], d));
                }
            }
        }
        Ok(best.into_iter().map(|b| b.expect("every code was decoded").2).collect())
    }

    /// Decoding with the formula ranked `rank` places down (0 = the best; the last one when a code
    /// has fewer).
    #[allow(clippy::too_many_arguments)]
    pub fn decode_with_formula_rank(
        &self,
        z: &Tensor,
        anchors: &[Option<Vec<f64>>],
        c: &Constraints,
        o: &SampleOptions,
        guide: Option<&FormulaGuide>,
        rank: usize,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Decoded>, String> {
        let cfg = self.config().clone();
        let allowed = c.allowed_types()?;
        let (lo, hi) = (c.min_atoms.unwrap_or(1).max(1), c.max_atoms.unwrap_or(cfg.max_atoms).min(cfg.max_atoms));
        if lo > hi {
            return Err(format!(
                "no cell size allowed: min_atoms {lo} > max_atoms {hi} (the model makes at most {})",
                cfg.max_atoms
            ));
        }
        let (n_logits, comp, lat, props) = tch::no_grad(|| {
            let h = self.heads(z);
            (
                rows(&h.n_logits),
                rows(&h.comp_logits.softmax(1, Kind::Float)),
                rows(&h.lattice),
                rows(&self.head_properties(z)),
            )
        });
        let norm = &self.card.norm;
        // Per crystal: the formula (counts by Z − 1), then atomic numbers and lattice (or why not).
        let guide = guide.filter(|_| o.guidance > 0.0 && o.charge_balance);
        let bonus: Vec<f64> = match (&self.card.element_count_offsets, &self.card.element_count_log_prior) {
            _ if o.element_prior <= 0.0 => Vec::new(),
            (Some(b), _) | (None, Some(b)) => b.iter().map(|x| o.element_prior * x).collect(),
            (None, None) => Vec::new(),
        };
        let mut all_counts: Vec<Vec<usize>> = Vec::with_capacity(n_logits.len());
        let mut choices: Vec<Vec<(f64, Vec<usize>)>> = Vec::new();
        for i in 0..n_logits.len() {
            let n = (lo..=hi)
                .max_by(|&a, &b| n_logits[i][a - 1].total_cmp(&n_logits[i][b - 1]).then(b.cmp(&a)))
                .unwrap_or(lo);
            let mut p = comp[i].clone();
            if let Some(Some(a)) = anchors.get(i) {
                let w = o.composition_anchor.clamp(0.0, 1.0);
                for (t, v) in p.iter_mut().enumerate() {
                    *v = (1.0 - w) * *v + w * a.get(t).copied().unwrap_or(0.0);
                }
            }
            if let Some(ok) = &allowed {
                for (t, v) in p.iter_mut().enumerate() {
                    if !ok.contains(&t) {
                        *v = 0.0;
                    }
                }
            }
            let mut counts = round_counts(&p, n, o.composition_temperature);
            // Re-chosen when a guide or the element-count prior chooses every formula, or when the rounded one
            // fails SMACT or passes only through a rare nonmetal state (checked only then: it is the slow test).
            let reproject = guide.is_some()
                || !bonus.is_empty()
                || !counts_valid(&counts)
                || (o.rare_state_penalty > 0.0 && counts_rely_on_rare_states(&counts));
            if o.charge_balance && reproject {
                let inv_t = 1.0 / o.composition_temperature.clamp(0.05, 10.0);
                let q: Vec<f64> = p.iter().map(|x| x.max(0.0).powf(inv_t)).collect();
                let lse = log_sum_exp(&n_logits[i][lo - 1..hi]);
                let sizes: Vec<(usize, f64)> = (lo..=hi).map(|k| (k, n_logits[i][k - 1] - lse)).collect();
                let ranked = if guide.is_some() || !bonus.is_empty() {
                    ranked_valid_counts(&q, &sizes, PRIOR_CANDIDATES, PRIOR_BUDGET_NATS, &bonus, o.rare_state_penalty)
                } else {
                    nearest_valid_counts(&q, &sizes, o.rare_state_penalty).map(|c| (0.0, c)).into_iter().collect()
                };
                if guide.is_some() {
                    let best = ranked.first().map_or(0.0, |r| r.0);
                    choices.push(
                        ranked
                            .into_iter()
                            .take(GUIDE_CANDIDATES)
                            .take_while(|r| r.0 - best <= GUIDE_BUDGET_NATS)
                            .collect(),
                    );
                } else if let Some((_, c)) = ranked.get(rank.min(ranked.len().saturating_sub(1))).cloned() {
                    counts = c;
                }
            }
            all_counts.push(counts);
        }
        if let Some(guide) = guide {
            // One call for the whole batch; each crystal keeps its cheapest formula after the penalty.
            let flat: Vec<Vec<usize>> = choices.iter().flat_map(|c| c.iter().map(|(_, k)| k.clone())).collect();
            let penalty = guide(&flat);
            let mut at = 0;
            for (counts, cands) in all_counts.iter_mut().zip(&choices) {
                let mut scored: Vec<(usize, f64)> = cands
                    .iter()
                    .enumerate()
                    .map(|(j, (cost, _))| {
                        (
                            j,
                            cost + o.guidance
                                * penalty.get(at + j).copied().filter(|x| x.is_finite()).unwrap_or(f64::INFINITY),
                        )
                    })
                    .collect();
                scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                // No candidate (no charge-balanced formula near the head): the rounded formula stays.
                if let Some(&(j, _)) = scored.get(rank.min(scored.len().saturating_sub(1))) {
                    *counts = cands[j].1.clone();
                }
                at += cands.len();
            }
        }
        let mut plans: Vec<Result<(Vec<u8>, Lattice), String>> = Vec::with_capacity(n_logits.len());
        for (i, counts) in all_counts.iter().enumerate() {
            let n = counts.iter().sum::<usize>();
            let z_atoms: Vec<u8> =
                counts.iter().enumerate().flat_map(|(t, &k)| std::iter::repeat_n((t + 1) as u8, k)).collect();
            let l6: [f64; 6] = std::array::from_fn(|k| lat[i][k] * norm.lat_std[k] + norm.lat_mean[k]);
            plans.push(
                lattice_from6(&l6, n).map(|l| (z_atoms, l)).map_err(|e| format!("the lattice head gave no cell: {e}")),
            );
        }
        // Random starting positions.
        let mut rngs: Vec<ChaCha8Rng> = (0..plans.len())
            .map(|i| ChaCha8Rng::seed_from_u64(o.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i as u64)))
            .collect();
        let live: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].is_ok()).collect();
        let mut frac: Vec<Vec<Vector3<f64>>> = plans
            .iter()
            .zip(rngs.iter_mut())
            .map(|(p, rng)| match p {
                Ok((za, _)) => za.iter().map(|_| Vector3::new(rng.random(), rng.random(), rng.random())).collect(),
                Err(_) => Vec::new(),
            })
            .collect();
        let sigmas = cfg.sigmas();
        let total = sigmas.len() * o.steps_per_level;
        let mut done = 0;
        let mut tick = || {
            done += 1;
            progress(done.min(total), total);
        };
        if !self.anneal(&plans, &mut frac, &mut rngs, &live, z, &sigmas, o, &mut tick, cancelled)? {
            return Ok(Vec::new());
        }
        // Repair collapsed sites: where two atoms ended closer than any bond (< MIN_DISTANCE_ANG), move
        // one of them into the cell's largest void and anneal the crystal again from σ = REPAIR_SIGMA_ANG
        // down, so the denoiser finds it a site of its own.
        let repair_sigmas: Vec<f64> = sigmas.iter().copied().filter(|&s| s <= REPAIR_SIGMA_ANG).collect();
        // Only crystals annealed again can collapse again: later rounds look at those alone.
        let mut suspects = live.clone();
        for _ in 0..o.repair_rounds {
            let mut broken = Vec::new();
            for &i in &suspects {
                let (_, l) = plans[i].as_ref().expect("live plans are Ok");
                if reseed_collapsed(l, &mut frac[i], &mut rngs[i]) > 0 {
                    broken.push(i);
                }
            }
            if broken.is_empty() || repair_sigmas.is_empty() {
                break;
            }
            if !self.anneal(&plans, &mut frac, &mut rngs, &broken, z, &repair_sigmas, o, &mut || {}, cancelled)? {
                return Ok(Vec::new());
            }
            suspects = broken;
        }
        Ok(plans
            .into_iter()
            .enumerate()
            .map(|(i, p)| Decoded {
                structure: p.and_then(|(za, l)| {
                    let species = za
                        .iter()
                        .map(|&x| Element::from_z(x as u32).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()?;
                    Structure::from_frac(l, species, frac[i].clone()).map_err(|e| e.to_string())
                }),
                head_properties: [props[i][0], props[i][1]],
            })
            .collect())
    }

    /// Annealed Langevin dynamics on the crystals `which` (indices into `plans`, whose plans are Ok) over
    /// the noise levels `sigmas`, moving `frac` in place; `tick` after every step. Returns false when
    /// cancelled. The denoiser runs on chunks of at most [`ANNEAL_CHUNK_ATOMS`] atoms: each crystal's
    /// step depends on that crystal alone, and small chunks keep the edge tensors in cache.
    #[allow(clippy::too_many_arguments)]
    fn anneal(
        &self,
        plans: &[Result<(Vec<u8>, Lattice), String>],
        frac: &mut [Vec<Vector3<f64>>],
        rngs: &mut [ChaCha8Rng],
        which: &[usize],
        z: &Tensor,
        sigmas: &[f64],
        o: &SampleOptions,
        tick: &mut dyn FnMut(),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<bool, String> {
        let cfg = self.config();
        let plan = |i: usize| plans[i].as_ref().expect("annealed plans are Ok");
        let chunks = chunk_by_atoms(which, |i| plan(i).0.len(), ANNEAL_CHUNK_ATOMS);
        let z_chunks: Vec<Tensor> = chunks
            .iter()
            .map(|c| z.index_select(0, &Tensor::from_slice(&c.iter().map(|&i| i as i64).collect::<Vec<_>>())))
            .collect();
        let sigma_min = cfg.sigmas().last().copied().unwrap_or(cfg.sigma_min);
        for &sigma in sigmas {
            let eta = o.step_lr * (sigma / sigma_min).powi(2);
            for _ in 0..o.steps_per_level {
                if cancelled() {
                    return Ok(false);
                }
                for (chunk, z_sub) in chunks.iter().zip(&z_chunks) {
                    let items: Vec<_> = chunk
                        .iter()
                        .map(|&i| {
                            let (za, l) = plan(i);
                            (l, za.as_slice(), frac[i].as_slice())
                        })
                        .collect();
                    let edges = edges_many(&items, cfg.score_cutoff_ang, cfg.score_neighbors);
                    let input =
                        ScoreTensors::new(items.iter().map(|x| x.1), &edges, vec![sigma.ln() as f32; chunk.len()]);
                    let eps = tch::no_grad(|| self.score(&input.view(), z_sub)).to_kind(Kind::Double);
                    let eps = Vec::<f64>::try_from(eps.flatten(0, -1)).map_err(|e| e.to_string())?;
                    let mut k = 0;
                    for &i in chunk {
                        let inv = *plan(i).1.frac_from_cart();
                        let rng = &mut rngs[i];
                        for f in frac[i].iter_mut() {
                            let e = Vector3::new(eps[3 * k], eps[3 * k + 1], eps[3 * k + 2]);
                            let noise = Vector3::new(gauss(rng), gauss(rng), gauss(rng)) * (2.0 * eta).sqrt();
                            let step = -e * (eta / sigma) + noise;
                            *f = wrap_frac(&(*f + inv * step));
                            k += 1;
                        }
                    }
                }
                tick();
            }
        }
        Ok(true)
    }

    /// Codes drawn from the prior, [n, latent]: the fitted Gaussian of the training codes when the card
    /// has one (see [`CrystalVae::fit_latent_prior`]), else N(0, I).
    pub fn prior_codes(&self, n: usize, seed: u64) -> Tensor {
        match self.prior_tensors() {
            Some((mean, _, _)) => self.prior_noise(n, seed) + mean.unsqueeze(0),
            None => self.prior_noise(n, seed),
        }
    }

    /// Zero-mean noise with the prior's covariance, [n, latent] (N(0, I) without a fitted prior): the
    /// steps of a walk around a code that respect the latent space's own scales.
    pub fn prior_noise(&self, n: usize, seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x001a_7e47);
        let v: Vec<f32> = (0..n * self.latent_dim() as usize).map(|_| gauss(&mut rng) as f32).collect();
        let xi = Tensor::from_slice(&v).reshape([n as i64, self.latent_dim()]);
        match self.prior_tensors() {
            Some((_, chol, _)) => xi.matmul(&chol.tr()),
            None => xi,
        }
    }

    /// (mean [L], L [L, L], L⁻¹ [L, L]) of the fitted prior.
    pub fn prior_tensors(&self) -> Option<(Tensor, Tensor, Tensor)> {
        let p = self.card.latent_prior.as_ref()?;
        let l = self.latent_dim() as usize;
        if p.mean.len() != l || p.chol.len() != l * l {
            return None;
        }
        let c = nalgebra::DMatrix::from_row_slice(l, l, &p.chol);
        let inv = c.clone().try_inverse()?;
        let f = |m: &nalgebra::DMatrix<f64>| {
            Tensor::from_slice(&m.transpose().iter().map(|&x| x as f32).collect::<Vec<_>>())
                .reshape([l as i64, l as i64])
        };
        Some((Tensor::from_slice(&p.mean.iter().map(|&x| x as f32).collect::<Vec<_>>()), f(&c), f(&inv)))
    }

    /// Fit the prior to the embedded dataset's train split (the cells the model takes), at most `limit`
    /// crystals; returns how many were used.
    pub fn fit_latent_prior_on_train_split(&mut self, limit: Option<usize>) -> Result<usize, String> {
        let max_atoms = self.config().max_atoms;
        let train: Vec<&Structure> = crate::data::Dataset::embedded()
            .split(crate::data::Split::Train)
            .map(|e| &e.structure)
            .filter(|s| s.n_sites() <= max_atoms)
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        self.fit_latent_prior(train.iter().copied())?;
        Ok(train.len())
    }

    /// Fit the prior Gaussian to the codes (posterior means) of `structures`, and the element-count
    /// prior to their formulas, and store both in the card.
    pub fn fit_latent_prior<'a>(&mut self, structures: impl IntoIterator<Item = &'a Structure>) -> Result<(), String> {
        let structures: Vec<&Structure> = structures.into_iter().collect();
        let z = self.encode_structures(structures.iter().copied())?.to_kind(Kind::Double);
        let (n, l) = (z.size()[0] as usize, z.size()[1] as usize);
        if n <= l {
            return Err(format!("{n} crystals are too few to fit a {l}-dimensional Gaussian"));
        }
        let flat = Vec::<f64>::try_from(z.flatten(0, -1)).map_err(|e| e.to_string())?;
        let m = nalgebra::DMatrix::from_row_slice(n, l, &flat);
        let mean = m.row_mean();
        let centred = nalgebra::DMatrix::from_fn(n, l, |i, j| m[(i, j)] - mean[j]);
        let mut cov = centred.transpose() * &centred / (n as f64 - 1.0);
        for k in 0..l {
            cov[(k, k)] += 1e-6;
        }
        let chol = nalgebra::Cholesky::new(cov).ok_or("the codes' covariance is not positive definite")?.l();
        let chol_rows: Vec<f64> = (0..l).flat_map(|i| (0..l).map(move |j| (i, j))).map(|(i, j)| chol[(i, j)]).collect();
        self.card.latent_prior =
            Some(super::model::LatentPrior { mean: mean.iter().copied().collect(), chol: chol_rows, n });
        let log_p = super::model::element_count_log_prior(structures.iter().copied());
        self.card.element_count_offsets =
            Some(self.calibrate_element_counts(&log_p, CALIBRATION_CODES.min(structures.len())));
        self.card.element_count_log_prior = Some(log_p);
        Ok(())
    }

    /// The element-count bonus b(k) under which this model's prior samples decode to k distinct
    /// elements with probability exp(`log_p[k]`) ([`super::model::fit_element_count_offsets`], on
    /// `n_codes` codes from the fitted latent prior; default decoding: temperature 1, no constraints).
    pub fn calibrate_element_counts(&self, log_p: &[f64], n_codes: usize) -> Vec<f64> {
        use rayon::prelude::*;
        let max_atoms = self.config().max_atoms;
        let z = self.prior_codes(n_codes, CALIBRATION_SEED);
        let (n_logits, comp) = tch::no_grad(|| {
            let h = self.heads(&z);
            (rows(&h.n_logits), rows(&h.comp_logits.softmax(1, Kind::Float)))
        });
        let cheapest: Vec<Vec<f64>> = n_logits
            .par_iter()
            .zip(comp.par_iter())
            .map(|(nl, p)| {
                let lse = log_sum_exp(&nl[..max_atoms]);
                let sizes: Vec<(usize, f64)> = (1..=max_atoms).map(|k| (k, nl[k - 1] - lse)).collect();
                let by_k = cheapest_by_element_count(p, &sizes, 2.0 * PRIOR_BUDGET_NATS);
                (0..log_p.len()).map(|k| by_k.get(k).copied().unwrap_or(f64::INFINITY)).collect()
            })
            .collect();
        super::model::fit_element_count_offsets(&cheapest, log_p)
    }

    /// Means of q(z | crystal) for structures, [n, latent]; structures the model cannot take give an error.
    pub fn encode_structures<'a>(&self, structures: impl IntoIterator<Item = &'a Structure>) -> Result<Tensor, String> {
        let cfg = self.config();
        let samples = structures
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                super::data::GenSample::new(&format!("structure {}", i + 1), s, [None, None], &cfg.graph, usize::MAX)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for chunk in samples.chunks(256) {
            let graphs: Vec<_> = chunk.iter().map(|s| &s.graph).collect();
            let g = crate::ml::graph::GraphBatch::new(&graphs, tch::Device::Cpu);
            out.push(tch::no_grad(|| self.encode(&g).0));
        }
        if out.is_empty() {
            return Ok(Tensor::zeros([0, self.latent_dim()], (Kind::Float, tch::Device::Cpu)));
        }
        Ok(Tensor::cat(&out, 0))
    }

    /// [`CrystalVae::encode_structures`] as rows of f64 (what the latent maps take).
    pub fn code_rows<'a>(&self, structures: impl IntoIterator<Item = &'a Structure>) -> Result<Vec<Vec<f64>>, String> {
        let z = self.encode_structures(structures)?.to_kind(Kind::Double);
        let l = self.latent_dim() as usize;
        let flat = Vec::<f64>::try_from(z.flatten(0, -1)).map_err(|e| e.to_string())?;
        Ok(flat.chunks(l.max(1)).map(<[f64]>::to_vec).collect())
    }
}

/// A goal for latent optimisation on one property head (0 = formation energy, 1 = band gap).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Goal {
    /// Inside [lo, hi] (physical units).
    Window { head: usize, lo: f64, hi: f64 },
    /// As low as possible.
    Minimise { head: usize },
    /// As high as possible.
    Maximise { head: usize },
}

/// ln P(a ≤ ε ≤ b) for ε ~ N(0, 1), elementwise, a < b: on the side of the window away from 0, as
/// ln Φ(b) + ln(1 − Φ(a)/Φ(b)) after reflecting the window so that its centre is ≤ 0, which keeps the
/// value and its gradient finite however far outside the window 0 lies.
pub fn window_log_probability_tensor(a: &Tensor, b: &Tensor) -> Tensor {
    let flip = (a + b).gt(0.0);
    let (lo, hi) = (b.neg().where_self(&flip, a), a.neg().where_self(&flip, b));
    let (ln_lo, ln_hi) = (lo.special_log_ndtr(), hi.special_log_ndtr());
    &ln_hi + (-(ln_lo - &ln_hi).exp()).log1p()
}

impl CrystalVae {
    /// Move codes `z0` [B, latent] by Adam on Σ goal losses + `prior_weight`·(−ln p(z)) for `steps` steps
    /// (learning rate `lr`). A window goal costs −2e²·ln P(lo ≤ head + ε ≤ hi), ε ~ N(0, (e × the
    /// property's standard deviation)²) with e the heads' error ([`CrystalVae::head_error`]): far from
    /// the window that is the squared distance in standard deviations, and inside it still favours the
    /// interior, where a crystal with this code is likelier to land inside, over the edge. Min/max goals
    /// cost ± the head in standard deviations. Window goals read the unclamped heads (a band gap below 0
    /// still has a gradient). Returns the path: the codes after every `record_every` steps (the last one
    /// always included).
    pub fn optimise_latent(
        &self,
        z0: &Tensor,
        goals: &[Goal],
        steps: usize,
        lr: f64,
        prior_weight: f64,
        record_every: usize,
    ) -> Vec<Tensor> {
        let norm = self.card.norm.clone();
        let head_error = self.head_error();
        let mut z = z0.detach().copy().set_requires_grad(true);
        let mut m = z.zeros_like();
        let mut v = z.zeros_like();
        let (b1, b2) = (0.9f64, 0.999f64);
        let mut path = Vec::new();
        let prior = self.prior_tensors();
        for t in 1..=steps {
            // Windows read the unclamped heads (a band gap below 0 still has a gradient towards the
            // window); min/max goals the clamped ones (a gap cannot go below 0, nor be rewarded for it).
            let raw = self.head_properties_unclamped(&z);
            let p = clamp_gap(&raw);
            // −ln p(z) up to a constant: ½|L⁻¹(z − m)|² under the fitted prior, else ½|z|².
            let w = match &prior {
                Some((mean, _, inv)) => (&z - mean.unsqueeze(0)).matmul(&inv.tr()),
                None => z.shallow_clone(),
            };
            let mut loss = (w.square().sum_dim_intlist(1, false, Kind::Float) * (0.5 * prior_weight)).sum(Kind::Float);
            for g in goals {
                let term = match *g {
                    Goal::Window { head, lo, hi } => {
                        let x = raw.select(1, head as i64);
                        let sigma = head_error * norm.prop_std[head];
                        // × 2·head_error²: far outside, −ln P ≈ ½(d/σ)², so this is d² in standard
                        // deviations, the pull the prior weight was tuned against.
                        // A one-sided window's open end sits 40 standard deviations beyond the other end
                        // (or beyond the code, whichever is further; a constant): P changes by less than
                        // 10⁻³⁴⁸ and every value and gradient stays finite in f32. Infinite or huge bounds
                        // made every code NaN for targets such as `band_gap > 2` (log Φ's gradient at
                        // −10⁷ is 0 · ∞ in single precision).
                        const FAR: f64 = 40.0;
                        let a = (Tensor::from(lo.max(-1e6) as f32) - &x) / sigma;
                        let b = (Tensor::from(hi.min(1e6) as f32) - &x) / sigma;
                        let (a, b) = match (lo.is_finite(), hi.is_finite()) {
                            (true, false) => {
                                let b = a.detach().clamp_min(0.0) + FAR;
                                (a, b)
                            }
                            (false, true) => (b.detach().clamp_max(0.0) - FAR, b),
                            _ => (a, b),
                        };
                        window_log_probability_tensor(&a, &b).sum(Kind::Float) * (-2.0 * head_error * head_error)
                    }
                    Goal::Minimise { head } => (p.select(1, head as i64) / norm.prop_std[head]).sum(Kind::Float),
                    Goal::Maximise { head } => (-p.select(1, head as i64) / norm.prop_std[head]).sum(Kind::Float),
                };
                loss += term;
            }
            let grad = Tensor::run_backward(&[loss], &[&z], false, false).remove(0);
            tch::no_grad(|| {
                m = &m * b1 + &grad * (1.0 - b1);
                v = &v * b2 + grad.square() * (1.0 - b2);
                let mh = &m / (1.0 - b1.powi(t as i32));
                let vh = &v / (1.0 - b2.powi(t as i32));
                let step = mh / (vh.sqrt() + 1e-8) * lr;
                z = (&z - step).detach().set_requires_grad(true);
            });
            if t % record_every.max(1) == 0 || t == steps {
                path.push(z.detach().copy());
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tensor form of ln P(window) that latent optimisation differentiates, against mpmath
    /// (`tests/fixtures/window_probability_scipy.json`, scripts/make_window_fixtures.py): the same value,
    /// and a finite gradient with respect to the mean even 1,000 σ out.
    #[test]
    fn window_log_probability_tensor_matches_mpmath_with_finite_gradients() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/window_probability_scipy.json"
        ))
        .unwrap();
        let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = cases["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 10);
        for c in cases {
            let f = |k: &str, inf: f64| c[k].as_f64().unwrap_or(inf);
            let want = f("ln_p", 0.0);
            let (mean, sigma) = (f("mean", 0.0), f("sigma", 0.0));
            let x = Tensor::from_slice(&[mean]).set_requires_grad(true);
            let bound = |v: f64| (Tensor::from_slice(&[v.clamp(-1e6, 1e6)]) - &x) / sigma;
            let lp = window_log_probability_tensor(&bound(f("lo", f64::NEG_INFINITY)), &bound(f("hi", f64::INFINITY)));
            let value = lp.double_value(&[0]);
            assert!((value - want).abs() <= 1e-6 * want.abs().max(1.0), "{c}: tensor form gave {value}");
            let grad = Tensor::run_backward(&[lp.sum(Kind::Double)], &[&x], false, false).remove(0).double_value(&[0]);
            assert!(grad.is_finite(), "{c}: gradient {grad}");
        }
    }

    #[test]
    fn chunks_keep_order_and_stay_under_the_atom_limit() {
        let sizes = [5, 7, 20, 3, 3, 1, 9];
        let chunks = chunk_by_atoms(&[0, 1, 2, 3, 4, 5, 6], |i| sizes[i], 12);
        assert_eq!(chunks, vec![vec![0, 1], vec![2], vec![3, 4, 5], vec![6]]);
        assert!(chunk_by_atoms(&[], |i| sizes[i], 12).is_empty());
    }

    #[test]
    fn largest_remainders_keep_the_total() {
        assert_eq!(round_counts(&[0.2, 0.2, 0.6], 5, 1.0), vec![1, 1, 3]);
        assert_eq!(round_counts(&[0.45, 0.45, 0.1], 4, 1.0), vec![2, 2, 0]);
        assert_eq!(round_counts(&[0.3, 0.3, 0.4], 7, 1.0).iter().sum::<usize>(), 7);
        // 0.05 × 6 atoms is under half an atom: dropped, the rest rescaled.
        assert_eq!(round_counts(&[0.05, 0.475, 0.475], 6, 1.0), vec![0, 3, 3]);
        assert_eq!(round_counts(&[0.3, 0.3, 0.4], 1, 1.0), vec![0, 0, 1]);
        // Sharpening drops minor elements (0.2²/0.44 × 5 atoms < ½) but keeps the ratio of the rest (0.35 : 0.5 of 6 → 2 : 4).
        assert_eq!(round_counts(&[0.2, 0.2, 0.6], 5, 0.5), vec![0, 0, 5]);
        assert_eq!(round_counts(&[0.15, 0.35, 0.5], 6, 0.5), vec![0, 2, 4]);
    }

    #[test]
    fn element_count_log_prior_is_the_smoothed_training_share() {
        let el = |s: &str| Element::from_symbol(s).unwrap();
        let cubic = Lattice::cubic(4.0).unwrap();
        let nacl = Structure::from_frac(
            cubic.clone(),
            vec![el("Na"), el("Cl")],
            vec![Vector3::zeros(), Vector3::new(0.5, 0.5, 0.5)],
        )
        .unwrap();
        let fe = Structure::from_frac(cubic, vec![el("Fe")], vec![Vector3::zeros()]).unwrap();
        let log_p = super::super::model::element_count_log_prior([&nacl, &nacl, &nacl, &fe]);
        assert_eq!(log_p.len(), super::super::model::MAX_ELEMENT_COUNT + 1);
        assert!((log_p.iter().map(|x| x.exp()).sum::<f64>() - 1.0).abs() < 1e-12);
        // Add-one smoothing: k = 2 seen 3 times, k = 1 once, of 4 + 11 counts.
        assert!((log_p[2] - (4.0f64 / 15.0).ln()).abs() < 1e-12 && (log_p[1] - (2.0f64 / 15.0).ln()).abs() < 1e-12);
        assert!(log_p.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn collapsed_sites_move_into_the_void() {
        let l = Lattice::cubic(4.0).unwrap();
        let mut frac = vec![
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(0.5, 0.5, 0.5),
            Vector3::new(0.51, 0.5, 0.5),
            Vector3::new(0.99, 0.0, 0.0),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Sites 2 (0.04 Å from site 1) and 3 (0.04 Å from site 0 across the boundary) move; 0 and 1 stay.
        assert_eq!(reseed_collapsed(&l, &mut frac, &mut rng), 2);
        assert_eq!(frac[0], Vector3::zeros());
        assert_eq!(frac[1], Vector3::new(0.5, 0.5, 0.5));
        let s = Structure::from_frac(l.clone(), vec![Element::from_symbol("Na").unwrap(); 4], frac.clone()).unwrap();
        // Four sites in a 4 Å cube leave room for ≥ 1.5 Å between every pair; the void search finds it.
        assert!(s.min_distance() > 1.5, "min distance {}", s.min_distance());
        // Nothing collapsed: nothing moves.
        let before = frac.clone();
        assert_eq!(reseed_collapsed(&l, &mut frac, &mut rng), 0);
        assert_eq!(frac, before);
    }
}
