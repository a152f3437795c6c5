//! Potentials by name, as the CLI and run configs give them: `chgnet` (the shipped CHGNet 0.3.0;
//! `chgnet:weights=FILE.safetensors,batch=N` for other weights), `lj:sigma=3.405,epsilon=0.0104[,cutoff=10.2]`
//! (Å, eV, Å; cutoff 3σ by default), `torchscript:path=FILE.pt[,dtype=f64]` (a user's TorchScript
//! potential, see [`super::torchscript`]) or `cp2k[:cutoff=Ry,rel_cutoff=Ry,kdensity=…,smear=K,basis=…]`
//! (DFT with CP2K, see [`super::cp2k`]).
//!
//! [`PotentialSpec::parse`] reads the text and checks its numbers without loading anything, so a run's
//! config is checked at submission in microseconds; [`PotentialSpec::load`] builds the calculator.

use std::fmt;
use std::path::{Path, PathBuf};

use super::calculator::{CalcError, Calculator};
use super::command::{CommandCalculator, CommandSettings, OutputKind};
use super::cp2k::{Cp2k, Cp2kSettings};
use super::lj::LennardJones;

/// A parsed potential spec.
#[derive(Debug, Clone, PartialEq)]
pub enum PotentialSpec {
    /// CP2K DFT (PBE, GTH, MOLOPT) with its numerical settings ([`super::cp2k`]).
    Cp2k(Cp2kSettings),
    /// A user's DFT command (VASP, Quantum ESPRESSO, …) and what to read back ([`super::command`]).
    Command(CommandSettings),
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
        if kind.trim() == "command" {
            return parse_command(args);
        }
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
            "cp2k" => {
                let mut c = Cp2kSettings::default();
                let num = |k: &str, v: &str| -> Result<f64, CalcError> {
                    v.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| bad(format!("cp2k: {k} must be a non-negative number, got {v:?}")))
                };
                for (k, v) in pairs {
                    match k {
                        "cutoff" => c.cutoff_ry = num(k, v)?,
                        "rel_cutoff" => c.rel_cutoff_ry = num(k, v)?,
                        "kdensity" => c.kdensity = num(k, v)?,
                        "smear" => c.smear_kelvin = num(k, v)?,
                        "eps_scf" => c.eps_scf = num(k, v)?,
                        "eps_default" => c.eps_default = num(k, v)?,
                        "mixing" => c.mixing = num(k, v)?,
                        "max_scf" | "threads" => {
                            let n = v
                                .parse::<usize>()
                                .ok()
                                .filter(|&n| n > 0)
                                .ok_or_else(|| bad(format!("cp2k: {k} must be a positive integer, got {v:?}")))?;
                            if k == "max_scf" { c.max_scf = n } else { c.threads = n }
                        }
                        "basis" => {
                            let b = v.to_ascii_uppercase();
                            if !["DZVP", "TZVP", "TZV2P"].contains(&b.as_str()) {
                                return Err(bad(format!("cp2k: basis must be dzvp, tzvp or tzv2p, got {v:?}")));
                            }
                            c.basis = b;
                        }
                        "exe" => c.exe = Some(PathBuf::from(v)),
                        "workdir" => c.workdir = Some(PathBuf::from(v)),
                        other => {
                            let known = [
                                "cutoff",
                                "rel_cutoff",
                                "kdensity",
                                "smear",
                                "basis",
                                "eps_scf",
                                "eps_default",
                                "max_scf",
                                "mixing",
                                "exe",
                                "threads",
                                "workdir",
                            ];
                            let near = known
                                .iter()
                                .min_by_key(|n| strsim::levenshtein(n, other))
                                .map(|n| format!("; did you mean {n}?"))
                                .unwrap_or_default();
                            return Err(bad(format!(
                                "unknown CP2K parameter {other:?}{near} (cutoff=Ry, rel_cutoff=Ry, kdensity=per Å⁻¹, smear=K, basis=dzvp|tzvp|tzv2p, eps_scf, eps_default, max_scf, mixing, exe=PATH, threads=N, workdir=DIR)"
                            )));
                        }
                    }
                }
                if c.cutoff_ry < 50.0 || c.rel_cutoff_ry < 10.0 {
                    return Err(bad(format!(
                        "cp2k: cutoff {} Ry / rel_cutoff {} Ry are too small to mean anything (≥ 50 / ≥ 10)",
                        c.cutoff_ry, c.rel_cutoff_ry
                    )));
                }
                if !(c.mixing > 0.0 && c.mixing <= 1.0) {
                    return Err(bad(format!("cp2k: mixing must be in (0, 1], got {}", c.mixing)));
                }
                Ok(PotentialSpec::Cp2k(c))
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
                "unknown potential {other:?}; available: chgnet[:weights=FILE], lj:sigma=…,epsilon=…[,cutoff=…], torchscript:path=FILE.pt[,dtype=f64], cp2k[:cutoff=…,kdensity=…], command:read=vasprun|qe|extxyz|json[,templates=DIR],run=CMD"
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
            PotentialSpec::LennardJones { .. } | PotentialSpec::Cp2k(_) | PotentialSpec::Command(_) => None,
        }
    }

    /// Check that the file the spec names exists (cheap: no parsing of it).
    pub fn check_file(&self) -> Result<(), CalcError> {
        if let PotentialSpec::Command(CommandSettings { templates: Some(t), .. }) = self
            && !t.is_dir()
        {
            return Err(CalcError::Invalid(format!("command: templates folder {} does not exist", t.display())));
        }
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
            PotentialSpec::Command(CommandSettings { templates: Some(p), .. }) => fix(p),
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
            PotentialSpec::Cp2k(settings) => Ok(Box::new(Cp2k::new(settings.clone())?)),
            PotentialSpec::Command(settings) => {
                self.check_file()?;
                Ok(Box::new(CommandCalculator { settings: settings.clone() }))
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
            PotentialSpec::Cp2k(c) => {
                let d = Cp2kSettings::default();
                let mut args = Vec::new();
                let mut num = |k: &str, v: f64, dv: f64| {
                    if v != dv {
                        args.push(format!("{k}={v}"));
                    }
                };
                num("cutoff", c.cutoff_ry, d.cutoff_ry);
                num("rel_cutoff", c.rel_cutoff_ry, d.rel_cutoff_ry);
                num("kdensity", c.kdensity, d.kdensity);
                num("smear", c.smear_kelvin, d.smear_kelvin);
                num("eps_scf", c.eps_scf, d.eps_scf);
                num("eps_default", c.eps_default, d.eps_default);
                num("mixing", c.mixing, d.mixing);
                if c.max_scf != d.max_scf {
                    args.push(format!("max_scf={}", c.max_scf));
                }
                if c.basis != d.basis {
                    args.push(format!("basis={}", c.basis.to_ascii_lowercase()));
                }
                if c.threads != d.threads {
                    args.push(format!("threads={}", c.threads));
                }
                if let Some(e) = &c.exe {
                    args.push(format!("exe={}", e.display()));
                }
                if let Some(w) = &c.workdir {
                    args.push(format!("workdir={}", w.display()));
                }
                if args.is_empty() { write!(f, "cp2k") } else { write!(f, "cp2k:{}", args.join(",")) }
            }
            PotentialSpec::Command(c) => {
                write!(f, "command:read={}", c.read.name())?;
                if let Some(t) = &c.templates {
                    write!(f, ",templates={}", t.display())?;
                }
                if let Some(o) = &c.output {
                    write!(f, ",output={o}")?;
                }
                if c.kdensity != DEFAULT_COMMAND_KDENSITY {
                    write!(f, ",kdensity={}", c.kdensity)?;
                }
                if let Some(t) = c.timeout_s {
                    write!(f, ",timeout={t}")?;
                }
                if let Some(w) = &c.workdir {
                    write!(f, ",workdir={}", w.display())?;
                }
                write!(f, ",run={}", c.run)
            }
        }
    }
}

