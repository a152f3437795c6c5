//! The 12-6 Lennard-Jones pair potential (ASE's `LennardJones(smooth=False)`): energies in eV, σ in Å.

use nalgebra::{Matrix3, Vector3};

use super::calculator::{CalcError, Calculator, Evaluation};
use crate::crystal::{Element, Structure};

/// The 12-6 Lennard-Jones pair potential with a sharp cutoff, the energy shifted to vanish at the cutoff
/// (forces unshifted): ASE's `LennardJones(smooth=False)`. One σ, ε for every pair, optionally overridden
/// for given element pairs. For tests and toy systems; it knows no chemistry.
#[derive(Debug, Clone, PartialEq)]
pub struct LennardJones {
    /// Å.
    pub sigma: f64,
    /// eV.
    pub epsilon: f64,
    /// Cutoff radius (Å).
    pub cutoff: f64,
    /// Per-pair (σ, ε), keyed by the pair sorted by atomic number.
    pub pairs: Vec<((Element, Element), (f64, f64))>,
}

impl LennardJones {
    /// σ (Å), ε (eV), cutoff 3σ as ASE's default.
    pub fn new(sigma: f64, epsilon: f64) -> LennardJones {
        LennardJones { sigma, epsilon, cutoff: 3.0 * sigma, pairs: Vec::new() }
    }

    pub fn with_cutoff(mut self, cutoff: f64) -> LennardJones {
        self.cutoff = cutoff;
        self
    }

    /// σ (Å) and ε (eV) for the pair `a`–`b`.
    pub fn with_pair(mut self, a: Element, b: Element, sigma: f64, epsilon: f64) -> LennardJones {
        let key = if a <= b { (a, b) } else { (b, a) };
        self.pairs.retain(|(k, _)| *k != key);
        self.pairs.push((key, (sigma, epsilon)));
        self
    }

    fn params(&self, a: Element, b: Element) -> (f64, f64) {
        let key = if a <= b { (a, b) } else { (b, a) };
        self.pairs.iter().find(|(k, _)| *k == key).map_or((self.sigma, self.epsilon), |(_, p)| *p)
    }

    pub fn validate(&self) -> Result<(), CalcError> {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !(ok(self.sigma) && ok(self.epsilon) && ok(self.cutoff))
            || self.pairs.iter().any(|(_, (s, e))| !(ok(*s) && ok(*e)))
        {
            return Err(CalcError::Invalid(format!(
                "Lennard-Jones parameters must be positive and finite: σ={} Å, ε={} eV, cutoff={} Å",
                self.sigma, self.epsilon, self.cutoff
            )));
        }
        Ok(())
    }
}

impl Calculator for LennardJones {
    fn name(&self) -> String {
        format!("lennard-jones(sigma={} A, epsilon={} eV, cutoff={} A)", self.sigma, self.epsilon, self.cutoff)
    }

    fn calculate(&self, s: &Structure) -> Result<Evaluation, CalcError> {
        self.validate()?;
        let n = s.n_sites();
        let nl = s.neighbor_list(self.cutoff);
        let frac: Vec<Vector3<f64>> = s.frac_coords().iter().map(crate::crystal::structure::wrap_frac).collect();
        let species = s.species();
        let rc2 = self.cutoff * self.cutoff;
        let mut site_energies = vec![0.0; n];
        let mut forces = vec![Vector3::zeros(); n];
        let mut virial = Matrix3::zeros();
        for k in 0..nl.len() {
            let (i, j, img) = (nl.center[k], nl.neighbor[k], nl.image[k]);
            let d = s.lattice.to_cart(&(frac[j] - frac[i] + Vector3::new(img[0] as f64, img[1] as f64, img[2] as f64)));
            let r2 = d.norm_squared();
            if r2 > rc2 {
                continue;
            }
            let (sigma, eps) = self.params(species[i], species[j]);
            let c6 = (sigma * sigma / r2).powi(3);
            let c12 = c6 * c6;
            let sc6 = (sigma / self.cutoff).powi(6);
            let e0 = 4.0 * eps * (sc6 * sc6 - sc6);
            site_energies[i] += 0.5 * (4.0 * eps * (c12 - c6) - e0);
            // (1/r) dφ/dr, times the vector towards the neighbour: the force on i from j.
            let f = d * (-24.0 * eps * (2.0 * c12 - c6) / r2);
            forces[i] += f;
            virial += 0.5 * f * d.transpose();
        }
        let energy = site_energies.iter().sum();
        Ok(Evaluation {
            energy,
            forces,
            stress: virial / s.volume(),
            site_energies: Some(site_energies),
            magmoms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Lattice;

    fn dimer(r: f64) -> Structure {
        Structure::from_cart(
            Lattice::cubic(30.0).unwrap(),
            vec![Element::from_symbol("Ar").unwrap(); 2],
            &[Vector3::zeros(), Vector3::new(r, 0.0, 0.0)],
        )
        .unwrap()
    }

    #[test]
    fn dimer_has_its_minimum_at_two_to_the_sixth_sigma() {
        let lj = LennardJones::new(3.4, 0.01).with_cutoff(12.0);
        let r0 = 2f64.powf(1.0 / 6.0) * 3.4;
        let e = lj.calculate(&dimer(r0)).unwrap();
        let sc6 = (3.4f64 / 12.0).powi(6);
        assert!((e.energy - (-0.01 - 4.0 * 0.01 * (sc6 * sc6 - sc6))).abs() < 1e-12, "{}", e.energy);
        assert!(e.fmax() < 1e-12);
        // Closer than r0 the atoms push apart: the force on atom 0 points away from atom 1 (−x).
        let e = lj.calculate(&dimer(3.5)).unwrap();
        assert!(e.forces[0].x < 0.0 && (e.forces[0] + e.forces[1]).norm() < 1e-12);
        assert!(lj.calculate(&dimer(13.0)).unwrap().energy == 0.0);
        assert!(LennardJones::new(-1.0, 0.01).calculate(&dimer(3.5)).is_err());
    }
}
