//! The model layer: gradients reach every weight, a network overfits a tiny batch, checkpoints
//! round-trip bit-exactly, conformal calibration covers what it should, and a user's TorchScript
//! model loads and predicts what its weights say.

use std::sync::Arc;

use geode::chem::features::composition_features;
use geode::data::{Dataset, Split};
use geode::ml::ensemble::{Architecture, Batch, Ensemble, Member, Sample, prepare};
use geode::ml::graph::GraphSpec;
use geode::ml::torchscript::TorchScriptModel;
use geode::ml::train::{self, LabelledSet, TrainConfig, Trainer};
use geode::ml::{PropertyModel, Target, checkpoint};
use tch::{Device, Kind, Tensor};

fn setup() {
    geode::ml::init_threads(1);
}

fn graph_arch() -> Architecture {
    Architecture::Graph {
        net: geode::ml::graph_net::GraphNetConfig { hidden: 16, layers: 2, embedding: 8, n_rbf: 12 },
        graph: GraphSpec::default(),
    }
}

fn comp_arch() -> Architecture {
    Architecture::Composition {
        net: geode::ml::composition_net::CompositionNetConfig { hidden: 32, blocks: 1, dropout: 0.0 },
    }
}

fn small_set(arch: &Architecture, n: usize) -> LabelledSet {
    let entries: Vec<_> = Dataset::embedded().split(Split::Train).take(n).collect();
    LabelledSet {
        samples: entries.iter().map(|e| prepare(arch, &e.structure)).collect(),
        labels: entries.iter().map(|e| vec![Some(e.formation_energy_per_atom), e.band_gap]).collect(),
        names: entries.iter().map(|e| e.name.clone()).collect(),
    }
}

#[test]
fn gradients_reach_every_trainable_weight() {
    setup();
    for arch in [graph_arch(), comp_arch()] {
        let set = small_set(&arch, 6);
        let m = Member::new(&arch, 2, Device::Cpu);
        let refs: Vec<&Sample> = set.samples.iter().collect();
        let out = m.forward_t(&Batch::new(&refs, Device::Cpu).unwrap(), true).unwrap();
        assert_eq!(out.size(), vec![6, 2]);
        let loss = (out * Tensor::from_slice(&[1.0f32, 0.5])).pow_tensor_scalar(2).sum(Kind::Float);
        loss.backward();
        let vars = m.vs.trainable_variables();
        assert!(!vars.is_empty());
        for (name, v) in m.vs.variables() {
            if !v.requires_grad() {
                continue;
            }
            let g = v.grad();
            assert!(g.defined(), "{}: no gradient for {name}", arch.kind_name());
            let norm = f64::try_from(g.abs().sum(Kind::Double)).unwrap();
            assert!(norm > 0.0 && norm.is_finite(), "{}: gradient of {name} is {norm}", arch.kind_name());
        }
    }
}

#[test]
fn overfits_a_tiny_batch() {
    setup();
    for (arch, model) in [(graph_arch(), "graph"), (comp_arch(), "composition")] {
        let set = Arc::new(small_set(&arch, 8));
        let cfg = TrainConfig {
            model: model.into(),
            members: 1,
            epochs: 400,
            patience: 400,
            batch_size: 8,
            learning_rate: 3e-3,
            weight_decay: 0.0,
            graph: match &arch {
                Architecture::Graph { net, .. } => net.clone(),
                _ => Default::default(),
            },
            composition: match &arch {
                Architecture::Composition { net } => net.clone(),
                _ => Default::default(),
            },
            ..Default::default()
        };
        // Validate on the training batch itself: the val MAE must go to ~0.
        let mut t = Trainer::new(&cfg, set.clone(), set.clone(), 3, 0).unwrap();
        let mut last = None;
        while !t.progress.done {
            last = Some(t.epoch(&|| false).unwrap());
        }
        let r = last.unwrap();
        assert!(r.val_mae[0] < 0.03, "{model}: formation energy MAE on the memorised batch {}", r.val_mae[0]);
        assert!(r.val_mae[1] < 0.1, "{model}: band gap MAE on the memorised batch {}", r.val_mae[1]);
    }
}

fn tiny_ensemble(arch: Architecture, seed: i64) -> Ensemble {
    tch::manual_seed(seed);
    let members = (0..3).map(|_| Member::new(&arch, 2, Device::Cpu)).collect();
    let cfg = TrainConfig { model: arch.kind_name().into(), ..Default::default() };
    let mut e = train::assemble(&cfg, members, "test", 0);
    e.card.architecture = arch;
    e
}

