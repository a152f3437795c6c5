//! The generative model: a crystal VAE with a periodic denoising decoder, after CDVAE (Xie et al.,
//! ICLR 2022). A graph encoder maps a crystal to a latent code z; heads decode from z the number of
//! atoms, the composition (element fractions), the Niggli lattice and two properties (formation
//! energy, band gap), which organise the latent space by property; a denoiser conditioned on z places
//! the atoms by annealed Langevin dynamics from random positions.
//!
//! - [`data`]: crystals as the model sees them (Niggli cell, six lattice numbers), denoiser edges;
//! - [`model`]: the networks and the model card;
//! - [`train`]: the training loop (an engine job drives it);
//! - [`composition`]: charge-balanced formulas from the composition and atom-count heads;
//! - [`sample`]: decoding latent codes into crystals, latent optimisation towards property targets.
//!
//! Units: lengths Å, energies eV/atom, band gaps eV. Noise levels σ are Cartesian Å.

pub mod codes;
pub mod composition;
pub mod coverage;
pub mod data;
pub mod metrics;
pub mod model;
pub mod projection;
pub mod sample;
pub mod train;

use std::path::Path;

use safetensors::SafeTensors;

pub use codes::Codes;
pub use model::{CrystalVae, GenCard, GenConfig};
pub use sample::{Constraints, Decoded, SampleOptions};

use super::ModelError;
use super::checkpoint::{load_vars, metadata_entry, serialise, vars_of, weights_hash};

/// Metadata key of the generator's card in its safetensors file.
pub const GEN_CARD_KEY: &str = "geode_generator_card";

/// Name of the shipped generator (`assets/models/crystal-vae.safetensors`, trained by
/// `assets/models/crystal-vae.toml`).
pub const SHIPPED_NAME: &str = "crystal-vae";
static SHIPPED: &[u8] = include_bytes!("../../../assets/models/crystal-vae.safetensors");

impl CrystalVae {
    /// Serialise weights and card (the card's hash is filled in).
    pub fn to_bytes(&mut self) -> Result<Vec<u8>, ModelError> {
        let tensors = vars_of(&self.vs, "")?;
        self.card.weights_sha256 = weights_hash(&tensors);
        let card = serde_json::to_string(&self.card).map_err(|e| ModelError::Failed(e.to_string()))?;
        serialise(&tensors, GEN_CARD_KEY, card)
    }

    /// Write to `path` atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("safetensors.tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| ModelError::Failed(format!("cannot write {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| ModelError::Failed(format!("cannot write {}: {e}", path.display())))
    }

    /// Load from safetensors bytes; `what` names the source in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<CrystalVae, ModelError> {
        let text = metadata_entry(bytes, GEN_CARD_KEY, what)?;
        let card: GenCard = serde_json::from_str(&text)
            .map_err(|e| ModelError::Setup(format!("{what}: malformed generator card: {e}")))?;
        card.config.validate().map_err(|e| ModelError::Setup(format!("{what}: {e}")))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Setup(format!("{what}: {e:?}")))?;
        let vae = CrystalVae::new(card);
        load_vars(&vae.vs, &st, "", what)?;
        let n = vae.vs.variables().len();
        if st.names().len() != n {
            return Err(ModelError::Setup(format!(
                "{what}: {} tensors stored, the architecture has {n}",
                st.names().len()
            )));
        }
        let check = weights_hash(&vars_of(&vae.vs, "")?);
        if check != vae.card.weights_sha256 {
            return Err(ModelError::Setup(format!(
                "{what}: weights hash {check} differs from the card's {}",
                vae.card.weights_sha256
            )));
        }
        Ok(vae)
    }

    /// The generator embedded in the binary.
    pub fn shipped() -> Result<CrystalVae, ModelError> {
        CrystalVae::from_bytes(SHIPPED, SHIPPED_NAME)
    }

    /// `crystal-vae` (the shipped one) or a path to a `.safetensors` generator.
    pub fn open(spec: &str) -> Result<CrystalVae, ModelError> {
        if spec.is_empty() || spec == SHIPPED_NAME { CrystalVae::shipped() } else { CrystalVae::load(Path::new(spec)) }
    }

    pub fn load(path: &Path) -> Result<CrystalVae, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|e| ModelError::Setup(format!("cannot read {}: {e}", path.display())))?;
        CrystalVae::from_bytes(&bytes, &path.display().to_string())
    }
}
