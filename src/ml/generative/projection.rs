//! Two-dimensional maps of latent codes.
//! - [`Pca2`], principal component analysis: the plane through the codes' mean spanned by their two
//!   directions of largest variance. Linear: points on the map lift back to latent codes (the other
//!   components at the mean), so a click on the map is a code the decoder can decode.
//! - [`Tsne2`], t-SNE (van der Maaten & Hinton 2008) with FFT-interpolated repulsion (FIt-SNE, Linderman
//!   et al. 2019) from the `bhtsne` crate, started from the PCA map. It keeps neighbourhoods rather than
//!   distances, so it has no formula either way: a new code is placed at the inverse-square-distance
//!   weighted mean of its [`MAP_NEIGHBOURS`] nearest fitted codes' points, and a map point lifts to the
//!   same weighted mean of the codes of its nearest points (a blend of the crystals around it).
//!
//! [`Projection`] holds either, and [`neighbour_preservation`] measures how well a map keeps each
//! code's nearest neighbours.

use serde::{Deserialize, Serialize};

/// Fitted codes used to place a new code on a t-SNE map, and map points used to lift a point back.
pub const MAP_NEIGHBOURS: usize = 10;
/// The t-SNE defaults: perplexity (the effective number of neighbours each code's affinities spread
/// over; 30 as in scikit-learn and openTSNE) and gradient-descent epochs.
pub const TSNE_PERPLEXITY: f64 = 30.0;
pub const TSNE_EPOCHS: usize = 750;

/// How a latent map is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MapMethod {
    #[default]
    Pca,
    Tsne,
}

impl MapMethod {
    pub const ALL: [MapMethod; 2] = [MapMethod::Pca, MapMethod::Tsne];

    pub fn label(self) -> &'static str {
        match self {
            MapMethod::Pca => "PCA",
            MapMethod::Tsne => "t-SNE",
        }
    }

    /// `pca` or `tsne` (also `t-sne`), any case.
    pub fn parse(s: &str) -> Result<MapMethod, String> {
        match s.to_ascii_lowercase().as_str() {
            "pca" => Ok(MapMethod::Pca),
            "tsne" | "t-sne" => Ok(MapMethod::Tsne),
            _ => Err(format!("unknown map method {s:?} (pca or tsne)")),
        }
    }
}

/// A PCA plane of latent codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca2 {
    pub mean: Vec<f64>,
    /// Two orthonormal axes (rows).
    pub axes: [Vec<f64>; 2],
    /// Share of the total variance along each axis.
    pub explained: [f64; 2],
}

impl Pca2 {
    /// Fit to codes (rows of equal length ≥ 2); `None` for fewer than two codes.
    pub fn fit(codes: &[Vec<f64>]) -> Option<Pca2> {
        let n = codes.len();
        let l = codes.first()?.len();
        if n < 2 || l < 2 {
            return None;
        }
        let mean: Vec<f64> = (0..l).map(|j| codes.iter().map(|c| c[j]).sum::<f64>() / n as f64).collect();
        let mut cov = nalgebra::DMatrix::<f64>::zeros(l, l);
        for c in codes {
            let d = nalgebra::DVector::from_iterator(l, c.iter().zip(&mean).map(|(x, m)| x - m));
            cov += &d * d.transpose();
        }
        cov /= (n - 1) as f64;
        let eig = nalgebra::SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..l).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum::<f64>().max(1e-300);
        let axis = |k: usize| {
            let v: Vec<f64> = eig.eigenvectors.column(order[k]).iter().copied().collect();
            // Sign convention: the largest component positive, so maps do not flip between fits.
            let big = v.iter().copied().fold(0.0f64, |a, x| if x.abs() > a.abs() { x } else { a });
            if big < 0.0 { v.iter().map(|x| -x).collect() } else { v }
        };
        Some(Pca2 {
            axes: [axis(0), axis(1)],
            explained: [eig.eigenvalues[order[0]].max(0.0) / total, eig.eigenvalues[order[1]].max(0.0) / total],
            mean,
        })
    }

    /// Map coordinates of a code.
    pub fn project(&self, z: &[f64]) -> [f64; 2] {
        let d = |k: usize| z.iter().zip(&self.mean).zip(&self.axes[k]).map(|((x, m), a)| (x - m) * a).sum::<f64>();
        [d(0), d(1)]
    }

    /// The code at map point `p` (mean + p₀·axis₀ + p₁·axis₁).
    pub fn lift(&self, p: [f64; 2]) -> Vec<f64> {
        self.mean.iter().enumerate().map(|(j, m)| m + p[0] * self.axes[0][j] + p[1] * self.axes[1][j]).collect()
    }
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Indices and squared distances of the `k` items nearest `at` (by `dist2`), nearest first.
fn nearest(n: usize, k: usize, dist2: impl Fn(usize) -> f64) -> Vec<(usize, f64)> {
    let mut best: Vec<(usize, f64)> = Vec::with_capacity(k + 1);
    for i in 0..n {
        let d = dist2(i);
        if best.len() < k || d < best[best.len() - 1].1 {
            let at = best.partition_point(|b| b.1 <= d);
            best.insert(at, (i, d));
            best.truncate(k);
        }
    }
    best
}

