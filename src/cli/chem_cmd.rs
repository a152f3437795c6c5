//! `geode chem …`: SMACT's chemical rules and Hautier substitutions from the command line.

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use crate::chem::oxidation::{self, OxidationSet, ValidityOptions, Verdict};
use crate::chem::substitution::{Direction, SubstitutionTable};
use crate::crystal::{Composition, Element};

#[derive(Debug, Subcommand)]
pub enum ChemAction {
    /// SMACT validity (charge neutrality with ICSD-24 oxidation states and the Pauling test) of formulas
    Validate {
        /// Formulas to check, e.g. Fe2O3 LiFePO4
        #[arg(required = true)]
        formulas: Vec<String>,
        /// Metals-only compositions are not valid automatically
        #[arg(long)]
        no_alloys: bool,
        /// Skip the Pauling electronegativity test
        #[arg(long)]
        no_pauling: bool,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Charge-neutral stoichiometries of an element set (SMACT's smact_filter), e.g. `Li Fe O`
    Stoichiometries {
        /// Element symbols, e.g. Li Fe O
        #[arg(required = true)]
        elements: Vec<String>,
        /// Largest amount of any element
        #[arg(long, default_value_t = 8, value_parser = crate::cli::whole_u32)]
        threshold: u32,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
    /// Hautier substitutions of an oxidation-state-decorated composition, e.g. `Fe3+:2 O2-:3`
    Substitute {
        /// Species with amounts, `SPECIES:AMOUNT` (amount 1 if left out)
        #[arg(required = true)]
        species: Vec<String>,
        /// Keep suggestions with probability above this
        #[arg(long, default_value_t = 1e-3, value_parser = crate::cli::probability)]
        threshold: f64,
        /// Compositions that turn into this one (default: compositions this one turns into)
        #[arg(long)]
        to_this: bool,
        /// Print one JSON object per line instead of text
        #[arg(long)]
        json: bool,
    },
}

pub fn run(action: ChemAction) -> anyhow::Result<i32> {
    match action {
        ChemAction::Validate { formulas, no_alloys, no_pauling, json } => validate(
            &formulas,
            ValidityOptions { include_alloys: !no_alloys, use_pauling_test: !no_pauling, ..Default::default() },
            json,
        ),
        ChemAction::Stoichiometries { elements, threshold, json } => stoichiometries(&elements, threshold, json),
        ChemAction::Substitute { species, threshold, to_this, json } => {
            substitute(&species, threshold, if to_this { Direction::ToThis } else { Direction::FromThis }, json)
        }
    }
}

fn validate(formulas: &[String], opts: ValidityOptions, json_out: bool) -> anyhow::Result<i32> {
    let mut bad = 0;
    for f in formulas {
        let comp = match Composition::from_formula(f) {
            Ok(c) => c,
            Err(e) => {
                bad += 1;
                if json_out {
                    println!("{}", json!({"formula": f, "error": e.to_string()}));
                } else {
                    eprintln!("{e}");
                }
                continue;
            }
        };
        // The verdict is SMACT's; the assignment shown is the most plausible one (ICSD-24 frequencies).
        let v = match oxidation::validity(&comp, opts) {
            Verdict::ChargeBalanced(first) => {
                Verdict::ChargeBalanced(oxidation::most_plausible(&comp, opts).unwrap_or(first))
            }
            other => other,
        };
        if json_out {
            let states = match &v {
                Verdict::ChargeBalanced(s) => {
                    Some(s.iter().map(|(e, q)| (e.symbol().to_string(), json!(q))).collect::<serde_json::Map<_, _>>())
                }
                _ => None,
            };
            let reason = match &v {
                Verdict::Element => "element",
                Verdict::Alloy => "alloy",
                Verdict::ChargeBalanced(_) => "charge_balanced",
                Verdict::NoOxidationStates(_) => "no_oxidation_states",
                Verdict::FailsPauling(_) => "fails_pauling",
                Verdict::NotChargeBalanced => "not_charge_balanced",
            };
            println!(
                "{}",
                json!({"formula": f, "reduced_formula": comp.reduced_formula(), "valid": v.is_valid(), "reason": reason, "oxidation_states": states, "explanation": v.explain()})
            );
        } else {
            println!("{:<20} {:<8} {}", f, if v.is_valid() { "valid" } else { "invalid" }, v.explain());
        }
    }
    Ok(if bad > 0 { 1 } else { 0 })
}

fn stoichiometries(symbols: &[String], threshold: u32, json_out: bool) -> anyhow::Result<i32> {
    let els: Vec<Element> = symbols.iter().map(|s| Element::from_symbol(s)).collect::<Result<_, _>>()?;
    let size = oxidation::stoichiometry_enumeration_size(&els, threshold, OxidationSet::Icsd24);
    if size > oxidation::MAX_STOICHIOMETRY_ENUMERATION {
        bail!(
            "{} elements with amounts up to {threshold} means {size:.1e} combinations of oxidation states and amounts \
             to try (the limit is {:.0e}, a few seconds): give fewer elements or a lower --threshold",
            els.len(),
            oxidation::MAX_STOICHIOMETRY_ENUMERATION
        );
    }
    let list = oxidation::neutral_stoichiometries(&els, threshold, OxidationSet::Icsd24)
        .map_err(|e| anyhow::anyhow!("{e} has no ICSD-24 oxidation state"))?;
    for s in &list {
        let formula = Composition::from_pairs(els.iter().zip(&s.amounts).map(|(e, n)| (*e, *n as f64)))
            .formula()
            .replace(' ', "");
        if json_out {
            println!(
                "{}",
                json!({"formula": formula, "elements": symbols, "oxidation_states": s.oxidation_states, "amounts": s.amounts})
            );
        } else {
            let q: Vec<String> = els.iter().zip(&s.oxidation_states).map(|(e, q)| format!("{e}{q:+}")).collect();
            println!("{formula:<16} {}", q.join(" "));
        }
    }
    if !json_out {
        eprintln!("{} charge-neutral stoichiometries (amounts ≤ {threshold})", list.len());
    }
    Ok(0)
}

fn substitute(species: &[String], threshold: f64, dir: Direction, json_out: bool) -> anyhow::Result<i32> {
    let mut comp = Vec::new();
    for s in species {
        let (sp, n) = s.split_once(':').unwrap_or((s, "1"));
        let n: f64 = n.parse().with_context(|| format!("amount {n:?} of {sp} is not a number"))?;
        if !(n.is_finite() && n > 0.0 && n <= crate::crystal::composition::MAX_AMOUNT) {
            bail!("amount {n} of {sp} must be a positive number up to {}", crate::crystal::composition::MAX_AMOUNT);
        }
        if Element::from_label(sp).ok().and_then(|(_, q)| q).is_none() {
            bail!("{sp:?} is not a species with an oxidation state (write e.g. Fe3+ or O2-)");
        }
        // A species given twice is one question about the merged composition, not two.
        if let Some(prev) = comp.iter_mut().find(|(x, _): &&mut (String, f64)| x == sp) {
            bail!("{sp} is given twice (amounts {} and {n}): give it once, e.g. {sp}:{}", prev.1, prev.1 + n);
        }
        comp.push((sp.to_string(), n));
    }
    let preds = SubstitutionTable::embedded().predict(&comp, threshold, dir).map_err(anyhow::Error::msg)?;
    for p in &preds {
        if json_out {
            println!("{}", json!({"probability": p.probability, "substitutions": p.substitutions}));
        } else {
            let subs: Vec<String> =
                p.substitutions.iter().filter(|(a, b)| a != b).map(|(a, b)| format!("{a}→{b}")).collect();
            println!(
                "{:>10.5}  {}",
                p.probability,
                if subs.is_empty() { "(identity)".to_string() } else { subs.join(", ") }
            );
        }
    }
    Ok(0)
}
