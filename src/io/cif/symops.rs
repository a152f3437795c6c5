//! Symmetry operations of a block: explicit `x,y,z` lists, Hall symbols, Hermann–Mauguin symbols
//! (with setting suffixes) and International Tables numbers, from moyo's table of the 530 Hall settings.

use nalgebra::{Matrix3, Vector3};

use super::*;
use crate::crystal::LatticeParams;
use crate::io::IoError;

/// A symmetry operation on fractional coordinates: x' = R x + t.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SymOp {
    pub(super) rot: Matrix3<f64>,
    pub(super) trans: Vector3<f64>,
}

impl SymOp {
    pub(super) fn apply(&self, f: &Vector3<f64>) -> Vector3<f64> {
        self.rot * f + self.trans
    }
}

/// One part of an operation (`-x+y`, `1/2+x`, `z-0.25`): coefficients of x, y, z and the translation.
pub(super) fn parse_symop_part(part: &str) -> Result<([f64; 3], f64), String> {
    let chars: Vec<char> = part.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_lowercase()).collect();
    if chars.is_empty() {
        return Err("has an empty part".into());
    }
    let mut row = [0.0; 3];
    let mut t = 0.0;
    let mut i = 0;
    let read_digits = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_digit() || chars[*i] == '.') {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    while i < chars.len() {
        let mut sign = 1.0;
        if chars[i] == '+' || chars[i] == '-' {
            if chars[i] == '-' {
                sign = -1.0;
            }
            i += 1;
        }
        let num = read_digits(&mut i);
        let mut coef = None;
        if !num.is_empty() {
            let mut v = parse_cif_number(&num).ok_or_else(|| format!("has a bad number {num:?}"))?;
            if i < chars.len() && chars[i] == '/' {
                i += 1;
                let den = read_digits(&mut i);
                let d = parse_cif_number(&den)
                    .filter(|d| *d != 0.0)
                    .ok_or_else(|| format!("has a bad fraction {num}/{den}"))?;
                v /= d;
            }
            if i < chars.len() && chars[i] == '*' {
                i += 1;
            }
            coef = Some(v);
        }
        match chars.get(i) {
            Some(&c @ ('x' | 'y' | 'z')) => {
                let k = (c as u8 - b'x') as usize;
                row[k] += sign * coef.unwrap_or(1.0);
                i += 1;
            }
            _ => match coef {
                Some(v) => t += sign * v,
                None => {
                    return Err(match chars.get(i) {
                        Some(c) => format!("has an unexpected character {c:?}"),
                        None => "ends with a sign".into(),
                    });
                }
            },
        }
    }
    Ok((row, t))
}

/// Parse an operation such as `x,y+1/2,-z` or `-x+y, 1/2+x, z-0.25`. A fourth part `+1`/`-1` (time
/// reversal in magnetic CIFs) is ignored.
pub(super) fn parse_symop(s: &str) -> Result<SymOp, String> {
    let mut parts: Vec<&str> = s.split(',').collect();
    if parts.len() == 4 && matches!(parts[3].trim(), "+1" | "-1" | "1") {
        parts.pop();
    }
    if parts.len() != 3 {
        return Err(format!("has {} comma-separated parts", parts.len()));
    }
    let mut rot = Matrix3::zeros();
    let mut trans = Vector3::zeros();
    for (i, p) in parts.iter().enumerate() {
        let (row, t) = parse_symop_part(p)?;
        for (j, v) in row.iter().enumerate() {
            rot[(i, j)] = *v;
        }
        trans[i] = t;
    }
    if rot.iter().any(|v| (v - v.round()).abs() > 1e-6) {
        return Err("has non-integer coefficients of x, y, z".into());
    }
    let det = rot.determinant();
    if (det.abs() - 1.0).abs() > 1e-6 {
        return Err(format!("has a rotation with determinant {}", (det * 1e6).round() / 1e6));
    }
    Ok(SymOp { rot, trans })
}

