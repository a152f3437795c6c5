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

/// One structure's relaxation in progress: the FIRE state between force evaluations. [`relax`] drives one
/// with a calculator; [`relax_many`] drives many at once, one batched evaluation per step.
pub struct Relaxer {
    opts: RelaxOptions,
    calculator: String,
    /// Å³.
    start_volume: f64,
    species: Vec<crate::crystal::Element>,
    n: usize,
    cell_factor: f64,
    /// Starting cell, rows are lattice vectors (Å).
    cell0: Matrix3<f64>,
    symmetrizer: Option<Symmetrizer>,
    /// The structure waiting for its evaluation.
    structure: Structure,
    /// Deformation gradient from the starting cell.
    f_grad: Matrix3<f64>,
    /// Degrees of freedom: atom rows, then (with the cell) three cell rows times the cell factor.
    x: Vec<Vector3<f64>>,
    /// Optimiser forces at the last evaluated state.
    g: Vec<Vector3<f64>>,
    /// The evaluation of the last evaluated structure.
    last: Option<Evaluation>,
    /// The last evaluated structure while `structure` waits for its evaluation (moved, not copied).
    previous: Option<Structure>,
    cancelled: bool,
    vel: Option<Vec<Vector3<f64>>>,
    dt: f64,
    a: f64,
    n_pos: usize,
    steps: usize,
    trajectory: Vec<RelaxStep>,
}

/// What [`Relaxer::feed`] leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// [`Relaxer::pending`] holds the next structure to evaluate.
    Evaluate,
    /// Converged, out of steps or stopped: [`Relaxer::finish`] gives the result.
    Done,
}

impl Relaxer {
    /// A relaxation of `start`, waiting for the evaluation of `start` itself. `calculator` names the model
    /// in error messages.
    pub fn new(calculator: &str, start: &Structure, opts: &RelaxOptions) -> Result<Relaxer, CalcError> {
        if !(opts.fmax.is_finite() && opts.fmax > 0.0) {
            return Err(CalcError::Invalid(format!("fmax must be a positive number of eV/Å, got {}", opts.fmax)));
        }
        let n = start.n_sites();
        let cell_factor = opts.cell_factor.unwrap_or(n as f64);
        let f_grad = Matrix3::identity();
        let mut x: Vec<Vector3<f64>> = start.cart_coords();
        if opts.relax_cell {
            x.extend((0..3).map(|r| f_grad.row(r).transpose() * cell_factor));
        }
        let symmetrizer = opts.symprec.map(|p| Symmetrizer::new(start, p)).transpose()?;
        Ok(Relaxer {
            opts: opts.clone(),
            calculator: calculator.to_string(),
            start_volume: start.volume(),
            species: start.species().to_vec(),
            n,
            cell_factor,
            cell0: start.lattice.cart_from_frac().transpose(),
            symmetrizer,
            structure: start.clone(),
            f_grad,
            x,
            g: Vec::new(),
            last: None,
            previous: None,
            cancelled: false,
            vel: None,
            dt: opts.dt,
            a: opts.astart,
            n_pos: 0,
            steps: 0,
            trajectory: Vec::new(),
        })
    }

    /// The structure to evaluate next (after [`Next::Done`], the last one evaluated).
    pub fn pending(&self) -> &Structure {
        &self.structure
    }

    /// Take the evaluation of [`Relaxer::pending`]: record the trajectory point (handed to `on_step`, which
    /// may stop the relaxation) and, unless converged, out of steps or stopped, move to the next structure.
    pub fn feed(
        &mut self,
        mut ev: Evaluation,
        on_step: &mut dyn FnMut(&RelaxStep, &Structure) -> ControlFlow<()>,
    ) -> Result<Next, CalcError> {
        if let Some(sym) = &self.symmetrizer {
            sym.apply(&mut ev, &self.structure.lattice);
        }
        let volume = self.structure.volume();
        self.g = filter_forces(&ev, &self.f_grad, volume, self.cell_factor, self.opts.relax_cell);
        let point = RelaxStep { step: self.steps, energy: ev.energy, fmax: max_row(&self.g), volume };
        let cancelled = on_step(&point, &self.structure).is_break();
        self.trajectory.push(point);
        self.last = Some(ev);
        self.previous = None;
        if self.steps > 0 {
            if self.opts.relax_cell {
                // The optimiser's atom rows are positions with the deformation taken out (r F⁻ᵀ).
                let inv_t = self.f_grad.try_inverse().unwrap_or_else(Matrix3::identity).transpose();
                for (i, r) in self.structure.cart_coords().iter().enumerate() {
                    self.x[i] = (r.transpose() * inv_t).transpose();
                }
            } else {
                self.x = self.structure.cart_coords();
            }
        }
        if cancelled {
            self.cancelled = true;
            return Ok(Next::Done);
        }
        if max_row(&self.g) < self.opts.fmax || self.steps >= self.opts.max_steps {
            return Ok(Next::Done);
        }
        self.fire_step()?;
        Ok(Next::Evaluate)
    }

