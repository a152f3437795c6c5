//! Writes `tests/assets/models/linear_composition.pt` (+ `.pt.json`), the TorchScript fixture of the
//! bring-your-own-model tests: `cargo run --example make_torchscript_fixture`.
//!
//! The module is traced from a tch function, exactly as a user would export a model with
//! `CModule::create_by_tracing` (or `torch.jit.trace` in Python): input float32 [B, 145] composition
//! features, output [B, 1, 2] = (formation energy in eV/atom, σ). Its weights are fixed numbers
//! (`weight(j)`, `std_weight(j)` below), so the tests can recompute every prediction by hand.

use tch::{CModule, Kind, Tensor, nn};

/// Weight of feature j in the mean; small so outputs stay in eV/atom range.
pub fn weight(j: usize) -> f32 {
    ((j as f32) * 0.37).sin() * 1e-3
}

fn main() {
    let n = geode::chem::features::N_FEATURES as i64;
    let mut vs = nn::VarStore::new(tch::Device::Cpu);
    let w = vs.root().var("w", &[n, 1], nn::Init::Const(0.0));
    let b = vs.root().var("b", &[1], nn::Init::Const(-0.5));
    tch::no_grad(|| {
        let vals: Vec<f32> = (0..n as usize).map(weight).collect();
        w.shallow_clone().copy_(&Tensor::from_slice(&vals).reshape([n, 1]));
    });
    vs.freeze();
    let example = Tensor::ones([3, n], (Kind::Float, tch::Device::Cpu));
    let module = CModule::create_by_tracing("LinearComposition", "forward", &[example], &mut |inputs| {
        let mean = inputs[0].matmul(&w) + &b;
        // σ: 0.05 eV/atom times the number of elements (the 0-norm feature, index 132).
        let std = inputs[0].narrow(1, 132, 1) * 0.05;
        vec![Tensor::stack(&[mean, std], 2)]
    })
    .expect("trace");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/models");
    std::fs::create_dir_all(&dir).expect("create dir");
    module.save(dir.join("linear_composition.pt")).expect("save");
    std::fs::write(
        dir.join("linear_composition.pt.json"),
        "{\"input\": \"composition\", \"targets\": [\"formation_energy_per_atom\"]}\n",
    )
    .expect("write sidecar");
    println!("wrote {}", dir.join("linear_composition.pt").display());
}
