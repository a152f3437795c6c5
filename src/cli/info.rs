//! `geode info` and `geode convert`.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::crystal::Structure;
use crate::io::{self, Format, IoError};

/// Facts about one structure, as printed by `geode info --json`.
pub fn describe(s: &Structure, symprec: f64) -> Value {
    let p = s.lattice.params();
    // On the primitive cell of the translations: a 10,000-site supercell answers as its few-site cell.
    let sym = s.space_group(symprec);
    // The shortest distance of any site is the minimum periodic distance validity needs: measured once.
    let nn_min = s.nearest_neighbor_distances().into_iter().fold(f64::INFINITY, f64::min);
    let validity = crate::crystal::validity::StructuralValidity::from_measures(nn_min, s.volume());
    json!({
        "formula": s.reduced_formula(),
        "full_formula": s.composition().formula(),
        "natoms": s.n_sites(),
        "volume": s.volume(),
        "density": s.density(),
        "space_group_number": sym.as_ref().ok().map(|x| x.0),
        "space_group_symbol": sym.as_ref().ok().map(|x| x.1.clone()),
        "symprec": symprec,
        "lattice": {"a": p.a, "b": p.b, "c": p.c, "alpha": p.alpha_deg, "beta": p.beta_deg, "gamma": p.gamma_deg},
        "valid": validity.valid,
        "min_distance": validity.min_distance_ang,
        "nearest_neighbor_distance": if nn_min.is_finite() { Some(nn_min) } else { None },
    })
}

fn human(file: &str, index: Option<usize>, s: &Structure, v: &Value) -> String {
    let mut out = String::new();
    let tag = index.map(|i| format!(" [{i}]")).unwrap_or_default();
    out.push_str(&format!("{file}{tag}\n"));
    out.push_str(&format!(
        "  formula         {} ({} atoms; {})\n",
        v["formula"].as_str().unwrap_or("?"),
        s.n_sites(),
        v["full_formula"].as_str().unwrap_or("")
    ));
    match (v["space_group_symbol"].as_str(), v["space_group_number"].as_u64()) {
        (Some(sym), Some(n)) => out.push_str(&format!("  space group     {sym} ({n}) at symprec {} Å\n", v["symprec"])),
        _ => out.push_str("  space group     not determined\n"),
    }
    let p = s.lattice.params();
    out.push_str(&format!(
        "  lattice         a={:.4} b={:.4} c={:.4} Å  α={:.3} β={:.3} γ={:.3}°\n",
        p.a, p.b, p.c, p.alpha_deg, p.beta_deg, p.gamma_deg
    ));
    out.push_str(&format!("  volume          {:.4} Å³\n", s.volume()));
    out.push_str(&format!("  density         {:.4} g/cm³\n", s.density()));
    let valid = if v["valid"].as_bool() == Some(true) { "valid" } else { "INVALID" };
    out.push_str(&format!(
        "  validity        {valid} (min periodic distance {:.3} Å, needs ≥ 0.5 Å; volume needs ≥ 0.1 Å³)\n",
        v["min_distance"].as_f64().unwrap_or(f64::NAN)
    ));
    if let Some(nn) = v["nearest_neighbor_distance"].as_f64() {
        out.push_str(&format!("  nearest neighbour {nn:.4} Å\n"));
    }
    out
}

/// `geode info`: prints each structure; returns exit code 1 if any file failed.
pub fn run(files: &[impl AsRef<Path>], json_out: bool, symprec: f64) -> anyhow::Result<i32> {
    let mut failed = false;
    for f in files {
        let path = f.as_ref();
        let file = path.display().to_string();
        match io::read_structures(path) {
            Ok(structures) => {
                let many = structures.len() > 1;
                for (i, s) in structures.iter().enumerate() {
                    let mut v = describe(s, symprec);
                    let index = many.then_some(i);
                    if json_out {
                        let obj = v.as_object_mut().expect("describe returns an object");
                        obj.insert("file".into(), file.clone().into());
                        if let Some(i) = index {
                            obj.insert("index".into(), i.into());
                        }
                        println!("{v}");
                    } else {
                        print!("{}", human(&file, index, s, &v));
                    }
                }
            }
            Err(e) => {
                failed = true;
                if json_out {
                    println!("{}", json!({"file": file, "error": e.to_string()}));
                } else {
                    eprintln!("error: {e}");
                }
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn parse_format(name: &str) -> anyhow::Result<Format> {
    Format::from_name(name)
        .with_context(|| format!("unknown format {name:?}; expected one of cif, poscar, extxyz, db, json"))
}

/// `geode convert IN OUT`.
pub fn convert(
    input: &Path,
    output: &Path,
    from: Option<&str>,
    to: Option<&str>,
    order_partial: bool,
) -> anyhow::Result<()> {
    let from = from.map(parse_format).transpose()?;
    let to = match to {
        Some(t) => parse_format(t)?,
        None => Format::from_path(output).with_context(|| {
            format!("cannot tell the output format from {}; pass --to cif|poscar|extxyz|json", output.display())
        })?,
    };
    let structures = match (from, order_partial) {
        (Some(Format::Cif), true) | (None, true) => {
            let text = std::fs::read_to_string(input).map_err(|e| IoError::io(input, e))?;
            io::cif::parse(
                &text,
                &input.display().to_string(),
                &io::cif::CifOptions { order_partial_occupancies: true, ..Default::default() },
            )?
        }
        (Some(f), _) => io::read_structures_as(input, f)?,
        (None, false) => io::read_structures(input)?,
    };
    if structures.is_empty() {
        bail!("no structures in {}", input.display());
    }
    io::write_structures(output, &structures, Some(to))?;
    eprintln!("wrote {} structure(s) to {}", structures.len(), output.display());
    Ok(())
}
