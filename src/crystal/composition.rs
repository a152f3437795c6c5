//! Compositions: element amounts, formulas written as pymatgen writes them, atomic fractions.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CrystalError, Element};

/// Amounts below this are treated as zero, as pymatgen's `Composition.amount_tolerance`.
pub const AMOUNT_TOLERANCE: f64 = 1e-8;

/// Formulas pymatgen keeps un-reduced (`Composition.special_formulas`); the factor halves.
const SPECIAL_FORMULAS: [(&str, &str); 11] = [
    ("LiO", "Li2O2"),
    ("NaO", "Na2O2"),
    ("KO", "K2O2"),
    ("HO", "H2O2"),
    ("CsO", "Cs2O2"),
    ("RbO", "Rb2O2"),
    ("O", "O2"),
    ("N", "N2"),
    ("F", "F2"),
    ("Cl", "Cl2"),
    ("H", "H2"),
];

/// A composition: a positive amount (number of atoms, possibly fractional) per element.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Composition {
    amounts: BTreeMap<Element, f64>,
}

impl Composition {
    pub fn new() -> Composition {
        Composition::default()
    }

    /// Build from (element, amount) pairs; repeated elements add up, zero amounts are dropped.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Element, f64)>) -> Composition {
        let mut c = Composition::new();
        for (e, a) in pairs {
            c.add(e, a);
        }
        c
    }

    pub fn add(&mut self, el: Element, amount: f64) {
        let v = self.amounts.entry(el).or_insert(0.0);
        *v += amount;
        if v.abs() <= AMOUNT_TOLERANCE {
            self.amounts.remove(&el);
        }
    }

    /// Parse a formula such as `Fe2O3`, `LiFePO4`, `Ca(OH)2`, `Li0.5CoO2` or `Fe2 O3`. Amounts are
    /// numbers up to [`MAX_AMOUNT`]; a malformed or larger one is an error naming it.
    pub fn from_formula(formula: &str) -> Result<Composition, CrystalError> {
        let err =
            |reason: &str| CrystalError::InvalidFormula { formula: formula.to_string(), reason: reason.to_string() };
        let chars: Vec<char> = formula.chars().filter(|c| !c.is_whitespace()).collect();
        let mut stack: Vec<Composition> = vec![Composition::new()];
        let mut i = 0;
        // An amount: digits with at most one decimal point, finite and at most MAX_AMOUNT; anything else
        // is refused rather than read as 1 (`Fe1.5.5O`) or saturated (`K99999999999999999999Cl`).
        let read_number = |i: &mut usize| -> Result<Option<f64>, CrystalError> {
            let start = *i;
            while *i < chars.len() && (chars[*i].is_ascii_digit() || chars[*i] == '.') {
                *i += 1;
            }
            if *i == start {
                return Ok(None);
            }
            let text: String = chars[start..*i].iter().collect();
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() && x <= MAX_AMOUNT => Ok(Some(x)),
                Ok(_) => Err(err(&format!("amount {text} is above the largest Geode takes ({MAX_AMOUNT})"))),
                Err(_) => Err(err(&format!("{text:?} is not an amount"))),
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '(' || c == '[' {
                stack.push(Composition::new());
                i += 1;
            } else if c == ')' || c == ']' {
                i += 1;
                let mult = read_number(&mut i)?.unwrap_or(1.0);
                let inner = stack.pop().ok_or_else(|| err("unbalanced parenthesis"))?;
                let outer = stack.last_mut().ok_or_else(|| err("unbalanced parenthesis"))?;
                for (e, a) in inner.amounts {
                    outer.add(e, a * mult);
                }
            } else if c.is_ascii_uppercase() {
                let mut sym = c.to_string();
                i += 1;
                if i < chars.len() && chars[i].is_ascii_lowercase() {
                    sym.push(chars[i]);
                    i += 1;
                }
                let el = Element::from_symbol(&sym).map_err(|_| err(&format!("unknown element {sym:?}")))?;
                let amt = read_number(&mut i)?.unwrap_or(1.0);
                stack.last_mut().expect("stack never empty here").add(el, amt);
            } else {
                return Err(err(&format!("unexpected character {c:?}")));
            }
        }
        if stack.len() != 1 {
            return Err(err("unbalanced parenthesis"));
        }
        let c = stack.pop().expect("one composition left");
        if c.amounts.is_empty() {
            return Err(err("no elements"));
        }
        if let Some((e, a)) = c.iter().find(|(_, a)| *a > MAX_AMOUNT) {
            return Err(err(&format!("{e} amounts to {a}, above the largest Geode takes ({MAX_AMOUNT})")));
        }
        Ok(c)
    }

    pub fn amount(&self, el: Element) -> f64 {
        self.amounts.get(&el).copied().unwrap_or(0.0)
    }

    /// Elements sorted by atomic number.
    pub fn elements(&self) -> Vec<Element> {
        self.amounts.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Element, f64)> + '_ {
        self.amounts.iter().map(|(e, a)| (*e, *a))
    }

    pub fn n_elements(&self) -> usize {
        self.amounts.len()
    }

    /// Total number of atoms.
    pub fn num_atoms(&self) -> f64 {
        self.amounts.values().sum()
    }

    /// Formula mass (amu).
    pub fn weight(&self) -> f64 {
        self.iter().map(|(e, a)| e.atomic_mass() * a).sum()
    }

    /// Atomic fractions, summing to one.
    pub fn fractional(&self) -> Composition {
        let n = self.num_atoms();
        Composition { amounts: self.amounts.iter().map(|(e, a)| (*e, a / n)).collect() }
    }

    /// Elements sorted by electronegativity, then symbol, as pymatgen (missing X sorts last).
    pub fn sorted_elements(&self) -> Vec<Element> {
        let mut els = self.elements();
        els.sort_by(|a, b| {
            let xa = if a.x().is_nan() { f64::INFINITY } else { a.x() };
            let xb = if b.x().is_nan() { f64::INFINITY } else { b.x() };
            xa.total_cmp(&xb).then_with(|| a.symbol().cmp(b.symbol()))
        });
        els
    }

    /// pymatgen's `Composition.formula`: `"Li4 Fe4 P4 O16"`.
    pub fn formula(&self) -> String {
        self.sorted_elements()
            .iter()
            .map(|e| format!("{}{}", e.symbol(), format_amount(self.amount(*e), false)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `"Fe-O"`: symbols sorted alphabetically and joined by dashes (pymatgen's `chemical_system`).
    pub fn chemical_system(&self) -> String {
        let mut s: Vec<&str> = self.amounts.keys().map(|e| e.symbol()).collect();
        s.sort_unstable();
        s.join("-")
    }

    /// pymatgen's `reduced_formula`, including its polyanion brackets and special formulas.
    pub fn reduced_formula(&self) -> String {
        self.reduced_formula_and_factor().0
    }

    /// pymatgen's `get_reduced_formula_and_factor`: `Li4Fe4P4O16` → (`"LiFePO4"`, 4).
    pub fn reduced_formula_and_factor(&self) -> (String, f64) {
        let all_int = self.amounts.values().all(|v| (v - v.round()).abs() < AMOUNT_TOLERANCE);
        if !all_int {
            return (self.formula().replace(' ', ""), 1.0);
        }
        let syms = self.sorted_elements();
        let amts: Vec<f64> = syms.iter().map(|e| self.amount(*e).round()).collect();
        let (formula, factor) = reduce_formula(&syms, &amts);
        for (from, to) in SPECIAL_FORMULAS {
            if formula == from {
                return (to.to_string(), factor as f64 / 2.0);
            }
        }
        (formula, factor as f64)
    }

    /// The reduced composition (amounts divided by the gcd when all are integers).
    pub fn reduced_composition(&self) -> Composition {
        let all_int = self.amounts.values().all(|v| (v - v.round()).abs() < AMOUNT_TOLERANCE);
        if !all_int {
            return self.clone();
        }
        let g = self.amounts.values().fold(0u64, |g, v| gcd(g, v.round() as u64)).max(1);
        Composition { amounts: self.amounts.iter().map(|(e, a)| (*e, a.round() / g as f64)).collect() }
    }

    /// True when both compositions have the same atomic fractions (within `tol`).
    pub fn almost_equals_fractional(&self, other: &Composition, tol: f64) -> bool {
        let (a, b) = (self.fractional(), other.fractional());
        a.amounts.len() == b.amounts.len() && a.iter().all(|(e, x)| (b.amount(e) - x).abs() <= tol)
    }
}

/// The largest amount a formula may give one element (or a bracket's multiplier): a million atoms, far
/// beyond any cell Geode computes, and small enough that integer charge sums cannot overflow.
pub const MAX_AMOUNT: f64 = 1e6;

/// Greatest common divisor (Euclid); `gcd(0, b) = b`.
pub fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// pymatgen's `reduce_formula` for integer amounts, `syms` already in electronegativity order.
fn reduce_formula(syms: &[Element], amts: &[f64]) -> (String, u64) {
    let factor = amts.iter().fold(0u64, |g, a| gcd(g, *a as u64)).max(1);
    let n = syms.len();
    let mut poly = String::new();
    if n >= 3 && syms[n - 1].x() - syms[n - 2].x() < 1.65 {
        let sub = [amts[n - 2] / factor as f64, amts[n - 1] / factor as f64];
        let sub_int = sub.iter().all(|v| v.fract() == 0.0);
        let (pf, pfac) = if sub_int {
            reduce_formula(&syms[n - 2..], &sub)
        } else {
            // pymatgen keeps the factor 1 when the amounts are not integers: no brackets.
            (String::new(), 1)
        };
        if pfac != 1 {
            poly = format!("({pf}){pfac}");
        }
    }
    let keep = if poly.is_empty() { n } else { n - 2 };
    let mut out = String::new();
    for i in 0..keep {
        out.push_str(syms[i].symbol());
        out.push_str(&format_amount(amts[i] / factor as f64, true));
    }
    out.push_str(&poly);
    (out, factor)
}

/// pymatgen's `formula_double_format`: integers without decimals, ones omitted if `ignore_ones`,
/// other numbers rounded to 8 decimals.
pub fn format_amount(x: f64, ignore_ones: bool) -> String {
    if ignore_ones && (x - 1.0).abs() <= 1e-8 {
        return String::new();
    }
    if (x - x.round()).abs() <= 1e-8 {
        return format!("{}", x.round() as i64);
    }
    let r = (x * 1e8).round() / 1e8;
    format!("{r}")
}

impl fmt::Display for Composition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formula())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_huge_amounts_are_refused_not_misread() {
        for bad in ["Fe1.5.5O", "Fe..O", "(FeO)2.3.4", "K99999999999999999999Cl", "(Fe1000)1001"] {
            let e = Composition::from_formula(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let huge = format!("Fe{}O", "9".repeat(400));
        assert!(Composition::from_formula(&huge).unwrap_err().to_string().contains("above the largest"));
        assert_eq!(Composition::from_formula("Li0.5CoO2").unwrap().amount(Element::from_symbol("Li").unwrap()), 0.5);
        assert_eq!(Composition::from_formula("(Fe1000)1000").unwrap().reduced_formula(), "Fe");
    }

    fn rf(s: &str) -> String {
        Composition::from_formula(s).unwrap().reduced_formula()
    }

    #[test]
    fn reduced_formulas_as_pymatgen() {
        // Expected strings are pymatgen 2026.10.24 `Composition(s).reduced_formula`.
        assert_eq!(rf("Li4Fe4P4O16"), "LiFePO4");
        assert_eq!(rf("Fe4O6"), "Fe2O3");
        assert_eq!(rf("O4"), "O2");
        assert_eq!(rf("Li2O2"), "Li2O2");
        assert_eq!(rf("Na2O2"), "Na2O2");
        assert_eq!(rf("Ca(OH)2"), "Ca(HO)2");
        assert_eq!(rf("Li0.5CoO2"), "Li0.5Co1O2");
        assert_eq!(rf("Hg2Cl2O8"), "HgClO4");
        assert_eq!(rf("Ba2S4O12"), "Ba(SO3)2");
    }

    #[test]
    fn formula_and_system() {
        let c = Composition::from_formula("O16Li4Fe4P4").unwrap();
        assert_eq!(c.formula(), "Li4 Fe4 P4 O16");
        assert_eq!(c.chemical_system(), "Fe-Li-O-P");
        assert_eq!(c.num_atoms(), 28.0);
        assert!((c.fractional().amount(Element::from_symbol("O").unwrap()) - 16.0 / 28.0).abs() < 1e-12);
    }

    #[test]
    fn bad_formulas() {
        for s in ["", "Xx2", "Fe(O2", "Fe)2", "Fe-O"] {
            assert!(Composition::from_formula(s).is_err(), "{s}");
        }
    }
}
