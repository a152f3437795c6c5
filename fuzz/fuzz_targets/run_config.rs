//! Fuzz run configs (the typed specs every run starts from): any TOML or JSON text, for any kind, gives a
//! config or an error naming the key, never a panic; a config that parses round-trips through the stored
//! form (`params` → `from_stored`) to the same parameters, and `validate` answers.
#![no_main]

use geode::engine::{RunConfig, RunSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let kind = RunSpec::KINDS[first as usize % RunSpec::KINDS.len()];
    let is_toml = first & 0x80 == 0;
    if let Ok(config) = RunConfig::parse(kind, text, is_toml, None) {
        let _ = config.spec.validate();
        let (k, params, version) = config.spec.to_stored();
        let back = RunSpec::from_stored(k, &params, version).expect("the stored form of a parsed config reads back");
        assert_eq!(back.params(), params, "stored parameters round-trip");
    }
});
