//! Periodic neighbour search: every (centre, neighbour, image) triple within a cutoff.
//!
//! Correct for strongly skewed cells and cutoffs larger than the cell: the range of lattice images
//! along axis i is bounded by `cutoff / d_i`, where `d_i` is the spacing of lattice planes normal to
//! reciprocal vector i, so no image within the sphere is missed.

use nalgebra::Vector3;

use super::structure::wrap_frac;
use super::{Lattice, Structure};

/// Distances below this (Å) are the site itself and never counted, as pymatgen's `numerical_tol`.
pub const SELF_TOLERANCE: f64 = 1e-8;

/// A flat neighbour list in pymatgen's `get_neighbor_list` layout. Entry k says that site
/// `neighbor[k]` translated by lattice vector `image[k]` (in units of a, b, c, relative to the
/// wrapped coordinates) lies `distance[k]` Å from site `center[k]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeighborList {
    pub center: Vec<usize>,
    pub neighbor: Vec<usize>,
    pub image: Vec<[i32; 3]>,
    /// Å.
    pub distance: Vec<f64>,
}

impl NeighborList {
    pub fn len(&self) -> usize {
        self.center.len()
    }

    pub fn is_empty(&self) -> bool {
        self.center.is_empty()
    }

    /// Number of neighbours of each site.
    pub fn counts(&self, n_sites: usize) -> Vec<usize> {
        let mut c = vec![0; n_sites];
        for &i in &self.center {
            c[i] += 1;
        }
        c
    }
}

/// Most lattice images searched along one axis. Only absurd cells (plane spacings below 1/400 of the
/// cutoff, far below any physical crystal) reach it; there the search is truncated rather than hang.
pub const MAX_IMAGES_PER_AXIS: i32 = 200;

/// Image ranges ±n_i that cover every point within `cutoff` of any point in the unit cell, for
/// differences of wrapped coordinates (which lie in (−1, 1)).
fn image_bounds(lattice: &Lattice, cutoff: f64) -> [i32; 3] {
    let spacing = lattice.plane_spacings();
    [0, 1, 2].map(|i| {
        let n = (cutoff / spacing[i]).ceil();
        if n.is_finite() { (n as i32).saturating_add(1).min(MAX_IMAGES_PER_AXIS) } else { MAX_IMAGES_PER_AXIS }
    })
}

impl Structure {
    /// All neighbour pairs with distance in (1e-8, `cutoff`] Å, both directions listed.
    pub fn neighbor_list(&self, cutoff: f64) -> NeighborList {
        let mut out = NeighborList::default();
        if cutoff.is_nan() || cutoff <= 0.0 || !cutoff.is_finite() {
            return out;
        }
        let frac: Vec<Vector3<f64>> = self.frac_coords().iter().map(wrap_frac).collect();
        let cart: Vec<Vector3<f64>> = frac.iter().map(|f| self.lattice.to_cart(f)).collect();
        let [na, nb, nc] = image_bounds(&self.lattice, cutoff);
        let cut2 = cutoff * cutoff;
        let (va, vb, vc) = (self.lattice.vector(0), self.lattice.vector(1), self.lattice.vector(2));
        // Precompute image translations; prune those that cannot reach the sphere from any pair
        // (|T| > cutoff + 2 × cell diagonal bound would be safe but the ± bounds are already tight).
        let mut images: Vec<([i32; 3], Vector3<f64>)> = Vec::new();
        for i in -na..=na {
            for j in -nb..=nb {
                for k in -nc..=nc {
                    images.push(([i, j, k], va * i as f64 + vb * j as f64 + vc * k as f64));
                }
            }
        }
        let frac_from_cart = self.lattice.frac_from_cart();
        let bounds = [0, 1, 2].map(|i| cutoff * frac_from_cart.row(i).norm());
        for (a, ca) in cart.iter().enumerate() {
            for (b, cb) in cart.iter().enumerate() {
                let d = cb - ca;
                let df = frac[b] - frac[a];
                for (img, t) in &images {
                    // Skip images whose fractional offset lies outside the slab that can hold the sphere.
                    if (df.x + img[0] as f64).abs() > bounds[0] + 1e-9
                        || (df.y + img[1] as f64).abs() > bounds[1] + 1e-9
                        || (df.z + img[2] as f64).abs() > bounds[2] + 1e-9
                    {
                        continue;
                    }
                    let v = d + t;
                    let r2 = v.norm_squared();
                    if r2 <= cut2 {
                        let r = r2.sqrt();
                        if r > SELF_TOLERANCE {
                            out.center.push(a);
                            out.neighbor.push(b);
                            out.image.push(*img);
                            out.distance.push(r);
                        }
                    }
                }
            }
        }
        out
    }

    /// Shortest distance between any two sites, including a site and its own images (Å).
    pub fn min_distance(&self) -> f64 {
        let m = MinImage::new(&self.lattice);
        let cart = self.cart_coords();
        let mut best = f64::INFINITY;
        for i in 0..cart.len() {
            for j in i..cart.len() {
                best = best.min(m.distance(&(cart[j] - cart[i]), i == j));
            }
        }
        best
    }

