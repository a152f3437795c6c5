//! Variation operators of the evolutionary search (USPEX / XtalOpt vocabulary). Each takes parent
//! structures and returns a child with the parents' composition (transmutation excepted), or `None`
//! when the draw left atoms closer than the minimum distance; callers draw again.
//!
//! Fractional coordinates throughout; strains are dimensionless, displacements in Å.

use std::collections::BTreeMap;

use nalgebra::{Matrix3, Vector3};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::crystal::structure::wrap_frac;
use crate::crystal::{Element, Lattice, Structure};
use crate::search::random_structure::min_distance;

/// The operators, by the name stored with each individual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// A new random symmetric structure (no parents).
    Random,
    /// Cut-and-splice of two parents' slabs along a random axis, with random shifts.
    Heredity,
    /// Random symmetric strain of the lattice at constant volume.
    Strain,
    /// Swap the species of pairs of unlike atoms.
    Permutation,
    /// Gaussian displacement of atoms (a soft-mutation stand-in without phonons).
    Rattle,
    /// Change one atom's element (variable-composition searches).
    Transmutation,
    /// A structure given by the user or taken from the dataset.
    Seed,
    /// Prototype space: an element replaced by a likely substitute (Hautier probabilities).
    Substitution,
    /// Prototype space: element assignments of two parents on one template mixed.
    Crossover,
    /// Prototype space: the elements moved onto another template.
    TemplateSwitch,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::Random => "random",
            Operator::Heredity => "heredity",
            Operator::Strain => "strain",
            Operator::Permutation => "permutation",
            Operator::Rattle => "rattle",
            Operator::Transmutation => "transmutation",
            Operator::Seed => "seed",
            Operator::Substitution => "substitution",
            Operator::Crossover => "crossover",
            Operator::TemplateSwitch => "template_switch",
        }
    }
}

/// True when every pair of atoms is at least `factor` × (sum of covalent radii) apart.
pub fn atoms_apart(s: &Structure, factor: f64) -> bool {
    let max_r = s.species().iter().map(|e| min_distance(*e, *e, factor)).fold(0.0, f64::max);
    if s.volume() < 1.0 || s.n_sites() == 0 {
        return false;
    }
    let nl = s.neighbor_list(max_r + 1e-6);
    let sp = s.species();
    (0..nl.len()).all(|k| {
        let (i, j, d) = (nl.center[k], nl.neighbor[k], nl.distance[k]);
        d >= min_distance(sp[i], sp[j], factor)
    })
}

/// Cut-and-splice: the part of `a` below a random plane normal to a random axis and the part of `b`
/// above it, each shifted at random, in the average of the two lattices; the composition is then
/// repaired to `a`'s by dropping surplus atoms and borrowing missing ones from the unused halves.
pub fn heredity(a: &Structure, b: &Structure, factor: f64, rng: &mut impl Rng) -> Option<Structure> {
    let axis = rng.random_range(0..3);
    let cut = rng.random_range(0.3..0.7);
    let w = rng.random_range(0.3..0.7);
    let la = a.lattice.cart_from_frac();
    let lb = b.lattice.cart_from_frac();
    let lattice = Lattice::from_cart_from_frac(la * w + lb * (1.0 - w)).ok()?;
    let shift =
        |rng: &mut dyn rand::RngCore| Vector3::new(rng.random::<f64>(), rng.random::<f64>(), rng.random::<f64>());
    let (sa, sb) = (shift(rng), shift(rng));
    let moved =
        |s: &Structure, t: Vector3<f64>| s.frac_coords().iter().map(|f| wrap_frac(&(f + t))).collect::<Vec<_>>();
    let (fa, fb) = (moved(a, sa), moved(b, sb));
    let mut taken: Vec<(Element, Vector3<f64>)> = Vec::new();
    let mut spare: Vec<(Element, Vector3<f64>)> = Vec::new();
    for (e, f) in a.species().iter().zip(&fa) {
        if f[axis] < cut { taken.push((*e, *f)) } else { spare.push((*e, *f)) }
    }
    for (e, f) in b.species().iter().zip(&fb) {
        if f[axis] >= cut { taken.push((*e, *f)) } else { spare.push((*e, *f)) }
    }
    let want = counts(a.species());
    let have = counts(&taken.iter().map(|t| t.0).collect::<Vec<_>>());
    for (el, &n) in &want {
        let h = have.get(el).copied().unwrap_or(0);
        if h > n {
            // Drop the surplus at random.
            let mut idx: Vec<usize> = (0..taken.len()).filter(|&i| taken[i].0 == *el).collect();
            idx.shuffle(rng);
            let mut drop: Vec<usize> = idx[..h - n].to_vec();
            drop.sort_unstable_by(|x, y| y.cmp(x));
            for i in drop {
                taken.remove(i);
            }
        } else if h < n {
            let mut pool: Vec<Vector3<f64>> = spare.iter().filter(|s| s.0 == *el).map(|s| s.1).collect();
            pool.shuffle(rng);
            if pool.len() < n - h {
                return None;
            }
            taken.extend(pool[..n - h].iter().map(|f| (*el, *f)));
        }
    }
    let (species, frac): (Vec<Element>, Vec<Vector3<f64>>) = taken.into_iter().unzip();
    let child =
        Structure::from_frac(lattice, species, frac).ok()?.scaled_to_volume(0.5 * (a.volume() + b.volume())).ok()?;
    atoms_apart(&child, factor).then_some(child)
}

