//! Generation campaigns with the crystal VAE: which latent codes to decode (prior samples, codes
//! moved towards property targets, neighbourhoods of seed crystals, interpolation paths, given points),
//! then decoding, validity, forward-model predictions, distance to the target and novelty against the
//! training set. The `generate` job and `geode generate` both call [`Campaign::batch`].

use serde::{Deserialize, Serialize};

use crate::chem::oxidation::{ValidityOptions, validity};
use crate::crystal::Structure;
use crate::data::{Dataset, Split};
use crate::ml::generative::composition::counts_composition;
use crate::ml::generative::data::N_TYPES;
use crate::ml::generative::metrics::NoveltyIndex;
use crate::ml::generative::sample::{Decoded, FormulaGuide, Goal};
use crate::ml::generative::{Codes, Constraints, CrystalVae, SampleOptions};
use crate::ml::{Prediction, PropertyModel, Target};

/// A property target: `band_gap in [1.5, 2.0]`, `band_gap > 3`, `formation_energy_per_atom < -2`,
/// `min formation_energy_per_atom`, `max band_gap`.
///
/// Configs and the store hold a target as this text (it is parsed once, where it is read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PropertyTarget {
    pub target: Target,
    /// Window in the property's unit; ±∞ for one-sided targets.
    pub lo: f64,
    pub hi: f64,
    /// `min`/`max` targets: push as far as possible (lo/hi are then ±∞).
    pub extreme: Option<Extreme>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extreme {
    Min,
    Max,
}

impl PropertyTarget {
    /// Parse a target text (see the type's documentation).
    pub fn parse(text: &str) -> Result<PropertyTarget, String> {
        Self::parse_known(text).map_err(|e| {
            if e.contains("unknown property") {
                format!(
                    "{e}; a user's property is known once a model that predicts it is named (`property_models` in \
                     run configs, --property-models on the command line)"
                )
            } else {
                e
            }
        })
    }

    fn parse_known(text: &str) -> Result<PropertyTarget, String> {
        let t = text.trim();
        let names = || Target::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(" and ");
        // A registered name no model predicts is refused with what the models aim at.
        let target = |p: &'static crate::data::property::Property| {
            Target::registered(p.name).ok_or_else(|| {
                format!(
                    "target {t:?}: {} is not a property the models predict (targets take {}, or a user model's \
                     target when its model is named)",
                    p.name,
                    names()
                )
            })
        };
        for (word, ext) in [("min", Extreme::Min), ("max", Extreme::Max)] {
            if let Some(rest) = t.strip_prefix(word).filter(|r| r.starts_with(char::is_whitespace)) {
                let p = crate::data::property::lookup(rest.trim()).map_err(|e| format!("target {t:?}: {e}"))?;
                return Ok(PropertyTarget {
                    target: target(p)?,
                    lo: f64::NEG_INFINITY,
                    hi: f64::INFINITY,
                    extreme: Some(ext),
                });
            }
        }
        let (p, lo, hi) = crate::data::expr::Expr::parse_window(t, "target")
            .map_err(|e| format!("{} (or `min PROPERTY`, `max PROPERTY`)", e.0))?;
        Ok(PropertyTarget { target: target(p)?, lo, hi, extreme: None })
    }

    /// True when the generator has a head for the target (the two built-in properties).
    pub fn has_head(&self) -> bool {
        !matches!(self.target, Target::User(_))
    }

    /// The generator's head for the target; `None` for a user's property, which only a forward model
    /// on the decoded crystal can judge ([`Campaign::forward_scores`]).
    fn head(&self) -> Option<usize> {
        match self.target {
            Target::FormationEnergyPerAtom => Some(0),
            Target::BandGap => Some(1),
            Target::User(_) => None,
        }
    }

    /// The latent optimisation's goal for a target with a head.
    fn goal(&self) -> Option<Goal> {
        let head = self.head()?;
        Some(match self.extreme {
            Some(Extreme::Min) => Goal::Minimise { head },
            Some(Extreme::Max) => Goal::Maximise { head },
            None => Goal::Window { head, lo: self.lo, hi: self.hi },
        })
    }

    /// Distance of a value to the window (0 inside; `None` for min/max targets).
    pub fn distance(&self, v: f64) -> Option<f64> {
        self.extreme.is_none().then(|| (self.lo - v).max(v - self.hi).max(0.0))
    }

    pub fn describe(&self) -> String {
        match self.extreme {
            Some(Extreme::Min) => format!("min {}", self.target.name()),
            Some(Extreme::Max) => format!("max {}", self.target.name()),
            None if self.lo.is_infinite() => format!("{} < {}", self.target.name(), self.hi),
            None if self.hi.is_infinite() => format!("{} > {}", self.target.name(), self.lo),
            None => format!("{} in [{}, {}]", self.target.name(), self.lo, self.hi),
        }
    }
}

serde_as_text!(PropertyTarget, describe);

/// Where the latent codes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Codes from the prior N(0, I); with targets, each is then moved towards them.
    #[default]
    Sample,
    /// Codes around the seeds' codes: z = μ(seed) + `radius`·ξ, ξ zero-mean with the prior's
    /// covariance (then moved towards targets, if any).
    Around,
    /// The conditional sampler: codes around training crystals whose DFT labels meet every target (a
    /// kernel estimate of p(z | targets)), z = μ(x) + `radius`·ξ, then moved towards the targets by
    /// latent optimisation. `min`/`max` targets take the lowest/highest 10 % of the training labels.
    Conditional,
    /// `n` evenly spaced codes on the straight line from the first seed's code to the second's.
    Interpolate,
    /// The given latent `points`.
    Decode,
}

