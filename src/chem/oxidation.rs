//! SMACT's chemical rules (Davies et al., J. Open Source Softw. 4, 1361 (2019); smact 4.0.2): charge
//! neutrality with one oxidation state per element, the Pauling electronegativity test, and the
//! enumeration of charge-neutral stoichiometries for an element set. `tests/smact_rules.rs` holds these to
//! smact's own answers on 20,428 compositions and 30 element sets.
//!
//! Two oxidation-state tables, as in SMACT:
//! * [`OxidationSet::Icsd24Consensus`]: states reported for an element in ≥ 3 ICSD-24 compounds, 0
//!   excluded (`assets/smact_icsd24_consensus3.json`); what `smact_validity` uses by default.
//! * [`OxidationSet::Icsd24`]: SMACT's static ICSD-24 list (> 5 reports; `elements.json`,
//!   `icsd_oxidation_states`); what `smact_filter` uses by default.
//!
//! Electronegativities are SMACT's Pauling values (`assets/smact_rules.json`), which differ from
//! pymatgen's `Element.X` for 16 elements; an element without one fails every Pauling test.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::crystal::composition::gcd;
use crate::crystal::{Composition, Element};

/// Which oxidation-state table to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OxidationSet {
    /// ICSD-24 states with ≥ 3 reports (smact_validity's default).
    #[default]
    Icsd24Consensus,
    /// SMACT's static ICSD-24 list (smact_filter's default).
    Icsd24,
}

#[derive(Deserialize)]
struct ConsensusFile {
    oxidation_states: HashMap<String, Vec<i8>>,
}

#[derive(Deserialize)]
struct RulesFile {
    metals: Vec<String>,
    pauling_eneg: HashMap<String, Option<f64>>,
}

struct Tables {
    consensus: HashMap<Element, Vec<i8>>,
    metals: Vec<Element>,
    eneg: HashMap<Element, f64>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let c: ConsensusFile = serde_json::from_str(include_str!("../../assets/smact_icsd24_consensus3.json"))
            .expect("embedded smact_icsd24_consensus3.json is valid");
        let r: RulesFile = serde_json::from_str(include_str!("../../assets/smact_rules.json"))
            .expect("embedded smact_rules.json is valid");
        let el = |s: &str| Element::from_symbol(s).expect("SMACT tables name known elements");
        Tables {
            consensus: c.oxidation_states.iter().map(|(s, v)| (el(s), v.clone())).collect(),
            metals: r.metals.iter().map(|s| el(s)).collect(),
            eneg: r.pauling_eneg.iter().filter_map(|(s, v)| v.map(|x| (el(s), x))).collect(),
        }
    })
}

/// Oxidation states of `el` in `set`, ascending (consensus) or in SMACT's file order; empty when unknown.
pub fn oxidation_states(el: Element, set: OxidationSet) -> &'static [i8] {
    match set {
        OxidationSet::Icsd24Consensus => tables().consensus.get(&el).map_or(&[], |v| v.as_slice()),
        OxidationSet::Icsd24 => el.data().icsd_oxidation_states.as_slice(),
    }
}

/// SMACT's Pauling electronegativity of `el`, if it has one.
pub fn pauling_electronegativity(el: Element) -> Option<f64> {
    tables().eneg.get(&el).copied()
}

/// Whether SMACT counts `el` as a metal (`smact.metals`; B, Si, As, Te are not, Al, Ge, Sb, Po are).
pub fn is_metal(el: Element) -> bool {
    tables().metals.contains(&el)
}

/// SMACT's Pauling test: every cation must be less electronegative than every anion (strictly); a pair
/// with an unknown electronegativity fails.
pub fn pauling_test(states: &[i8], electronegativities: &[Option<f64>]) -> bool {
    for i in 0..states.len() {
        for j in i + 1..states.len() {
            let (Some(a), Some(b)) = (electronegativities[i], electronegativities[j]) else { return false };
            let (qa, qb) = (states[i], states[j]);
            if (qa > 0 && qb < 0 && a >= b) || (qa < 0 && qb > 0 && a <= b) {
                return false;
            }
        }
    }
    true
}

