//! Constraints and objectives on predicted properties, uncertainty-aware: a constraint such as
//! `band_gap in [1.1, 1.8]` or `e_above_hull < 0.05` is met with a probability (Gaussian with the
//! prediction's σ), objectives such as `min formation_energy_per_atom` rank by value or by a confidence
//! bound, and several objectives are ranked by non-dominated sorting with crowding distance (NSGA-II).

use std::collections::BTreeMap;

use crate::data::expr::Expr;
use crate::data::property;

/// A property value with its uncertainty (σ = 0 when exact).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub std: f64,
}

/// `property in [lo, hi]`, `property < x`, `property > x` (`<=`, `>=` read the same). Configs and the
/// store hold it as that text; it is parsed once, where it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub property: String,
    pub lo: f64,
    pub hi: f64,
}

impl Constraint {
    /// Parse `band_gap in [1.1, 1.8]`, `e_above_hull < 0.05`, `formation_energy_per_atom <= 0` (the
    /// grammar of [`crate::data::expr`]; the name must be a registered numeric property).
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let (prop, lo, hi) = Expr::parse_window(text, "constraint").map_err(|e| e.0)?;
        Ok(Constraint { property: prop.name.to_string(), lo, hi })
    }

    /// The text [`Constraint::parse`] reads back.
    pub fn describe(&self) -> String {
        match (self.lo.is_finite(), self.hi.is_finite()) {
            (false, _) => format!("{} < {}", self.property, self.hi),
            (true, false) => format!("{} > {}", self.property, self.lo),
            (true, true) => format!("{} in [{}, {}]", self.property, self.lo, self.hi),
        }
    }

    /// Probability that a value with this estimate lies inside (a step function when σ = 0).
    pub fn probability(&self, e: Estimate) -> f64 {
        let cdf = |x: f64| {
            if x == f64::INFINITY {
                1.0
            } else if x == f64::NEG_INFINITY {
                0.0
            } else if e.std <= 0.0 {
                if e.mean <= x { 1.0 } else { 0.0 }
            } else {
                0.5 * (1.0 + libm::erf((x - e.mean) / (e.std * std::f64::consts::SQRT_2)))
            }
        };
        (cdf(self.hi) - cdf(self.lo)).clamp(0.0, 1.0)
    }
}

/// `min property` or `max property` (text in configs and the store, like [`Constraint`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub property: String,
    pub maximise: bool,
}

impl Objective {
    /// Parse `min NAME` or `max NAME` (`minimise`/`maximise` read the same); NAME is a registered
    /// numeric property.
    pub fn parse(text: &str) -> Result<Objective, String> {
        let t = text.trim();
        let (dir, name) =
            t.split_once(' ').ok_or_else(|| format!("objective {t:?}: write `min name` or `max name`"))?;
        let maximise = match dir {
            "min" | "minimise" | "minimize" => false,
            "max" | "maximise" | "maximize" => true,
            _ => return Err(format!("objective {t:?}: expected min or max, got {dir:?}")),
        };
        let prop = property::lookup(name.trim()).map_err(|e| format!("objective {t:?}: {e}"))?;
        if !prop.is_numeric() {
            return Err(format!("objective {t:?}: {} is text, not a number to minimise or maximise", prop.name));
        }
        Ok(Objective { property: prop.name.to_string(), maximise })
    }

    /// The text [`Objective::parse`] reads back.
    pub fn describe(&self) -> String {
        format!("{} {}", if self.maximise { "max" } else { "min" }, self.property)
    }

    /// The value to minimise: the mean, or a confidence bound `mean ± kσ` (k > 0 is optimistic:
    /// lower bound for minimisation).
    pub fn cost(&self, e: Estimate, k: f64) -> f64 {
        if self.maximise { -(e.mean + k * e.std) } else { e.mean - k * e.std }
    }
}

serde_as_text!(Constraint, describe);
serde_as_text!(Objective, describe);

/// Probability that all constraints hold (treated as independent); missing properties give 0.
pub fn probability_all(constraints: &[Constraint], props: &BTreeMap<String, Estimate>) -> f64 {
    constraints.iter().map(|c| props.get(&c.property).map_or(0.0, |e| c.probability(*e))).product()
}

/// NSGA-II fast non-dominated sorting of cost vectors (all minimised): front index per point (0 = Pareto).
pub fn non_dominated_fronts(costs: &[Vec<f64>]) -> Vec<usize> {
    let n = costs.len();
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y);
    let mut dominated_by = vec![0usize; n];
    let mut dominating: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if i != j && dominates(&costs[i], &costs[j]) {
                dominating[i].push(j);
            } else if i != j && dominates(&costs[j], &costs[i]) {
                dominated_by[i] += 1;
            }
        }
    }
    let mut front = vec![usize::MAX; n];
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut k = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            front[i] = k;
            for &j in &dominating[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        current = next;
        k += 1;
    }
    front
}