/// A crystal as the forward model reads it: predictions in the model's target order, and the distance
/// to the campaign's windows (see [`Campaign::judge`]).
pub type Judged = (Vec<(Target, Prediction)>, Option<f64>);

/// One generated crystal with what is known about it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub structure: Structure,
    pub latent: Vec<f32>,
    /// Formation energy (eV/atom) and band gap (eV) from the generator's heads.
    pub head_properties: [f64; 2],
    /// Forward-model predictions, in the model's target order.
    pub predicted: Vec<(Target, Prediction)>,
    pub structurally_valid: bool,
    pub compositionally_valid: bool,
    /// Largest distance of a forward-model prediction to its target window (0 = every target met).
    pub distance_to_target: Option<f64>,
    /// No crystal of the training split matches it (pymatgen's StructureMatcher defaults).
    pub novel: bool,
}

impl Generated {
    pub fn valid(&self) -> bool {
        self.structurally_valid && self.compositionally_valid
    }
}

/// A campaign's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignSettings {
    pub mode: Mode,
    /// `around`: standard deviation of the latent perturbation.
    pub radius: f64,
    /// `decode`: latent points.
    pub points: Vec<Vec<f64>>,
    /// Property targets (`band_gap in [1.5, 2.0]`, `min formation_energy_per_atom`), as text in configs.
    pub targets: Vec<PropertyTarget>,
    pub constraints: Constraints,
    pub sampling: SampleOptions,
    /// Latent optimisation towards targets: Adam steps, learning rate and the prior penalty weight.
    pub opt_steps: usize,
    pub opt_lr: f64,
    pub prior_weight: f64,
    /// The composition model that guides the choice of formula when `sampling.guidance` > 0
    /// ([`composition_guide`]).
    pub guide_model: String,
    /// Targeted `sample`, `conditional` and `around` runs decode this many codes per crystal and keep
    /// the one whose structure, encoded again, the generator's own heads put nearest the targets
    /// ([`Campaign::cycle_scores`]); 1 = every code is kept. Costs this many times the decoding.
    pub oversample: usize,
}

/// Codes decoded per crystal kept in targeted runs unless told otherwise (measured in docs/generative.md).
pub const DEFAULT_OVERSAMPLE: usize = 3;

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            mode: Mode::Sample,
            radius: 0.5,
            points: Vec::new(),
            targets: Vec::new(),
            constraints: Constraints::default(),
            sampling: SampleOptions::default(),
            opt_steps: 100,
            opt_lr: 0.05,
            prior_weight: 0.05,
            guide_model: DEFAULT_GUIDE_MODEL.into(),
            oversample: DEFAULT_OVERSAMPLE,
        }
    }
}

impl CampaignSettings {
    /// Every check that needs neither the generator nor a model (run at submission): ranges of the
    /// numbers, the element constraints, and that the mode has its `n_seeds` seed crystals or points.
    pub fn validate(&self, n_seeds: usize) -> Result<(), String> {
        self.constraints.allowed_types()?;
        if self.mode == Mode::Conditional
            && let Some(t) = self.targets.iter().find(|t| !t.has_head())
        {
            return Err(format!(
                "target {}: the conditional sampler starts from training crystals with DFT labels for the target, \
                 and the dataset has none for a user's property; use mode sample or around (the forward model \
                 then chooses among oversampled crystals)",
                t.target.name()
            ));
        }
        if matches!(self.mode, Mode::Sample | Mode::Around)
            && self.targets.iter().any(|t| !t.has_head())
            && self.oversample < 2
        {
            return Err(format!(
                "oversample must be at least 2 with a target the generator has no head for ({}): the forward \
                 model steers such a run only by choosing among each crystal's oversampled codes",
                self.targets.iter().filter(|t| !t.has_head()).map(|t| t.describe()).collect::<Vec<_>>().join(", ")
            ));
        }
        let w = self.sampling.composition_anchor;
        if !(0.0..=1.0).contains(&w) {
            return Err(format!("sampling.composition_anchor must be between 0 and 1 (got {w})"));
        }
        let need = match self.mode {
            Mode::Around => {
                if !(self.radius.is_finite() && self.radius >= 0.0) {
                    return Err(format!("radius must be ≥ 0 (got {})", self.radius));
                }
                1
            }
            Mode::Interpolate => 2,
            Mode::Decode if self.points.is_empty() => return Err("decode needs at least one latent point".into()),
            Mode::Decode | Mode::Sample | Mode::Conditional => 0,
        };
        if n_seeds < need {
            return Err(format!("this mode needs {need} seed crystal(s), {n_seeds} given"));
        }
        let g = self.sampling.guidance;
        if !(g.is_finite() && g >= 0.0) {
            return Err(format!("sampling.guidance must be ≥ 0 (got {g})"));
        }
        let w = self.sampling.element_prior;
        if !(w.is_finite() && w >= 0.0) {
            return Err(format!("sampling.element_prior must be ≥ 0 (got {w})"));
        }
        let r = self.sampling.rare_state_penalty;
        if !(r.is_finite() && r >= 0.0) {
            return Err(format!("sampling.rare_state_penalty must be ≥ 0 nats (got {r})"));
        }
        if self.oversample == 0 {
            return Err("oversample must be at least 1 (1 keeps every decoded code)".into());
        }
        if !(1..=16).contains(&self.sampling.formula_candidates) {
            return Err(format!(
                "sampling.formula_candidates must be 1 to 16 (got {}; 1 decodes the best formula only)",
                self.sampling.formula_candidates
            ));
        }
        if !(self.opt_lr.is_finite() && self.opt_lr > 0.0) {
            return Err(format!("opt_lr must be > 0 (got {})", self.opt_lr));
        }
        if !(self.prior_weight.is_finite() && self.prior_weight >= 0.0) {
            return Err(format!("prior_weight must be ≥ 0 (got {})", self.prior_weight));
        }
        if g > 0.0 && !self.targets.is_empty() {
            crate::ml::shipped::check(&self.guide_model).map_err(|e| format!("guide_model: {e}"))?;
        }
        Ok(())
    }
}