/// Options of [`validity`], SMACT's defaults by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidityOptions {
    pub use_pauling_test: bool,
    /// Compositions of metals only are valid (alloys).
    pub include_alloys: bool,
    pub oxidation_set: OxidationSet,
}

impl Default for ValidityOptions {
    fn default() -> Self {
        ValidityOptions { use_pauling_test: true, include_alloys: true, oxidation_set: OxidationSet::Icsd24Consensus }
    }
}

/// Why a composition is valid or not.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A single element.
    Element,
    /// Metals only (with `include_alloys`).
    Alloy,
    /// Charge-neutral with these oxidation states (one per element, in the composition's element order),
    /// passing the Pauling test if asked.
    ChargeBalanced(Vec<(Element, i8)>),
    /// An element has no oxidation state in the table.
    NoOxidationStates(Element),
    /// Some assignment is charge-neutral, but none passes the Pauling test.
    FailsPauling(Vec<(Element, i8)>),
    /// No assignment of one state per element is charge-neutral.
    NotChargeBalanced,
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Element | Verdict::Alloy | Verdict::ChargeBalanced(_))
    }

    /// A short sentence for people.
    pub fn explain(&self) -> String {
        let states = |v: &[(Element, i8)]| v.iter().map(|(e, q)| species(*e, *q)).collect::<Vec<_>>().join(" ");
        match self {
            Verdict::Element => "a single element".into(),
            Verdict::Alloy => "metals only (alloy)".into(),
            Verdict::ChargeBalanced(v) => format!("charge-balanced as {}", states(v)),
            Verdict::NoOxidationStates(e) => format!("{e} has no ICSD oxidation state"),
            Verdict::FailsPauling(v) => format!(
                "charge-balanced only as {} (and the like), which fails the Pauling electronegativity test",
                states(v)
            ),
            Verdict::NotChargeBalanced => "no charge-neutral assignment of one oxidation state per element".into(),
        }
    }
}

/// A species as chemists write it: `Fe2+`, `O2-`, `Li+`, `Cl-`.
pub fn species(e: Element, q: i8) -> String {
    let sign = if q < 0 { '-' } else { '+' };
    if q.abs() == 1 { format!("{e}{sign}") } else { format!("{e}{}{sign}", q.abs()) }
}

#[derive(Deserialize)]
struct CountsFile {
    counts: HashMap<String, HashMap<String, u32>>,
}

/// ln of the fraction of an element's ICSD-24 compounds that report it in state `q` (SMACT's counts,
/// `assets/smact_icsd24_counts.json`); a state without a count weighs as half a report.
fn log_frequency(e: Element, q: i8) -> f64 {
    static T: OnceLock<HashMap<Element, HashMap<i8, u32>>> = OnceLock::new();
    let t = T.get_or_init(|| {
        let f: CountsFile = serde_json::from_str(include_str!("../../assets/smact_icsd24_counts.json"))
            .expect("embedded smact_icsd24_counts.json is valid");
        f.counts
            .into_iter()
            .filter_map(|(s, c)| {
                let e = Element::from_symbol(&s).ok()?;
                Some((e, c.into_iter().filter_map(|(q, n)| Some((q.parse().ok()?, n))).collect()))
            })
            .collect()
    });
    let Some(c) = t.get(&e) else { return (0.5f64).ln() };
    let total: u32 = c.values().sum();
    let n = c.get(&q).map_or(0.5, |&n| f64::from(n));
    (n / f64::from(total.max(1))).ln()
}

/// A state reported for less than this share of an element's ICSD-24 compounds is rare (O⁻ 0.4 %,
/// Cl⁷⁺ 3.8 %, Fe⁴⁺ 1.2 %; Pb⁴⁺ 6.3 % is not).
pub const RARE_STATE_SHARE: f64 = 0.05;

/// The share of an element's ICSD-24 compounds that report it in state `q` (SMACT's counts).
pub fn state_share(e: Element, q: i8) -> f64 {
    log_frequency(e, q).exp()
}

