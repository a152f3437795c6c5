//! The 288 structures of the AFLOW Library of Crystallographic Prototypes, Part 1 (Mehl et al.,
//! Comput. Mater. Sci. 136, S1 (2017)), embedded from pymatgen's copy (`assets/aflow_prototypes.json`,
//! made by `scripts/make_aflow_prototypes.py`; MIT). Each prototype is a real compound's structure (rock
//! salt holds Na and Cl), so it can be substituted like any dataset template.

use std::sync::OnceLock;

use nalgebra::Vector3;
use serde::Deserialize;

use crate::crystal::{Element, Lattice, Structure};

const EMBEDDED: &str = include_str!("../../assets/aflow_prototypes.json");

/// One AFLOW prototype.
#[derive(Debug, Clone)]
pub struct Prototype {
    /// AFLOW label, `<stoichiometry>_<Pearson>_<space group>_<Wyckoff letters>` (e.g. `AB_cF8_225_a_b`).
    pub aflow: String,
    /// Pearson symbol (e.g. `cF8`).
    pub pearson: String,
    /// Strukturbericht designation (e.g. `B1`); empty when it has none.
    pub strukturbericht: String,
    /// Mineral or common names, comma-separated (e.g. `Halite, Rock Salt`); may be empty.
    pub mineral: String,
    /// The prototype compound's structure (lattice in Å, fractional coordinates).
    pub structure: Structure,
}

impl Prototype {
    /// Space group number from the label (the third field).
    pub fn space_group(&self) -> u16 {
        self.aflow.split('_').nth(2).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// The label's stoichiometry field (e.g. `AB2`, `A2BC4`).
    pub fn stoichiometry(&self) -> &str {
        self.aflow.split('_').next().unwrap_or("")
    }

    /// A short human name: Strukturbericht and first mineral name where known (`B1 Halite`).
    pub fn display_name(&self) -> String {
        let mineral = self.mineral.split(',').next().unwrap_or("").trim();
        match (self.strukturbericht.is_empty(), mineral.is_empty()) {
            (false, false) => format!("{} {mineral}", self.strukturbericht),
            (false, true) => self.strukturbericht.clone(),
            (true, false) => mineral.to_string(),
            (true, true) => self.aflow.clone(),
        }
    }

    /// Whether a user's key names this prototype: `*` or `all`; the AFLOW label; the Strukturbericht
    /// designation; the Pearson symbol; the label's stoichiometry (`AB2`); or part of a mineral name
    /// (`perovskite`). Case-insensitive except for the label, Pearson symbol and stoichiometry.
    pub fn matches(&self, key: &str) -> bool {
        let k = key.trim();
        if k.is_empty() {
            return false;
        }
        k == "*"
            || k.eq_ignore_ascii_case("all")
            || k == self.aflow
            || k == self.pearson
            || k == self.stoichiometry()
            || (!self.strukturbericht.is_empty() && k.eq_ignore_ascii_case(&self.strukturbericht))
            || (k.len() >= 3 && self.mineral.to_lowercase().contains(&k.to_lowercase()))
    }
}

#[derive(Deserialize)]
struct Stored {
    aflow: String,
    pearson: String,
    strukturbericht: String,
    mineral: String,
    lattice: [[f64; 3]; 3],
    species: Vec<String>,
    frac: Vec<[f64; 3]>,
}

#[derive(Deserialize)]
struct StoredFile {
    prototypes: Vec<Stored>,
}

fn parse(text: &str) -> Result<Vec<Prototype>, String> {
    let file: StoredFile = serde_json::from_str(text).map_err(|e| format!("malformed prototype JSON: {e}"))?;
    file.prototypes
        .into_iter()
        .map(|p| {
            let lattice = Lattice::from_row_vectors(p.lattice).map_err(|e| format!("{}: {e}", p.aflow))?;
            let species = p
                .species
                .iter()
                .map(|s| Element::from_symbol(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", p.aflow))?;
            let frac = p.frac.iter().map(|f| Vector3::new(f[0], f[1], f[2])).collect();
            let structure = Structure::from_frac(lattice, species, frac).map_err(|e| format!("{}: {e}", p.aflow))?;
            Ok(Prototype {
                aflow: p.aflow,
                pearson: p.pearson,
                strukturbericht: p.strukturbericht,
                mineral: p.mineral,
                structure,
            })
        })
        .collect()
}

/// All 288 prototypes, parsed once.
pub fn aflow() -> &'static [Prototype] {
    static P: OnceLock<Vec<Prototype>> = OnceLock::new();
    P.get_or_init(|| parse(EMBEDDED).expect("embedded prototypes are valid (checked by tests)"))
}

/// Prototypes a key names ([`Prototype::matches`]), in library order.
pub fn find(key: &str) -> Vec<&'static Prototype> {
    aflow().iter().filter(|p| p.matches(key)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_has_288_prototypes_and_keys_find_them() {
        assert_eq!(aflow().len(), 288);
        let b1 = find("B1");
        assert_eq!(b1.len(), 1);
        assert_eq!(b1[0].aflow, "AB_cF8_225_a_b");
        assert_eq!(b1[0].structure.reduced_formula(), "NaCl");
        assert_eq!(b1[0].display_name(), "B1 Halite");
        assert_eq!(find("rock salt")[0].aflow, "AB_cF8_225_a_b");
        assert!(find("perovskite").len() >= 2);
        assert!(find("AB2").iter().all(|p| p.stoichiometry() == "AB2"));
        assert_eq!(find("*").len(), 288);
        assert!(find("").is_empty());
        assert!(find("no such prototype").is_empty());
    }
}
