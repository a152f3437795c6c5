//! Searches over candidate crystals: enumeration by substitution into templates, uncertainty-aware
//! constraints and objectives with Pareto ranking (the screening funnel is the engine's `screen` job).
//! latent-space generation campaigns and their post-processing (symmetrise, relax, S.U.N. in `polish`), random symmetric structures through Wyckoff positions, and global
//! structure search (evolutionary, swarm, annealing, random search) in `evolve`.
//!
//! Layer 4: depends on `crystal`, `chem`, `data`, `ml` and `energy`.

/// Serde of a type as its text (`"band_gap in [1, 2]"`, `"min e_above_hull"`): serialised by `$text`,
/// read back by `parse`, so configs and the store hold what a user writes and it is parsed once.
macro_rules! serde_as_text {
    ($t:ty, $text:ident) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.$text())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                <$t>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod enumerate;
pub mod evolve;
pub mod generate;
pub mod objectives;
pub mod polish;
pub mod random_structure;
pub mod stability;
