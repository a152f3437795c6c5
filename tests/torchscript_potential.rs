//! A user's TorchScript potential behind the calculator seam: a Lennard-Jones pair potential written as
//! tensor operations and traced to TorchScript (as a user exports a model), loaded with
//! `torchscript:path=…`, must give the built-in Lennard-Jones calculator's energies, forces and stresses
//! (those are held to ASE in `tests/relax_ase.rs`), and relax to the same structure.

use std::ops::ControlFlow;

use geode::crystal::{Element, Lattice, Structure};
use geode::energy::spec::from_spec;
use geode::energy::{Calculator, LennardJones, RelaxOptions, relax};
use nalgebra::Vector3;
use tch::{CModule, Kind, Tensor};

const SIGMA: f64 = 3.405;
const EPSILON: f64 = 0.0104;
/// Below the plane spacing of the test cells, so the 27 nearest images hold every neighbour.
const CUTOFF: f64 = 5.0;

/// The 27 image shifts (−1, 0, 1)³ in lattice units [27, 3]. Made outside the traced function: a tensor
/// created from host data during tracing is not recorded as a constant (it comes back as zeros).
fn shifts() -> Tensor {
    let v: Vec<f64> = (-1..=1)
        .flat_map(|a| (-1..=1).flat_map(move |b| (-1..=1).flat_map(move |c| [a as f64, b as f64, c as f64])))
        .collect();
    Tensor::from_slice(&v).reshape([27, 3])
}

/// E = ½ Σ_{i, j, n} [φ(r) − φ(rc)] over r < rc, with φ = 4ε((σ/r)¹² − (σ/r)⁶); positions [N, 3], cell [3, 3].
fn lj_energy(pos: &Tensor, cell: &Tensor, shifts: &Tensor) -> Tensor {
    let opts = (Kind::Double, tch::Device::Cpu);
    let images = shifts.matmul(cell); // [27, 3]
    // d[i, j, n] = r_j + T_n − r_i
    let d = pos.unsqueeze(0).unsqueeze(2) + images.unsqueeze(0).unsqueeze(0) - pos.unsqueeze(1).unsqueeze(2);
    let r2 = d.square().sum_dim_intlist([3i64].as_slice(), false, Kind::Double);
    // 1 for pairs within the cutoff (not the atom itself), 0 otherwise; masked pairs get r² = 1 so no
    // infinity reaches the gradient.
    let mask = r2.gt(1e-16).logical_and(&r2.lt(CUTOFF * CUTOFF)).to_kind(Kind::Double);
    let safe = &r2 * &mask + (Tensor::ones([1], opts) - &mask);
    let s6 = (Tensor::ones([1], opts) * (SIGMA * SIGMA) / safe).pow_tensor_scalar(3.0);
    let sc6 = (SIGMA / CUTOFF).powi(6);
    let phi = (s6.square() - &s6) * (4.0 * EPSILON) - 4.0 * EPSILON * (sc6 * sc6 - sc6);
    ((phi * mask).sum(Kind::Double) * 0.5).reshape([1])
}

fn trace_module(dir: &std::path::Path) -> std::path::PathBuf {
    let pos = Tensor::from_slice(&[0.0f64, 0.0, 0.0, 1.9, 1.8, 2.1]).reshape([2, 3]);
    let cell = Tensor::eye(3, (Kind::Double, tch::Device::Cpu)) * 5.6;
    let z = Tensor::from_slice(&[18i64, 18]);
    let shifts = shifts();
    let module = CModule::create_by_tracing("LennardJones", "forward", &[pos, cell, z], &mut |inputs| {
        vec![lj_energy(&inputs[0], &inputs[1], &shifts)]
    })
    .expect("trace");
    let path = dir.join("lj.pt");
    module.save(&path).expect("save");
    path
}

fn argon(seed: u64) -> Structure {
    // fcc argon, 5.4 Å cubic, rattled and sheared a little (deterministic).
    let ar = Element::from_symbol("Ar").unwrap();
    let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
    let jitter = |k: usize| ((k as f64 + seed as f64) * 1.37).sin() * 0.02;
    let frac = fcc
        .iter()
        .enumerate()
        .map(|(i, f)| Vector3::new(f[0] + jitter(3 * i), f[1] + jitter(3 * i + 1), f[2] + jitter(3 * i + 2)))
        .collect();
    let lattice = Lattice::from_row_vectors([[5.4, 0.1, 0.0], [0.0, 5.5, 0.05], [0.1, 0.0, 5.35]]).unwrap();
    Structure::from_frac(lattice, vec![ar; 4], frac).unwrap()
}

#[test]
fn traced_pair_potential_equals_the_built_in_one() {
    tch::set_num_threads(1);
    let dir = std::env::temp_dir().join(format!("geode-ts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = trace_module(&dir);
    let ts = from_spec(&format!("torchscript:path={},dtype=f64", path.display())).unwrap();
    let lj = LennardJones::new(SIGMA, EPSILON).with_cutoff(CUTOFF);
    for seed in 0..3 {
        let s = argon(seed);
        let (a, b) = (ts.calculate(&s).unwrap(), lj.calculate(&s).unwrap());
        assert!((a.energy - b.energy).abs() < 1e-10, "energy {} vs {}", a.energy, b.energy);
        for (fa, fb) in a.forces.iter().zip(&b.forces) {
            assert!((fa - fb).norm() < 1e-10, "force {fa:?} vs {fb:?}");
        }
        assert!((a.stress - b.stress).norm() < 1e-12, "stress {:?} vs {:?}", a.stress, b.stress);
    }
    let opts = RelaxOptions { fmax: 1e-3, ..Default::default() };
    let (ra, rb) = (
        relax(ts.as_ref(), &argon(1), &opts, &mut |_, _| ControlFlow::Continue(())).unwrap(),
        relax(&lj, &argon(1), &opts, &mut |_, _| ControlFlow::Continue(())).unwrap(),
    );
    assert!(ra.converged && ra.steps == rb.steps, "{} vs {} steps", ra.steps, rb.steps);
    assert!((ra.evaluation.energy - rb.evaluation.energy).abs() < 1e-9);
    // Bad modules and specs are clear errors.
    let missing = from_spec("torchscript:path=/nonexistent/model.pt").err().unwrap().to_string();
    assert!(missing.contains("/nonexistent/model.pt"), "{missing}");
    assert!(from_spec("torchscript:dtype=f64").is_err());
    std::fs::remove_dir_all(&dir).ok();
}
