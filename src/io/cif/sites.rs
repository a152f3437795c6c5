//! From a block to a structure: the cell, the asymmetric unit, its expansion by the operations and
//! the merging of images (pymatgen's `CifParser` rules); [`parse`] reads a whole file.

use nalgebra::{Matrix3, Vector3};
use serde_json::Value as Json;

use super::*;
use crate::crystal::structure::wrap_frac;
use crate::crystal::{Element, Lattice, LatticeParams, Structure};
use crate::io::IoError;

/// One contribution of an asymmetric-unit site to a position.
#[derive(Debug, Clone)]
pub(super) struct Contribution {
    pub(super) asym: usize,
    pub(super) element: Element,
    pub(super) occupancy: f64,
}

pub(super) struct Position {
    pub(super) frac: Vector3<f64>,
    pub(super) contribs: Vec<Contribution>,
}

/// One row of the atom-site table.
pub(super) struct AsymSite {
    pub(super) label: String,
    pub(super) element: Element,
    pub(super) frac: Vector3<f64>,
    pub(super) occupancy: f64,
    pub(super) line: usize,
}

pub(super) fn same_position(a: &Vector3<f64>, b: &Vector3<f64>, tol: f64) -> bool {
    (a - b).iter().all(|d| (d - d.round()).abs() < tol)
}

pub(super) fn fmt_num(x: f64) -> String {
    let r = (x * 1e6).round() / 1e6;
    format!("{r}")
}

pub(super) const ORDERING_HINT: &str =
    "Geode stores ordered structures only (`geode convert --order-partial` keeps the majority species)";

/// Why a block gave no structure (for the error when no block gives one).
pub(super) enum Skip {
    NoAtoms,
    NoCell,
}

pub(super) fn read_cell(b: &Block, path: &str) -> Result<Option<(LatticeParams, usize)>, IoError> {
    const LENGTHS: [&str; 3] = ["_cell_length_a", "_cell_length_b", "_cell_length_c"];
    const ANGLES: [&str; 3] = ["_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"];
    if !LENGTHS.iter().chain(ANGLES.iter()).any(|t| b.has_tag(t)) {
        return Ok(None);
    }
    let mut len = [0.0; 3];
    let mut first_line = usize::MAX;
    for (k, tag) in LENGTHS.iter().enumerate() {
        let Some(item) = b.scalar(tag) else {
            let why = if b.has_tag(tag) { "is unknown ('?')" } else { "is missing" };
            return Err(IoError::at(
                path,
                b.line,
                format!("{tag} {why} in {}, expected the cell length in Å", b.display_name()),
            ));
        };
        let v = number(item, tag, path)?;
        if v <= 0.0 {
            return Err(IoError::at(path, item.line, format!("cell length {tag} = {v} Å, expected a positive length")));
        }
        len[k] = v;
        first_line = first_line.min(item.line);
    }
    let mut ang = [90.0; 3];
    let mut angle_line = first_line;
    for (k, tag) in ANGLES.iter().enumerate() {
        if let Some(item) = b.scalar(tag) {
            let v = number(item, tag, path)?;
            if v <= 0.0 || v >= 180.0 {
                return Err(IoError::at(
                    path,
                    item.line,
                    format!("cell angle {tag} = {v}°, expected an angle strictly between 0° and 180°"),
                ));
            }
            ang[k] = v;
            angle_line = item.line;
        }
    }
    let [ca, cb, cg] = ang.map(|a: f64| a.to_radians().cos());
    let factor = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg;
    if factor <= 1e-10 {
        return Err(IoError::at(
            path,
            angle_line,
            format!(
                "cell angles α = {}°, β = {}°, γ = {}° give a cell of zero volume, expected angles of a three-dimensional cell",
                ang[0], ang[1], ang[2]
            ),
        ));
    }
    let p = LatticeParams { a: len[0], b: len[1], c: len[2], alpha_deg: ang[0], beta_deg: ang[1], gamma_deg: ang[2] };
    Ok(Some((p, first_line)))
}

