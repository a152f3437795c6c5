//! The periodic table: one [`ElementData`] row per element, generated from pymatgen-core, SMACT and
//! matminer tables by `scripts/make_element_assets.py` into `assets/elements.json` and embedded here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::CrystalError;

/// One row of the element table. Units: masses in amu, radii in Å, colours as sRGB 0–255.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ElementData {
    pub symbol: String,
    pub z: u8,
    pub name: String,
    /// Standard atomic mass (amu), as pymatgen's `Element.atomic_mass`.
    pub atomic_mass: f64,
    /// Pauling electronegativity, `None` where pymatgen has none (noble gases).
    pub electronegativity: Option<f64>,
    /// Empirical atomic radius (Å).
    pub atomic_radius: Option<f64>,
    /// Calculated atomic radius (Å).
    pub atomic_radius_calculated: Option<f64>,
    /// Covalent radius (Å), Cordero et al. 2008 as shipped by SMACT.
    pub covalent_radius: Option<f64>,
    /// Van der Waals radius (Å).
    pub van_der_waals_radius: Option<f64>,
    pub jmol_color: [u8; 3],
    pub vesta_color: [u8; 3],
    pub row: u8,
    pub group: u8,
    pub mendeleev_number: Option<u32>,
    /// pymatgen's `Element.is_metal`.
    pub is_metal: bool,
    /// All known oxidation states (pymatgen).
    pub oxidation_states: Vec<i8>,
    /// Common oxidation states (pymatgen).
    pub common_oxidation_states: Vec<i8>,
    /// SMACT's ICSD-24 filtered oxidation states, the set `smact_validity` uses.
    pub icsd_oxidation_states: Vec<i8>,
    /// The 22 Magpie elemental properties (matminer preset), `None` where the table has no value.
    pub magpie: BTreeMap<String, Option<f64>>,
}

#[derive(Deserialize)]
struct ElementTable {
    elements: Vec<ElementData>,
}

static TABLE: OnceLock<Vec<ElementData>> = OnceLock::new();

fn table() -> &'static [ElementData] {
    TABLE.get_or_init(|| {
        let parsed: ElementTable = serde_json::from_str(include_str!("../../assets/elements.json"))
            .expect("embedded assets/elements.json is valid (checked by tests)");
        let mut rows = parsed.elements;
        rows.sort_by_key(|e| e.z);
        rows
    })
}

/// A chemical element, identified by its atomic number. Cheap to copy and compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Element(u8);

impl Element {
    /// Element with atomic number `z`.
    pub fn from_z(z: u32) -> Result<Element, CrystalError> {
        let t = table();
        if z >= 1 && (z as usize) <= t.len() && t[z as usize - 1].z as u32 == z {
            Ok(Element(z as u8))
        } else {
            Err(CrystalError::UnknownAtomicNumber(z))
        }
    }

    /// Element from its symbol (`"Fe"`). Case-sensitive like pymatgen, but also accepts all-caps or
    /// all-lowercase two-letter symbols as written by some codes (`"FE"`, `"fe"`).
    pub fn from_symbol(symbol: &str) -> Result<Element, CrystalError> {
        let s = symbol.trim();
        let normalised: String = s
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        table()
            .iter()
            .find(|e| e.symbol == normalised)
            .map(|e| Element(e.z))
            .ok_or_else(|| CrystalError::UnknownElement(symbol.to_string()))
    }

    /// Parse a species label such as `Fe2+`, `O2-`, `Fe1`, `Na_sv`, `Ca0.5` or `Si4+:0.5`: the leading
    /// letters that make a known element symbol. Returns the element and the oxidation state if given.
    pub fn from_label(label: &str) -> Result<(Element, Option<i8>), CrystalError> {
        let s = label.trim();
        let letters: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).take(2).collect();
        let el = if letters.len() == 2 {
            Element::from_symbol(&letters).or_else(|_| Element::from_symbol(&letters[..1]))
        } else if letters.len() == 1 {
            Element::from_symbol(&letters)
        } else {
            Err(CrystalError::UnknownElement(label.to_string()))
        }
        .map_err(|_| CrystalError::UnknownElement(label.to_string()))?;
        let rest = &s[el.symbol().len().min(s.len())..];
        let oxi = parse_charge(rest);
        Ok((el, oxi))
    }

    pub fn z(self) -> u8 {
        self.0
    }

    pub fn data(self) -> &'static ElementData {
        &table()[self.0 as usize - 1]
    }

    pub fn symbol(self) -> &'static str {
        &self.data().symbol
    }

    /// Atomic mass (amu).
    pub fn atomic_mass(self) -> f64 {
        self.data().atomic_mass
    }

    /// Pauling electronegativity; NaN where unknown, as pymatgen's `Element.X`.
    pub fn x(self) -> f64 {
        self.data().electronegativity.unwrap_or(f64::NAN)
    }

    /// Every element in the table, by increasing Z.
    pub fn all() -> impl Iterator<Item = Element> {
        table().iter().map(|e| Element(e.z))
    }
}

/// Charge suffix such as `2+`, `3-`, `+`, `-` (after optional digits of a site label like `Fe2+`).
fn parse_charge(rest: &str) -> Option<i8> {
    let rest = rest.trim();
    let sign_pos = rest.find(['+', '-'])?;
    let digits = &rest[..sign_pos];
    let after = &rest[sign_pos + 1..];
    // Forms: "2+" (digits then sign) or "+2" (sign then digits).
    let mag: i8 = if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        digits.parse().ok()?
    } else if digits.is_empty() {
        let d: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if d.is_empty() { 1 } else { d.parse().ok()? }
    } else {
        return None;
    };
    Some(if rest.as_bytes()[sign_pos] == b'-' { -mag } else { mag })
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl Serialize for Element {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.symbol())
    }
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Element::from_symbol(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_ordered() {
        let t = table();
        assert!(t.len() >= 103);
        for (i, e) in t.iter().enumerate() {
            assert_eq!(e.z as usize, i + 1, "row {i} is {}", e.symbol);
            assert!(e.atomic_mass > 0.0);
        }
    }

    #[test]
    fn symbols_and_labels() {
        assert_eq!(Element::from_symbol("Fe").unwrap().z(), 26);
        assert_eq!(Element::from_symbol("FE").unwrap().z(), 26);
        assert!(Element::from_symbol("Xx").is_err());
        assert_eq!(Element::from_label("Fe2+").unwrap(), (Element::from_z(26).unwrap(), Some(2)));
        assert_eq!(Element::from_label("O2-").unwrap(), (Element::from_z(8).unwrap(), Some(-2)));
        assert_eq!(Element::from_label("Na1").unwrap(), (Element::from_z(11).unwrap(), None));
        assert_eq!(Element::from_label("N1").unwrap().0.symbol(), "N");
        assert_eq!(Element::from_label("Cl-").unwrap(), (Element::from_z(17).unwrap(), Some(-1)));
        assert!(Element::from_label("Q1").is_err());
        assert!(Element::from_label("12").is_err());
    }
}
