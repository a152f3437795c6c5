//! VASP POSCAR/CONTCAR reader and writer.
//!
//! Reader: the VASP 5/6 layout (comment, scale, three lattice rows, species symbols, counts, optional
//! `Selective dynamics`, `Direct`/`Cartesian`, coordinates). The scale may be one positive factor,
//! one negative value (the target cell volume in Å³) or three positive per-axis factors (VASP 6);
//! Cartesian coordinates are scaled like the lattice. POTCAR-style symbols (`Fe_pv`, `Mg_pv/f474ac0d`)
//! give their element. VASP 4 files (no species line) are read only when the elements can be told:
//! from the comment line when its tokens are element symbols, one per count (as ASE does), or from a
//! symbol after the coordinates on every coordinate line (as pymatgen does); otherwise an error.
//! Velocity and predictor-corrector blocks after the coordinates are ignored. The comment goes to
//! `properties["comment"]`, selective dynamics to `site_properties["selective_dynamics"]` as
//! `[true, false, true]` arrays (true = may move, VASP's `T`).
//!
//! Writer: VASP 5, scale 1.0, lattice and direct coordinates with 16 significant digits. VASP needs
//! the sites of one species together, so sites are grouped by species in order of first appearance,
//! keeping their order within a group ([`write_order`] gives the permutation). The file is therefore
//! read back with the sites in that order; a structure whose species are already grouped round-trips
//! unchanged. pymatgen's `Poscar` instead writes one group per run of equal species (`Fe O Fe`), which
//! keeps the order but repeats symbols, which VASP then expects repeated in the POTCAR.

use nalgebra::Vector3;
use serde_json::Value;

use super::IoError;
use crate::crystal::{CrystalError, Element, Lattice, Structure};

/// The permutation [`write`] applies: site indices grouped by species in order of first appearance,
/// stable within each group. `write_order(s)[k]` is the original index of the k-th written site.
pub fn write_order(s: &Structure) -> Vec<usize> {
    let mut groups: Vec<Element> = Vec::new();
    for e in s.species() {
        if !groups.contains(e) {
            groups.push(*e);
        }
    }
    groups.iter().flat_map(|g| s.species().iter().enumerate().filter(move |(_, e)| *e == g).map(|(i, _)| i)).collect()
}

/// Render `s` as a VASP 5 POSCAR (see the module notes for the site order).
pub fn write(s: &Structure) -> String {
    let order = write_order(s);
    let comment = s
        .properties
        .get("comment")
        .and_then(Value::as_str)
        .map(|c| c.replace(['\n', '\r'], " ").trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| s.composition().formula());
    let mut out = String::with_capacity(128 + 80 * s.n_sites());
    out.push_str(&comment);
    out.push_str("\n1.0\n");
    for row in s.lattice.row_vectors() {
        out.push_str(&format!("  {:>22} {:>22} {:>22}\n", fmt_sig16(row[0]), fmt_sig16(row[1]), fmt_sig16(row[2])));
    }
    // Runs of equal species in the written order: one (symbol, count) per group.
    let mut groups: Vec<(Element, usize)> = Vec::new();
    for &i in &order {
        let e = s.species()[i];
        match groups.last_mut() {
            Some((g, n)) if *g == e => *n += 1,
            _ => groups.push((e, 1)),
        }
    }
    let width = |g: &(Element, usize)| g.0.symbol().len().max(g.1.to_string().len()).max(2);
    out.push_str(&groups.iter().map(|g| format!("  {:>w$}", g.0.symbol(), w = width(g))).collect::<String>());
    out.push('\n');
    out.push_str(&groups.iter().map(|g| format!("  {:>w$}", g.1, w = width(g))).collect::<String>());
    out.push('\n');
    let sd = s.site_properties.get("selective_dynamics");
    if sd.is_some() {
        out.push_str("Selective dynamics\n");
    }
    out.push_str("Direct\n");
    for &i in &order {
        let f = s.frac_coords()[i];
        out.push_str(&format!("  {:>20} {:>20} {:>20}", fmt_sig16(f[0]), fmt_sig16(f[1]), fmt_sig16(f[2])));
        if let Some(values) = sd {
            let flags = sd_flags(values.get(i));
            for b in flags {
                out.push_str(if b { " T" } else { " F" });
            }
        }
        out.push('\n');
    }
    out
}

/// Selective-dynamics flags of one site: an array of three booleans, or one boolean for all three;
/// anything else (missing, malformed) is written as free to move (`T T T`).
fn sd_flags(v: Option<&Value>) -> [bool; 3] {
    match v {
        Some(Value::Bool(b)) => [*b; 3],
        Some(Value::Array(a)) if a.len() == 3 && a.iter().all(Value::is_boolean) => {
            [0, 1, 2].map(|k| a[k].as_bool().unwrap_or(true))
        }
        _ => [true; 3],
    }
}