/// The CIF default Cartesian frame (a along x, b in the xy plane, c* along z): frac = M⁻¹ cart.
pub(super) fn cif_cartesian_to_frac(p: &LatticeParams) -> Option<Matrix3<f64>> {
    let (al, be, ga) = (p.alpha_deg.to_radians(), p.beta_deg.to_radians(), p.gamma_deg.to_radians());
    let cy = (al.cos() - be.cos() * ga.cos()) / ga.sin();
    let cz = (1.0 - be.cos().powi(2) - cy * cy).max(0.0).sqrt();
    let m = Matrix3::new(p.a, p.b * ga.cos(), p.c * be.cos(), 0.0, p.b * ga.sin(), p.c * cy, 0.0, 0.0, p.c * cz);
    m.try_inverse()
}

pub(super) fn read_sites(b: &Block, table: &Table, cell: &LatticeParams, path: &str) -> Result<Vec<AsymSite>, IoError> {
    let c_label = table.col("_atom_site_label");
    let c_type = table.col("_atom_site_type_symbol");
    if c_label.is_none() && c_type.is_none() {
        return Err(IoError::at(
            path,
            table.line,
            "atom sites have neither _atom_site_type_symbol nor _atom_site_label, expected one of them to name the element",
        ));
    }
    let fract = ["_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"];
    let cartn = ["_atom_site_cartn_x", "_atom_site_cartn_y", "_atom_site_cartn_z"];
    let fcols = fract.map(|t| table.col(t));
    let ccols = cartn.map(|t| table.col(t));
    let (cols, tags, cart) = if fcols.iter().any(Option::is_some) {
        (fcols, fract, false)
    } else if ccols.iter().any(Option::is_some) {
        (ccols, cartn, true)
    } else {
        return Err(IoError::at(
            path,
            table.line,
            format!(
                "atom sites in {} have no coordinates, expected _atom_site_fract_x/y/z or _atom_site_Cartn_x/y/z",
                b.display_name()
            ),
        ));
    };
    if let Some(k) = cols.iter().position(Option::is_none) {
        return Err(IoError::at(
            path,
            table.line,
            format!("atom sites have no {} column, expected x, y and z coordinates", tags[k]),
        ));
    }
    let to_frac = if cart {
        Some(cif_cartesian_to_frac(cell).ok_or_else(|| {
            IoError::at(path, table.line, "cell cannot convert Cartesian coordinates, expected a regular cell")
        })?)
    } else {
        None
    };
    let c_occ = table.col("_atom_site_occupancy");
    let c_flag = table.col("_atom_site_calc_flag");
    let mut out = Vec::with_capacity(table.rows.len());
    for r in 0..table.rows.len() {
        let line = table.rows[r].first().map(|i| i.line).unwrap_or(table.line);
        if table.value(r, c_flag).is_some_and(|f| f.val.text.eq_ignore_ascii_case("dum")) {
            continue; // dummy atoms (e.g. centroids) are not atoms
        }
        let label_item = table.value(r, c_label);
        let type_item = table.value(r, c_type);
        let label =
            label_item.or(type_item).map(|i| i.val.text.trim().to_string()).unwrap_or_else(|| format!("site{}", r + 1));
        let element = type_item
            .and_then(|i| Element::from_label(&i.val.text).ok())
            .or_else(|| label_item.and_then(|i| Element::from_label(&i.val.text).ok()))
            .map(|(e, _)| e);
        let Some(element) = element else {
            let what = match (type_item, label_item) {
                (Some(t), _) => format!("type symbol {:?}", shorten(&t.val.text)),
                (None, Some(l)) => format!("label {:?}", shorten(&l.val.text)),
                (None, None) => "no type symbol or label".into(),
            };
            return Err(IoError::at(
                path,
                line,
                format!("unknown element in site {label:?} ({what}), expected an element symbol such as Fe or O2-"),
            ));
        };
        let mut xyz = [0.0; 3];
        for k in 0..3 {
            let Some(item) = table.cell(r, cols[k]) else {
                return Err(IoError::at(path, line, format!("site {label:?} has no {}, expected a number", tags[k])));
            };
            if item.val.is_null() {
                return Err(IoError::at(
                    path,
                    item.line,
                    format!("site {label:?} has {} = {:?}, expected a number", tags[k], item.val.text),
                ));
            }
            xyz[k] = number(item, tags[k], path)?;
        }
        let mut frac = Vector3::from(xyz);
        if let Some(m) = &to_frac {
            frac = m * frac;
        }
        let occupancy = match table.value(r, c_occ) {
            Some(item) => number(item, "_atom_site_occupancy", path)?,
            None => 1.0,
        };
        if occupancy < 0.0 {
            return Err(IoError::at(
                path,
                line,
                format!("site {label:?} has occupancy {occupancy}, expected a value between 0 and 1"),
            ));
        }
        if occupancy == 0.0 {
            continue; // an empty site holds nothing
        }
        out.push(AsymSite { label, element, frac, occupancy, line });
    }
    Ok(out)
}

