//! CHGNet's network on tch, layer for layer as `chgnet.model.CHGNet` 0.4.2 with the 0.3.0 arguments
//! (64-wide atom, bond and angle features; 31 radial and 31 angular basis functions; 4 atom convolutions,
//! 3 bond convolutions and 3 angle updates; gated MLPs with layer norm; per-site energy readout summed
//! per crystal, plus the fixed MPtrj AtomRef composition energies). Float32, as the reference.
//!
//! Forces and stress come from autograd: the batch's Cartesian positions and a per-crystal strain ε
//! (lattice `L (I + ε)`, rows are lattice vectors) are the leaves; `F = −∂E/∂r` (eV/Å) and
//! `σ = (1/V) ∂E/∂ε` (eV/Å³, ASE's sign).

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use super::graph::CrystalGraph;

const F32: (Kind, Device) = (Kind::Float, Device::Cpu);

/// A dense layer: `x Wᵀ + b`.
struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, self.b.as_ref())
    }
}

/// CHGNet's `MLP`: linear layers with SiLU between them (dropout is inactive at inference).
struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.layers[0].forward(x);
        for l in &self.layers[1..] {
            h = l.forward(&h.silu());
        }
        h
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let n = self.w.size()[0];
        x.layer_norm([n], Some(&self.w), Some(&self.b), 1e-5, false)
    }
}

/// CHGNet's `GatedMLP` with layer norm: `silu(LN₁(core(x))) ⊙ σ(LN₂(gate(x)))`.
struct GatedMlp {
    core: Mlp,
    gate: Mlp,
    norm1: LayerNorm,
    norm2: LayerNorm,
}

impl GatedMlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.norm1.forward(&self.core.forward(x)).silu() * self.norm2.forward(&self.gate.forward(x)).sigmoid()
    }
}

struct AtomConv {
    two_body: GatedMlp,
    mlp_out: Mlp,
}

struct BondConv {
    two_body: GatedMlp,
    mlp_out: Mlp,
}

struct AngleUpdate {
    two_body: GatedMlp,
}

/// The network's weights, read once; never mutated afterwards.
pub struct Network {
    atom_ref: Tensor,
    embedding: Tensor,
    rbf_freq_ag: Tensor,
    rbf_freq_bg: Tensor,
    fourier_freq: Tensor,
    bond_embedding: Linear,
    bond_weights_ag: Linear,
    bond_weights_bg: Linear,
    angle_embedding: Linear,
    atom_convs: Vec<AtomConv>,
    bond_convs: Vec<BondConv>,
    angle_updates: Vec<AngleUpdate>,
    site_wise: Linear,
    readout_norm: LayerNorm,
    readout: Mlp,
    /// Atom-graph and bond-graph cutoffs (Å).
    pub cutoffs: (f64, f64),
    /// Polynomial envelope exponent (`cutoff_coeff`).
    envelope_p: f64,
    pub n_params: usize,
    /// The safetensors header metadata (model arguments, source, licence).
    pub metadata: HashMap<String, String>,
}

// SAFETY: every tensor in `Network` is created once in `from_safetensors`, never requires grad and is never
// written afterwards; libtorch operators only read their inputs, so concurrent forward passes from several
// threads over the same weights are sound (as tch's `CModule`, which is marked Sync on the same grounds).
unsafe impl Sync for Network {}

/// One batch's results.
pub struct BatchOutput {
    /// Total energy of each crystal (eV).
    pub energy: Vec<f64>,
    /// Energy of each site (eV), crystal after crystal.
    pub site_energies: Vec<f64>,
    /// Force on each site (eV/Å), crystal after crystal.
    pub forces: Vec<[f64; 3]>,
    /// Stress of each crystal (eV/Å³, ASE's sign), row-major.
    pub stress: Vec<[[f64; 3]; 3]>,
    /// Magnetic moment of each site (μ_B).
    pub magmoms: Vec<f64>,
}

