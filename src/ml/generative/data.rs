//! Crystals as the generative model sees them: the Niggli-reduced cell (so the cell choice does not
//! matter), the lattice as six numbers, the composition as element fractions, and the clean
//! crystal graph the encoder reads. Also the noisy-structure edges the denoiser reads, shared by
//! training and sampling.

use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;

use crate::crystal::{CrystalError, Element, Lattice, LatticeParams, Structure};
use crate::ml::graph::{CrystalGraph, GraphSpec};

/// Element types the model places: Z = 1..=N_TYPES, stored as index Z − 1.
pub const N_TYPES: usize = 100;

/// Angles (degrees) a decoded lattice may take; the Niggli cells of the dataset lie well inside.
pub const ANGLE_RANGE_DEG: (f64, f64) = (45.0, 135.0);

/// One training crystal.
#[derive(Debug, Clone)]
pub struct GenSample {
    pub name: String,
    /// Atomic numbers, in site order.
    pub z: Vec<u8>,
    /// Fractional coordinates in the Niggli-reduced cell, wrapped into [0, 1).
    pub frac: Vec<Vector3<f64>>,
    pub lattice: Lattice,
    /// The lattice as six numbers: ln(a/N^⅓), ln(b/N^⅓), ln(c/N^⅓) (Å) and α, β, γ (degrees).
    pub lat6: [f64; 6],
    /// (type index, atomic fraction) of each element present.
    pub comp: Vec<(usize, f32)>,
    /// Formation energy (eV/atom) and band gap (eV) where known.
    pub props: [Option<f64>; 2],
    /// The clean crystal graph the encoder reads.
    pub graph: CrystalGraph,
}

/// The structure in its Niggli-reduced cell, coordinates wrapped.
pub fn canonical(s: &Structure) -> Result<Structure, CrystalError> {
    let (reduced, t) = s.lattice.niggli_reduced();
    let tinv = t
        .cast::<f64>()
        .try_inverse()
        .ok_or_else(|| CrystalError::InvalidParameters("Niggli transformation is singular".into()))?;
    let frac = s.frac_coords().iter().map(|f| crate::crystal::structure::wrap_frac(&(tinv * f))).collect();
    Structure::from_frac(reduced, s.species().to_vec(), frac)
}

/// Six lattice numbers of `l` for a cell of `n` atoms (see [`GenSample::lat6`]).
pub fn lat6_of(l: &Lattice, n: usize) -> [f64; 6] {
    let p = l.params();
    let s = (n.max(1) as f64).cbrt();
    [(p.a / s).ln(), (p.b / s).ln(), (p.c / s).ln(), p.alpha_deg, p.beta_deg, p.gamma_deg]
}

/// The lattice of six numbers for `n` atoms; angles are clamped to [`ANGLE_RANGE_DEG`]. Fails when
/// the angles make no cell.
pub fn lattice_from6(v: &[f64; 6], n: usize) -> Result<Lattice, CrystalError> {
    let s = (n.max(1) as f64).cbrt();
    let len = |x: f64| (x.clamp(-1.0, 3.5)).exp() * s;
    let ang = |x: f64| x.clamp(ANGLE_RANGE_DEG.0, ANGLE_RANGE_DEG.1);
    Lattice::from_parameters(LatticeParams {
        a: len(v[0]),
        b: len(v[1]),
        c: len(v[2]),
        alpha_deg: ang(v[3]),
        beta_deg: ang(v[4]),
        gamma_deg: ang(v[5]),
    })
}

/// Element fractions of `z` as (type index, fraction), in type order.
pub fn composition_of(z: &[u8]) -> Vec<(usize, f32)> {
    let mut counts = [0usize; N_TYPES];
    for &x in z {
        counts[(x as usize).clamp(1, N_TYPES) - 1] += 1;
    }
    counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, &c)| (i, c as f32 / z.len() as f32)).collect()
}

impl GenSample {
    /// Prepare a crystal; fails for elements beyond Z = 100, more than `max_atoms` sites or a cell that
    /// will not reduce.
    pub fn new(
        name: &str,
        s: &Structure,
        props: [Option<f64>; 2],
        graph: &GraphSpec,
        max_atoms: usize,
    ) -> Result<GenSample, String> {
        if s.n_sites() == 0 || s.n_sites() > max_atoms {
            return Err(format!("{name}: {} sites (the model takes 1 to {max_atoms})", s.n_sites()));
        }
        if let Some(e) = s.species().iter().find(|e| e.z() as usize > N_TYPES) {
            return Err(format!("{name}: {e} is beyond Z = {N_TYPES}"));
        }
        let c = canonical(s).map_err(|e| format!("{name}: {e}"))?;
        let z: Vec<u8> = c.species().iter().map(|e| e.z()).collect();
        Ok(GenSample {
            name: name.to_string(),
            comp: composition_of(&z),
            lat6: lat6_of(&c.lattice, z.len()),
            graph: CrystalGraph::build(&c, graph),
            frac: c.frac_coords().to_vec(),
            lattice: c.lattice.clone(),
            z,
            props,
        })
    }
}