/// Format with 16 significant digits in plain decimal notation (as VASP, pymatgen and ASE read it).
pub(crate) fn fmt_sig16(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let x = if x == 0.0 { 0.0 } else { x }; // no "-0.000"
    let exp = if x == 0.0 { -1 } else { x.abs().log10().floor() as i32 };
    let decimals = (15 - exp).clamp(1, 20) as usize;
    format!("{x:.decimals$}")
}

/// Reject text with control characters (binary data) before parsing: names the first offending line.
pub(crate) fn check_plain_text(text: &str, path: &str, what: &str) -> Result<(), IoError> {
    if let Some((offset, c)) =
        text.char_indices().find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
    {
        let line = text[..offset].matches('\n').count() + 1;
        return Err(IoError::at(
            path,
            line,
            format!("control character U+{:04X} in the text, expected a plain-text {what} file", c as u32),
        ));
    }
    Ok(())
}

/// Parse a real number as written by VASP, Fortran (`1.0D-3`) and C codes.
pub(crate) fn parse_real(token: &str) -> Option<f64> {
    token.parse::<f64>().ok().or_else(|| {
        if token.contains(['d', 'D']) && !token.contains(['e', 'E']) {
            token.replace(['d', 'D'], "e").parse::<f64>().ok()
        } else {
            None
        }
    })
}

/// Sequential access to the lines of a file with 1-based numbers.
struct Lines<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    path: &'a str,
}

impl<'a> Lines<'a> {
    /// The next line and its number; at the end of the file an error saying what was expected.
    fn next(&mut self, what: &str) -> Result<(usize, &'a str), IoError> {
        match self.lines.get(self.pos) {
            Some(l) => {
                self.pos += 1;
                Ok((self.pos, l))
            }
            None => {
                Err(IoError::at(self.path, self.pos + 1, format!("file ends at line {}, expected {what}", self.pos)))
            }
        }
    }

    fn peek(&self) -> Option<(usize, &'a str)> {
        self.lines.get(self.pos).map(|l| (self.pos + 1, *l))
    }
}

enum Scale {
    Factor(f64),
    Volume(f64),
    PerAxis([f64; 3]),
}

fn parse_scale(line: &str, n: usize, path: &str) -> Result<Scale, IoError> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let Some(first) = tokens.first() else {
        return Err(IoError::at(path, n, "line is empty, expected the scale factor"));
    };
    let three: Vec<f64> = tokens.iter().take(3).map_while(|t| parse_real(t)).collect();
    if three.len() == 3 {
        if let Some(v) = three.iter().find(|v| !v.is_finite() || **v <= 0.0) {
            return Err(IoError::at(
                path,
                n,
                format!("scale factor {v} among three per-axis factors, expected three positive numbers"),
            ));
        }
        return Ok(Scale::PerAxis([three[0], three[1], three[2]]));
    }
    let Some(s) = parse_real(first) else {
        return Err(IoError::at(
            path,
            n,
            format!("scale factor {first:?} is not a number, expected a positive factor or a negative volume"),
        ));
    };
    if !s.is_finite() || s == 0.0 {
        return Err(IoError::at(
            path,
            n,
            format!("scale factor {s}, expected a positive factor or a negative volume (Å³)"),
        ));
    }
    Ok(if s > 0.0 { Scale::Factor(s) } else { Scale::Volume(-s) })
}

/// Three finite numbers at the start of `line`.
fn parse_vec3(line: &str, n: usize, path: &str, what: &str) -> Result<[f64; 3], IoError> {
    let mut tokens: Vec<String> = line.split_whitespace().take(3).map(str::to_string).collect();
    if tokens.len() < 3 {
        // Fortran fixed-width output can glue negative numbers together: "0.5-0.25-0.125".
        let split: Vec<String> = line
            .split_whitespace()
            .flat_map(|t| {
                t.split('-')
                    .enumerate()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(i, p)| if i == 0 && !t.starts_with('-') { p.to_string() } else { format!("-{p}") })
                    .collect::<Vec<_>>()
            })
            .collect();
        if split.len() >= 3 && split.iter().take(3).all(|t| parse_real(t).is_some()) {
            tokens = split;
        }
    }
    if tokens.len() < 3 {
        let seen = if line.trim().is_empty() { "an empty line".to_string() } else { format!("{:?}", line.trim()) };
        return Err(IoError::at(path, n, format!("{seen} for {what}, expected three numbers")));
    }
    let mut v = [0.0; 3];
    for k in 0..3 {
        let t = &tokens[k];
        let x = parse_real(t)
            .ok_or_else(|| IoError::at(path, n, format!("{t:?} in {what} is not a number, expected three numbers")))?;
        if !x.is_finite() {
            return Err(IoError::at(path, n, format!("{t} in {what}, expected a finite number")));
        }
        v[k] = x;
    }
    Ok(v)
}

