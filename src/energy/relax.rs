//! Local relaxation: FIRE (Bitzek et al., PRL 97, 170201 (2006)) on positions, optionally together with
//! the cell through ASE's `UnitCellFilter` construction. Step for step the same algorithm and defaults as
//! ASE's `FIRE(UnitCellFilter(atoms))` (`tests/relax_ase.rs` holds it to ASE's trajectories).
//!
//! Degrees of freedom with the cell: N atom rows `r F⁻ᵀ` (positions with the cell deformation taken out)
//! and three rows `c F`, where F is the deformation gradient from the starting cell (`cell = cell₀ Fᵀ` in
//! ASE's row convention) and `c` the cell factor (default N). Their forces are the atomic forces times F
//! and the virial `−V σ` times F⁻ᵀ, divided by c. Converged when the largest row of that force array
//! (eV/Å; for the cell rows eV per cell factor) is below `fmax`.

use std::ops::ControlFlow;

use nalgebra::{Matrix3, Vector3};

use super::calculator::{CalcError, Calculator, Evaluation};
use crate::crystal::{Lattice, Structure};

/// FIRE and filter settings; defaults are ASE's.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaxOptions {
    /// Converged when every force row is below this (eV/Å).
    pub fmax: f64,
    /// At most this many steps.
    pub max_steps: usize,
    /// Relax the cell with the positions.
    pub relax_cell: bool,
    /// Cell factor of the filter (default: number of atoms).
    pub cell_factor: Option<f64>,
    /// Largest displacement of the whole degree-of-freedom vector per step (Å).
    pub maxstep: f64,
    pub dt: f64,
    pub dtmax: f64,
    pub n_min: usize,
    pub finc: f64,
    pub fdec: f64,
    pub astart: f64,
    pub fa: f64,
    /// Keep the starting structure's space group (ASE's `FixSymmetry`): the symmetry operations found at
    /// this tolerance (Å) symmetrise every force and stress, so the structure can only move within its
    /// group. `None` (the default) relaxes freely.
    pub symprec: Option<f64>,
    /// Stop with an error when the cell volume leaves [start / f, start × f]: a potential with no minimum
    /// near the structure (a collapsing or exploding cell) is reported instead of followed. Default 4.
    pub max_volume_factor: f64,
}

impl Default for RelaxOptions {
    fn default() -> Self {
        RelaxOptions {
            fmax: 0.05,
            max_steps: 500,
            relax_cell: true,
            cell_factor: None,
            maxstep: 0.2,
            dt: 0.1,
            dtmax: 1.0,
            n_min: 5,
            finc: 1.1,
            fdec: 0.5,
            astart: 0.1,
            fa: 0.99,
            symprec: None,
            max_volume_factor: 4.0,
        }
    }
}

/// One point of the trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaxStep {
    /// 0 for the starting structure.
    pub step: usize,
    /// eV.
    pub energy: f64,
    /// Largest force row of the optimiser (eV/Å), what convergence is judged on.
    pub fmax: f64,
    /// Å³.
    pub volume: f64,
}

/// The result of a relaxation.
#[derive(Debug, Clone)]
pub struct Relaxation {
    pub structure: Structure,
    pub evaluation: Evaluation,
    /// Steps taken (force evaluations − 1).
    pub steps: usize,
    pub converged: bool,
    /// Stopped by the callback.
    pub cancelled: bool,
    pub trajectory: Vec<RelaxStep>,
}

/// The optimiser's force rows for the current state (atoms, then the three cell rows).
fn filter_forces(
    ev: &Evaluation,
    f_grad: &Matrix3<f64>,
    volume: f64,
    cell_factor: f64,
    relax_cell: bool,
) -> Vec<Vector3<f64>> {
    // Row convention: a row vector times F is Fᵀ times the column vector.
    let mut rows: Vec<Vector3<f64>> = ev.forces.iter().map(|f| f_grad.transpose() * f).collect();
    if relax_cell {
        let virial = -volume * ev.stress;
        // virial F⁻ᵀ (ASE: solve(F, virialᵀ)ᵀ).
        let inv = f_grad.try_inverse().unwrap_or_else(Matrix3::identity);
        let v = virial * inv.transpose();
        for r in 0..3 {
            rows.push(v.row(r).transpose() / cell_factor);
        }
    }
    rows
}