/// The composition model that guides formulas by default: the one trained on the embedded training split
/// (measured against `composition-oqmd` in docs/generative.md: the same SR, higher band-gap hit rates).
pub const DEFAULT_GUIDE_MODEL: &str = "composition";

/// z-score of a 90 % two-sided interval: Φ⁻¹(0.95).
const Z90: f64 = 1.644_853_626_951_472_2;

/// ln Q(x), Q(x) = P(y > x) for y ~ N(0, 1): from erfc where it is representable, else (x ≥ 30) from
/// the asymptotic series Q(x) = φ(x)/x·(1 − 1/x² + 3/x⁴ − 15/x⁶ + …) (Abramowitz & Stegun 26.2.12;
/// relative error < 2·10⁻¹⁰ there), so the logarithm stays exact where Q itself underflows.
fn ln_upper_tail(x: f64) -> f64 {
    if x == f64::INFINITY {
        return f64::NEG_INFINITY;
    }
    if x < 30.0 {
        return (0.5 * libm::erfc(x / std::f64::consts::SQRT_2)).ln();
    }
    let r = 1.0 / (x * x);
    -0.5 * x * x - (x * (2.0 * std::f64::consts::PI).sqrt()).ln() + (1.0 - r + 3.0 * r * r - 15.0 * r * r * r).ln()
}

/// ln P(lo ≤ y ≤ hi) for y ~ N(mean, sigma²); the bounds may be infinite. Computed from the upper
/// tails on the side away from the mean, ln Q(a) + ln(1 − Q(b)/Q(a)), so it keeps its precision (and
/// its ranking) however far outside the window the mean lies.
pub fn window_log_probability(mean: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    let (a, b) = ((lo - mean) / sigma, (hi - mean) / sigma);
    let far_side = |near: f64, far: f64| {
        let (ln_near, ln_far) = (ln_upper_tail(near), ln_upper_tail(far));
        ln_near + (-(ln_far - ln_near).exp()).ln_1p()
    };
    if a >= 0.0 {
        far_side(a, b)
    } else if b <= 0.0 {
        far_side(-b, -a)
    } else {
        (1.0 - (0.5 * libm::erfc(-a / std::f64::consts::SQRT_2)) - 0.5 * libm::erfc(b / std::f64::consts::SQRT_2)).ln()
    }
}

/// The standard deviation of the Gaussian whose 90 % interval is the prediction's (its conformal interval),
/// the ensemble σ where the interval is empty or missing, and never below `floor`.
fn predictive_sigma(p: &Prediction, floor: f64) -> f64 {
    let width = (p.hi90 - p.lo90) / (2.0 * Z90);
    let sigma = if width.is_finite() && width > 0.0 { width } else { p.std };
    sigma.max(floor)
}

/// A formula guide from a composition model (see [`FormulaGuide`]): for each formula, the sum over the
/// targets of −ln P(the property lands in the window) under the model's calibrated predictive
/// distribution (a Gaussian whose 90 % interval is the model's conformal one), in nats like the
/// decoder's own formula cost, so guidance 1 weighs the two alike: p(formula | code, target) ∝
/// p(formula | code)·P(target | formula). For min/max targets, ± the prediction in units of `scale`
/// (the property's standard deviation). A formula the model cannot predict gets +∞.
pub fn composition_guide<'a>(
    model: &'a dyn PropertyModel,
    targets: &'a [PropertyTarget],
    scale: &'a dyn Fn(Target) -> f64,
) -> impl Fn(&[Vec<usize>]) -> Vec<f64> + 'a {
    move |formulas: &[Vec<usize>]| {
        let comps: Vec<crate::crystal::Composition> = formulas.iter().map(|c| counts_composition(c)).collect();
        let Ok(preds) = (if comps.is_empty() { Ok(Vec::new()) } else { model.predict_compositions(&comps) }) else {
            return vec![f64::INFINITY; formulas.len()];
        };
        let names = model.targets();
        preds
            .iter()
            .map(|p| {
                targets
                    .iter()
                    .map(|t| {
                        let Some(k) = names.iter().position(|n| *n == t.target) else { return 0.0 };
                        let v = p[k].mean / scale(t.target);
                        match t.extreme {
                            Some(Extreme::Min) => v,
                            Some(Extreme::Max) => -v,
                            None => {
                                let sigma = predictive_sigma(&p[k], 1e-3 * scale(t.target));
                                -window_log_probability(p[k].mean, sigma, t.lo, t.hi)
                            }
                        }
                    })
                    .sum()
            })
            .collect()
    }
}

