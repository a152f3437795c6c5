//! The CIF writer: one P1 block laid out like pymatgen's `CifWriter`.

use crate::crystal::Structure;
use crate::crystal::structure::wrap_frac;

/// A value as a CIF token: bare when possible, else quoted.
pub(super) fn cif_value(s: &str) -> String {
    let needs_quote = s.is_empty()
        || s.chars().any(|c| c.is_whitespace())
        || s.starts_with(['_', '#', '$', '\'', '"', ';', '[', ']'])
        || s == "?"
        || s == "."
        || {
            let l = s.to_ascii_lowercase();
            l.starts_with("data_") || l.starts_with("save_") || l == "loop_" || l == "global_" || l == "stop_"
        };
    if !needs_quote {
        s.to_string()
    } else if !s.contains("' ") && !s.ends_with('\'') {
        format!("'{s}'")
    } else if !s.contains("\" ") && !s.ends_with('"') {
        format!("\"{s}\"")
    } else {
        format!("\n;{s}\n;")
    }
}

pub(super) fn block_name_token(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).collect();
    if cleaned.is_empty() { "geode".into() } else { cleaned }
}

/// A label usable as a bare token that every reader keeps as it is.
pub(super) fn plain_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_+-()*.".contains(c))
}

/// Site labels for the writer: the stored `label` site property when every label is plain and unique,
/// else pymatgen's `Fe0`, `O1`, … (symbol plus site index).
pub(super) fn write_labels(s: &Structure) -> Vec<String> {
    let stored: Option<Vec<String>> = s
        .site_properties
        .get("label")
        .filter(|vals| vals.len() == s.n_sites())
        .and_then(|vals| vals.iter().map(|v| v.as_str().filter(|l| plain_label(l)).map(str::to_string)).collect());
    if let Some(labels) = stored {
        let mut sorted = labels.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() == labels.len() {
            return labels;
        }
    }
    s.species().iter().enumerate().map(|(i, e)| format!("{}{}", e.symbol(), i)).collect()
}

/// Fixed-point text without a negative zero.
pub(super) fn fixed(x: f64, decimals: usize) -> String {
    let t = format!("{:.*}", decimals, x);
    if t.starts_with('-') && t[1..].chars().all(|c| c == '0' || c == '.') { t[1..].to_string() } else { t }
}

/// Render `s` as one P1 CIF data block named `block_name`, laid out like pymatgen's `CifWriter`.
pub fn write(s: &Structure, block_name: &str) -> String {
    let p = s.lattice.params();
    let comp = s.composition();
    let (reduced, factor) = comp.reduced_formula_and_factor();
    let z = factor.round().max(1.0) as u64;
    let mut out = String::with_capacity(1024 + 96 * s.n_sites());
    out.push_str("# generated using Geode\n");
    out.push_str(&format!("data_{}\n", block_name_token(block_name)));
    out.push_str("_symmetry_space_group_name_H-M   'P 1'\n");
    for (tag, v) in [
        ("_cell_length_a", p.a),
        ("_cell_length_b", p.b),
        ("_cell_length_c", p.c),
        ("_cell_angle_alpha", p.alpha_deg),
        ("_cell_angle_beta", p.beta_deg),
        ("_cell_angle_gamma", p.gamma_deg),
    ] {
        out.push_str(&format!("{tag}   {}\n", fixed(v, 8)));
    }
    out.push_str("_symmetry_Int_Tables_number   1\n");
    out.push_str(&format!("_chemical_formula_structural   {}\n", cif_value(&reduced)));
    out.push_str(&format!("_chemical_formula_sum   {}\n", cif_value(&comp.formula())));
    out.push_str(&format!("_cell_volume   {}\n", fixed(s.volume(), 8)));
    out.push_str(&format!("_cell_formula_units_Z   {z}\n"));
    out.push_str("loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\n");
    out.push_str("loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_symmetry_multiplicity\n");
    out.push_str(" _atom_site_fract_x\n _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n");
    let labels = write_labels(s);
    for ((e, f), label) in s.species().iter().zip(s.frac_coords()).zip(&labels) {
        let w = wrap_frac(f);
        out.push_str(&format!(
            "  {}  {}  1  {}  {}  {}  1\n",
            e.symbol(),
            label,
            fixed(w[0], 10),
            fixed(w[1], 10),
            fixed(w[2], 10)
        ));
    }
    out
}
