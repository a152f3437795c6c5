//! The Voronoi cell of one site among its periodic neighbours, facet by facet, as pymatgen's `VoronoiNN`
//! reports it: for every neighbour that shares a facet, the solid angle the facet subtends at the site
//! (sr), its area (Å²) and its distance from the site (Å).
//!
//! pymatgen tessellates all images within a cutoff sphere with qhull and doubles the cutoff (up to the
//! cell's longest diagonal) while the site's cell is open. Here the cell is built directly by clipping a
//! large cube with the bisector plane of each neighbour, nearest first, and stopping once no further
//! neighbour can reach the cell (its bisector lies beyond the farthest vertex). Both give the Voronoi cell
//! of the same point set; facets of zero area (a plane touching a vertex or an edge) are left out here,
//! where qhull may list them with a zero solid angle (they carry no weight in either).
//!
//! Units: Å; vectors are Cartesian, relative to the site.

use nalgebra::Vector3;

use super::structure::wrap_frac;
use super::{Element, Structure};

/// pymatgen's default search radius in CrystalNN (Å).
pub const DEFAULT_SEARCH_CUTOFF_ANG: f64 = 7.0;

/// One neighbour image of a site: its species and its Cartesian offset from the site (Å).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeighborImage {
    pub site: usize,
    pub element: Element,
    pub offset: Vector3<f64>,
    pub distance: f64,
}

/// A facet of a Voronoi cell shared with one neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct Facet {
    pub neighbor: NeighborImage,
    /// Solid angle subtended at the site (sr), pymatgen's `solid_angle`.
    pub solid_angle: f64,
    /// Facet area (Å²), computed as pymatgen does: 3 × (volume of the pyramid from the site) / (half
    /// the neighbour distance).
    pub area: f64,
    /// Vertices of the facet polygon in order (Å, relative to the site).
    pub vertices: Vec<Vector3<f64>>,
}

/// Why a Voronoi cell could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum VoronoiError {
    /// Another site (or an image) sits on the site itself.
    Overlap { site: usize, other: usize },
    /// The cell stays open even with the largest search radius (pymatgen: "max cutoff exceeded").
    Open { site: usize },
}

impl std::fmt::Display for VoronoiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VoronoiError::Overlap { site, other } => {
                write!(f, "site {} overlaps site {} (no Voronoi cell)", site + 1, other + 1)
            }
            VoronoiError::Open { site } => {
                write!(f, "the Voronoi cell of site {} is open at the largest search radius", site + 1)
            }
        }
    }
}

impl std::error::Error for VoronoiError {}

/// All images of all sites within `cutoff` Å of site `n` (the site itself excluded), nearest first.
pub fn neighbors_within(s: &Structure, n: usize, cutoff: f64) -> Result<Vec<NeighborImage>, VoronoiError> {
    let lat = &s.lattice;
    let frac: Vec<Vector3<f64>> = s.frac_coords().iter().map(wrap_frac).collect();
    let spacing = lat.plane_spacings();
    let bound = |i: usize| ((cutoff / spacing[i]).ceil() as i32 + 1).min(super::neighbors::MAX_IMAGES_PER_AXIS);
    let (na, nb, nc) = (bound(0), bound(1), bound(2));
    let center = lat.to_cart(&frac[n]);
    let mut out = Vec::new();
    for (b, fb) in frac.iter().enumerate() {
        let cb = lat.to_cart(fb) - center;
        for i in -na..=na {
            for j in -nb..=nb {
                for k in -nc..=nc {
                    let v = cb + lat.vector(0) * i as f64 + lat.vector(1) * j as f64 + lat.vector(2) * k as f64;
                    let d = v.norm();
                    if d > cutoff {
                        continue;
                    }
                    if d < 1e-8 {
                        if b == n && i == 0 && j == 0 && k == 0 {
                            continue;
                        }
                        return Err(VoronoiError::Overlap { site: n, other: b });
                    }
                    out.push(NeighborImage { site: b, element: s.species()[b], offset: v, distance: d });
                }
            }
        }
    }
    out.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(out)
}

