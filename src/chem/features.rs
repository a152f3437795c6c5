//! Composition features (Ward et al., npj Comput. Mater. 2, 16028 (2016), "Magpie"), as matminer
//! 0.10.1 computes them:
//! - `ElementProperty.from_preset("magpie")`: 22 elemental properties × 6 statistics over the atomic
//!   fractions (minimum, maximum, range, mean, avg_dev, mode) = 132 features;
//! - `Stoichiometry()`: the p-norms of the fractions for p = 0 (number of elements), 2, 3, 5, 7, 10;
//! - `ValenceOrbital(props=["frac"])`: fraction of valence electrons in s, p, d, f;
//! - `IonProperty`'s ionic character: maximum and fraction-weighted mean of 1 − exp(−(Δχ)²/4), with
//!   pymatgen's Pauling χ.
//!
//! Plus one feature matminer computes differently: whether some combination of the elements' ICSD-24
//! oxidation states (SMACT's set) balances the charge, one state per element.
//!
//! Elemental values missing from the Magpie tables (e.g. the electronegativity of a noble gas) are
//! replaced by the mean of that property over the elements that have one, so features are always
//! finite; matminer returns NaN there.

use std::sync::OnceLock;

use crate::crystal::{Composition, Element};

/// The 22 Magpie properties in matminer's preset order.
pub const MAGPIE_PROPERTIES: [&str; 22] = [
    "Number",
    "MendeleevNumber",
    "AtomicWeight",
    "MeltingT",
    "Column",
    "Row",
    "CovalentRadius",
    "Electronegativity",
    "NsValence",
    "NpValence",
    "NdValence",
    "NfValence",
    "NValence",
    "NsUnfilled",
    "NpUnfilled",
    "NdUnfilled",
    "NfUnfilled",
    "NUnfilled",
    "GSvolume_pa",
    "GSbandgap",
    "GSmagmom",
    "SpaceGroupNumber",
];

/// The six statistics in matminer's order.
pub const MAGPIE_STATS: [&str; 6] = ["minimum", "maximum", "range", "mean", "avg_dev", "mode"];

/// Stoichiometry p-norms (p = 0 is the number of elements).
pub const STOICHIOMETRY_P: [u32; 6] = [0, 2, 3, 5, 7, 10];

/// Number of composition features: 132 + 6 + 4 + 2 + 1.
pub const N_FEATURES: usize = 22 * 6 + 6 + 4 + 2 + 1;

/// Names of the features, in the order of [`composition_features`] (matminer's labels where it has
/// them, e.g. `"MagpieData mean Electronegativity"`).
pub fn feature_names() -> Vec<String> {
    let mut names = Vec::with_capacity(N_FEATURES);
    for p in MAGPIE_PROPERTIES {
        for s in MAGPIE_STATS {
            names.push(format!("MagpieData {s} {p}"));
        }
    }
    for p in STOICHIOMETRY_P {
        names.push(format!("{p}-norm"));
    }
    for o in ["s", "p", "d", "f"] {
        names.push(format!("frac {o} valence electrons"));
    }
    names.push("max ionic char".into());
    names.push("avg ionic char".into());
    names.push("charge balance possible (ICSD-24 states)".into());
    names
}

/// Elemental property table with missing values imputed: `[z][property]`.
fn elemental_table() -> &'static Vec<[f64; 22]> {
    static TABLE: OnceLock<Vec<[f64; 22]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let raw: Vec<[Option<f64>; 22]> = (0..=118u32)
            .map(|z| match Element::from_z(z) {
                Ok(e) => MAGPIE_PROPERTIES.map(|p| e.data().magpie.get(p).copied().flatten().filter(|v| v.is_finite())),
                Err(_) => [None; 22],
            })
            .collect();
        let means: [f64; 22] = std::array::from_fn(|k| {
            let vals: Vec<f64> = raw.iter().filter_map(|r| r[k]).collect();
            if vals.is_empty() { 0.0 } else { vals.iter().sum::<f64>() / vals.len() as f64 }
        });
        raw.iter().map(|r| std::array::from_fn(|k| r[k].unwrap_or(means[k]))).collect()
    })
}

/// The elemental Magpie property `k` (index into [`MAGPIE_PROPERTIES`]) of `el`, imputed if missing.
pub fn magpie_value(el: Element, k: usize) -> f64 {
    elemental_table()[el.z() as usize][k]
}

