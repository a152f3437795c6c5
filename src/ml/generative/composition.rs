//! Charge-balanced composition decoding: whole-atom counts from the composition and atom-count heads
//! that pass SMACT's test (charge neutrality under ICSD oxidation states plus the Pauling test; alloys
//! and single elements pass), chosen as close as possible to what the heads predict.
//!
//! The heads give element fractions q (softmax over Z = 1…100) and a distribution P(N) over the number
//! of atoms. Plain rounding ([`super::sample::round_counts`]) keeps the nearest whole-atom formula,
//! which is often not charge-neutral (Na₃Cl₂) when the fractions blur. When the rounded formula fails,
//! this module searches count vectors c over the few most likely elements and the most likely cell
//! sizes N′ and keeps the valid one with the smallest cost, in nats:
//!
//! cost(c) = KL(c/N′ ‖ q) + ln P(N) − ln P(N′),
//!
//! the divergence of the formula's fractions from the head's plus how much less likely its cell size
//! is than the head's favourite, plus a penalty (default [`RARE_STATE_PENALTY_NATS`]) when the formula is
//! charge-balanced only through a rare oxidation state of a nonmetal (peroxide O⁻, Cl⁷⁺ beside F⁻: under
//! [`crate::chem::oxidation::RARE_STATE_SHARE`] of the element's ICSD compounds), so the decoder prefers
//! formulas with common states. KL(f‖q) is zero at f = q and finite for any formula over elements the
//! head gives weight to, so the search prefers the closest neutral formula, not the head's top element.

use crate::chem::oxidation::{ValidityOptions, rare_states, validity};
use crate::crystal::{Composition, Element};

/// Elements searched: the most likely ones under the composition head.
pub const POOL: usize = 5;
/// Cell sizes searched: the most likely ones, within this many nats of the favourite.
pub const SIZE_WINDOW_NATS: f64 = 3.0;
/// At most this many cell sizes.
pub const MAX_SIZES: usize = 5;
/// Elements below this fraction are not searched.
const MIN_FRACTION: f64 = 1e-4;

/// The composition of whole-atom `counts` (indexed by Z − 1).
pub fn counts_composition(counts: &[usize]) -> Composition {
    Composition::from_pairs(
        counts
            .iter()
            .enumerate()
            .filter(|(_, k)| **k > 0)
            .filter_map(|(t, &k)| Element::from_z(t as u32 + 1).ok().map(|e| (e, k as f64))),
    )
}

/// Nats added to a formula's cost when it is charge-balanced only through rare oxidation states.
pub const RARE_STATE_PENALTY_NATS: f64 = 3.0;

/// The nonmetals (IUPAC's, the metalloids B, Si, Ge, As, Sb, Te left out): the penalty looks at their rare
/// states only (peroxide O⁻, S⁻, Cl⁷⁺…, the charge-balance loopholes), not at the negative states of metals
/// and metalloids in intermetallics (Ge⁴⁻, Au⁻, Pt²⁻), which SMACT's counts also call rare but which are
/// ordinary Zintl chemistry; penalising those pushed formulas into alloys and single elements (SrSi2 → Si).
pub const PENALISED_ELEMENTS: [&str; 16] =
    ["H", "He", "C", "N", "O", "F", "Ne", "P", "S", "Cl", "Ar", "Se", "Br", "Kr", "I", "Xe"];

/// Whether charge-balanced `counts` rely on a rare oxidation state of a nonmetal ([`PENALISED_ELEMENTS`]) in
/// their most plausible assignment.
pub fn counts_rely_on_rare_states(counts: &[usize]) -> bool {
    relies_on_rare_nonmetal_state(&counts_composition(counts))
}

/// Whether a charge-balanced composition relies on a rare oxidation state of a nonmetal
/// ([`PENALISED_ELEMENTS`]) in its most plausible assignment.
pub fn relies_on_rare_nonmetal_state(c: &Composition) -> bool {
    rare_states(c, ValidityOptions::default())
        .is_some_and(|r| r.iter().any(|(e, _, _)| PENALISED_ELEMENTS.contains(&e.symbol())))
}

/// Whether whole-atom `counts` (indexed by Z − 1) pass SMACT's compositional validity.
pub fn counts_valid(counts: &[usize]) -> bool {
    counts.iter().any(|k| *k > 0) && validity(&counts_composition(counts), ValidityOptions::default()).is_valid()
}