/// Every operation of Hall setting `h` (1..=530), centring translations included.
pub(super) fn hall_operations(h: i32) -> Option<Vec<SymOp>> {
    let hs = moyo::data::HallSymbol::from_hall_number(h)?;
    let mut out = Vec::new();
    for op in hs.traverse() {
        let rot = op.rotation.map(|x| x as f64);
        out.push(SymOp { rot, trans: op.translation });
        for c in &hs.centering_translations {
            out.push(SymOp { rot, trans: (op.translation + c).map(|x| x.rem_euclid(1.0)) });
        }
    }
    Some(out)
}

pub(super) fn hall_entries() -> impl Iterator<Item = moyo::data::HallSymbolEntry> {
    (1..=530).filter_map(moyo::data::hall_symbol_entry)
}

pub(super) fn normalize_hall(s: &str) -> String {
    let s = s.replace('"', "=").replace('\'', "^").replace(',', " ").replace('(', " (").to_ascii_lowercase();
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.replace("( ", "(").replace(" )", ")")
}

/// Hall setting of a Hall symbol, and an extra origin shift (in 1/12) when the symbol adds one to a
/// tabulated setting.
pub(super) fn find_hall(symbol: &str) -> Option<(i32, Option<Vector3<f64>>)> {
    let target = normalize_hall(symbol);
    if let Some(e) = hall_entries().find(|e| normalize_hall(e.hall_symbol) == target) {
        return Some((e.hall_number, None));
    }
    let (core, rest) = target.split_once(" (")?;
    let inner = rest.strip_suffix(')')?;
    let v: Vec<i32> = inner.split_whitespace().map(|x| x.parse::<i32>().ok()).collect::<Option<_>>()?;
    if v.len() != 3 {
        return None;
    }
    let e = hall_entries().find(|e| !e.hall_symbol.contains('(') && normalize_hall(e.hall_symbol) == core)?;
    Some((e.hall_number, Some(Vector3::new(v[0], v[1], v[2]).map(|x| f64::from(x) / 12.0))))
}

/// Operations of Hall setting `h` with the origin shifted by `shift` (fractional): (R, t + v − Rv).
pub(super) fn shifted_operations(h: i32, shift: Option<Vector3<f64>>) -> Option<Vec<SymOp>> {
    let ops = hall_operations(h)?;
    Some(match shift {
        None => ops,
        Some(v) => ops
            .into_iter()
            .map(|o| SymOp { trans: (o.trans + v - o.rot * v).map(|x| x.rem_euclid(1.0)), rot: o.rot })
            .collect(),
    })
}

pub(super) fn normalize_hm(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '_').collect::<String>().to_ascii_lowercase()
}

/// Short monoclinic symbol from a full one: `P 1 2_1/n 1` → `P 2_1/n`.
pub(super) fn monoclinic_short(full: &str) -> Option<String> {
    let t: Vec<&str> = full.split_whitespace().collect();
    if t.len() == 4 && t[1..].iter().filter(|x| **x == "1").count() == 2 {
        let axis = t[1..].iter().find(|x| **x != "1")?;
        Some(format!("{}{}", t[0], axis))
    } else {
        None
    }
}

