//! A small crystal VAE trained on three simple crystals learns to reconstruct them (composition, cell
//! size and structure by pymatgen-style matching). In its own test binary: training draws noise from
//! torch's process-wide generator (seeded by the trainer), which other tests in the same process would
//! also draw from (every model construction does) and so make the result depend on test scheduling.

use std::sync::Arc;

use geode::crystal::matcher::StructureMatcher;
use geode::crystal::{Element, Lattice, Structure};
use geode::ml::generative::data::GenSample;
use geode::ml::generative::train::{GenTrainConfig, GenTrainer};
use geode::ml::generative::{Constraints, CrystalVae, GenConfig, SampleOptions};
use geode::ml::graph::GraphSpec;
use geode::ml::graph_net::GraphNetConfig;
use nalgebra::Vector3;

fn el(s: &str) -> Element {
    Element::from_symbol(s).unwrap()
}

fn fcc_primitive(a: f64) -> Lattice {
    let h = a / 2.0;
    Lattice::from_row_vectors([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap()
}

fn crystals() -> Vec<Structure> {
    let nacl = Structure::from_frac(
        fcc_primitive(5.64),
        vec![el("Na"), el("Cl")],
        vec![Vector3::zeros(), Vector3::new(0.5, 0.5, 0.5)],
    )
    .unwrap();
    let cscl = Structure::from_frac(
        Lattice::cubic(4.12).unwrap(),
        vec![el("Cs"), el("Cl")],
        vec![Vector3::zeros(), Vector3::new(0.5, 0.5, 0.5)],
    )
    .unwrap();
    let sto = Structure::from_frac(
        Lattice::cubic(3.905).unwrap(),
        vec![el("Sr"), el("Ti"), el("O"), el("O"), el("O")],
        vec![
            Vector3::zeros(),
            Vector3::new(0.5, 0.5, 0.5),
            Vector3::new(0.5, 0.5, 0.0),
            Vector3::new(0.5, 0.0, 0.5),
            Vector3::new(0.0, 0.5, 0.5),
        ],
    )
    .unwrap();
    vec![nacl, cscl, sto]
}

#[test]
fn a_tiny_model_reconstructs_its_training_crystals() {
    geode::ml::init_threads(1);
    let model = GenConfig {
        latent: 8,
        hidden: 64,
        encoder: GraphNetConfig { hidden: 32, layers: 2, embedding: 16, n_rbf: 20 },
        graph: GraphSpec { cutoff_ang: 5.0, max_neighbors: 12 },
        score_layers: 3,
        n_sigmas: 20,
        sigma_max: 1.5,
        beta_kl: 1e-3,
        max_atoms: 8,
        ..GenConfig::default()
    };
    let structures = crystals();
    let samples: Vec<GenSample> = structures
        .iter()
        .enumerate()
        .map(|(i, s)| {
            GenSample::new(&format!("c{i}"), s, [Some(-1.0 - i as f64), Some(i as f64)], &model.graph, model.max_atoms)
                .unwrap()
        })
        .collect();
    let cfg = GenTrainConfig { model, epochs: 2000, batch_size: 3, learning_rate: 3e-3, limit: None };
    let data = Arc::new(samples);
    let mut t = GenTrainer::new(cfg, data.clone(), data, 11, "three test crystals").unwrap();
    while !t.done() {
        t.epoch(&|| false, &mut |_, _| {}).unwrap();
    }
    let val = t.validation_loss().unwrap();
    assert!(val.n_atoms < 0.1 && val.composition < 1.0, "heads did not learn: {val:?}");
    let vae = &t.vae;
    let z = vae.encode_structures(&structures).unwrap();
    let decoded = vae
        .decode(
            &z,
            &Constraints::default(),
            &SampleOptions { steps_per_level: 20, seed: 3, ..Default::default() },
            &mut |_, _| {},
            &|| false,
        )
        .unwrap();
    let matcher = StructureMatcher { ltol: 0.3, stol: 0.5, angle_tol_deg: 10.0, ..Default::default() };
    for (s, d) in structures.iter().zip(&decoded) {
        let d = d.structure.as_ref().unwrap();
        assert_eq!(d.reduced_formula(), s.reduced_formula());
        assert_eq!(d.n_sites(), s.n_sites());
        assert!(
            matcher.fit(d, s),
            "{} was not reconstructed: lattice {:?} vs {:?}",
            s.reduced_formula(),
            d.lattice.params(),
            s.lattice.params()
        );
    }
    // A saved and reloaded model decodes the same way.
    let bytes = t.vae.to_bytes().unwrap();
    let vae2 = CrystalVae::from_bytes(&bytes, "round trip").unwrap();
    let z2 = vae2.encode_structures(&structures).unwrap();
    assert!(f64::try_from((z2 - &z).abs().max()).unwrap() < 1e-6);
}
