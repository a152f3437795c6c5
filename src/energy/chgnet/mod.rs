//! CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), the universal interatomic potential trained on
//! MPtrj, reimplemented on tch: graph construction in [`graph`], the network in [`model`], and the
//! [`Chgnet`] calculator behind the [`Calculator`] seam. The shipped weights are CHGNet 0.3.0's
//! (412,525 parameters, BSD-3-Clause-LBNL), converted once from the `chgnet==0.4.2` wheel to
//! `assets/potentials/chgnet-0.3.0.safetensors` by `scripts/convert_chgnet.py` and embedded in the binary.
//!
//! Energies are total energies on Materials Project's PBE(+U) scale (eV), forces eV/Å, stress eV/Å³
//! (ASE's sign), magnetic moments μ_B; everything in float32 inside, as the reference.

pub mod graph;
pub mod model;

use std::sync::{Arc, OnceLock};

use nalgebra::{Matrix3, Vector3};

pub use graph::CrystalGraph;
pub use model::Network;

use super::calculator::{CalcError, Calculator, Evaluation};
use crate::crystal::Structure;

const SHIPPED: &[u8] = include_bytes!("../../../assets/potentials/chgnet-0.3.0.safetensors");

/// Heaviest element CHGNet has an embedding for (Pu).
pub const MAX_Z: u8 = 94;

/// Most directed edges (neighbours within 6 Å) per atom CHGNet is asked to handle; dense metals have about 80.
/// Beyond it (a cell collapsed far below any real density) the graph would take gigabytes.
pub const MAX_EDGES_PER_ATOM: usize = 1000;

/// Default number of crystals per forward pass in [`Calculator::calculate_batch`].
pub const DEFAULT_BATCH: usize = 32;

/// The CHGNet potential.
#[derive(Clone)]
pub struct Chgnet {
    net: Arc<Network>,
    /// Crystals per forward pass in batch evaluation.
    pub batch_size: usize,
    name: String,
}

impl Chgnet {
    /// The shipped CHGNet 0.3.0 weights (parsed once per process, then shared).
    pub fn pretrained() -> Chgnet {
        static NET: OnceLock<Arc<Network>> = OnceLock::new();
        let net = NET
            .get_or_init(|| {
                Arc::new(Network::from_safetensors(SHIPPED).expect("the embedded CHGNet weights are valid"))
            })
            .clone();
        Chgnet { net, batch_size: DEFAULT_BATCH, name: "chgnet-0.3.0".into() }
    }

