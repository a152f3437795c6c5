//! CrystalNN (Pan et al., Inorg. Chem. 60, 1590 (2021)): coordination environments as weights over
//! coordination numbers, from Voronoi solid angles adjusted by electronegativity difference and by
//! distance. A port of pymatgen's `CrystalNN.get_nn_data` with its defaults (no oxidation states:
//! `weighted_cn = False`, `cation_anion = False`, `distance_cutoffs = (0.5, 1)`, `x_diff_weight = 3`,
//! `porous_adjustment = True`, `search_cutoff = 7`), validated against pymatgen 2026.10.24 by
//! `tests/crystalnn_matminer.rs`.
//!
//! For site n:
//! 1. every Voronoi neighbour gets w = (Ω / Ω_max) · (Ω / A) (solid angle Ω in sr, facet area A in Å²),
//!    times 1 + 3 √(|χ₁ − χ₂| / 3.3) (Pauling χ; 1 when either is missing);
//! 2. weights are scaled so the largest is 1, then multiplied by a distance factor: 1 up to r₁ + r₂ + 0.5 Å,
//!    a half cosine down to 0 at r₁ + r₂ + 1 Å (r = covalent radius, pymatgen's table);
//! 3. weights are rounded to 3 decimals; each distinct weight w_k (descending, w_0 = 1 … 0) opens the
//!    coordination number "all neighbours with weight ≥ w_k", with probability the area of the unit
//!    quarter-circle between w_{k+1} and w_k (normalised to 1). The remainder goes to CN 0.
//!
//! Ties between equal unrounded weights keep the neighbours' distance order (pymatgen keeps qhull's facet
//! order, which is arbitrary); only order-dependent order parameters (bcc) can tell the difference.

use std::collections::BTreeMap;

use nalgebra::Vector3;

use super::voronoi::{self, NeighborImage, VoronoiError};
use super::{Element, Structure};

/// A weighted neighbour of a site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightedNeighbor {
    pub neighbor: NeighborImage,
    /// CrystalNN weight, rounded to 3 decimals (0 < w ≤ 1).
    pub weight: f64,
}

/// CrystalNN's answer for one site.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NnData {
    /// Neighbours with non-zero weight, highest weight first.
    pub neighbors: Vec<WeightedNeighbor>,
    /// Probability of each coordination number (CN 0 included when the weights leave some over).
    pub cn_weights: BTreeMap<usize, f64>,
}

impl NnData {
    /// The neighbours that make up coordination number `cn` (the `cn` highest-weighted ones), if that CN
    /// has a weight.
    pub fn cn_neighbors(&self, cn: usize) -> Option<&[WeightedNeighbor]> {
        self.cn_weights.contains_key(&cn).then(|| &self.neighbors[..cn.min(self.neighbors.len())])
    }
}

/// pymatgen's "default radius" of an element for CrystalNN (Å): its `CovalentRadius` table (Cordero et
/// al. 2008; for C, Mn, Fe and Co pymatgen picks other entries than SMACT's column), else the atomic radius.
pub fn default_radius(el: Element) -> f64 {
    match el.symbol() {
        "C" => 0.73,
        "Mn" => 1.5,
        "Fe" => 1.42,
        "Co" => 1.38,
        _ => el.data().covalent_radius.or(el.data().atomic_radius).unwrap_or(0.0),
    }
}

/// Python's `round(x, 3)`: correctly rounded to 3 decimals, ties to even.
fn round3(x: f64) -> f64 {
    format!("{x:.3}").parse().unwrap_or(x)
}

/// Area of the unit quarter circle between x2 and x1 (x2 < x1 ≤ 1), over the whole quarter.
fn semicircle_integral(x1: f64, x2: f64) -> f64 {
    let area = |x: f64| 0.5 * (x * (1.0 - x * x).sqrt() + (x / (1.0 - x * x).sqrt()).atan());
    let quarter = 0.25 * std::f64::consts::PI;
    let a1 = if x1 == 1.0 { quarter } else { area(x1) };
    (a1 - area(x2)) / quarter
}