/// The element of a species token: `Fe`, `Fe_pv`, `Mg_pv/f474ac0d`, `FE`.
fn element_of_token(token: &str) -> Result<Element, CrystalError> {
    let base = token.split('/').next().unwrap_or(token);
    let base = base.split('_').next().unwrap_or(base);
    if base.is_empty() || base.len() > 3 || !base.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(CrystalError::UnknownElement(token.to_string()));
    }
    Element::from_symbol(base).map_err(|_| CrystalError::UnknownElement(token.to_string()))
}

fn first_token_is_integer(line: &str) -> bool {
    line.split_whitespace().next().is_some_and(|t| t.parse::<i64>().is_ok())
}

/// Atom counts on a counts line: integer tokens up to the first word (a trailing comment).
fn parse_counts(line: &str, n: usize, path: &str, out: &mut Vec<usize>) -> Result<(), IoError> {
    for t in line.split_whitespace() {
        match t.parse::<usize>() {
            Ok(c) => out.push(c),
            Err(_) if parse_real(t).is_some() || t.parse::<i64>().is_ok() => {
                return Err(IoError::at(path, n, format!("atom count {t:?}, expected a non-negative whole number")));
            }
            Err(_) => break,
        }
    }
    Ok(())
}

fn parse_flag(t: &str) -> Option<bool> {
    match t.trim_start_matches('.').chars().next() {
        Some('T' | 't') => Some(true),
        Some('F' | 'f') => Some(false),
        _ => None,
    }
}

