//! `geode hull`: energy above the convex hull and decomposition products of query compositions, against
//! reference energies from a CSV table, the embedded ≤ 20-atom dataset (`--refs dataset`) or, by
//! default, the complete OQMD references ([`crate::data::hull_references`]); each decomposition phase
//! says where it comes from, and thin chemical systems are flagged.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;

use crate::data::Dataset;
use crate::energy::{HullPoint, PhaseDiagram, PhaseEntry};
use crate::io::energy_csv::{self, EnergyKind, EnergyTable};

fn entries_of(table: &EnergyTable) -> Vec<PhaseEntry> {
    table.rows.iter().map(|r| PhaseEntry::new(r.name.clone(), r.composition.clone(), r.energy_per_atom)).collect()
}

/// `geode hull [--refs REFS.csv] --query QUERIES.csv [--json]`.
pub fn run(refs: Option<&Path>, query: &Path, json_out: bool) -> anyhow::Result<i32> {
    let queries = energy_csv::read(query)?;
    report(refs, queries, &query.display().to_string(), json_out)
}

/// `geode hull --structures FILE… [--potential P] [--relax] [--refs REFS.csv | chgnet | --scale S.csv] [--json]`:
/// the structures' energies per atom from the potential (after relaxation when asked), placed by default on
/// the complete OQMD hull through the potential's fitted chemical potentials; with `--refs` on a hull of
/// total energies from the same potential (`chgnet`: the shipped CHGNet-only hull).
pub fn run_structures(
    refs: Option<&Path>,
    scale: Option<&Path>,
    system_refs: Option<&Path>,
    files: &[std::path::PathBuf],
    spec: &str,
    relax_first: bool,
    json_out: bool,
) -> anyhow::Result<i32> {
    use crate::energy::{FormationScale, HullChoice, PotentialHull};
    let calc = super::energy_cmd::potential(spec)?;
    // Decide the hull before any energy is computed, so a wrong combination fails at once.
    let chgnet_only = refs.is_some_and(|p| p == Path::new("chgnet") && !p.exists());
    let on_hull: Option<PotentialHull> = match (refs, scale) {
        _ if system_refs.is_some() => None,
        (Some(_), _) if chgnet_only => Some(
            PotentialHull::for_potential(&calc.name(), HullChoice::Potential)
                .map_err(anyhow::Error::msg)?
                .with_context(|| format!("--refs chgnet is the shipped CHGNet 0.3.0 hull; {} is another potential", calc.name()))?,
        ),
        (Some(_), _) => None,
        (None, Some(path)) => {
            let s = FormationScale::read(path).map_err(anyhow::Error::msg)?;
            if s.potential != calc.name() {
                bail!("{} was fitted for {:?}, not {:?}", path.display(), s.potential, calc.name());
            }
            Some(PotentialHull::dft(std::sync::Arc::new(s)))
        }
        (None, None) => Some(PotentialHull::for_potential(&calc.name(), HullChoice::Dft).map_err(anyhow::Error::msg)?.with_context(|| {
            format!(
                "{} has no fitted chemical potentials: fit them with `geode dataset energies --potential {spec} --out E.csv` and `geode dataset scale --energies E.csv --out S.csv`, then pass --scale S.csv (or --refs E.csv for a hull of its own energies)",
                calc.name()
            )
        })?),
    };
    let mut structures = Vec::new();
    for f in files {
        for (i, s) in crate::io::read_structures(f)?.into_iter().enumerate() {
            structures.push((format!("{}#{i}", f.display()), s));
        }
    }
    let opts = crate::energy::RelaxOptions::default();
    // Single points go to the potential as one batch.
    let mut single = if relax_first {
        Vec::new()
    } else {
        calc.calculate_batch(&structures.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>())
    }
    .into_iter();
    let mut rows = Vec::with_capacity(structures.len());
    for (k, (name, s)) in structures.iter().enumerate() {
        let energy = if relax_first {
            let r = crate::energy::relax(calc.as_ref(), s, &opts, &mut |_, _| std::ops::ControlFlow::Continue(()))
                .with_context(|| format!("relaxing {name}"))?;
            if !r.converged {
                eprintln!("{name}: relaxation not converged in {} steps; using its last energy", r.steps);
            }
            r.evaluation.energy
        } else {
            single.next().expect("one result per structure").with_context(|| format!("energy of {name}"))?.energy
        };
        let n = s.n_sites();
        let composition = s.composition();
        rows.push(energy_csv::EnergyRow {
            line: k + 1,
            name: name.clone(),
            formula: composition.reduced_formula(),
            composition,
            energy_per_atom: energy / n as f64,
        });
    }
    let what = format!("{} structures ({}{})", rows.len(), calc.name(), if relax_first { ", relaxed" } else { "" });
    if let Some(cache) = system_refs {
        let elements: Vec<std::collections::BTreeSet<crate::crystal::Element>> =
            structures.iter().map(|(_, s)| s.species().iter().copied().collect()).collect();
        let pd = own_system_hull(calc.as_ref(), cache, &elements, &opts)?;
        let source = format!("{} references of the same settings, cached in {}", calc.name(), cache.display());
        return print_results(&pd, &EnergyTable { kind: EnergyKind::Total, rows }, &source, &what, json_out);
    }
    match on_hull {
        None => report(refs, EnergyTable { kind: EnergyKind::Total, rows }, &what, json_out),
        Some(h) => print_results(h.diagram(), &placed_rows(&h, rows, &what), h.label(), &what, json_out),
    }
}

