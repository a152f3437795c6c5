//! Structural validity as defined for generative-model benchmarks (CDVAE, MatterGen): every periodic
//! interatomic distance ≥ 0.5 Å and cell volume ≥ 0.1 Å³.

use serde::Serialize;

use super::Structure;

/// Minimum allowed periodic distance between two sites (Å).
pub const MIN_DISTANCE_ANG: f64 = 0.5;
/// Minimum allowed cell volume (Å³).
pub const MIN_VOLUME_ANG3: f64 = 0.1;

/// Verdict with the measured quantities, so a UI can say why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StructuralValidity {
    pub valid: bool,
    /// Shortest periodic distance between any two sites, self-images included (Å).
    pub min_distance_ang: f64,
    pub volume_ang3: f64,
}

impl StructuralValidity {
    /// The verdict for a measured shortest periodic distance (Å) and cell volume (Å³), for callers that
    /// have the distance already (e.g. from [`Structure::nearest_neighbor_distances`]).
    pub fn from_measures(min_distance_ang: f64, volume_ang3: f64) -> StructuralValidity {
        StructuralValidity {
            valid: volume_ang3 >= MIN_VOLUME_ANG3 && min_distance_ang >= MIN_DISTANCE_ANG,
            min_distance_ang,
            volume_ang3,
        }
    }
}

impl Structure {
    /// Structural validity: min periodic distance ≥ 0.5 Å and volume ≥ 0.1 Å³.
    pub fn structural_validity(&self) -> StructuralValidity {
        StructuralValidity::from_measures(self.min_distance(), self.volume())
    }

    pub fn is_structurally_valid(&self) -> bool {
        self.structural_validity().valid
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::Vector3;

    use crate::crystal::{Element, Lattice, Structure};

    #[test]
    fn close_atoms_are_invalid() {
        let h = Element::from_symbol("H").unwrap();
        let l = Lattice::cubic(4.0).unwrap();
        let ok =
            Structure::from_frac(l.clone(), vec![h, h], vec![Vector3::zeros(), Vector3::new(0.2, 0.0, 0.0)]).unwrap();
        assert!(ok.is_structurally_valid());
        // 0.99 and 0.0 are 0.04 Å apart through the periodic boundary.
        let bad = Structure::from_frac(l, vec![h, h], vec![Vector3::zeros(), Vector3::new(0.99, 0.0, 0.0)]).unwrap();
        let v = bad.structural_validity();
        assert!(!v.valid);
        assert!((v.min_distance_ang - 0.04).abs() < 1e-9);
    }
}
