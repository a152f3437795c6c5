//! Periodic structures: a lattice plus species at fractional coordinates, with free-form properties.

use std::collections::BTreeMap;

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Composition, CrystalError, Element, Lattice};

/// Grams per amu (CODATA 2018), for densities in g/cm³.
pub const GRAMS_PER_AMU: f64 = 1.660_539_066_60e-24;
/// Cubic centimetres per cubic Ångström.
pub const CM3_PER_ANG3: f64 = 1e-24;

/// An ordered periodic crystal: one element per site at fractional coordinates of `lattice`.
///
/// Coordinates are stored as given (not wrapped); use [`Structure::wrapped`] for coordinates in
/// [0, 1). `site_properties` hold one JSON value per site (e.g. `"selective_dynamics"`, `"forces"`,
/// `"label"`); `properties` hold per-structure values (e.g. `"formation_energy_per_atom"` in eV/atom).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    pub lattice: Lattice,
    species: Vec<Element>,
    frac_coords: Vec<Vector3<f64>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site_properties: BTreeMap<String, Vec<Value>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Value>,
}

impl Structure {
    /// Build from fractional coordinates. Fails on length mismatch, no sites, or non-finite values.
    pub fn from_frac(
        lattice: Lattice,
        species: Vec<Element>,
        frac_coords: Vec<Vector3<f64>>,
    ) -> Result<Structure, CrystalError> {
        if species.len() != frac_coords.len() {
            return Err(CrystalError::LengthMismatch { n_species: species.len(), n_coords: frac_coords.len() });
        }
        if species.is_empty() {
            return Err(CrystalError::Empty);
        }
        if let Some(v) = frac_coords.iter().flat_map(|c| c.iter()).find(|v| !v.is_finite()) {
            return Err(CrystalError::NonFinite { what: "coordinates".into(), value: *v });
        }
        Ok(Structure { lattice, species, frac_coords, site_properties: BTreeMap::new(), properties: BTreeMap::new() })
    }

    /// Build from Cartesian coordinates (Å).
    pub fn from_cart(
        lattice: Lattice,
        species: Vec<Element>,
        cart_coords: &[Vector3<f64>],
    ) -> Result<Structure, CrystalError> {
        let frac = cart_coords.iter().map(|c| lattice.to_frac(c)).collect();
        Structure::from_frac(lattice, species, frac)
    }

    pub fn n_sites(&self) -> usize {
        self.species.len()
    }

    pub fn species(&self) -> &[Element] {
        &self.species
    }

    pub fn frac_coords(&self) -> &[Vector3<f64>] {
        &self.frac_coords
    }

    /// Cartesian coordinates (Å).
    pub fn cart_coords(&self) -> Vec<Vector3<f64>> {
        self.frac_coords.iter().map(|f| self.lattice.to_cart(f)).collect()
    }

    /// Cell volume (Å³).
    pub fn volume(&self) -> f64 {
        self.lattice.volume()
    }

    pub fn composition(&self) -> Composition {
        Composition::from_pairs(self.species.iter().map(|e| (*e, 1.0)))
    }

    /// pymatgen's `reduced_formula` of the composition.
    pub fn reduced_formula(&self) -> String {
        self.composition().reduced_formula()
    }

    /// Mass density (g/cm³).
    pub fn density(&self) -> f64 {
        self.composition().weight() * GRAMS_PER_AMU / (self.volume() * CM3_PER_ANG3)
    }

    /// A copy with every fractional coordinate wrapped into [0, 1) (values within 1e-12 of 1 become 0).
    pub fn wrapped(&self) -> Structure {
        let mut s = self.clone();
        for f in &mut s.frac_coords {
            *f = wrap_frac(f);
        }
        s
    }

    /// Replace the lattice keeping fractional coordinates (strain or rescaling).
    pub fn with_lattice(&self, lattice: Lattice) -> Structure {
        Structure { lattice, ..self.clone() }
    }

    /// Isotropically scaled copy with volume `v` (Å³).
    pub fn scaled_to_volume(&self, v: f64) -> Result<Structure, CrystalError> {
        Ok(self.with_lattice(self.lattice.scaled_to_volume(v)?))
    }