fn tensor_from(st: &SafeTensors, name: &str) -> Result<Tensor, String> {
    let view = st.tensor(name).map_err(|_| format!("tensor {name} is missing"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!("tensor {name} is {:?}, expected F32", view.dtype()));
    }
    let vals: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_slice(&vals).reshape(shape))
}

struct Loader<'a> {
    st: &'a SafeTensors<'a>,
    used: usize,
}

impl Loader<'_> {
    fn get(&mut self, name: &str) -> Result<Tensor, String> {
        self.used += 1;
        tensor_from(self.st, name)
    }

    fn linear(&mut self, prefix: &str) -> Result<Linear, String> {
        let w = self.get(&format!("{prefix}.weight"))?;
        let b = if self.st.tensor(&format!("{prefix}.bias")).is_ok() {
            Some(self.get(&format!("{prefix}.bias"))?)
        } else {
            None
        };
        Ok(Linear { w, b })
    }

    /// `prefix.layers.{k}` for every k holding a weight, in order.
    fn mlp(&mut self, prefix: &str) -> Result<Mlp, String> {
        let lead = format!("{prefix}.layers.");
        let mut ks: Vec<usize> = self
            .st
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix(&lead)?.strip_suffix(".weight")?.parse().ok())
            .collect();
        ks.sort_unstable();
        if ks.is_empty() {
            return Err(format!("no layers under {prefix}"));
        }
        let layers = ks.iter().map(|k| self.linear(&format!("{lead}{k}"))).collect::<Result<_, _>>()?;
        Ok(Mlp { layers })
    }

    fn norm(&mut self, prefix: &str) -> Result<LayerNorm, String> {
        Ok(LayerNorm { w: self.get(&format!("{prefix}.weight"))?, b: self.get(&format!("{prefix}.bias"))? })
    }

    fn gated(&mut self, prefix: &str) -> Result<GatedMlp, String> {
        Ok(GatedMlp {
            core: self.mlp(&format!("{prefix}.mlp_core"))?,
            gate: self.mlp(&format!("{prefix}.mlp_gate"))?,
            norm1: self.norm(&format!("{prefix}.bn1"))?,
            norm2: self.norm(&format!("{prefix}.bn2"))?,
        })
    }
}