/// The rare states ([`RARE_STATE_SHARE`]) a charge-balanced composition relies on: those of its most
/// plausible assignment ([`most_plausible`]), with their shares. Empty when every state is common;
/// `None` when the composition has no charge-balanced assignment (single elements and alloys included).
pub fn rare_states(comp: &Composition, opts: ValidityOptions) -> Option<Vec<(Element, i8, f64)>> {
    let states = most_plausible(comp, opts)?;
    Some(
        states
            .into_iter()
            .map(|(e, q)| (e, q, state_share(e, q)))
            .filter(|(_, _, share)| *share < RARE_STATE_SHARE)
            .collect(),
    )
}

/// The most plausible charge-balanced assignment of one oxidation state per element (in formula
/// order): the one whose states are most often reported in the ICSD, i.e. that
/// maximises Σ ln(count(e, q) / Σ_q count(e, q)) over SMACT's ICSD-24 counts, among the assignments
/// [`validity`] accepts (the Pauling test too, if asked). `None` where there is none.
/// Exact by enumeration up to 100,000 combinations; beyond, a dynamic programme over the partial
/// charge keeps the 32 best partial assignments per charge (per electronegativity cut, with the
/// Pauling test).
pub fn most_plausible(comp: &Composition, opts: ValidityOptions) -> Option<Vec<(Element, i8)>> {
    let els: Vec<(Element, f64)> = comp.iter().collect();
    if els.len() < 2 {
        return None;
    }
    let counts: Vec<u64> = els.iter().map(|(_, a)| a.trunc().max(0.0) as u64).collect();
    let g = counts.iter().fold(0, |g, c| gcd(g, *c)).max(1);
    let n: Vec<i64> = counts.iter().map(|c| (c / g) as i64).collect();
    let states: Vec<&[i8]> = els.iter().map(|(e, _)| oxidation_states(*e, opts.oxidation_set)).collect();
    if states.iter().any(|s| s.is_empty()) {
        return None;
    }
    let eneg: Vec<Option<f64>> = els.iter().map(|(e, _)| pauling_electronegativity(*e)).collect();
    let score = |qs: &[i8]| -> f64 { els.iter().zip(qs).map(|((e, _), q)| log_frequency(*e, *q)).sum() };
    let accept = |qs: &[i8]| !opts.use_pauling_test || pauling_test(qs, &eneg);
    const K: usize = 32;
    let combos = states.iter().try_fold(1u64, |acc, s| acc.checked_mul(s.len() as u64)).unwrap_or(u64::MAX);
    let mut candidates: Vec<(f64, Vec<i8>)> = Vec::new();
    if combos <= 100_000 {
        let mut idx = vec![0usize; els.len()];
        loop {
            let qs: Vec<i8> = idx.iter().enumerate().map(|(i, &k)| states[i][k]).collect();
            if qs.iter().zip(&n).map(|(q, n)| i64::from(*q) * n).sum::<i64>() == 0 && accept(&qs) {
                candidates.push((score(&qs), qs));
            }
            if !next_combination(&mut idx, |i| states[i].len()) {
                break;
            }
        }
    } else {
        // With the Pauling test, every cut by electronegativity (cations below, anions above) in turn, so
        // each assignment the programme builds passes it; then charge so far → the K best partial
        // assignments reaching it.
        let x: Vec<f64> = eneg.iter().map(|e| e.unwrap_or(f64::NAN)).collect();
        let cuts: Vec<Option<f64>> = if !opts.use_pauling_test {
            vec![None]
        } else if x.iter().any(|v| v.is_nan()) {
            Vec::new() // an unknown electronegativity fails every assignment
        } else {
            let mut c: Vec<f64> = x.clone();
            c.sort_by(f64::total_cmp);
            c.dedup();
            c.push(f64::INFINITY);
            c.into_iter().map(Some).collect()
        };
        for cut in cuts {
            let allowed = |i: usize, q: i8| match cut {
                None => true,
                Some(t) => {
                    if x[i] < t {
                        q >= 0
                    } else {
                        q <= 0
                    }
                }
            };
            let mut layer: HashMap<i64, Vec<(f64, Vec<i8>)>> = HashMap::from([(0, vec![(0.0, Vec::new())])]);
            for (i, (e, _)) in els.iter().enumerate() {
                let mut next: HashMap<i64, Vec<(f64, Vec<i8>)>> = HashMap::new();
                for (charge, partials) in &layer {
                    for &q in states[i].iter().filter(|&&q| allowed(i, q)) {
                        let slot = next.entry(charge + i64::from(q) * n[i]).or_default();
                        for (sc, qs) in partials {
                            let mut qs = qs.clone();
                            qs.push(q);
                            slot.push((sc + log_frequency(*e, q), qs));
                        }
                    }
                }
                for v in next.values_mut() {
                    v.sort_by(|a, b| b.0.total_cmp(&a.0));
                    v.truncate(K);
                }
                layer = next;
            }
            candidates.extend(layer.remove(&0).unwrap_or_default().into_iter().filter(|(_, qs)| accept(qs)));
        }
    }
    let best = candidates.into_iter().max_by(|a, b| a.0.total_cmp(&b.0))?;
    let mut out: Vec<(Element, i8)> = els.iter().zip(best.1).map(|((e, _), q)| (*e, q)).collect();
    // In formula order (pymatgen's: by electronegativity), as chemists read `Sr2+ Ti4+ O2-`.
    let order = comp.sorted_elements();
    out.sort_by_key(|(e, _)| order.iter().position(|x| x == e));
    Some(out)
}

