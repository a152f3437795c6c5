//! The crystal-graph model, CGCNN-class with edge updates (Xie & Grossman, PRL 120, 145301 (2018);
//! edge updates as in MEGNet/ALIGNN-style networks):
//! - nodes: a learned embedding of Z concatenated with the 22 standardised Magpie elemental
//!   properties, projected to `hidden`;
//! - edges: a Gaussian expansion of the distance (`n_rbf` centres on [0, cutoff]), projected to
//!   `hidden`;
//! - `layers` gated convolutions: m_ij = σ(g_ij) ⊙ softplus(c_ij) with [g, c] = W_s h_j + W_d h_i +
//!   W_e e_ij, summed over j into h_i (residual, layer-normed), then an edge update
//!   e_ij += SiLU(LN(U_s h_j + U_d h_i + U_e e_ij)) (not after the last layer, where nothing reads it);
//! - readout: mean over nodes, an MLP, one output per target (standardised units).
//!
//! The linear maps act on nodes before the gather (W[h_i, h_j, e] = W_d h_i + W_s h_j + W_e e), which
//! is the same function with a third of the edge-level work.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::graph::GraphBatch;
use crate::chem::features::magpie_value;
use crate::crystal::Element;

/// Hyper-parameters of [`GraphNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphNetConfig {
    pub hidden: i64,
    pub layers: i64,
    pub embedding: i64,
    pub n_rbf: i64,
}

impl Default for GraphNetConfig {
    fn default() -> Self {
        GraphNetConfig { hidden: 64, layers: 3, embedding: 32, n_rbf: 40 }
    }
}

#[derive(Debug)]
struct EdgeUpdate {
    src: nn::Linear,
    dst: nn::Linear,
    edge: nn::Linear,
    norm: nn::LayerNorm,
}

#[derive(Debug)]
struct ConvLayer {
    node_src: nn::Linear,
    node_dst: nn::Linear,
    edge: nn::Linear,
    norm: nn::LayerNorm,
    /// None in the last layer, whose updated edges nothing would read.
    edge_update: Option<EdgeUpdate>,
}

#[derive(Debug)]
pub struct GraphNet {
    cutoff_ang: f64,
    n_rbf: i64,
    elemental: Tensor,
    embedding: nn::Embedding,
    node_in: nn::Linear,
    edge_in: nn::Linear,
    layers: Vec<ConvLayer>,
    readout: nn::Linear,
    head: nn::Linear,
}

/// Standardised Magpie properties of Z = 0..=118 (row 0 unused), [119, 22].
fn elemental_table() -> Vec<f32> {
    let mut rows = vec![[0.0f64; 22]; 119];
    for z in 1..=118u32 {
        if let Ok(e) = Element::from_z(z) {
            rows[z as usize] = std::array::from_fn(|k| magpie_value(e, k));
        }
    }
    let mut out = vec![0.0f32; 119 * 22];
    for k in 0..22 {
        let vals: Vec<f64> = (1..119).map(|z| rows[z][k]).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt().max(1e-8);
        for z in 1..119 {
            out[z * 22 + k] = ((rows[z][k] - mean) / std) as f32;
        }
    }
    out
}

impl GraphNet {
    pub fn new(p: &nn::Path, cfg: &GraphNetConfig, cutoff_ang: f64, n_targets: i64) -> GraphNet {
        let h = cfg.hidden;
        let elemental = p.zeros_no_train("elemental", &[119, 22]);
        tch::no_grad(|| {
            let mut e = elemental.shallow_clone();
            e.copy_(&Tensor::from_slice(&elemental_table()).reshape([119, 22]));
        });
        let lin = |q: nn::Path, i, o| nn::linear(q, i, o, Default::default());
        let nobias = |q: nn::Path, i, o| nn::linear(q, i, o, nn::LinearConfig { bias: false, ..Default::default() });
        let layers = (0..cfg.layers)
            .map(|i| {
                let l = p / format!("conv{i}");
                ConvLayer {
                    node_src: lin(&l / "node_src", h, 2 * h),
                    node_dst: nobias(&l / "node_dst", h, 2 * h),
                    edge: nobias(&l / "edge", h, 2 * h),
                    norm: nn::layer_norm(&l / "norm", vec![h], Default::default()),
                    edge_update: (i + 1 < cfg.layers).then(|| EdgeUpdate {
                        src: lin(&l / "e_src", h, h),
                        dst: nobias(&l / "e_dst", h, h),
                        edge: nobias(&l / "e_edge", h, h),
                        norm: nn::layer_norm(&l / "e_norm", vec![h], Default::default()),
                    }),
                }
            })
            .collect();
        GraphNet {
            cutoff_ang,
            n_rbf: cfg.n_rbf,
            elemental,
            embedding: nn::embedding(p / "embedding", 119, cfg.embedding, Default::default()),
            node_in: lin(p / "node_in", cfg.embedding + 22, h),
            edge_in: lin(p / "edge_in", cfg.n_rbf, h),
            layers,
            readout: lin(p / "readout", h, h),
            head: lin(p / "head", h, n_targets),
        }
    }

    /// Gaussian expansion of distances [E] → [E, n_rbf].
    fn rbf(&self, d: &Tensor) -> Tensor {
        let centers = Tensor::linspace(0.0, self.cutoff_ang, self.n_rbf, (Kind::Float, d.device()));
        let width = self.cutoff_ang / (self.n_rbf - 1) as f64;
        let diff = d.unsqueeze(1) - centers.unsqueeze(0);
        (-(&diff * &diff) / (width * width)).exp()
    }

    /// A batch of graphs → standardised outputs [B, n_targets]. (No dropout; `train` is unused but
    /// kept for symmetry with the composition network.)
    pub fn forward_t(&self, g: &GraphBatch, train: bool) -> Tensor {
        self.head.forward(&self.embed_t(g, train))
    }

    /// The crystal's representation the head reads [B, hidden] (the domain of applicability is measured here).
    pub fn embed_t(&self, g: &GraphBatch, _train: bool) -> Tensor {
        let x = Tensor::cat(&[self.embedding.forward(&g.z), self.elemental.index_select(0, &g.z)], 1);
        let mut h = self.node_in.forward(&x);
        let mut e = self.edge_in.forward(&self.rbf(&g.distance));
        let n = h.size()[0];
        let width = h.size()[1];
        for l in &self.layers {
            let z = l.node_src.forward(&h).index_select(0, &g.src)
                + l.node_dst.forward(&h).index_select(0, &g.dst)
                + l.edge.forward(&e);
            let parts = z.chunk(2, 1);
            let m = parts[0].sigmoid() * parts[1].softplus();
            let agg = Tensor::zeros([n, width], (Kind::Float, h.device())).index_add(0, &g.dst, &m);
            h = (&h + l.norm.forward(&agg)).softplus();
            if let Some(u) = &l.edge_update {
                let de = u.src.forward(&h).index_select(0, &g.src)
                    + u.dst.forward(&h).index_select(0, &g.dst)
                    + u.edge.forward(&e);
                e = &e + u.norm.forward(&de).silu();
            }
        }
        let pooled = g.mean_pool(&h);
        self.readout.forward(&pooled).silu()
    }
}