impl Network {
    /// Read the weights written by `scripts/convert_chgnet.py` (tensor names are CHGNet's state_dict keys).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Network, String> {
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file: {e:?}"))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let args: serde_json::Value = match metadata.get("model_args") {
            Some(a) => serde_json::from_str(a).map_err(|e| format!("model_args is not JSON: {e}"))?,
            None => return Err("the file has no model_args metadata: convert it with scripts/convert_chgnet.py".into()),
        };
        let num = |k: &str, default: f64| args.get(k).and_then(|v| v.as_f64()).unwrap_or(default);
        for (k, want) in [("mlp_first", true), ("is_intensive", true), ("update_bond", true), ("update_angle", true)] {
            if args.get(k).and_then(|v| v.as_bool()).unwrap_or(want) != want {
                return Err(format!("unsupported CHGNet variant: {k} = {}", !want));
            }
        }
        for (k, want) in [("non_linearity", "silu"), ("gMLP_norm", "layer"), ("readout_norm", "layer")] {
            if let Some(v) = args.get(k).and_then(|v| v.as_str())
                && v != want
            {
                return Err(format!("unsupported CHGNet variant: {k} = {v}"));
            }
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("cannot read tensors: {e:?}"))?;
        let n_conv = num("n_conv", 4.0) as usize;
        let mut l = Loader { st: &st, used: 0 };
        let net = Network {
            atom_ref: l.get("composition_model.fc.weight")?.reshape([-1]),
            embedding: l.get("atom_embedding.embedding.weight")?,
            rbf_freq_ag: l.get("bond_basis_expansion.rbf_expansion_ag.frequencies")?,
            rbf_freq_bg: l.get("bond_basis_expansion.rbf_expansion_bg.frequencies")?,
            fourier_freq: l.get("angle_basis_expansion.fourier_expansion.frequencies")?,
            bond_embedding: l.linear("bond_embedding")?,
            bond_weights_ag: l.linear("bond_weights_ag")?,
            bond_weights_bg: l.linear("bond_weights_bg")?,
            angle_embedding: l.linear("angle_embedding")?,
            atom_convs: (0..n_conv)
                .map(|i| {
                    Ok(AtomConv {
                        two_body: l.gated(&format!("atom_conv_layers.{i}.twoBody_atom"))?,
                        mlp_out: l.mlp(&format!("atom_conv_layers.{i}.mlp_out"))?,
                    })
                })
                .collect::<Result<_, String>>()?,
            bond_convs: (0..n_conv - 1)
                .map(|i| {
                    Ok(BondConv {
                        two_body: l.gated(&format!("bond_conv_layers.{i}.twoBody_bond"))?,
                        mlp_out: l.mlp(&format!("bond_conv_layers.{i}.mlp_out"))?,
                    })
                })
                .collect::<Result<_, String>>()?,
            angle_updates: (0..n_conv - 1)
                .map(|i| Ok(AngleUpdate { two_body: l.gated(&format!("angle_layers.{i}.twoBody_bond"))? }))
                .collect::<Result<_, String>>()?,
            site_wise: l.linear("site_wise")?,
            readout_norm: l.norm("readout_norm")?,
            readout: l.mlp("mlp")?,
            cutoffs: (num("atom_graph_cutoff", 6.0), num("bond_graph_cutoff", 3.0)),
            envelope_p: num("cutoff_coeff", 8.0),
            n_params: st.tensors().iter().map(|(_, v)| v.shape().iter().product::<usize>()).sum(),
            metadata,
        };
        if l.used != st.len() {
            return Err(format!("{} tensors stored, {} used: not a CHGNet 0.3.0-shaped model", st.len(), l.used));
        }
        Ok(net)
    }

    /// Smooth radial Bessel basis times CHGNet's polynomial envelope: `√(2/c) sin(f d/c)/d · u(d/c)`.
    fn radial_basis(&self, d: &Tensor, freq: &Tensor, cutoff: f64) -> Tensor {
        let p = self.envelope_p;
        let (a, b, c) = (-(p + 1.0) * (p + 2.0) / 2.0, p * (p + 2.0), -p * (p + 1.0) / 2.0);
        let d = d.unsqueeze(1);
        let x = &d / cutoff;
        let out = (freq * &x).sin() / &d * (2.0 / cutoff).sqrt();
        let env =
            x.pow_tensor_scalar(p) * a + x.pow_tensor_scalar(p + 1.0) * b + x.pow_tensor_scalar(p + 2.0) * c + 1.0;
        let env = env.where_self(&x.lt(1.0), &env.zeros_like());
        out * env
    }

    /// Fourier basis of the angle θ: `[1/√2, sin(kθ)…, cos(kθ)…] / √π`.
    fn angle_basis(&self, theta: &Tensor) -> Tensor {
        let t = theta.outer(&self.fourier_freq);
        let first = Tensor::full([theta.size()[0], 1], std::f64::consts::FRAC_1_SQRT_2, F32);
        Tensor::cat(&[first, t.sin(), t.cos()], 1) / std::f64::consts::PI.sqrt()
    }

    /// Energies, forces, stresses and magnetic moments of a batch of crystal graphs; with `derivatives`
    /// false only energies, site energies and magnetic moments (no autograd graph is built; forces and
    /// stresses come back empty).
    pub fn forward(&self, graphs: &[&CrystalGraph], derivatives: bool) -> BatchOutput {
        let _no_grad = (!derivatives).then(tch::no_grad_guard);
        let n_graph = graphs.len();
        let mut z = Vec::new();
        let mut owner = Vec::new();
        let mut pos = Vec::new();
        let mut lattices = Vec::new();
        let (mut ctr, mut nbr, mut img, mut edge_owner, mut d2u, mut u2d) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut ang_atom, mut ang_u1, mut ang_d1, mut ang_u2, mut ang_d2) = (vec![], vec![], vec![], vec![], vec![]);
        let mut volumes = Vec::new();
        let (mut atom_off, mut dir_off, mut und_off) = (0i64, 0i64, 0i64);
        for (gi, g) in graphs.iter().enumerate() {
            let l = g.lattice;
            for (k, f) in g.frac.iter().enumerate() {
                z.push(g.z[k] as i64 - 1);
                owner.push(gi as i64);
                pos.extend((0..3).map(|c| (f[0] * l[0][c] + f[1] * l[1][c] + f[2] * l[2][c]) as f32));
            }
            lattices.extend(l.iter().flatten().map(|&x| x as f32));
            let m = nalgebra::Matrix3::from_fn(|r, c| l[r][c]);
            volumes.push(m.determinant().abs());
            for (d, e) in g.edges.iter().enumerate() {
                ctr.push(e[0] as i64 + atom_off);
                nbr.push(e[1] as i64 + atom_off);
                img.extend(g.images[d].iter().map(|&x| x as f32));
                edge_owner.push(gi as i64);
                d2u.push(g.directed_to_undirected[d] as i64 + und_off);
            }
            u2d.extend(g.undirected_to_directed.iter().map(|&d| d as i64 + dir_off));
            for a in &g.angles {
                ang_atom.push(a[0] as i64 + atom_off);
                ang_u1.push(a[1] as i64 + und_off);
                ang_d1.push(a[2] as i64 + dir_off);
                ang_u2.push(a[3] as i64 + und_off);
                ang_d2.push(a[4] as i64 + dir_off);
            }
            atom_off += g.n_atoms() as i64;
            dir_off += g.edges.len() as i64;
            und_off += g.undirected_to_directed.len() as i64;
        }
        let n_atoms = atom_off;
        let idx = |v: &[i64]| Tensor::from_slice(v);
        let (owner_t, ctr_t, nbr_t, edge_owner_t, d2u_t, u2d_t) =
            (idx(&owner), idx(&ctr), idx(&nbr), idx(&edge_owner), idx(&d2u), idx(&u2d));
        let positions = Tensor::from_slice(&pos).reshape([n_atoms, 3]).set_requires_grad(derivatives);
        let strain = Tensor::zeros([n_graph as i64, 3, 3], F32).set_requires_grad(derivatives);
        let lattice = Tensor::from_slice(&lattices).reshape([n_graph as i64, 3, 3]);
        let deform = Tensor::eye(3, F32).unsqueeze(0) + &strain;
        let lattice_s = lattice.bmm(&deform);
        let pos_s = positions.unsqueeze(1).bmm(&deform.index_select(0, &owner_t)).squeeze_dim(1);
        let img_t = Tensor::from_slice(&img).reshape([-1, 3]);
        let offsets = img_t.unsqueeze(1).bmm(&lattice_s.index_select(0, &edge_owner_t)).squeeze_dim(1);
        let vectors = pos_s.index_select(0, &ctr_t) - (pos_s.index_select(0, &nbr_t) + offsets);
        let lengths = vectors.square().sum_dim_intlist([1i64].as_slice(), false, Kind::Float).sqrt();
        let unit = &vectors / lengths.unsqueeze(1);
        let und_lengths = lengths.index_select(0, &u2d_t);
        let bases_ag = self.radial_basis(&und_lengths, &self.rbf_freq_ag, self.cutoffs.0);
        let bases_bg = self.radial_basis(&und_lengths, &self.rbf_freq_bg, self.cutoffs.1);

        let z_t = idx(&z);
        let mut atom = self.embedding.index_select(0, &z_t);
        let mut bond = self.bond_embedding.forward(&bases_ag);
        let w_ag = self.bond_weights_ag.forward(&bases_ag);
        let w_bg = self.bond_weights_bg.forward(&bases_bg);
        let (ang_atom_t, ang_u1_t, ang_u2_t) = (idx(&ang_atom), idx(&ang_u1), idx(&ang_u2));
        let mut angle = if !ang_atom.is_empty() {
            let cos = (unit.index_select(0, &idx(&ang_d1)) * unit.index_select(0, &idx(&ang_d2))).sum_dim_intlist(
                [1i64].as_slice(),
                false,
                Kind::Float,
            ) * (1.0 - 1e-6);
            Some(self.angle_embedding.forward(&self.angle_basis(&cos.acos())))
        } else {
            None
        };
        let w_ag_directed = w_ag.index_select(0, &d2u_t);
        let atom_conv = |conv: &AtomConv, atom: &Tensor, bond: &Tensor| -> Tensor {
            let msg = Tensor::cat(
                &[atom.index_select(0, &ctr_t), bond.index_select(0, &d2u_t), atom.index_select(0, &nbr_t)],
                1,
            );
            let msg = conv.two_body.forward(&msg) * &w_ag_directed;
            let agg = Tensor::zeros([n_atoms, msg.size()[1]], F32).index_add(0, &ctr_t, &msg);
            conv.mlp_out.forward(&agg) + atom
        };
        let mut magmom = None;
        let n_inner = self.atom_convs.len() - 1;
        for i in 0..n_inner {
            atom = atom_conv(&self.atom_convs[i], &atom, &bond);
            if let Some(ang) = &angle {
                let centre = atom.index_select(0, &ang_atom_t);
                let (b1, b2) = (bond.index_select(0, &ang_u1_t), bond.index_select(0, &ang_u2_t));
                let total = Tensor::cat(&[&b1, &b2, ang, &centre], 1);
                let upd = self.bond_convs[i].two_body.forward(&total)
                    * w_bg.index_select(0, &ang_u1_t)
                    * w_bg.index_select(0, &ang_u2_t);
                let agg = Tensor::zeros(bond.size(), F32).index_add(0, &ang_u1_t, &upd);
                bond = self.bond_convs[i].mlp_out.forward(&agg) + &bond;
                let (b1, b2) = (bond.index_select(0, &ang_u1_t), bond.index_select(0, &ang_u2_t));
                let total = Tensor::cat(&[&b1, &b2, ang, &centre], 1);
                angle = Some(self.angle_updates[i].two_body.forward(&total) + ang);
            }
            if i == n_inner - 1 {
                magmom = Some(tch::no_grad(|| self.site_wise.forward(&atom).abs()));
            }
        }
        atom = atom_conv(&self.atom_convs[n_inner], &atom, &bond);
        let site = self.readout.forward(&self.readout_norm.forward(&atom)).squeeze_dim(1)
            + self.atom_ref.index_select(0, &z_t);
        let energy = Tensor::zeros([n_graph as i64], F32).index_add(0, &owner_t, &site);
        let to_vec = |t: &Tensor| -> Vec<f64> {
            Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).reshape([-1])).expect("a CPU float tensor")
        };
        let (f, s) = if derivatives {
            let grads = Tensor::run_backward(&[energy.sum(Kind::Float)], &[&positions, &strain], false, false);
            (to_vec(&grads[0]), to_vec(&grads[1]))
        } else {
            (Vec::new(), Vec::new())
        };
        BatchOutput {
            energy: to_vec(&energy),
            site_energies: to_vec(&site),
            forces: f.chunks_exact(3).map(|c| [-c[0], -c[1], -c[2]]).collect(),
            stress: (0..n_graph)
                .filter(|_| derivatives)
                .map(|b| std::array::from_fn(|r| std::array::from_fn(|c| s[b * 9 + r * 3 + c] / volumes[b])))
                .collect(),
            magmoms: magmom.map(|m| to_vec(&m)).unwrap_or_default(),
        }
    }
}
