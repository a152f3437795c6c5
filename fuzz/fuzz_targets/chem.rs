//! Fuzz `geode chem validate`, `stoichiometries` and `substitute`: any formula or species list gives an
//! answer or an error in bounded time, never a panic. SMACT's validity by enumeration and the charge-sum
//! dynamic programme give the same verdict wherever the enumeration is small enough to run.
#![no_main]

use geode::chem::oxidation::{self, OxidationSet, ValidityOptions};
use geode::chem::substitution::{Direction, SubstitutionTable};
use geode::crystal::Composition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let opts = ValidityOptions {
        use_pauling_test: flags & 1 == 0,
        include_alloys: flags & 2 == 0,
        oxidation_set: if flags & 4 == 0 { OxidationSet::Icsd24Consensus } else { OxidationSet::Icsd24 },
    };
    if let Ok(comp) = Composition::from_formula(text) {
        let by_sums = oxidation::validity_by_charge_sums(&comp, opts);
        if comp.n_elements() <= 6 {
            let smact = oxidation::validity(&comp, opts);
            assert_eq!(smact.is_valid(), by_sums.is_valid(), "{text}: enumeration and charge sums disagree");
        }
        let _ = by_sums.explain();
        let _ = oxidation::most_plausible(&comp, opts);
        let els = comp.sorted_elements();
        if els.len() <= 3 {
            let _ = oxidation::neutral_stoichiometries(&els, 1 + (flags as u32 >> 5), opts.oxidation_set);
        }
    }
    // Species with amounts, as `geode chem substitute Fe3+:2 O2-:3` reads them.
    let species: Vec<(String, f64)> = text
        .split_whitespace()
        .take(4)
        .filter_map(|t| {
            let (s, n) = t.split_once(':').unwrap_or((t, "1"));
            n.parse::<f64>().ok().map(|n| (s.to_string(), n))
        })
        .collect();
    if !species.is_empty() {
        let dir = if flags & 8 == 0 { Direction::ToThis } else { Direction::FromThis };
        let _ = SubstitutionTable::embedded().predict(&species, 1e-3, dir);
    }
});