pub(super) fn block_structure(b: &Block, path: &str, opts: &CifOptions) -> Result<Result<Structure, Skip>, IoError> {
    const SITE_KEYS: [&str; 8] = [
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_cartn_x",
        "_atom_site_cartn_y",
        "_atom_site_cartn_z",
        "_atom_site_label",
        "_atom_site_type_symbol",
    ];
    let Some(table) = find_table(b, &SITE_KEYS, "_atom_site_") else {
        return Ok(Err(Skip::NoAtoms));
    };
    if table.rows.is_empty() {
        return Ok(Err(Skip::NoAtoms));
    }
    let Some((cell, cell_line)) = read_cell(b, path)? else {
        return Ok(Err(Skip::NoCell));
    };
    let lattice = Lattice::from_parameters(cell).map_err(|e| IoError::crystal(path, Some(cell_line), e))?;
    let ops = block_operations(b, &cell, path)?;
    let mut sites = read_sites(b, &table, &cell, path)?;
    if sites.is_empty() {
        return Ok(Err(Skip::NoAtoms));
    }
    if ops.len() > 1 {
        for s in &mut sites {
            for x in s.frac.iter_mut() {
                for ideal in [1.0 / 3.0, 2.0 / 3.0] {
                    if (*x / ideal - 1.0).abs() <= FRAC_SNAP_TOL + 1e-9 {
                        *x = ideal;
                    }
                }
            }
        }
    }
    let tol = if opts.site_tolerance_frac.is_finite() && opts.site_tolerance_frac > 0.0 {
        opts.site_tolerance_frac
    } else {
        1e-4
    };

    // Expand and merge.
    let mut positions: Vec<Position> = Vec::new();
    for (a, site) in sites.iter().enumerate() {
        for op in &ops {
            let f = wrap_frac(&op.apply(&site.frac));
            match positions.iter_mut().find(|p| same_position(&p.frac, &f, tol)) {
                Some(p) => {
                    if !p.contribs.iter().any(|c| c.asym == a) {
                        p.contribs.push(Contribution { asym: a, element: site.element, occupancy: site.occupancy });
                    }
                }
                None => positions.push(Position {
                    frac: f,
                    contribs: vec![Contribution { asym: a, element: site.element, occupancy: site.occupancy }],
                }),
            }
        }
    }

    // Resolve each position to one species.
    let mut species = Vec::with_capacity(positions.len());
    let mut coords = Vec::with_capacity(positions.len());
    let mut labels = Vec::with_capacity(positions.len());
    let mut notes: Vec<String> = Vec::new();
    for p in &positions {
        // Occupancy per element, in order of first appearance. Duplicate listings of a fully occupied
        // site (same element, each occupancy 1) count once.
        let mut per: Vec<(Element, f64, usize)> = Vec::new(); // (element, occupancy, first asym index)
        for c in &p.contribs {
            match per.iter_mut().find(|(e, _, _)| *e == c.element) {
                Some((_, occ, _)) => {
                    let full_dup = c.occupancy >= 1.0 - OCCUPANCY_TOL && *occ >= 1.0 - OCCUPANCY_TOL;
                    if !full_dup {
                        *occ += c.occupancy;
                    }
                }
                None => per.push((c.element, c.occupancy, c.asym)),
            }
        }
        let (best, best_occ, best_asym) = per.iter().copied().fold(per[0], |acc, x| if x.1 > acc.1 { x } else { acc });
        let ordered = per.len() == 1 && (best_occ - 1.0).abs() <= OCCUPANCY_TOL;
        if !ordered {
            let main = &sites[best_asym];
            if per.len() == 1 {
                if !opts.order_partial_occupancies {
                    let msg = if best_occ > 1.0 {
                        format!(
                            "site {:?} has occupancy {}, expected at most 1 ({ORDERING_HINT})",
                            main.label,
                            fmt_num(best_occ)
                        )
                    } else {
                        format!("site {:?} has occupancy {}; {ORDERING_HINT}", main.label, fmt_num(best_occ))
                    };
                    return Err(IoError::at(path, main.line, msg));
                }
                notes.push(format!(
                    "site {:?} (line {}): kept {} with occupancy {} as a full site",
                    main.label,
                    main.line,
                    best.symbol(),
                    fmt_num(best_occ)
                ));
            } else {
                if !opts.order_partial_occupancies {
                    let shared: Vec<String> = p
                        .contribs
                        .iter()
                        .map(|c| {
                            format!(
                                "{:?} ({}, occupancy {})",
                                sites[c.asym].label,
                                c.element.symbol(),
                                fmt_num(c.occupancy)
                            )
                        })
                        .collect();
                    let line = p.contribs.iter().map(|c| sites[c.asym].line).max().unwrap_or(main.line);
                    return Err(IoError::at(
                        path,
                        line,
                        format!("sites {} share one position; {ORDERING_HINT}", shared.join(" and ")),
                    ));
                }
                let dropped: Vec<String> = per
                    .iter()
                    .filter(|(e, _, _)| *e != best)
                    .map(|(e, occ, a)| {
                        format!(
                            "{} {:?} (occupancy {}, line {})",
                            e.symbol(),
                            sites[*a].label,
                            fmt_num(*occ),
                            sites[*a].line
                        )
                    })
                    .collect();
                notes.push(format!(
                    "site {:?} (line {}): kept {} (occupancy {}), dropped {}",
                    main.label,
                    main.line,
                    best.symbol(),
                    fmt_num(best_occ),
                    dropped.join(", ")
                ));
            }
        }
        species.push(best);
        coords.push(p.frac);
        labels.push(Json::String(sites[best_asym].label.clone()));
    }
    let mut s =
        Structure::from_frac(lattice, species, coords).map_err(|e| IoError::crystal(path, Some(table.line), e))?;
    s.site_properties.insert("label".into(), labels);
    s.properties.insert("cif_block".into(), Json::String(b.name.clone()));
    let mut unique: Vec<String> = Vec::new();
    for n in notes {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    if !unique.is_empty() {
        s.properties.insert("cif_ordering_notes".into(), Json::Array(unique.into_iter().map(Json::String).collect()));
    }
    Ok(Ok(s))
}

/// Parse CIF text: one [`Structure`] per data block with a cell and atom sites, in file order.
/// Blocks without atom sites (or without any cell tag) are skipped; an error when none is left.
pub fn parse(text: &str, path: &str, opts: &CifOptions) -> Result<Vec<Structure>, IoError> {
    let tokens = tokenize(text, path)?;
    if tokens.is_empty() {
        return Err(IoError::whole(path, "file has no CIF content, expected a data_ block with a cell and atom sites"));
    }
    let blocks = parse_blocks(tokens, path)?;
    let mut out = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut first_no_cell: Option<usize> = None;
    for b in &blocks {
        match block_structure(b, path, opts)? {
            Ok(s) => out.push(s),
            Err(Skip::NoAtoms) => skipped.push(format!("{} has no atom sites", b.display_name())),
            Err(Skip::NoCell) => {
                first_no_cell.get_or_insert(b.line);
                skipped.push(format!("{} has atom sites but no _cell_length_a/b/c", b.display_name()));
            }
        }
    }
    if out.is_empty() {
        let why = if skipped.is_empty() { "no data blocks".to_string() } else { skipped.join("; ") };
        let msg =
            format!("no structure in the file ({why}), expected a data_ block with _cell_length_a/b/c and atom sites");
        return Err(match first_no_cell {
            Some(line) => IoError::at(path, line, msg),
            None => IoError::whole(path, msg),
        });
    }
    Ok(out)
}