/// Most training crystals the conditional sampler encodes (evenly spread over those that qualify).
pub const MAX_CONDITIONAL_SEEDS: usize = 4000;

/// How many times a code that latent optimisation leaves outside a window is drawn again
/// ([`Campaign::codes`]).
pub const LATENT_REDRAWS: usize = 3;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Training crystals whose DFT labels meet every target and the constraints (elements, cell size).
fn conditional_seeds(
    targets: &[PropertyTarget],
    c: &Constraints,
    max_atoms: usize,
) -> Result<Vec<&'static Structure>, String> {
    if targets.is_empty() {
        return Err("the conditional sampler needs at least one target".into());
    }
    let train: Vec<&'static crate::data::Entry> = Dataset::embedded().split(Split::Train).collect();
    // Windows on the labels; min/max targets become the lowest/highest 10 % of the training labels.
    let mut windows = Vec::new();
    for t in targets {
        let mut v: Vec<f64> = train.iter().filter_map(|e| t.target.label(e)).collect();
        if v.is_empty() {
            return Err(format!(
                "the conditional sampler needs DFT labels for {}; the dataset has none",
                t.target.name()
            ));
        }
        v.sort_by(f64::total_cmp);
        let q = |f: f64| v[((f * v.len() as f64) as usize).min(v.len() - 1)];
        windows.push(match t.extreme {
            Some(Extreme::Min) => (t.target, f64::NEG_INFINITY, q(0.10)),
            Some(Extreme::Max) => (t.target, q(0.90), f64::INFINITY),
            None => (t.target, t.lo, t.hi),
        });
    }
    let allowed = c.allowed_types()?;
    let (lo_n, hi_n) = (c.min_atoms.unwrap_or(1), c.max_atoms.unwrap_or(max_atoms).min(max_atoms));
    let ok: Vec<&'static Structure> = train
        .into_iter()
        .filter(|e| windows.iter().all(|&(t, lo, hi)| t.label(e).is_some_and(|v| v >= lo && v <= hi)))
        .filter(|e| (lo_n..=hi_n).contains(&e.structure.n_sites()))
        .filter(|e| {
            allowed.as_ref().is_none_or(|a| e.structure.species().iter().all(|s| a.contains(&(s.z() as usize - 1))))
        })
        .map(|e| &e.structure)
        .collect();
    if ok.is_empty() {
        return Err(format!(
            "no training crystal meets {} within the constraints; use mode sample (latent optimisation) instead",
            targets.iter().map(|t| t.describe()).collect::<Vec<_>>().join(" and ")
        ));
    }
    let step = ok.len().div_ceil(MAX_CONDITIONAL_SEEDS).max(1);
    Ok(ok.into_iter().step_by(step).collect())
}

/// A ready campaign: the model, the parsed targets, the seeds' codes and the training index.
pub struct Campaign {
    pub vae: CrystalVae,
    pub settings: CampaignSettings,
    pub targets: Vec<PropertyTarget>,
    seed_codes: Option<Codes>,
    /// The conditional sampler's training crystals as element fractions over the generator's types
    /// (the composition anchors of the codes drawn around them).
    seed_fractions: Vec<Vec<f64>>,
    novelty: NoveltyIndex<'static>,
    /// The formula guide's model, loaded when `sampling.guidance` > 0 and it predicts one of the targets.
    guide: Option<Box<dyn PropertyModel>>,
    /// What the campaign decided that a user should hear about (the job logs them, the CLI prints them).
    pub notes: Vec<String>,
}

/// Element fractions of `s` over the generator's types (index Z − 1), in f64 (the training data's
/// `composition_of` keeps f32).
fn type_fractions(s: &Structure) -> Vec<f64> {
    let mut f = vec![0.0; N_TYPES];
    for e in s.species() {
        if let Some(v) = f.get_mut(e.z() as usize - 1) {
            *v += 1.0 / s.n_sites() as f64;
        }
    }
    f
}

