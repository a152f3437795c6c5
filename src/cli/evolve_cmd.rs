//! `geode evolve`: random symmetric structures (`random`) and the ground-state recovery benchmark
//! (`benchmark`) of the global structure search. Searches as runs go through `geode run evolve`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::crystal::matcher::StructureMatcher;
use crate::crystal::{Composition, Element, Structure};
use crate::data::Dataset;
use crate::energy::spec::from_spec;
use crate::energy::{RelaxOptions, relax};
use crate::search::evolve::{self, Algorithm, Evaluator, Evolution, EvolveSettings, ObjectiveSpec};
use crate::search::random_structure::{RandomOptions, feasible_space_groups, random_in_groups, random_symmetric};

#[derive(Debug, Subcommand)]
pub enum EvolveAction {
    /// Random symmetric structures through Wyckoff positions (AIRSS/PyXtal style), written as CIFs
    Random {
        /// Formula of the cell, e.g. SrTiO3 or Na4Cl4 (atoms per primitive cell)
        #[arg(long)]
        composition: String,
        /// How many structures to make
        #[arg(long, default_value_t = 10, value_parser = crate::cli::whole)]
        n: usize,
        /// Space-group number (1-230); default: a random feasible group per structure
        #[arg(long, value_parser = crate::cli::space_group)]
        space_group: Option<u8>,
        /// Random seed
        #[arg(long, default_value_t = 0, value_parser = crate::cli::whole_u64)]
        seed: u64,
        /// Folder the CIFs go to (created if missing)
        #[arg(long)]
        out: PathBuf,
    },
    /// Ground-state recovery: for each system, searches from independent seeds with the potential and
    /// the same budget of plain random symmetric search; success rates and structures evaluated to the
    /// first hit (a structure matching the lowest-energy dataset polymorph after relaxation)
    Benchmark {
        /// Comma-separated formulas; `FORMULA@N/M` restricts the ground state to dataset polymorphs in
        /// space groups N or M (TiO2@136/141: rutile or anatase, whichever the potential ranks lower)
        #[arg(long, default_value = "Si,NaCl,MgO,ZnO,TiO2@136/141,GaAs,SrTiO3")]
        systems: String,
        /// Independent searches (seeds) per system and method
        #[arg(long, default_value_t = 10, value_parser = crate::cli::whole_u64)]
        seeds: u64,
        /// Structures evaluated per search
        #[arg(long, default_value_t = 60, value_parser = crate::cli::whole)]
        budget: usize,
        /// Structures per generation
        #[arg(long, default_value_t = 10, value_parser = crate::cli::whole)]
        population: usize,
        /// ga, anneal, swarm or bo (compared with random)
        #[arg(long, default_value = "ga")]
        algorithm: String,
        /// eV/Å
        #[arg(long, default_value_t = 0.1)]
        fmax: f64,
        /// FIRE steps per relaxation at most
        #[arg(long, default_value_t = 250, value_parser = crate::cli::whole)]
        steps: usize,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
}

pub fn run(action: EvolveAction) -> anyhow::Result<i32> {
    crate::ml::init_threads(1);
    match action {
        EvolveAction::Random { composition, n, space_group, seed, out } => {
            random(&composition, n, space_group, seed, &out)
        }
        EvolveAction::Benchmark { systems, seeds, budget, population, algorithm, fmax, steps, json } => {
            let alg: Algorithm = serde_json::from_value(json!(algorithm))
                .with_context(|| format!("--algorithm {algorithm:?}: use ga, anneal, swarm or bo"))?;
            benchmark(&systems, seeds, budget, population, alg, fmax, steps, json)
        }
    }
}

fn random(composition: &str, n: usize, space_group: Option<u8>, seed: u64, out: &PathBuf) -> anyhow::Result<i32> {
    let comp = Composition::from_formula(composition)?;
    let counts: Vec<(Element, usize)> = comp.iter().map(|(e, x)| (e, x.round() as usize)).collect();
    if counts.iter().zip(comp.iter()).any(|((_, k), (_, x))| (*k as f64 - x).abs() > 1e-9 || *k == 0) {
        bail!("--composition {composition:?}: give whole numbers of atoms per cell");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let opts = RandomOptions::default();
    let groups = match space_group {
        Some(g) => vec![g],
        None => feasible_space_groups(&counts, &[], &mut rng),
    };
    if groups.is_empty() {
        bail!("no space group holds {composition} in one primitive cell");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut made = 0;
    for i in 0..n {
        let r = match space_group {
            Some(g) => random_symmetric(&counts, g, &opts, &mut rng),
            None => random_in_groups(&counts, &groups, &opts, &mut rng),
        };
        let Some(r) = r else { continue };
        let name = format!("{:04}_{}_sg{}.cif", i, r.structure.reduced_formula(), r.space_group);
        std::fs::write(out.join(&name), crate::io::cif::write(&r.structure, &r.structure.reduced_formula()))?;
        println!("{name}  {} sites  drawn in {}  {}", r.structure.n_sites(), r.space_group, r.wyckoffs.join(" "));
        made += 1;
    }
    if made == 0 {
        match space_group {
            Some(g) => bail!("no structure could be drawn: space group {g} may not hold {composition}"),
            None => bail!("no structure could be drawn for {composition} in any feasible space group"),
        }
    }
    eprintln!("{made} structures in {}", out.display());
    if made < n {
        // Asked for n, got fewer: say so and exit non-zero (the ones drawn stay written).
        eprintln!(
            "only {made} of {n} structures could be drawn for {composition} (random draws failed the minimum-distance or cell checks); try another --seed or --space-group"
        );
        return Ok(1);
    }
    Ok(0)
}

/// The lowest-energy dataset polymorph of `formula` (≤ 20 atoms, in one of `groups` when given) after
/// relaxation with the potential.
fn ground_state(formula: &str, groups: &[u8], eval: &Evaluator) -> anyhow::Result<(Structure, f64, String)> {
    let ds = Dataset::embedded();
    let red = Composition::from_formula(formula)?.reduced_formula();
    let polymorphs: Vec<_> = ds
        .with_formula(&red)
        .into_iter()
        .filter(|e| {
            e.structure.n_sites() <= 20
                && (groups.is_empty() || e.structure.space_group_number(0.1).is_ok_and(|g| groups.contains(&g)))
        })
        .collect();
    if polymorphs.is_empty() {
        bail!("{formula}: no polymorph with at most 20 atoms in the dataset");
    }
    let opts = RelaxOptions { fmax: 0.02, max_steps: 1000, ..RelaxOptions::default() };
    let mut best: Option<(Structure, f64, String)> = None;
    for e in polymorphs {
        let calc = eval.calc.as_ref().context("a potential")?;
        let r = relax(calc.as_ref(), &e.structure, &opts, &mut |_, _| std::ops::ControlFlow::Continue(()))?;
        let epa = r.evaluation.energy / r.structure.n_sites() as f64;
        let sg = r.structure.symmetry(0.1).map(|s| s.symbol()).unwrap_or_default();
        if best.as_ref().is_none_or(|b| epa < b.1) {
            best = Some((r.structure, epa, format!("oqmd-icsd-{} ({sg})", e.id)));
        }
    }
    best.context("no polymorph relaxed")
}

fn quartiles(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let x = p * (v.len() - 1) as f64;
        let (i, f) = (x.floor() as usize, x.fract());
        v[i] * (1.0 - f) + v[(i + 1).min(v.len() - 1)] * f
    };
    json!({"median": q(0.5), "q1": q(0.25), "q3": q(0.75), "min": v[0], "max": v[v.len() - 1]})
}

#[allow(clippy::too_many_arguments)]
fn benchmark(
    systems: &str,
    seeds: u64,
    budget: usize,
    population: usize,
    alg: Algorithm,
    fmax: f64,
    steps: usize,
    json_out: bool,
) -> anyhow::Result<i32> {
    let eval = Evaluator {
        calc: Some(from_spec("chgnet")?),
        relax: RelaxOptions { fmax, max_steps: steps, ..RelaxOptions::default() },
        objectives: vec![ObjectiveSpec::Energy],
        hull: None,
        model: None,
    };
    let matcher = StructureMatcher::default();
    for system in systems.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let t0 = Instant::now();
        let (formula, groups) = match system.split_once('@') {
            Some((f, g)) => (
                f,
                g.split('/')
                    .map(|x| {
                        x.trim().parse::<u8>().with_context(|| format!("{system}: {x:?} is not a space-group number"))
                    })
                    .collect::<anyhow::Result<Vec<u8>>>()?,
            ),
            None => (system, Vec::new()),
        };
        let (target, e0, name) = ground_state(formula, &groups, &eval)?;
        let unit: usize = Composition::from_formula(formula)?.num_atoms().round() as usize;
        let z = (target.n_sites() / unit.max(1)).max(2);
        eprintln!(
            "{formula}: ground state {name}, {} atoms, {e0:.4} eV/atom; searching with 1–{z} formula units",
            target.n_sites()
        );
        let mut per_alg = serde_json::Map::new();
        for a in [alg, Algorithm::Random] {
            let mut firsts = Vec::new();
            let mut evaluated = 0;
            let mut seconds = 0.0;
            for seed in 0..seeds {
                let settings = EvolveSettings {
                    composition: formula.into(),
                    formula_units: [1, z],
                    algorithm: a,
                    population,
                    budget,
                    ..EvolveSettings::default()
                };
                let mut evo = Evolution::new(settings, seed).map_err(anyhow::Error::msg)?;
                let hit = |s: &Structure, e: f64| e <= e0 + 0.002 || matcher.fit(s, &target);
                let mut first: Option<usize> = None;
                let t = Instant::now();
                evolve::run(&mut evo, &eval, |evo, ids| {
                    first = first.or_else(|| {
                        ids.iter().copied().find(|&i| {
                            let ind = &evo.state.individuals[i];
                            ind.ok() && hit(&ind.structure, ind.energy_per_atom)
                        })
                    });
                    first.is_some()
                });
                seconds += t.elapsed().as_secs_f64();
                evaluated += evo.evaluated();
                let best = evo.best().map_or(f64::NAN, |b| b.energy_per_atom);
                eprintln!(
                    "  {:6} seed {seed}: {} after {} structures (best {best:.4} eV/atom)",
                    a.name(),
                    first.map_or("no hit".to_string(), |f| format!("hit at {}", f + 1)),
                    evo.evaluated()
                );
                if let Some(f) = first {
                    firsts.push((f + 1) as f64);
                }
            }
            per_alg.insert(a.name().into(), json!({
                "success": firsts.len(), "runs": seeds, "success_rate": firsts.len() as f64 / seeds as f64,
                "evaluated_to_first_hit": quartiles(firsts.clone()), "structures_evaluated": evaluated, "seconds": seconds,
                "structures_per_second": evaluated as f64 / seconds.max(1e-9),
            }));
        }
        let med = |k: &str| per_alg[k]["evaluated_to_first_hit"]["median"].as_f64();
        let rate = |k: &str| per_alg[k]["success_rate"].as_f64().unwrap_or(0.0);
        let row = json!({
            "system": formula, "ground_state": name, "ground_state_atoms": target.n_sites(), "ground_state_energy_per_atom": e0,
            "formula_units": [1, z], "budget": budget, "population": population,
            "results": per_alg,
            "success_ratio": if rate("random") > 0.0 { Some(rate(alg.name()) / rate("random")) } else { None },
            "median_speedup": match (med("random"), med(alg.name())) { (Some(r), Some(g)) if g > 0.0 => Some(r / g), _ => None },
            "seconds": t0.elapsed().as_secs_f64(),
        });
        if !json_out {
            let r = &row["results"];
            println!(
                "{formula:8} {:>5}: success {}/{seeds}, median first hit {}   random: {}/{seeds}, median {}",
                alg.name(),
                r[alg.name()]["success"],
                r[alg.name()]["evaluated_to_first_hit"]["median"],
                r["random"]["success"],
                r["random"]["evaluated_to_first_hit"]["median"]
            );
        } else {
            println!("{row}");
        }
    }
    Ok(0)
}
