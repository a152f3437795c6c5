//! The matcher's working form of a structure ([`Cell`], pymatgen's row convention) and pymatgen's
//! `get_primitive_structure`, ported step by step.

use super::rows::*;
use super::*;

/// A structure in pymatgen's row convention, the working form of the matcher.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    pub(super) rows: M3,
    pub(super) species: Vec<Element>,
    pub(super) frac: Vec<V3>,
}

impl Cell {
    pub(super) fn from_structure(s: &Structure) -> Cell {
        Cell {
            rows: s.lattice.row_vectors(),
            species: s.species().to_vec(),
            frac: s.frac_coords().iter().map(|f| [f.x, f.y, f.z]).collect(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.species.len()
    }

    pub(super) fn volume(&self) -> f64 {
        det(&self.rows).abs()
    }

    pub(super) fn cart(&self) -> Vec<V3> {
        self.frac.iter().map(|f| vec_mat(f, &self.rows)).collect()
    }

    /// Niggli-reduced copy with coordinates wrapped into the new cell (pymatgen's
    /// `get_reduced_structure()`); `None` for a singular lattice.
    pub(super) fn niggli(&self) -> Option<Cell> {
        let lattice = Lattice::from_row_vectors(self.rows).ok()?;
        let (reduced, _) = lattice.niggli_reduced();
        let rows = reduced.row_vectors();
        let inv_rows = inv(&rows)?;
        let frac = self.cart().iter().map(|c| wrap3(&vec_mat(c, &inv_rows))).collect();
        Some(Cell { rows, species: self.species.clone(), frac })
    }
}

/// Divisors of `n` in increasing order.
pub(super) fn divisors(n: usize) -> impl Iterator<Item = usize> {
    (1..=n).filter(move |d| n.is_multiple_of(*d))
}

pub(super) fn gcd(a: usize, b: usize) -> usize {
    crate::crystal::composition::gcd(a as u64, b as u64) as usize
}

/// One step of pymatgen's `Structure.get_primitive_structure(tolerance)`: the first smaller cell
/// (by increasing number of formula units, in pymatgen's enumeration order) in which every site
/// group maps onto itself, or `None`. Sites of the result are grouped by species symbol.
pub(super) fn primitive_step(cell: &Cell, tolerance: f64) -> Option<Cell> {
    // Group sites by species symbol (stable sort, as Python's `sorted`).
    let mut order: Vec<usize> = (0..cell.len()).collect();
    order.sort_by(|&i, &j| cell.species[i].symbol().cmp(cell.species[j].symbol()));
    let mut groups: Vec<(Element, Vec<V3>)> = Vec::new();
    for &i in &order {
        match groups.last_mut() {
            Some((e, g)) if *e == cell.species[i] => g.push(cell.frac[i]),
            _ => groups.push((cell.species[i], vec![cell.frac[i]])),
        }
    }
    let abc = lengths(&cell.rows);
    let super_ftol = abc.map(|l| tolerance / l);
    let super_ftol_2 = super_ftol.map(|x| 2.0 * x);
    let close = |d: &V3, tol: &V3| (0..3).all(|k| (d[k] - d[k].round_ties_even()).abs() < tol[k]);

    // Candidate translations: differences within the smallest group that map every group onto itself.
    let min_group = groups.iter().min_by_key(|(_, g)| g.len())?;
    let mut min_vecs: Vec<V3> = min_group.1.iter().map(|f| sub(f, &min_group.1[0])).collect();
    let mut by_len: Vec<&Vec<V3>> = groups.iter().map(|(_, g)| g).collect();
    by_len.sort_by_key(|g| g.len());
    for g in by_len {
        for x in g {
            min_vecs.retain(|v| g.iter().any(|y| close(&sub(v, &sub(y, x)), &super_ftol_2)));
        }
    }

    // Sites may not be matched to their own neighbours in the supercell.
    let non_nbrs: Vec<Vec<Vec<bool>>> = groups
        .iter()
        .map(|(_, g)| {
            (0..g.len())
                .map(|i| {
                    (0..g.len())
                        .map(|j| {
                            i == j
                                || (0..3).any(|k| {
                                    let d = g[j][k] - g[i][k];
                                    (d - d.round_ties_even()).abs() > super_ftol_2[k]
                                })
                        })
                        .collect()
                })
                .collect()
        })
        .collect();

    let num_fu = groups.iter().fold(0, |acc, (_, g)| gcd(acc, g.len()));
    for size in divisors(num_fu).filter(|&d| d > 1) {
        for a in divisors(size) {
            for e in divisors(size / a) {
                let g = size / a / e;
                for b in 0..a {
                    for c in 0..a {
                        for f in 0..e {
                            let m = [[a as f64, b as f64, c as f64], [0.0, e as f64, f as f64], [0.0, 0.0, g as f64]];
                            if let Some(found) = try_primitive_candidate(
                                cell,
                                &groups,
                                &non_nbrs,
                                &min_vecs,
                                &m,
                                size,
                                tolerance,
                                &super_ftol,
                            ) {
                                return Some(found);
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// Test one supercell matrix `m` of `get_primitive_structure` and build the smaller cell if valid.
#[allow(clippy::too_many_arguments)]
pub(super) fn try_primitive_candidate(
    cell: &Cell,
    groups: &[(Element, Vec<V3>)],
    non_nbrs: &[Vec<Vec<bool>>],
    min_vecs: &[V3],
    m: &M3,
    size: usize,
    tolerance: f64,
    super_ftol: &V3,
) -> Option<Cell> {
    let inv_m = inv(m)?;
    // Each new lattice vector (a row of m⁻¹, in old fractional coordinates) must be a translation.
    let row_ok = |r: &V3| {
        min_vecs.iter().any(|v| {
            (0..3).all(|k| {
                let d = r[k] - v[k];
                (d - d.round_ties_even()).abs() < super_ftol[k]
            })
        })
    };
    if !inv_m.iter().all(row_ok) {
        return None;
    }
    let new_rows = mat_mul(&inv_m, &cell.rows);
    let ftol = lengths(&new_rows).map(|l| tolerance / l);
    let mut species = Vec::new();
    let mut coords = Vec::new();
    for ((el, gf), nn) in groups.iter().zip(non_nbrs) {
        let n = gf.len();
        let all_frac: Vec<V3> = gf.iter().map(|f| vec_mat(f, m)).collect();
        let mut grp = vec![false; n * n];
        for i in 0..n {
            for j in 0..n {
                let close = (0..3).all(|k| {
                    let d = all_frac[j][k] - all_frac[i][k];
                    (d - d.round_ties_even()).abs() < ftol[k]
                });
                grp[i * n + j] = close && nn[i][j];
            }
        }
        // Every site must be equivalent to exactly `size` sites ...
        if (0..n).any(|j| (0..n).filter(|&i| grp[i * n + j]).count() != size) {
            return None;
        }
        // ... and the equivalence classes must be cliques.
        for i in 0..n {
            let members: Vec<usize> = (0..n).filter(|&j| grp[i * n + j]).collect();
            if members.iter().any(|&p| members.iter().any(|&q| !grp[p * n + q])) {
                return None;
            }
        }
        // One new site per class, at the (periodic) average position.
        let new_frac: Vec<V3> = all_frac.iter().map(|f| f.map(|x| x.rem_euclid(1.0))).collect();
        let mut added = vec![false; n];
        for i in 0..n {
            if added[i] {
                continue;
            }
            let members: Vec<usize> = (0..n).filter(|&j| grp[i * n + j]).collect();
            for &j in &members {
                added[j] = true;
            }
            let Some(&first) = members.first() else { continue };
            let mut c = new_frac[first];
            for (inner, &j) in members.iter().skip(1).enumerate() {
                for k in 0..3 {
                    let off = new_frac[j][k] - c[k];
                    c[k] += (off - off.round_ties_even()) / (inner + 2) as f64;
                }
            }
            species.push(*el);
            coords.push(c);
        }
    }
    Some(Cell { rows: new_rows, species, frac: coords })
}

/// pymatgen's `get_primitive_structure(tolerance)`: repeated [`primitive_step`] until no smaller
/// cell is found, then Niggli reduction (only if a reduction happened, as in pymatgen).
pub(super) fn primitive(cell: &Cell, tolerance: f64) -> Cell {
    let mut cur = cell.clone();
    let mut reduced = false;
    // Each step divides the number of sites by at least 2, so this terminates quickly.
    while let Some(next) = primitive_step(&cur, tolerance) {
        if next.len() >= cur.len() || next.len() == 0 {
            break;
        }
        cur = next;
        reduced = true;
    }
    if reduced { cur.niggli().unwrap_or(cur) } else { cur }
}