#[test]
fn checkpoints_round_trip_bit_exactly() {
    setup();
    for arch in [graph_arch(), comp_arch()] {
        let mut ens = tiny_ensemble(arch.clone(), 11);
        let set = small_set(&arch, 20);
        ens.calibrate(&set.samples, &set.labels).unwrap();
        let bytes = checkpoint::to_bytes(&mut ens).unwrap();
        let back = checkpoint::from_bytes(&bytes, "memory").unwrap();
        assert_eq!(back.card.weights_sha256, ens.card.weights_sha256);
        assert_eq!(back.card.conformal, ens.card.conformal);
        for (a, b) in ens.members.iter().zip(&back.members) {
            for (name, va) in a.vs.variables() {
                let vb = &b.vs.variables()[&name];
                let xa = Vec::<f32>::try_from(va.flatten(0, -1)).unwrap();
                let xb = Vec::<f32>::try_from(vb.flatten(0, -1)).unwrap();
                assert!(xa.iter().zip(&xb).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} differs");
            }
        }
        let pa = ens.predict_samples(&set.samples).unwrap();
        let pb = back.predict_samples(&set.samples).unwrap();
        assert_eq!(pa, pb);
        // A tampered file is refused with a message naming the problem.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 1] ^= 0x55;
        let err = checkpoint::from_bytes(&bad, "tampered.safetensors")
            .err()
            .expect("tampered weights must be refused")
            .to_string();
        assert!(err.contains("tampered.safetensors") && err.contains("hash"), "{err}");
        assert!(
            checkpoint::from_bytes(b"not a model", "junk.safetensors")
                .err()
                .unwrap()
                .to_string()
                .contains("junk.safetensors")
        );
    }
}

#[test]
fn conformal_intervals_cover_held_out_data() {
    setup();
    // Untrained members make large, honest-to-goodness errors: calibrate on one half of the
    // validation split and check coverage on the other half (exchangeable by construction).
    let arch = comp_arch();
    let mut ens = tiny_ensemble(arch.clone(), 5);
    let entries: Vec<_> = Dataset::embedded().split(Split::Val).collect();
    let all: Vec<Sample> = entries.iter().map(|e| prepare(&arch, &e.structure)).collect();
    let labels: Vec<Vec<Option<f64>>> =
        entries.iter().map(|e| vec![Some(e.formation_energy_per_atom), e.band_gap]).collect();
    let (cal_s, test_s): (Vec<_>, Vec<_>) = all.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    let cal_s: Vec<Sample> = cal_s.into_iter().map(|x| x.1).collect();
    let test_s: Vec<Sample> = test_s.into_iter().map(|x| x.1).collect();
    let cal_l: Vec<_> = labels.iter().step_by(2).cloned().collect();
    let test_l: Vec<_> = labels.iter().skip(1).step_by(2).cloned().collect();
    ens.calibrate(&cal_s, &cal_l).unwrap();
    let preds = ens.predict_samples(&test_s).unwrap();
    let m = train::metrics_of(&ens.card.targets, &preds, &test_l, &[0.0, 0.0]);
    for t in Target::ALL {
        let c = m[&t].coverage90;
        assert!((0.86..=0.94).contains(&c), "{}: coverage {c}", t.name());
    }
    assert!(preds.iter().all(|p| p[1].lo90 >= 0.0 && p[1].mean >= 0.0), "band gap intervals stay non-negative");
}

#[test]
fn torchscript_fixture_loads_and_predicts_its_weights() {
    setup();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/models/linear_composition.pt");
    let m = TorchScriptModel::load(&path).unwrap();
    assert_eq!(m.targets(), vec![Target::FormationEnergyPerAtom]);
    let entries: Vec<_> = Dataset::embedded().split(Split::Test).take(25).collect();
    let structures: Vec<_> = entries.iter().map(|e| e.structure.clone()).collect();
    let preds = m.predict(&structures).unwrap();
    for (e, p) in entries.iter().zip(&preds) {
        let f = composition_features(&e.structure.composition());
        // The fixture's weights (examples/make_torchscript_fixture.rs): sin(0.37 j)·1e-3, bias −0.5.
        let want: f64 = f
            .iter()
            .enumerate()
            .map(|(j, x)| (*x as f32 as f64) * ((j as f32 * 0.37).sin() * 1e-3) as f64)
            .sum::<f64>()
            - 0.5;
        assert!((p[0].mean - want).abs() < 1e-3 * (1.0 + want.abs()), "{}: {} vs {want}", e.formula, p[0].mean);
        let n_el = e.structure.composition().n_elements() as f64;
        assert!((p[0].std - 0.05 * n_el).abs() < 1e-5);
        assert!(p[0].lo90 < p[0].mean && p[0].hi90 > p[0].mean);
    }
    let comps: Vec<_> = entries.iter().map(|e| e.structure.composition()).collect();
    assert_eq!(m.predict_compositions(&comps).unwrap(), preds);
    // A model that does not exist, and a broken sidecar, are set-up errors naming the file.
    let err = TorchScriptModel::load(std::path::Path::new("/nonexistent/model.pt")).err().unwrap().to_string();
    assert!(err.contains("/nonexistent/model.pt"), "{err}");
}