impl Campaign {
    pub fn new(vae: CrystalVae, settings: CampaignSettings, seeds: &[Structure]) -> Result<Campaign, String> {
        settings.validate(seeds.len())?;
        let targets = settings.targets.clone();
        if settings.mode == Mode::Decode
            && let Some(p) = settings.points.iter().find(|p| p.len() != vae.latent_dim() as usize)
        {
            return Err(format!(
                "a latent point has {} coordinates; the model's latent space has {}",
                p.len(),
                vae.latent_dim()
            ));
        }
        let mut seed_fractions = Vec::new();
        let seed_codes = if settings.mode == Mode::Conditional {
            let labelled = conditional_seeds(&targets, &settings.constraints, vae.config().max_atoms)?;
            seed_fractions = labelled.iter().copied().map(type_fractions).collect();
            Some(vae.codes_of(&labelled)?)
        } else if matches!(settings.mode, Mode::Around | Mode::Interpolate) {
            Some(vae.codes_of(&seeds.iter().collect::<Vec<_>>())?)
        } else {
            None
        };
        let g = settings.sampling.guidance;
        let mut notes = Vec::new();
        let guide = if g > 0.0 && !targets.is_empty() {
            let m = crate::ml::shipped::open(&settings.guide_model).map_err(|e| format!("guide model: {e}"))?;
            // The guide weighs the targets it predicts; one that predicts none guides nothing.
            let (known, unknown): (Vec<&PropertyTarget>, Vec<&PropertyTarget>) =
                targets.iter().partition(|t| m.targets().contains(&t.target));
            let list = |v: &[&PropertyTarget]| v.iter().map(|t| t.target.name()).collect::<Vec<_>>().join(", ");
            if known.is_empty() {
                notes.push(format!(
                    "no formula guidance: the guide model {} predicts none of the targets ({}); set guide_model to a \
                     composition model that does",
                    m.name(),
                    list(&unknown)
                ));
                None
            } else {
                if !unknown.is_empty() {
                    notes.push(format!(
                        "the formula guide {} weighs {} only (it does not predict {})",
                        m.name(),
                        list(&known),
                        list(&unknown)
                    ));
                }
                Some(m)
            }
        } else {
            None
        };
        let novelty = NoveltyIndex::new(Dataset::embedded().split(Split::Train).map(|e| &e.structure));
        Ok(Campaign { vae, settings, targets, seed_codes, seed_fractions, novelty, guide, notes })
    }

    /// The spread of a property the guide measures penalties in: the generator's normalisation of its
    /// property head (eV/atom or eV), 1 (in the property's unit) for a property it has no head for.
    pub fn property_scale(&self, t: Target) -> f64 {
        PropertyTarget { target: t, lo: 0.0, hi: 0.0, extreme: None }
            .head()
            .and_then(|head| self.vae.card.norm.prop_std.get(head).copied())
            .filter(|s| *s > 0.0)
            .unwrap_or(1.0)
    }

    /// The targets the generator has heads for (latent optimisation and cycle scores aim at these).
    fn head_targets(&self) -> impl Iterator<Item = &PropertyTarget> {
        self.targets.iter().filter(|t| t.has_head())
    }

    /// No crystal of the training split matches `s` (pymatgen's StructureMatcher defaults).
    pub fn is_novel(&self, s: &Structure) -> bool {
        self.novelty.is_novel(s)
    }

