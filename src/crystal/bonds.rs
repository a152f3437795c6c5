//! Which atom pairs count as bonded: VESTA's pair cutoffs (pymatgen-core's `vesta_cutoffs.yaml`,
//! embedded as `assets/vesta_cutoffs.json`) or covalent radii (Cordero et al. 2008) times a tolerance.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::{Element, Structure};

/// How bonds are detected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BondRule {
    /// Bonded when d ≤ `scale` × (r_cov(a) + r_cov(b)). In a structure that holds a non-metal, two metals
    /// are never bonded (Sr–Sr at 3.9 Å in SrTiO3 is within 1.15 × 2 × 1.95 Å but is not a bond anyone
    /// wants drawn); alloys keep their metal–metal bonds.
    Covalent { scale: f64 },
    /// Bonded when d ≤ VESTA's maximum length for the pair; pairs VESTA lists no cutoff for are never bonded.
    Vesta,
}

impl Default for BondRule {
    fn default() -> Self {
        BondRule::Covalent { scale: 1.15 }
    }
}

#[derive(Deserialize)]
struct VestaRow {
    a: String,
    b: String,
    max: f64,
}

fn vesta_table() -> &'static HashMap<(u8, u8), f64> {
    static T: OnceLock<HashMap<(u8, u8), f64>> = OnceLock::new();
    T.get_or_init(|| {
        let rows: Vec<VestaRow> = serde_json::from_str(include_str!("../../assets/vesta_cutoffs.json"))
            .expect("embedded assets/vesta_cutoffs.json is valid (checked by tests)");
        let mut m = HashMap::new();
        for r in rows {
            if let (Ok(a), Ok(b)) = (Element::from_symbol(&r.a), Element::from_symbol(&r.b)) {
                m.insert((a.z().min(b.z()), a.z().max(b.z())), r.max);
            }
        }
        m
    })
}

impl BondRule {
    /// Longest bond between `a` and `b` (Å), or `None` if they never bond under this rule.
    pub fn max_length(&self, a: Element, b: Element) -> Option<f64> {
        match *self {
            BondRule::Covalent { scale } => {
                let ra = a.data().covalent_radius?;
                let rb = b.data().covalent_radius?;
                Some(scale * (ra + rb))
            }
            BondRule::Vesta => vesta_table().get(&(a.z().min(b.z()), a.z().max(b.z()))).copied(),
        }
    }

    /// The longest cutoff over all pairs of `elements` (Å), 0 if none bond.
    pub fn max_cutoff(&self, elements: &[Element]) -> f64 {
        let mut m: f64 = 0.0;
        for (i, &a) in elements.iter().enumerate() {
            for &b in &elements[i..] {
                if let Some(l) = self.max_length(a, b) {
                    m = m.max(l);
                }
            }
        }
        m
    }
}

/// A bond from site `a` to site `b` translated by `image` (lattice vectors), `length_ang` long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bond {
    pub a: usize,
    pub b: usize,
    pub image: [i32; 3],
    pub length_ang: f64,
}

impl Structure {
    /// Every bond under `rule`, each direction listed (a→b and b→a), across periodic boundaries.
    pub fn bonds(&self, rule: BondRule) -> Vec<Bond> {
        let mut els = self.composition().elements();
        els.sort();
        let cutoff = rule.max_cutoff(&els);
        if cutoff <= 0.0 {
            return Vec::new();
        }
        let nl = self.neighbor_list(cutoff);
        let sp = self.species();
        let skip_metal_pairs = matches!(rule, BondRule::Covalent { .. }) && els.iter().any(|e| !e.data().is_metal);
        let pair_ok = |a: Element, b: Element| !(skip_metal_pairs && a.data().is_metal && b.data().is_metal);
        (0..nl.len())
            .filter(|&k| pair_ok(sp[nl.center[k]], sp[nl.neighbor[k]]))
            .filter(|&k| rule.max_length(sp[nl.center[k]], sp[nl.neighbor[k]]).is_some_and(|m| nl.distance[k] <= m))
            .map(|k| Bond { a: nl.center[k], b: nl.neighbor[k], image: nl.image[k], length_ang: nl.distance[k] })
            .collect()
    }

