//! Several property models read as one: the targets of each, in order, and their predictions side by
//! side in the same rows. A run that reports the shipped `graph` model's properties and also a user's
//! (refractive index, bulk modulus) judges every crystal through one [`Joined`] model.

use std::collections::BTreeSet;

use crate::crystal::{Composition, Element, Structure};
use crate::ml::{ModelError, Prediction, PropertyModel, Target};

/// Property models side by side (see the module documentation). A target two models share is
/// answered by the first.
pub struct Joined {
    pub models: Vec<Box<dyn PropertyModel>>,
}

impl Joined {
    /// `models` in order; at least one.
    pub fn new(models: Vec<Box<dyn PropertyModel>>) -> Result<Joined, ModelError> {
        if models.is_empty() {
            return Err(ModelError::Setup("no property model given".into()));
        }
        Ok(Joined { models })
    }

    /// Per model, the positions of its targets that no earlier model predicts.
    fn kept(&self) -> Vec<Vec<usize>> {
        let mut seen: Vec<Target> = Vec::new();
        self.models
            .iter()
            .map(|m| {
                let mut keep = Vec::new();
                for (k, t) in m.targets().into_iter().enumerate() {
                    if !seen.contains(&t) {
                        seen.push(t);
                        keep.push(k);
                    }
                }
                keep
            })
            .collect()
    }

    fn join(
        &self,
        n: usize,
        mut each: impl FnMut(&dyn PropertyModel) -> Result<Vec<Vec<Prediction>>, ModelError>,
    ) -> Result<Vec<Vec<Prediction>>, ModelError> {
        let mut rows = vec![Vec::new(); n];
        for (m, keep) in self.models.iter().zip(self.kept()) {
            if keep.is_empty() {
                continue;
            }
            let p = each(m.as_ref())?;
            if p.len() != n {
                return Err(ModelError::Failed(format!("{} answered {} rows for {n} inputs", m.name(), p.len())));
            }
            for (row, q) in rows.iter_mut().zip(p) {
                row.extend(keep.iter().map(|&k| q[k]));
            }
        }
        Ok(rows)
    }

    /// Per input, the names of the models whose domain of applicability it lies outside (models that
    /// record a domain only; `None` where none does).
    pub fn outside_domain_of(&self, structures: &[Structure]) -> Result<Option<Vec<Vec<String>>>, ModelError> {
        let mut out: Option<Vec<Vec<String>>> = None;
        for m in &self.models {
            if let Some(d) = m.domain(structures)? {
                let rows = out.get_or_insert_with(|| vec![Vec::new(); structures.len()]);
                for (row, (_, outside)) in rows.iter_mut().zip(d) {
                    if outside {
                        row.push(m.name());
                    }
                }
            }
        }
        Ok(out)
    }
}

impl PropertyModel for Joined {
    fn name(&self) -> String {
        self.models.iter().map(|m| m.name()).collect::<Vec<_>>().join(" + ")
    }

    fn targets(&self) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        for m in &self.models {
            out.extend(m.targets().into_iter().filter(|t| !out.contains(t)).collect::<Vec<_>>());
        }
        out
    }

    fn predict(&self, structures: &[Structure]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        self.join(structures.len(), |m| m.predict(structures))
    }

    fn predict_compositions(&self, comps: &[Composition]) -> Result<Vec<Vec<Prediction>>, ModelError> {
        self.join(comps.len(), |m| m.predict_compositions(comps))
    }

    /// The elements every model saw (the intersection over the models that know theirs).
    fn training_elements(&self) -> Option<BTreeSet<Element>> {
        self.models.iter().filter_map(|m| m.training_elements()).reduce(|a, b| a.intersection(&b).copied().collect())
    }

    /// Outside when outside any model's domain; the distance is the largest of the models' (each in
    /// its own model's units of the 99th-percentile threshold's scale, so only the flag compares).
    fn domain(&self, structures: &[Structure]) -> Result<Option<Vec<(f64, bool)>>, ModelError> {
        let mut out: Option<Vec<(f64, bool)>> = None;
        for m in &self.models {
            if let Some(d) = m.domain(structures)? {
                let rows = out.get_or_insert_with(|| vec![(0.0, false); structures.len()]);
                for (row, (dist, outside)) in rows.iter_mut().zip(d) {
                    *row = (row.0.max(dist), row.1 || outside);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that answers a constant per target (test double for the joining logic only).
    struct Constant(Vec<(Target, f64)>);

    impl PropertyModel for Constant {
        fn name(&self) -> String {
            format!("constant{}", self.0.len())
        }
        fn targets(&self) -> Vec<Target> {
            self.0.iter().map(|x| x.0).collect()
        }
        fn predict(&self, s: &[Structure]) -> Result<Vec<Vec<Prediction>>, ModelError> {
            Ok(s.iter()
                .map(|_| self.0.iter().map(|x| Prediction { mean: x.1, std: 0.0, lo90: x.1, hi90: x.1 }).collect())
                .collect())
        }
        fn predict_compositions(&self, c: &[Composition]) -> Result<Vec<Vec<Prediction>>, ModelError> {
            Ok(c.iter()
                .map(|_| self.0.iter().map(|x| Prediction { mean: x.1, std: 0.0, lo90: x.1, hi90: x.1 }).collect())
                .collect())
        }
    }

    #[test]
    fn joined_models_answer_side_by_side_and_the_first_wins_a_shared_target() {
        let n = Target::new("joined_test_index", "", crate::ml::Task::Regression, true).unwrap();
        let j = Joined::new(vec![
            Box::new(Constant(vec![(Target::FormationEnergyPerAtom, -1.0), (Target::BandGap, 2.0)])),
            Box::new(Constant(vec![(Target::BandGap, 9.0), (n, 1.5)])),
        ])
        .unwrap();
        assert_eq!(j.targets(), vec![Target::FormationEnergyPerAtom, Target::BandGap, n]);
        let c = Composition::from_formula("NaCl").unwrap();
        let p = j.predict_compositions(&[c.clone(), c]).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].iter().map(|x| x.mean).collect::<Vec<_>>(), vec![-1.0, 2.0, 1.5]);
        assert!(Joined::new(Vec::new()).is_err());
    }
}
