//! CP2K's main output file read back: the energy of every force evaluation, the last atomic forces and
//! analytical stress, SCF convergence, the end of the program, and the message of an abort.
//!
//! Units converted here: energies Hartree → eV, forces Hartree/bohr → eV/Å, stress GPa → eV/Å³ with
//! the sign flipped to ASE's convention (CP2K prints the pressure-like stress, positive under compression).

use nalgebra::{Matrix3, Vector3};

use super::{BOHR_IN_ANG, HARTREE_IN_EV};
use crate::energy::calculator::EV_PER_ANG3_IN_GPA;

/// What one output file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cp2kOutput {
    /// `ENERGY| Total FORCE_EVAL ( QS ) energy` of every force evaluation, in order (eV).
    pub energies: Vec<f64>,
    /// The last `ATOMIC FORCES` block (eV/Å), one row per atom in input order.
    pub forces: Option<Vec<Vector3<f64>>>,
    /// The largest atomic force of every `ATOMIC FORCES` block, in order (eV/Å).
    pub force_maxima: Vec<f64>,
    /// The last analytical stress tensor (eV/Å³, ASE's sign).
    pub stress: Option<Matrix3<f64>>,
    /// SCF steps of each converged SCF (`*** SCF run converged in N steps ***`).
    pub scf_steps: Vec<usize>,
    /// How many SCF runs ended unconverged, and whether the last one did.
    pub scf_unconverged: usize,
    pub last_scf_unconverged: bool,
    /// `PROGRAM ENDED` was printed.
    pub ended: bool,
    /// A geometry or cell optimisation said `GEOMETRY OPTIMIZATION COMPLETED`.
    pub optimisation_completed: bool,
    /// It stopped at its step limit (`MAXIMUM NUMBER OF OPTIMIZATION STEPS REACHED`).
    pub optimisation_step_limit: bool,
    /// The text of an `[ABORT]` box, joined into one line.
    pub abort: Option<String>,
}

