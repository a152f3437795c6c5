//! Fuzz the extxyz reader: any bytes must give structures or an error, never a panic; whatever parses
//! must survive the analyses `geode info` runs and a write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(structures) = geode::io::parse_str(text, geode::io::Format::Extxyz, "fuzz.xyz") {
        for s in structures.iter().take(2) {
            if s.n_sites() <= 64 {
                let _ = s.structural_validity();
                let _ = s.reduced_formula();
                let _ = s.density();
            }
        }
        let _ = geode::io::to_string(&structures, geode::io::Format::Extxyz);
    }
});
