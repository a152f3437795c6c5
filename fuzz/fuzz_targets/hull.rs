//! Fuzz `geode hull`'s inputs: two energy tables (references, then queries, split at the first `|`) in any
//! bytes give a phase diagram and answers or errors naming file and line, never a panic. Whatever is
//! answered obeys the hull's invariants: finite values, decomposition fractions summing to 1 over
//! references of the query's system, references never below the hull, and the energy above the hull
//! equal to the query's formation energy minus the hull's.
#![no_main]

use geode::energy::{PhaseDiagram, PhaseEntry};
use geode::io::energy_csv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|&b| b == b'|').unwrap_or(data.len());
    let (refs, queries) = (&data[..cut], data.get(cut + 1..).unwrap_or(&[]));
    let Ok(refs) = energy_csv::parse(refs, "refs.csv") else { return };
    if refs.rows.len() > 64 {
        return;
    }
    let entries: Vec<PhaseEntry> =
        refs.rows.iter().map(|r| PhaseEntry::new(r.name.clone(), r.composition.clone(), r.energy_per_atom)).collect();
    let pd = match refs.kind {
        energy_csv::EnergyKind::Formation => PhaseDiagram::from_formation_energies(entries),
        _ => PhaseDiagram::new(entries),
    };
    let Ok(pd) = pd else { return };
    for i in 0..pd.entries().len() {
        if let Ok(p) = pd.entry_e_above_hull(i) {
            assert!(p.e_above_hull.is_finite(), "finite e_above_hull for entry {i}");
            assert!(p.e_above_hull > -1e-6, "entry {i} below its own hull by {}", p.e_above_hull);
        }
    }
    let Ok(queries) = energy_csv::parse(queries, "query.csv") else { return };
    for q in queries.rows.iter().take(16) {
        let Ok(p) = pd.e_above_hull(&q.composition, q.energy_per_atom) else { continue };
        assert!(p.e_above_hull.is_finite() && p.formation_energy_per_atom.is_finite());
        let total: f64 = p.decomposition.products.iter().map(|(_, x)| x).sum();
        assert!((total - 1.0).abs() < 1e-6, "fractions sum to {total}");
        let scale = 1.0 + p.formation_energy_per_atom.abs() + p.decomposition.formation_energy_per_atom.abs();
        let diff = p.formation_energy_per_atom - p.decomposition.formation_energy_per_atom - p.e_above_hull;
        assert!(diff.abs() <= 1e-9 * scale, "e_above_hull is formation minus hull");
        for (i, _) in &p.decomposition.products {
            let e = &pd.entries()[*i];
            assert!(
                e.composition.iter().all(|(el, _)| q.composition.iter().any(|(qe, _)| qe == el)),
                "decomposition into a phase outside the query's system"
            );
        }
    }
});
