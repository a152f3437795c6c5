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
        if self.n_sites() > BRUTE_FORCE_SITES {
            return self.nearest_neighbor_distances().into_iter().fold(f64::INFINITY, f64::min);
        }
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

    /// Distance from each site to its nearest neighbour, its own images included (Å). Cells of more than
    /// [`BRUTE_FORCE_SITES`] sites use a cell list ([`cell_list_nearest`]): near-linear instead of
    /// quadratic, with the same answers.
    pub fn nearest_neighbor_distances(&self) -> Vec<f64> {
        let m = MinImage::new(&self.lattice);
        let cart = self.cart_coords();
        let brute =
            |i: usize| (0..cart.len()).map(|j| m.distance(&(cart[j] - cart[i]), i == j)).fold(f64::INFINITY, f64::min);
        if cart.len() <= BRUTE_FORCE_SITES {
            return (0..cart.len()).map(brute).collect();
        }
        // A radius that holds a neighbour of almost every site of a dense crystal: 1.5 × the cube root of
        // the volume per site. Sites with none inside are searched again at twice the radius, and after
        // four doublings by the quadratic search (a few isolated atoms in a large vacuum).
        let frac: Vec<Vector3<f64>> = self.frac_coords().iter().map(wrap_frac).collect();
        let mut radius = 1.5 * (self.volume() / cart.len() as f64).cbrt();
        let mut out = vec![f64::INFINITY; cart.len()];
        let mut todo: Vec<usize> = (0..cart.len()).collect();
        for _ in 0..4 {
            if todo.is_empty() || !radius.is_finite() || radius <= 0.0 {
                break;
            }
            let found = cell_list_nearest(&self.lattice, &frac, &todo, radius);
            let mut still = Vec::new();
            for (&i, d) in todo.iter().zip(found) {
                match d {
                    Some(d) => out[i] = d,
                    None => still.push(i),
                }
            }
            todo = still;
            radius *= 2.0;
        }
        for i in todo {
            out[i] = brute(i);
        }
        out
    }
}

/// Cells with at most this many sites take the quadratic minimum-image search (exact, and quicker than
/// building a cell list for small cells).
pub const BRUTE_FORCE_SITES: usize = 64;

/// Most bins along one axis of a cell list.
const MAX_BINS_PER_AXIS: usize = 128;

