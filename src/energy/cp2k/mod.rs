//! CP2K (Quickstep: Gaussian and plane waves) as a calculator: Geode writes the input ([`input`]), runs the
//! `cp2k` binary in a folder of its own, and reads energy, forces, stress and SCF convergence back from
//! its output ([`output`]). An SCF that does not converge, an abort or a missing result is an error,
//! never a number.
//!
//! Defaults (checked for convergence in docs/dft.md): PBE, GTH pseudopotentials with DZVP-MOLOPT basis
//! sets (`cp2k-data`), 1000 Ry density cutoff with a 60 Ry relative cutoff (semicore Mg in MgO needs it: at
//! 600 Ry a polymorph energy difference is 25 meV/atom off), Γ-centred k-points at 5 per Å⁻¹ (ASE's
//! `kptdensity`), Fermi–Dirac smearing at 1000 K (0.086 eV), spin-unpolarised.
//!
//! Relaxation runs CP2K's own BFGS (`CELL_OPT` / `GEO_OPT`) in one process, so the wavefunction carries
//! from step to step ([`Cp2k::relax_natively`]); with `symprec` set Geode's FIRE drives single points.

pub mod basis;
pub mod input;
pub mod output;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nalgebra::Vector3;

use self::basis::BasisTable;
use self::input::{PROJECT, RunType};
use self::output::Cp2kOutput;
use super::calculator::{CalcError, Calculator, Evaluation};
use super::relax::{RelaxOptions, RelaxStep, Relaxation};
use crate::crystal::{Element, Lattice, Structure};

/// Hartree in eV (CODATA 2018, as CP2K 2023).
pub const HARTREE_IN_EV: f64 = 27.211_386_245_988;
/// Bohr radius in Å (CODATA 2018).
pub const BOHR_IN_ANG: f64 = 0.529_177_210_903;

/// The binaries tried, in order, when no `exe` is given and `$GEODE_CP2K` is unset.
pub const BINARIES: [&str; 5] = ["cp2k.psmp", "cp2k.ssmp", "cp2k.popt", "cp2k.sopt", "cp2k"];

/// Settings that decide the numbers (all in the calculator's name, so hulls and caches keep them apart)
/// and settings that only decide how CP2K runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Cp2kSettings {
    /// Plane-wave density cutoff (Ry).
    pub cutoff_ry: f64,
    /// Relative cutoff for mapping Gaussians onto the grids (Ry).
    pub rel_cutoff_ry: f64,
    /// k-points per Å⁻¹ of reciprocal length (ASE's `kptdensity`; [`input::gamma_centred_mesh`]).
    pub kdensity: f64,
    /// Fermi–Dirac electronic temperature (K); 0 turns smearing off (insulators only).
    pub smear_kelvin: f64,
    /// Basis family: `DZVP`, `TZVP` or `TZV2P` (MOLOPT).
    pub basis: String,
    /// SCF convergence on the density (Hartree; CP2K's `EPS_SCF`).
    pub eps_scf: f64,
    /// Integral screening (`EPS_DEFAULT`).
    pub eps_default: f64,
    /// At most this many SCF steps per evaluation.
    pub max_scf: usize,
    /// Broyden mixing fraction.
    pub mixing: f64,
    /// The CP2K binary (found on `PATH` when absent).
    pub exe: Option<PathBuf>,
    /// OpenMP threads of the CP2K process.
    pub threads: usize,
    /// Keep every run's folder under this directory (default: a temporary folder, removed after a success,
    /// kept after a failure).
    pub workdir: Option<PathBuf>,
}

impl Default for Cp2kSettings {
    fn default() -> Self {
        Cp2kSettings {
            cutoff_ry: 1000.0,
            rel_cutoff_ry: 60.0,
            kdensity: 5.0,
            smear_kelvin: 1000.0,
            basis: "DZVP".into(),
            eps_scf: 1e-6,
            eps_default: 1e-10,
            max_scf: 100,
            mixing: 0.3,
            exe: None,
            threads: 1,
            workdir: None,
        }
    }
}

/// CP2K behind the calculator seam.
pub struct Cp2k {
    pub settings: Cp2kSettings,
    exe: PathBuf,
    table: BasisTable,
}

