//! CHGNet's crystal graphs, built as `chgnet.graph.CrystalGraphConverter` builds them (0.4.2):
//!
//! - the **atom graph**: every directed pair (centre i, neighbour j, image n) with 0 < |r| ≤ 6 Å, where
//!   r points from j + n to i; the two directions (i, j, n) and (j, i, −n) share one **undirected bond**,
//!   which carries the bond features;
//! - the **bond graph** (angles): for every undirected bond of length ≤ 3 Å and each of its two ends, every
//!   other directed bond leaving that end with length < 3 Å makes one angle (both orders are listed, and a
//!   bond to an atom's own image meets its reverse at 180°, as in CHGNet).
//!
//! Coordinates are the wrapped fractional coordinates; images are relative to them, so the geometry is the
//! structure's own whatever its input coordinates were. Pure Rust, no tensors.

use nalgebra::Vector3;
use rustc_hash::FxHashMap;

use crate::crystal::Structure;
use crate::crystal::structure::wrap_frac;

/// CHGNet 0.3.0's atom-graph cutoff (Å).
pub const ATOM_GRAPH_CUTOFF: f64 = 6.0;
/// CHGNet 0.3.0's bond-graph cutoff (Å).
pub const BOND_GRAPH_CUTOFF: f64 = 3.0;

/// One structure's graphs.
#[derive(Debug, Clone, PartialEq)]
pub struct CrystalGraph {
    /// Atomic numbers, one per site.
    pub z: Vec<u8>,
    /// Wrapped fractional coordinates.
    pub frac: Vec<Vector3<f64>>,
    /// Lattice vectors as rows (Å).
    pub lattice: [[f64; 3]; 3],
    /// Directed edges: (centre, neighbour).
    pub edges: Vec<[usize; 2]>,
    /// Image of the neighbour of each directed edge (lattice units).
    pub images: Vec<[i32; 3]>,
    /// Undirected bond of each directed edge.
    pub directed_to_undirected: Vec<usize>,
    /// One directed edge of each undirected bond (the first one found).
    pub undirected_to_directed: Vec<usize>,
    /// Angles: (centre atom, undirected bond 1, directed bond 1, undirected bond 2, directed bond 2).
    pub angles: Vec<[usize; 5]>,
}

impl CrystalGraph {
    pub fn n_atoms(&self) -> usize {
        self.z.len()
    }

    /// Sites with no neighbour within the atom-graph cutoff (CHGNet warns or refuses on these).
    pub fn isolated_atoms(&self) -> Vec<usize> {
        let mut seen = vec![false; self.z.len()];
        for e in &self.edges {
            seen[e[0]] = true;
        }
        (0..self.z.len()).filter(|&i| !seen[i]).collect()
    }

    /// Build the graphs of `s` with CHGNet's cutoffs (Å).
    pub fn new(s: &Structure, atom_cutoff: f64, bond_cutoff: f64) -> CrystalGraph {
        let nl = s.neighbor_list(atom_cutoff);
        let n = s.n_sites();
        let mut edges = Vec::with_capacity(nl.len());
        let mut images = Vec::with_capacity(nl.len());
        let mut directed_to_undirected = Vec::with_capacity(nl.len());
        let mut undirected_to_directed: Vec<usize> = Vec::new();
        // Second directed edge of each undirected bond (usize::MAX until found) and its length.
        let mut partner: Vec<usize> = Vec::new();
        let mut und_length: Vec<f64> = Vec::new();
        let mut by_key: FxHashMap<(usize, usize, [i32; 3]), usize> = FxHashMap::default();
        let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
        for k in 0..nl.len() {
            let (i, j, img) = (nl.center[k], nl.neighbor[k], nl.image[k]);
            let neg = [-img[0], -img[1], -img[2]];
            // The key names the bond whatever its direction.
            let key = if i < j || (i == j && img >= neg) { (i, j, img) } else { (j, i, neg) };
            let d = edges.len();
            let u = match by_key.get(&key) {
                Some(&u) if partner[u] == usize::MAX && undirected_to_directed[u] != d => {
                    partner[u] = d;
                    u
                }
                _ => {
                    let u = undirected_to_directed.len();
                    undirected_to_directed.push(d);
                    partner.push(usize::MAX);
                    und_length.push(nl.distance[k]);
                    by_key.insert(key, u);
                    u
                }
            };
            edges.push([i, j]);
            images.push(img);
            directed_to_undirected.push(u);
            out_edges[i].push(d);
        }
        let length = &nl.distance;
        let mut angles = Vec::new();
        for (u, &first) in undirected_to_directed.iter().enumerate() {
            if und_length[u] > bond_cutoff || partner[u] == usize::MAX {
                continue;
            }
            for de in [first, partner[u]] {
                let centre = edges[de][0];
                for &other in &out_edges[centre] {
                    if other != de && length[other] < bond_cutoff {
                        angles.push([centre, u, de, directed_to_undirected[other], other]);
                    }
                }
            }
        }
        CrystalGraph {
            z: s.species().iter().map(|e| e.z()).collect(),
            frac: s.frac_coords().iter().map(wrap_frac).collect(),
            lattice: s.lattice.row_vectors(),
            edges,
            images,
            directed_to_undirected,
            undirected_to_directed,
            angles,
        }
    }

    /// Graphs with CHGNet 0.3.0's cutoffs (6 Å atom graph, 3 Å bond graph).
    pub fn chgnet(s: &Structure) -> CrystalGraph {
        CrystalGraph::new(s, ATOM_GRAPH_CUTOFF, BOND_GRAPH_CUTOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::{Element, Lattice};

    #[test]
    fn simple_cubic_has_six_bonds_and_thirty_angles_per_atom_within_three_angstrom() {
        // One atom, a = 2.9 Å: 6 neighbours at 2.9 Å (bond graph), 12 at 4.1 Å, 8 at 5.02 Å, 6 at 5.8 Å (atom graph).
        let s = Structure::from_frac(
            Lattice::cubic(2.9).unwrap(),
            vec![Element::from_symbol("Po").unwrap()],
            vec![Vector3::zeros()],
        )
        .unwrap();
        let g = CrystalGraph::chgnet(&s);
        assert_eq!(g.edges.len(), 6 + 12 + 8 + 6);
        assert_eq!(g.undirected_to_directed.len(), g.edges.len() / 2);
        // Each of the 3 undirected short bonds, at each of its 2 ends, meets the 5 other short directed bonds.
        assert_eq!(g.angles.len(), 3 * 2 * 5);
        assert!(g.isolated_atoms().is_empty());
        // Every directed edge's reverse maps to the same undirected bond.
        for (d, e) in g.edges.iter().enumerate() {
            let u = g.directed_to_undirected[d];
            let rev = (0..g.edges.len()).find(|&r| r != d && g.directed_to_undirected[r] == u).unwrap();
            assert_eq!(g.edges[rev], [e[1], e[0]]);
            assert_eq!(g.images[rev], g.images[d].map(|x| -x));
        }
    }
}