/// A normalised full symbol with the two-fold axes in front of planes dropped (`i21/b21/c21/a` →
/// `ibca`, `p4/m21/b2/m` → `p4/mbm`), so full symbols from other tables match moyo's. Only a `2/` or
/// `21/` right after a letter is dropped, which keeps `42/m` and `-32/m`; unambiguous for groups 16–230.
pub(super) fn reduce_full(normalized: &str) -> String {
    let mut out = String::with_capacity(normalized.len());
    let mut rest = normalized;
    let mut prev_alpha = false;
    while let Some(c) = rest.chars().next() {
        if prev_alpha && let Some(r) = rest.strip_prefix("21/").or_else(|| rest.strip_prefix("2/")) {
            rest = r;
            prev_alpha = false;
            continue;
        }
        out.push(c);
        prev_alpha = c.is_ascii_alphabetic();
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// True when the cell looks rhombohedral (a = b = c, α = β = γ ≠ 90°).
pub(super) fn is_rhombohedral_cell(p: &LatticeParams) -> bool {
    let rel = |x: f64, y: f64| (x - y).abs() <= 1e-3 * x.abs().max(y.abs());
    rel(p.a, p.b)
        && rel(p.b, p.c)
        && (p.alpha_deg - p.beta_deg).abs() < 1e-2
        && (p.beta_deg - p.gamma_deg).abs() < 1e-2
        && (p.alpha_deg - 90.0).abs() > 1e-2
}

/// Pick among settings of one symbol: by suffix (`1`, `2`, `H`, `R`), else by the cell for
/// rhombohedral groups, else the first.
pub(super) fn choose_setting(
    cands: &[moyo::data::HallSymbolEntry],
    suffix: Option<&str>,
    cell: &LatticeParams,
) -> Option<i32> {
    if let Some(sfx) = suffix
        && let Some(e) = cands.iter().find(|e| e.setting.eq_ignore_ascii_case(sfx))
    {
        return Some(e.hall_number);
    }
    let has_r = cands.iter().any(|e| e.setting == "R");
    if has_r && suffix.is_none() && is_rhombohedral_cell(cell) {
        return cands.iter().find(|e| e.setting == "R").map(|e| e.hall_number);
    }
    cands.first().map(|e| e.hall_number)
}

/// Hall setting of a Hermann–Mauguin symbol (`P 42/m n m`, `Fm-3m`, `R -3 m :H`, `P 21/n`, `Cmca`).
pub(super) fn find_hm(symbol: &str, cell: &LatticeParams) -> Option<i32> {
    let s = symbol.trim();
    let (core, mut suffix) = match s.split_once(':') {
        Some((c, x)) => (c.trim().to_string(), Some(x.trim().to_string())),
        None => (s.to_string(), None),
    };
    let mut core = core;
    if suffix.is_none() {
        // Trailing setting letters written without a colon: `R -3 m H`, `F d -3 m Z` (ICSD style).
        let toks: Vec<&str> = core.split_whitespace().collect();
        if toks.len() >= 2 {
            let last = toks[toks.len() - 1];
            let first = toks[0].to_ascii_uppercase();
            let mapped = match last {
                "H" | "R" if first.starts_with('R') => Some(last.to_string()),
                "S" => Some("1".to_string()),
                "Z" => Some("2".to_string()),
                _ => None,
            };
            if mapped.is_some() {
                suffix = mapped;
                core = toks[..toks.len() - 1].join(" ");
            }
        }
    }
    let suffix = suffix.map(|x| match x.to_ascii_uppercase().as_str() {
        "S" => "1".to_string(),
        "Z" => "2".to_string(),
        _ => x,
    });
    let target = normalize_hm(&core);
    if target.is_empty() {
        return None;
    }
    let entries: Vec<_> = hall_entries().collect();
    let exact: Vec<_> = entries
        .iter()
        .filter(|e| {
            normalize_hm(e.hm_short) == target
                || normalize_hm(e.hm_full) == target
                || monoclinic_short(e.hm_full).is_some_and(|m| normalize_hm(&m) == target)
        })
        .cloned()
        .collect();
    if !exact.is_empty() {
        return choose_setting(&exact, suffix.as_deref(), cell);
    }
    // Full symbols from other tables (`I 21/b 21/c 21/a`), older cubic symbols without the bar (`Fm3m`),
    // and the e-glide groups written with a, b or c (`Cmca`).
    let no_bar = target.replace('-', "");
    let reduced = reduce_full(&target);
    let loose: Vec<_> = entries
        .iter()
        .filter(|e| {
            let short = normalize_hm(e.hm_short);
            (e.number >= 16 && (reduce_full(&normalize_hm(e.hm_full)) == reduced || short == reduced))
                || (e.number >= 195 && short.replace('-', "") == no_bar)
                || ([39, 41, 64, 67, 68].contains(&e.number)
                    && short.len() == target.len()
                    && short
                        .chars()
                        .zip(target.chars())
                        .all(|(a, b)| a == b || (a == 'e' && matches!(b, 'a' | 'b' | 'c'))))
        })
        .cloned()
        .collect();
    choose_setting(&loose, suffix.as_deref(), cell)
}

/// Hall setting of an International Tables number (the first setting, or the rhombohedral one on a
/// rhombohedral cell).
pub(super) fn find_number(n: i32, cell: &LatticeParams) -> Option<i32> {
    let cands: Vec<_> = hall_entries().filter(|e| e.number == n).collect();
    choose_setting(&cands, None, cell)
}

/// The symmetry operations of a block: listed operations, else Hall, H-M or number, else P1.
pub(super) fn block_operations(b: &Block, cell: &LatticeParams, path: &str) -> Result<Vec<SymOp>, IoError> {
    const OP_TAGS: [&str; 4] = [
        "_symmetry_equiv_pos_as_xyz",
        "_space_group_symop_operation_xyz",
        "_space_group_symop_magn_operation_xyz",
        "_space_group_symop_magn_centering_xyz",
    ];
    if let Some(table) = find_table(b, &OP_TAGS[..2], "_") {
        let col = OP_TAGS[..2].iter().find_map(|t| table.col(t));
        let mut ops = Vec::new();
        for r in 0..table.rows.len() {
            let Some(item) = table.value(r, col) else { continue };
            let op = parse_symop(&item.val.text).map_err(|why| {
                IoError::at(
                    path,
                    item.line,
                    format!(
                        "symmetry operation {:?} {why}, expected three parts like \"x, y+1/2, -z\"",
                        shorten(&item.val.text)
                    ),
                )
            })?;
            ops.push(op);
        }
        if !ops.is_empty() {
            return Ok(ops);
        }
    }
    let mut unknown: Vec<(usize, String)> = Vec::new();
    for tag in ["_space_group_name_hall", "_symmetry_space_group_name_hall"] {
        if let Some(item) = b.scalar(tag) {
            match find_hall(&item.val.text).and_then(|(h, shift)| shifted_operations(h, shift)) {
                Some(ops) => return Ok(ops),
                None => unknown.push((item.line, format!("Hall symbol {:?}", shorten(&item.val.text)))),
            }
        }
    }
    for tag in ["_space_group_name_h-m_alt", "_symmetry_space_group_name_h-m", "_space_group_name_h-m"] {
        if let Some(item) = b.scalar(tag) {
            match find_hm(&item.val.text, cell).and_then(hall_operations) {
                Some(ops) => return Ok(ops),
                None => unknown.push((item.line, format!("Hermann-Mauguin symbol {:?}", shorten(&item.val.text)))),
            }
        }
    }
    for tag in ["_space_group_it_number", "_symmetry_int_tables_number"] {
        if let Some(item) = b.scalar(tag) {
            let v = number(item, tag, path)?;
            let n = v.round();
            if (v - n).abs() > 1e-9 || !(1.0..=230.0).contains(&n) {
                return Err(IoError::at(
                    path,
                    item.line,
                    format!("space group number {v}, expected an integer from 1 to 230"),
                ));
            }
            if let Some(ops) = find_number(n as i32, cell).and_then(hall_operations) {
                return Ok(ops);
            }
        }
    }
    if let Some((line, what)) = unknown.first() {
        return Err(IoError::at(
            path,
            *line,
            format!("unknown space group {what}, expected a standard symbol or a _symmetry_equiv_pos_as_xyz loop"),
        ));
    }
    Ok(vec![SymOp { rot: Matrix3::identity(), trans: Vector3::zeros() }])
}