/// The [`N_FEATURES`] features of a composition (amounts need not be normalised). An empty
/// composition gives all zeros.
pub fn composition_features(comp: &Composition) -> Vec<f64> {
    let mut out = Vec::with_capacity(N_FEATURES);
    let total = comp.num_atoms();
    let pairs: Vec<(Element, f64)> =
        if total > 0.0 { comp.iter().map(|(e, a)| (e, a / total)).collect() } else { Vec::new() };
    if pairs.is_empty() {
        return vec![0.0; N_FEATURES];
    }
    for k in 0..22 {
        let vals: Vec<(f64, f64)> = pairs.iter().map(|&(e, w)| (magpie_value(e, k), w)).collect();
        let min = vals.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
        let max = vals.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
        let mean: f64 = vals.iter().map(|(x, w)| x * w).sum();
        let avg_dev: f64 = vals.iter().map(|(x, w)| (x - mean).abs() * w).sum();
        // matminer: among the values of largest weight (np.isclose), the smallest.
        let wmax = vals.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
        let mode = vals.iter().filter(|v| is_close(v.1, wmax)).map(|v| v.0).fold(f64::INFINITY, f64::min);
        out.extend([min, max, max - min, mean, avg_dev, mode]);
    }
    for p in STOICHIOMETRY_P {
        out.push(if p == 0 {
            pairs.len() as f64
        } else {
            pairs.iter().map(|(_, w)| w.powi(p as i32)).sum::<f64>().powf(1.0 / p as f64)
        });
    }
    // Valence orbital fractions: mean N{s,p,d,f}Valence / mean NValence (indices 8..=12).
    let mean_of = |k: usize| pairs.iter().map(|&(e, w)| magpie_value(e, k) * w).sum::<f64>();
    let n_val = mean_of(12);
    for k in 8..12 {
        out.push(if n_val > 0.0 { mean_of(k) / n_val } else { 0.0 });
    }
    // Ionic character from pymatgen's Pauling electronegativity (matminer's `PymatgenData` "X"),
    // the Magpie value where pymatgen has none.
    let chi = |e: Element| e.data().electronegativity.unwrap_or_else(|| magpie_value(e, 7));
    let (mut max_ic, mut avg_ic) = (0.0f64, 0.0);
    for i in 0..pairs.len() {
        for j in i + 1..pairs.len() {
            let d = chi(pairs[i].0) - chi(pairs[j].0);
            let ic = 1.0 - (-0.25 * d * d).exp();
            max_ic = max_ic.max(ic);
            avg_ic += pairs[i].1 * pairs[j].1 * ic;
        }
    }
    out.push(max_ic);
    out.push(avg_ic);
    out.push(if charge_balance_possible(comp) { 1.0 } else { 0.0 });
    debug_assert_eq!(out.len(), N_FEATURES);
    out
}

/// numpy's `isclose` with its default tolerances (rtol 1e-5, atol 1e-8).
fn is_close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-8 + 1e-5 * b.abs()
}

/// True when one ICSD-24 oxidation state per element makes Σ qᵢ nᵢ = 0 (a single element or an
/// all-zero assignment counts as balanced only for elements alone). Searches at most 10⁵ combinations.
fn charge_balance_possible(comp: &Composition) -> bool {
    let els: Vec<(Element, f64)> = comp.iter().collect();
    if els.len() < 2 {
        return true;
    }
    let states: Vec<&[i8]> = els.iter().map(|(e, _)| e.data().icsd_oxidation_states.as_slice()).collect();
    if states.iter().any(|s| s.is_empty()) {
        return false;
    }
    let n_comb: usize = states.iter().map(|s| s.len()).product();
    if n_comb > 100_000 {
        return false;
    }
    let mut idx = vec![0usize; els.len()];
    for _ in 0..n_comb {
        let q: f64 = idx.iter().enumerate().map(|(i, &k)| states[i][k] as f64 * els[i].1).sum();
        if q.abs() < 1e-6 {
            return true;
        }
        for i in 0..idx.len() {
            idx[i] += 1;
            if idx[i] < states[i].len() {
                break;
            }
            idx[i] = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_names_and_simple_values() {
        assert_eq!(feature_names().len(), N_FEATURES);
        let f = composition_features(&Composition::from_formula("NaCl").unwrap());
        assert_eq!(f.len(), N_FEATURES);
        assert!(f.iter().all(|x| x.is_finite()));
        // Number: min 11, max 17, range 6, mean 14, avg_dev 3, mode min(11, 17) = 11.
        assert_eq!(&f[0..6], &[11.0, 17.0, 6.0, 14.0, 3.0, 11.0]);
        assert_eq!(f[132], 2.0);
        assert!((f[133] - 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(f[N_FEATURES - 1], 1.0);
        let fe = composition_features(&Composition::from_formula("Fe").unwrap());
        assert_eq!(fe[N_FEATURES - 3], 0.0);
    }
}