/// Denoiser edges of one (noisy) structure: each atom receives edges from its `max_neighbors`
/// nearest periodic neighbours within `cutoff` Å. `vec[k]` is r(dst) − r(src image) (Å, Cartesian).
#[derive(Debug, Clone, Default)]
pub struct Edges {
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub vec: Vec<[f32; 3]>,
    pub dist: Vec<f32>,
}

/// Edges of atoms at fractional `frac` in `lattice`.
pub fn edges(lattice: &Lattice, z: &[u8], frac: &[Vector3<f64>], cutoff: f64, max_neighbors: usize) -> Edges {
    let species: Vec<Element> = z
        .iter()
        .map(|&x| Element::from_z(x as u32).unwrap_or_else(|_| Element::from_z(1).expect("H exists")))
        .collect();
    let Ok(s) = Structure::from_frac(lattice.clone(), species, frac.to_vec()) else { return Edges::default() };
    let nl = s.neighbor_list(cutoff);
    let wrapped: Vec<Vector3<f64>> = frac.iter().map(crate::crystal::structure::wrap_frac).collect();
    let mut per: Vec<Vec<(f64, usize, [i32; 3])>> = vec![Vec::new(); z.len()];
    for k in 0..nl.len() {
        per[nl.center[k]].push((nl.distance[k], nl.neighbor[k], nl.image[k]));
    }
    let m: &Matrix3<f64> = lattice.cart_from_frac();
    let mut e = Edges::default();
    for (i, list) in per.iter_mut().enumerate() {
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(d, j, img) in list.iter().take(max_neighbors) {
            let fj = wrapped[j] + Vector3::new(img[0] as f64, img[1] as f64, img[2] as f64);
            let v = m * (wrapped[i] - fj);
            e.src.push(j as u32);
            e.dst.push(i as u32);
            e.vec.push([v.x as f32, v.y as f32, v.z as f32]);
            e.dist.push(d as f32);
        }
    }
    e
}

/// A structure as the denoiser sees it: lattice, atomic numbers, fractional coordinates.
pub type Atoms<'a> = (&'a Lattice, &'a [u8], &'a [Vector3<f64>]);

/// Edges of many structures at once (in parallel).
pub fn edges_many(items: &[Atoms], cutoff: f64, max_neighbors: usize) -> Vec<Edges> {
    items.par_iter().map(|(l, z, f)| edges(l, z, f, cutoff, max_neighbors)).collect()
}

/// Minimum-image fractional difference a − b (components in [−½, ½)).
pub fn frac_diff(a: &Vector3<f64>, b: &Vector3<f64>) -> Vector3<f64> {
    (a - b).map(|x| x - x.round())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattice_round_trips_through_six_numbers() {
        let l = Lattice::from_parameters(LatticeParams {
            a: 4.0,
            b: 5.0,
            c: 6.5,
            alpha_deg: 80.0,
            beta_deg: 95.0,
            gamma_deg: 100.0,
        })
        .unwrap();
        let back = lattice_from6(&lat6_of(&l, 7), 7).unwrap().params();
        assert!((back.a - 4.0).abs() < 1e-9 && (back.c - 6.5).abs() < 1e-9 && (back.gamma_deg - 100.0).abs() < 1e-9);
    }

    #[test]
    fn edges_point_from_neighbour_to_centre_across_the_boundary() {
        let l = Lattice::cubic(4.0).unwrap();
        let frac = [Vector3::new(0.05, 0.5, 0.5), Vector3::new(0.95, 0.5, 0.5)];
        let e = edges(&l, &[11, 17], &frac, 1.0, 8);
        // Only the pair across the a face is within 1 Å (0.4 Å apart through the boundary).
        assert_eq!(e.src.len(), 2);
        let k = e.dst.iter().position(|&d| d == 0).unwrap();
        assert!((e.dist[k] - 0.4).abs() < 1e-5);
        assert!((e.vec[k][0] - 0.4).abs() < 1e-5, "{:?}", e.vec[k]);
    }
}
