//! A user's own DFT code (VASP, Quantum ESPRESSO, anything licensed on their machine) as a calculator:
//! for each structure Geode makes a task folder, writes the structure there, copies the user's template
//! files into it with placeholders filled in, runs the user's command in it, and reads back `vasprun.xml`,
//! Quantum ESPRESSO's XML output, or an extxyz / JSON file the user's script writes.
//!
//! Placeholders in templates (text files; `{{name}}`): `nat`, `ntyp`, `formula`, `species` (the distinct
//! element symbols, space-separated), `cell_angstrom` (three rows, Å), `positions_angstrom` (`El x y z`
//! rows, Cartesian Å), `positions_crystal` (`El a b c`, fractional), `kmesh` (`n1 n2 n3` for the spec's
//! `kdensity`, ASE's convention). An unknown placeholder is an error naming the template.
//!
//! Results: VASP's `e_0_energy` (ASE's energy), QE's `etot`; forces eV/Å, stress eV/Å³ with ASE's sign.
//! A non-zero exit, a missing or truncated output, or an unconverged electronic minimisation is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nalgebra::{Matrix3, Vector3};

use super::calculator::{CalcError, Calculator, Evaluation};
use crate::crystal::Structure;
use crate::io::dft::{DftResult, qe_xml, vasprun};

/// What the command leaves behind for Geode to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// VASP's `vasprun.xml`.
    Vasprun,
    /// Quantum ESPRESSO's XML (`<prefix>.xml`).
    QeXml,
    /// Extended XYZ with `energy` (eV), `forces` (eV/Å) and optionally `stress` (eV/Å³, ASE's sign).
    Extxyz,
    /// JSON `{"energy": eV, "forces": [[…]] eV/Å, "stress": [[…]] eV/Å³ (ASE's sign), "converged": bool}`.
    Json,
}

impl OutputKind {
    pub fn parse(s: &str) -> Option<OutputKind> {
        Some(match s {
            "vasprun" | "vasp" => OutputKind::Vasprun,
            "qe" | "espresso" | "qe-xml" => OutputKind::QeXml,
            "extxyz" => OutputKind::Extxyz,
            "json" => OutputKind::Json,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Vasprun => "vasprun",
            OutputKind::QeXml => "qe",
            OutputKind::Extxyz => "extxyz",
            OutputKind::Json => "json",
        }
    }

    /// The file read when the spec names none.
    pub fn default_file(self) -> &'static str {
        match self {
            OutputKind::Vasprun => "vasprun.xml",
            OutputKind::QeXml => "pwscf.xml",
            OutputKind::Extxyz => "result.extxyz",
            OutputKind::Json => "result.json",
        }
    }
}

/// A command evaluator's settings (the spec `command:run=…,read=…[,templates=DIR,output=FILE,…]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSettings {
    /// Run by `sh -c` in the task folder.
    pub run: String,
    pub read: OutputKind,
    /// Files copied into every task folder, placeholders filled in.
    pub templates: Option<PathBuf>,
    /// The file read back (default [`OutputKind::default_file`]).
    pub output: Option<String>,
    /// k-points per Å⁻¹ for `{{kmesh}}`.
    pub kdensity: f64,
    /// Give up after this many seconds (the process group is killed).
    pub timeout_s: Option<f64>,
    /// Keep every task folder under this directory (default: a temporary folder, removed after a success).
    pub workdir: Option<PathBuf>,
}

/// The user's DFT command behind the calculator seam.
pub struct CommandCalculator {
    pub settings: CommandSettings,
}

static TASKS: AtomicUsize = AtomicUsize::new(0);

