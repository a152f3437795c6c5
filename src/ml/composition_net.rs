//! The composition model: standardised Magpie features ([`crate::chem::features`]) → a residual MLP
//! → one output per target (standardised units). Feature and target normalisation live in the
//! VarStore (not trained), so a checkpoint is self-contained.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::chem::features::N_FEATURES;

/// Hyper-parameters of [`CompositionNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompositionNetConfig {
    /// Width of the hidden layers.
    pub hidden: i64,
    /// Number of residual blocks.
    pub blocks: i64,
    /// Dropout probability in training.
    pub dropout: f64,
}

impl Default for CompositionNetConfig {
    fn default() -> Self {
        CompositionNetConfig { hidden: 256, blocks: 3, dropout: 0.1 }
    }
}

#[derive(Debug)]
pub struct CompositionNet {
    cfg: CompositionNetConfig,
    pub feature_mean: Tensor,
    pub feature_std: Tensor,
    input: nn::Linear,
    blocks: Vec<(nn::LayerNorm, nn::Linear, nn::Linear)>,
    out_norm: nn::LayerNorm,
    head: nn::Linear,
}

impl CompositionNet {
    pub fn new(p: &nn::Path, cfg: &CompositionNetConfig, n_targets: i64) -> CompositionNet {
        let h = cfg.hidden;
        let n = N_FEATURES as i64;
        let blocks = (0..cfg.blocks)
            .map(|i| {
                let b = p / format!("block{i}");
                (
                    nn::layer_norm(&b / "norm", vec![h], Default::default()),
                    nn::linear(&b / "fc1", h, 2 * h, Default::default()),
                    nn::linear(&b / "fc2", 2 * h, h, Default::default()),
                )
            })
            .collect();
        CompositionNet {
            cfg: cfg.clone(),
            feature_mean: p.zeros_no_train("feature_mean", &[n]),
            feature_std: p.ones_no_train("feature_std", &[n]),
            input: nn::linear(p / "input", n, h, Default::default()),
            blocks,
            out_norm: nn::layer_norm(p / "out_norm", vec![h], Default::default()),
            head: nn::linear(p / "head", h, n_targets, Default::default()),
        }
    }

    /// Raw features [B, N_FEATURES] → standardised outputs [B, n_targets].
    pub fn forward_t(&self, features: &Tensor, train: bool) -> Tensor {
        self.head.forward(&self.embed_t(features, train))
    }

    /// The representation the head reads [B, hidden] (the domain of applicability is measured here).
    pub fn embed_t(&self, features: &Tensor, train: bool) -> Tensor {
        let x = (features.to_kind(Kind::Float) - &self.feature_mean) / &self.feature_std;
        let mut h = self.input.forward(&x);
        for (norm, fc1, fc2) in &self.blocks {
            let y = fc2.forward(&fc1.forward(&norm.forward(&h)).silu().dropout(self.cfg.dropout, train));
            // Not `h += y`: tch's AddAssign is in place and `h` is saved for the layer norm's backward.
            #[allow(clippy::assign_op_pattern)]
            {
                h = h + y;
            }
        }
        self.out_norm.forward(&h).silu()
    }
}