/// `{{kmesh}}`'s density when a command spec gives none (k-points per Å⁻¹).
pub const DEFAULT_COMMAND_KDENSITY: f64 = 4.0;

/// `command:[read=…,templates=DIR,output=FILE,kdensity=…,timeout=S,workdir=DIR,]run=CMD`: `run` comes last and
/// takes the rest of the spec, commas included.
fn parse_command(args: &str) -> Result<PotentialSpec, CalcError> {
    let bad = |m: String| CalcError::Invalid(m);
    let (head, run) = match args.find("run=") {
        Some(i) if i == 0 || args[..i].ends_with(',') => (args[..i].trim_end_matches(','), args[i + 4..].trim()),
        _ => {
            return Err(bad(
                "command: give the command last, e.g. command:read=vasprun,templates=vasp/,run=mpirun -np 4 vasp_std"
                    .into(),
            ));
        }
    };
    if run.is_empty() {
        return Err(bad("command: run= is empty".into()));
    }
    let mut c = CommandSettings {
        run: run.to_string(),
        read: OutputKind::Vasprun,
        templates: None,
        output: None,
        kdensity: DEFAULT_COMMAND_KDENSITY,
        timeout_s: None,
        workdir: None,
    };
    let mut read = None;
    for kv in head.split(',').filter(|s| !s.trim().is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| bad(format!("expected key=value, got {kv:?}")))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| bad(format!("command: {k} must be a positive number, got {v:?}")))
        };
        match k {
            "read" => {
                read = Some(
                    OutputKind::parse(v)
                        .ok_or_else(|| bad(format!("command: read must be vasprun, qe, extxyz or json, got {v:?}")))?,
                )
            }
            "templates" => c.templates = Some(PathBuf::from(v)),
            "output" => c.output = Some(v.to_string()),
            "kdensity" => c.kdensity = num(v)?,
            "timeout" => c.timeout_s = Some(num(v)?),
            "workdir" => c.workdir = Some(PathBuf::from(v)),
            other => {
                return Err(bad(format!(
                    "unknown command parameter {other:?} (read=vasprun|qe|extxyz|json, templates=DIR, output=FILE, kdensity=…, timeout=S, workdir=DIR, run=CMD last)"
                )));
            }
        }
    }
    c.read = read.ok_or_else(|| bad("command: say what to read back: read=vasprun|qe|extxyz|json".into()))?;
    Ok(PotentialSpec::Command(c))
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
        for text in [
            "chgnet",
            "chgnet:batch=4",
            "lj:sigma=3.405,epsilon=0.0104",
            "lj:sigma=1,epsilon=2,cutoff=5.5",
            "cp2k",
            "cp2k:cutoff=400,kdensity=2.5,smear=0,max_scf=20,basis=tzvp",
        ] {
            assert_eq!(PotentialSpec::parse(text).unwrap().to_string(), text);
        }
        let ts = PotentialSpec::parse("torchscript:path=m.pt,dtype=f64").unwrap();
        assert_eq!(PotentialSpec::parse(&ts.to_string()).unwrap(), ts);
        assert!(check_spec("torchscript:path=/nonexistent/m.pt").unwrap_err().to_string().contains("no such file"));
        assert!(check_spec("lj:sigma=-1,epsilon=1").is_err());
        assert!(check_spec("chgnt").unwrap_err().to_string().contains("unknown potential"));
        let e = check_spec("cp2k:cutof=400").unwrap_err().to_string();
        assert!(e.contains("did you mean cutoff"), "{e}");
        assert!(check_spec("cp2k:cutoff=-5").is_err());
        assert!(check_spec("cp2k:basis=szv").unwrap_err().to_string().contains("dzvp"));
        let c = PotentialSpec::parse("command:read=qe,kdensity=3,run=mpirun -np 2 pw.x -in pw.in > out, 2>&1").unwrap();
        match &c {
            PotentialSpec::Command(s) => assert_eq!(s.run, "mpirun -np 2 pw.x -in pw.in > out, 2>&1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(PotentialSpec::parse(&c.to_string()).unwrap(), c);
        assert!(check_spec("command:read=vasprun").unwrap_err().to_string().contains("last"));
        assert!(check_spec("command:run=vasp").unwrap_err().to_string().contains("read="));
        assert!(check_spec("command:read=outcar,run=vasp").unwrap_err().to_string().contains("vasprun, qe"));
        assert!(
            check_spec("command:read=json,templates=/nonexistent,run=x").unwrap_err().to_string().contains("templates")
        );
        assert_eq!(resolve_spec("torchscript:path=m.pt", Path::new("/cfg")), "torchscript:path=/cfg/m.pt");
        assert_eq!(resolve_spec("chgnet", Path::new("/cfg")), "chgnet");
    }
}
