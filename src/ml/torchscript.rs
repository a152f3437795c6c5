//! Bring your own model: a TorchScript property model (`torch.jit.script` or `torch.jit.trace`,
//! saved with `torch.jit.save`) used wherever a built-in model is.
//!
//! Input convention, declared in a JSON sidecar `MODEL.pt.json` next to the model:
//! `{"input": "composition" | "graph", "targets": ["formation_energy_per_atom", "band_gap"],
//!   "graph": {"cutoff_ang": 6.0, "max_neighbors": 12}}` (`graph` optional; without a sidecar the
//! model is taken as a composition model of formation energy).
//! - `composition`: `forward(x)` with x float32 [B, 145], Geode's raw composition features in the
//!   order of `geode::chem::features::feature_names()` (Magpie statistics, stoichiometry norms,
//!   valence fractions, ionic character, charge-balance flag);
//! - `graph`: `forward(z, src, dst, distance, graph_index, n_graphs)`: z int64 [N] atomic numbers,
//!   src/dst int64 [E] (messages flow src → dst), distance float32 [E] in Å, graph_index int64 [N],
//!   n_graphs int64 scalar — the batched periodic graphs of `geode::ml::graph`.
//!
//! Output float32 [B, T] (values in eV/atom or eV), or [B, T, 2] with a standard deviation in the
//! last channel. On load the model is calibrated on the embedded validation split (split-conformal,
//! as the built-in ensembles) so its predictions carry σ and a 90 % interval too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{CModule, Device, Kind, Tensor};

use super::ensemble::{Architecture, Batch, CONFORMAL_LEVEL, Conformal, Sample, prepare};
use super::graph::GraphSpec;
use super::{ModelError, Prediction, PropertyModel, Target};
use crate::chem::features::composition_features;
use crate::crystal::{Composition, Structure};
use crate::data::{Dataset, Split};

/// The sidecar declaring a TorchScript model's input and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchScriptSpec {
    pub input: String,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub graph: GraphSpec,
    /// Labelled files (paths relative to the sidecar; see [`crate::data::labelled`]) that calibrate the
    /// intervals of targets the embedded dataset has no labels for (a user's property).
    #[serde(default)]
    pub calibration: Vec<String>,
}

impl Default for TorchScriptSpec {
    fn default() -> Self {
        TorchScriptSpec {
            input: "composition".into(),
            targets: vec![Target::FormationEnergyPerAtom],
            graph: GraphSpec::default(),
            calibration: Vec::new(),
        }
    }
}

pub struct TorchScriptModel {
    pub path: PathBuf,
    pub spec: TorchScriptSpec,
    module: CModule,
    arch: Architecture,
    conformal: Vec<Conformal>,
}

impl TorchScriptModel {
    /// Load `path` with its sidecar (`path` + `.json`) and calibrate it on the embedded validation split.
    pub fn load(path: &Path) -> Result<TorchScriptModel, ModelError> {
        let sidecar = PathBuf::from(format!("{}.json", path.display()));
        let spec: TorchScriptSpec = if sidecar.exists() {
            let text = std::fs::read_to_string(&sidecar)
                .map_err(|e| ModelError::Setup(format!("cannot read {}: {e}", sidecar.display())))?;
            serde_json::from_str(&text).map_err(|e| ModelError::Setup(format!("{}: {e}", sidecar.display())))?
        } else {
            TorchScriptSpec::default()
        };
        let arch = match spec.input.as_str() {
            "composition" => Architecture::Composition { net: Default::default() },
            "graph" => Architecture::Graph { net: Default::default(), graph: spec.graph },
            other => {
                return Err(ModelError::Setup(format!(
                    "{}: input {other:?} is neither \"composition\" nor \"graph\"",
                    sidecar.display()
                )));
            }
        };
        if spec.targets.is_empty() {
            return Err(ModelError::Setup(format!("{}: no targets declared", sidecar.display())));
        }
        let mut module = CModule::load_on_device(path, Device::Cpu)
            .map_err(|e| ModelError::Setup(format!("cannot load TorchScript model {}: {e}", path.display())))?;
        module.set_eval();
        let mut m = TorchScriptModel { path: path.to_path_buf(), spec, module, arch, conformal: Vec::new() };
        let base = sidecar.parent().unwrap_or(Path::new(".")).to_path_buf();
        m.spec.calibration = m.spec.calibration.iter().map(|f| base.join(f).display().to_string()).collect();
        m.calibrate(&sidecar)?;
        Ok(m)
    }

