//! Space groups and standard cells through moyo (a Rust port of spglib's ideas).

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;

use super::{CrystalError, Element, Lattice, Structure};

/// Default distance tolerance (Å) for symmetry search, as used for Materials Project data.
pub const DEFAULT_SYMPREC_ANG: f64 = 0.1;
/// Default angle tolerance (degrees), pymatgen's `SpacegroupAnalyzer` default.
pub const DEFAULT_ANGLE_TOL_DEG: f64 = 5.0;

/// A space-group operation: rotation in fractional coordinates and fractional translation.
pub type SymmetryOperation = (Matrix3<i32>, Vector3<f64>);

/// Symmetry of a structure at a given tolerance.
#[derive(Debug, Clone, Serialize)]
pub struct SymmetryInfo {
    /// International space-group number, 1–230.
    pub number: u8,
    /// Short Hermann–Mauguin symbol as moyo writes it (e.g. `"F m -3 m"`); see [`Self::symbol`].
    pub hm_symbol: String,
    /// Hall number 1–530 of the setting moyo identified.
    pub hall_number: u16,
    pub pearson_symbol: String,
    /// Number of symmetry operations in the input cell.
    pub n_operations: usize,
    /// Wyckoff letter of each input site.
    pub wyckoffs: Vec<char>,
    /// Index of the symmetry-equivalent representative of each input site.
    pub orbits: Vec<usize>,
    /// Tolerance moyo finally used (Å); moyo may tighten the requested one to find a consistent group.
    pub symprec_used_ang: f64,
}

impl SymmetryInfo {
    /// Short symbol without spaces, as pymatgen's `get_space_group_symbol` (`"Fm-3m"`).
    pub fn symbol(&self) -> String {
        self.hm_symbol.replace(' ', "")
    }
}

fn to_moyo(s: &Structure) -> moyo::base::Cell {
    let lattice = moyo::base::Lattice { basis: *s.lattice.cart_from_frac() };
    let positions = s.frac_coords().to_vec();
    let numbers = s.species().iter().map(|e| e.z() as i32).collect();
    moyo::base::Cell::new(lattice, positions, numbers)
}

fn from_moyo(cell: &moyo::base::Cell) -> Result<Structure, CrystalError> {
    let lattice = Lattice::from_cart_from_frac(cell.lattice.basis)?;
    let species = cell.numbers.iter().map(|&z| Element::from_z(z as u32)).collect::<Result<Vec<_>, _>>()?;
    let frac: Vec<Vector3<f64>> = cell.positions.clone();
    Structure::from_frac(lattice, species, frac)
}

fn dataset(s: &Structure, symprec_ang: f64) -> Result<moyo::MoyoDataset, CrystalError> {
    if symprec_ang.is_nan() || symprec_ang <= 0.0 {
        return Err(CrystalError::Symmetry(format!("symprec {symprec_ang} Å must be positive")));
    }
    let cell = to_moyo(s);
    let angle = moyo::base::AngleTolerance::Radian(DEFAULT_ANGLE_TOL_DEG.to_radians());
    // moyo panics on a few pathological inputs; a panic there must not take the caller down.
    std::panic::catch_unwind(|| moyo::MoyoDataset::new(&cell, symprec_ang, angle, moyo::data::Setting::Spglib, true))
        .map_err(|_| CrystalError::Symmetry("symmetry search panicked".into()))?
        .map_err(|e| CrystalError::Symmetry(format!("{e:?}")))
}

impl Structure {
    /// Space group and site symmetry at tolerance `symprec_ang` (Å), angle tolerance 5°.
    pub fn symmetry(&self, symprec_ang: f64) -> Result<SymmetryInfo, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        Ok(SymmetryInfo {
            number: d.number as u8,
            hm_symbol: d.hm_symbol.clone(),
            hall_number: d.hall_number as u16,
            pearson_symbol: d.pearson_symbol.clone(),
            n_operations: d.num_operations(),
            wyckoffs: d.wyckoffs.clone(),
            orbits: d.orbits.clone(),
            symprec_used_ang: d.symprec,
        })
    }

    /// International space-group number (1–230) at tolerance `symprec_ang` (Å).
    pub fn space_group_number(&self, symprec_ang: f64) -> Result<u8, CrystalError> {
        Ok(self.symmetry(symprec_ang)?.number)
    }

    /// The primitive standardized cell (spglib convention), properties kept.
    pub fn primitive_standard(&self, symprec_ang: f64) -> Result<Structure, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        let mut s = from_moyo(&d.prim_std_cell)?;
        s.properties = self.properties.clone();
        Ok(s)
    }

    /// The conventional standardized cell (spglib convention), properties kept.
    pub fn conventional_standard(&self, symprec_ang: f64) -> Result<Structure, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        let mut s = from_moyo(&d.std_cell)?;
        s.properties = self.properties.clone();
        Ok(s)
    }

    /// Symmetry operations (rotation in fractional coordinates, translation) of the input cell.
    pub fn symmetry_operations(&self, symprec_ang: f64) -> Result<Vec<SymmetryOperation>, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        Ok(d.operations.iter().map(|op| (op.rotation, op.translation)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rock_salt_is_fm3m() {
        let na = Element::from_symbol("Na").unwrap();
        let cl = Element::from_symbol("Cl").unwrap();
        let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let mut sp = vec![];
        let mut fr = vec![];
        for p in fcc {
            sp.push(na);
            fr.push(Vector3::from(p));
            sp.push(cl);
            fr.push(Vector3::from(p) + Vector3::new(0.5, 0.5, 0.5));
        }
        let s = Structure::from_frac(Lattice::cubic(5.64).unwrap(), sp, fr).unwrap();
        let info = s.symmetry(0.1).unwrap();
        assert_eq!(info.number, 225);
        assert_eq!(info.symbol(), "Fm-3m");
        let p = s.primitive_standard(0.1).unwrap();
        assert_eq!(p.n_sites(), 2);
        assert!((p.volume() - s.volume() / 4.0).abs() < 1e-6);
        let c = p.conventional_standard(0.1).unwrap();
        assert_eq!(c.n_sites(), 8);
    }
}