/// SMACT's `smact_validity`: amounts are truncated to integers and divided by their gcd, then every
/// combination of one oxidation state per element is tried for Σ qᵢ nᵢ = 0 (and the Pauling test).
pub fn validity(comp: &Composition, opts: ValidityOptions) -> Verdict {
    let p = match prepare(comp, opts) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let combos = p.states.iter().try_fold(1u64, |acc, s| acc.checked_mul(s.len() as u64)).unwrap_or(u64::MAX);
    if combos > DFS_COMBINATIONS {
        return by_charge_sums(&p, opts.use_pauling_test);
    }
    let Prepared { els, n, states, eneg } = p;
    // Depth-first over one state per element in itertools.product order, pruning branches whose
    // remaining elements cannot bring the charge back to zero: same first hit as SMACT's exhaustive
    // loop, without its exponential cost on many-element compositions.
    let charge = |i: usize, k: usize| states[i][k] as i64 * n[i];
    let mut lo_rest = vec![0i64; els.len() + 1];
    let mut hi_rest = vec![0i64; els.len() + 1];
    for i in (0..els.len()).rev() {
        let qs: Vec<i64> = (0..states[i].len()).map(|k| charge(i, k)).collect();
        lo_rest[i] = lo_rest[i + 1] + qs.iter().copied().min().unwrap_or(0);
        hi_rest[i] = hi_rest[i + 1] + qs.iter().copied().max().unwrap_or(0);
    }
    let mut idx = vec![0usize; els.len()];
    let mut balanced = None;
    let mut depth = 0usize;
    let mut sum = vec![0i64; els.len() + 1];
    loop {
        // Try idx[depth] (sum[depth] is the charge of elements before `depth`).
        if idx[depth] < states[depth].len() {
            let q = sum[depth] + charge(depth, idx[depth]);
            let feasible = q + lo_rest[depth + 1] <= 0 && q + hi_rest[depth + 1] >= 0;
            if feasible && depth + 1 < els.len() {
                sum[depth + 1] = q;
                depth += 1;
                idx[depth] = 0;
                continue;
            }
            if feasible && q == 0 {
                let chosen: Vec<i8> = idx.iter().enumerate().map(|(i, &k)| states[i][k]).collect();
                let assignment = || els.iter().zip(&chosen).map(|((e, _), q)| (*e, *q)).collect::<Vec<_>>();
                if !opts.use_pauling_test || pauling_test(&chosen, &eneg) {
                    return Verdict::ChargeBalanced(assignment());
                }
                balanced.get_or_insert_with(assignment);
            }
            idx[depth] += 1;
        } else {
            if depth == 0 {
                return balanced.map_or(Verdict::NotChargeBalanced, Verdict::FailsPauling);
            }
            depth -= 1;
            idx[depth] += 1;
        }
    }
}