/// The Voronoi facets of site `n`, searching `cutoff` Å first and doubling up to the longest cell
/// diagonal while the cell is open (pymatgen's `VoronoiNN.get_voronoi_polyhedra`).
pub fn voronoi_facets(s: &Structure, n: usize, cutoff: f64) -> Result<Vec<Facet>, VoronoiError> {
    let lat = &s.lattice;
    let max_cutoff = [[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]
        .iter()
        .map(|c| lat.to_cart(&Vector3::new(c[0], c[1], c[2])).norm())
        .fold(0.0, f64::max)
        + 0.01;
    let mut cutoff = cutoff;
    loop {
        let neighbors = neighbors_within(s, n, cutoff)?;
        if let Some(facets) = cell_facets(&neighbors, cutoff) {
            return Ok(facets);
        }
        if cutoff >= max_cutoff {
            return Err(VoronoiError::Open { site: n });
        }
        cutoff = (cutoff * 2.0).min(max_cutoff + 0.001);
    }
}

struct Face {
    /// Index into the neighbour list, `None` for a face of the starting cube.
    plane: Option<usize>,
    verts: Vec<Vector3<f64>>,
}

/// Half-widths of the starting cube in units of the search radius: a cell that is not closed inside the
/// first is built again inside the second. A cell among nearly coplanar neighbours (a site on the surface
/// of a slab facing a vacuum gap wider than the search radius) is closed but reaches far: qhull reports
/// such cells with facets of 10⁴ Å² and more, and so must this.
const START_CUBES: [f64; 2] = [100.0, 1e6];

/// The Voronoi cell of the origin among `neighbors`, or `None` when it is open (a face of the starting
/// cube survives).
fn cell_facets(neighbors: &[NeighborImage], cutoff: f64) -> Option<Vec<Facet>> {
    START_CUBES.iter().find_map(|size| clipped_cell(neighbors, cutoff, *size))
}

fn clipped_cell(neighbors: &[NeighborImage], cutoff: f64, size: f64) -> Option<Vec<Facet>> {
    let scale = cutoff.max(1.0);
    let mut faces = cube(size * scale);
    for (idx, nb) in neighbors.iter().enumerate() {
        let half = 0.5 * nb.distance;
        let reach = faces.iter().flat_map(|f| f.verts.iter()).map(|v| v.norm()).fold(0.0, f64::max);
        // Rounding grows with the size of the cell while it is still large.
        let eps = 1e-10 * scale * (reach / (100.0 * scale)).max(1.0);
        if half > reach + eps {
            break;
        }
        let normal = nb.offset / nb.distance;
        clip(&mut faces, &normal, half, idx, eps);
    }
    if faces.iter().any(|f| f.plane.is_none()) {
        return None;
    }
    Some(
        faces
            .into_iter()
            .filter_map(|f| {
                let nb = neighbors[f.plane?];
                let solid_angle = solid_angle(&f.verts);
                let volume: f64 =
                    (1..f.verts.len() - 1).map(|j| tetra_volume(&f.verts[0], &f.verts[j], &f.verts[j + 1])).sum();
                let area = 3.0 * volume / (0.5 * nb.distance);
                Some(Facet { neighbor: nb, solid_angle, area, vertices: f.verts })
            })
            .collect(),
    )
}

fn cube(l: f64) -> Vec<Face> {
    let c = |x: f64, y: f64, z: f64| Vector3::new(x * l, y * l, z * l);
    let quads = [
        [c(1., -1., -1.), c(1., 1., -1.), c(1., 1., 1.), c(1., -1., 1.)],
        [c(-1., -1., -1.), c(-1., -1., 1.), c(-1., 1., 1.), c(-1., 1., -1.)],
        [c(-1., 1., -1.), c(-1., 1., 1.), c(1., 1., 1.), c(1., 1., -1.)],
        [c(-1., -1., -1.), c(1., -1., -1.), c(1., -1., 1.), c(-1., -1., 1.)],
        [c(-1., -1., 1.), c(1., -1., 1.), c(1., 1., 1.), c(-1., 1., 1.)],
        [c(-1., -1., -1.), c(-1., 1., -1.), c(1., 1., -1.), c(1., -1., -1.)],
    ];
    quads.into_iter().map(|q| Face { plane: None, verts: q.to_vec() }).collect()
}

/// Keeps the part of the convex polyhedron `faces` with `normal · x ≤ d` and closes it with a new face.
fn clip(faces: &mut Vec<Face>, normal: &Vector3<f64>, d: f64, plane: usize, eps: f64) {
    let side = |v: &Vector3<f64>| normal.dot(v) - d;
    if faces.iter().all(|f| f.verts.iter().all(|v| side(v) <= eps)) {
        return;
    }
    let mut cut_points: Vec<Vector3<f64>> = Vec::new();
    let mut kept = Vec::with_capacity(faces.len() + 1);
    for face in faces.drain(..) {
        let n = face.verts.len();
        let mut out = Vec::with_capacity(n + 2);
        for i in 0..n {
            let a = face.verts[i];
            let b = face.verts[(i + 1) % n];
            let (sa, sb) = (side(&a), side(&b));
            let a_in = sa <= eps;
            if a_in {
                out.push(a);
                if sa.abs() <= eps {
                    cut_points.push(a);
                }
            }
            if (sa < -eps && sb > eps) || (sa > eps && sb < -eps) {
                let p = a + (b - a) * (sa / (sa - sb));
                out.push(p);
                cut_points.push(p);
            }
        }
        let out = dedup_ring(out, eps);
        if out.len() >= 3 {
            kept.push(Face { plane: face.plane, verts: out });
        }
    }
    // Order the points on the cutting plane around their centroid.
    let mut pts: Vec<Vector3<f64>> = Vec::new();
    for p in cut_points {
        if !pts.iter().any(|q| (q - p).norm() <= 10.0 * eps) {
            pts.push(p);
        }
    }
    if pts.len() >= 3 {
        let centroid = pts.iter().sum::<Vector3<f64>>() / pts.len() as f64;
        let u = (pts[0] - centroid).normalize();
        let w = normal.cross(&u);
        pts.sort_by(|p, q| {
            let (dp, dq) = (p - centroid, q - centroid);
            dp.dot(&w).atan2(dp.dot(&u)).total_cmp(&dq.dot(&w).atan2(dq.dot(&u)))
        });
        kept.push(Face { plane: Some(plane), verts: pts });
    }
    *faces = kept;
}

fn dedup_ring(mut v: Vec<Vector3<f64>>, eps: f64) -> Vec<Vector3<f64>> {
    let tol = 10.0 * eps;
    v.dedup_by(|a, b| (*a - *b).norm() <= tol);
    while v.len() > 1 && (v[0] - v[v.len() - 1]).norm() <= tol {
        v.pop();
    }
    v
}

/// Solid angle (sr) of a polygon seen from the origin, pymatgen's `solid_angle` (a fan of triangles from
/// the first vertex, Van Oosterom–Strackee for each).
pub fn solid_angle(verts: &[Vector3<f64>]) -> f64 {
    let r: Vec<f64> = verts.iter().map(|v| v.norm()).collect();
    let mut angle = 0.0;
    for i in 1..verts.len().saturating_sub(1) {
        let j = i + 1;
        let tp = verts[0].dot(&verts[i].cross(&verts[j])).abs();
        let de = r[0] * r[i] * r[j]
            + r[j] * verts[0].dot(&verts[i])
            + r[i] * verts[0].dot(&verts[j])
            + r[0] * verts[i].dot(&verts[j]);
        let a = if de == 0.0 {
            if tp > 0.0 { 0.5 * std::f64::consts::PI } else { -0.5 * std::f64::consts::PI }
        } else {
            (tp / de).atan()
        };
        angle += (if a > 0.0 { a } else { a + std::f64::consts::PI }) * 2.0;
    }
    angle
}

fn tetra_volume(a: &Vector3<f64>, b: &Vector3<f64>, c: &Vector3<f64>) -> f64 {
    // Tetrahedron (origin, a, b, c); pymatgen's vol_tetra with the site as the fourth vertex.
    a.dot(&b.cross(c)).abs() / 6.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Lattice;

    fn cell(s: &Structure, n: usize) -> Vec<Facet> {
        voronoi_facets(s, n, DEFAULT_SEARCH_CUTOFF_ANG).unwrap()
    }

    #[test]
    fn simple_cubic_cell_is_a_cube_of_six_equal_faces() {
        let s = Structure::from_frac(
            Lattice::cubic(3.0).unwrap(),
            vec![Element::from_symbol("Po").unwrap()],
            vec![Vector3::zeros()],
        )
        .unwrap();
        let f = cell(&s, 0);
        assert_eq!(f.len(), 6);
        for facet in &f {
            assert!((facet.solid_angle - 4.0 * std::f64::consts::PI / 6.0).abs() < 1e-9);
            assert!((facet.area - 9.0).abs() < 1e-9);
        }
    }

    #[test]
    fn bcc_cell_is_a_truncated_octahedron() {
        let fe = Element::from_symbol("Fe").unwrap();
        let s = Structure::from_frac(
            Lattice::cubic(2.87).unwrap(),
            vec![fe, fe],
            vec![Vector3::zeros(), Vector3::new(0.5, 0.5, 0.5)],
        )
        .unwrap();
        let f = cell(&s, 0);
        assert_eq!(f.len(), 14);
        assert_eq!(f.iter().filter(|x| x.vertices.len() == 6).count(), 8);
        assert_eq!(f.iter().filter(|x| x.vertices.len() == 4).count(), 6);
        let total: f64 = f.iter().map(|x| x.solid_angle).sum();
        assert!((total - 4.0 * std::f64::consts::PI).abs() < 1e-9);
        // Volume of the cell is the volume per atom.
        let vol: f64 = f.iter().map(|x| x.area * 0.5 * x.neighbor.distance / 3.0).sum();
        assert!((vol - 2.87f64.powi(3) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn overlapping_sites_are_an_error() {
        let na = Element::from_symbol("Na").unwrap();
        let s = Structure::from_frac(
            Lattice::cubic(4.0).unwrap(),
            vec![na, na],
            vec![Vector3::zeros(), Vector3::new(1.0, 0.0, 0.0)],
        )
        .unwrap();
        assert!(matches!(voronoi_facets(&s, 0, 7.0), Err(VoronoiError::Overlap { .. })));
    }
}