fn counts(species: &[Element]) -> BTreeMap<Element, usize> {
    let mut m = BTreeMap::new();
    for e in species {
        *m.entry(*e).or_insert(0) += 1;
    }
    m
}

/// Lattice strain: L' = (I + ε) L with symmetric ε, components N(0, σ²), then back to the volume.
pub fn strain(s: &Structure, sigma: f64, factor: f64, rng: &mut impl Rng) -> Option<Structure> {
    let n = Normal::new(0.0, sigma).ok()?;
    let mut e = Matrix3::identity();
    for i in 0..3 {
        for j in i..3 {
            let x = n.sample(rng);
            e[(i, j)] += x;
            if i != j {
                e[(j, i)] += x;
            }
        }
    }
    let lattice = Lattice::from_cart_from_frac(e * s.lattice.cart_from_frac()).ok()?;
    let child = s.with_lattice(lattice).scaled_to_volume(s.volume()).ok()?;
    atoms_apart(&child, factor).then_some(child)
}

/// Swap the species of `swaps` random pairs of unlike atoms; `None` for single-element structures.
pub fn permutation(s: &Structure, swaps: usize, factor: f64, rng: &mut impl Rng) -> Option<Structure> {
    let mut species = s.species().to_vec();
    let n = species.len();
    if counts(&species).len() < 2 {
        return None;
    }
    for _ in 0..swaps.max(1) {
        for _ in 0..50 {
            let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
            if species[i] != species[j] {
                species.swap(i, j);
                break;
            }
        }
    }
    let child = Structure::from_frac(s.lattice.clone(), species, s.frac_coords().to_vec()).ok()?;
    atoms_apart(&child, factor).then_some(child)
}

/// Displace each atom by a Gaussian vector of σ = `sigma_ang` per Cartesian component (Å).
pub fn rattle(s: &Structure, sigma_ang: f64, factor: f64, rng: &mut impl Rng) -> Option<Structure> {
    let n = Normal::new(0.0, sigma_ang).ok()?;
    let cart: Vec<Vector3<f64>> =
        s.cart_coords().iter().map(|c| c + Vector3::new(n.sample(rng), n.sample(rng), n.sample(rng))).collect();
    let child = Structure::from_cart(s.lattice.clone(), s.species().to_vec(), &cart).ok()?.wrapped();
    atoms_apart(&child, factor).then_some(child)
}

/// Change the element of one random atom to another of `elements`.
pub fn transmutation(s: &Structure, elements: &[Element], factor: f64, rng: &mut impl Rng) -> Option<Structure> {
    let mut species = s.species().to_vec();
    let i = rng.random_range(0..species.len());
    let others: Vec<Element> = elements.iter().copied().filter(|e| *e != species[i]).collect();
    species[i] = *others.choose(rng)?;
    let child = Structure::from_frac(s.lattice.clone(), species, s.frac_coords().to_vec()).ok()?;
    atoms_apart(&child, factor).then_some(child)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::data::Dataset;

    fn rocksalt() -> Structure {
        Dataset::embedded()
            .lookup("NaCl")
            .into_iter()
            .min_by(|a, b| a.energy_per_atom.total_cmp(&b.energy_per_atom))
            .unwrap()
            .structure
            .repeat([2, 1, 1])
            .unwrap()
    }

    #[test]
    fn operators_keep_the_composition() {
        let s = rocksalt();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut made = [0; 4];
        for _ in 0..40 {
            let children = [
                heredity(&s, &s.translated(Vector3::new(0.3, 0.1, 0.0)), 0.5, &mut rng),
                strain(&s, 0.1, 0.5, &mut rng),
                permutation(&s, 1, 0.5, &mut rng),
                rattle(&s, 0.2, 0.5, &mut rng),
            ];
            for (k, c) in children.into_iter().enumerate() {
                if let Some(c) = c {
                    made[k] += 1;
                    assert_eq!(c.composition().reduced_formula(), "NaCl");
                    assert_eq!(c.n_sites(), s.n_sites());
                    assert!(atoms_apart(&c, 0.5));
                }
            }
        }
        assert!(made.iter().all(|&m| m > 5), "{made:?}");
        // Strain keeps the volume.
        let c = strain(&s, 0.1, 0.3, &mut rng).unwrap();
        assert!((c.volume() - s.volume()).abs() < 1e-6 * s.volume());
    }

    #[test]
    fn transmutation_changes_one_atom() {
        let s = rocksalt();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let k = Element::from_symbol("K").unwrap();
        let c = transmutation(&s, &[k], 0.3, &mut rng).unwrap();
        assert_eq!(c.species().iter().filter(|e| **e == k).count(), 1);
    }
}