    /// One FIRE move (ASE's `FIRE.step`) and the structure it leads to (ASE's `set_positions_unitcellfilter`).
    fn fire_step(&mut self) -> Result<(), CalcError> {
        let opts = &self.opts;
        let g = &self.g;
        match &mut self.vel {
            None => self.vel = Some(vec![Vector3::zeros(); self.x.len()]),
            Some(v) => {
                let vf: f64 = g.iter().zip(v.iter()).map(|(g, v)| g.dot(v)).sum();
                if vf > 0.0 {
                    let g2: f64 = g.iter().map(|g| g.norm_squared()).sum();
                    let v2: f64 = v.iter().map(|v| v.norm_squared()).sum();
                    let scale = self.a * (v2 / g2).sqrt();
                    for (v, g) in v.iter_mut().zip(g) {
                        *v = *v * (1.0 - self.a) + g * scale;
                    }
                    if self.n_pos > opts.n_min {
                        self.dt = (self.dt * opts.finc).min(opts.dtmax);
                        self.a *= opts.fa;
                    }
                    self.n_pos += 1;
                } else {
                    v.iter_mut().for_each(|v| *v = Vector3::zeros());
                    self.a = opts.astart;
                    self.dt *= opts.fdec;
                    self.n_pos = 0;
                }
            }
        }
        let dt = self.dt;
        let v = self.vel.as_mut().expect("set above");
        for (v, g) in v.iter_mut().zip(g) {
            *v += g * dt;
        }
        let mut dr: Vec<Vector3<f64>> = v.iter().map(|v| v * dt).collect();
        let norm = dr.iter().map(|d| d.norm_squared()).sum::<f64>().sqrt();
        if norm > opts.maxstep {
            dr.iter_mut().for_each(|d| *d *= opts.maxstep / norm);
        }
        for (x, d) in self.x.iter_mut().zip(&dr) {
            *x += d;
        }
        let (n, x, step) = (self.n, &self.x, self.steps + 1);
        let (lattice, cart) = if opts.relax_cell {
            let new_f =
                Matrix3::from_rows(&[x[n].transpose(), x[n + 1].transpose(), x[n + 2].transpose()]) / self.cell_factor;
            let deform_t = new_f.transpose();
            let cell = self.cell0 * deform_t;
            let lattice = Lattice::from_cart_from_frac(cell.transpose()).map_err(|e| CalcError::Failed {
                calculator: "relaxation".into(),
                reason: format!("the cell collapsed at step {step}: {e}"),
            })?;
            self.f_grad = new_f;
            (lattice, x[..n].iter().map(|r| (r.transpose() * deform_t).transpose()).collect::<Vec<_>>())
        } else {
            (self.structure.lattice.clone(), x[..n].to_vec())
        };
        let next = Structure::from_cart(lattice, self.species.clone(), &cart)
            .map_err(|e| CalcError::Failed { calculator: "relaxation".into(), reason: format!("step {step}: {e}") })?;
        let ratio = next.volume() / self.start_volume;
        if opts.max_volume_factor.is_finite()
            && !(1.0 / opts.max_volume_factor..=opts.max_volume_factor).contains(&ratio)
        {
            return Err(CalcError::Failed {
                calculator: self.calculator.clone(),
                reason: format!(
                    "the cell volume went from {:.2} to {:.2} Å³ (×{ratio:.2}) by step {step}: the potential has no minimum near this structure",
                    self.start_volume,
                    next.volume(),
                ),
            });
        }
        self.previous = Some(std::mem::replace(&mut self.structure, next));
        self.steps = step;
        Ok(())
    }

