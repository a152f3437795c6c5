//! Post-processing of generated crystals and the S.U.N. figure: symmetrise with moyo (the primitive
//! standardised cell at a loose tolerance, so near-symmetric decoder output snaps onto its group), relax
//! with an interatomic potential (FIRE with the cell, ASE's defaults), and place the relaxed energy on a
//! convex hull ([`crate::energy::on_hull`]: by default the complete OQMD hull through the potential's fitted
//! chemical potentials). S.U.N. (MISSION.md) = stable (≤ 0.1 eV/atom above the hull after
//! relaxation) ∧ unique (structure matching within the set) ∧ novel (no match in the training set).
//!
//! Units: energies eV/atom, tolerances Å.

use std::ops::ControlFlow;

use rayon::prelude::*;
use serde::Serialize;

use crate::crystal::Structure;
use crate::crystal::matcher::StructureMatcher;
use crate::energy::calculator::CalcError;
use crate::energy::calculator::Calculator;
use crate::energy::on_hull::{HullChoice, PotentialHull};
use crate::energy::relax::{RelaxOptions, Relaxation, relax, relax_many};
use crate::energy::spec::from_spec;
use crate::ml::generative::metrics::NoveltyIndex;

/// What to do to each generated crystal.
#[derive(Debug, Clone, PartialEq)]
pub struct PolishSettings {
    /// Symmetrise at this tolerance (Å) before relaxing; `None` keeps the decoder's cell.
    pub symprec_ang: Option<f64>,
    /// The potential (`chgnet`, `lj:…`, `torchscript:…`, see [`from_spec`]); `None` skips relaxation.
    pub potential: Option<String>,
    /// Relaxation: force threshold (eV/Å) and step limit.
    pub fmax: f64,
    pub max_steps: usize,
    /// Stable when at most this far above the hull (eV/atom).
    pub stable_below: f64,
    /// Which hull the relaxed energy is placed on.
    pub hull: HullChoice,
    /// Relaxations in flight at once in [`Polisher::polish_many`] (one batched potential evaluation per
    /// FIRE step).
    pub batch: usize,
}

impl Default for PolishSettings {
    fn default() -> Self {
        PolishSettings {
            symprec_ang: Some(0.1),
            potential: Some("chgnet".into()),
            fmax: 0.05,
            max_steps: 300,
            stable_below: 0.1,
            hull: HullChoice::Dft,
            batch: 8,
        }
    }
}

impl PolishSettings {
    /// The defaults (symmetrise at 0.1 Å, stable below 0.1 eV/atom) relaxing with `potential` for at
    /// most `max_steps` FIRE steps: what the CLI's and the runs' `relax` options ask for.
    pub fn relaxing(potential: &str, max_steps: usize) -> PolishSettings {
        PolishSettings { potential: Some(potential.trim().to_string()), max_steps, ..PolishSettings::default() }
    }
}

/// One crystal after post-processing.
#[derive(Debug, Clone, Serialize)]
pub struct Polished {
    /// The symmetrised and relaxed crystal (or as far as it got).
    #[serde(skip)]
    pub structure: Structure,
    /// Space group of the result at 0.01 Å.
    pub space_group: Option<u8>,
    /// Space group found when symmetrising (the loose tolerance).
    pub symmetrised_group: Option<u8>,
    /// Potential energy after relaxation (eV/atom) and FIRE steps taken.
    pub energy_per_atom: Option<f64>,
    pub relax_steps: usize,
    pub converged: bool,
    /// Above the hull (eV/atom); `None` when an element is missing from the hull.
    pub e_above_hull: Option<f64>,
    /// Formation energy on the hull's scale (OQMD's on the DFT hull), eV/atom.
    pub formation_energy_per_atom: Option<f64>,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

impl Polished {
    /// A crystal before relaxation: `structure` as symmetrised (to `symmetrised_group`, if it was).
    pub fn start(structure: Structure, symmetrised_group: Option<u8>) -> Polished {
        Polished {
            structure,
            space_group: None,
            symmetrised_group,
            energy_per_atom: None,
            relax_steps: 0,
            converged: false,
            e_above_hull: None,
            formation_energy_per_atom: None,
            note: None,
        }
    }
}

/// The potential and its hull, made once.
pub struct Polisher {
    settings: PolishSettings,
    calc: Option<Box<dyn Calculator>>,
    hull: Option<PotentialHull>,
}

impl Polisher {
    /// Loads the potential and its hull ([`PotentialHull::for_potential`]: with the shipped CHGNet, the
    /// complete OQMD hull or the CHGNet-only one); other potentials give energies without a hull.
    pub fn new(settings: PolishSettings) -> Result<Polisher, String> {
        let (calc, hull) = match settings.potential.as_deref().map(str::trim) {
            None | Some("") => (None, None),
            Some(spec) => {
                let calc = from_spec(spec).map_err(|e| format!("potential {spec:?}: {e}"))?;
                let hull = PotentialHull::for_potential(&calc.name(), settings.hull)?;
                (Some(calc), hull)
            }
        };
        Ok(Polisher { settings, calc, hull })
    }