/// The hull of the chemical systems of `systems` with `calc`'s own references (`--system-refs CACHE.csv`): the
/// references not in the cache yet are relaxed with `calc` and appended to it one by one, with progress on
/// stderr; a reference that fails is reported and left out (a rerun tries it again).
fn own_system_hull(
    calc: &dyn crate::energy::Calculator,
    cache: &Path,
    systems: &[std::collections::BTreeSet<crate::crystal::Element>],
    opts: &crate::energy::RelaxOptions,
) -> anyhow::Result<PhaseDiagram> {
    use crate::energy::system_refs::{SystemReferences, system_references};
    let mut refs: Vec<crate::energy::references::Reference> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for els in systems {
        for r in system_references(Dataset::embedded(), els) {
            if seen.insert(r.name.clone()) {
                refs.push(r);
            }
        }
    }
    let mut table = SystemReferences::open(cache, &calc.name()).map_err(anyhow::Error::msg)?;
    let todo = refs.iter().filter(|r| !table.has(&r.name)).count();
    if todo > 0 {
        eprintln!("{todo} of {} references to relax with {} (cached in {})", refs.len(), calc.name(), cache.display());
    }
    let mut done = 0;
    let failed = table
        .compute_missing(calc, &refs, opts, &mut |r, res| {
            done += 1;
            match res {
                Ok(c) => eprintln!(
                    "  [{done}/{todo}] {} {}: {:.6} eV/atom ({} steps{})",
                    r.name,
                    c.formula,
                    c.energy_per_atom,
                    c.steps,
                    if c.converged { "" } else { ", not converged" }
                ),
                Err(e) => eprintln!("  [{done}/{todo}] {} {}: failed: {e}", r.name, r.structure.reduced_formula()),
            }
        })
        .map_err(anyhow::Error::msg)?;
    if !failed.is_empty() {
        eprintln!("{} references failed and are left out of the hull (a rerun tries them again)", failed.len());
    }
    let all: std::collections::BTreeSet<_> = systems.iter().flatten().copied().collect();
    table.hull(&all).with_context(|| format!("the hull of the references in {}", cache.display()))
}

/// The rows as the hull's own energies: formation energies on OQMD's scale for the DFT hull (a row whose
/// elements the scale lacks keeps a NaN energy, which the hull refuses with the row named), total energies
/// for a potential's own hull.
fn placed_rows(h: &crate::energy::PotentialHull, rows: Vec<energy_csv::EnergyRow>, what: &str) -> EnergyTable {
    let Some(scale) = h.scale() else { return EnergyTable { kind: EnergyKind::Total, rows } };
    let rows = rows
        .into_iter()
        .map(|mut r| {
            match scale.formation_energy_per_atom(&r.composition, r.energy_per_atom) {
                Ok(f) => r.energy_per_atom = f,
                Err(e) => {
                    eprintln!("{what}: {} ({}): {e}", r.name, r.formula);
                    r.energy_per_atom = f64::NAN;
                }
            }
            r
        })
        .collect();
    EnergyTable { kind: EnergyKind::Formation, rows }
}

