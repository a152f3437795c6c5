//! `geode generate`: crystals from the crystal VAE into a folder of CIFs plus `generated.csv`;
//! `geode generate eval DIR`: the CDVAE figures of merit for any folder of crystals.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::crystal::Structure;
use crate::data::{Dataset, Split};
use crate::engine::executor::coordinator::relax_and_wait;
use crate::engine::executor::task::TaskSpec;
use crate::engine::executor::{ExecutorSpec, SlurmProfile};
use crate::ml::PropertyModel;
use crate::ml::generative::metrics::{EvalOptions, GenerationMetrics, Reference, evaluate};
use crate::ml::generative::{Constraints, CrystalVae, SampleOptions};
use crate::search::generate::{Campaign, CampaignSettings, Generated, Judged, Mode, PropertyTarget};
use crate::search::polish::{PolishSettings, Polished, Polisher, SunReport, sun};

#[derive(Debug, Subcommand)]
pub enum GenerateAction {
    /// Measure a generator on the embedded test split: reconstruction, latent optimisation of formation
    /// energy (SR5/SR10/SR15), band-gap target hit rates (each beside the forward model's hit rate on
    /// the test split's own crystals of that window)
    Benchmark {
        /// The generator (.safetensors or crystal-vae)
        #[arg(long, default_value = "crystal-vae")]
        model: String,
        /// Test crystals to reconstruct
        #[arg(long, default_value_t = 500, value_parser = crate::cli::whole)]
        n_reconstruct: usize,
        /// Optimisation paths (CDVAE: 100)
        #[arg(long, default_value_t = 100, value_parser = crate::cli::whole)]
        n_paths: usize,
        /// Crystals generated per band-gap window
        #[arg(long, default_value_t = 200, value_parser = crate::cli::whole)]
        n_target: usize,
        /// Langevin steps per noise level when decoding
        #[arg(long, default_value_t = 5, value_parser = crate::cli::whole)]
        steps_per_level: usize,
        /// Composition temperature (fractions ∝ p^(1/T); below 1 sharpens)
        #[arg(long, default_value_t = 1.0)]
        composition_temperature: f64,
        /// Keep the heads' rounded formulas even when they are not charge-balanced
        #[arg(long)]
        no_charge_balance: bool,
        /// Weight of the composition model's guidance on formulas (0 = off; see `geode generate --guidance`)
        #[arg(long, default_value_t = crate::ml::generative::sample::DEFAULT_GUIDANCE)]
        guidance: f64,
        /// Composition model that guides formulas towards the targets
        #[arg(long, default_value = crate::search::generate::DEFAULT_GUIDE_MODEL)]
        guide_model: String,
        /// Weight of the element-count prior on formulas (0 = off; see `geode generate --element-prior`)
        #[arg(long, default_value_t = crate::ml::generative::sample::DEFAULT_ELEMENT_PRIOR)]
        element_prior: f64,
        /// Codes decoded per crystal kept in the band-gap windows (see `geode generate --oversample`)
        #[arg(long, default_value_t = crate::search::generate::DEFAULT_OVERSAMPLE, value_parser = crate::cli::whole)]
        oversample: usize,
        /// Formulas tried per code in every decoding (see `geode generate --formula-candidates`)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=16))]
        formula_candidates: u64,
        /// Forward model that judges the generated crystals (hit rates)
        #[arg(long, default_value = "graph")]
        property_model: String,
        /// Also symmetrise and relax every valid crystal of the band-gap windows with this potential
        /// (e.g. chgnet) and report the hit rate of the relaxed crystals (forward model again) and the
        /// share both inside and ≤ 0.1 eV/atom above the hull (the complete OQMD hull for CHGNet)
        #[arg(long, value_name = "POTENTIAL")]
        relax: Option<String>,
        /// FIRE steps per relaxation
        #[arg(long, default_value_t = 300, value_parser = crate::cli::whole)]
        relax_steps: usize,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// The latent map without the studio: every dataset crystal encoded by the generator and projected to
    /// two dimensions (PCA, or t-SNE started from the PCA map), written as CSV (id, name, formula, split,
    /// x, y, formation energy, band gap); the summary gives how many of each crystal's 10 nearest codes
    /// stay among its 10 nearest map points
    Map {
        /// pca or tsne
        #[arg(long, default_value = "pca", value_parser = |s: &str| crate::ml::generative::projection::MapMethod::parse(s))]
        method: crate::ml::generative::projection::MapMethod,
        /// t-SNE perplexity (neighbours each code's affinities spread over)
        #[arg(long, default_value_t = crate::ml::generative::projection::TSNE_PERPLEXITY)]
        perplexity: f64,
        /// t-SNE epochs
        #[arg(long, default_value_t = crate::ml::generative::projection::TSNE_EPOCHS, value_parser = crate::cli::whole)]
        epochs: usize,
        /// Only this split (train, val, test); all crystals by default
        #[arg(long)]
        split: Option<String>,
        /// The generator (.safetensors or crystal-vae)
        #[arg(long, default_value = "crystal-vae")]
        model: String,
        /// The CSV to write
        #[arg(long)]
        out: PathBuf,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Refit a generator's latent prior (a Gaussian of the training split's codes) and rewrite the file
    FitPrior {
        /// The generator file (.safetensors) whose prior is refitted and rewritten
        model: PathBuf,
    },
    /// Score a folder of crystals (CIF, POSCAR, extxyz…): validity, uniqueness, novelty against the
    /// training split, Wasserstein distances to and coverage (COV-R, COV-P) of the test split
    Eval {
        /// Folder of crystals to score (CIF, POSCAR, extxyz, JSON files)
        dir: PathBuf,
        /// Forward model for the formation-energy distribution
        #[arg(long, default_value = "graph")]
        property_model: String,
        /// Also compute the training set's own distances to the test split (the floor)
        #[arg(long)]
        floor: bool,
        /// Skip coverage (CrystalNN fingerprints of every crystal and of the test split)
        #[arg(long)]
        no_coverage: bool,
        /// S.U.N.: symmetrise (moyo, 0.1 Å), relax each valid crystal with this potential (e.g. chgnet) and
        /// count stable (≤ 0.1 eV/atom above the hull: the complete OQMD hull for CHGNet), unique and novel ones
        #[arg(long, value_name = "POTENTIAL")]
        relax: Option<String>,
        /// S.U.N. on the first N crystals only (relaxation is the slow part)
        #[arg(long, value_name = "N", value_parser = crate::cli::whole)]
        relax_limit: Option<usize>,
        /// FIRE steps per relaxation
        #[arg(long, default_value_t = 300, value_parser = crate::cli::whole)]
        relax_steps: usize,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of crystals
    #[arg(long, default_value_t = 100, value_parser = crate::cli::whole)]
    pub n: usize,
    /// Property target, repeatable: 'band_gap in [1.5,2.0]', 'formation_energy_per_atom < -1', 'min formation_energy_per_atom'
    #[arg(long)]
    pub target: Vec<String>,
    /// Allowed elements, comma-separated (e.g. Li,Fe,P,O)
    #[arg(long, value_delimiter = ',')]
    pub elements: Vec<String>,
    /// Fewest atoms per cell
    #[arg(long, value_parser = crate::cli::whole)]
    pub min_atoms: Option<usize>,
    /// Most atoms per cell
    #[arg(long, value_parser = crate::cli::whole)]
    pub max_atoms: Option<usize>,
    /// sample (from the prior; with --target, moved towards it by latent optimisation), conditional
    /// (around training crystals whose DFT labels meet the --target, then optimised), around (the
    /// --seeds crystals), interpolate (between two --seeds)
    #[arg(long, default_value = "sample")]
    pub mode: String,
    /// Seed crystals for `around` and `interpolate` (files)
    #[arg(long, num_args = 1..)]
    pub seeds: Vec<PathBuf>,
    /// `around`, `conditional`: latent perturbation (standard deviations of the prior)
    #[arg(long, default_value_t = 0.5)]
    pub radius: f64,
    /// The generator: a .safetensors file written by `geode run train_generator`, or `crystal-vae` (shipped)
    #[arg(long, default_value = "crystal-vae")]
    pub model: String,
    /// Forward model for the reported properties
    #[arg(long, default_value = "graph")]
    pub property_model: String,
    /// More forward models (a user's .safetensors or TorchScript .pt, or shipped names), comma-separated:
    /// their properties are predicted for every crystal (more columns in generated.csv), and a --target
    /// may name them (e.g. 'refractive_index > 2.5'); the generator has no head for such a property, so
    /// of each crystal's --oversample codes the run keeps the one these models put nearest the target
    #[arg(long, value_delimiter = ',')]
    pub property_models: Vec<String>,
    /// Langevin steps per noise level
    #[arg(long, default_value_t = 5, value_parser = crate::cli::whole)]
    pub steps_per_level: usize,
    /// Random seed (codes and decoding)
    #[arg(long, default_value_t = 0, value_parser = crate::cli::whole_u64)]
    pub seed: u64,
    /// Composition temperature (fractions ∝ p^(1/T); below 1 sharpens)
    #[arg(long, default_value_t = 1.0)]
    pub composition_temperature: f64,
    /// Keep the heads' rounded formulas even when they are not charge-balanced (by default a formula
    /// that fails SMACT's test is replaced by the nearest charge-balanced one)
    #[arg(long)]
    pub no_charge_balance: bool,
    /// Leave collapsed sites (two atoms < 0.5 Å apart) as the denoiser left them (by default one atom
    /// of each such pair is moved into the largest void and the crystal annealed again from σ = 0.5 Å)
    #[arg(long)]
    pub no_repair: bool,
    /// Conditional mode: weight of the composition of the training crystal a code starts from in the
    /// decoded formula's element fractions ((1 − w)·head + w·that crystal); 0 (default) leaves the head
    /// alone. Measured with 200 crystals per window: 0.5 raises the 3.0–3.5 eV hit rate from 21 to 28 %
    /// but lowers 0.5–1.0 eV from 37 to 25 % (docs/generative.md)
    #[arg(long, default_value_t = 0.0)]
    pub composition_anchor: f64,
    /// With targets: weight w of a composition model's guidance on the choice of formula. Among the 64
    /// charge-balanced formulas nearest the composition head (within 6 nats), the decoder keeps the one
    /// with the smallest cost + w × penalty, the penalty being −ln P(the guide model puts the property
    /// in the window) under its calibrated 90 % interval (in nats, like the cost), or ∓ its prediction
    /// in standard deviations for min/max targets. 0 = off
    #[arg(long, default_value_t = crate::ml::generative::sample::DEFAULT_GUIDANCE)]
    pub guidance: f64,
    /// The composition model that guides formulas (`--guidance`)
    #[arg(long, default_value = crate::search::generate::DEFAULT_GUIDE_MODEL)]
    pub guide_model: String,
    /// Weight w of the element-count prior: each formula is chosen among the charge-balanced ones near
    /// the composition head by cost − w·b(k), b(k) being the model's bonus for k distinct elements,
    /// calibrated so that prior samples have k elements as often as training crystals. Without it,
    /// prior samples decode to single elements and 6–13-element alloys far too often
    /// (docs/generative.md). 0 = off
    #[arg(long, default_value_t = crate::ml::generative::sample::DEFAULT_ELEMENT_PRIOR)]
    pub element_prior: f64,
    /// Nats added to the cost of a formula that is charge-balanced only through a rare oxidation state
    /// (peroxide O⁻, Cl⁷⁺ beside F⁻…: under 5 % of the element's ICSD compounds), so common states win;
    /// 0 = off
    #[arg(long, default_value_t = crate::ml::generative::composition::RARE_STATE_PENALTY_NATS)]
    pub rare_state_penalty: f64,
    /// Decode each code with its K best formulas and keep the crystal that, encoded again, lands
    /// nearest the code (analysis by synthesis: more faithful decoding, e.g. reconstruction); costs K
    /// decodings per crystal. 1 = the best formula only
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub formula_candidates: u64,
    /// With targets (modes sample, conditional, around): decode this many codes per crystal and keep
    /// the one whose structure, encoded again by the generator, its own property heads put nearest
    /// the targets (cycle consistency; the forward model that reports the properties plays no part),
    /// plus, for a target the generator has no head for, the one --property-models put nearest it.
    /// 1 keeps every code; each step up costs one more decoding per crystal
    #[arg(long, default_value_t = crate::search::generate::DEFAULT_OVERSAMPLE, value_parser = crate::cli::whole)]
    pub oversample: usize,
    /// Post-process every valid crystal: symmetrise (moyo, 0.1 Å) and relax with this potential (e.g.
    /// chgnet); relaxed CIFs go to OUT/relaxed/ and generated.csv gains the relaxed energy, the distance
    /// above the hull (the complete OQMD hull for CHGNet), the space group, and the forward model's predictions for the relaxed
    /// crystal (`relaxed_band_gap`, … with σ, and `relaxed_distance_to_target`)
    #[arg(long, value_name = "POTENTIAL")]
    pub relax: Option<String>,
    /// FIRE steps per relaxation
    #[arg(long, default_value_t = 300, value_parser = crate::cli::whole)]
    pub relax_steps: usize,
    /// Where the --relax relaxations run: a TOML file holding an `[executor]` table as in run configs
    /// (`kind = "slurm"` and a profile, docs/cluster.md); each decoded batch's valid crystals go out as
    /// one job array (task folders in the profile's work_dir, default OUT/relax.cluster/). Default: here
    #[arg(long, value_name = "PROFILE.toml", requires = "relax")]
    pub executor: Option<PathBuf>,
    /// Crystals decoded together
    #[arg(long, default_value_t = 128, value_parser = crate::cli::whole)]
    pub batch: usize,
    /// Write only valid crystals (structure and SMACT composition)
    #[arg(long)]
    pub valid_only: bool,
    /// Output folder (created)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print a JSON summary
    #[arg(long)]
    pub json: bool,
}

pub fn run(action: Option<GenerateAction>, args: GenerateArgs) -> anyhow::Result<i32> {
    crate::ml::init_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    match action {
        Some(GenerateAction::Eval {
            dir,
            property_model,
            floor,
            no_coverage,
            relax,
            relax_limit,
            relax_steps,
            json,
        }) => {
            let sun = relax.map(|potential| PolishSettings::relaxing(&potential, relax_steps));
            eval(
                &dir,
                &property_model,
                EvalOptions { floor, coverage: !no_coverage },
                sun.map(|s| (s, relax_limit)),
                json,
            )
        }
        Some(GenerateAction::Benchmark {
            model,
            n_reconstruct,
            n_paths,
            n_target,
            steps_per_level,
            composition_temperature,
            no_charge_balance,
            guidance,
            guide_model,
            element_prior,
            oversample,
            formula_candidates,
            property_model,
            relax,
            relax_steps,
            json,
        }) => {
            let opts = SampleOptions {
                steps_per_level,
                composition_temperature,
                charge_balance: !no_charge_balance,
                guidance,
                element_prior,
                formula_candidates: formula_candidates as usize,
                ..Default::default()
            };
            let relax = relax.map(|p| PolishSettings::relaxing(&p, relax_steps));
            super::generate_bench::run(
                &model,
                n_reconstruct,
                n_paths,
                n_target,
                &opts,
                &guide_model,
                oversample,
                &property_model,
                relax,
                json,
            )
        }
        Some(GenerateAction::Map { method, perplexity, epochs, split, model, out, json }) => {
            map(method, perplexity, epochs, split.as_deref(), &model, &out, json)
        }
        Some(GenerateAction::FitPrior { model }) => {
            let mut vae = CrystalVae::load(&model)?;
            let n = vae.fit_latent_prior_on_train_split(None).map_err(anyhow::Error::msg)?;
            vae.save(&model)?;
            println!("{}: latent prior fitted to {n} training crystals", model.display());
            if let (Some(b), Some(p)) = (&vae.card.element_count_offsets, &vae.card.element_count_log_prior) {
                let row = |v: &[f64], f: &dyn Fn(f64) -> f64| {
                    (1..=5).map(|k| format!("{:.3}", f(v[k]))).collect::<Vec<_>>().join(" / ")
                };
                println!("training crystals with 1 / 2 / 3 / 4 / 5 elements: {}", row(p, &|x| x.exp()));
                println!("element-count bonus for 1 / 2 / 3 / 4 / 5 elements (nats): {}", row(b, &|x| x));
            }
            Ok(0)
        }
        None => generate(args),
    }
}

/// `geode generate map`.
fn map(
    method: crate::ml::generative::projection::MapMethod,
    perplexity: f64,
    epochs: usize,
    split: Option<&str>,
    model: &str,
    out: &Path,
    json: bool,
) -> anyhow::Result<i32> {
    use crate::ml::generative::projection::{MAP_NEIGHBOURS, Projection, neighbour_preservation};
    let t0 = std::time::Instant::now();
    let split = split
        .map(|s| Split::from_name(s).with_context(|| format!("unknown split {s:?} (train, val or test)")))
        .transpose()?;
    let ds = Dataset::embedded();
    let entries: Vec<_> = ds.entries.iter().filter(|e| split.is_none_or(|s| e.split == s)).collect();
    let vae = CrystalVae::open(model)?;
    let codes = vae.code_rows(entries.iter().map(|e| &e.structure)).map_err(anyhow::Error::msg)?;
    let encoded = t0.elapsed().as_secs_f64();
    let projection = Projection::fit(method, &codes, perplexity, epochs).map_err(anyhow::Error::msg)?;
    let points = projection.points(&codes);
    let fitted = t0.elapsed().as_secs_f64() - encoded;
    let mut w = csv::Writer::from_path(out).with_context(|| format!("cannot write {}", out.display()))?;
    w.write_record(["id", "name", "formula", "split", "x", "y", "formation_energy_per_atom", "band_gap"])?;
    for (e, p) in entries.iter().zip(&points) {
        w.write_record([
            e.id.to_string(),
            e.name.clone(),
            e.formula.clone(),
            e.split.name().to_string(),
            format!("{:.6}", p[0]),
            format!("{:.6}", p[1]),
            format!("{}", e.formation_energy_per_atom),
            e.band_gap.map(|g| g.to_string()).unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    // Neighbourhoods kept, on every n/1000-th crystal.
    let step = (codes.len() / 1000).max(1);
    let sample: Vec<usize> = (0..codes.len()).step_by(step).collect();
    let kept = neighbour_preservation(&codes, &points, MAP_NEIGHBOURS, &sample);
    let [xl, yl] = projection.axis_labels();
    let kl = match &projection {
        Projection::Tsne(t) => t.kl_divergence,
        Projection::Pca(_) => None,
    };
    let summary = json!({"method": projection.method(), "crystals": codes.len(), "x": xl, "y": yl, "neighbours_kept": kept, "neighbours_k": MAP_NEIGHBOURS, "neighbours_sampled": sample.len(), "kl_divergence": kl, "encode_seconds": encoded, "fit_seconds": fitted, "out": out.display().to_string()});
    if json {
        println!("{summary}");
    } else {
        println!(
            "{}: {} map of {} crystals ({xl} × {yl}) in {:.1} s (encoding {:.1} s)",
            out.display(),
            projection.method().label(),
            codes.len(),
            fitted,
            encoded
        );
        println!(
            "{:.1} % of each crystal's {MAP_NEIGHBOURS} nearest codes are among its {MAP_NEIGHBOURS} nearest map points ({} crystals sampled)",
            100.0 * kept,
            sample.len()
        );
    }
    Ok(0)
}

fn read_folder(dir: &Path) -> anyhow::Result<(Vec<Structure>, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for f in files {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let structure_like = matches!(ext.as_str(), "cif" | "vasp" | "poscar" | "extxyz" | "xyz" | "json" | "db")
            || name.starts_with("POSCAR")
            || name.starts_with("CONTCAR");
        if !structure_like {
            continue;
        }
        match crate::io::read_structures(&f) {
            Ok(s) => out.extend(s),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Ok((out, skipped))
}

fn print_metrics(m: &GenerationMetrics) {
    println!("crystals                 {}", m.n);
    println!("structural validity      {:.2} %", 100.0 * m.structural_validity);
    println!("compositional validity   {:.2} %", 100.0 * m.compositional_validity);
    println!("both                     {:.2} %", 100.0 * m.validity);
    println!("uniqueness (of valid)    {:.2} %", 100.0 * m.uniqueness);
    println!("novelty (of valid)       {:.2} %", 100.0 * m.novelty);
    println!("valid, unique and novel  {:.2} %", 100.0 * m.unique_novel);
    println!(
        "rare oxidation states    {:.2} % of {} charge-balanced compounds (< 5 % of the element's ICSD compounds); of nonmetals (O⁻, Cl⁷⁺…) {:.2} %",
        100.0 * m.rare_oxidation_share,
        m.n_charge_balanced,
        100.0 * m.rare_nonmetal_share
    );
    let w = &m.wasserstein;
    println!(
        "Wasserstein to the test split: density {:.4} g/cm³, elements {:.4}, formation energy {:.4} eV/atom ({})",
        w.density, w.n_elements, w.formation_energy, m.property_model
    );
    if let Some(f) = &m.wasserstein_floor {
        println!(
            "  training set itself:         density {:.4} g/cm³, elements {:.4}, formation energy {:.4} eV/atom",
            f.density, f.n_elements, f.formation_energy
        );
    }
    let Some(c) = &m.coverage else { return };
    println!(
        "coverage of the test split ({} crystals; cutoffs {} structure, {} composition): COV-R {:.2} %, COV-P {:.2} % (CDVAE's code: {:.2} %, {:.2} %); {} of {} generated fingerprinted",
        c.n_reference,
        c.structure_cutoff,
        c.composition_cutoff,
        100.0 * c.recall,
        100.0 * c.precision,
        100.0 * c.recall_cdvae,
        100.0 * c.precision_cdvae,
        c.n_fingerprinted,
        c.n_generated
    );
    if let Some(f) = &m.coverage_floor {
        println!(
            "  training set itself:         COV-R {:.2} %, COV-P {:.2} % (CDVAE's code: {:.2} %, {:.2} %)",
            100.0 * f.recall,
            100.0 * f.precision,
            100.0 * f.recall_cdvae,
            100.0 * f.precision_cdvae
        );
    }
}

fn print_sun(r: &SunReport) {
    println!(
        "S.U.N. after relaxation with {} on the {} (of the first {} crystals; {} valid ones relaxed, {} converged, {} on the hull)",
        r.potential, r.hull, r.n, r.n_valid, r.n_converged, r.n_on_hull
    );
    println!("  stable (≤ {} eV/atom above the hull)  {:.2} % ({})", r.stable_below, 100.0 * r.stable_rate, r.n_stable);
    println!("  stable and unique                    {}", r.n_stable_unique);
    println!("  S.U.N.                               {:.2} % ({})", 100.0 * r.sun_rate, r.n_sun);
    if let Some(m) = r.median_e_above_hull {
        println!("  median above the hull                {m:.3} eV/atom");
    }
}

fn eval(
    dir: &Path,
    property_model: &str,
    options: EvalOptions,
    sun_settings: Option<(PolishSettings, Option<usize>)>,
    json_out: bool,
) -> anyhow::Result<i32> {
    let (structures, skipped) = read_folder(dir)?;
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    if structures.is_empty() {
        bail!("{} holds no readable crystal files", dir.display());
    }
    let model = crate::ml::shipped::open(property_model)?;
    let ds = Dataset::embedded();
    let train: Vec<Structure> = ds.split(Split::Train).map(|e| e.structure.clone()).collect();
    let test: Vec<Structure> = ds.split(Split::Test).map(|e| e.structure.clone()).collect();
    // The potential first, so a bad spec fails before the slow part.
    let polisher = match sun_settings {
        Some((settings, limit)) => Some((Polisher::new(settings).map_err(anyhow::Error::msg)?, limit)),
        None => None,
    };
    let (m, facts) = evaluate(&structures, &Reference { train: &train, compare: &test }, model.as_ref(), options)?;
    let sun_report = match polisher {
        None => None,
        Some((polisher, limit)) => {
            let k = limit.unwrap_or(structures.len()).min(structures.len());
            let valid: Vec<bool> =
                facts.iter().take(k).map(|f| f.structurally_valid && f.compositionally_valid).collect();
            let bar = indicatif::ProgressBar::new(k as u64);
            if json_out {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let (r, _) = sun(&structures[..k], &valid, &train, &polisher, &|_| bar.inc(1), &|| false);
            bar.finish_and_clear();
            Some(r)
        }
    };
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"folder": dir.display().to_string(), "skipped_files": skipped, "metrics": m, "sun": sun_report})
            )?
        );
    } else {
        print_metrics(&m);
        if let Some(r) = &sun_report {
            print_sun(r);
        }
    }
    Ok(0)
}

fn generate(a: GenerateArgs) -> anyhow::Result<i32> {
    let out = a.out.clone().context("--out DIR is required (the folder for the CIFs and generated.csv)")?;
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let mode = match a.mode.as_str() {
        "sample" => Mode::Sample,
        "around" => Mode::Around,
        "interpolate" => Mode::Interpolate,
        "conditional" => Mode::Conditional,
        m => bail!("unknown --mode {m:?}: use sample, conditional, around or interpolate"),
    };
    let mut seeds = Vec::new();
    for f in &a.seeds {
        seeds.extend(crate::io::read_structures(f)?);
    }
    let vae = CrystalVae::open(&a.model)?;
    // The forward models first: opening one registers its properties, which the targets may name.
    let mut models = vec![crate::ml::shipped::open(&a.property_model)?];
    for m in &a.property_models {
        models.push(crate::ml::shipped::open(m).with_context(|| format!("--property-models {m}"))?);
    }
    let model = crate::ml::joined::Joined::new(models)?;
    let settings = CampaignSettings {
        mode,
        radius: a.radius,
        targets: a
            .target
            .iter()
            .map(|t| PropertyTarget::parse(t))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        constraints: Constraints { elements: a.elements.clone(), min_atoms: a.min_atoms, max_atoms: a.max_atoms },
        sampling: SampleOptions {
            steps_per_level: a.steps_per_level,
            composition_temperature: a.composition_temperature,
            charge_balance: !a.no_charge_balance,
            repair_rounds: if a.no_repair { 0 } else { SampleOptions::default().repair_rounds },
            composition_anchor: a.composition_anchor,
            guidance: a.guidance,
            element_prior: a.element_prior,
            formula_candidates: a.formula_candidates as usize,
            rare_state_penalty: a.rare_state_penalty,
            ..Default::default()
        },
        guide_model: a.guide_model.clone(),
        oversample: a.oversample,
        ..Default::default()
    };
    let campaign = Campaign::new(vae, settings, &seeds).map_err(anyhow::Error::msg)?;
    campaign.check_forward_model(&model).map_err(anyhow::Error::msg)?;
    for note in &campaign.notes {
        eprintln!("note: {note}");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let csv_path = out.join("generated.csv");
    let mut csv = std::fs::File::create(&csv_path).with_context(|| format!("cannot write {}", csv_path.display()))?;
    let prop_names: Vec<&str> = model.targets().iter().map(|t| t.name()).collect();
    let mut header = vec![
        "file",
        "formula",
        "n_sites",
        "structurally_valid",
        "compositionally_valid",
        "novel",
        "distance_to_target",
        "head_formation_energy_per_atom",
        "head_band_gap",
        "out_of_domain",
        "out_of_domain_of",
    ];
    let std_names: Vec<String> = prop_names.iter().map(|n| format!("{n}_std")).collect();
    for (n, s) in prop_names.iter().zip(&std_names) {
        header.push(n);
        header.push(s);
    }
    // The forward model again on each relaxed crystal, under the same names with a `relaxed_` prefix.
    let relaxed_names: Vec<String> =
        prop_names.iter().flat_map(|n| [format!("relaxed_{n}"), format!("relaxed_{n}_std")]).collect();
    let polisher = match &a.relax {
        Some(p) => Some(Polisher::new(PolishSettings::relaxing(p, a.relax_steps)).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let cluster = match a.executor.as_deref().map(ExecutorSpec::read).transpose()? {
        Some(ExecutorSpec::Slurm(profile)) => Some(profile),
        _ => None,
    };
    if polisher.is_some() {
        header.extend([
            "relaxed_file",
            "relaxed_formula",
            "relaxed_energy_per_atom",
            "relaxed_e_above_hull",
            "relaxed_space_group",
            "relaxed_novel",
            "relaxed_distance_to_target",
        ]);
        header.extend(relaxed_names.iter().map(String::as_str));
        header.push("relax_note");
        std::fs::create_dir_all(out.join("relaxed"))
            .with_context(|| format!("cannot create {}", out.join("relaxed").display()))?;
    }
    let relax_columns = if polisher.is_some() {
        header.len() - header.iter().position(|h| *h == "relaxed_file").unwrap_or(header.len())
    } else {
        0
    };
    writeln!(csv, "{}", header.join(","))?;
    let t0 = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(a.n as u64);
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let (mut built, mut written, mut valid, mut hits, mut failures) = (0usize, 0usize, 0usize, 0usize, Vec::new());
    let (mut relaxed, mut stable_novel, mut relaxed_hits) = (0usize, 0usize, 0usize);
    let mut start = 0;
    while start < a.n {
        let count = a.batch.max(1).min(a.n - start);
        let results = campaign
            .generate(start, count, a.n, a.seed, &model, &mut |_, _| {}, &|| false)
            .map_err(anyhow::Error::msg)?;
        let polished: Vec<Option<Polished>> = if let (Some(p), Some(profile)) = (&polisher, &cluster) {
            let potential = a.relax.as_deref().unwrap_or_default().trim();
            polish_on_cluster(p, potential, profile, &results, &out.join("relax"))?
        } else if let Some(p) = &polisher {
            // Relaxed here, batched: each thread relaxes its share of the valid crystals at once.
            let valid: Vec<Option<&Structure>> =
                results.iter().map(|r| r.as_ref().ok().filter(|g| g.valid()).map(|g| &g.structure)).collect();
            p.polish_some(&valid, &|| false)
        } else {
            vec![None; results.len()]
        };
        let relaxed_structures: Vec<Structure> =
            polished.iter().flatten().filter(|p| p.energy_per_atom.is_some()).map(|p| p.structure.clone()).collect();
        let mut judged = campaign.judge_each(&relaxed_structures, &model).into_iter();
        // Per built crystal, the models whose domain of applicability it lies outside.
        let built_structures: Vec<Structure> =
            results.iter().filter_map(|r| r.as_ref().ok().map(|g| g.structure.clone())).collect();
        let mut domains = model.outside_domain_of(&built_structures)?.map(Vec::into_iter);
        for (r, p) in results.into_iter().zip(polished) {
            let judged_relaxed = match p.as_ref().filter(|p| p.energy_per_atom.is_some()).and_then(|_| judged.next()) {
                Some(Err(e)) => {
                    eprintln!(
                        "warning: crystal {}: the forward model cannot read the relaxed crystal ({e}); its relaxed_ prediction columns are left empty",
                        written + 1
                    );
                    None
                }
                j => j.and_then(Result::ok),
            };
            match r {
                Err(e) => failures.push(e),
                Ok(g) => {
                    built += 1;
                    let outside = domains.as_mut().and_then(Iterator::next);
                    valid += usize::from(g.valid());
                    hits += usize::from(g.valid() && g.distance_to_target == Some(0.0));
                    if a.valid_only && !g.valid() {
                        continue;
                    }
                    written += 1;
                    let relaxed_row = match (&p, &polisher) {
                        (Some(p), Some(pol)) => {
                            let novel = campaign.is_novel(&p.structure);
                            relaxed += usize::from(p.energy_per_atom.is_some());
                            stable_novel += usize::from(pol.is_stable(p) && novel);
                            relaxed_hits += usize::from(judged_relaxed.as_ref().is_some_and(|j| j.1 == Some(0.0)));
                            Some(RelaxedRow { polished: p, novel, judged: judged_relaxed })
                        }
                        _ => None,
                    };
                    write_one(&out, &mut csv, written, &g, outside.as_deref(), relax_columns, relaxed_row)?;
                }
            }
        }
        start += count;
        bar.set_position(start as u64);
    }
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let summary = json!({
        "requested": a.n, "built": built, "written": written, "valid": valid,
        "target_hits": if campaign.targets.is_empty() { serde_json::Value::Null } else { json!(hits) },
        "targets": campaign.targets.iter().map(|t| t.describe()).collect::<Vec<_>>(),
        "seconds": secs, "structures_per_second": a.n as f64 / secs.max(1e-9),
        "out": out.display().to_string(), "failures": failures.len(),
        "relaxed": polisher.as_ref().map(|_| relaxed), "stable_novel_after_relaxation": polisher.as_ref().map(|_| stable_novel),
        "target_hits_after_relaxation": if campaign.targets.is_empty() || polisher.is_none() { serde_json::Value::Null } else { json!(relaxed_hits) },
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{written} crystals written to {} ({built} of {} decoded, {valid} valid; {:.1} s, {:.2} crystals/s)",
            out.display(),
            a.n,
            secs,
            a.n as f64 / secs.max(1e-9)
        );
        if !campaign.targets.is_empty() {
            println!("inside the target window (forward model {}): {hits} of {valid} valid", model.name());
        }
        if let Some(p) = &a.relax {
            println!(
                "relaxed with {p}: {relaxed} of {valid} valid; {stable_novel} stable (≤ 0.1 eV/atom above the hull) and novel (CIFs in {})",
                out.join("relaxed").display()
            );
            if !campaign.targets.is_empty() {
                println!(
                    "inside the target window after relaxation (forward model {} on the relaxed crystal): {relaxed_hits} of {relaxed} relaxed",
                    model.name()
                );
            }
        }
        if let Some(f) = failures.first() {
            println!("{} codes gave no crystal, e.g.: {f}", failures.len());
        }
    }
    Ok(0)
}

/// A CSV field: quoted when it holds a comma, quote or newline.
fn csv_text(t: &str) -> String {
    if t.contains([',', '"', '\n']) { format!("\"{}\"", t.replace('"', "\"\"")) } else { t.to_string() }
}

/// One relaxed crystal's columns: the polished crystal, whether it is novel, and the forward model's
/// predictions for it with its distance to the targets ([`Campaign::judge`]; `None` when not relaxed).
struct RelaxedRow<'a> {
    polished: &'a Polished,
    novel: bool,
    judged: Option<Judged>,
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    out: &Path,
    csv: &mut std::fs::File,
    k: usize,
    g: &Generated,
    outside_domain_of: Option<&[String]>,
    relax_columns: usize,
    relaxed: Option<RelaxedRow>,
) -> anyhow::Result<()> {
    let name = format!("gen_{k:05}.cif");
    let s = &g.structure;
    std::fs::write(out.join(&name), crate::io::cif::write(s, &format!("gen_{k:05}_{}", s.reduced_formula())))
        .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
    let mut row = vec![
        name,
        s.reduced_formula(),
        s.n_sites().to_string(),
        g.structurally_valid.to_string(),
        g.compositionally_valid.to_string(),
        g.novel.to_string(),
        g.distance_to_target.map(|d| format!("{d:.4}")).unwrap_or_default(),
        format!("{:.4}", g.head_properties[0]),
        format!("{:.4}", g.head_properties[1]),
        // Empty where no forward model records a domain of applicability.
        outside_domain_of.map(|m| (!m.is_empty()).to_string()).unwrap_or_default(),
        csv_text(&outside_domain_of.map(|m| m.join(";")).unwrap_or_default()),
    ];
    for (_, p) in &g.predicted {
        row.push(format!("{:.4}", p.mean));
        row.push(format!("{:.4}", p.std));
    }
    if relax_columns > 0 {
        match relaxed {
            Some(RelaxedRow { polished: p, novel, judged }) if p.energy_per_atom.is_some() => {
                let rname = format!("relaxed/gen_{k:05}.cif");
                let rs = &p.structure;
                std::fs::write(
                    out.join(&rname),
                    crate::io::cif::write(rs, &format!("gen_{k:05}_{}_relaxed", rs.reduced_formula())),
                )
                .with_context(|| format!("cannot write {}", out.join(&rname).display()))?;
                let f4 = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
                row.extend([
                    rname,
                    rs.reduced_formula(),
                    f4(p.energy_per_atom),
                    f4(p.e_above_hull),
                    p.space_group.map(|g| g.to_string()).unwrap_or_default(),
                    novel.to_string(),
                ]);
                let (predicted, distance) = judged.unwrap_or_default();
                row.push(f4(distance));
                for (_, q) in &predicted {
                    row.extend([format!("{:.4}", q.mean), format!("{:.4}", q.std)]);
                }
                row.push(csv_text(p.note.as_deref().unwrap_or("")));
            }
            Some(RelaxedRow { polished: p, .. }) => {
                row.extend(std::iter::repeat_n(String::new(), relax_columns - 1));
                row.push(csv_text(p.note.as_deref().unwrap_or("not relaxed")));
            }
            None => row.extend(std::iter::repeat_n(String::new(), relax_columns)),
        }
    }
    writeln!(csv, "{}", row.join(","))?;
    Ok(())
}

/// `--relax` with `--executor`: the valid crystals of one decoded batch symmetrised here, relaxed on the
/// cluster as one job array (the call waits for it), and placed on the hull here; the same `Polished` a
/// local [`Polisher::polish`] gives. Task folders go to the profile's work_dir (default `ROOT.cluster/`).
fn polish_on_cluster(
    polisher: &Polisher,
    potential: &str,
    profile: &SlurmProfile,
    results: &[Result<Generated, String>],
    root: &Path,
) -> anyhow::Result<Vec<Option<Polished>>> {
    let mut prepared: Vec<Option<Polished>> = results
        .iter()
        .map(|r| match r {
            Ok(g) if g.valid() => Some(polisher.prepare(&g.structure)),
            _ => None,
        })
        .collect();
    let (mut items, mut tasks) = (Vec::new(), Vec::new());
    for (i, p) in prepared.iter_mut().enumerate() {
        if let Some(p) = p
            && polisher.relaxer(p).is_some()
        {
            items.push(i);
            tasks.push(TaskSpec::relax(&p.structure, potential, &polisher.relax_options(), 0));
        }
    }
    let outcomes = relax_and_wait(
        profile,
        root,
        &tasks,
        profile.tasks_per_array_task.max(1),
        &mut |level, message| eprintln!("[{level}] {message}"),
        &|| false,
    )
    .map_err(anyhow::Error::msg)?;
    let mut outcomes = items.into_iter().zip(outcomes).peekable();
    Ok(prepared
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p?;
            match outcomes.next_if(|(k, _)| *k == i) {
                Some((_, o)) => Some(polisher.finish(p, o.map(|r| (r.structure(), r.energy, r.steps, r.converged)))),
                None => Some(polisher.finish_unrelaxed(p)),
            }
        })
        .collect())
}