    /// The result: the last evaluated structure (wrapped into the cell) and its evaluation. Call after
    /// [`Relaxer::feed`] answered [`Next::Done`]; before the first evaluation it is an error.
    pub fn finish(self) -> Result<Relaxation, CalcError> {
        let evaluation = self.last.ok_or_else(|| CalcError::Invalid("the relaxation has no evaluation yet".into()))?;
        let converged = max_row(&self.g) < self.opts.fmax;
        // Stopped while a structure waited for its evaluation: the result is the one evaluated before it.
        let structure = self.previous.unwrap_or(self.structure);
        Ok(Relaxation {
            structure: structure.wrapped(),
            evaluation,
            steps: self.trajectory.len().saturating_sub(1),
            converged,
            cancelled: self.cancelled,
            trajectory: self.trajectory,
        })
    }
}

/// Relax `start` with `calc`. `on_step` sees every trajectory point with its structure and may stop the
/// run (`ControlFlow::Break`), which returns the structure reached so far with `cancelled` set.
pub fn relax(
    calc: &dyn Calculator,
    start: &Structure,
    opts: &RelaxOptions,
    on_step: &mut dyn FnMut(&RelaxStep, &Structure) -> ControlFlow<()>,
) -> Result<Relaxation, CalcError> {
    if let Some(native) = calc.relax_natively(start, opts, on_step) {
        return native;
    }
    let mut r = Relaxer::new(&calc.name(), start, opts)?;
    loop {
        let ev = calc.calculate(r.pending())?;
        if r.feed(ev, on_step)? == Next::Done {
            return r.finish();
        }
    }
}

/// [`relax_many`]'s callback for each finished relaxation: its index and result.
pub type OnDone<'a> = dyn FnMut(usize, &Result<Relaxation, CalcError>) -> ControlFlow<()> + 'a;

