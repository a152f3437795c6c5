//! The CrystalNN site fingerprint (matminer's `CrystalNNFingerprint.from_preset("ops")`, 61 values) and
//! its average over the sites, the structure fingerprint of CDVAE's coverage metrics (COV-R, COV-P).
//!
//! For each coordination number CN = 1…24 the site fingerprint holds CrystalNN's weight of that CN
//! ("wt"), then, for the motifs of that CN (see [`order_params::ops_preset`]), wt × the motif's order
//! parameter over the CN's neighbours (0 where the order parameter is undefined). Dimensionless.
//! Validated against matminer 0.10.1 / pymatgen 2026.10.24 by `tests/crystalnn_matminer.rs`.

use std::sync::OnceLock;

use super::Structure;
use super::crystal_nn::{self, NnData};
use super::order_params::{OrderParam, ops_preset};
use super::voronoi::VoronoiError;

/// Highest coordination number the fingerprint describes.
pub const MAX_CN: usize = 24;

/// Length of the fingerprint (61).
pub fn len() -> usize {
    preset().iter().map(|(_, ops)| 1 + ops.len()).sum()
}

type Preset = Vec<(usize, Vec<(&'static str, OrderParam)>)>;

fn preset() -> &'static Preset {
    static P: OnceLock<Preset> = OnceLock::new();
    P.get_or_init(|| (1..=MAX_CN).map(|cn| (cn, ops_preset(cn))).collect())
}

/// Feature labels in matminer's spelling ("wt CN_1", "sgl_bd CN_1", …).
pub fn labels() -> Vec<String> {
    let mut out = Vec::new();
    for (cn, ops) in preset() {
        out.push(format!("wt CN_{cn}"));
        out.extend(ops.iter().map(|(name, _)| format!("{name} CN_{cn}")));
    }
    out
}

/// The fingerprint of a site from its CrystalNN data.
pub fn from_nn_data(nn: &NnData) -> Vec<f64> {
    let mut out = Vec::with_capacity(61);
    for (cn, ops) in preset() {
        let wt = nn.cn_weights.get(cn).copied().unwrap_or(0.0);
        out.push(wt);
        if ops.is_empty() {
            continue;
        }
        let offsets = nn.cn_neighbors(*cn).map(crystal_nn::offsets).unwrap_or_default();
        for (_, op) in ops {
            out.push(if wt == 0.0 { 0.0 } else { wt * op.value(&offsets).unwrap_or(0.0) });
        }
    }
    out
}

/// The fingerprint of site `n` (matminer's `CrystalNNFingerprint.from_preset("ops").featurize(s, n)`).
pub fn site_fingerprint(s: &Structure, n: usize) -> Result<Vec<f64>, VoronoiError> {
    Ok(from_nn_data(&crystal_nn::nn_data(s, n)?))
}

/// The structure fingerprint: the site fingerprints averaged over all sites. An error when some site
/// has no Voronoi cell (overlapping atoms); CDVAE then leaves the crystal out of coverage.
pub fn structure_fingerprint(s: &Structure) -> Result<Vec<f64>, VoronoiError> {
    let n = s.n_sites();
    let mut acc = vec![0.0; len()];
    for i in 0..n {
        for (a, v) in acc.iter_mut().zip(site_fingerprint(s, i)?) {
            *a += v;
        }
    }
    if n > 0 {
        acc.iter_mut().for_each(|a| *a /= n as f64);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ops_preset_has_61_values() {
        assert_eq!(super::len(), 61);
        assert_eq!(super::labels()[1], "sgl_bd CN_1");
    }
}