    /// Weights from a safetensors file written by `scripts/convert_chgnet.py` (e.g. a fine-tuned model).
    pub fn from_file(path: &std::path::Path) -> Result<Chgnet, CalcError> {
        let bytes =
            std::fs::read(path).map_err(|e| CalcError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let net =
            Network::from_safetensors(&bytes).map_err(|e| CalcError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(Chgnet { net: Arc::new(net), batch_size: DEFAULT_BATCH, name: format!("chgnet({})", path.display()) })
    }

    /// The same potential evaluating `n` crystals per forward pass.
    pub fn with_batch_size(mut self, n: usize) -> Chgnet {
        self.batch_size = n.max(1);
        self
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    fn check(&self, s: &Structure) -> Result<(), CalcError> {
        if s.n_sites() == 0 {
            return Err(CalcError::Invalid("CHGNet needs at least one site".into()));
        }
        if let Some(e) = s.species().iter().find(|e| e.z() > MAX_Z) {
            return Err(CalcError::UnsupportedElement {
                calculator: self.name.clone(),
                element: e.symbol().to_string(),
            });
        }
        // Atoms within the 6 Å sphere at this density, before any graph is built.
        let per_atom = 4.0 / 3.0 * std::f64::consts::PI * self.net.cutoffs.0.powi(3) * s.n_sites() as f64 / s.volume();
        if per_atom > MAX_EDGES_PER_ATOM as f64 {
            return Err(CalcError::Invalid(format!(
                "{:.2} Å³ per atom is far denser than any crystal: about {per_atom:.0} neighbours per atom within CHGNet's {} Å cutoff (at most {MAX_EDGES_PER_ATOM})",
                s.volume() / s.n_sites() as f64,
                self.net.cutoffs.0
            )));
        }
        Ok(())
    }

    /// Run the network over `structures`, `batch_size` per forward pass; `each(output, k, atoms)` turns the k-th
    /// crystal of a batch (its sites at `atoms` in the batch's per-site arrays) into a result.
    fn batched<T>(
        &self,
        structures: &[Structure],
        derivatives: bool,
        each: impl Fn(&model::BatchOutput, usize, std::ops::Range<usize>) -> T,
    ) -> Vec<Result<T, CalcError>> {
        let mut out: Vec<Option<Result<T, CalcError>>> =
            structures.iter().map(|s| self.check(s).err().map(Err)).collect();
        let ok: Vec<usize> = (0..structures.len()).filter(|&i| out[i].is_none()).collect();
        let (atom_cut, bond_cut) = self.net.cutoffs;
        for chunk in ok.chunks(self.batch_size.max(1)) {
            let graphs: Vec<CrystalGraph> =
                chunk.iter().map(|&i| CrystalGraph::new(&structures[i], atom_cut, bond_cut)).collect();
            let refs: Vec<&CrystalGraph> = graphs.iter().collect();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.net.forward(&refs, derivatives))) {
                Ok(b) => {
                    let mut a0 = 0;
                    for (k, &i) in chunk.iter().enumerate() {
                        let n = graphs[k].n_atoms();
                        out[i] = Some(Ok(each(&b, k, a0..a0 + n)));
                        a0 += n;
                    }
                }
                Err(p) => {
                    let reason = crate::ml::error::first_line(&crate::panic_message(&*p));
                    for &i in chunk {
                        out[i] = Some(Err(CalcError::Failed { calculator: self.name.clone(), reason: reason.clone() }));
                    }
                }
            }
        }
        out.into_iter().map(|r| r.expect("every structure has a result")).collect()
    }

    /// Energies, forces, stresses, site energies and magnetic moments of many crystals, `batch_size` per
    /// forward pass.
    pub fn predict(&self, structures: &[Structure]) -> Vec<Result<Evaluation, CalcError>> {
        self.batched(structures, true, |b, k, atoms| {
            let st = b.stress[k];
            Evaluation {
                energy: b.energy[k],
                forces: b.forces[atoms.clone()].iter().map(|f| Vector3::new(f[0], f[1], f[2])).collect(),
                stress: Matrix3::from_fn(|r, c| st[r][c]),
                site_energies: Some(b.site_energies[atoms.clone()].to_vec()),
                magmoms: b.magmoms.get(atoms).map(|m| m.to_vec()),
            }
        })
    }

    /// Total energies (eV) alone, without forces or stresses: no autograd graph, so cheaper than
    /// [`Calculator::calculate_batch`] for screening many fixed structures.
    pub fn energies(&self, structures: &[Structure]) -> Vec<Result<f64, CalcError>> {
        self.batched(structures, false, |b, k, _| b.energy[k])
    }
}

impl Calculator for Chgnet {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn supports(&self, element: crate::crystal::Element) -> bool {
        element.z() <= MAX_Z
    }

    fn calculate(&self, structure: &Structure) -> Result<Evaluation, CalcError> {
        self.predict(std::slice::from_ref(structure)).pop().expect("one result")
    }

