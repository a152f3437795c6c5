//! Bring your own potential: a TorchScript module (`torch.jit.script` / `torch.jit.trace`, saved with
//! `torch.jit.save`, or tch's `CModule::create_by_tracing`) behind the [`Calculator`] seam.
//!
//! Contract: `forward(positions, cell, numbers) -> energy` with
//! - `positions` [N, 3] Cartesian coordinates (Å) of the wrapped fractional coordinates,
//! - `cell` [3, 3] lattice vectors as rows (Å),
//! - `numbers` int64 [N] atomic numbers,
//!
//! both float tensors in the module's dtype (float32 unless `dtype=f64` is given), and the output either the
//! total energy (eV; a tensor of one element) or per-site energies [N] (summed). The module must be
//! differentiable in `positions` and `cell`: Geode takes forces as `−∂E/∂r` and the stress as
//! `(1/V) ∂E/∂ε` by autograd, feeding `positions (I + ε)` and `cell (I + ε)` with ε = 0, so periodic images
//! must be built inside the module from `cell`. (Tracing with tch: make constant tensors, such as the image
//! shifts, outside the traced closure; one created from host data inside it is recorded as zeros.)
//! `tests/torchscript_potential.rs` traces a Lennard-Jones potential this way and holds it to the built-in one.

use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Vector3};
use tch::{CModule, Device, IValue, Kind, Tensor};

use super::calculator::{CalcError, Calculator, Evaluation};
use crate::crystal::Structure;
use crate::crystal::structure::wrap_frac;
use crate::ml::error::first_line;

pub struct TorchScriptPotential {
    pub path: PathBuf,
    kind: Kind,
    module: CModule,
}

impl TorchScriptPotential {
    /// Load `path`; `double` selects float64 inputs (float32 otherwise).
    pub fn load(path: &Path, double: bool) -> Result<TorchScriptPotential, CalcError> {
        let mut module = CModule::load_on_device(path, Device::Cpu).map_err(|e| {
            CalcError::Invalid(format!(
                "cannot load the TorchScript potential {}: {}",
                path.display(),
                first_line(&e.to_string())
            ))
        })?;
        module.set_eval();
        Ok(TorchScriptPotential {
            path: path.to_path_buf(),
            kind: if double { Kind::Double } else { Kind::Float },
            module,
        })
    }

    fn failed(&self, why: String) -> CalcError {
        CalcError::Failed { calculator: self.name(), reason: why }
    }
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).reshape([-1])).unwrap_or_default()
}

impl Calculator for TorchScriptPotential {
    fn name(&self) -> String {
        format!("torchscript({})", self.path.display())
    }

    fn calculate(&self, s: &Structure) -> Result<Evaluation, CalcError> {
        let n = s.n_sites();
        if n == 0 {
            return Err(CalcError::Invalid("a structure with no sites".into()));
        }
        let opts = (self.kind, Device::Cpu);
        let cart: Vec<f64> = s
            .frac_coords()
            .iter()
            .flat_map(|f| {
                let c = s.lattice.to_cart(&wrap_frac(f));
                [c.x, c.y, c.z]
            })
            .collect();
        let rows = s.lattice.row_vectors();
        let cell: Vec<f64> = rows.iter().flatten().copied().collect();
        let z: Vec<i64> = s.species().iter().map(|e| e.z() as i64).collect();
        let run = || -> Result<(Tensor, Tensor, Tensor), String> {
            let positions = Tensor::from_slice(&cart).reshape([n as i64, 3]).to_kind(self.kind).set_requires_grad(true);
            let strain = Tensor::zeros([3, 3], opts).set_requires_grad(true);
            let deform = Tensor::eye(3, opts) + &strain;
            let cell = Tensor::from_slice(&cell).reshape([3, 3]).to_kind(self.kind).matmul(&deform);
            let pos = positions.matmul(&deform);
            let out = self
                .module
                .forward_is(&[IValue::Tensor(pos), IValue::Tensor(cell), IValue::Tensor(Tensor::from_slice(&z))])
                .map_err(|e| first_line(&e.to_string()))?;
            let out = match out {
                IValue::Tensor(t) => t,
                IValue::Tuple(mut v) if !v.is_empty() => match v.swap_remove(0) {
                    IValue::Tensor(t) => t,
                    other => return Err(format!("the module's first output is {other:?}, expected a tensor")),
                },
                other => return Err(format!("the module returned {other:?}, expected a tensor")),
            };
            let numel = out.numel();
            if numel != 1 && numel != n {
                return Err(format!(
                    "the module returned {} values for {n} sites: expected the energy or one energy per site",
                    numel
                ));
            }
            let energy = out.sum(out.kind());
            let grads = Tensor::f_run_backward(&[&energy], &[&positions, &strain], false, false).map_err(|e| {
                format!("the energy is not differentiable in positions and cell: {}", first_line(&e.to_string()))
            })?;
            Ok((out, grads[0].shallow_clone(), grads[1].shallow_clone()))
        };
        let (out, g_pos, g_strain) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .map_err(|_| self.failed("libtorch error".into()))?
            .map_err(|e| self.failed(e))?;
        let sites = to_vec(&out);
        let energy: f64 = sites.iter().sum();
        if !energy.is_finite() {
            return Err(self.failed(format!("the energy is {energy}")));
        }
        let f = to_vec(&g_pos);
        let st = to_vec(&g_strain);
        if f.len() != 3 * n || st.len() != 9 {
            return Err(self.failed("the energy does not depend on the positions and cell it was given".into()));
        }
        Ok(Evaluation {
            energy,
            forces: f.chunks_exact(3).map(|c| -Vector3::new(c[0], c[1], c[2])).collect(),
            stress: Matrix3::from_row_slice(&st) / s.volume(),
            site_energies: (sites.len() == n && n > 1).then_some(sites),
            magmoms: None,
        })
    }
}
