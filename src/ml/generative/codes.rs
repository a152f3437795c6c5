//! [`Codes`]: a batch of latent codes (one row per crystal) as layers above `ml` hold them. The tensor
//! inside is private to `ml`: campaigns, jobs and the command line draw, move, select, decode and read
//! codes only through these methods and the generator's, so `tch` stays in `ml` and `energy`.

use tch::Tensor;

use super::CrystalVae;
use super::sample::{Constraints, Decoded, FormulaGuide, Goal, SampleOptions, rows};
use crate::crystal::Structure;

/// Latent codes, [n, latent] (float32 inside; f64 rows at the edges).
#[derive(Debug)]
pub struct Codes(pub(in crate::ml) Tensor);

impl Codes {
    /// How many codes.
    pub fn len(&self) -> usize {
        self.0.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The codes as rows of f64.
    pub fn rows(&self) -> Vec<Vec<f64>> {
        rows(&self.0)
    }

    /// The codes as rows of f32 (as candidates store them).
    pub fn rows_f32(&self) -> Vec<Vec<f32>> {
        self.rows().into_iter().map(|r| r.into_iter().map(|x| x as f32).collect()).collect()
    }

    /// Codes from rows of equal length.
    pub fn from_rows(rows: &[Vec<f64>], dim: usize) -> Codes {
        let v: Vec<f32> = rows.iter().flat_map(|r| r.iter().map(|&x| x as f32)).collect();
        Codes(Tensor::from_slice(&v).reshape([rows.len() as i64, dim as i64]))
    }

    /// Rows `idx` of these codes, in that order (repeats allowed).
    pub fn select(&self, idx: &[usize]) -> Codes {
        Codes(self.0.index_select(0, &index(idx)))
    }

    /// These codes with rows `at` replaced by rows `from_rows` of `other`.
    pub fn replace_rows(&self, at: &[usize], other: &Codes, from_rows: &[usize]) -> Codes {
        Codes(self.0.index_copy(0, &index(at), &other.0.index_select(0, &index(from_rows))))
    }

    /// Rows `idx` of these codes moved by `radius` × `noise` (one noise row per index).
    pub fn around(&self, idx: &[usize], noise: &Codes, radius: f64) -> Codes {
        Codes(self.0.index_select(0, &index(idx)) + &noise.0 * radius)
    }

    /// Points on the straight line from the first code to the second at fractions `ts` (0 = first).
    pub fn interpolate(&self, ts: &[f64]) -> Codes {
        let t = Tensor::from_slice(&ts.iter().map(|&t| t as f32).collect::<Vec<_>>()).unsqueeze(1);
        let a = self.0.get(0).unsqueeze(0);
        let b = self.0.get(1).unsqueeze(0);
        Codes(&a + (b - &a) * t)
    }
}

fn index(idx: &[usize]) -> Tensor {
    Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>())
}

/// The generator's methods on [`Codes`].
impl CrystalVae {
    /// `n` codes from the prior (see [`CrystalVae::prior_codes`]).
    pub fn prior(&self, n: usize, seed: u64) -> Codes {
        Codes(self.prior_codes(n, seed))
    }

    /// `n` rows of zero-mean noise with the prior's covariance (see [`CrystalVae::prior_noise`]).
    pub fn noise(&self, n: usize, seed: u64) -> Codes {
        Codes(self.prior_noise(n, seed))
    }

    /// The codes of structures (means of q(z | crystal)).
    pub fn codes_of(&self, structures: &[&Structure]) -> Result<Codes, String> {
        self.encode_structures(structures.iter().copied()).map(Codes)
    }

    /// The property heads at each code (formation energy eV/atom, band gap eV), clamped as the model
    /// reports them, or `unclamped` (a band gap below 0 still reads as such).
    pub fn property_heads(&self, z: &Codes, unclamped: bool) -> Vec<Vec<f64>> {
        let h =
            tch::no_grad(|| if unclamped { self.head_properties_unclamped(&z.0) } else { self.head_properties(&z.0) });
        rows(&h)
    }

    /// The codes after latent optimisation towards `goals` (see [`CrystalVae::optimise_latent`]).
    pub fn optimise(&self, z: &Codes, goals: &[Goal], steps: usize, lr: f64, prior_weight: f64) -> Codes {
        let last = self.optimise_latent(&z.0, goals, steps, lr, prior_weight, steps.max(1)).pop();
        Codes(last.unwrap_or_else(|| z.0.shallow_clone()))
    }

    /// Decode codes (see [`CrystalVae::decode_guided`]; no guide: [`CrystalVae::decode_anchored`]).
    #[allow(clippy::too_many_arguments)]
    pub fn decode_codes(
        &self,
        z: &Codes,
        anchors: &[Option<Vec<f64>>],
        c: &Constraints,
        o: &SampleOptions,
        guide: Option<&FormulaGuide>,
        progress: &mut dyn FnMut(usize, usize),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Decoded>, String> {
        self.decode_guided(&z.0, anchors, c, o, guide, progress, cancelled)
    }
}