/// Inverse-square-distance weights of neighbours (all weight on an exact match).
fn weights(near: &[(usize, f64)]) -> Vec<f64> {
    if let Some(&(_, d)) = near.first()
        && d <= 1e-24
    {
        return near.iter().map(|n| if n.1 <= 1e-24 { 1.0 } else { 0.0 }).collect();
    }
    near.iter().map(|n| 1.0 / n.1).collect()
}

/// A t-SNE map of latent codes (see the module notes).
#[derive(Debug, Clone, PartialEq)]
pub struct Tsne2 {
    /// The fitted codes (rows).
    pub codes: Vec<Vec<f64>>,
    /// Map coordinates of each fitted code.
    pub points: Vec<[f64; 2]>,
    pub perplexity: f64,
    /// Kullback–Leibler divergence between the codes' and the map's affinities at the end (nats).
    pub kl_divergence: Option<f64>,
}

impl Tsne2 {
    /// Fit a map of `codes` (rows of equal length ≥ 2, finite). Needs more than 3 × `perplexity` codes
    /// (the neighbours each code's affinities are computed over). Deterministic: the start is the PCA map.
    pub fn fit(codes: &[Vec<f64>], perplexity: f64, epochs: usize) -> Result<Tsne2, String> {
        let n = codes.len();
        let l = codes.first().map_or(0, Vec::len);
        if perplexity.is_nan() || perplexity < 2.0 || perplexity.is_infinite() {
            return Err(format!("t-SNE perplexity must be at least 2 (got {perplexity})"));
        }
        if (n as f64) < 3.0 * perplexity + 2.0 {
            return Err(format!(
                "t-SNE with perplexity {perplexity} needs more than {} codes (got {n})",
                (3.0 * perplexity + 1.0).floor()
            ));
        }
        if epochs == 0 {
            return Err("t-SNE needs at least one epoch".into());
        }
        if let Some(i) = codes.iter().position(|c| c.len() != l || c.iter().any(|x| !x.is_finite())) {
            return Err(format!(
                "code {i} has {} numbers or a non-finite one (expected {l} finite numbers)",
                codes[i].len()
            ));
        }
        let pca = Pca2::fit(codes).ok_or("too few codes for a map")?;
        // The PCA map scaled to a standard deviation of 1e-4 on its first axis (openTSNE's start), so
        // the early-exaggeration phase starts from the global layout instead of noise.
        let start: Vec<[f64; 2]> = codes.iter().map(|c| pca.project(c)).collect();
        let sd = (start.iter().map(|p| p[0] * p[0]).sum::<f64>() / n as f64).sqrt().max(1e-12);
        let init: Vec<f32> =
            start.iter().flat_map(|p| [(p[0] / sd * 1e-4) as f32, (p[1] / sd * 1e-4) as f32]).collect();
        let flat: Vec<f32> = codes.iter().flatten().map(|&x| x as f32).collect();
        let samples: Vec<&[f32]> = flat.chunks(l).collect();
        let mut tsne = bhtsne::tSNE::<f32, &[f32], 2>::new(&samples);
        tsne.perplexity(perplexity as f32).epochs(epochs).initial_embedding(init);
        tsne.fit_sne(|a: &&[f32], b: &&[f32]| {
            a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
        });
        let y = tsne.embedding();
        let points: Vec<[f64; 2]> = y.chunks(2).map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
        if points.len() != n || points.iter().any(|p| !(p[0].is_finite() && p[1].is_finite())) {
            return Err("t-SNE gave a non-finite map".into());
        }
        Ok(Tsne2 { codes: codes.to_vec(), points, perplexity, kl_divergence: tsne.kl_divergence().map(f64::from) })
    }

    /// Map coordinates of a code: the inverse-square-distance weighted mean of the points of its
    /// [`MAP_NEIGHBOURS`] nearest fitted codes (a fitted code lands on its own point).
    pub fn project(&self, z: &[f64]) -> [f64; 2] {
        let near = nearest(self.codes.len(), MAP_NEIGHBOURS, |i| squared_distance(&self.codes[i], z));
        let w = weights(&near);
        let total: f64 = w.iter().sum();
        let mut p = [0.0; 2];
        for (&(i, _), wi) in near.iter().zip(&w) {
            p[0] += wi * self.points[i][0] / total;
            p[1] += wi * self.points[i][1] / total;
        }
        p
    }