    /// Which of the conditional sampler's training crystals crystal `i` of a run starts from.
    fn conditional_pick(&self, i: usize, run_seed: u64) -> usize {
        let k = self.seed_fractions.len().max(1) as u64;
        (splitmix(run_seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % k) as usize
    }

    /// The composition anchors of crystals `start..start + count` (see
    /// [`SampleOptions::composition_anchor`]): the element fractions of the training crystal each
    /// conditional code starts from; `None` in every other mode.
    pub fn anchors(&self, start: usize, count: usize, run_seed: u64) -> Vec<Option<Vec<f64>>> {
        (start..start + count)
            .map(|i| {
                (self.settings.mode == Mode::Conditional && !self.seed_fractions.is_empty())
                    .then(|| self.seed_fractions[self.conditional_pick(i, run_seed)].clone())
            })
            .collect()
    }

    /// The codes of crystals `start..start + count` of a campaign of `total` crystals: drawn for the
    /// mode, then, with targets, moved towards them by latent optimisation. A code that optimisation
    /// leaves outside a window (one the band-gap head reads as a metal can sit where the head is flat
    /// and the prior's pull wins) is drawn again, around the same seed crystal in `around` and
    /// `conditional` runs, and optimised again, up to [`LATENT_REDRAWS`] times, before any is decoded.
    pub fn codes(&self, start: usize, count: usize, total: usize, run_seed: u64) -> Codes {
        let base = self.base_codes(start, count, total, run_seed, 0);
        if self.head_targets().next().is_none() || matches!(self.settings.mode, Mode::Decode | Mode::Interpolate) {
            return base;
        }
        let mut z = self.optimised(&base);
        let mut missed = self.outside_windows(&z);
        for draw in 1..=LATENT_REDRAWS {
            if missed.is_empty() {
                break;
            }
            let fresh = self.optimised(&self.base_codes(start, count, total, run_seed, draw as u64).select(&missed));
            let still = self.outside_windows(&fresh);
            let landed: Vec<usize> = (0..missed.len()).filter(|k| !still.contains(k)).collect();
            if !landed.is_empty() {
                let at: Vec<usize> = landed.iter().map(|&k| missed[k]).collect();
                z = z.replace_rows(&at, &fresh, &landed);
            }
            missed = still.into_iter().map(|k| missed[k]).collect();
        }
        z
    }

    /// `z` after the campaign's latent optimisation towards its targets.
    fn optimised(&self, z: &Codes) -> Codes {
        let goals: Vec<Goal> = self.targets.iter().filter_map(|t| t.goal()).collect();
        let s = &self.settings;
        self.vae.optimise(z, &goals, s.opt_steps, s.opt_lr, s.prior_weight)
    }

    /// Rows of `z` whose unclamped heads lie outside one of the window targets
    /// ([`PropertyTarget::distance`] above 0; min/max targets never miss).
    fn outside_windows(&self, z: &Codes) -> Vec<usize> {
        let heads = self.vae.property_heads(z, true);
        heads
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                self.targets.iter().any(|t| t.head().and_then(|k| t.distance(h[k])).is_some_and(|d| d > 0.0))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The codes of crystals `start..start + count` before any optimisation. `draw` 0 is the first
    /// draw; later draws take fresh noise (prior samples, or perturbations of the same seed crystals).
    fn base_codes(&self, start: usize, count: usize, total: usize, run_seed: u64, draw: u64) -> Codes {
        let l = self.vae.latent_dim() as usize;
        let noise_seed =
            run_seed ^ (start as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ draw.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match (self.settings.mode, &self.seed_codes) {
            (Mode::Around, Some(sc)) => {
                // Code i belongs to crystal i / r of an oversampled run: every sibling walks around its seed.
                let (k, r) = (sc.len(), self.oversample());
                let idx: Vec<usize> = (start..start + count).map(|i| (i / r) % k).collect();
                sc.around(&idx, &self.vae.noise(count, noise_seed), self.settings.radius)
            }
            (Mode::Conditional, Some(sc)) => {
                // A random training crystal meeting the targets for each code (seeded, so runs repeat).
                let idx: Vec<usize> = (start..start + count).map(|i| self.conditional_pick(i, run_seed)).collect();
                sc.around(&idx, &self.vae.noise(count, noise_seed), self.settings.radius)
            }
            (Mode::Interpolate, Some(sc)) => {
                let total = total.max(2) as f64;
                let ts: Vec<f64> =
                    (start..start + count).map(|i| (i as f64 / (total - 1.0).max(1.0)).min(1.0)).collect();
                sc.interpolate(&ts)
            }
            (Mode::Decode, _) => {
                let points = &self.settings.points;
                let rows: Vec<Vec<f64>> =
                    (start..start + count).map(|i| points[i % points.len().max(1)].clone()).collect();
                Codes::from_rows(&rows, l)
            }
            _ => self.vae.prior(count, noise_seed),
        }
    }

    /// How many codes a targeted `sample`, `conditional` or `around` run decodes per crystal it keeps
    /// ([`CampaignSettings::oversample`]); 1 for every other run.
    pub fn oversample(&self) -> usize {
        if self.targets.is_empty() || matches!(self.settings.mode, Mode::Decode | Mode::Interpolate) {
            1
        } else {
            self.settings.oversample.max(1)
        }
    }

    /// Crystals `start..start + count` of a campaign of `total` crystals: their codes, decoding, the
    /// choice when [`Campaign::oversample`] is above 1 (crystal i keeps the best of codes i·r … i·r + r − 1
    /// by [`Campaign::cycle_scores`] for targets with heads plus [`Campaign::forward_scores`] for a user's
    /// property), checks and predictions. `model` must predict every target the generator has no head
    /// for. The job, the CLI and the benchmark all call this.
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        start: usize,
        count: usize,
        total: usize,
        run_seed: u64,
        model: &dyn PropertyModel,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Result<Generated, String>>, String> {
        self.check_forward_model(model)?;
        let r = self.oversample();
        let codes = self.codes(start * r, count * r, total * r, run_seed);
        let anchors = self.anchors(start * r, count * r, run_seed);
        let sample_seed = run_seed.wrapping_add(start as u64);
        if r == 1 {
            return self.evaluate_codes(&codes, &anchors, model, sample_seed, progress, cancelled);
        }
        let decoded = self.decode_codes(&codes, &anchors, sample_seed, progress, cancelled)?;
        if decoded.is_empty() {
            return Ok(Vec::new()); // cancelled
        }
        // Targets with heads: cycle consistency; a user's property: the forward model on the crystal.
        let forward = self.forward_scores(&decoded, model)?;
        let scores: Vec<f64> = self.cycle_scores(&decoded).into_iter().zip(forward).map(|(c, f)| c + f).collect();
        let keep: Vec<usize> = (0..count)
            .map(|i| {
                (i * r..(i + 1) * r).min_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b))).unwrap_or(i * r)
            })
            .collect();
        let codes = codes.select(&keep);
        let mut decoded: Vec<Option<Decoded>> = decoded.into_iter().map(Some).collect();
        let chosen: Vec<Decoded> =
            keep.iter().map(|&k| decoded[k].take().expect("each code is kept at most once")).collect();
        self.assess(chosen, &codes, model)
    }

    /// An error naming the first target that neither the generator's heads nor `model` can judge.
    pub fn check_forward_model(&self, model: &dyn PropertyModel) -> Result<(), String> {
        let names = model.targets();
        match self.targets.iter().find(|t| !t.has_head() && !names.contains(&t.target)) {
            Some(t) => Err(format!(
                "target {}: the generator has no head for {} and the forward model {} does not predict it (add the \
                 model that does to property_models)",
                t.describe(),
                t.target.name(),
                model.name()
            )),
            None => Ok(()),
        }
    }

