//! Geode: a studio for inverse design of inorganic crystals.
//!
//! Layers, lower never importing higher (see `ARCHITECTURE.md`):
//! 1. [`crystal`]: lattice, structure, composition, neighbours, symmetry, fingerprints, matching, validity.
//! 2. [`chem`] (oxidation states, substitution tables), [`io`] (file formats), [`data`] (datasets, splits).
//! 3. `cli`: the headless face (`geode info`, `geode convert`, `geode dataset`).

pub mod chem;
pub mod cli;
pub mod crystal;
pub mod data;
pub mod io;