/// Relax many structures with one batched evaluation per step ([`Calculator::calculate_batch`]: one
/// forward pass for CHGNet): up to `batch` relaxations are in flight; each leaves the batch when it
/// converges, runs out of steps or fails, and the next structure takes its place, so the batch stays full.
/// Every relaxation follows exactly the FIRE path [`relax`] would take with the same evaluations.
///
/// `on_step(i, point, structure)` sees every trajectory point of structure `i` (as [`relax`]'s callback) and
/// may stop that relaxation. `on_done(i, result)` sees each result as it finishes (in finishing order) and
/// may stop the whole batch (`ControlFlow::Break`): relaxations in flight are then returned as they stand
/// with `cancelled` set, and those never started as errors. Returns the results in input order.
pub fn relax_many(
    calc: &dyn Calculator,
    starts: &[Structure],
    opts: &RelaxOptions,
    batch: usize,
    on_step: &mut dyn FnMut(usize, &RelaxStep, &Structure) -> ControlFlow<()>,
    on_done: &mut OnDone<'_>,
) -> Vec<Result<Relaxation, CalcError>> {
    if calc.relaxes_natively() {
        // The model's own optimiser, one structure at a time (each run already uses the threads it is given).
        let mut results = Vec::with_capacity(starts.len());
        for (i, s) in starts.iter().enumerate() {
            let r = relax(calc, s, opts, &mut |p, st| on_step(i, p, st));
            let stop = on_done(i, &r).is_break();
            results.push(r);
            if stop {
                break;
            }
        }
        while results.len() < starts.len() {
            results.push(Err(CalcError::Invalid("not relaxed: the batch was stopped first".into())));
        }
        return results;
    }
    let name = calc.name();
    let mut results: Vec<Option<Result<Relaxation, CalcError>>> = (0..starts.len()).map(|_| None).collect();
    let mut queue = 0..starts.len();
    let mut active: Vec<(usize, Relaxer)> = Vec::new();
    let mut stopped = false;
    let mut finish = |i: usize, r: Result<Relaxation, CalcError>, results: &mut Vec<Option<_>>| {
        let flow = on_done(i, &r);
        results[i] = Some(r);
        flow.is_break()
    };
    loop {
        // Fill the batch.
        while !stopped && active.len() < batch.max(1) {
            let Some(i) = queue.next() else { break };
            match Relaxer::new(&name, &starts[i], opts) {
                Ok(r) => active.push((i, r)),
                Err(e) => stopped |= finish(i, Err(e), &mut results),
            }
        }
        if active.is_empty() || stopped {
            break;
        }
        let pending: Vec<Structure> = active.iter().map(|(_, r)| r.pending().clone()).collect();
        let evaluations = calc.calculate_batch(&pending);
        let mut still = Vec::with_capacity(active.len());
        for ((i, mut r), ev) in active.drain(..).zip(evaluations) {
            let outcome = ev.and_then(|ev| r.feed(ev, &mut |p, s| on_step(i, p, s)));
            match outcome {
                Ok(Next::Evaluate) => still.push((i, r)),
                Ok(Next::Done) => stopped |= finish(i, r.finish(), &mut results),
                Err(e) => stopped |= finish(i, Err(e), &mut results),
            }
        }
        active = still;
    }
    for (i, mut r) in active {
        r.cancelled = true;
        results[i] = Some(r.finish());
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(CalcError::Invalid("not relaxed: the batch was stopped first".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Element;
    use crate::energy::Chgnet;

    fn rattled_rocksalt(a: f64, shift: f64) -> Structure {
        let (na, cl) = (Element::from_symbol("Na").unwrap(), Element::from_symbol("Cl").unwrap());
        let v = |x: f64, y: f64, z: f64| Vector3::new(x, y, z);
        Structure::from_frac(
            Lattice::cubic(a).unwrap(),
            vec![na, na, na, na, cl, cl, cl, cl],
            vec![
                v(shift, 0., 0.),
                v(0., 0.5, 0.5),
                v(0.5, 0., 0.5),
                v(0.5, 0.5 - shift, 0.),
                v(0.5, 0., 0.),
                v(0., 0.5, shift),
                v(0., 0., 0.5),
                v(0.5, 0.5, 0.5),
            ],
        )
        .unwrap()
    }

    #[test]
    fn chgnet_batches_relax_to_the_same_minima_as_single_relaxations() {
        // Batched forward passes differ from single ones in float32 rounding only, so the paths agree to
        // rounding and end at the same minimum.
        let chgnet = Chgnet::pretrained();
        let starts: Vec<Structure> =
            [(5.5, 0.02), (5.8, -0.015), (5.65, 0.03)].iter().map(|&(a, d)| rattled_rocksalt(a, d)).collect();
        let opts = RelaxOptions { fmax: 0.05, ..RelaxOptions::default() };
        let batch = relax_many(&chgnet, &starts, &opts, 2, &mut |_, _, _| ControlFlow::Continue(()), &mut |_, _| {
            ControlFlow::Continue(())
        });
        for (s, b) in starts.iter().zip(&batch) {
            let one = relax(&chgnet, s, &opts, &mut |_, _| ControlFlow::Continue(())).unwrap();
            let b = b.as_ref().unwrap();
            assert!(b.converged && one.converged);
            let (eb, e1) = (b.evaluation.energy_per_atom(), one.evaluation.energy_per_atom());
            assert!((eb - e1).abs() < 2e-3, "{eb} vs {e1} eV/atom");
            assert!((b.structure.volume() / one.structure.volume() - 1.0).abs() < 5e-3);
        }
    }

    #[test]
    fn a_failing_structure_leaves_the_batch_without_stopping_it() {
        let chgnet = Chgnet::pretrained();
        let am = Element::from_symbol("Am").unwrap();
        let bad = Structure::from_frac(Lattice::cubic(3.5).unwrap(), vec![am], vec![Vector3::zeros()]).unwrap();
        let starts = vec![rattled_rocksalt(5.6, 0.02), bad, rattled_rocksalt(5.7, 0.01)];
        let out = relax_many(
            &chgnet,
            &starts,
            &RelaxOptions::default(),
            2,
            &mut |_, _, _| ControlFlow::Continue(()),
            &mut |_, _| ControlFlow::Continue(()),
        );
        assert!(out[0].as_ref().is_ok_and(|r| r.converged) && out[2].as_ref().is_ok_and(|r| r.converged));
        assert!(
            matches!(&out[1], Err(CalcError::UnsupportedElement { element, .. }) if element == "Am"),
            "{:?}",
            out[1].as_ref().err()
        );
    }
}