/// CrystalNN's coordination data of site `n` (pymatgen's `CrystalNN().get_nn_data(structure, n)`).
pub fn nn_data(s: &Structure, n: usize) -> Result<NnData, VoronoiError> {
    let facets = voronoi::voronoi_facets(s, n, voronoi::DEFAULT_SEARCH_CUTOFF_ANG)?;
    let max_angle = facets.iter().map(|f| f.solid_angle).fold(0.0, f64::max);
    let el = s.species()[n];
    let x1 = el.x();
    let mut nn: Vec<(NeighborImage, f64)> = facets
        .iter()
        .filter(|f| f.solid_angle > 0.0)
        .map(|f| {
            let mut w = f.solid_angle / max_angle * (f.solid_angle / f.area);
            let x2 = f.neighbor.element.x();
            if !x1.is_nan() && !x2.is_nan() {
                w *= 1.0 + 3.0 * ((x1 - x2).abs() / 3.3).sqrt();
            }
            (f.neighbor, w)
        })
        .collect();
    nn.sort_by(|a, b| a.0.distance.total_cmp(&b.0.distance));
    nn.sort_by(|a, b| b.1.total_cmp(&a.1));
    let empty = || NnData { neighbors: Vec::new(), cn_weights: BTreeMap::from([(0, 1.0)]) };
    if nn.first().is_none_or(|x| x.1 == 0.0) {
        return Ok(empty());
    }
    let highest = nn[0].1;
    let r1 = default_radius(el);
    for (nb, w) in nn.iter_mut() {
        *w /= highest;
        let diameter = r1 + default_radius(nb.element);
        let (lo, hi) = (diameter + 0.5, diameter + 1.0);
        let dist = nb.offset.norm();
        let f = if dist <= lo {
            1.0
        } else if dist < hi {
            (((dist - lo) / (hi - lo) * std::f64::consts::PI).cos() + 1.0) * 0.5
        } else {
            0.0
        };
        *w *= f;
    }
    nn.sort_by(|a, b| b.1.total_cmp(&a.1));
    if nn[0].1 == 0.0 {
        return Ok(empty());
    }
    let neighbors: Vec<WeightedNeighbor> = nn
        .into_iter()
        .map(|(neighbor, w)| WeightedNeighbor { neighbor, weight: round3(w) })
        .filter(|x| x.weight > 0.0)
        .collect();
    let mut bins: Vec<f64> = Vec::new();
    for x in &neighbors {
        if bins.last() != Some(&x.weight) {
            bins.push(x.weight);
        }
    }
    bins.push(0.0);
    let mut cn_weights = BTreeMap::new();
    for k in 0..bins.len() - 1 {
        let cn = neighbors.iter().filter(|x| x.weight >= bins[k]).count();
        cn_weights.insert(cn, semicircle_integral(bins[k], bins[k + 1]));
    }
    let rest = 1.0 - cn_weights.values().sum::<f64>();
    if rest > 0.0 {
        cn_weights.insert(0, rest);
    }
    Ok(NnData { neighbors, cn_weights })
}

/// Offsets (Å) of the neighbours of a coordination environment.
pub fn offsets(neighbors: &[WeightedNeighbor]) -> Vec<Vector3<f64>> {
    neighbors.iter().map(|x| x.neighbor.offset).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_python() {
        assert_eq!(round3(0.0625), 0.062);
        assert_eq!(round3(0.1235), 0.123); // 0.1235 is stored as 0.12349999…
        assert_eq!(round3(0.9996), 1.0);
    }

    #[test]
    fn semicircle_weights_sum_to_one_over_all_bins() {
        let bins = [1.0, 0.8, 0.3, 0.0];
        let total: f64 = (0..3).map(|k| semicircle_integral(bins[k], bins[k + 1])).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}