    /// The code at map point `p`: the inverse-square-distance weighted mean of the codes of the
    /// [`MAP_NEIGHBOURS`] nearest map points.
    pub fn lift(&self, p: [f64; 2]) -> Vec<f64> {
        let near = nearest(self.points.len(), MAP_NEIGHBOURS, |i| {
            (self.points[i][0] - p[0]).powi(2) + (self.points[i][1] - p[1]).powi(2)
        });
        let w = weights(&near);
        let total: f64 = w.iter().sum();
        let l = self.codes.first().map_or(0, Vec::len);
        let mut z = vec![0.0; l];
        for (&(i, _), wi) in near.iter().zip(&w) {
            for (zj, cj) in z.iter_mut().zip(&self.codes[i]) {
                *zj += wi * cj / total;
            }
        }
        z
    }
}

/// A latent map of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    Pca(Pca2),
    Tsne(Tsne2),
}

impl Projection {
    /// Fit a map of `codes` (`perplexity` and `epochs` are t-SNE's; the defaults are [`TSNE_PERPLEXITY`]
    /// and [`TSNE_EPOCHS`]).
    pub fn fit(method: MapMethod, codes: &[Vec<f64>], perplexity: f64, epochs: usize) -> Result<Projection, String> {
        match method {
            MapMethod::Pca => Pca2::fit(codes).map(Projection::Pca).ok_or_else(|| "too few codes for a map".into()),
            MapMethod::Tsne => Tsne2::fit(codes, perplexity, epochs).map(Projection::Tsne),
        }
    }

    /// Map coordinates of the codes the map was fitted to (`codes`, in the same order).
    pub fn points(&self, codes: &[Vec<f64>]) -> Vec<[f64; 2]> {
        match self {
            Projection::Tsne(t) => t.points.clone(),
            Projection::Pca(p) => codes.iter().map(|c| p.project(c)).collect(),
        }
    }

    pub fn method(&self) -> MapMethod {
        match self {
            Projection::Pca(_) => MapMethod::Pca,
            Projection::Tsne(_) => MapMethod::Tsne,
        }
    }

    /// Length of the codes the map takes.
    pub fn latent_dim(&self) -> usize {
        match self {
            Projection::Pca(p) => p.mean.len(),
            Projection::Tsne(t) => t.codes.first().map_or(0, Vec::len),
        }
    }

    pub fn project(&self, z: &[f64]) -> [f64; 2] {
        match self {
            Projection::Pca(p) => p.project(z),
            Projection::Tsne(t) => t.project(z),
        }
    }

    pub fn lift(&self, p: [f64; 2]) -> Vec<f64> {
        match self {
            Projection::Pca(m) => m.lift(p),
            Projection::Tsne(t) => t.lift(p),
        }
    }

    /// Names of the two map axes.
    pub fn axis_labels(&self) -> [String; 2] {
        match self {
            Projection::Pca(p) => [
                format!("PC1 ({:.0} % of variance)", 100.0 * p.explained[0]),
                format!("PC2 ({:.0} %)", 100.0 * p.explained[1]),
            ],
            Projection::Tsne(t) => [format!("t-SNE 1 (perplexity {:.0})", t.perplexity), "t-SNE 2".into()],
        }
    }
}