/// The text of a template with its placeholders filled in; `name` names it in errors.
pub fn fill(template: &str, s: &Structure, kdensity: f64, name: &str) -> Result<String, CalcError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after
            .find("}}")
            .ok_or_else(|| CalcError::Invalid(format!("template {name}: `{{{{` without a closing `}}}}`")))?;
        let key = after[..j].trim();
        out.push_str(&placeholder(key, s, kdensity).ok_or_else(|| {
            CalcError::Invalid(format!(
                "template {name}: unknown placeholder {{{{{key}}}}} (nat, ntyp, formula, species, cell_angstrom, positions_angstrom, positions_crystal, kmesh)"
            ))
        })?);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn placeholder(key: &str, s: &Structure, kdensity: f64) -> Option<String> {
    let mut distinct: Vec<&str> = Vec::new();
    for e in s.species() {
        if !distinct.contains(&e.symbol()) {
            distinct.push(e.symbol());
        }
    }
    Some(match key {
        "nat" => s.n_sites().to_string(),
        "ntyp" => distinct.len().to_string(),
        "formula" => s.reduced_formula(),
        "species" => distinct.join(" "),
        "cell_angstrom" => s
            .lattice
            .row_vectors()
            .iter()
            .map(|r| format!("{:.10} {:.10} {:.10}", r[0], r[1], r[2]))
            .collect::<Vec<_>>()
            .join("\n"),
        "positions_angstrom" => s
            .species()
            .iter()
            .zip(s.cart_coords())
            .map(|(e, r)| format!("{} {:.10} {:.10} {:.10}", e.symbol(), r.x, r.y, r.z))
            .collect::<Vec<_>>()
            .join("\n"),
        "positions_crystal" => s
            .species()
            .iter()
            .zip(s.frac_coords())
            .map(|(e, r)| format!("{} {:.10} {:.10} {:.10}", e.symbol(), r.x, r.y, r.z))
            .collect::<Vec<_>>()
            .join("\n"),
        "kmesh" => {
            let m = super::cp2k::input::kpoint_mesh(s, kdensity);
            format!("{} {} {}", m[0], m[1], m[2])
        }
        _ => return None,
    })
}

/// Forces, stress and energy from an extxyz or JSON result; `path` names the file.
fn read_plain(path: &Path, kind: OutputKind, n: usize) -> Result<Evaluation, String> {
    let matrix = |v: &serde_json::Value| -> Option<Matrix3<f64>> {
        let rows = v.as_array()?;
        let flat: Vec<f64> = if rows.len() == 6 {
            rows.iter().filter_map(|x| x.as_f64()).collect()
        } else {
            rows.iter().flat_map(|r| r.as_array().cloned().unwrap_or_default()).filter_map(|x| x.as_f64()).collect()
        };
        match flat.len() {
            9 => Some(Matrix3::from_row_slice(&flat)),
            // Voigt order xx yy zz yz xz xy, as ASE.
            6 => Some(Matrix3::new(flat[0], flat[5], flat[4], flat[5], flat[1], flat[3], flat[4], flat[3], flat[2])),
            _ => None,
        }
    };
    let vectors = |v: &serde_json::Value| -> Option<Vec<Vector3<f64>>> {
        v.as_array()?
            .iter()
            .map(|r| {
                let r: Vec<f64> = r.as_array()?.iter().filter_map(|x| x.as_f64()).collect();
                (r.len() == 3).then(|| Vector3::new(r[0], r[1], r[2]))
            })
            .collect()
    };
    let (energy, forces, stress, converged) = match kind {
        OutputKind::Extxyz => {
            let mut all = crate::io::extxyz::parse(
                &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
                &path.display().to_string(),
            )
            .map_err(|e| e.to_string())?;
            let s = all.pop().ok_or_else(|| format!("{}: no frame", path.display()))?;
            let forces = match s.site_properties.get("forces") {
                Some(rows) => Some(
                    vectors(&serde_json::Value::Array(rows.clone()))
                        .ok_or_else(|| format!("{}: `forces` is not three numbers per atom", path.display()))?,
                ),
                None => None,
            };
            (
                s.properties.get("energy").and_then(|v| v.as_f64()),
                forces,
                s.properties.get("stress").and_then(matrix),
                true,
            )
        }
        _ => {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            for key in v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                if !["energy", "forces", "stress", "converged"].contains(&key.as_str()) {
                    return Err(format!("{}: unknown key {key:?} (energy, forces, stress, converged)", path.display()));
                }
            }
            let forces = match v.get("forces") {
                Some(f) => {
                    Some(vectors(f).ok_or_else(|| format!("{}: `forces` is not [[x, y, z], …]", path.display()))?)
                }
                None => None,
            };
            let stress = match v.get("stress") {
                Some(s) => {
                    Some(matrix(s).ok_or_else(|| format!("{}: `stress` is neither 3×3 nor Voigt 6", path.display()))?)
                }
                None => None,
            };
            (
                v.get("energy").and_then(|x| x.as_f64()),
                forces,
                stress,
                v.get("converged").and_then(|c| c.as_bool()).unwrap_or(true),
            )
        }
    };
    if !converged {
        return Err(format!("{}: the run says it did not converge", path.display()));
    }
    let energy =
        energy.filter(|e| e.is_finite()).ok_or_else(|| format!("{}: no finite `energy` (eV)", path.display()))?;
    let forces = forces.ok_or_else(|| format!("{}: no `forces` (eV/Å)", path.display()))?;
    if forces.len() != n {
        return Err(format!("{}: {} force rows for {n} atoms", path.display(), forces.len()));
    }
    Ok(Evaluation { energy, forces, stress: stress.unwrap_or_else(Matrix3::zeros), site_energies: None, magmoms: None })
}