/// Parse a POSCAR/CONTCAR. `path` names the file in error messages.
pub fn parse(text: &str, path: &str) -> Result<Structure, IoError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_plain_text(text, path, "POSCAR")?;
    if text.trim().is_empty() {
        return Err(IoError::whole(path, "file is empty, expected a POSCAR"));
    }
    let mut r = Lines { lines: text.lines().collect(), pos: 0, path };
    let (_, comment) = r.next("a comment line")?;
    let (n_scale, scale_line) = r.next("the scale factor")?;
    let scale = parse_scale(scale_line, n_scale, path)?;

    let mut rows = [[0.0; 3]; 3];
    let mut n_lattice = 0;
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let what = format!("lattice vector {name}");
        let (n, l) = r.next(&what)?;
        if i == 0 {
            n_lattice = n;
        }
        rows[i] = parse_vec3(l, n, path, &what)?;
    }
    let lattice_lines = format!("lattice vectors on lines {}-{}", n_lattice, n_lattice + 2);
    let det = nalgebra::Matrix3::from_fn(|i, j| rows[i][j]).determinant();
    let cart_scale: [f64; 3] = match scale {
        Scale::Factor(s) => [s; 3],
        Scale::PerAxis(s) => s,
        Scale::Volume(v) => {
            if det.abs() < 1e-12 {
                return Err(IoError::at(
                    path,
                    n_lattice,
                    format!(
                        "{lattice_lines} span a volume of {:e} Å³, expected a non-degenerate cell to scale to {v} Å³",
                        det.abs()
                    ),
                ));
            }
            [(v / det.abs()).cbrt(); 3]
        }
    };
    for row in &mut rows {
        for (x, s) in row.iter_mut().zip(cart_scale) {
            *x *= s;
        }
    }
    let lattice = Lattice::from_row_vectors(rows).map_err(|e| match e {
        CrystalError::SingularLattice { volume_ang3 } => IoError::at(
            path,
            n_lattice,
            format!("{lattice_lines} span a volume of {volume_ang3:e} Å³, expected a non-degenerate cell"),
        ),
        other => IoError::at(path, n_lattice, format!("{lattice_lines}: {other}")),
    })?;

    // Species symbols (VASP 5, possibly wrapped over several lines) and counts.
    let (n_species, species_line) = r.next("the species symbols or atom counts")?;
    if species_line.trim().is_empty() {
        return Err(IoError::at(
            path,
            n_species,
            "line is empty, expected element symbols (VASP 5) or atom counts (VASP 4)",
        ));
    }
    let mut symbols: Vec<(String, usize)> = Vec::new(); // (token, line)
    let mut counts: Vec<usize> = Vec::new();
    let n_counts;
    if first_token_is_integer(species_line) {
        n_counts = n_species;
        parse_counts(species_line, n_species, path, &mut counts)?;
    } else {
        symbols.extend(species_line.split_whitespace().map(|t| (t.to_string(), n_species)));
        let mut symbol_lines = 1;
        while symbol_lines < 10 {
            match r.peek() {
                Some((n, l))
                    if !l.trim().is_empty()
                        && !first_token_is_integer(l)
                        && parse_real(l.split_whitespace().next().unwrap_or("")).is_none()
                        && !is_mode_line(l) =>
                {
                    symbols.extend(l.split_whitespace().map(|t| (t.to_string(), n)));
                    r.pos += 1;
                    symbol_lines += 1;
                }
                _ => break,
            }
        }
        let (n, l) = r.next("the atom counts")?;
        n_counts = n;
        if parse_real(l.split_whitespace().next().unwrap_or("")).is_none() {
            let seen = if l.trim().is_empty() { "an empty line".to_string() } else { format!("{:?}", l.trim()) };
            return Err(IoError::at(
                path,
                n,
                format!("{seen} where the atom counts are expected (one whole number per species on line {n_species})"),
            ));
        }
        parse_counts(l, n, path, &mut counts)?;
        for _ in 1..symbol_lines {
            let (n, l) = r.next("the continued atom counts")?;
            parse_counts(l, n, path, &mut counts)?;
        }
        if counts.len() != symbols.len() {
            return Err(IoError::at(
                path,
                n_counts,
                format!(
                    "{} atom counts for {} species symbols ({}), expected one count per species",
                    counts.len(),
                    symbols.len(),
                    symbols.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(" ")
                ),
            ));
        }
    }
    let total = counts
        .iter()
        .try_fold(0usize, |a, &c| a.checked_add(c))
        .ok_or_else(|| IoError::at(path, n_counts, "atom counts overflow, expected a realistic number of atoms"))?;
    if total == 0 {
        return Err(IoError::at(path, n_counts, "atom counts sum to 0, expected at least one atom"));
    }
    let mut elements: Vec<Element> = Vec::with_capacity(symbols.len());
    for (t, n) in &symbols {
        elements.push(element_of_token(t).map_err(|_| {
            IoError::at(
                path,
                *n,
                format!("unknown element {t:?} in the species line, expected element symbols such as Fe or Fe_pv"),
            )
        })?);
    }

    // Optional selective dynamics, then the coordinate mode.
    let (mut n_mode, mut mode_line) = r.next("a Direct or Cartesian line")?;
    let mut selective = false;
    if mode_line.trim_start().starts_with(['S', 's']) {
        selective = true;
        (n_mode, mode_line) = r.next("a Direct or Cartesian line")?;
    }
    let cartesian = match mode_line.trim_start().chars().next() {
        Some('C' | 'c' | 'K' | 'k') => true,
        Some(c) if c.is_alphabetic() => false,
        _ => {
            let seen = if mode_line.trim().is_empty() {
                "an empty line".to_string()
            } else {
                format!("{:?}", mode_line.trim())
            };
            return Err(IoError::at(
                path,
                n_mode,
                format!(
                    "{seen} where a Direct or Cartesian line is expected (do the atom counts on line {n_counts} match the file?)"
                ),
            ));
        }
    };

    let mut coords: Vec<Vector3<f64>> = Vec::new();
    let mut flags: Vec<Value> = Vec::new();
    let mut trailing: Vec<Option<&str>> = Vec::new();
    for i in 0..total {
        let Some((n, l)) = r.peek() else {
            return Err(IoError::at(
                path,
                r.pos + 1,
                format!(
                    "file ends after {i} of {total} coordinate lines, expected {total} (the sum of the atom counts on line {n_counts})"
                ),
            ));
        };
        r.pos += 1;
        if l.trim().is_empty() {
            return Err(IoError::at(
                path,
                n,
                format!(
                    "empty line after {i} of {total} coordinate lines, expected {total} (the sum of the atom counts on line {n_counts})"
                ),
            ));
        }
        let v = parse_vec3(l, n, path, &format!("the coordinates of atom {}", i + 1))?;
        coords.push(Vector3::from(v));
        let tokens: Vec<&str> = l.split_whitespace().collect();
        if selective {
            let mut f = Vec::with_capacity(3);
            for k in 3..6 {
                let t = tokens.get(k).copied().unwrap_or("");
                let b = parse_flag(t).ok_or_else(|| {
                    let seen = if t.is_empty() { "nothing".to_string() } else { format!("{t:?}") };
                    IoError::at(path, n, format!("selective dynamics flag {} is {seen}, expected T or F", k - 2))
                })?;
                f.push(Value::Bool(b));
            }
            flags.push(Value::Array(f));
        }
        trailing.push(tokens.get(if selective { 6 } else { 3 }).copied());
    }
    // A further line of three numbers right after the coordinates means the counts are too small.
    // (Velocities come after a blank line; "Lattice velocities" starts with a letter.)
    if let Some((n, l)) = r.peek() {
        let numbers = l.split_whitespace().take(3).filter(|t| parse_real(t).is_some()).count();
        if numbers == 3 {
            return Err(IoError::at(
                path,
                n,
                format!(
                    "more coordinate lines than the {total} atoms the counts on line {n_counts} sum to, expected a blank line or the end of the file"
                ),
            ));
        }
    }

    // Species per site.
    let species: Vec<Element> = if !symbols.is_empty() {
        elements.iter().zip(&counts).flat_map(|(e, &c)| std::iter::repeat_n(*e, c)).collect()
    } else {
        let from_comment: Option<Vec<Element>> = {
            let toks: Vec<&str> = comment.split_whitespace().collect();
            if toks.len() == counts.len() { toks.iter().map(|t| element_of_token(t).ok()).collect() } else { None }
        };
        let from_lines: Option<Vec<Element>> =
            trailing.iter().map(|t| t.and_then(|t| element_of_token(t).ok())).collect();
        match (from_comment, from_lines) {
            (Some(els), _) => els.iter().zip(&counts).flat_map(|(e, &c)| std::iter::repeat_n(*e, c)).collect(),
            (None, Some(per_site)) => per_site,
            (None, None) => {
                return Err(IoError::at(
                    path,
                    n_species,
                    "atom counts without element symbols (VASP 4 layout) and neither the comment line nor the coordinate lines name the elements, expected a species line such as \"Fe O\" above the counts",
                ));
            }
        }
    };

    let mut s = if cartesian {
        let cart: Vec<Vector3<f64>> = coords
            .iter()
            .map(|c| Vector3::new(c[0] * cart_scale[0], c[1] * cart_scale[1], c[2] * cart_scale[2]))
            .collect();
        Structure::from_cart(lattice, species, &cart)
    } else {
        Structure::from_frac(lattice, species, coords)
    }
    .map_err(|e| IoError::crystal(path, None, e))?;
    s.properties.insert("comment".into(), Value::String(comment.trim().to_string()));
    if selective {
        s.site_properties.insert("selective_dynamics".into(), flags);
    }
    Ok(s)
}