/// What both ways of deciding [`validity`] start from.
struct Prepared {
    els: Vec<(Element, f64)>,
    /// Amounts truncated to integers and divided by their gcd.
    n: Vec<i64>,
    states: Vec<&'static [i8]>,
    eneg: Vec<Option<f64>>,
}

/// The composition's elements, integer amounts, states and electronegativities, or the verdict that needs
/// no charges (a single element, an alloy, an element without oxidation states).
fn prepare(comp: &Composition, opts: ValidityOptions) -> Result<Prepared, Verdict> {
    let els: Vec<(Element, f64)> = comp.iter().collect();
    if els.len() <= 1 {
        return Err(Verdict::Element);
    }
    if opts.include_alloys && els.iter().all(|(e, _)| is_metal(*e)) {
        return Err(Verdict::Alloy);
    }
    let counts: Vec<u64> = els.iter().map(|(_, a)| a.trunc().max(0.0) as u64).collect();
    let g = counts.iter().fold(0, |g, c| gcd(g, *c)).max(1);
    let n: Vec<i64> = counts.iter().map(|c| (c / g) as i64).collect();
    let mut states = Vec::with_capacity(els.len());
    for (e, _) in &els {
        let s = oxidation_states(*e, opts.oxidation_set);
        if s.is_empty() {
            return Err(Verdict::NoOxidationStates(*e));
        }
        states.push(s);
    }
    let eneg: Vec<Option<f64>> = els.iter().map(|(e, _)| pauling_electronegativity(*e)).collect();
    Ok(Prepared { els, n, states, eneg })
}

/// [`validity`] decided by charge sums whatever the number of combinations (what it does itself beyond
/// [`DFS_COMBINATIONS`]): the same valid/invalid verdicts; the assignment shown may be another
/// charge-balanced one than SMACT's first hit.
pub fn validity_by_charge_sums(comp: &Composition, opts: ValidityOptions) -> Verdict {
    match prepare(comp, opts) {
        Ok(p) => by_charge_sums(&p, opts.use_pauling_test),
        Err(v) => v,
    }
}

/// Above this many combinations of one state per element, [`validity`] decides by charge sums instead
/// of walking the combinations (its answer is the same; the assignment it shows may differ from SMACT's
/// first hit, which only the walk reproduces).
const DFS_COMBINATIONS: u64 = 1_000_000;

/// [`validity`] in time polynomial in the number of elements: charge balance is a bounded subset sum, so
/// a pass over the elements keeps every reachable partial charge (with one way to reach it). With the
/// Pauling test, an assignment passes iff every cation is less electronegative than every anion, so
/// each cut of the elements by electronegativity (cations below it, anions above, elements of one
/// electronegativity on one side) is tried with states of the matching sign only.
fn by_charge_sums(p: &Prepared, use_pauling_test: bool) -> Verdict {
    let Prepared { els, n, states, eneg } = p;
    let assignment = |qs: Vec<i8>| els.iter().zip(qs).map(|((e, _), q)| (*e, q)).collect::<Vec<_>>();
    let all = |_: usize, _: i8| true;
    let Some(any) = balance_by_charge_sums(states, n, &all) else { return Verdict::NotChargeBalanced };
    if !use_pauling_test {
        return Verdict::ChargeBalanced(assignment(any));
    }
    // A pair with an unknown electronegativity fails SMACT's test whatever the charges.
    if eneg.iter().all(Option::is_some) {
        let x: Vec<f64> = eneg.iter().map(|e| e.unwrap_or(f64::NAN)).collect();
        let mut cuts: Vec<f64> = x.clone();
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        cuts.push(f64::INFINITY);
        for cut in cuts {
            // Elements below `cut` may be cations, the rest anions (zero charge fits either side).
            let allowed = |i: usize, q: i8| if x[i] < cut { q >= 0 } else { q <= 0 };
            if let Some(qs) = balance_by_charge_sums(states, n, &allowed)
                && pauling_test(&qs, eneg)
            {
                return Verdict::ChargeBalanced(assignment(qs));
            }
        }
    }
    Verdict::FailsPauling(assignment(any))
}