/// The charge-balanced counts closest to the heads (see the module docs), or `None` when no formula
/// over the searched elements and sizes passes. `q` are element fractions indexed by Z − 1 (zero for
/// elements that are not allowed); `size_log_p` lists the allowed cell sizes N with ln P(N).
pub fn nearest_valid_counts(q: &[f64], size_log_p: &[(usize, f64)], rare_penalty: f64) -> Option<Vec<usize>> {
    ranked_valid_counts(q, size_log_p, 1, 0.0, &[], rare_penalty).into_iter().next().map(|(_, c)| c)
}

/// Up to `k` charge-balanced count vectors in order of cost (nats, see the module docs) minus
/// `bonus[n]` for a formula of n distinct elements (the last entry for more; empty = no bonus), those
/// within `budget` nats of the cheapest: the formulas the element-count prior and a property guide
/// choose among. The bonus applies before the list is cut, so a formula with a likelier number of
/// elements is not crowded out by many cheap variants of an unlikely one; so does `rare_penalty` (nats)
/// for formulas balanced only through rare oxidation states.
pub fn ranked_valid_counts(
    q: &[f64],
    size_log_p: &[(usize, f64)],
    k: usize,
    budget: f64,
    bonus: &[f64],
    rare_penalty: f64,
) -> Vec<(f64, Vec<usize>)> {
    let Some((pool, mut cands)) = candidates(q, size_log_p) else { return Vec::new() };
    if k == 0 {
        return Vec::new();
    }
    if !bonus.is_empty() {
        for (cost, _, c) in cands.iter_mut() {
            *cost -= bonus[n_elements(c).min(bonus.len() - 1)];
        }
        cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    // Candidates come in order of cost; a penalised one may be overtaken by a later one, so the walk stops
    // only when no later candidate (cost ≥ this one's) can enter the k best or the budget.
    let mut out: Vec<(f64, Vec<usize>)> = Vec::new();
    for (cost, _, c) in cands {
        if out.len() >= k && cost >= out[k - 1].0 || out.first().is_some_and(|(c0, _)| cost - c0 > budget) {
            break;
        }
        let counts = spread_counts(&pool, &c, q.len());
        // The same formula at another cell size is another candidate (a different crystal).
        if counts_valid(&counts) {
            let penalised =
                if rare_penalty > 0.0 && counts_rely_on_rare_states(&counts) { cost + rare_penalty } else { cost };
            let at = out.partition_point(|(x, _)| *x <= penalised);
            out.insert(at, (penalised, counts));
        }
    }
    out.truncate(k);
    if let Some(c0) = out.first().map(|x| x.0) {
        out.retain(|(x, _)| x - c0 <= budget);
    }
    out
}

/// The cost (nats, no bonus) of the cheapest charge-balanced formula with n distinct elements, for
/// n = 0…[`POOL`] (+∞ where none lies within `budget` nats of the cheapest count vector): what the
/// element-count calibration weighs ([`super::model::fit_element_count_offsets`]).
pub fn cheapest_by_element_count(q: &[f64], size_log_p: &[(usize, f64)], budget: f64) -> [f64; POOL + 1] {
    let mut best = [f64::INFINITY; POOL + 1];
    let Some((pool, cands)) = candidates(q, size_log_p) else { return best };
    let Some(first) = cands.first().map(|c| c.0) else { return best };
    for (cost, _, c) in cands {
        if cost - first > budget || best[1..=pool.len()].iter().all(|b| b.is_finite()) {
            break;
        }
        let n = n_elements(&c);
        if best[n].is_infinite() && counts_valid(&spread_counts(&pool, &c, q.len())) {
            best[n] = cost;
        }
    }
    best
}

/// Searched elements (type indices) and every count vector over them for every searched size, as
/// (cost, N, counts) in order of cost; `None` when the heads give nothing to search.
#[allow(clippy::type_complexity)]
fn candidates(q: &[f64], size_log_p: &[(usize, f64)]) -> Option<(Vec<usize>, Vec<(f64, usize, [u8; POOL])>)> {
    let total: f64 = q.iter().map(|x| x.max(0.0)).sum();
    if total <= 0.0 || size_log_p.is_empty() {
        return None;
    }
    let mut pool: Vec<usize> = (0..q.len()).filter(|&t| q[t] / total >= MIN_FRACTION).collect();
    pool.sort_by(|&a, &b| q[b].total_cmp(&q[a]).then(a.cmp(&b)));
    pool.truncate(POOL);
    let ln_q: Vec<f64> = pool.iter().map(|&t| (q[t] / total).ln()).collect();
    let best_lp = size_log_p.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
    let mut sizes: Vec<(usize, f64)> =
        size_log_p.iter().copied().filter(|(n, lp)| *n > 0 && best_lp - lp <= SIZE_WINDOW_NATS).collect();
    sizes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    sizes.truncate(MAX_SIZES);
    let mut cands: Vec<(f64, usize, [u8; POOL])> = Vec::new();
    let mut x = vec![0u8; pool.len()];
    for &(n, lp) in &sizes {
        enumerate(&mut x, 0, n, &mut |c| {
            let kl: f64 = c
                .iter()
                .zip(&ln_q)
                .filter(|(k, _)| **k > 0)
                .map(|(&k, lq)| {
                    let f = k as f64 / n as f64;
                    f * (f.ln() - lq)
                })
                .sum();
            let mut counts = [0u8; POOL];
            counts[..c.len()].copy_from_slice(c);
            cands.push((kl + best_lp - lp, n, counts));
        });
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Some((pool, cands))
}

fn n_elements(c: &[u8; POOL]) -> usize {
    c.iter().filter(|k| **k > 0).count()
}

/// Counts over the pool as counts indexed by type (length `n_types`).
fn spread_counts(pool: &[usize], c: &[u8; POOL], n_types: usize) -> Vec<usize> {
    let mut counts = vec![0usize; n_types];
    for (i, &t) in pool.iter().enumerate() {
        counts[t] = c[i] as usize;
    }
    counts
}

/// Calls `f` with every vector `x[i..]` of non-negative counts summing to `left` (earlier entries fixed).
fn enumerate(x: &mut [u8], i: usize, left: usize, f: &mut dyn FnMut(&[u8])) {
    if i + 1 == x.len() {
        x[i] = left as u8;
        f(x);
        return;
    }
    for k in 0..=left {
        x[i] = k as u8;
        enumerate(x, i + 1, left - k, f);
    }
    x[i] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q_of(pairs: &[(&str, f64)]) -> Vec<f64> {
        let mut q = vec![0.0; 100];
        for (s, v) in pairs {
            q[Element::from_symbol(s).unwrap().z() as usize - 1] = *v;
        }
        q
    }

    fn formula(c: &[usize]) -> String {
        counts_composition(c).reduced_formula()
    }

    #[test]
    fn blurred_rock_salt_becomes_neutral() {
        // Fractions 0.6 Na / 0.4 Cl at N = 5 round to Na3Cl2, which is not neutral; the nearest neutral
        // formulas are NaCl at N = 4 or 6.
        let q = q_of(&[("Na", 0.6), ("Cl", 0.4)]);
        let sizes = [(4, -1.2), (5, -0.7), (6, -1.0)];
        let c = nearest_valid_counts(&q, &sizes, 0.0).unwrap();
        assert_eq!(formula(&c), "NaCl");
        assert_eq!(c.iter().sum::<usize>(), 6, "N = 6 is more likely than N = 4");
    }

    #[test]
    fn prefers_the_close_neutral_formula_over_the_top_element() {
        // Sr/Ti/O at 0.2/0.2/0.6 for N = 5 is already SrTiO3; a blur towards Ti keeps the perovskite.
        let q = q_of(&[("Sr", 0.18), ("Ti", 0.24), ("O", 0.58)]);
        let c = nearest_valid_counts(&q, &[(5, -0.1), (10, -3.0)], 0.0).unwrap();
        assert_eq!(formula(&c), "SrTiO3");
        assert!(counts_valid(&c));
    }

    #[test]
    fn none_when_nothing_is_neutral() {
        // He and Ne have no ICSD oxidation states, so their mixtures fail; a single element passes.
        let q = q_of(&[("He", 0.5), ("Ne", 0.5)]);
        let c = nearest_valid_counts(&q, &[(2, 0.0)], 0.0).unwrap();
        assert_eq!(c.iter().filter(|k| **k > 0).count(), 1);
        assert!(nearest_valid_counts(&vec![0.0; 100], &[(2, 0.0)], 0.0).is_none());
    }

    #[test]
    fn ranked_formulas_start_with_the_nearest_and_stay_within_the_budget() {
        let q = q_of(&[("Na", 0.6), ("Cl", 0.4)]);
        let sizes = [(4, -1.2), (5, -0.7), (6, -1.0)];
        let ranked = ranked_valid_counts(&q, &sizes, 8, 1.0, &[], 0.0);
        assert_eq!(Some(ranked[0].1.clone()), nearest_valid_counts(&q, &sizes, 0.0));
        assert!(ranked.len() >= 2 && ranked.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(ranked.iter().all(|(c, k)| c - ranked[0].0 <= 1.0 && counts_valid(k)));
        assert!(ranked_valid_counts(&q, &sizes, 3, 10.0, &[], 0.0).len() <= 3);
    }

    #[test]
    fn an_element_count_bonus_reorders_formulas_before_the_list_is_cut() {
        // An Fe/Co/Ni alloy head for 4 atoms: Fe2CoNi is 0.02 nats from the head, Fe4 0.92.
        let q = q_of(&[("Fe", 0.4), ("Co", 0.3), ("Ni", 0.3)]);
        let sizes = [(4, 0.0)];
        let plain = ranked_valid_counts(&q, &sizes, 1, 10.0, &[], 0.0);
        assert_eq!(formula(&plain[0].1), "Fe2CoNi");
        // 2 nats for single elements: Fe4 now costs 0.92 − 2 and is the one formula kept, though
        // dozens of alloys are cheaper before the bonus.
        let single = ranked_valid_counts(&q, &sizes, 1, 10.0, &[0.0, 2.0, 0.0, 0.0], 0.0);
        assert_eq!(formula(&single[0].1), "Fe");
        assert!((single[0].0 - ((1.0f64 / 0.4).ln() - 2.0)).abs() < 1e-9, "{}", single[0].0);
        // The last entry holds for every larger count.
        let ternary = ranked_valid_counts(&q, &sizes, 1, 10.0, &[0.0, 0.0, 0.0, 5.0], 0.0);
        assert_eq!(ternary[0].1.iter().filter(|k| **k > 0).count(), 3);
        // The cheapest formula of each number of elements, before any bonus.
        let by_k = cheapest_by_element_count(&q, &sizes, 10.0);
        assert!(by_k[0].is_infinite() && by_k[4].is_infinite() && by_k[5].is_infinite());
        assert!((by_k[1] - (1.0f64 / 0.4).ln()).abs() < 1e-9);
        assert!((by_k[3] - plain[0].0).abs() < 1e-12 && by_k[2] > by_k[3] && by_k[2] < by_k[1]);
    }

    /// Even Li/O fractions round to the peroxide Li2O2 (O⁻, 0.4 % of O's ICSD compounds); with the rare-state
    /// penalty the oxide Li2O at the next likely cell size wins.
    #[test]
    fn the_rare_state_penalty_prefers_common_oxidation_states() {
        let q = q_of(&[("Li", 0.5), ("O", 0.5)]);
        let sizes = [(4, 0.0), (3, -0.5)];
        let (li, o) = (2, 7); // Z − 1
        let plain = nearest_valid_counts(&q, &sizes, 0.0).unwrap();
        assert_eq!((plain[li], plain[o]), (2, 2), "Li2O2");
        assert!(counts_rely_on_rare_states(&nearest_valid_counts(&q, &sizes, 0.0).unwrap()));
        let c = nearest_valid_counts(&q, &sizes, RARE_STATE_PENALTY_NATS).unwrap();
        assert_eq!((c[li], c[o]), (2, 1), "Li2O");
        let ranked = ranked_valid_counts(&q, &sizes, 4, 10.0, &[], RARE_STATE_PENALTY_NATS);
        assert!(ranked.windows(2).all(|w| w[0].0 <= w[1].0), "sorted by penalised cost");
        assert_eq!((ranked[0].1[li], ranked[0].1[o]), (2, 1));
    }
}