    /// How far each decoded crystal sits from the targets the generator has no head for (a user's
    /// property), by the forward `model` on the decoded structure (lower = better): the sum over those
    /// targets of −ln P(the property lands in the window) under the model's calibrated predictive
    /// distribution (a Gaussian whose 90 % interval is the model's), or ∓ the prediction in units of
    /// the predictions' spread over this batch for min/max targets. 0 for every crystal when all
    /// targets have heads; +∞ for a crystal that was not built or that the model cannot read.
    pub fn forward_scores(&self, decoded: &[Decoded], model: &dyn PropertyModel) -> Result<Vec<f64>, String> {
        let headless: Vec<&PropertyTarget> = self.targets.iter().filter(|t| !t.has_head()).collect();
        if headless.is_empty() {
            return Ok(vec![0.0; decoded.len()]);
        }
        self.check_forward_model(model)?;
        let names = model.targets();
        let columns: Vec<usize> = headless
            .iter()
            .map(|t| names.iter().position(|n| *n == t.target).expect("checked by check_forward_model"))
            .collect();
        let (built, structures): (Vec<usize>, Vec<Structure>) =
            decoded.iter().enumerate().filter_map(|(i, d)| d.structure.as_ref().ok().map(|s| (i, s.clone()))).unzip();
        let mut out = vec![f64::INFINITY; decoded.len()];
        let judged = self.judge_each(&structures, model);
        let means = |k: usize| -> Vec<f64> {
            judged.iter().filter_map(|j| j.as_ref().ok()).map(|(p, _)| p[k].1.mean).collect()
        };
        let spread: Vec<f64> = columns
            .iter()
            .map(|&k| {
                let m = means(k);
                let n = m.len().max(1) as f64;
                let avg = m.iter().sum::<f64>() / n;
                let sd = (m.iter().map(|v| (v - avg).powi(2)).sum::<f64>() / n).sqrt();
                if sd.is_finite() && sd > 0.0 { sd } else { 1.0 }
            })
            .collect();
        for (i, j) in built.into_iter().zip(judged) {
            let Ok((predicted, _)) = j else { continue };
            out[i] = headless
                .iter()
                .zip(&columns)
                .zip(&spread)
                .map(|((t, &k), &sd)| {
                    let p = predicted[k].1;
                    match t.extreme {
                        Some(Extreme::Min) => p.mean / sd,
                        Some(Extreme::Max) => -p.mean / sd,
                        None => -window_log_probability(p.mean, predictive_sigma(&p, 1e-3 * sd), t.lo, t.hi),
                    }
                })
                .sum();
        }
        Ok(out)
    }

    /// How far each decoded crystal, encoded again, sits from the targets by the generator's own
    /// heads (lower = better; cycle consistency): the sum over the targets with heads of −ln P(the head's value
    /// lands in the window) with the heads' validation error as the spread, or ± the head's value in
    /// standard deviations for min/max targets. A crystal that was not built scores +∞, one that is not
    /// valid (structure or SMACT composition) 10⁶ more, so valid crystals always win.
    pub fn cycle_scores(&self, decoded: &[Decoded]) -> Vec<f64> {
        let built: Vec<(usize, &Structure)> =
            decoded.iter().enumerate().filter_map(|(i, d)| d.structure.as_ref().ok().map(|s| (i, s))).collect();
        // One batch; should one crystal not encode (no neighbours within the graph's cutoff), each alone.
        let heads: Vec<Option<Vec<f64>>> = match self.vae.codes_of(&built.iter().map(|x| x.1).collect::<Vec<_>>()) {
            Ok(mu) => self.vae.property_heads(&mu, false).into_iter().map(Some).collect(),
            Err(_) => built
                .iter()
                .map(|(_, s)| self.vae.codes_of(&[*s]).ok().and_then(|mu| self.vae.property_heads(&mu, false).pop()))
                .collect(),
        };
        let norm = &self.vae.card.norm;
        let head_error = self.vae.head_error();
        let mut out = vec![f64::INFINITY; decoded.len()];
        for ((i, s), h) in built.into_iter().zip(heads) {
            let Some(h) = h else { continue };
            let score: f64 = self
                .targets
                .iter()
                .filter_map(|t| {
                    let k = t.head()?;
                    let std = norm.prop_std.get(k).copied().unwrap_or(1.0);
                    Some(match t.extreme {
                        Some(Extreme::Min) => h[k] / std,
                        Some(Extreme::Max) => -h[k] / std,
                        None => -window_log_probability(h[k], head_error * std, t.lo, t.hi),
                    })
                })
                .sum();
            let valid = s.is_structurally_valid() && validity(&s.composition(), ValidityOptions::default()).is_valid();
            out[i] = score + if valid { 0.0 } else { 1e6 };
        }
        out
    }