    /// Supercell with pymatgen's `make_supercell` semantics: new lattice rows = `m` × old rows.
    /// Site properties are repeated; structure properties kept.
    pub fn supercell(&self, m: [[i32; 3]; 3]) -> Result<Structure, CrystalError> {
        let mi = Matrix3::from_fn(|i, j| m[i][j]);
        let det = mi.map(|x| x as f64).determinant().round() as i64;
        if det == 0 {
            return Err(CrystalError::InvalidParameters("supercell matrix is singular".into()));
        }
        // New columns: new_col_i = Σ_j old_col_j m[i][j]  →  C' = C mᵀ.
        let lattice = self.lattice.supercell(&mi.transpose())?;
        // Old fractional p maps to new fractional f' = (mᵀ)⁻¹ p.
        let to_new = mi.transpose().map(|x| x as f64).try_inverse().expect("det != 0");
        // Lattice points of the old lattice inside the new cell: search the box spanned by its corners.
        let mut lo = [i32::MAX; 3];
        let mut hi = [i32::MIN; 3];
        for corner in 0..8 {
            let mut p = [0i32; 3];
            for (k, row) in m.iter().enumerate() {
                if corner >> k & 1 == 1 {
                    for d in 0..3 {
                        p[d] += row[d];
                    }
                }
            }
            for d in 0..3 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        let mut points = Vec::new();
        for i in lo[0]..=hi[0] {
            for j in lo[1]..=hi[1] {
                for k in lo[2]..=hi[2] {
                    let f = to_new * Vector3::new(i as f64, j as f64, k as f64);
                    if f.iter().all(|x| *x >= -1e-9 && *x < 1.0 - 1e-9) {
                        points.push(Vector3::new(i as f64, j as f64, k as f64));
                    }
                }
            }
        }
        debug_assert_eq!(points.len() as i64, det.abs());
        let mut species = Vec::with_capacity(self.n_sites() * points.len());
        let mut frac = Vec::with_capacity(species.capacity());
        let mut index = Vec::with_capacity(species.capacity());
        for (s, f) in self.frac_coords.iter().enumerate() {
            for p in &points {
                species.push(self.species[s]);
                frac.push(wrap_frac(&(to_new * (f + p))));
                index.push(s);
            }
        }
        let mut out = Structure::from_frac(lattice, species, frac)?;
        out.properties = self.properties.clone();
        for (k, v) in &self.site_properties {
            out.site_properties.insert(k.clone(), index.iter().map(|&i| v[i].clone()).collect());
        }
        Ok(out)
    }

    /// Diagonal supercell n_a × n_b × n_c.
    pub fn repeat(&self, n: [i32; 3]) -> Result<Structure, CrystalError> {
        self.supercell([[n[0], 0, 0], [0, n[1], 0], [0, 0, n[2]]])
    }

    /// Copy with sites reordered by `order` (a permutation of site indices).
    pub fn permuted(&self, order: &[usize]) -> Structure {
        let mut s = self.clone();
        s.species = order.iter().map(|&i| self.species[i]).collect();
        s.frac_coords = order.iter().map(|&i| self.frac_coords[i]).collect();
        for (k, v) in &self.site_properties {
            s.site_properties.insert(k.clone(), order.iter().map(|&i| v[i].clone()).collect());
        }
        s
    }

    /// Copy with every site moved by `shift` (fractional).
    pub fn translated(&self, shift: Vector3<f64>) -> Structure {
        let mut s = self.clone();
        for f in &mut s.frac_coords {
            *f += shift;
        }
        s
    }

    /// Copy with species replaced through `map` (sites of unmapped elements keep theirs).
    pub fn substituted(&self, map: &BTreeMap<Element, Element>) -> Structure {
        let mut s = self.clone();
        for e in &mut s.species {
            if let Some(n) = map.get(e) {
                *e = *n;
            }
        }
        s
    }

    /// Mutable access for in-place edits (relaxation, mutation operators).
    pub fn frac_coords_mut(&mut self) -> &mut [Vector3<f64>] {
        &mut self.frac_coords
    }

    /// Smallest periodic distance between sites `i` and `j` (Å), over all lattice images; for `i == j`
    /// the shortest non-zero lattice vector.
    pub fn distance(&self, i: usize, j: usize) -> f64 {
        let d = self.lattice.to_cart(&(self.frac_coords[j] - self.frac_coords[i]));
        super::neighbors::MinImage::new(&self.lattice).distance(&d, i == j)
    }
}

/// Wrap fractional coordinates into [0, 1); values that round to 1 become 0.
pub fn wrap_frac(f: &Vector3<f64>) -> Vector3<f64> {
    f.map(|x| {
        let w = x - x.floor();
        if w >= 1.0 - 1e-12 { 0.0 } else { w }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rocksalt() -> Structure {
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
        Structure::from_frac(Lattice::cubic(5.64).unwrap(), sp, fr).unwrap()
    }

    #[test]
    fn density_of_rock_salt() {
        // NaCl: 4 × 58.443 amu in (5.64 Å)³ → 2.165 g/cm³ (pymatgen gives the same to 1e-6)
        let s = rocksalt();
        assert!((s.density() - 2.1644).abs() < 1e-3, "{}", s.density());
        assert_eq!(s.reduced_formula(), "NaCl");
    }

    #[test]
    fn supercells() {
        let s = rocksalt();
        let big = s.repeat([2, 1, 3]).unwrap();
        assert_eq!(big.n_sites(), 48);
        assert!((big.volume() - 6.0 * s.volume()).abs() < 1e-9);
        let skew = s.supercell([[1, 1, 0], [-1, 1, 0], [0, 0, 1]]).unwrap();
        assert_eq!(skew.n_sites(), 16);
        assert!((skew.density() - s.density()).abs() < 1e-12);
        assert!(skew.frac_coords().iter().all(|f| f.iter().all(|x| (0.0..1.0).contains(x))));
    }

    #[test]
    fn distances() {
        let s = rocksalt();
        assert!((s.distance(0, 3) - 5.64 * 0.5).abs() < 1e-9);
        assert!((s.distance(0, 1) - 5.64 * 3f64.sqrt() / 2.0).abs() < 1e-9);
        // A site to its own nearest image: the cubic lattice vector.
        assert!((s.distance(0, 0) - 5.64).abs() < 1e-9);
    }
}
