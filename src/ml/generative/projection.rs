//! Two-dimensional maps of latent codes by principal component analysis: the plane through the codes'
//! mean spanned by their two directions of largest variance. Points on the map lift back to latent
//! codes (the other components at the mean), so a click on the map is a code the decoder can decode.

use serde::{Deserialize, Serialize};

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
        Some(Pca2 { axes: [axis(0), axis(1)], explained: [eig.eigenvalues[order[0]].max(0.0) / total, eig.eigenvalues[order[1]].max(0.0) / total], mean })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_plane_of_planar_codes_and_lifts_back() {
        // Codes on the plane spanned by (1, 1, 0)/√2 (spread 3) and (0, 0, 1) (spread 1), offset by (1, 2, 3).
        let codes: Vec<Vec<f64>> = (0..50).map(|i| {
            let (s, t) = (3.0 * ((i as f64) * 0.7).sin(), ((i as f64) * 1.3).cos());
            vec![1.0 + s / 2f64.sqrt(), 2.0 + s / 2f64.sqrt(), 3.0 + t]
        }).collect();
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
