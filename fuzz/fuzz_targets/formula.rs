//! Fuzz the formula parser: any text gives a composition or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = geode::crystal::Composition::from_formula(text) {
        let _ = c.reduced_formula();
        let _ = c.formula();
    }
});