    /// Raw outputs (mean, σ) `[sample][target]` for prepared samples.
    fn raw(&self, samples: &[Sample]) -> Result<Vec<Vec<(f64, f64)>>, ModelError> {
        let nt = self.spec.targets.len();
        let mut out = Vec::with_capacity(samples.len());
        for chunk in samples.chunks(256) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let batch = Batch::new(&refs, Device::Cpu)?;
            let y = tch::no_grad(|| match &batch {
                Batch::Features(x) => self.module.forward_ts(&[x]),
                Batch::Graph(g) => self.module.forward_ts(&[
                    &g.z,
                    &g.src,
                    &g.dst,
                    &g.distance,
                    &g.graph_index,
                    &Tensor::from(g.n_graphs),
                ]),
            })
            .map_err(|e| ModelError::Failed(format!("{}: {e}", self.path.display())))?;
            let size = y.size();
            let b = chunk.len() as i64;
            let with_std = match size.as_slice() {
                [bb, t] if *bb == b && *t == nt as i64 => false,
                [bb, t, 2] if *bb == b && *t == nt as i64 => true,
                [bb] if *bb == b && nt == 1 => false,
                _ => {
                    return Err(ModelError::Failed(format!(
                        "{}: output shape {size:?}, expected [{b}, {nt}] or [{b}, {nt}, 2]",
                        self.path.display()
                    )));
                }
            };
            let flat = Vec::<f64>::try_from(y.to_kind(Kind::Double).flatten(0, -1))
                .map_err(|e| ModelError::Failed(e.to_string()))?;
            let per = if with_std { 2 * nt } else { nt };
            for row in flat.chunks_exact(per) {
                out.push(
                    (0..nt)
                        .map(|k| if with_std { (row[2 * k], row[2 * k + 1].abs()) } else { (row[k], 0.0) })
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    /// Split-conformal calibration of every target: on the embedded validation split for the built-in
    /// properties, on the sidecar's `calibration` files for a user's.
    fn calibrate(&mut self, sidecar: &Path) -> Result<(), ModelError> {
        let entries: Vec<_> = Dataset::embedded().split(Split::Val).collect();
        let needs_embedded = self.spec.targets.iter().any(|t| !matches!(t, Target::User(_)));
        let samples: Vec<Sample> = if needs_embedded {
            entries.iter().map(|e| prepare(&self.arch, &e.structure)).collect()
        } else {
            Vec::new()
        };
        let raw = self.raw(&samples)?;
        let mut conformal = Vec::new();
        for (k, t) in self.spec.targets.iter().enumerate() {
            let mut pairs = Vec::new();
            if let Target::User(_) = t {
                if self.spec.calibration.is_empty() {
                    return Err(ModelError::Setup(format!(
                        "{}: target {} has no labels in the embedded dataset; list labelled files that hold it under \
                         \"calibration\" so its intervals can be calibrated",
                        sidecar.display(),
                        t.name()
                    )));
                }
                let data = super::train::read_labelled(&self.spec.calibration, *t, None, None, false)?;
                let rows: Vec<_> = data.rows.iter().collect();
                let set = super::train::set_of_rows(&self.arch, &rows)?;
                for (r, out) in set.labels.iter().zip(self.raw(&set.samples)?) {
                    if let Some(y) = r[0] {
                        pairs.push((y, out[k].0, out[k].1));
                    }
                }
            }
            for (e, r) in entries.iter().zip(&raw) {
                if let Some(y) = t.label(e) {
                    pairs.push((y, r[k].0, r[k].1));
                }
            }
            let mut stds: Vec<f64> = pairs.iter().map(|p| p.2).collect();
            stds.sort_by(f64::total_cmp);
            let med = stds.get(stds.len() / 2).copied().unwrap_or(0.0);
            // Without a σ from the model the intervals have constant width (plain split conformal).
            let beta = if med > 1e-6 { med } else { 1.0 };
            let mut scores: Vec<f64> = pairs.iter().map(|(y, m, s)| (y - m).abs() / (s + beta)).collect();
            scores.sort_by(f64::total_cmp);
            let n = scores.len();
            if n == 0 {
                return Err(ModelError::Setup("no validation labels to calibrate against".into()));
            }
            let rank = ((CONFORMAL_LEVEL * (n as f64 + 1.0)).ceil() as usize).clamp(1, n);
            conformal.push(Conformal { level: CONFORMAL_LEVEL, q: scores[rank - 1], beta });
        }
        self.conformal = conformal;
        Ok(())
    }

    fn finish(&self, raw: Vec<Vec<(f64, f64)>>) -> Vec<Vec<Prediction>> {
        raw.into_iter()
            .map(|row| {
                row.into_iter()
                    .enumerate()
                    .map(|(k, (mean, std))| {
                        let t = self.spec.targets[k];
                        let c = self.conformal[k];
                        let mean = if t.non_negative() { mean.max(0.0) } else { mean };
                        let lo = mean - c.q * (std + c.beta);
                        Prediction {
                            mean,
                            std,
                            lo90: if t.non_negative() { lo.max(0.0) } else { lo },
                            hi90: mean + c.q * (std + c.beta),
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

impl PropertyModel for TorchScriptModel {
    fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "torchscript".into())
    }

    fn targets(&self) -> Vec<Target> {
        self.spec.targets.clone()
    }

    fn predict(&self, structures: &[Structure]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        let samples: Vec<Sample> = structures.iter().map(|s| prepare(&self.arch, s)).collect();
        Ok(self.finish(self.raw(&samples)?))
    }

    fn predict_compositions(&self, comps: &[Composition]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        if self.spec.input != "composition" {
            return Err(ModelError::Unsupported(format!("{} needs structures", self.name())));
        }
        let samples: Vec<Sample> = comps
            .iter()
            .map(|c| Sample::Features(composition_features(c).iter().map(|&x| x as f32).collect()))
            .collect();
        Ok(self.finish(self.raw(&samples)?))
    }
}
