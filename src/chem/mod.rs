//! Chemistry tables and rules built on the element table: composition features, SMACT's oxidation-state rules
//! (charge neutrality, Pauling test, neutral stoichiometries) and the Hautier substitution λ table.
//!
//! Floor: depends on `crystal` only (the element table itself lives in `crystal::element`, because
//! densities and formulas need masses and electronegativities).

pub mod features;
pub mod oxidation;
pub mod substitution;

pub use crate::crystal::element::{Element, ElementData};