    /// Decode `codes` with their composition `anchors` (see [`Campaign::anchors`]; empty for none) and
    /// the campaign's formula guide, if any. Empty when cancelled.
    pub fn decode_codes(
        &self,
        codes: &Codes,
        anchors: &[Option<Vec<f64>>],
        sample_seed: u64,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Decoded>, String> {
        let opts = SampleOptions { seed: sample_seed, ..self.settings.sampling.clone() };
        match &self.guide {
            Some(m) => {
                let scale = |t: Target| self.property_scale(t);
                let guide = composition_guide(m.as_ref(), &self.targets, &scale);
                self.vae.decode_codes(
                    codes,
                    anchors,
                    &self.settings.constraints,
                    &opts,
                    Some(&guide as &FormulaGuide),
                    progress,
                    cancelled,
                )
            }
            None => self.vae.decode_codes(codes, anchors, &self.settings.constraints, &opts, None, progress, cancelled),
        }
    }

    /// Decode `codes` (with their composition `anchors`, see [`Campaign::anchors`]; empty for none),
    /// then check, predict and compare each crystal. Crystals that could not be built come back as
    /// errors.
    pub fn evaluate_codes(
        &self,
        codes: &Codes,
        anchors: &[Option<Vec<f64>>],
        model: &dyn PropertyModel,
        sample_seed: u64,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Result<Generated, String>>, String> {
        let decoded = self.decode_codes(codes, anchors, sample_seed, progress, cancelled)?;
        self.assess(decoded, codes, model)
    }

    /// The forward model's predictions for `structures` (in the model's target order) and each one's
    /// distance to the campaign's targets (the largest over its windows, in the property's units; 0 =
    /// every window met; `None` without windows). Used for decoded crystals and again after relaxation.
    pub fn judge(&self, structures: &[Structure], model: &dyn PropertyModel) -> Result<Vec<Judged>, String> {
        if structures.is_empty() {
            return Ok(Vec::new());
        }
        let targets = model.targets();
        let preds = model.predict(structures).map_err(|e| e.to_string())?;
        Ok(preds
            .into_iter()
            .map(|p| {
                let predicted: Vec<(Target, Prediction)> = targets.iter().copied().zip(p.iter().copied()).collect();
                let distance = if self.targets.iter().all(|t| t.extreme.is_some()) {
                    None
                } else {
                    self.targets
                        .iter()
                        .filter_map(|t| {
                            predicted.iter().find(|(q, _)| *q == t.target).and_then(|(_, q)| t.distance(q.mean))
                        })
                        .reduce(f64::max)
                };
                (predicted, distance)
            })
            .collect())
    }

    /// [`Campaign::judge`] crystal by crystal where the batch fails (a non-finite prediction for one
    /// crystal fails the whole batch), so one odd structure, such as a relaxation gone wrong, costs only
    /// its own row.
    pub fn judge_each(&self, structures: &[Structure], model: &dyn PropertyModel) -> Vec<Result<Judged, String>> {
        match self.judge(structures, model) {
            Ok(all) => all.into_iter().map(Ok).collect(),
            // A single crystal has already had its own try.
            Err(e) if structures.len() == 1 => vec![Err(e)],
            Err(_) => structures
                .iter()
                .map(|s| self.judge(std::slice::from_ref(s), model).map(|mut j| j.swap_remove(0)))
                .collect(),
        }
    }

    /// Check, predict and compare decoded crystals (`codes` are theirs, row for row).
    fn assess(
        &self,
        decoded: Vec<Decoded>,
        codes: &Codes,
        model: &dyn PropertyModel,
    ) -> Result<Vec<Result<Generated, String>>, String> {
        let mut latents = codes.rows_f32();
        let (built, structures): (Vec<usize>, Vec<Structure>) =
            decoded.iter().enumerate().filter_map(|(i, d)| d.structure.as_ref().ok().map(|s| (i, s.clone()))).unzip();
        let judged = self.judge(&structures, model)?;
        let mut out: Vec<Result<Generated, String>> =
            decoded.iter().map(|d| Err(d.structure.as_ref().err().cloned().unwrap_or_default())).collect();
        for ((i, s), (predicted, distance_to_target)) in built.into_iter().zip(structures).zip(judged) {
            let novel = self.novelty.is_novel(&s);
            out[i] = Ok(Generated {
                structurally_valid: s.is_structurally_valid(),
                compositionally_valid: validity(&s.composition(), ValidityOptions::default()).is_valid(),
                latent: std::mem::take(&mut latents[i]),
                head_properties: decoded[i].head_properties,
                predicted,
                distance_to_target,
                novel,
                structure: s,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_probabilities_match_mpmath_even_far_in_the_tails() {
        // scripts/make_window_fixtures.py: mpmath at 50 digits (scipy's plain CDF difference is there too,
        // and underflows to 0 beyond ~38 σ).
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
            let got = window_log_probability(
                f("mean", 0.0),
                f("sigma", 0.0),
                f("lo", f64::NEG_INFINITY),
                f("hi", f64::INFINITY),
            );
            let want = f("ln_p", 0.0);
            assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{c}: got {got}");
        }
    }

    #[test]
    fn targets_parse_and_measure_distance() {
        let t = PropertyTarget::parse("band_gap in [1.5, 2.0]").unwrap();
        assert_eq!((t.target, t.lo, t.hi), (Target::BandGap, 1.5, 2.0));
        assert_eq!(t.distance(1.7), Some(0.0));
        assert!((t.distance(2.5).unwrap() - 0.5).abs() < 1e-12);
        let t = PropertyTarget::parse("formation_energy_per_atom < -1").unwrap();
        assert_eq!(t.hi, -1.0);
        assert_eq!(PropertyTarget::parse("min formation_energy_per_atom").unwrap().extreme, Some(Extreme::Min));
        assert!(PropertyTarget::parse("gap in [1, 2]").unwrap_err().contains("unknown property"));
        assert!(PropertyTarget::parse("band_gap in [2, 1]").unwrap_err().contains("above"));
        assert!(PropertyTarget::parse("bandgap > 1").unwrap_err().contains("did you mean band_gap?"));
        assert!(PropertyTarget::parse("max bandgap").unwrap_err().contains("did you mean band_gap?"));
        assert!(PropertyTarget::parse("density < 3").unwrap_err().contains("not a property the models predict"));
    }
}