/// One state per element (`allowed` filters them) with Σ qᵢ nᵢ = 0, if any: the reachable partial
/// charges after each element, each with the state and previous charge that first reached it.
fn balance_by_charge_sums(states: &[&[i8]], n: &[i64], allowed: &dyn Fn(usize, i8) -> bool) -> Option<Vec<i8>> {
    let mut layers: Vec<HashMap<i64, (i8, i64)>> = Vec::with_capacity(states.len());
    let mut reach: Vec<i64> = vec![0];
    for (i, qs) in states.iter().enumerate() {
        let mut next: HashMap<i64, (i8, i64)> = HashMap::new();
        for &sum in &reach {
            for &q in qs.iter().filter(|&&q| allowed(i, q)) {
                next.entry(sum + i64::from(q) * n[i]).or_insert((q, sum));
            }
        }
        if next.is_empty() {
            return None;
        }
        let mut keys: Vec<i64> = next.keys().copied().collect();
        keys.sort_unstable();
        reach = keys;
        layers.push(next);
    }
    let mut sum = 0i64;
    let mut out = vec![0i8; states.len()];
    for (i, layer) in layers.iter().enumerate().rev() {
        let &(q, prev) = layer.get(&sum)?;
        out[i] = q;
        sum = prev;
    }
    Some(out)
}

/// Advance `idx` to the next combination with `idx[i] < len(i)`, last position fastest (the order of
/// `itertools.product`); false after the last one.
fn next_combination(idx: &mut [usize], len: impl Fn(usize) -> usize) -> bool {
    for i in (0..idx.len()).rev() {
        idx[i] += 1;
        if idx[i] < len(i) {
            return true;
        }
        idx[i] = 0;
    }
    false
}

/// One charge-neutral stoichiometry of an element set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeutralStoichiometry {
    /// One oxidation state per element, in the input order.
    pub oxidation_states: Vec<i8>,
    /// Coprime amounts 1..=threshold, in the input order.
    pub amounts: Vec<u32>,
}

/// Most (oxidation-state combination, amount vector) pairs [`neutral_stoichiometries`] is asked to try:
/// 10⁸, a few seconds. SMACT enumerates them all, and the count grows as (states × threshold)^elements,
/// so a larger question is refused up front rather than left running for hours.
pub const MAX_STOICHIOMETRY_ENUMERATION: f64 = 1e8;

/// How many (oxidation-state combination, amount vector) pairs [`neutral_stoichiometries`] tries for
/// `elements` with amounts up to `threshold`: Π |states| × thresholdᵏ (as f64: it may exceed u64).
pub fn stoichiometry_enumeration_size(elements: &[Element], threshold: u32, set: OxidationSet) -> f64 {
    elements.iter().map(|e| oxidation_states(*e, set).len() as f64 * threshold as f64).product()
}