/// What follows a run as it goes: the index of each new force evaluation, the output so far, the run folder.
type OnEvaluation<'a> = dyn FnMut(usize, &Cp2kOutput, &Path) -> ControlFlow<()> + 'a;

/// Runs started by this process (folder names).
static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The CP2K binary: `exe`, else `$GEODE_CP2K`, else the first of [`BINARIES`] on `PATH`.
pub fn find_binary(exe: Option<&Path>) -> Result<PathBuf, CalcError> {
    if let Some(p) = exe.map(Path::to_path_buf).or_else(|| std::env::var_os("GEODE_CP2K").map(PathBuf::from)) {
        if p.is_file() {
            return Ok(p);
        }
        if let Some(found) = on_path(&p.to_string_lossy()) {
            return Ok(found);
        }
        return Err(CalcError::Invalid(format!("CP2K binary {} not found", p.display())));
    }
    BINARIES.iter().find_map(|b| on_path(b)).ok_or_else(|| {
        CalcError::Invalid(
            "CP2K not found on PATH (tried cp2k.psmp, cp2k.ssmp, cp2k.popt, cp2k.sopt, cp2k): install Debian's \
             `cp2k` and `cp2k-data` (sudo apt-get install cp2k cp2k-data) or give cp2k:exe=PATH"
                .into(),
        )
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

impl Cp2k {
    /// Find the binary and read the basis/pseudopotential tables (`$CP2K_DATA_DIR` or `/usr/share/cp2k`).
    pub fn new(settings: Cp2kSettings) -> Result<Cp2k, CalcError> {
        let exe = find_binary(settings.exe.as_deref())?;
        let dir = basis::default_data_dir();
        let table = BasisTable::load(&dir, &settings.basis).map_err(|e| {
            CalcError::Invalid(format!(
                "{e} (install Debian's `cp2k-data`, or set CP2K_DATA_DIR to CP2K's data folder)"
            ))
        })?;
        Ok(Cp2k { settings, exe, table })
    }

    /// The input file this calculator writes for `structure`.
    pub fn input(&self, structure: &Structure, run: &RunType) -> Result<String, CalcError> {
        input::write(structure, &self.settings, &self.table, run)
    }

    fn failed(&self, reason: String) -> CalcError {
        CalcError::Failed { calculator: "cp2k".into(), reason }
    }

    /// A fresh folder for one run.
    fn run_dir(&self, structure: &Structure) -> Result<PathBuf, CalcError> {
        let base = self.settings.workdir.clone().unwrap_or_else(|| std::env::temp_dir().join("geode-cp2k"));
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{}-{}-{n}", structure.reduced_formula(), std::process::id()));
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::create_dir_all(&dir).map_err(|e| self.failed(format!("cannot create {}: {e}", dir.display())))?;
        Ok(dir)
    }

    /// Run CP2K on `structure`. With `on_energy`, the output is followed while CP2K runs (re-read only when it
    /// has grown) and `on_energy(k, output so far)` is called for each new force evaluation, stopping (killing)
    /// CP2K on `Break`; without it, CP2K is simply waited for. Returns the parsed output, the folder and
    /// whether it was stopped.
    fn run(
        &self,
        structure: &Structure,
        run: &RunType,
        mut on_energy: Option<&mut OnEvaluation<'_>>,
    ) -> Result<(Cp2kOutput, PathBuf, bool), CalcError> {
        let text = self.input(structure, run)?;
        let dir = self.run_dir(structure)?;
        let inp = dir.join(format!("{PROJECT}.inp"));
        let out_path = dir.join(format!("{PROJECT}.out"));
        std::fs::write(&inp, text).map_err(|e| self.failed(format!("cannot write {}: {e}", inp.display())))?;
        let log = std::fs::File::create(dir.join("cp2k.stderr"))
            .map_err(|e| self.failed(format!("cannot write in {}: {e}", dir.display())))?;
        let mut child = Command::new(&self.exe)
            .args(["-i", &format!("{PROJECT}.inp"), "-o", &format!("{PROJECT}.out")])
            .current_dir(&dir)
            .env("OMP_NUM_THREADS", self.settings.threads.max(1).to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| self.failed(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| self.failed(format!("cannot start {}: {e}", self.exe.display())))?;
        let mut seen = 0;
        let mut stopped = false;
        let mut read_len = 0;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(self.failed(format!("waiting for CP2K: {e}"))),
            }
            let Some(on_energy) = on_energy.as_mut() else {
                break child.wait().map_err(|e| self.failed(format!("waiting for CP2K: {e}")))?;
            };
            std::thread::sleep(Duration::from_millis(100));
            let len = std::fs::metadata(&out_path).map_or(0, |m| m.len());
            if len == read_len {
                continue;
            }
            read_len = len;
            let so_far = output::parse(&std::fs::read_to_string(&out_path).unwrap_or_default());
            // An evaluation is complete once its forces follow its energy in the output.
            while seen < so_far.energies.len().min(so_far.force_maxima.len()) {
                seen += 1;
                if on_energy(seen - 1, &so_far, &dir).is_break() {
                    stopped = true;
                }
            }
            if stopped {
                let _ = child.kill();
                let _ = child.wait();
                let so_far = output::parse(&std::fs::read_to_string(&out_path).unwrap_or_default());
                return Ok((so_far, dir, true));
            }
        };
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        let out = output::parse(&text);
        if let Some(msg) = &out.abort {
            return Err(self.failed(format!("CP2K stopped: {msg} (input and output kept in {})", dir.display())));
        }
        if !status.success() || !out.ended {
            let tail = std::fs::read_to_string(dir.join("cp2k.stderr")).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(3).collect();
            return Err(self.failed(format!(
                "CP2K exited with {status} before finishing ({}; input and output kept in {})",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
                dir.display()
            )));
        }
        if let Some(on_energy) = on_energy {
            while seen < out.energies.len() {
                seen += 1;
                if on_energy(seen - 1, &out, &dir).is_break() {
                    stopped = true;
                }
            }
        }
        Ok((out, dir, stopped))
    }

    /// The evaluation an output ends with, or why there is none.
    fn evaluation(&self, out: &Cp2kOutput, n: usize, dir: &Path) -> Result<Evaluation, CalcError> {
        if out.last_scf_unconverged {
            return Err(self.failed(format!(
                "the SCF did not converge in {} steps (EPS_SCF {:e}); raise max_scf or lower mixing (output kept in {})",
                self.settings.max_scf,
                self.settings.eps_scf,
                dir.display()
            )));
        }
        let (Some(&energy), Some(forces), Some(stress)) = (out.energies.last(), &out.forces, out.stress) else {
            return Err(self.failed(format!("no energy, forces or stress in the output (kept in {})", dir.display())));
        };
        if forces.len() != n || !energy.is_finite() {
            return Err(self.failed(format!(
                "{} force rows for {n} atoms in the output (kept in {})",
                forces.len(),
                dir.display()
            )));
        }
        Ok(Evaluation { energy, forces: forces.clone(), stress, site_energies: None, magmoms: None })
    }

    fn clean(&self, dir: &Path) {
        if self.settings.workdir.is_none() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// The structure at the optimiser's latest step: the last frame of `geode-pos-1.xyz` in the cell of the
    /// last line of `geode-1.cell` (the starting cell for `GEO_OPT`).
    fn current_structure(dir: &Path, start: &Structure) -> Option<Structure> {
        let xyz = std::fs::read_to_string(dir.join(format!("{PROJECT}-pos-1.xyz"))).ok()?;
        let lines: Vec<&str> = xyz.lines().collect();
        let n = start.n_sites();
        // Frames are `n`, a comment, then n rows; the last complete one.
        let frames = lines.len() / (n + 2);
        if frames == 0 {
            return None;
        }
        let first = (frames - 1) * (n + 2) + 2;
        let mut cart = Vec::with_capacity(n);
        for l in &lines[first..first + n] {
            let v: Vec<f64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            if v.len() != 3 {
                return None;
            }
            cart.push(Vector3::new(v[0], v[1], v[2]));
        }
        let lattice = match std::fs::read_to_string(dir.join(format!("{PROJECT}-1.cell"))) {
            Ok(cell) => {
                let last = cell.lines().rev().find(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())?;
                let v: Vec<f64> = last.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if v.len() < 11 {
                    return None;
                }
                Lattice::from_row_vectors([[v[2], v[3], v[4]], [v[5], v[6], v[7]], [v[8], v[9], v[10]]]).ok()?
            }
            Err(_) => start.lattice.clone(),
        };
        Structure::from_cart(lattice, start.species().to_vec(), &cart).ok().map(|s| s.wrapped())
    }

    /// CP2K's own BFGS relaxation of `start` (cell too when `opts.relax_cell`); `on_step` sees each force
    /// evaluation as it lands and stops the run on `Break`.
    pub fn relax(
        &self,
        start: &Structure,
        opts: &RelaxOptions,
        on_step: &mut dyn FnMut(&RelaxStep, &Structure) -> ControlFlow<()>,
    ) -> Result<Relaxation, CalcError> {
        let run = RunType::Relax { cell: opts.relax_cell, fmax: opts.fmax, max_steps: opts.max_steps };
        let mut trajectory: Vec<RelaxStep> = Vec::new();
        let mut latest = start.clone();
        let (out, dir, stopped) = self.run(
            start,
            &run,
            Some(&mut |k, so_far, dir| {
                if let Some(s) = Cp2k::current_structure(dir, start) {
                    latest = s;
                }
                let step = RelaxStep {
                    step: k,
                    energy: so_far.energies[k],
                    // After `GEOMETRY OPTIMIZATION COMPLETED` CP2K evaluates the final structure once more on grids
                    // rebuilt for the final cell, printing no forces: that step keeps the last forces' maximum.
                    fmax: so_far.force_maxima.get(k).or(so_far.force_maxima.last()).copied().unwrap_or(f64::INFINITY),
                    volume: latest.volume(),
                };
                trajectory.push(step.clone());
                on_step(&step, &latest)
            }),
        )?;
        let structure = Cp2k::current_structure(&dir, start).unwrap_or(latest);
        let evaluation = if stopped {
            match self.evaluation(&out, start.n_sites(), &dir) {
                Ok(ev) => ev,
                Err(_) => {
                    return Err(self.failed(format!("stopped before the first evaluation (kept in {})", dir.display())));
                }
            }
        } else {
            self.evaluation(&out, start.n_sites(), &dir)?
        };
        let converged = out.optimisation_completed;
        self.clean(&dir);
        Ok(Relaxation {
            structure,
            evaluation,
            steps: trajectory.len().saturating_sub(1),
            converged,
            cancelled: stopped,
            trajectory,
        })
    }
}

impl Calculator for Cp2k {
    fn name(&self) -> String {
        let s = &self.settings;
        format!(
            "cp2k(PBE, GTH/{}-MOLOPT, cutoff={} Ry, rel_cutoff={} Ry, kdensity={} /Å, smear={} K)",
            s.basis, s.cutoff_ry, s.rel_cutoff_ry, s.kdensity, s.smear_kelvin
        )
    }

    fn supports(&self, element: Element) -> bool {
        self.table.get(element).is_some()
    }

    fn calculate(&self, structure: &Structure) -> Result<Evaluation, CalcError> {
        let (out, dir, _) = self.run(structure, &RunType::SinglePoint, None)?;
        let ev = self.evaluation(&out, structure.n_sites(), &dir)?;
        self.clean(&dir);
        Ok(ev)
    }

    /// One CP2K process at a time: each already uses `threads` cores, and runs side by side would only
    /// compete for them.
    fn calculate_batch(&self, structures: &[Structure]) -> Vec<Result<Evaluation, CalcError>> {
        structures.iter().map(|s| self.calculate(s)).collect()
    }

    fn relaxes_natively(&self) -> bool {
        true
    }

    fn relax_natively(
        &self,
        start: &Structure,
        opts: &RelaxOptions,
        on_step: &mut dyn FnMut(&RelaxStep, &Structure) -> ControlFlow<()>,
    ) -> Option<Result<Relaxation, CalcError>> {
        // CP2K keeps no space group; with `symprec` Geode's FIRE and FixSymmetry drive single points.
        if opts.symprec.is_some() {
            return None;
        }
        Some(self.relax(start, opts, on_step))
    }
}