    /// Distance from each site to its nearest neighbour, its own images included (Å).
    pub fn nearest_neighbor_distances(&self) -> Vec<f64> {
        let m = MinImage::new(&self.lattice);
        let cart = self.cart_coords();
        (0..cart.len())
            .map(|i| (0..cart.len()).map(|j| m.distance(&(cart[j] - cart[i]), i == j)).fold(f64::INFINITY, f64::min))
            .collect()
    }
}

/// Minimum-image distances computed in the Niggli-reduced basis of a lattice, where a small image
/// search is exact and cheap even for strongly skewed input cells.
pub struct MinImage {
    reduced: Lattice,
}

impl MinImage {
    pub fn new(lattice: &Lattice) -> MinImage {
        MinImage { reduced: lattice.niggli_reduced().0 }
    }

    /// Shortest |v + T| (Å) over lattice translations T for a Cartesian vector `v`; with
    /// `exclude_zero`, zero-length results (a site and itself) are skipped.
    pub fn distance(&self, cart: &Vector3<f64>, exclude_zero: bool) -> f64 {
        let f = wrap_frac(&self.reduced.to_frac(cart));
        min_image_distance(&self.reduced, &f, exclude_zero)
    }
}

/// Shortest |d + T| over lattice translations T for a wrapped fractional difference `d`; when
/// `exclude_zero`, vectors shorter than [`SELF_TOLERANCE`] are skipped (distance of a site to itself).
pub fn min_image_distance(lattice: &Lattice, d: &Vector3<f64>, exclude_zero: bool) -> f64 {
    // Start from the reduced-basis guess, then search a sphere of that radius exactly.
    let cart = lattice.to_cart(d);
    let mut guess = cart.norm();
    if exclude_zero && guess < SELF_TOLERANCE {
        guess = f64::INFINITY;
    }
    for i in 0..3 {
        let v = lattice.vector(i);
        for s in [-1.0, 1.0] {
            let r = (cart + v * s).norm();
            if r > SELF_TOLERANCE || !exclude_zero {
                guess = guess.min(r);
            }
        }
    }
    let [na, nb, nc] = image_bounds(lattice, guess);
    let mut best = guess;
    for i in -na..=na {
        for j in -nb..=nb {
            for k in -nc..=nc {
                let v = cart + lattice.to_cart(&Vector3::new(i as f64, j as f64, k as f64));
                let r = v.norm();
                if r < best && (r > SELF_TOLERANCE || !exclude_zero) {
                    best = r;
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Element;

    /// Brute force over a generous image box, for cross-checking.
    fn brute_count(s: &Structure, cutoff: f64, n: i32) -> usize {
        let cart = s.wrapped().cart_coords();
        let mut c = 0;
        for a in &cart {
            for b in &cart {
                for i in -n..=n {
                    for j in -n..=n {
                        for k in -n..=n {
                            let t = s.lattice.to_cart(&Vector3::new(i as f64, j as f64, k as f64));
                            let r = (b + t - a).norm();
                            if r > SELF_TOLERANCE && r <= cutoff {
                                c += 1;
                            }
                        }
                    }
                }
            }
        }
        c
    }

    #[test]
    fn skewed_cell_and_large_cutoff() {
        // Same lattice written with a very skewed basis: counts must not change.
        let si = Element::from_symbol("Si").unwrap();
        let l = Lattice::from_row_vectors([[3.0, 0.0, 0.0], [0.0, 3.2, 0.0], [0.0, 0.0, 2.9]]).unwrap();
        let s = Structure::from_frac(l, vec![si, si], vec![Vector3::zeros(), Vector3::new(0.5, 0.4, 0.3)]).unwrap();
        let skew = s.supercell([[1, 0, 0], [5, 1, 0], [-3, 4, 1]]).unwrap();
        assert_eq!(skew.n_sites(), 2);
        for cutoff in [2.0, 4.5, 9.0] {
            let a = s.neighbor_list(cutoff).len();
            let b = skew.neighbor_list(cutoff).len();
            assert_eq!(a, b, "cutoff {cutoff}");
            assert_eq!(a, brute_count(&s, cutoff, 5));
        }
    }

    #[test]
    fn min_distance_in_skewed_cell() {
        let si = Element::from_symbol("Si").unwrap();
        let l = Lattice::from_row_vectors([[3.0, 0.0, 0.0], [0.0, 3.2, 0.0], [0.0, 0.0, 2.9]]).unwrap();
        let s = Structure::from_frac(l, vec![si], vec![Vector3::zeros()]).unwrap();
        let skew = s.supercell([[1, 0, 0], [7, 1, 0], [-3, 9, 1]]).unwrap();
        assert!((skew.min_distance() - 2.9).abs() < 1e-9, "{}", skew.min_distance());
    }
}