    /// Number of bonded neighbours of each site under `rule`.
    pub fn coordination_numbers(&self, rule: BondRule) -> Vec<usize> {
        let mut c = vec![0; self.n_sites()];
        for b in self.bonds(rule) {
            c[b.a] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metal_pairs_are_not_bonds_in_compounds() {
        // Cubic SrTiO3 (a = 3.905 Å): Ti–O 1.95 Å and Sr–O 2.76 Å are bonds; Sr–Sr and Ti–Ti at 3.905 Å and
        // Sr–Ti at 3.38 Å are not, although covalent radii × 1.15 would reach them.
        let el = |s: &str| Element::from_symbol(s).unwrap();
        let frac = vec![
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(0.5, 0.5, 0.5),
            Vector3::new(0.5, 0.5, 0.0),
            Vector3::new(0.5, 0.0, 0.5),
            Vector3::new(0.0, 0.5, 0.5),
        ];
        let s = Structure::from_frac(
            Lattice::cubic(3.905).unwrap(),
            vec![el("Sr"), el("Ti"), el("O"), el("O"), el("O")],
            frac,
        )
        .unwrap();
        let cn = s.coordination_numbers(BondRule::default());
        assert_eq!(cn, vec![12, 6, 6, 6, 6], "Sr 12 O, Ti 6 O, O 2 Ti + 4 Sr");
        // An alloy keeps its metal–metal bonds: fcc Cu has 12 neighbours.
        let cu = Structure::from_frac(
            Lattice::cubic(3.61).unwrap(),
            vec![el("Cu"); 4],
            vec![
                Vector3::new(0.0, 0.0, 0.0),
                Vector3::new(0.5, 0.5, 0.0),
                Vector3::new(0.5, 0.0, 0.5),
                Vector3::new(0.0, 0.5, 0.5),
            ],
        )
        .unwrap();
        assert!(cu.coordination_numbers(BondRule::default()).iter().all(|&c| c == 12));
    }
    use crate::crystal::Lattice;
    use nalgebra::Vector3;

    fn rocksalt() -> Structure {
        let na = Element::from_symbol("Na").unwrap();
        let cl = Element::from_symbol("Cl").unwrap();
        let mut species = Vec::new();
        let mut frac = Vec::new();
        for f in [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]] {
            species.push(na);
            frac.push(Vector3::new(f[0], f[1], f[2]));
            species.push(cl);
            frac.push(Vector3::new(f[0] + 0.5, f[1], f[2]));
        }
        Structure::from_frac(Lattice::cubic(5.64).unwrap(), species, frac).unwrap()
    }

    #[test]
    fn rock_salt_is_octahedral_under_both_rules() {
        let s = rocksalt();
        // VESTA: Na–Cl up to 3.09 Å; Na–Na and Cl–Cl have no cutoff.
        assert_eq!(s.coordination_numbers(BondRule::Vesta), vec![6; 8]);
        // Covalent: 1.15 (1.66 + 1.02) = 3.08 Å ≥ 2.82 Å Na–Cl, but Cl–Cl at 3.99 Å > 2.35 Å.
        assert_eq!(s.coordination_numbers(BondRule::default()), vec![6; 8]);
        let bonds = s.bonds(BondRule::Vesta);
        assert!(bonds.iter().all(|b| (b.length_ang - 2.82).abs() < 1e-9));
        assert!(bonds.iter().any(|b| b.image != [0, 0, 0]), "bonds cross the cell boundary");
        assert_eq!(
            BondRule::Vesta.max_length(Element::from_symbol("Na").unwrap(), Element::from_symbol("Na").unwrap()),
            None
        );
    }
}