fn is_mode_line(l: &str) -> bool {
    let t = l.trim_start();
    let word = t.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    word.len() >= 3 && ["selective", "direct", "cartesian"].iter().any(|w| w.starts_with(&word))
}

/// Test fixtures shared by the reader/writer tests of this module and its siblings.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn el(s: &str) -> Element {
        Element::from_symbol(s).unwrap()
    }

    /// A triclinic cell with three species, deliberately not grouped by species.
    pub fn triclinic() -> Structure {
        let lattice = Lattice::from_row_vectors([[4.1, 0.2, -0.1], [0.7, 5.3, 0.3], [-0.4, 0.9, 6.2]]).unwrap();
        let species = ["Li", "Fe", "O", "Fe", "O", "O", "Li"].map(el).to_vec();
        let frac = [
            [0.0, 0.0, 0.0],
            [0.5, 0.25, 0.125],
            [0.123456789012345, 0.7, 0.9],
            [0.75, 0.5, 0.375],
            [0.31, 0.62, 0.04],
            [0.9, 0.1, 0.55],
            [0.5, 0.5, 0.5],
        ]
        .map(Vector3::from)
        .to_vec();
        Structure::from_frac(lattice, species, frac).unwrap()
    }

    /// Rock salt, 8 sites, species alternating.
    pub fn rocksalt() -> Structure {
        let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let mut sp = vec![];
        let mut fr = vec![];
        for p in fcc {
            sp.push(el("Na"));
            fr.push(Vector3::from(p));
            sp.push(el("Cl"));
            fr.push(Vector3::from(p) + Vector3::new(0.5, 0.5, 0.5));
        }
        Structure::from_frac(
            Lattice::from_row_vectors([[5.64, 0.0, 0.0], [0.0, 5.64, 0.0], [0.0, 0.0, 5.64]]).unwrap(),
            sp,
            fr,
        )
        .unwrap()
    }

    pub fn assert_same(a: &Structure, b: &Structure, tol: f64) {
        assert_eq!(a.species(), b.species());
        for (ra, rb) in a.lattice.row_vectors().iter().zip(b.lattice.row_vectors()) {
            for k in 0..3 {
                assert!((ra[k] - rb[k]).abs() < tol, "lattice {ra:?} vs {rb:?}");
            }
        }
        for (fa, fb) in a.frac_coords().iter().zip(b.frac_coords()) {
            assert!((fa - fb).norm() < tol, "coords {fa:?} vs {fb:?}");
        }
    }

    /// The directory the cross-check files go to (`target/io-roundtrip/`).
    pub fn roundtrip_dir() -> std::path::PathBuf {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/io-roundtrip");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// JSON sidecar content for the cross-check script: what a reader must find in the file.
    pub fn sidecar(structures: &[Structure]) -> Value {
        Value::Array(
            structures
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "lattice": s.lattice.row_vectors(),
                        "species": s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(),
                        "frac_coords": s.frac_coords().iter().map(|f| [f[0], f[1], f[2]]).collect::<Vec<_>>(),
                        "site_properties": s.site_properties,
                        "properties": s.properties,
                    })
                })
                .collect(),
        )
    }

    /// Load `tests/assets/formats/expected.json` and the entry for `file`.
    pub fn expected_for(file: &str) -> (String, Vec<Value>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/formats");
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let list = expected["files"][file]["structures"]
            .as_array()
            .unwrap_or_else(|| panic!("no {file} in expected.json"))
            .clone();
        (text, list)
    }

    /// Compare a parsed structure with an entry of expected.json (lattice rows, species, frac coords).
    pub fn assert_matches_expected(s: &Structure, e: &Value, tol: f64) {
        let species: Vec<&str> = e["species"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), species);
        let rows = s.lattice.row_vectors();
        for i in 0..3 {
            for j in 0..3 {
                let x = e["lattice"][i][j].as_f64().unwrap();
                assert!((rows[i][j] - x).abs() < tol, "lattice[{i}][{j}] {} vs {x}", rows[i][j]);
            }
        }
        for (k, f) in s.frac_coords().iter().enumerate() {
            for j in 0..3 {
                let x = e["frac_coords"][k][j].as_f64().unwrap();
                assert!((f[j] - x).abs() < tol, "site {k} frac[{j}] {} vs {x}", f[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "x/POSCAR").unwrap_err().to_string()
    }

    const SI: &str =
        "Si2 diamond\n1.0\n5.43 0.0 0.0\n0.0 5.43 0.0\n0.0 0.0 5.43\nSi\n2\nDirect\n0.0 0.0 0.0\n0.25 0.25 0.25\n";

    #[test]
    fn reads_vasp5() {
        let s = parse(SI, "POSCAR").unwrap();
        assert_eq!(s.n_sites(), 2);
        assert_eq!(s.species()[0].symbol(), "Si");
        assert!((s.volume() - 5.43f64.powi(3)).abs() < 1e-9);
        assert!((s.frac_coords()[1] - Vector3::new(0.25, 0.25, 0.25)).norm() < 1e-15);
        assert_eq!(s.properties["comment"], "Si2 diamond");
        assert!(s.site_properties.is_empty());
    }

    #[test]
    fn scale_factors() {
        // Positive factor scales the lattice and Cartesian coordinates.
        let t = "c\n2.0\n1 0 0\n0 1 0\n0 0 1\nNa Cl\n1 1\nCartesian\n0 0 0\n0.5 0.5 0.5\n";
        let s = parse(t, "p").unwrap();
        assert!((s.volume() - 8.0).abs() < 1e-12);
        assert!((s.frac_coords()[1] - Vector3::new(0.5, 0.5, 0.5)).norm() < 1e-12);
        // Negative = volume; Cartesian coordinates follow the same factor.
        let t = "c\n-64\n1 0 0\n0 1 0\n0 0 1\nNa Cl\n1 1\ncart\n0 0 0\n0.5 0.5 0.5\n";
        let s = parse(t, "p").unwrap();
        assert!((s.volume() - 64.0).abs() < 1e-9);
        assert!((s.frac_coords()[1] - Vector3::new(0.5, 0.5, 0.5)).norm() < 1e-12);
        // Three per-axis factors (VASP 6).
        let t = "c\n2 3 4\n1 0 0\n0 1 0\n0 0 1\nNa Cl\n1 1\nKartesian\n0 0 0\n0.5 0.5 0.5\n";
        let s = parse(t, "p").unwrap();
        assert!((s.volume() - 24.0).abs() < 1e-9);
        assert_eq!(s.lattice.lengths(), [2.0, 3.0, 4.0]);
        assert!((s.frac_coords()[1] - Vector3::new(0.5, 0.5, 0.5)).norm() < 1e-12);
        assert!(err("c\n2 -3 4\n1 0 0\n0 1 0\n0 0 1\nNa\n1\nD\n0 0 0\n").contains("line 2"));
        assert!(err("c\n0\n1 0 0\n0 1 0\n0 0 1\nNa\n1\nD\n0 0 0\n").contains("scale factor 0"));
        assert!(err("c\nabc\n1 0 0\n0 1 0\n0 0 1\nNa\n1\nD\n0 0 0\n").contains("line 2"));
    }

    #[test]
    fn selective_dynamics_and_extras() {
        let t = "with sd\n1.0\n4 0 0\n0 4 0\n0 0 4\nFe_pv O/abc123\n1 2\nselective dynamics\nDirect\n0 0 0 T F T Fe\n0.5 0.5 0.5 F F F O\n0.5 0 0 .TRUE. t f ! comment\n\n0.1 0.2 0.3\n0 0 0\n0 0 0\n";
        let s = parse(t, "p").unwrap();
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Fe", "O", "O"]);
        let sd = &s.site_properties["selective_dynamics"];
        assert_eq!(sd[0], serde_json::json!([true, false, true]));
        assert_eq!(sd[1], serde_json::json!([false, false, false]));
        assert_eq!(sd[2], serde_json::json!([true, true, false]));
        let e = err("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nFe\n1\nSelective\nDirect\n0 0 0 T F\n");
        assert!(e.contains("line 10") && e.contains("flag 3 is nothing"), "{e}");
        let e = err("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nFe\n1\nSelective\nDirect\n0 0 0 T X T\n");
        assert!(e.contains("line 10") && e.contains("\"X\""), "{e}");
    }

    #[test]
    fn contcar_blocks_are_ignored() {
        let t = format!("{}\n0 0 0\n0 0 0\n\n  1\n", SI);
        assert_eq!(parse(&t, "p").unwrap().n_sites(), 2);
        let t = SI.to_string() + "Lattice velocities and vectors\n  1\n0 0 0\n0 0 0\n0 0 0\n";
        assert_eq!(parse(&t, "p").unwrap().n_sites(), 2);
        // Windows line endings and a BOM.
        let t = format!("\u{feff}{}", SI.replace('\n', "\r\n"));
        assert_eq!(parse(&t, "p").unwrap().n_sites(), 2);
    }

    #[test]
    fn vasp4_needs_named_elements() {
        // Symbols on the comment line (ASE's convention).
        let t = "Na Cl\n1.0\n4 0 0\n0 4 0\n0 0 4\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n";
        let s = parse(t, "p").unwrap();
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Na", "Cl"]);
        // Symbols after the coordinates (pymatgen's convention).
        let t = "rocksalt\n1.0\n4 0 0\n0 4 0\n0 0 4\n1 1\nDirect\n0 0 0 Na\n0.5 0.5 0.5 Cl\n";
        let s = parse(t, "p").unwrap();
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Na", "Cl"]);
        // Neither: an error naming the counts line.
        let e = err("rocksalt\n1.0\n4 0 0\n0 4 0\n0 0 4\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n");
        assert!(e.contains("line 6") && e.contains("VASP 4") && e.contains("x/POSCAR"), "{e}");
        // Comment symbols must match the number of counts.
        assert!(err("Na Cl K\n1.0\n4 0 0\n0 4 0\n0 0 4\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n").contains("VASP 4"));
    }

    #[test]
    fn wrapped_species_lines() {
        let t = "wrapped\n1.0\n4 0 0\n0 4 0\n0 0 4\nFe Cr\nNi\n1 2\n1\nDirect\n0 0 0\n0.5 0 0\n0 0.5 0\n0 0 0.5\n";
        let s = parse(t, "p").unwrap();
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Fe", "Cr", "Cr", "Ni"]);
    }

    #[test]
    fn malformed_inputs_name_line_and_problem() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "", "empty"),
            ("   \n\n", "", "empty"),
            ("c\n1.0\n4 0 0\n0 4 0\n", "line 5", "lattice vector c"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 nan\nNa\n1\nD\n0 0 0\n", "line 5", "finite"),
            ("c\n1.0\n4 0 0\n0 inf 0\n0 0 4\nNa\n1\nD\n0 0 0\n", "line 4", "finite"),
            ("c\n1.0\n4 0 0\n8 0 0\n0 0 4\nNa\n1\nD\n0 0 0\n", "line 3", "volume"),
            ("c\n-10\n4 0 0\n8 0 0\n0 0 4\nNa\n1\nD\n0 0 0\n", "line 3", "volume"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nXx\n1\nD\n0 0 0\n", "line 6", "unknown element \"Xx\""),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa Cl\n1\nD\n0 0 0\n", "line 7", "1 atom counts for 2 species"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa Cl\n1 1\nD\n0 0 0\n", "line 10", "after 1 of 2 coordinate lines"),
            (
                "c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa Cl\n1 1\nD\n0 0 0\n0.5 0.5 0.5\n0.1 0.1 0.1\n",
                "line 11",
                "more coordinate lines",
            ),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n0\nD\n", "line 7", "sum to 0"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n-1\nD\n0 0 0\n", "line 7", "\"-1\""),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1.5\nD\n0 0 0\n", "line 7", "\"1.5\""),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n99999999999999999999\nD\n0 0 0\n", "line 7", "99999999999999999999"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1\n0 0 0\n", "line 8", "Direct or Cartesian"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n0 0\n", "line 9", "three numbers"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n0 NaN 0\n", "line 9", "finite"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n0 x 0\n", "line 9", "not a number"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n\n", "line 9", "empty line"),
            ("POSCAR\0\u{1}\u{2} binary junk", "line 1", "control character"),
            ("c\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n0 0 \u{7}0\n", "line 9", "control character U+0007"),
        ];
        for (text, line, msg) in cases {
            let e = err(text);
            assert!(e.contains(line) && e.contains(msg) && e.contains("x/POSCAR"), "{text:?} gave {e}");
            assert!(!e.contains(". ("), "message ends with a period: {e}");
        }
        // Scale errors at the top: inf, NaN.
        assert!(err("c\ninf\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n0 0 0\n").contains("line 2"));
        assert!(err("c\nNaN\n4 0 0\n0 4 0\n0 0 4\nNa\n1\nD\n0 0 0\n").contains("line 2"));
    }

    #[test]
    fn every_prefix_is_an_error_or_a_structure() {
        let t = "with sd\n1.0\n4 0 0\n0 4 0\n0 0 4\nFe O\n1 2\nSelective dynamics\nDirect\n0 0 0 T F T\n0.5 0.5 0.5 F F F\n0.5 0 0 T T F\n";
        for (i, _) in t.char_indices() {
            if let Err(e) = parse(&t[..i], "p") {
                assert!(e.to_string().contains("line") || e.to_string().contains("empty"), "{e}");
            }
        }
    }

    #[test]
    fn malformed_corpus_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/malformed");
        for (name, line) in [("nan_coordinate.vasp", "line 10"), ("zero_volume.vasp", "line 3")] {
            let Ok(text) = std::fs::read_to_string(dir.join(name)) else { continue };
            let e = parse(&text, name).unwrap_err().to_string();
            assert!(e.contains(line) && e.contains(name), "{e}");
        }
    }

    #[test]
    fn round_trip() {
        // Grouped species: identical.
        let mut s = rocksalt().permuted(&[0, 2, 4, 6, 1, 3, 5, 7]);
        s.properties.insert("comment".into(), "rock salt".into());
        let back = parse(&write(&s), "p").unwrap();
        assert_same(&s, &back, 1e-10);
        assert_eq!(back.properties["comment"], "rock salt");
        // Ungrouped species come back grouped by first appearance.
        let t = triclinic();
        let order = write_order(&t);
        assert_eq!(order, [0, 6, 1, 3, 2, 4, 5]);
        let text = write(&t);
        assert!(text.starts_with("Li2 Fe2 O3\n1.0\n"), "{text}");
        assert!(text.contains("  Li  Fe   O\n   2   2   3\n"), "{text}");
        assert_same(&t.permuted(&order), &parse(&text, "p").unwrap(), 1e-10);
        // Selective dynamics survive; odd values are written as free.
        let mut sd = t.clone();
        let flags: Vec<Value> = (0..t.n_sites()).map(|i| serde_json::json!([i % 2 == 0, true, i % 3 == 0])).collect();
        sd.site_properties.insert("selective_dynamics".into(), flags.clone());
        let back = parse(&write(&sd), "p").unwrap();
        assert_eq!(
            back.site_properties["selective_dynamics"],
            order.iter().map(|&i| flags[i].clone()).collect::<Vec<_>>()
        );
        // Coordinates outside [0, 1) and large/small numbers keep their values.
        let mut odd = t.clone();
        odd.frac_coords_mut()[0] = Vector3::new(-0.25, 1.5, 1e-12);
        let back = parse(&write(&odd), "p").unwrap();
        assert_same(&odd.permuted(&order), &back, 1e-10);
    }

    #[test]
    fn number_format() {
        assert_eq!(fmt_sig16(0.0), "0.0000000000000000");
        assert_eq!(fmt_sig16(-0.0), "0.0000000000000000");
        assert_eq!(fmt_sig16(5.43), "5.430000000000000");
        assert_eq!(fmt_sig16(0.12345678901234568), "0.1234567890123457");
        assert_eq!(fmt_sig16(-12.5), "-12.50000000000000");
        assert_eq!(parse_real("1.5D-1"), Some(0.15));
    }

    /// Writes the cross-check files for `scripts/check_io_roundtrip.py` and reads them back.
    #[test]
    fn write_roundtrip_files() {
        let dir = roundtrip_dir();
        let t = triclinic();
        let mut sd = rocksalt();
        sd.properties.insert("comment".into(), "rock salt with selective dynamics".into());
        let flags = (0..sd.n_sites()).map(|i| serde_json::json!([i % 2 == 0, i % 3 != 0, true])).collect();
        sd.site_properties.insert("selective_dynamics".into(), flags);
        for (name, s) in [("poscar_triclinic.vasp", t), ("poscar_selective.vasp", sd)] {
            let text = write(&s);
            std::fs::write(dir.join(name), &text).unwrap();
            let expected = s.permuted(&write_order(&s));
            let side = serde_json::json!({"format": "poscar", "structures": sidecar(std::slice::from_ref(&expected))});
            std::fs::write(dir.join(format!("{name}.expected.json")), serde_json::to_string_pretty(&side).unwrap())
                .unwrap();
            let back = crate::io::read_structures(&dir.join(name)).unwrap();
            assert_eq!(back.len(), 1);
            assert_same(&expected, &back[0], 1e-12);
        }
    }

    #[test]
    fn reference_file_from_pymatgen() {
        let (text, expected) = expected_for("pymatgen_selective.vasp");
        let s = parse(&text, "pymatgen_selective.vasp").unwrap();
        assert_eq!(expected.len(), 1);
        assert_matches_expected(&s, &expected[0], 1e-10);
        assert_eq!(
            serde_json::to_value(&s.site_properties["selective_dynamics"]).unwrap(),
            expected[0]["site_properties"]["selective_dynamics"]
        );
        assert_eq!(s.properties["comment"], expected[0]["properties"]["comment"]);
    }
}
