//! `geode enumerate`: candidates by substitution into template structures (dataset entries or files),
//! by Hautier probability or exhaustively over an element set, deduplicated; optionally written as CIFs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;

use crate::crystal::Element;
use crate::data::Dataset;
use crate::io;
use crate::search::enumerate::{self, Template};

/// Templates from structure files, AFLOW prototypes (`aflow:KEY`) or dataset keys (id, `oqmd-icsd-<id>`,
/// label, or a reduced formula: every entry with it).
fn templates(keys: &[String]) -> anyhow::Result<Vec<Template>> {
    let ds = Dataset::embedded();
    let mut out = Vec::new();
    for k in keys {
        if Path::new(k).is_file() {
            for (i, s) in io::read_structures(Path::new(k))?.into_iter().enumerate() {
                out.push(Template { name: format!("{k}#{i}"), prototype: String::new(), structure: s });
            }
        } else {
            let hits = enumerate::templates_for(k, ds);
            if hits.is_empty() {
                bail!(
                    "{k:?} is neither a file, a dataset id or label, a formula in the dataset, nor an AFLOW prototype (aflow:B1, aflow:perovskite, aflow:AB2, aflow:*)"
                );
            }
            out.extend(hits);
        }
    }
    Ok(out)
}

pub fn run(
    keys: &[String],
    threshold: f64,
    elements: Option<&str>,
    out: Option<&PathBuf>,
    json_out: bool,
) -> anyhow::Result<i32> {
    let ts = templates(keys)?;
    let els: Option<Vec<Element>> = elements
        .map(|s| s.split([',', ' ']).filter(|x| !x.is_empty()).map(Element::from_symbol).collect::<Result<_, _>>())
        .transpose()?;
    let mut cands = Vec::new();
    for t in &ts {
        match &els {
            Some(e) => cands.extend(enumerate::exhaustive(t, e, true)),
            None => cands.extend(enumerate::by_probability(t, threshold)),
        }
    }
    let n_raw = cands.len();
    cands.sort_by(|a, b| b.probability.unwrap_or(0.0).total_cmp(&a.probability.unwrap_or(0.0)));
    let cands = enumerate::dedupe(cands, 0.01);
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (i, c) in cands.iter().enumerate() {
        let subs: Vec<String> =
            c.substitutions.iter().filter(|(a, b)| a != b).map(|(a, b)| format!("{a}→{b}")).collect();
        let file = out.map(|d| d.join(format!("{:05}_{}.cif", i, c.reduced_formula())));
        if let Some(f) = &file {
            std::fs::write(f, io::cif::write(&c.structure, &c.reduced_formula()))
                .with_context(|| format!("writing {}", f.display()))?;
        }
        if json_out {
            println!(
                "{}",
                json!({"index": i, "formula": c.reduced_formula(), "template": c.template, "prototype": c.prototype, "probability": c.probability,
                       "substitutions": c.substitutions.iter().map(|(a, b)| [a.symbol(), b.symbol()]).collect::<Vec<_>>(),
                       "volume": c.structure.volume(), "file": file.map(|f| f.display().to_string())})
            );
        } else {
            let p = c.probability.map_or("-".to_string(), |p| format!("{p:.4}"));
            let proto = if c.template.contains(&c.prototype) { "" } else { c.prototype.as_str() };
            println!(
                "{:<5} {:<16} {:>8}  {:<24} from {} {}",
                i,
                c.reduced_formula(),
                p,
                subs.join(", "),
                c.template,
                proto
            );
        }
    }
    if !json_out {
        eprintln!("{} candidates from {} templates ({} before removing duplicates)", cands.len(), ts.len(), n_raw);
    }
    Ok(0)
}