/// NSGA-II crowding distance of each point within its front (∞ at the ends of each objective).
#[allow(clippy::needless_range_loop)] // k indexes the objective inside every cost vector
pub fn crowding_distances(costs: &[Vec<f64>], fronts: &[usize]) -> Vec<f64> {
    let n = costs.len();
    let mut dist = vec![0.0; n];
    let m = costs.first().map_or(0, |c| c.len());
    let n_fronts = fronts.iter().copied().filter(|f| *f != usize::MAX).max().map_or(0, |f| f + 1);
    for f in 0..n_fronts {
        let members: Vec<usize> = (0..n).filter(|&i| fronts[i] == f).collect();
        for k in 0..m {
            let mut sorted = members.clone();
            sorted.sort_by(|a, b| costs[*a][k].total_cmp(&costs[*b][k]));
            let (lo, hi) = (costs[sorted[0]][k], costs[*sorted.last().expect("front has members")][k]);
            dist[sorted[0]] = f64::INFINITY;
            dist[*sorted.last().expect("front has members")] = f64::INFINITY;
            if hi > lo {
                for w in 1..sorted.len().saturating_sub(1) {
                    dist[sorted[w]] += (costs[sorted[w + 1]][k] - costs[sorted[w - 1]][k]) / (hi - lo);
                }
            }
        }
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_parse_and_give_probabilities() {
        let c = Constraint::parse("band_gap in [1.1, 1.8]").unwrap();
        assert_eq!((c.lo, c.hi), (1.1, 1.8));
        // Centred in the window with σ = 0.35 (half-width = 1σ): Φ(1) − Φ(−1) = 0.6827.
        assert!((c.probability(Estimate { mean: 1.45, std: 0.35 }) - 0.682_689_492).abs() < 1e-6);
        assert_eq!(c.probability(Estimate { mean: 2.0, std: 0.0 }), 0.0);
        let e = Constraint::parse("e_above_hull < 0.05").unwrap();
        assert_eq!(e.lo, f64::NEG_INFINITY);
        assert!((e.probability(Estimate { mean: 0.05, std: 0.1 }) - 0.5).abs() < 1e-12);
        assert!(Constraint::parse("band_gap in [2, 1]").is_err());
        assert!(Constraint::parse("band gap < 1").is_err());
        assert!(Constraint::parse("band_gap ~ 1").unwrap_err().contains("unexpected"));
        assert!(Constraint::parse("e_above_hul < 0.05").unwrap_err().contains("did you mean e_above_hull?"));
        assert!(Objective::parse("min bandgap").unwrap_err().contains("did you mean band_gap?"));
        assert!(Objective::parse("max formula").unwrap_err().contains("is text"));
        for t in ["band_gap in [1.1, 1.8]", "e_above_hull < 0.05", "band_gap > 0.5"] {
            assert_eq!(Constraint::parse(t).unwrap().describe(), t);
            let json = serde_json::to_string(&Constraint::parse(t).unwrap()).unwrap();
            assert_eq!(serde_json::from_str::<Constraint>(&json).unwrap(), Constraint::parse(t).unwrap());
        }
        assert_eq!(Objective::parse("max band_gap").unwrap().describe(), "max band_gap");
        assert!(serde_json::from_str::<Objective>("\"min bandgap\"").unwrap_err().to_string().contains("band_gap"));
        let o = Objective::parse("max band_gap").unwrap();
        assert!(o.maximise && o.cost(Estimate { mean: 1.0, std: 0.5 }, 1.0) == -1.5);
        assert!(Objective::parse("best band_gap").is_err());
    }

    #[test]
    fn pareto_fronts_and_crowding() {
        // (1,4) (2,2) (4,1) are non-dominated; (3,3) is dominated by (2,2); (5,5) by all.
        let costs = vec![vec![1.0, 4.0], vec![2.0, 2.0], vec![4.0, 1.0], vec![3.0, 3.0], vec![5.0, 5.0]];
        let f = non_dominated_fronts(&costs);
        assert_eq!(f, vec![0, 0, 0, 1, 2]);
        let d = crowding_distances(&costs, &f);
        assert!(d[0].is_infinite() && d[2].is_infinite());
        // Middle point: (4−1)/3 + (4−1)/3 = 2.
        assert!((d[1] - 2.0).abs() < 1e-12);
    }
}
