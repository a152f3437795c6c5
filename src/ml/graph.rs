//! Periodic crystal graphs (CGCNN's construction): every site is a node; each node receives edges from
//! its `max_neighbors` nearest periodic neighbours within `cutoff_ang`, images included, so small cells
//! still get full neighbourhoods. Graphs are plain arrays; [`GraphBatch`] turns many into tensors.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::crystal::Structure;

/// How graphs are built; stored in the model card so a model always sees graphs built its way.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// Neighbour cutoff (Å).
    pub cutoff_ang: f64,
    /// Nearest neighbours kept per site.
    pub max_neighbors: usize,
}

impl Default for GraphSpec {
    fn default() -> Self {
        GraphSpec { cutoff_ang: 6.0, max_neighbors: 12 }
    }
}

/// One crystal graph. Edge k carries a message from node `src[k]` (the neighbour) to node `dst[k]`
/// (the centre) over `distance_ang[k]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrystalGraph {
    /// Atomic number of each node.
    pub z: Vec<u8>,
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub distance_ang: Vec<f32>,
}

impl CrystalGraph {
    pub fn build(s: &Structure, spec: &GraphSpec) -> CrystalGraph {
        let nl = s.neighbor_list(spec.cutoff_ang);
        let n = s.n_sites();
        let mut per_center: Vec<Vec<(f64, usize)>> = vec![Vec::new(); n];
        for k in 0..nl.len() {
            per_center[nl.center[k]].push((nl.distance[k], nl.neighbor[k]));
        }
        let mut g = CrystalGraph {
            z: s.species().iter().map(|e| e.z()).collect(),
            src: Vec::new(),
            dst: Vec::new(),
            distance_ang: Vec::new(),
        };
        for (i, list) in per_center.iter_mut().enumerate() {
            // Ties broken by neighbour index so graphs do not depend on the search order.
            list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(d, j) in list.iter().take(spec.max_neighbors) {
                g.src.push(j as u32);
                g.dst.push(i as u32);
                g.distance_ang.push(d as f32);
            }
        }
        g
    }

    pub fn n_nodes(&self) -> usize {
        self.z.len()
    }

    pub fn n_edges(&self) -> usize {
        self.src.len()
    }
}

/// Many graphs as one disconnected graph, on a device.
pub struct GraphBatch {
    /// [N] atomic numbers (int64).
    pub z: Tensor,
    /// [E] source and destination node indices into the batch (int64).
    pub src: Tensor,
    pub dst: Tensor,
    /// [E] distances (Å, float32).
    pub distance: Tensor,
    /// [N] graph of each node (int64).
    pub graph_index: Tensor,
    /// [B] nodes per graph (float32), for mean pooling.
    pub n_nodes: Tensor,
    pub n_graphs: i64,
}

impl GraphBatch {
    pub fn new(graphs: &[&CrystalGraph], device: Device) -> GraphBatch {
        let (mut z, mut src, mut dst, mut dist, mut gi, mut nn) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0i64;
        for (b, g) in graphs.iter().enumerate() {
            z.extend(g.z.iter().map(|&x| x as i64));
            src.extend(g.src.iter().map(|&x| x as i64 + offset));
            dst.extend(g.dst.iter().map(|&x| x as i64 + offset));
            dist.extend_from_slice(&g.distance_ang);
            gi.extend(std::iter::repeat_n(b as i64, g.n_nodes()));
            nn.push(g.n_nodes() as f32);
            offset += g.n_nodes() as i64;
        }
        GraphBatch {
            z: Tensor::from_slice(&z).to(device),
            src: Tensor::from_slice(&src).to(device),
            dst: Tensor::from_slice(&dst).to(device),
            distance: Tensor::from_slice(&dist).to(device),
            graph_index: Tensor::from_slice(&gi).to(device),
            n_nodes: Tensor::from_slice(&nn).to(device),
            n_graphs: graphs.len() as i64,
        }
    }

    /// Mean of node rows `x` [N, F] per graph → [B, F].
    pub fn mean_pool(&self, x: &Tensor) -> Tensor {
        let f = x.size()[1];
        let sums = Tensor::zeros([self.n_graphs, f], (Kind::Float, x.device())).index_add(0, &self.graph_index, x);
        sums / self.n_nodes.clamp_min(1.0).unsqueeze(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::{Element, Lattice};
    use nalgebra::Vector3;

    #[test]
    fn rock_salt_has_six_nearest_then_twelve() {
        let l = Lattice::cubic(5.64).unwrap();
        let na = Element::from_symbol("Na").unwrap();
        let cl = Element::from_symbol("Cl").unwrap();
        let mut species = Vec::new();
        let mut frac = Vec::new();
        for f in [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]] {
            species.push(na);
            frac.push(Vector3::new(f[0], f[1], f[2]));
            species.push(cl);
            frac.push(Vector3::new(f[0] + 0.5, f[1], f[2]));
        }
        let s = Structure::from_frac(l, species, frac).unwrap();
        let g = CrystalGraph::build(&s, &GraphSpec::default());
        assert_eq!(g.n_edges(), 8 * 12);
        // The first six neighbours of site 0 (Na) are Cl at a/2, then Na at a/√2.
        let d0: Vec<f32> = (0..g.n_edges()).filter(|&k| g.dst[k] == 0).map(|k| g.distance_ang[k]).collect();
        assert!(d0[..6].iter().all(|d| (d - 2.82).abs() < 1e-4));
        assert!(d0[6..].iter().all(|d| (d - 3.988).abs() < 1e-3));
        let b = GraphBatch::new(&[&g, &g], Device::Cpu);
        assert_eq!(b.src.size(), vec![2 * 96]);
        assert_eq!(i64::try_from(b.src.max()).unwrap(), 15);
        let pooled = b.mean_pool(&Tensor::ones([16, 3], (Kind::Float, Device::Cpu)));
        assert_eq!(pooled.size(), vec![2, 3]);
    }
}