/// SMACT's `smact_filter`: for every combination of oxidation states (table `set`) passing the Pauling
/// test, every coprime amount vector in 1..=threshold with Σ qᵢ nᵢ = 0, in SMACT's order. `Err` names an
/// element without oxidation states.
pub fn neutral_stoichiometries(
    elements: &[Element],
    threshold: u32,
    set: OxidationSet,
) -> Result<Vec<NeutralStoichiometry>, Element> {
    let mut states = Vec::with_capacity(elements.len());
    for e in elements {
        let s = oxidation_states(*e, set);
        if s.is_empty() {
            return Err(*e);
        }
        states.push(s);
    }
    let eneg: Vec<Option<f64>> = elements.iter().map(|e| pauling_electronegativity(*e)).collect();
    let k = elements.len();
    let mut out = Vec::new();
    if k == 0 || threshold == 0 {
        return Ok(out);
    }
    let mut idx = vec![0usize; k];
    loop {
        let q: Vec<i8> = idx.iter().enumerate().map(|(i, &j)| states[i][j]).collect();
        if pauling_test(&q, &eneg) {
            // Amounts 1..=threshold, held as offsets 0..threshold.
            let mut x = vec![0usize; k];
            loop {
                let charge: i64 = x.iter().zip(&q).map(|(n, q)| (*n as i64 + 1) * *q as i64).sum();
                if charge == 0 && x.iter().fold(0u64, |g, n| gcd(g, *n as u64 + 1)) == 1 {
                    out.push(NeutralStoichiometry {
                        oxidation_states: q.clone(),
                        amounts: x.iter().map(|n| *n as u32 + 1).collect(),
                    });
                }
                if !next_combination(&mut x, |_| threshold as usize) {
                    break;
                }
            }
        }
        if !next_combination(&mut idx, |i| states[i].len()) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(f: &str) -> Verdict {
        validity(&Composition::from_formula(f).unwrap(), ValidityOptions::default())
    }

    /// The loophole formulas lean on peroxide O⁻ or Cl⁷⁺; ordinary compounds do not.
    #[test]
    fn rare_states_flag_the_loopholes() {
        let rare = |f: &str| rare_states(&Composition::from_formula(f).unwrap(), ValidityOptions::default());
        for f in ["Li2O2", "NaClF8", "Li2ClO9"] {
            let r = rare(f).unwrap_or_else(|| panic!("{f} is charge-balanced"));
            assert!(!r.is_empty(), "{f}: {r:?}");
            assert!(r.iter().all(|(_, _, share)| *share < RARE_STATE_SHARE));
        }
        for f in ["Li2O", "Fe2O3", "NaCl", "PbO2", "LiFePO4"] {
            assert_eq!(rare(f), Some(vec![]), "{f}");
        }
        assert_eq!(rare("CuZn"), None);
        let o = Element::from_symbol("O").unwrap();
        assert!((state_share(o, -2) - 0.9956).abs() < 1e-3);
    }

    #[test]
    fn familiar_compounds() {
        let fe = Element::from_symbol("Fe").unwrap();
        let o = Element::from_symbol("O").unwrap();
        assert_eq!(v("Fe2O3"), Verdict::ChargeBalanced(vec![(o, -2), (fe, 3)]));
        assert!(v("NaCl").is_valid() && v("LiFePO4").is_valid() && v("Si").is_valid());
        assert_eq!(v("CuZn"), Verdict::Alloy);
        assert!(!v("NaCl2").is_valid());
        // Fe3O4 needs mixed valence, which SMACT's default does not allow.
        assert_eq!(v("Fe3O4"), Verdict::NotChargeBalanced);
        assert!(matches!(v("He2O"), Verdict::NoOxidationStates(_)));
        assert!(pauling_test(&[1, -1], &[Some(0.9), Some(3.2)]));
        assert!(!pauling_test(&[1, -1], &[Some(3.2), Some(3.2)]));
        assert!(!pauling_test(&[1, 1], &[None, Some(1.0)]));
    }

    #[test]
    fn neutral_stoichiometries_of_a_binary() {
        let els: Vec<Element> = ["Fe", "O"].iter().map(|s| Element::from_symbol(s).unwrap()).collect();
        let r = neutral_stoichiometries(&els, 8, OxidationSet::Icsd24).unwrap();
        let amounts: Vec<Vec<u32>> = r.iter().map(|s| s.amounts.clone()).collect();
        assert!(amounts.contains(&vec![2, 3]) && amounts.contains(&vec![1, 1]));
        assert!(r.iter().all(|s| s.amounts[0] as i64 * s.oxidation_states[0] as i64
            + s.amounts[1] as i64 * s.oxidation_states[1] as i64
            == 0));
    }
}