/// How well a map keeps neighbourhoods: for each of the codes `sample` (indices), the share of its `k`
/// nearest codes (Euclidean, in the latent space) that are also among its `k` nearest map points,
/// averaged (1 = every neighbourhood kept; a random map gives about k / n).
pub fn neighbour_preservation(codes: &[Vec<f64>], points: &[[f64; 2]], k: usize, sample: &[usize]) -> f64 {
    let n = codes.len().min(points.len());
    if n < 2 || k == 0 || sample.is_empty() {
        return f64::NAN;
    }
    let k = k.min(n - 1);
    let mut sum = 0.0;
    for &i in sample {
        let inf = |j: usize, d: f64| if j == i { f64::INFINITY } else { d };
        let a = nearest(n, k, |j| inf(j, squared_distance(&codes[j], &codes[i])));
        let b =
            nearest(n, k, |j| inf(j, (points[j][0] - points[i][0]).powi(2) + (points[j][1] - points[i][1]).powi(2)));
        let kept = a.iter().filter(|x| b.iter().any(|y| y.0 == x.0)).count();
        sum += kept as f64 / k as f64;
    }
    sum / sample.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three clusters of 60 codes in 16 dimensions, centres 10 apart, spread 1 (deterministic noise).
    fn clusters() -> (Vec<Vec<f64>>, Vec<usize>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut codes, mut label) = (Vec::new(), Vec::new());
        for c in 0..3 {
            for _ in 0..60 {
                codes.push(
                    (0..16)
                        .map(|j| if j == c { 10.0 } else { 0.0 } + crate::ml::generative::train::gauss(&mut rng))
                        .collect(),
                );
                label.push(c);
            }
        }
        (codes, label)
    }
    use rand::SeedableRng;

    #[test]
    fn tsne_keeps_clusters_apart_and_places_and_lifts_codes_among_their_neighbours() {
        let (codes, label) = clusters();
        let t = Tsne2::fit(&codes, 15.0, 500).unwrap();
        assert_eq!(t.points.len(), codes.len());
        // Each point's nearest map neighbour belongs to its own cluster.
        for i in 0..codes.len() {
            let j = nearest(codes.len(), 2, |j| {
                if j == i {
                    f64::INFINITY
                } else {
                    (t.points[j][0] - t.points[i][0]).powi(2) + (t.points[j][1] - t.points[i][1]).powi(2)
                }
            })[0]
                .0;
            assert_eq!(label[i], label[j], "code {i}'s nearest map point {j} is in another cluster");
        }
        // A fitted code lands on its own point; a new code near cluster 1's centre lands among cluster 1.
        assert_eq!(t.project(&codes[7]), t.points[7]);
        let centre: Vec<f64> = (0..16).map(|j| if j == 1 { 10.0 } else { 0.0 }).collect();
        let p = t.project(&centre);
        let j = nearest(codes.len(), 1, |j| (t.points[j][0] - p[0]).powi(2) + (t.points[j][1] - p[1]).powi(2))[0].0;
        assert_eq!(label[j], 1);
        // Lifting a cluster-2 point gives a code in cluster 2 (nearest of the three centres).
        let z = t.lift(t.points[150]);
        assert!(z[2] > 5.0 && z[0] < 5.0 && z[1] < 5.0, "{z:?}");
        // It keeps neighbourhoods better than chance (k / n ≈ 0.06) and better than the PCA map.
        let all: Vec<usize> = (0..codes.len()).collect();
        let kept = neighbour_preservation(&codes, &t.points, 10, &all);
        let pca = Pca2::fit(&codes).unwrap();
        let flat: Vec<[f64; 2]> = codes.iter().map(|c| pca.project(c)).collect();
        let kept_pca = neighbour_preservation(&codes, &flat, 10, &all);
        assert!(kept > 0.3 && kept > kept_pca, "t-SNE keeps {kept:.3} of the neighbours, PCA {kept_pca:.3}");
    }

    #[test]
    fn tsne_refuses_what_it_cannot_fit() {
        let (codes, _) = clusters();
        assert!(Tsne2::fit(&codes[..40], 30.0, 100).unwrap_err().contains("needs more than 91 codes"));
        assert!(Tsne2::fit(&codes, 1.0, 100).is_err());
        let mut bad = codes.clone();
        bad[3][2] = f64::NAN;
        assert!(Tsne2::fit(&bad, 15.0, 100).unwrap_err().contains("code 3"));
        assert_eq!(MapMethod::parse("t-SNE"), Ok(MapMethod::Tsne));
        assert!(MapMethod::parse("umap").is_err());
    }

    #[test]
    fn finds_the_plane_of_planar_codes_and_lifts_back() {
        // Codes on the plane spanned by (1, 1, 0)/√2 (spread 3) and (0, 0, 1) (spread 1), offset by (1, 2, 3).
        let codes: Vec<Vec<f64>> = (0..50)
            .map(|i| {
                let (s, t) = (3.0 * ((i as f64) * 0.7).sin(), ((i as f64) * 1.3).cos());
                vec![1.0 + s / 2f64.sqrt(), 2.0 + s / 2f64.sqrt(), 3.0 + t]
            })
            .collect();
        let p = Pca2::fit(&codes).unwrap();
        // Both axes lie in the plane: orthogonal to its normal (1, −1, 0)/√2.
        for a in &p.axes {
            assert!((a[0] - a[1]).abs() < 1e-9, "{a:?}");
        }
        assert!((p.explained[0] + p.explained[1] - 1.0).abs() < 1e-9);
        for c in &codes {
            let back = p.lift(p.project(c));
            assert!(back.iter().zip(c).all(|(a, b)| (a - b).abs() < 1e-9));
        }
    }
}
