//! The calculator seam: every energy model (the pair potential here, CHGNet, a user's TorchScript
//! potential) answers one question — energy, forces and stress of a periodic structure — behind one trait,
//! as ASE's `Calculator` does.
//!
//! Units and conventions (ASE's): energy in eV, forces in eV/Å (Cartesian, `F = −∂E/∂r`), stress as the
//! 3 × 3 tensor `σ = (1/V) ∂E/∂ε` in eV/Å³, positive when the cell pulls inwards (tensile), so the pressure
//! is `−tr σ / 3`. [`Evaluation::stress_gpa`] converts to GPa.

use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;
use thiserror::Error;

use crate::crystal::{Element, Structure};

/// eV/Å³ in GPa.
pub const EV_PER_ANG3_IN_GPA: f64 = 160.217_663_4;

/// What a calculator can fail on.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CalcError {
    #[error("{calculator} has no parameters for {element}")]
    UnsupportedElement { calculator: String, element: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{calculator} failed: {reason}")]
    Failed { calculator: String, reason: String },
}

/// Energy, forces and stress of one structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Total energy (eV).
    pub energy: f64,
    /// Force on each site (eV/Å, Cartesian).
    pub forces: Vec<Vector3<f64>>,
    /// Stress tensor (eV/Å³, ASE's sign: `(1/V) ∂E/∂ε`).
    pub stress: Matrix3<f64>,
    /// Energy of each site (eV) when the model decomposes it.
    pub site_energies: Option<Vec<f64>>,
    /// Magnetic moment of each site (μ_B) when the model predicts them (CHGNet).
    pub magmoms: Option<Vec<f64>>,
}

impl Evaluation {
    pub fn energy_per_atom(&self) -> f64 {
        self.energy / self.forces.len().max(1) as f64
    }

    /// Stress in GPa (same sign convention).
    pub fn stress_gpa(&self) -> Matrix3<f64> {
        self.stress * EV_PER_ANG3_IN_GPA
    }

    /// Pressure `−tr σ / 3` (GPa).
    pub fn pressure_gpa(&self) -> f64 {
        -self.stress_gpa().trace() / 3.0
    }

    /// Largest force magnitude (eV/Å).
    pub fn fmax(&self) -> f64 {
        self.forces.iter().map(|f| f.norm()).fold(0.0, f64::max)
    }
}

/// An energy model.
pub trait Calculator: Send + Sync {
    /// Name for logs and provenance (e.g. `lennard-jones(σ=3.4 Å, ε=0.0104 eV, rc=10.2 Å)`).
    fn name(&self) -> String;

    /// Whether the model can evaluate structures containing `element` (all elements by default).
    fn supports(&self, element: Element) -> bool {
        let _ = element;
        true
    }

    /// Energy, forces and stress of `structure`.
    fn calculate(&self, structure: &Structure) -> Result<Evaluation, CalcError>;

    /// Many structures; the default runs [`Calculator::calculate`] on the shared thread pool. Models that
    /// batch natively (one forward pass for many graphs) override it.
    fn calculate_batch(&self, structures: &[Structure]) -> Vec<Result<Evaluation, CalcError>> {
        structures.par_iter().map(|s| self.calculate(s)).collect()
    }
}

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

    fn validate(&self) -> Result<(), CalcError> {
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

/// A calculator from a short spec, as the CLI and job configs give it:
/// `chgnet` (the shipped CHGNet 0.3.0; `chgnet:weights=FILE.safetensors,batch=N` for other weights) or
/// `lj:sigma=3.405,epsilon=0.0104[,cutoff=10.2]` (Å, eV, Å; cutoff 3σ by default) or
/// `torchscript:path=FILE.pt[,dtype=f64]` (a user's TorchScript potential, see [`super::torchscript`]).
pub fn from_spec(spec: &str) -> Result<Box<dyn Calculator>, CalcError> {
    let bad = |m: String| CalcError::Invalid(m);
    let (kind, args) = spec.split_once(':').unwrap_or((spec, ""));
    // `key=value` pairs separated by commas, trimmed.
    let pairs = || -> Result<Vec<(&str, &str)>, CalcError> {
        args.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .ok_or_else(|| bad(format!("expected key=value, got {kv:?}")))
            })
            .collect()
    };
    match kind.trim() {
        "lj" | "lennard-jones" => {
            let (mut sigma, mut epsilon, mut cutoff) = (None, None, None);
            for (k, v) in pairs()? {
                let v: f64 = v.parse().map_err(|_| bad(format!("{k} is not a number: {v:?}")))?;
                match k {
                    "sigma" => sigma = Some(v),
                    "epsilon" => epsilon = Some(v),
                    "cutoff" | "rc" => cutoff = Some(v),
                    other => {
                        return Err(bad(format!("unknown Lennard-Jones parameter {other:?} (sigma, epsilon, cutoff)")));
                    }
                }
            }
            let (Some(sigma), Some(epsilon)) = (sigma, epsilon) else {
                return Err(bad("give sigma (Å) and epsilon (eV), e.g. lj:sigma=3.405,epsilon=0.0104".into()));
            };
            let mut lj = LennardJones::new(sigma, epsilon);
            if let Some(c) = cutoff {
                lj = lj.with_cutoff(c);
            }
            lj.validate()?;
            Ok(Box::new(lj))
        }
        "chgnet" => {
            let (mut weights, mut batch) = (None, super::chgnet::DEFAULT_BATCH);
            for (k, v) in pairs()? {
                match k {
                    "weights" | "path" => weights = Some(std::path::PathBuf::from(v)),
                    "batch" => {
                        batch = v
                            .parse()
                            .ok()
                            .filter(|&b: &usize| b > 0)
                            .ok_or_else(|| bad(format!("batch must be a positive integer, got {v:?}")))?
                    }
                    other => {
                        return Err(bad(format!(
                            "unknown CHGNet parameter {other:?} (weights=FILE.safetensors, batch=N)"
                        )));
                    }
                }
            }
            let c = match weights {
                Some(p) => super::chgnet::Chgnet::from_file(&p)?,
                None => super::chgnet::Chgnet::pretrained(),
            };
            Ok(Box::new(c.with_batch_size(batch)))
        }
        "torchscript" | "ts" => {
            let (mut path, mut double) = (None, false);
            for (k, v) in pairs()? {
                match (k, v) {
                    ("path" | "file", v) => path = Some(std::path::PathBuf::from(v)),
                    ("dtype", "f64" | "float64" | "double") => double = true,
                    ("dtype", "f32" | "float32" | "float") => double = false,
                    ("dtype", other) => return Err(bad(format!("dtype must be f32 or f64, got {other:?}"))),
                    (other, _) => {
                        return Err(bad(format!(
                            "unknown TorchScript parameter {other:?} (path=FILE.pt, dtype=f32|f64)"
                        )));
                    }
                }
            }
            let path = path.ok_or_else(|| bad("give the module: torchscript:path=FILE.pt[,dtype=f64]".into()))?;
            Ok(Box::new(super::torchscript::TorchScriptPotential::load(&path, double)?))
        }
        other => Err(bad(format!(
            "unknown potential {other:?}; available: chgnet[:weights=FILE], lj:sigma=…,epsilon=…[,cutoff=…], torchscript:path=FILE.pt[,dtype=f64]"
        ))),
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