/// For each site of `query`, the distance to its nearest neighbour (its own images included) when that
/// is at most `radius` Å, else `None`. `frac` are the wrapped fractional coordinates of every site.
///
/// A cell list: the cell is cut into bins at least `radius` wide normal to each pair of axes (by the
/// lattice-plane spacings, so skewed cells are handled), and a site is compared with the sites of the bins
/// within reach, each through the lattice translation that brings that bin next to its own. Every point
/// within `radius` lies in a bin within ±⌈radius·n/w⌉ along each axis, so no neighbour is missed.
pub fn cell_list_nearest(lattice: &Lattice, frac: &[Vector3<f64>], query: &[usize], radius: f64) -> Vec<Option<f64>> {
    let w = lattice.plane_spacings();
    let n: [usize; 3] = [0, 1, 2].map(|k| ((w[k] / radius).floor() as usize).clamp(1, MAX_BINS_PER_AXIS));
    let reach: [i64; 3] = [0, 1, 2].map(|k| (radius * n[k] as f64 / w[k]).ceil().max(1.0) as i64);
    // Absurdly thin cells (as in `neighbor_list`): the caller falls back to the quadratic search.
    if reach.iter().any(|&r| r > i64::from(MAX_IMAGES_PER_AXIS)) {
        return vec![None; query.len()];
    }
    let bin_of = |f: &Vector3<f64>| -> [usize; 3] { [0, 1, 2].map(|k| ((f[k] * n[k] as f64) as usize).min(n[k] - 1)) };
    let index = |b: [usize; 3]| (b[0] * n[1] + b[1]) * n[2] + b[2];
    let mut bins: Vec<Vec<usize>> = vec![Vec::new(); n[0] * n[1] * n[2]];
    for (i, f) in frac.iter().enumerate() {
        bins[index(bin_of(f))].push(i);
    }
    let cart: Vec<Vector3<f64>> = frac.iter().map(|f| lattice.to_cart(f)).collect();
    let r2 = radius * radius;
    query
        .iter()
        .map(|&i| {
            let b = bin_of(&frac[i]);
            let mut best = f64::INFINITY;
            for da in -reach[0]..=reach[0] {
                for db in -reach[1]..=reach[1] {
                    for dc in -reach[2]..=reach[2] {
                        let virt = [b[0] as i64 + da, b[1] as i64 + db, b[2] as i64 + dc];
                        let wrapped = [0, 1, 2].map(|k| virt[k].rem_euclid(n[k] as i64) as usize);
                        let shift = [0, 1, 2].map(|k| virt[k].div_euclid(n[k] as i64) as f64);
                        let t = lattice.to_cart(&Vector3::new(shift[0], shift[1], shift[2]));
                        let self_image = shift == [0.0; 3];
                        for &j in &bins[index(wrapped)] {
                            // The site itself; another site at the same place counts (distance 0).
                            if j == i && self_image {
                                continue;
                            }
                            best = best.min((cart[j] + t - cart[i]).norm_squared());
                        }
                    }
                }
            }
            (best <= r2).then(|| best.sqrt())
        })
        .collect()
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

    /// `v + T` shortest over lattice translations T, for a Cartesian `v` (Å) that is short against the
    /// cell (a tolerance, a bond): wrapped in the Niggli-reduced basis, whose ±1 images hold every such
    /// vector, so no search radius is needed.
    pub fn short_vector(&self, cart: &Vector3<f64>) -> Vector3<f64> {
        let f = self.reduced.to_frac(cart);
        let f = f - f.map(f64::round);
        let mut best = self.reduced.to_cart(&f);
        for i in -1..=1 {
            for j in -1..=1 {
                for k in -1..=1 {
                    let v = self.reduced.to_cart(&(f + Vector3::new(i as f64, j as f64, k as f64)));
                    if v.norm() < best.norm() {
                        best = v;
                    }
                }
            }
        }
        best
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

    #[test]
    fn the_cell_list_finds_the_same_nearest_neighbours_as_the_quadratic_search() {
        // Random sites (a fixed LCG) in a cubic, a strongly skewed and a long thin cell, plus two sites at
        // the same place (distance 0) and a lone site far from the rest (found only after the radius grows).
        let mut x = 12345u64;
        let mut r = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let lattices = [
            Lattice::cubic(14.0).unwrap(),
            Lattice::from_row_vectors([[12.0, 0.0, 0.0], [11.0, 3.0, 0.0], [5.0, 4.0, 9.0]]).unwrap(),
            Lattice::from_row_vectors([[60.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 5.0]]).unwrap(),
        ];
        let si = Element::from_symbol("Si").unwrap();
        for l in lattices {
            let mut f: Vec<Vector3<f64>> = (0..150).map(|_| Vector3::new(r(), r() * 0.5, r())).collect();
            f.push(f[3]);
            f.push(Vector3::new(0.5, 0.9, 0.5));
            let s = Structure::from_frac(l, vec![si; f.len()], f).unwrap();
            let m = MinImage::new(&s.lattice);
            let cart = s.cart_coords();
            let want: Vec<f64> = (0..cart.len())
                .map(|i| {
                    (0..cart.len()).map(|j| m.distance(&(cart[j] - cart[i]), i == j)).fold(f64::INFINITY, f64::min)
                })
                .collect();
            let got = s.nearest_neighbor_distances();
            assert!(s.n_sites() > BRUTE_FORCE_SITES);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-9, "site {i}: cell list {g}, quadratic {w}");
            }
            assert_eq!(got[3], 0.0);
            assert_eq!(s.min_distance(), 0.0);
        }
    }

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