    fn calculate_batch(&self, structures: &[Structure]) -> Vec<Result<Evaluation, CalcError>> {
        self.predict(structures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::{Element, Lattice};

    fn rocksalt(a: f64) -> Structure {
        let (na, cl) = (Element::from_symbol("Na").unwrap(), Element::from_symbol("Cl").unwrap());
        let f = |x: f64, y: f64, z: f64| Vector3::new(x, y, z);
        Structure::from_frac(
            Lattice::cubic(a).unwrap(),
            vec![na, na, na, na, cl, cl, cl, cl],
            vec![
                f(0., 0., 0.),
                f(0., 0.5, 0.5),
                f(0.5, 0., 0.5),
                f(0.5, 0.5, 0.),
                f(0.5, 0., 0.),
                f(0., 0.5, 0.),
                f(0., 0., 0.5),
                f(0.5, 0.5, 0.5),
            ],
        )
        .unwrap()
    }

    #[test]
    fn shipped_weights_load_with_the_reference_parameter_count() {
        assert_eq!(Chgnet::pretrained().network().n_params, 412_525);
    }

    #[test]
    fn forces_and_stress_are_derivatives_of_the_energy() {
        let c = Chgnet::pretrained();
        let mut s = rocksalt(5.6);
        s.frac_coords_mut()[0] += Vector3::new(0.012, -0.007, 0.004);
        s.frac_coords_mut()[5] += Vector3::new(-0.006, 0.01, 0.003);
        let e0 = c.calculate(&s).unwrap();
        // Perfect rock salt: no force, isotropic stress. The rattled copy: forces match central differences.
        let h = 0.02;
        for (atom, axis) in [(0usize, 0usize), (5, 1), (3, 2)] {
            let shift = |sign: f64| {
                let mut t = s.clone();
                let mut cart = t.lattice.to_cart(&t.frac_coords()[atom]);
                cart[axis] += sign * h;
                t.frac_coords_mut()[atom] = t.lattice.to_frac(&cart);
                c.calculate(&t).unwrap().energy
            };
            let fd = -(shift(1.0) - shift(-1.0)) / (2.0 * h);
            assert!(
                (fd - e0.forces[atom][axis]).abs() < 5e-3,
                "atom {atom} axis {axis}: autograd {} vs finite difference {fd}",
                e0.forces[atom][axis]
            );
        }
        // σ_xx = (1/V) ∂E/∂ε_xx.
        let strain = |eps: f64| {
            let m = Matrix3::new(1.0 + eps, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0);
            let rows = s.lattice.row_vectors();
            let r = Matrix3::from_fn(|i, j| rows[i][j]) * m;
            let l = Lattice::from_row_vectors(std::array::from_fn(|i| std::array::from_fn(|j| r[(i, j)]))).unwrap();
            c.calculate(&s.with_lattice(l)).unwrap().energy
        };
        let fd = (strain(5e-3) - strain(-5e-3)) / 1e-2 / s.volume();
        assert!(
            (fd - e0.stress[(0, 0)]).abs() < 2e-4,
            "stress xx: autograd {} vs finite difference {fd}",
            e0.stress[(0, 0)]
        );
        let perfect = c.calculate(&rocksalt(5.6)).unwrap();
        assert!(perfect.fmax() < 1e-4, "{}", perfect.fmax());
        assert!((perfect.stress[(0, 0)] - perfect.stress[(2, 2)]).abs() < 1e-5 && perfect.stress[(0, 1)].abs() < 1e-5);
    }

    #[test]
    fn batches_give_the_same_answers_as_single_structures() {
        let c = Chgnet { batch_size: 3, ..Chgnet::pretrained() };
        let structures: Vec<Structure> = [5.4, 5.6, 5.8, 6.0].iter().map(|&a| rocksalt(a)).collect();
        let batch = c.calculate_batch(&structures);
        for (s, b) in structures.iter().zip(&batch) {
            let one = c.calculate(s).unwrap();
            let b = b.as_ref().unwrap();
            assert!((one.energy - b.energy).abs() < 1e-4, "{} vs {}", one.energy, b.energy);
            assert!((one.stress - b.stress).norm() < 1e-6);
        }
        // Rock salt NaCl sits near a = 5.6–5.7 Å in PBE: compression raises the energy, and so does stretching.
        let e: Vec<f64> = batch.iter().map(|r| r.as_ref().unwrap().energy_per_atom()).collect();
        assert!(e[0] > e[1] && e[3] > e[2], "{e:?}");
    }

    #[test]
    fn energies_alone_equal_the_full_evaluation() {
        let c = Chgnet::pretrained();
        let s = rocksalt(5.5);
        let full = c.calculate(&s).unwrap();
        let e = c.energies(std::slice::from_ref(&s)).pop().unwrap().unwrap();
        assert!((e - full.energy).abs() < 1e-5, "{e} vs {}", full.energy);
    }

    #[test]
    fn an_isolated_atom_has_an_energy_and_no_force() {
        // No neighbour within 6 Å: no edges, no angles, only the embedding through the readout.
        let na = Element::from_symbol("Na").unwrap();
        let s =
            Structure::from_frac(Lattice::cubic(12.5).unwrap(), vec![na], vec![Vector3::new(0.3, 0.3, 0.3)]).unwrap();
        assert!(CrystalGraph::chgnet(&s).isolated_atoms() == vec![0]);
        let e = Chgnet::pretrained().calculate(&s).unwrap();
        assert!(e.energy.is_finite() && e.fmax() == 0.0 && e.stress.norm() == 0.0, "{e:?}");
        // In a batch with ordinary crystals too.
        let batch = Chgnet::pretrained().calculate_batch(&[rocksalt(5.6), s.clone(), rocksalt(5.7)]);
        assert!((batch[1].as_ref().unwrap().energy - e.energy).abs() < 1e-5);
    }

    #[test]
    fn collapsed_cells_are_refused_before_building_a_huge_graph() {
        let err = Chgnet::pretrained().calculate(&rocksalt(1.5)).unwrap_err();
        assert!(err.to_string().contains("denser than any crystal"), "{err}");
    }

    #[test]
    fn unsupported_elements_are_refused_by_name() {
        let am = Element::from_symbol("Am").unwrap();
        let s = Structure::from_frac(Lattice::cubic(3.5).unwrap(), vec![am], vec![Vector3::zeros()]).unwrap();
        match Chgnet::pretrained().calculate(&s) {
            Err(CalcError::UnsupportedElement { element, .. }) => assert_eq!(element, "Am"),
            other => panic!("{other:?}"),
        }
    }
}
