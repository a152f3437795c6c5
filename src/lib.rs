//! Geode: a studio for inverse design of inorganic crystals.
//!
//! Layers, lower never importing higher (see `ARCHITECTURE.md`):
//! 1. [`crystal`]: lattice, structure, composition, neighbours, symmetry, fingerprints, matching, validity.
//! 2. [`chem`] (oxidation states, substitution tables), [`io`] (file formats), [`data`] (datasets, splits).
//! 3. [`ml`]: property models on libtorch (composition and graph ensembles, TorchScript); [`energy`]:
//!    convex-hull phase diagrams.
//! 4. [`search`]: candidate enumeration (substitution into templates); searches to come.
//! 5. [`engine`]: jobs, the shared thread pool, the SQLite project store.
//! 6. [`cli`] and [`studio`]: the headless face and the desktop face.

pub mod chem;
pub mod cli;
pub mod crystal;
pub mod data;
pub mod energy;
pub mod engine;
pub mod io;
pub mod ml;
pub mod search;
#[cfg(feature = "studio")]
pub mod studio;

/// The message a caught panic carried (`panic!("…")` gives a `&str` or a `String`), for the boundaries
/// that turn a panic into an error: the CLI's panic hook, the engine's runner, the studio's worker and the
/// libtorch calls.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown failure".into())
}
