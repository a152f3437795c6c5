//! Potentials by name, as the CLI and run configs give them: `chgnet` (the shipped CHGNet 0.3.0;
//! `chgnet:weights=FILE.safetensors,batch=N` for other weights), `lj:sigma=3.405,epsilon=0.0104[,cutoff=10.2]`
//! (Å, eV, Å; cutoff 3σ by default) or `torchscript:path=FILE.pt[,dtype=f64]` (a user's TorchScript
//! potential, see [`super::torchscript`]).
//!
//! [`PotentialSpec::parse`] reads the text and checks its numbers without loading anything, so a run's
//! config is checked at submission in microseconds; [`PotentialSpec::load`] builds the calculator.

use std::fmt;
use std::path::{Path, PathBuf};

use super::calculator::{CalcError, Calculator};
use super::lj::LennardJones;

/// A parsed potential spec.
#[derive(Debug, Clone, PartialEq)]
pub enum PotentialSpec {
    /// CHGNet: the shipped 0.3.0 weights, or a `.safetensors` file of the same layout; crystals per batch.
    Chgnet { weights: Option<PathBuf>, batch: usize },
    /// Lennard-Jones: σ (Å), ε (eV), cutoff (Å; 3σ when absent).
    LennardJones { sigma: f64, epsilon: f64, cutoff: Option<f64> },
    /// A TorchScript module `forward(positions, cell, numbers) → energy`, in float64 when `double`.
    TorchScript { path: PathBuf, double: bool },
}

impl PotentialSpec {
    /// Read a spec; errors name the parameter and the expected form. Loads nothing and reads no file.
    pub fn parse(spec: &str) -> Result<PotentialSpec, CalcError> {
        let bad = |m: String| CalcError::Invalid(m);
        let (kind, args) = spec.split_once(':').unwrap_or((spec, ""));
        let pairs = args
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .ok_or_else(|| bad(format!("expected key=value, got {kv:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match kind.trim() {
            "lj" | "lennard-jones" => {
                let (mut sigma, mut epsilon, mut cutoff) = (None, None, None);
                for (k, v) in pairs {
                    let v: f64 = v.parse().map_err(|_| bad(format!("{k} is not a number: {v:?}")))?;
                    match k {
                        "sigma" => sigma = Some(v),
                        "epsilon" => epsilon = Some(v),
                        "cutoff" | "rc" => cutoff = Some(v),
                        other => {
                            return Err(bad(format!(
                                "unknown Lennard-Jones parameter {other:?} (sigma, epsilon, cutoff)"
                            )));
                        }
                    }
                }
                let (Some(sigma), Some(epsilon)) = (sigma, epsilon) else {
                    return Err(bad("give sigma (Å) and epsilon (eV), e.g. lj:sigma=3.405,epsilon=0.0104".into()));
                };
                let spec = PotentialSpec::LennardJones { sigma, epsilon, cutoff };
                spec.lennard_jones().expect("a Lennard-Jones spec").validate()?;
                Ok(spec)
            }
            "chgnet" => {
                let (mut weights, mut batch) = (None, super::chgnet::DEFAULT_BATCH);
                for (k, v) in pairs {
                    match k {
                        "weights" | "path" => weights = Some(PathBuf::from(v)),
                        "batch" => {
                            batch = v
                                .parse()
                                .ok()
                                .filter(|&b: &usize| b > 0)
                                .ok_or_else(|| bad(format!("batch must be a positive integer, got {v:?}")))?
                        }
                        other => {
                            return Err(bad(format!(
                                "unknown CHGNet parameter {other:?} (weights=FILE.safetensors, batch=N)"
                            )));
                        }
                    }
                }
                Ok(PotentialSpec::Chgnet { weights, batch })
            }
            "torchscript" | "ts" => {
                let (mut path, mut double) = (None, false);
                for (k, v) in pairs {
                    match (k, v) {
                        ("path" | "file", v) => path = Some(PathBuf::from(v)),
                        ("dtype", "f64" | "float64" | "double") => double = true,
                        ("dtype", "f32" | "float32" | "float") => double = false,
                        ("dtype", other) => return Err(bad(format!("dtype must be f32 or f64, got {other:?}"))),
                        (other, _) => {
                            return Err(bad(format!(
                                "unknown TorchScript parameter {other:?} (path=FILE.pt, dtype=f32|f64)"
                            )));
                        }
                    }
                }
                let path = path.ok_or_else(|| bad("give the module: torchscript:path=FILE.pt[,dtype=f64]".into()))?;
                Ok(PotentialSpec::TorchScript { path, double })
            }
            other => Err(bad(format!(
                "unknown potential {other:?}; available: chgnet[:weights=FILE], lj:sigma=…,epsilon=…[,cutoff=…], torchscript:path=FILE.pt[,dtype=f64]"
            ))),
        }
    }

    fn lennard_jones(&self) -> Option<LennardJones> {
        match self {
            PotentialSpec::LennardJones { sigma, epsilon, cutoff } => {
                let lj = LennardJones::new(*sigma, *epsilon);
                Some(match cutoff {
                    Some(c) => lj.with_cutoff(*c),
                    None => lj,
                })
            }
            _ => None,
        }
    }

    /// The file the spec reads, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            PotentialSpec::Chgnet { weights, .. } => weights.as_deref(),
            PotentialSpec::TorchScript { path, .. } => Some(path),
            PotentialSpec::LennardJones { .. } => None,
        }
    }