fn report(refs: Option<&Path>, queries: EnergyTable, query_name: &str, json_out: bool) -> anyhow::Result<i32> {
    let query = Path::new(query_name);
    let owned: PhaseDiagram;
    let complete: std::sync::Arc<PhaseDiagram>;
    let formation_only = |what: &str| -> anyhow::Result<()> {
        if queries.kind != EnergyKind::Formation {
            bail!(
                "{} gives `energy_per_atom`; against {what} queries need `formation_energy_per_atom` (or pass --refs with total energies and elemental references)",
                query.display()
            );
        }
        Ok(())
    };
    let (pd, source): (&PhaseDiagram, String) = match refs {
        // `--refs dataset`: the embedded ≤ 20-atom training set only (the default before the complete set).
        Some(p) if p == Path::new("dataset") && !p.exists() => {
            formation_only("the embedded dataset")?;
            owned = PhaseDiagram::from_dataset(Dataset::embedded());
            (&owned, "embedded OQMD/ICSD dataset, ≤ 20 atoms (DFT formation energies)".to_string())
        }
        Some(p) => {
            let table = energy_csv::read(p)?;
            if table.kind != queries.kind {
                bail!(
                    "{} gives `{}` but {} gives `{}`: references and queries must use the same energy",
                    p.display(),
                    table.kind.column(),
                    query.display(),
                    queries.kind.column()
                );
            }
            owned = match table.kind {
                EnergyKind::Formation => PhaseDiagram::from_formation_energies(entries_of(&table)),
                EnergyKind::Total => PhaseDiagram::new(entries_of(&table)),
            }
            .with_context(|| format!("building the phase diagram from {}", p.display()))?;
            (&owned, p.display().to_string())
        }
        None => {
            formation_only("the OQMD references")?;
            complete = PhaseDiagram::complete();
            (
                &complete,
                "complete OQMD references: every OQMD-relaxed ICSD structure and OQMD's composition table".to_string(),
            )
        }
    };
    print_results(pd, &queries, &source, query_name, json_out)
}

/// Below this many known compositions (elements excluded) in a query's chemical system, the answer
/// comes with a warning: the hull there is thin, and a query can land below it for want of competitors.
const FEW_REFERENCES: usize = 3;

/// Where a reference phase comes from, by its name in the complete references.
fn source_of(name: &str) -> &'static str {
    if let Some(source) = crate::data::hull_references::Source::of_name(name) {
        source.label()
    } else if crate::crystal::Element::from_symbol(name).is_ok() {
        "elemental reference (0 eV/atom)"
    } else {
        "references"
    }
}

fn print_results(
    pd: &PhaseDiagram,
    queries: &EnergyTable,
    source: &str,
    query_name: &str,
    json_out: bool,
) -> anyhow::Result<i32> {
    let query = Path::new(query_name);
    let batch: Vec<_> = queries.rows.iter().map(|r| (r.composition.clone(), r.energy_per_atom)).collect();
    let results = pd.e_above_hull_batch(&batch);
    let describe = |p: &HullPoint| {
        p.decomposition
            .products
            .iter()
            .map(|(i, x)| {
                let e = &pd.entries()[*i];
                (e.name.clone(), e.composition.reduced_formula(), *x)
            })
            .collect::<Vec<_>>()
    };
    let mut failed = 0;
    if !json_out {
        println!("# references: {source}; e_above_hull in eV/atom, products as atom fractions");
        println!("{:<6} {:<20} {:>12} {:>12}  decomposition", "line", "formula", "energy", "e_above_hull");
    }
    for (row, res) in queries.rows.iter().zip(results) {
        match res {
            Ok(p) => {
                let products = describe(&p);
                let known = pd.compositions_in_system(&row.composition);
                let few = (known < FEW_REFERENCES).then(|| {
                    format!(
                        "only {known} compound{} known in {}: few competing phases, the hull there is thin",
                        if known == 1 { "" } else { "s" },
                        row.composition.chemical_system().replace('-', "–")
                    )
                });
                if json_out {
                    let d: Vec<_> = products
                        .iter()
                        .map(|(n, f, x)| json!({"name": n, "formula": f, "fraction": x, "source": source_of(n)}))
                        .collect();
                    println!(
                        "{}",
                        json!({"line": row.line, "name": row.name, "formula": row.formula, "energy_per_atom": row.energy_per_atom,
                               "formation_energy_per_atom": p.formation_energy_per_atom, "e_above_hull": p.e_above_hull,
                               "hull_formation_energy_per_atom": p.decomposition.formation_energy_per_atom, "decomposition": d,
                               "compounds_in_system": known, "warning": few})
                    );
                } else {
                    if let Some(w) = &few {
                        eprintln!("{} line {}: {}: {w}", query.display(), row.line, row.formula);
                    }
                    let d = products
                        .iter()
                        .map(|(n, f, x)| if n == f { format!("{x:.4} {f}") } else { format!("{x:.4} {f} [{n}]") })
                        .collect::<Vec<_>>()
                        .join(" + ");
                    println!(
                        "{:<6} {:<20} {:>12.6} {:>12.6}  {d}",
                        row.line, row.formula, row.energy_per_atom, p.e_above_hull
                    );
                }
            }
            Err(e) => {
                failed += 1;
                if json_out {
                    println!(
                        "{}",
                        json!({"line": row.line, "name": row.name, "formula": row.formula, "error": e.to_string()})
                    );
                } else {
                    eprintln!("{} line {}: {}: {e}", query.display(), row.line, row.formula);
                }
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