/// The starting structure's symmetry operations: each as its rotation in fractional coordinates and the
/// site each site goes to.
struct Symmetrizer {
    ops: Vec<(Matrix3<f64>, Vec<usize>)>,
}

impl Symmetrizer {
    fn new(s: &Structure, symprec: f64) -> Result<Symmetrizer, CalcError> {
        let ops =
            s.symmetry_operations(symprec).map_err(|e| CalcError::Invalid(format!("cannot keep the symmetry: {e}")))?;
        let frac = s.frac_coords();
        let species = s.species();
        let mut out = Vec::with_capacity(ops.len());
        for (rot, t) in ops {
            let r = rot.map(|x| x as f64);
            let mut perm = Vec::with_capacity(frac.len());
            for (i, f) in frac.iter().enumerate() {
                let image = r * f + t;
                let best = (0..frac.len())
                    .filter(|&j| species[j] == species[i])
                    .map(|j| {
                        let d = (image - frac[j]).map(|x| x - x.round());
                        (j, s.lattice.to_cart(&d).norm())
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                match best {
                    Some((j, d)) if d <= 2.0 * symprec + 1e-6 => perm.push(j),
                    _ => {
                        return Err(CalcError::Invalid(format!(
                            "symmetry operation maps site {i} onto no site within {symprec} Å"
                        )));
                    }
                }
            }
            out.push((r, perm));
        }
        Ok(Symmetrizer { ops: out })
    }

    /// Average forces and stress over the group: `F'_g(i) = R F_i`, `σ' = R σ Rᵀ` (Cartesian R = A R_f A⁻¹).
    fn apply(&self, ev: &mut Evaluation, lattice: &Lattice) {
        let a = lattice.cart_from_frac();
        let a_inv = lattice.frac_from_cart();
        let n = self.ops.len() as f64;
        let mut forces = vec![Vector3::zeros(); ev.forces.len()];
        let mut stress = Matrix3::zeros();
        for (rf, perm) in &self.ops {
            let rc = a * rf * a_inv;
            for (i, f) in ev.forces.iter().enumerate() {
                forces[perm[i]] += rc * f / n;
            }
            stress += rc * ev.stress * rc.transpose() / n;
        }
        ev.forces = forces;
        ev.stress = stress;
    }
}

fn max_row(rows: &[Vector3<f64>]) -> f64 {
    rows.iter().map(|r| r.norm()).fold(0.0, f64::max)
}

/// Relax `start` with `calc`. `on_step` sees every trajectory point with its structure and may stop the
/// run (`ControlFlow::Break`), which returns the structure reached so far with `cancelled` set.
pub fn relax(
    calc: &dyn Calculator,
    start: &Structure,
    opts: &RelaxOptions,
    on_step: &mut dyn FnMut(&RelaxStep, &Structure) -> ControlFlow<()>,
) -> Result<Relaxation, CalcError> {
    if !(opts.fmax.is_finite() && opts.fmax > 0.0) {
        return Err(CalcError::Invalid(format!("fmax must be a positive number of eV/Å, got {}", opts.fmax)));
    }
    let n = start.n_sites();
    let cell_factor = opts.cell_factor.unwrap_or(n as f64);
    // Row-convention matrices: cell rows are lattice vectors, positions are rows.
    let cell0: Matrix3<f64> = start.lattice.cart_from_frac().transpose();
    let species = start.species().to_vec();
    let mut structure = start.clone();
    let mut f_grad = Matrix3::identity();
    // Degrees of freedom.
    let mut x: Vec<Vector3<f64>> = structure.cart_coords();
    if opts.relax_cell {
        x.extend((0..3).map(|r| f_grad.row(r).transpose() * cell_factor));
    }
    let symmetrizer = opts.symprec.map(|p| Symmetrizer::new(start, p)).transpose()?;
    let evaluate = |s: &Structure| -> Result<Evaluation, CalcError> {
        let mut ev = calc.calculate(s)?;
        if let Some(sym) = &symmetrizer {
            sym.apply(&mut ev, &s.lattice);
        }
        Ok(ev)
    };
    let mut ev = evaluate(&structure)?;
    let mut g = filter_forces(&ev, &f_grad, structure.volume(), cell_factor, opts.relax_cell);
    let mut trajectory = vec![RelaxStep { step: 0, energy: ev.energy, fmax: max_row(&g), volume: structure.volume() }];
    let mut cancelled = on_step(&trajectory[0], &structure).is_break();
    let mut vel: Option<Vec<Vector3<f64>>> = None;
    let (mut dt, mut a, mut n_steps) = (opts.dt, opts.astart, 0usize);
    let mut steps = 0;
    while !cancelled && max_row(&g) >= opts.fmax && steps < opts.max_steps {
        // FIRE step (ASE's `FIRE.step`).
        match &mut vel {
            None => vel = Some(vec![Vector3::zeros(); x.len()]),
            Some(v) => {
                let vf: f64 = g.iter().zip(v.iter()).map(|(g, v)| g.dot(v)).sum();
                if vf > 0.0 {
                    let g2: f64 = g.iter().map(|g| g.norm_squared()).sum();
                    let v2: f64 = v.iter().map(|v| v.norm_squared()).sum();
                    let scale = a * (v2 / g2).sqrt();
                    for (v, g) in v.iter_mut().zip(&g) {
                        *v = *v * (1.0 - a) + g * scale;
                    }
                    if n_steps > opts.n_min {
                        dt = (dt * opts.finc).min(opts.dtmax);
                        a *= opts.fa;
                    }
                    n_steps += 1;
                } else {
                    v.iter_mut().for_each(|v| *v = Vector3::zeros());
                    a = opts.astart;
                    dt *= opts.fdec;
                    n_steps = 0;
                }
            }
        }
        let v = vel.as_mut().expect("set above");
        for (v, g) in v.iter_mut().zip(&g) {
            *v += g * dt;
        }
        let mut dr: Vec<Vector3<f64>> = v.iter().map(|v| v * dt).collect();
        let norm = dr.iter().map(|d| d.norm_squared()).sum::<f64>().sqrt();
        if norm > opts.maxstep {
            dr.iter_mut().for_each(|d| *d *= opts.maxstep / norm);
        }
        for (x, d) in x.iter_mut().zip(&dr) {
            *x += d;
        }
        // Back to a structure (ASE's `set_positions_unitcellfilter`).
        let (lattice, cart) = if opts.relax_cell {
            let new_f =
                Matrix3::from_rows(&[x[n].transpose(), x[n + 1].transpose(), x[n + 2].transpose()]) / cell_factor;
            let deform_t = new_f.transpose();
            let cell = cell0 * deform_t;
            let lattice = Lattice::from_cart_from_frac(cell.transpose()).map_err(|e| CalcError::Failed {
                calculator: "relaxation".into(),
                reason: format!("the cell collapsed at step {}: {e}", steps + 1),
            })?;
            f_grad = new_f;
            (lattice, x[..n].iter().map(|r| (r.transpose() * deform_t).transpose()).collect::<Vec<_>>())
        } else {
            (structure.lattice.clone(), x[..n].to_vec())
        };
        let next = Structure::from_cart(lattice, species.clone(), &cart).map_err(|e| CalcError::Failed {
            calculator: "relaxation".into(),
            reason: format!("step {}: {e}", steps + 1),
        })?;
        let ratio = next.volume() / start.volume();
        if opts.max_volume_factor.is_finite()
            && !(1.0 / opts.max_volume_factor..=opts.max_volume_factor).contains(&ratio)
        {
            return Err(CalcError::Failed {
                calculator: calc.name(),
                reason: format!(
                    "the cell volume went from {:.2} to {:.2} Å³ (×{ratio:.2}) by step {}: the potential has no minimum near this structure",
                    start.volume(),
                    next.volume(),
                    steps + 1
                ),
            });
        }
        structure = next;
        steps += 1;
        ev = evaluate(&structure)?;
        g = filter_forces(&ev, &f_grad, structure.volume(), cell_factor, opts.relax_cell);
        let point = RelaxStep { step: steps, energy: ev.energy, fmax: max_row(&g), volume: structure.volume() };
        cancelled = on_step(&point, &structure).is_break();
        trajectory.push(point);
        if opts.relax_cell {
            // The optimiser's atom rows are positions with the deformation taken out (r F⁻ᵀ).
            let inv_t = f_grad.try_inverse().unwrap_or_else(Matrix3::identity).transpose();
            for (i, r) in structure.cart_coords().iter().enumerate() {
                x[i] = (r.transpose() * inv_t).transpose();
            }
        } else {
            x = structure.cart_coords();
        }
    }
    let converged = max_row(&g) < opts.fmax;
    let structure = structure.wrapped();
    Ok(Relaxation { structure, evaluation: ev, steps, converged, cancelled, trajectory })
}