impl CommandCalculator {
    fn failed(&self, reason: String) -> CalcError {
        CalcError::Failed { calculator: format!("command `{}`", self.settings.run), reason }
    }

    /// Make the task folder for `s`: the structure (`POSCAR` for VASP, `structure.extxyz` otherwise, and
    /// `structure.cif` always) and the filled templates.
    pub fn prepare(&self, s: &Structure, dir: &Path) -> Result<(), CalcError> {
        let io = |e: std::io::Error, p: &Path| self.failed(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
        let one = std::slice::from_ref(s);
        let files = [
            ("POSCAR", crate::io::poscar::write(s)),
            ("structure.extxyz", crate::io::extxyz::write(one)),
            ("structure.cif", crate::io::cif::write(s, &s.reduced_formula())),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).map_err(|e| io(e, &dir.join(name)))?;
        }
        if let Some(t) = &self.settings.templates {
            let entries = std::fs::read_dir(t).map_err(|e| io(e, t))?;
            for entry in entries {
                let entry = entry.map_err(|e| io(e, t))?;
                let p = entry.path();
                if !p.is_file() {
                    continue;
                }
                let bytes = std::fs::read(&p).map_err(|e| io(e, &p))?;
                let target = dir.join(entry.file_name());
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        let filled = fill(&text, s, self.settings.kdensity, &p.display().to_string())?;
                        std::fs::write(&target, filled).map_err(|e| io(e, &target))?;
                    }
                    // Binary files (a POTCAR is text, but pseudopotential archives may not be) are copied as they are.
                    Err(e) => std::fs::write(&target, e.into_bytes()).map_err(|e| io(e, &target))?,
                }
            }
        }
        Ok(())
    }

    /// Run the command in `dir` and read its result for `s` (rows in `s`'s site order: VASP's follow the
    /// POSCAR, which groups sites by species, and are put back).
    pub fn run_in(&self, dir: &Path, s: &Structure) -> Result<Evaluation, CalcError> {
        let n = s.n_sites();
        let log = |name: &str| std::fs::File::create(dir.join(name)).map_err(|e| self.failed(e.to_string()));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&self.settings.run)
            .current_dir(dir)
            .env("GEODE_TASK_DIR", dir)
            .env("GEODE_NATOMS", n.to_string())
            .stdin(Stdio::null())
            .stdout(log("command.stdout")?)
            .stderr(log("command.stderr")?);
        // Its own process group, so a timeout kills everything the script started (mpirun and its ranks).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| self.failed(format!("cannot start sh: {e}")))?;
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().map_err(|e| self.failed(e.to_string()))? {
                break st;
            }
            if self.settings.timeout_s.is_some_and(|t| start.elapsed().as_secs_f64() > t) {
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.wait();
                return Err(self.failed(format!(
                    "timed out after {} s (folder kept: {})",
                    self.settings.timeout_s.unwrap_or_default(),
                    dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            let err = std::fs::read_to_string(dir.join("command.stderr")).unwrap_or_default();
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            return Err(self.failed(format!(
                "exited with {status}: {} (folder kept: {})",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
                dir.display()
            )));
        }
        let file = dir.join(self.settings.output.as_deref().unwrap_or(self.settings.read.default_file()));
        if !file.is_file() {
            return Err(self.failed(format!(
                "no {} after the command (folder kept: {})",
                file.display(),
                dir.display()
            )));
        }
        let dft = |r: Result<DftResult, crate::io::IoError>| -> Result<Evaluation, CalcError> {
            let r = r.map_err(|e| self.failed(e.to_string()))?;
            if !r.electronic_converged {
                return Err(self.failed(format!(
                    "{}: the electronic minimisation of the last step did not converge",
                    file.display()
                )));
            }
            let mut forces = r.forces.ok_or_else(|| self.failed(format!("{}: no forces", file.display())))?;
            if forces.len() != n {
                return Err(self.failed(format!("{}: {} atoms, the task had {n}", file.display(), forces.len())));
            }
            if self.settings.read == OutputKind::Vasprun {
                let mut back = vec![Vector3::zeros(); n];
                for (k, &i) in crate::io::poscar::write_order(s).iter().enumerate() {
                    back[i] = forces[k];
                }
                forces = back;
            }
            Ok(Evaluation {
                energy: r.energy,
                forces,
                stress: r.stress.unwrap_or_else(Matrix3::zeros),
                site_energies: None,
                magmoms: None,
            })
        };
        match self.settings.read {
            OutputKind::Vasprun => dft(vasprun::read(&file)),
            OutputKind::QeXml => dft(qe_xml::read(&file)),
            kind => read_plain(&file, kind, n).map_err(|e| self.failed(e)),
        }
    }
}

impl Calculator for CommandCalculator {
    fn name(&self) -> String {
        let s = &self.settings;
        let mut n = format!("command({}, read={}", s.run, s.read.name());
        if let Some(t) = &s.templates {
            n.push_str(&format!(", templates={}", t.display()));
        }
        n.push(')');
        n
    }

    fn calculate(&self, structure: &Structure) -> Result<Evaluation, CalcError> {
        let base = self.settings.workdir.clone().unwrap_or_else(|| std::env::temp_dir().join("geode-command"));
        let k = TASKS.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{}-{}-{k}", structure.reduced_formula(), std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        self.prepare(structure, &dir)?;
        let ev = self.run_in(&dir, structure)?;
        if self.settings.workdir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(ev)
    }

    /// One task at a time: a DFT code uses the machine's cores itself.
    fn calculate_batch(&self, structures: &[Structure]) -> Vec<Result<Evaluation, CalcError>> {
        structures.iter().map(|s| self.calculate(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::{Element, Lattice};

    #[test]
    fn placeholders_fill_and_unknown_ones_are_named() {
        let si = Element::from_symbol("Si").unwrap();
        let o = Element::from_symbol("O").unwrap();
        let s = Structure::from_frac(
            Lattice::cubic(4.0).unwrap(),
            vec![si, o, o],
            vec![Vector3::zeros(), Vector3::new(0.5, 0.0, 0.0), Vector3::new(0.0, 0.5, 0.0)],
        )
        .unwrap();
        let t = "nat={{nat}}, ntyp={{ ntyp }}\n{{species}}\nK_POINTS automatic\n{{kmesh}} 0 0 0\n{{positions_crystal}}";
        let filled = fill(t, &s, 2.0, "pw.in").unwrap();
        assert!(filled.starts_with("nat=3, ntyp=2\nSi O\nK_POINTS automatic\n4 4 4 0 0 0\nSi 0.0"), "{filled}");
        assert!(filled.ends_with("O 0.0000000000 0.5000000000 0.0000000000"), "{filled}");
        let e = fill("{{natoms}}", &s, 2.0, "INCAR").unwrap_err().to_string();
        assert!(e.contains("template INCAR") && e.contains("{{natoms}}"), "{e}");
        assert!(fill("{{nat", &s, 2.0, "x").is_err());
    }
}