    pub fn settings(&self) -> &PolishSettings {
        &self.settings
    }

    /// The hull relaxed crystals are placed on ("none" without one).
    pub fn hull_label(&self) -> &str {
        self.hull.as_ref().map_or("none", |h| h.label())
    }

    /// Symmetrise, relax and place on the hull; `cancelled` stops a relaxation early.
    pub fn polish(&self, s: &Structure, cancelled: &(dyn Fn() -> bool + Sync)) -> Polished {
        let mut out = self.prepare(s);
        let relaxed = self.relaxer(&mut out).map(|calc| {
            relax(calc, &out.structure, &self.relax_options(), &mut |_, _| {
                if cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
        });
        self.conclude(out, relaxed)
    }

    /// [`Polisher::polish`] of many crystals: split evenly over the rayon pool's threads, each thread with up
    /// to the settings' `batch` relaxations in flight at once (one batched potential evaluation per FIRE
    /// step; each relaxation follows the path a lone one takes).
    pub fn polish_many(&self, ss: &[Structure], cancelled: &(dyn Fn() -> bool + Sync)) -> Vec<Polished> {
        let mut prepared: Vec<Polished> = ss.iter().map(|s| self.prepare(s)).collect();
        let mut relaxed: Vec<Option<Result<Relaxation, CalcError>>> = (0..ss.len()).map(|_| None).collect();
        if let Some(calc) = self.calc.as_deref() {
            let items: Vec<usize> = (0..prepared.len()).filter(|&i| self.relaxer(&mut prepared[i]).is_some()).collect();
            let starts: Vec<Structure> = items.iter().map(|&i| prepared[i].structure.clone()).collect();
            let per = starts.len().div_ceil(rayon::current_num_threads().max(1)).max(1);
            let opts = self.relax_options();
            let results: Vec<Vec<Result<Relaxation, CalcError>>> = starts
                .par_chunks(per)
                .map(|chunk| {
                    relax_many(
                        calc,
                        chunk,
                        &opts,
                        self.settings.batch.max(1),
                        &mut |_, _, _| if cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) },
                        &mut |_, _| ControlFlow::Continue(()),
                    )
                })
                .collect();
            for (i, r) in items.into_iter().zip(results.into_iter().flatten()) {
                relaxed[i] = Some(r);
            }
        }
        prepared.into_iter().zip(relaxed).map(|(p, r)| self.conclude(p, r)).collect()
    }