    /// Check that the file the spec names exists (cheap: no parsing of it).
    pub fn check_file(&self) -> Result<(), CalcError> {
        match self.file() {
            Some(p) if !p.is_file() => Err(CalcError::Invalid(format!("no such file {}", p.display()))),
            _ => Ok(()),
        }
    }

    /// Make a relative file path relative to `base` (a config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self {
            PotentialSpec::Chgnet { weights: Some(p), .. } | PotentialSpec::TorchScript { path: p, .. } => fix(p),
            _ => {}
        }
    }

    /// Build the calculator (CHGNet's weights are parsed once per process).
    pub fn load(&self) -> Result<Box<dyn Calculator>, CalcError> {
        match self {
            PotentialSpec::LennardJones { .. } => Ok(Box::new(self.lennard_jones().expect("a Lennard-Jones spec"))),
            PotentialSpec::Chgnet { weights, batch } => {
                let c = match weights {
                    Some(p) => super::chgnet::Chgnet::from_file(p)?,
                    None => super::chgnet::Chgnet::pretrained(),
                };
                Ok(Box::new(c.with_batch_size(*batch)))
            }
            PotentialSpec::TorchScript { path, double } => {
                Ok(Box::new(super::torchscript::TorchScriptPotential::load(path, *double)?))
            }
        }
    }
}

/// The spec text [`PotentialSpec::parse`] reads back to the same spec.
impl fmt::Display for PotentialSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PotentialSpec::Chgnet { weights: None, batch } if *batch == super::chgnet::DEFAULT_BATCH => {
                write!(f, "chgnet")
            }
            PotentialSpec::Chgnet { weights, batch } => {
                write!(f, "chgnet:")?;
                if let Some(w) = weights {
                    write!(f, "weights={},", w.display())?;
                }
                write!(f, "batch={batch}")
            }
            PotentialSpec::LennardJones { sigma, epsilon, cutoff } => {
                write!(f, "lj:sigma={sigma},epsilon={epsilon}")?;
                match cutoff {
                    Some(c) => write!(f, ",cutoff={c}"),
                    None => Ok(()),
                }
            }
            PotentialSpec::TorchScript { path, double } => {
                write!(f, "torchscript:path={}", path.display())?;
                if *double { write!(f, ",dtype=f64") } else { Ok(()) }
            }
        }
    }
}

/// A calculator from a spec text: [`PotentialSpec::parse`] then [`PotentialSpec::load`].
pub fn from_spec(spec: &str) -> Result<Box<dyn Calculator>, CalcError> {
    PotentialSpec::parse(spec)?.load()
}

/// Check a spec text at submission: its syntax, numbers and that its file exists; loads nothing.
pub fn check_spec(spec: &str) -> Result<(), CalcError> {
    PotentialSpec::parse(spec)?.check_file()
}

/// A spec text with its relative file made relative to `base`; texts that do not parse are returned
/// unchanged (validation reports them).
pub fn resolve_spec(spec: &str, base: &Path) -> String {
    match PotentialSpec::parse(spec) {
        Ok(mut p) if p.file().is_some_and(Path::is_relative) => {
            p.resolve_paths(base);
            p.to_string()
        }
        _ => spec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_through_text_and_check_cheaply() {
        for text in ["chgnet", "chgnet:batch=4", "lj:sigma=3.405,epsilon=0.0104", "lj:sigma=1,epsilon=2,cutoff=5.5"] {
            assert_eq!(PotentialSpec::parse(text).unwrap().to_string(), text);
        }
        let ts = PotentialSpec::parse("torchscript:path=m.pt,dtype=f64").unwrap();
        assert_eq!(PotentialSpec::parse(&ts.to_string()).unwrap(), ts);
        assert!(check_spec("torchscript:path=/nonexistent/m.pt").unwrap_err().to_string().contains("no such file"));
        assert!(check_spec("lj:sigma=-1,epsilon=1").is_err());
        assert!(check_spec("chgnt").unwrap_err().to_string().contains("unknown potential"));
        assert_eq!(resolve_spec("torchscript:path=m.pt", Path::new("/cfg")), "torchscript:path=/cfg/m.pt");
        assert_eq!(resolve_spec("chgnet", Path::new("/cfg")), "chgnet");
    }
}