fn numbers(line: &str) -> Vec<f64> {
    line.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

/// Read a CP2K output file's text.
pub fn parse(text: &str) -> Cp2kOutput {
    let mut out = Cp2kOutput::default();
    let lines: Vec<&str> = text.lines().collect();
    let force_unit = HARTREE_IN_EV / BOHR_IN_ANG;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if t.starts_with("ENERGY| Total FORCE_EVAL") {
            if let Some(e) = t.rsplit(':').next().and_then(|v| v.trim().parse::<f64>().ok()) {
                out.energies.push(e * HARTREE_IN_EV);
            }
        } else if t.starts_with("*** SCF run converged in") {
            if let Some(n) = numbers(t).first() {
                out.scf_steps.push(*n as usize);
            }
            out.last_scf_unconverged = false;
        } else if t.contains("SCF run NOT converged") {
            out.scf_unconverged += 1;
            out.last_scf_unconverged = true;
        } else if t.starts_with("ATOMIC FORCES in [a.u.]") {
            // Header, blank line, "# Atom Kind Element X Y Z", rows until "SUM OF ATOMIC FORCES".
            let mut rows = Vec::new();
            let mut j = i + 1;
            while j < lines.len() && !lines[j].trim().starts_with("SUM OF ATOMIC FORCES") {
                let w: Vec<&str> = lines[j].split_whitespace().collect();
                if w.len() >= 6 && w[0].parse::<usize>().is_ok() {
                    let v: Vec<f64> = w[3..6].iter().filter_map(|x| x.parse().ok()).collect();
                    if v.len() == 3 {
                        rows.push(Vector3::new(v[0], v[1], v[2]) * force_unit);
                    }
                }
                j += 1;
            }
            out.force_maxima.push(rows.iter().map(|f| f.norm()).fold(0.0, f64::max));
            out.forces = Some(rows);
            i = j;
        } else if t.starts_with("STRESS| Analytical stress tensor [GPa]") {
            let mut m = Matrix3::zeros();
            let mut ok = 0;
            for (r, l) in lines.iter().skip(i + 2).take(3).enumerate() {
                let v = numbers(l.trim_start_matches(" STRESS|").trim_start_matches("STRESS|"));
                if v.len() == 3 {
                    for c in 0..3 {
                        m[(r, c)] = -v[c] / EV_PER_ANG3_IN_GPA;
                    }
                    ok += 1;
                }
            }
            if ok == 3 {
                out.stress = Some(m);
            }
            i += 4;
            continue;
        } else if t.contains("PROGRAM ENDED AT") {
            out.ended = true;
        } else if t.contains("GEOMETRY OPTIMIZATION COMPLETED") {
            out.optimisation_completed = true;
        } else if t.contains("MAXIMUM NUMBER OF OPTIMIZATION STEPS REACHED") {
            out.optimisation_step_limit = true;
        } else if t.contains("[ABORT]") {
            // The box's text: the lines after the marker up to its closing row of asterisks.
            let mut words = Vec::new();
            let mut j = i;
            while j < lines.len() && !lines[j].trim_start().starts_with("****") {
                let body = lines[j].trim().trim_matches('*');
                let body = body.replace("[ABORT]", "").replace("\\___/", "").replace("O/|", "").replace("/| |", "");
                let body = body.trim_start_matches(['/', '\\', '|', '_', ' ']).trim();
                if !body.is_empty() && body != "/ \\" && body != "|" {
                    words.push(body.to_string());
                }
                j += 1;
            }
            out.abort = Some(words.join(" ").split_whitespace().collect::<Vec<_>>().join(" "));
            i = j;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP: &str = "
  *** SCF run converged in     8 steps ***
 ENERGY| Total FORCE_EVAL ( QS ) energy [a.u.]:               -7.849674957853288

 ATOMIC FORCES in [a.u.]

 # Atom   Kind   Element          X              Y              Z
      1      1      Si          0.01244956    -0.00000000    -0.00000000
      2      1      Si         -0.01245043     0.00000000     0.00000000
 SUM OF ATOMIC FORCES          -0.00000087     0.00000000     0.00000000     0.00000087

 STRESS| Analytical stress tensor [GPa]
 STRESS|                        x                   y                   z
 STRESS|      x        3.63004740980E+00   6.60320144379E-07   6.60319413987E-07
 STRESS|      y        6.60320144379E-07   3.75049929676E+00  -1.65352037777E+00
 STRESS|      z        6.60319413987E-07  -1.65352037777E+00   3.75049903052E+00
 STRESS| 1/3 Trace                                             3.71034857903E+00
  **** **** ******  **  PROGRAM ENDED AT                 2026-12-08 00:06:29.943
";

    #[test]
    fn reads_energy_forces_and_stress_in_ase_units() {
        let o = parse(SP);
        assert!(o.ended && !o.last_scf_unconverged && o.abort.is_none());
        assert_eq!(o.scf_steps, vec![8]);
        assert!((o.energies[0] - -7.849674957853288 * HARTREE_IN_EV).abs() < 1e-9);
        let f = o.forces.unwrap();
        assert_eq!(f.len(), 2);
        assert!((f[0].x - 0.01244956 * 51.422_086_19).abs() < 1e-6);
        let s = o.stress.unwrap();
        // 3.63 GPa of CP2K's (compressive) stress is −3.63 GPa in ASE's convention.
        assert!((s[(0, 0)] * EV_PER_ANG3_IN_GPA + 3.63004740980).abs() < 1e-9);
        assert!((s[(1, 2)] * EV_PER_ANG3_IN_GPA - 1.65352037777).abs() < 1e-9);
    }

    #[test]
    fn reads_unconverged_scf_and_aborts() {
        let o = parse(" *** WARNING in qs_scf.F:601 :: SCF run NOT converged ***\n");
        assert!(o.last_scf_unconverged && !o.ended);
        let abort = " *   ___                                                                       *
 *  /   \\                                                                      *
 * [ABORT]                                                                     *
 *  \\___/  The requested basis set <NOPE-BASIS> for element <Si> was not found *
 *    |                    in the basis set files <BASIS_MOLOPT>               *
 *  O/|                                                                        *
 * /| |                                                                        *
 * / \\                                          aobasis/basis_set_types.F:1509 *
 *******************************************************************************
";
        let o = parse(abort);
        let msg = o.abort.unwrap();
        assert!(
            msg.starts_with(
                "The requested basis set <NOPE-BASIS> for element <Si> was not found in the basis set files"
            ),
            "{msg}"
        );
    }
}
