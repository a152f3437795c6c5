//! The surrogate of the `bo` algorithm: a Gaussian process that predicts, from a structure as proposed
//! (before relaxation), the first objective it will reach after relaxation, with an uncertainty; and the
//! expected-improvement acquisition that picks which proposals are worth an expensive evaluation.
//!
//! Descriptor: per element pair of the search (fixed order), the pair-distribution curve of the
//! Oganov–Valle fingerprint to 6 Å (0.2 Å bins, 0.2 Å smearing) at the structure's own density, plus the
//! volume per atom (Å³, scaled) and the element fractions. Kernel: squared exponential on the Euclidean
//! distance, length scale the median pairwise distance of the training set, noise 10⁻² of the target
//! variance. Written here rather than taken from a crate: it is forty lines on nalgebra's Cholesky, and
//! the GP crates bring their own linear-algebra stacks.

use nalgebra::{DMatrix, DVector};

use crate::crystal::fingerprint::{OvParams, oganov_valle};
use crate::crystal::{Element, Structure};

/// Fixed-length descriptor of a structure for a search over `elements`.
pub fn descriptor(s: &Structure, elements: &[Element]) -> Vec<f64> {
    let p = OvParams { rcut_ang: 6.0, binwidth_ang: 0.2, sigma_ang: 0.2, nsigma: 4.0 };
    let fp = oganov_valle(s, &p);
    let bins = (p.rcut_ang / p.binwidth_ang).round() as usize;
    let mut out = Vec::with_capacity(elements.len() * (elements.len() + 1) / 2 * bins + elements.len() + 1);
    for (i, a) in elements.iter().enumerate() {
        for b in &elements[i..] {
            match fp.curve(*a, *b) {
                Some(c) => out.extend(c.iter().take(bins).chain(std::iter::repeat(&0.0)).take(bins).copied()),
                None => out.extend(std::iter::repeat_n(0.0, bins)),
            }
        }
    }
    let n = s.n_sites().max(1) as f64;
    out.push(s.volume() / n / 10.0);
    for e in elements {
        out.push(s.species().iter().filter(|x| *x == e).count() as f64 / n * 3.0);
    }
    out
}

/// A fitted Gaussian process.
pub struct Gp {
    x: Vec<DVector<f64>>,
    alpha: DVector<f64>,
    chol: nalgebra::linalg::Cholesky<f64, nalgebra::Dyn>,
    length: f64,
    y_mean: f64,
    y_std: f64,
}

fn sq_dist(a: &DVector<f64>, b: &DVector<f64>) -> f64 {
    (a - b).norm_squared()
}

impl Gp {
    /// Fit on descriptors `x` and targets `y` (finite); `None` with fewer than 3 points.
    pub fn fit(x: &[Vec<f64>], y: &[f64]) -> Option<Gp> {
        if x.len() < 3 || x.len() != y.len() {
            return None;
        }
        let x: Vec<DVector<f64>> = x.iter().map(|v| DVector::from_vec(v.clone())).collect();
        let n = x.len();
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let y_std = (y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64).sqrt().max(1e-9);
        let mut d: Vec<f64> = Vec::new();
        for i in 0..n {
            for j in 0..i {
                d.push(sq_dist(&x[i], &x[j]).sqrt());
            }
        }
        d.sort_by(f64::total_cmp);
        let length = d.get(d.len() / 2).copied().filter(|l| *l > 1e-9).unwrap_or(1.0);
        let k = DMatrix::from_fn(n, n, |i, j| {
            (-sq_dist(&x[i], &x[j]) / (2.0 * length * length)).exp() + if i == j { 1e-2 } else { 0.0 }
        });
        let chol = k.cholesky()?;
        let yn = DVector::from_iterator(n, y.iter().map(|v| (v - y_mean) / y_std));
        let alpha = chol.solve(&yn);
        Some(Gp { x, alpha, chol, length, y_mean, y_std })
    }

    /// Predicted mean and standard deviation (target units) at descriptor `q`.
    pub fn predict(&self, q: &[f64]) -> (f64, f64) {
        let q = DVector::from_vec(q.to_vec());
        let ks = DVector::from_iterator(
            self.x.len(),
            self.x.iter().map(|x| (-sq_dist(x, &q) / (2.0 * self.length * self.length)).exp()),
        );
        let mean = ks.dot(&self.alpha);
        let v = self.chol.solve(&ks);
        let var = (1.0 + 1e-2 - ks.dot(&v)).max(1e-12);
        (self.y_mean + mean * self.y_std, var.sqrt() * self.y_std)
    }
}

/// Expected improvement below `best` (minimisation) of a prediction N(mean, std²).
pub fn expected_improvement(mean: f64, std: f64, best: f64) -> f64 {
    if std <= 0.0 {
        return (best - mean).max(0.0);
    }
    let z = (best - mean) / std;
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = 0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2));
    (best - mean) * cdf + std * pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gp_interpolates_and_is_uncertain_away_from_data() {
        let x: Vec<Vec<f64>> = (0..8).map(|i| vec![i as f64 * 0.5]).collect();
        let y: Vec<f64> = x.iter().map(|v| (v[0]).sin()).collect();
        let gp = Gp::fit(&x, &y).unwrap();
        let (m, s) = gp.predict(&[1.0]);
        assert!((m - 1f64.sin()).abs() < 0.05 && s < 0.2, "{m} {s}");
        let (_, far) = gp.predict(&[20.0]);
        assert!(far > 3.0 * s);
        // EI prefers low means and, at equal means, large uncertainty.
        assert!(expected_improvement(-1.0, 0.1, 0.0) > expected_improvement(0.5, 0.1, 0.0));
        assert!(expected_improvement(0.5, 1.0, 0.0) > expected_improvement(0.5, 0.1, 0.0));
    }
}