    /// [`Polisher::polish_many`] of the crystals present (`None` for the others, e.g. invalid ones), in place.
    pub fn polish_some(
        &self,
        ss: &[Option<&Structure>],
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Option<Polished>> {
        let present: Vec<Structure> = ss.iter().flatten().map(|s| (*s).clone()).collect();
        let mut done = self.polish_many(&present, cancelled).into_iter();
        ss.iter().map(|s| s.and_then(|_| done.next())).collect()
    }

    /// A prepared crystal and its relaxation (`None`: not relaxed, its note says why), placed on the hull.
    fn conclude(&self, mut out: Polished, relaxed: Option<Result<Relaxation, CalcError>>) -> Polished {
        match relaxed {
            Some(Ok(r)) if r.cancelled => out.note = Some("relaxation cancelled".into()),
            Some(Ok(r)) => return self.finish(out, Ok((r.structure, r.evaluation.energy, r.steps, r.converged))),
            Some(Err(e)) => return self.finish(out, Err(e.to_string())),
            None => {}
        }
        self.finish_unrelaxed(out)
    }

    /// A prepared crystal that is not relaxed (its note says why): only its space group is found.
    pub fn finish_unrelaxed(&self, mut out: Polished) -> Polished {
        out.space_group = out.structure.space_group_number(0.01).ok();
        out
    }

    /// The first part of [`Polisher::polish`]: the crystal symmetrised (at the settings' tolerance), to be
    /// relaxed here or elsewhere (a cluster executor) and handed to [`Polisher::finish`].
    pub fn prepare(&self, s: &Structure) -> Polished {
        let mut out = Polished::start(s.clone(), None);
        if let Some(tol) = self.settings.symprec_ang {
            match s.symmetry(tol).and_then(|info| s.primitive_standard(tol).map(|p| (info.number, p))) {
                Ok((g, p)) => {
                    out.symmetrised_group = Some(g);
                    out.structure = p;
                }
                Err(e) => out.note = Some(format!("not symmetrised: {e}")),
            }
        }
        out
    }

    /// The potential that relaxes a prepared crystal: `None` (with the reason in its note) when the
    /// settings relax nothing or the potential has no parameters for one of its elements.
    pub fn relaxer(&self, prepared: &mut Polished) -> Option<&dyn Calculator> {
        let calc = self.calc.as_deref()?;
        if let Some(e) = prepared.structure.species().iter().find(|e| !calc.supports(**e)) {
            prepared.note = Some(format!("{} has no parameters for {e}", calc.name()));
            return None;
        }
        Some(calc)
    }

    /// FIRE settings of the relaxation (positions and cell).
    pub fn relax_options(&self) -> RelaxOptions {
        RelaxOptions { fmax: self.settings.fmax, max_steps: self.settings.max_steps, ..RelaxOptions::default() }
    }

    /// The last part of [`Polisher::polish`]: a prepared crystal's relaxation (the relaxed structure, its
    /// energy in eV, FIRE steps, converged) or why it failed, placed on the hull.
    pub fn finish(&self, mut out: Polished, relaxed: Result<(Structure, f64, usize, bool), String>) -> Polished {
        match relaxed {
            Ok((structure, energy, steps, converged)) => {
                let per_atom = energy / structure.n_sites().max(1) as f64;
                out.energy_per_atom = Some(per_atom);
                out.relax_steps = steps;
                out.converged = converged;
                out.structure = structure;
                if let Some(h) = &self.hull {
                    match h.place(&out.structure.composition(), per_atom) {
                        Ok(p) => {
                            out.e_above_hull = Some(p.e_above_hull);
                            out.formation_energy_per_atom = Some(p.formation_energy_per_atom);
                        }
                        Err(e) => out.note = Some(format!("not on the hull: {e}")),
                    }
                }
            }
            Err(e) => out.note = Some(format!("relaxation failed: {e}")),
        }
        out.space_group = out.structure.space_group_number(0.01).ok();
        out
    }

    /// Whether a polished crystal counts as stable.
    pub fn is_stable(&self, p: &Polished) -> bool {
        p.e_above_hull.is_some_and(|e| e <= self.settings.stable_below)
    }
}

/// The S.U.N. figures of a set of generated crystals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SunReport {
    /// Crystals considered (all of them count in the rates, valid or not).
    pub n: usize,
    /// Valid ones (structure and SMACT composition), which were relaxed.
    pub n_valid: usize,
    /// Relaxations that converged, and those placed on the hull.
    pub n_converged: usize,
    pub n_on_hull: usize,
    /// Stable (≤ `stable_below` eV/atom above the hull), stable ∧ unique, stable ∧ unique ∧ novel.
    pub n_stable: usize,
    pub n_stable_unique: usize,
    pub n_sun: usize,
    /// n_stable / n and n_sun / n.
    pub stable_rate: f64,
    pub sun_rate: f64,
    /// Median distance above the hull of the crystals on it (eV/atom).
    pub median_e_above_hull: Option<f64>,
    pub stable_below: f64,
    pub potential: String,
    /// The hull stability was judged on.
    pub hull: String,
}

/// Polish the valid crystals (`valid[i]`) in parallel and count S.U.N. against `train` (novelty);
/// `progress(done)` after each crystal. Returns the report and each crystal's result (`None` for the
/// invalid ones).
pub fn sun(
    generated: &[Structure],
    valid: &[bool],
    train: &[Structure],
    polisher: &Polisher,
    progress: &(dyn Fn(usize) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> (SunReport, Vec<Option<Polished>>) {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let polished: Vec<Option<Polished>> = generated
        .par_iter()
        .zip(valid.par_iter())
        .map(|(s, ok)| {
            let r = (*ok && !cancelled()).then(|| polisher.polish(s, cancelled));
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            r
        })
        .collect();
    let stable: Vec<usize> =
        (0..generated.len()).filter(|&i| polished[i].as_ref().is_some_and(|p| polisher.is_stable(p))).collect();
    // Unique among the stable: the first of each group of matching relaxed structures.
    let stable_s: Vec<Structure> = stable
        .iter()
        .map(|&i| polished[i].as_ref().map(|p| p.structure.clone()).unwrap_or_else(|| generated[i].clone()))
        .collect();
    let groups = StructureMatcher::default().group(&stable_s);
    let unique: Vec<usize> = groups.iter().map(|g| g[0]).collect();
    let index = NoveltyIndex::new(train.iter());
    let n_sun = unique.par_iter().filter(|&&k| index.is_novel(&stable_s[k])).count();
    let mut e_hull: Vec<f64> = polished.iter().flatten().filter_map(|p| p.e_above_hull).collect();
    e_hull.sort_by(f64::total_cmp);
    let n = generated.len();
    let rate = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let report = SunReport {
        n,
        n_valid: valid.iter().filter(|v| **v).count(),
        n_converged: polished.iter().flatten().filter(|p| p.converged).count(),
        n_on_hull: e_hull.len(),
        n_stable: stable.len(),
        n_stable_unique: unique.len(),
        n_sun,
        stable_rate: rate(stable.len()),
        sun_rate: rate(n_sun),
        median_e_above_hull: (!e_hull.is_empty()).then(|| e_hull[e_hull.len() / 2]),
        stable_below: polisher.settings.stable_below,
        potential: polisher.calc.as_ref().map(|c| c.name()).unwrap_or_else(|| "none".into()),
        hull: polisher.hull_label().to_string(),
    };
    (report, polished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::{Element, Lattice};
    use nalgebra::Vector3;

    fn rocksalt(a: f64, jitter: f64) -> Structure {
        let l = Lattice::cubic(a).unwrap();
        let na = Element::from_symbol("Na").unwrap();
        let cl = Element::from_symbol("Cl").unwrap();
        let mut species = Vec::new();
        let mut frac = Vec::new();
        for (i, t) in [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]].iter().enumerate() {
            species.push(na);
            frac.push(Vector3::new(t[0] + jitter * i as f64, t[1], t[2]));
            species.push(cl);
            frac.push(Vector3::new(t[0] + 0.5, t[1], t[2]));
        }
        Structure::from_frac(l, species, frac).unwrap()
    }

    #[test]
    fn symmetrising_snaps_a_jittered_rock_salt() {
        let p = Polisher::new(PolishSettings { potential: None, ..PolishSettings::default() }).unwrap();
        let out = p.polish(&rocksalt(5.64, 0.004), &|| false);
        assert_eq!(out.symmetrised_group, Some(225));
        assert_eq!(out.space_group, Some(225), "the primitive standard cell is exact");
        assert_eq!(out.structure.n_sites(), 2);
        assert!(out.energy_per_atom.is_none() && out.e_above_hull.is_none());
    }

    #[test]
    fn sun_counts_stable_unique_novel() {
        // Lennard-Jones has no hull, so nothing is stable: S.U.N. is zero but relaxations run.
        let p = Polisher::new(PolishSettings {
            potential: Some("lj:sigma=2.5,epsilon=0.01".into()),
            symprec_ang: None,
            max_steps: 20,
            ..PolishSettings::default()
        })
        .unwrap();
        let crystals = vec![rocksalt(5.64, 0.0), rocksalt(5.64, 0.0)];
        let (r, polished) = sun(&crystals, &[true, false], &[], &p, &|_| {}, &|| false);
        assert_eq!((r.n, r.n_valid, r.n_stable, r.n_sun), (2, 1, 0, 0));
        assert!(polished[0].as_ref().unwrap().energy_per_atom.is_some());
        assert!(polished[1].is_none());
    }
}
