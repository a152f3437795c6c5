//! pymatgen JSON: `Structure.as_dict()` objects, read and written.
//!
//! Reader: one `Structure` dict, a JSON list of them, or an entry dict with a `"structure"` key
//! (`ComputedStructureEntry.as_dict()`, alone or in a list). Each site must hold exactly one element
//! with occupancy 1: partial occupancies are errors naming the site (`sites[3]`, zero-based as in
//! pymatgen). Oxidation states (`"oxidation_state": 3`) are dropped, keeping the element. Site
//! `"properties"` go to `site_properties` (sites lacking a key get `null`), the structure's
//! `"properties"` to `properties`; a site `"label"` other than pymatgen's default (the species string)
//! goes to `site_properties["label"]`. From an entry, `entry_id`, `energy` (corrected, as pymatgen's
//! `ComputedEntry.energy`), `uncorrected_energy` and `correction` are added to `properties` unless
//! the structure already has them. Python's bare `NaN`/`Infinity` tokens are read as `null`.
//! Coordinates come from `"abc"` (fractional), or `"xyz"` (Cartesian Å) where `"abc"` is missing; the
//! lattice from `"matrix"` (rows are vectors), or from `a`, `b`, `c`, `alpha`, `beta`, `gamma`.
//!
//! Writer: pymatgen's `as_dict()` layout (`@module`, `@class`, `charge`, `lattice` with `matrix`,
//! `pbc`, parameters and `volume`, `properties`, `sites` with `species`, `abc`, `xyz`, `properties`,
//! `label`), pretty-printed with keys sorted; one object for one structure, else a list.

use std::collections::BTreeMap;

use nalgebra::Vector3;
use serde_json::{Map, Value, json};

use super::poscar::check_plain_text;
use super::{IoError, python_json_to_strict};
use crate::crystal::{CrystalError, Element, Lattice, LatticeParams, Structure};

/// Parse pymatgen JSON (see the module notes). `path` names the file in error messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<Structure>, IoError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_plain_text(text, path, "JSON")?;
    if text.trim().is_empty() {
        return Err(IoError::whole(path, "file is empty, expected a pymatgen Structure dict or a list of them"));
    }
    let strict = python_json_to_strict(text);
    let value: Value = serde_json::from_str(&strict).map_err(|e| {
        let full = e.to_string();
        let what = full.rfind(" at line ").map_or(full.as_str(), |i| &full[..i]);
        let msg = format!(
            "invalid JSON: {what} at column {}, expected a pymatgen Structure dict or a list of them",
            e.column()
        );
        if e.line() > 0 { IoError::at(path, e.line(), msg) } else { IoError::whole(path, msg) }
    })?;
    match &value {
        Value::Array(items) if items.is_empty() => {
            Err(IoError::whole(path, "empty JSON list, expected pymatgen Structure dicts"))
        }
        Value::Array(items) => {
            items.iter().enumerate().map(|(i, v)| structure_from(v, &format!("[{i}]"), path)).collect()
        }
        Value::Object(_) => Ok(vec![structure_from(&value, "", path)?]),
        other => Err(IoError::whole(
            path,
            format!("JSON {}, expected a pymatgen Structure dict or a list of them", kind(other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `prefix` locates the object in the file (`""`, `"[2]"`), for messages.
/// One `Structure.as_dict()` (or an entry dict with a `"structure"`) from a JSON value; `prefix` says
/// where it sits in the file (`[3]`, `data[3]`) in error messages.
pub fn structure_from_value(v: &Value, prefix: &str, path: &str) -> Result<Structure, IoError> {
    structure_from(v, prefix, path)
}

fn structure_from(v: &Value, prefix: &str, path: &str) -> Result<Structure, IoError> {
    let err = |at: &str, m: String| {
        let loc = format!("{prefix}{}{at}", if prefix.is_empty() || at.is_empty() { "" } else { "." });
        IoError::whole(path, if loc.is_empty() { m } else { format!("{loc}: {m}") })
    };
    let Value::Object(obj) = v else {
        return Err(err("", format!("{}, expected a pymatgen Structure dict", kind(v))));
    };
    // An entry wrapping a structure.
    if let Some(inner) = obj.get("structure") {
        let entry_prefix = format!("{prefix}{}structure", if prefix.is_empty() { "" } else { "." });
        let mut s = structure_from(inner, &entry_prefix, path)?;
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        let mut extra: Vec<(&str, Value)> = Vec::new();
        if let Some(id) = obj.get("entry_id").filter(|v| !v.is_null()) {
            extra.push(("entry_id", id.clone()));
        }
        if let Some(e) = num("energy") {
            let c = num("correction").unwrap_or(0.0);
            extra.push(("energy", json!(e + c)));
            extra.push(("uncorrected_energy", json!(e)));
            extra.push(("correction", json!(c)));
        }
        for (k, v) in extra {
            s.properties.entry(k.to_string()).or_insert(v);
        }
        return Ok(s);
    }
    if let Some(class) = obj.get("@class").and_then(Value::as_str)
        && class.contains("Molecule")
    {
        return Err(err("", format!("@class {class:?}, expected a periodic Structure (with a lattice)")));
    }
    let lattice = lattice_from(obj.get("lattice"), &|at, m| err(at, m))?;
    let Some(sites) = obj.get("sites") else {
        return Err(err("", "no \"sites\" key, expected a list of sites".into()));
    };
    let Value::Array(sites) = sites else {
        return Err(err("sites", format!("{}, expected a list of sites", kind(sites))));
    };
    if sites.is_empty() {
        return Err(err("sites", "empty list, expected at least one site".into()));
    }
    let mut species = Vec::with_capacity(sites.len());
    let mut frac = Vec::with_capacity(sites.len());
    let mut cart_only = Vec::with_capacity(sites.len());
    let mut props: Vec<Option<&Map<String, Value>>> = Vec::with_capacity(sites.len());
    let mut labels: Vec<Option<String>> = Vec::with_capacity(sites.len());
    let mut label_is_default = true;
    for (i, site) in sites.iter().enumerate() {
        let at = format!("sites[{i}]");
        let Value::Object(site) = site else {
            return Err(err(&at, format!("{}, expected a site object", kind(site))));
        };
        let (el, default_labels) = site_element(site.get("species"), &|m| err(&at, m))?;
        species.push(el);
        let coords = |key: &str| -> Result<Option<Vector3<f64>>, IoError> {
            match site.get(key) {
                None => Ok(None),
                Some(v) => vec3(v)
                    .map(Some)
                    .ok_or_else(|| err(&format!("{at}.{key}"), format!("{}, expected three finite numbers", short(v)))),
            }
        };
        match (coords("abc")?, coords("xyz")?) {
            (Some(f), _) => {
                frac.push(f);
                cart_only.push(false);
            }
            (None, Some(c)) => {
                frac.push(lattice.to_frac(&c));
                cart_only.push(true);
            }
            (None, None) => {
                return Err(err(
                    &at,
                    "no \"abc\" or \"xyz\" coordinates, expected fractional \"abc\": [x, y, z]".into(),
                ));
            }
        }
        props.push(match site.get("properties") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(err(&format!("{at}.properties"), format!("{}, expected an object", kind(other))));
            }
        });
        let label = site.get("label").and_then(Value::as_str).map(str::to_string);
        if let Some(l) = &label
            && !default_labels.contains(l)
        {
            label_is_default = false;
        }
        labels.push(label);
    }
    let mut s = Structure::from_frac(lattice, species, frac).map_err(|e| err("sites", e.to_string()))?;
    let keys: std::collections::BTreeSet<&String> = props.iter().flatten().flat_map(|m| m.keys()).collect();
    for k in keys {
        let values = props.iter().map(|m| m.and_then(|m| m.get(k)).cloned().unwrap_or(Value::Null)).collect();
        s.site_properties.insert(k.clone(), values);
    }
    if !label_is_default && !s.site_properties.contains_key("label") {
        let values = labels
            .iter()
            .zip(s.species())
            .map(|(l, e)| Value::String(l.clone().unwrap_or_else(|| e.symbol().to_string())))
            .collect();
        s.site_properties.insert("label".into(), values);
    }
    match obj.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            s.properties = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>()
        }
        Some(other) => return Err(err("properties", format!("{}, expected an object", kind(other)))),
    }
    Ok(s)
}

/// A short rendering of a JSON value for messages.
fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 60 { format!("{}…", t.chars().take(60).collect::<String>()) } else { t }
}

fn vec3(v: &Value) -> Option<Vector3<f64>> {
    let a = v.as_array()?;
    if a.len() != 3 {
        return None;
    }
    let x: Vec<f64> = a.iter().map(Value::as_f64).collect::<Option<_>>()?;
    x.iter().all(|x| x.is_finite()).then(|| Vector3::new(x[0], x[1], x[2]))
}

fn lattice_from(v: Option<&Value>, err: &dyn Fn(&str, String) -> IoError) -> Result<Lattice, IoError> {
    let Some(v) = v else {
        return Err(err("", "no \"lattice\" key, expected a lattice with a 3×3 \"matrix\"".into()));
    };
    let Value::Object(l) = v else {
        return Err(err("lattice", format!("{}, expected an object with a 3×3 \"matrix\"", kind(v))));
    };
    if let Some(pbc) = l.get("pbc")
        && !pbc.is_null()
        && pbc != &json!([true, true, true])
    {
        return Err(err(
            "lattice.pbc",
            format!("{}, expected [true, true, true] (periodic in all three directions)", short(pbc)),
        ));
    }
    let built = if let Some(m) = l.get("matrix") {
        let rows =
            m.as_array().ok_or_else(|| err("lattice.matrix", format!("{}, expected 3 rows of 3 numbers", short(m))))?;
        if rows.len() != 3 {
            return Err(err("lattice.matrix", format!("{} rows, expected 3 rows of 3 numbers", rows.len())));
        }
        let mut r = [[0.0; 3]; 3];
        for (i, row) in rows.iter().enumerate() {
            r[i] = vec3(row).map(|v| [v[0], v[1], v[2]]).ok_or_else(|| {
                err(&format!("lattice.matrix[{i}]"), format!("{}, expected three finite numbers", short(row)))
            })?;
        }
        Lattice::from_row_vectors(r)
    } else {
        let p = |k: &str| l.get(k).and_then(Value::as_f64);
        match (p("a"), p("b"), p("c"), p("alpha"), p("beta"), p("gamma")) {
            (Some(a), Some(b), Some(c), Some(alpha_deg), Some(beta_deg), Some(gamma_deg)) => {
                Lattice::from_parameters(LatticeParams { a, b, c, alpha_deg, beta_deg, gamma_deg })
            }
            _ => {
                return Err(err(
                    "lattice",
                    "no \"matrix\", expected a 3×3 \"matrix\" (or a, b, c, alpha, beta, gamma)".into(),
                ));
            }
        }
    };
    built.map_err(|e| match e {
        CrystalError::SingularLattice { volume_ang3 } => {
            err("lattice", format!("cell volume {volume_ang3:e} Å³, expected a non-degenerate cell"))
        }
        other => err("lattice", other.to_string()),
    })
}

/// The element of a site's `species` list, and the labels pymatgen gives such a site by default.
fn site_element(v: Option<&Value>, err: &dyn Fn(String) -> IoError) -> Result<(Element, Vec<String>), IoError> {
    let Some(Value::Array(list)) = v else {
        return Err(err(format!(
            "species is {}, expected a list such as [{{\"element\": \"Fe\", \"occu\": 1}}]",
            v.map_or("missing", kind)
        )));
    };
    let describe = || {
        list.iter()
            .map(|sp| {
                format!(
                    "{}:{}",
                    sp.get("element").and_then(Value::as_str).unwrap_or("?"),
                    sp.get("occu").map_or("?".into(), Value::to_string)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if list.len() != 1 {
        return Err(err(format!(
            "{} species ({}), expected one element with occupancy 1 (partial occupancies are not supported)",
            list.len(),
            describe()
        )));
    }
    let sp = &list[0];
    let occu = sp.get("occu").map_or(Some(1.0), Value::as_f64);
    if occu.is_none_or(|o| (o - 1.0).abs() > 1e-6) {
        return Err(err(format!(
            "occupancy {} ({}), expected 1 (partial occupancies are not supported)",
            sp.get("occu").map_or("?".into(), short),
            describe()
        )));
    }
    let Some(symbol) = sp.get("element").and_then(Value::as_str) else {
        return Err(err(format!(
            "species[0].element is {}, expected an element symbol",
            sp.get("element").map_or("missing".into(), short)
        )));
    };
    let el = Element::from_symbol(symbol)
        .or_else(|_| {
            Element::from_label(symbol).map(|(e, _)| e).map_err(|_| CrystalError::UnknownElement(symbol.into()))
        })
        .map_err(|_| err(format!("unknown element {symbol:?}, expected an element symbol such as Fe")))?;
    let mut defaults = vec![el.symbol().to_string()];
    if let Some(ox) = sp.get("oxidation_state").and_then(Value::as_f64).filter(|o| *o != 0.0) {
        let mag = ox.abs();
        let amount = if (mag - 1.0).abs() < 1e-9 {
            String::new()
        } else if (mag - mag.round()).abs() < 1e-9 {
            format!("{}", mag.round() as i64)
        } else {
            format!("{mag:.2}")
        };
        defaults.push(format!("{}{amount}{}", el.symbol(), if ox > 0.0 { '+' } else { '-' }));
    }
    Ok((el, defaults))
}

/// pymatgen's `Structure.as_dict()` for `s`.
pub fn to_dict(s: &Structure) -> Value {
    let p = s.lattice.params();
    let labels = s.site_properties.get("label");
    let sites: Vec<Value> = (0..s.n_sites())
        .map(|i| {
            let f = s.frac_coords()[i];
            let c = s.lattice.to_cart(&f);
            let props: Map<String, Value> = s
                .site_properties
                .iter()
                .filter(|(k, _)| k.as_str() != "label")
                .map(|(k, v)| (k.clone(), v.get(i).cloned().unwrap_or(Value::Null)))
                .collect();
            let label = labels.and_then(|l| l.get(i)).and_then(Value::as_str).unwrap_or(s.species()[i].symbol());
            json!({
                "species": [{"element": s.species()[i].symbol(), "occu": 1}],
                "abc": [f[0], f[1], f[2]],
                "xyz": [c[0], c[1], c[2]],
                "properties": props,
                "label": label,
            })
        })
        .collect();
    json!({
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0.0,
        "lattice": {
            "matrix": s.lattice.row_vectors(),
            "pbc": [true, true, true],
            "a": p.a, "b": p.b, "c": p.c,
            "alpha": p.alpha_deg, "beta": p.beta_deg, "gamma": p.gamma_deg,
            "volume": s.volume(),
        },
        "properties": s.properties,
        "sites": sites,
    })
}

/// Render structures as pymatgen JSON: one object for one structure, else a list.
pub fn write(structures: &[Structure]) -> String {
    let v = match structures {
        [s] => to_dict(s),
        _ => Value::Array(structures.iter().map(to_dict).collect()),
    };
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::poscar::fixtures::*;
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "x/s.json").unwrap_err().to_string()
    }

    /// `Structure.as_dict()` from pymatgen 2026.10.24 (site properties, structure properties).
    const PMG: &str = r#"{"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0.0, "lattice": {"matrix": [[2.988584094275237, 0.0, -0.2614672282429747], [-0.6364769540300975, 3.88747193601135, 0.6945927106677217], [0.0, 0.0, 5.0]], "pbc": [true, true, true], "a": 3.0, "b": 3.9999999999999996, "c": 5.0, "alpha": 80.0, "beta": 95.0, "gamma": 100.0, "volume": 58.09018397452441}, "properties": {"energy": -1.5}, "sites": [{"species": [{"element": "Fe", "occu": 1}], "abc": [0.0, 0.0, 0.0], "properties": {"magmom": 1}, "label": "Fe", "xyz": [0.0, 0.0, 0.0]}, {"species": [{"element": "O", "occu": 1}], "abc": [0.5, 0.5, 0.5], "properties": {"magmom": 2}, "label": "O", "xyz": [1.1760535701225696, 1.943735968005675, 2.7165627412123734]}, {"species": [{"element": "Fe", "occu": 1}], "abc": [0.1, 0.2, 0.3], "properties": {"magmom": 3}, "label": "Fe", "xyz": [0.17156301862150417, 0.77749438720227, 1.6127718193092468]}]}"#;

    #[test]
    fn reads_pymatgen_dict() {
        let s = &parse(PMG, "s.json").unwrap()[0];
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Fe", "O", "Fe"]);
        assert!((s.volume() - 58.09018397452441).abs() < 1e-9);
        assert_eq!(s.site_properties["magmom"], vec![json!(1), json!(2), json!(3)]);
        assert_eq!(s.properties["energy"], json!(-1.5));
        assert!(!s.site_properties.contains_key("label"));
        // A list of two, and an entry wrapper.
        let list = format!("[{PMG}, {PMG}]");
        assert_eq!(parse(&list, "s.json").unwrap().len(), 2);
        let entry = format!(
            r#"{{"@module": "pymatgen.entries.computed_entries", "@class": "ComputedStructureEntry", "energy": -5.0, "correction": -1.0, "entry_id": "mp-1", "structure": {PMG}}}"#
        );
        let e = &parse(&entry, "e.json").unwrap()[0];
        assert_eq!(e.properties["entry_id"], "mp-1");
        assert_eq!(e.properties["energy"], json!(-1.5)); // the structure's own value wins
        assert_eq!(e.properties["uncorrected_energy"], json!(-5.0));
        assert_eq!(e.properties["correction"], json!(-1.0));
    }

    #[test]
    fn oxidation_states_labels_and_cartesian() {
        let t = r#"{"lattice": {"matrix": [[3,0,0],[0,3,0],[0,0,3]]}, "sites": [
            {"species": [{"element": "Fe", "oxidation_state": 3.0, "spin": null, "occu": 1}], "abc": [0,0,0], "properties": {}, "label": "Fe3+"},
            {"species": [{"element": "O", "oxidation_state": -2, "occu": 1.0}], "xyz": [1.5, 1.5, 1.5], "label": "O2-", "properties": {"magmom": NaN}}]}"#;
        let s = &parse(t, "s.json").unwrap()[0];
        assert_eq!(s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(), ["Fe", "O"]);
        assert!((s.frac_coords()[1] - Vector3::new(0.5, 0.5, 0.5)).norm() < 1e-12);
        assert!(!s.site_properties.contains_key("label"));
        assert_eq!(s.site_properties["magmom"], vec![Value::Null, Value::Null]);
        let t = t.replace("\"Fe3+\"", "\"Fe1\"");
        let s = &parse(&t, "s.json").unwrap()[0];
        assert_eq!(s.site_properties["label"], vec![json!("Fe1"), json!("O2-")]);
        // From parameters when there is no matrix.
        let t = r#"{"lattice": {"a": 3, "b": 4, "c": 5, "alpha": 90, "beta": 90, "gamma": 120}, "sites": [{"species": [{"element": "Na", "occu": 1}], "abc": [0, 0, 0]}]}"#;
        assert!((parse(t, "s.json").unwrap()[0].volume() - 3.0 * 4.0 * 5.0 * 120f64.to_radians().sin()).abs() < 1e-9);
    }

    #[test]
    fn malformed_inputs_name_problem() {
        let good_lat = r#""lattice": {"matrix": [[3,0,0],[0,3,0],[0,0,3]]}"#;
        let site = r#"{"species": [{"element": "Na", "occu": 1}], "abc": [0, 0, 0]}"#;
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("  \n".into(), "empty"),
            ("[]".into(), "empty JSON list"),
            ("42".into(), "JSON number"),
            ("{\"lattice\": {\"matrix\": [[3,0,0],\n[0,3,0]".into(), "line 2"),
            ("{\"a\": 1,,}".into(), "line 1"),
            ("{\n\"a\": \u{0}}".into(), "line 2"),
            ("\u{1}\u{2}binary".into(), "control character"),
            (r#"{"lattice": {"matrix": [[4,0,0],[0,4,0]]}, "sites": []}"#.into(), "lattice.matrix: 2 rows"),
            (format!(r#"{{"lattice": {{"matrix": [[4,0,0],[8,0,0],[0,0,4]]}}, "sites": [{site}]}}"#), "volume"),
            (
                format!(r#"{{"lattice": {{"matrix": [[4,0,0],[0,NaN,0],[0,0,4]]}}, "sites": [{site}]}}"#),
                "lattice.matrix[1]: [0,null,0]",
            ),
            (
                format!(
                    r#"{{"lattice": {{"matrix": [[4,0,0],[0,4,0],[0,0,4]], "pbc": [true, true, false]}}, "sites": [{site}]}}"#
                ),
                "lattice.pbc",
            ),
            (format!(r#"{{{good_lat}}}"#), "no \"sites\""),
            (format!(r#"{{{good_lat}, "sites": []}}"#), "sites: empty list"),
            (r#"{"@class": "Molecule", "sites": []}"#.into(), "Molecule"),
            (
                format!(
                    r#"{{{good_lat}, "sites": [{site}, {{"species": [{{"element": "Fe", "occu": 0.5}}, {{"element": "Co", "occu": 0.5}}], "abc": [0,0,0]}}]}}"#
                ),
                "sites[1]: 2 species (Fe:0.5, Co:0.5)",
            ),
            (
                format!(
                    r#"{{{good_lat}, "sites": [{{"species": [{{"element": "Fe", "occu": 0.5}}], "abc": [0,0,0]}}]}}"#
                ),
                "sites[0]: occupancy 0.5",
            ),
            (
                format!(
                    r#"{{{good_lat}, "sites": [{{"species": [{{"element": "Xx", "occu": 1}}], "abc": [0,0,0]}}]}}"#
                ),
                "sites[0]: unknown element \"Xx\"",
            ),
            (
                format!(
                    r#"{{{good_lat}, "sites": [{{"species": [{{"element": "Na", "occu": 1}}], "abc": [0,Infinity,0]}}]}}"#
                ),
                "sites[0].abc: [0,null,0]",
            ),
            (
                format!(r#"{{{good_lat}, "sites": [{{"species": [{{"element": "Na", "occu": 1}}], "abc": [0,0]}}]}}"#),
                "sites[0].abc",
            ),
            (format!(r#"{{{good_lat}, "sites": [{{"species": [{{"element": "Na", "occu": 1}}]}}]}}"#), "no \"abc\""),
            (
                format!(
                    r#"[{{{good_lat}, "sites": [{site}]}}, {{{good_lat}, "sites": [{{"species": "Na", "abc": [0,0,0]}}]}}]"#
                ),
                "[1].sites[0]: species is string",
            ),
            (
                format!(r#"{{"energy": 1, "structure": {{{good_lat}, "sites": [{{"abc": [0,0,0]}}]}}}}"#),
                "structure.sites[0]: species is missing",
            ),
        ];
        for (text, msg) in &cases {
            let e = err(text);
            assert!(e.contains(msg) && e.contains("x/s.json"), "{text:?} gave {e}");
        }
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/malformed/bad_lattice.json");
        if let Ok(t) = std::fs::read_to_string(&p) {
            let e = parse(&t, "bad_lattice.json").unwrap_err().to_string();
            assert!(e.contains("lattice.matrix") && e.contains("bad_lattice.json"), "{e}");
        }
    }

    #[test]
    fn every_prefix_is_an_error_or_structures() {
        for (i, _) in PMG.char_indices() {
            let _ = parse(&PMG[..i], "p");
        }
        // Deep nesting is an error, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse(&deep, "p").is_err());
    }

    #[test]
    fn round_trip() {
        let mut a = triclinic();
        a.site_properties.insert("magmom".into(), (0..a.n_sites()).map(|i| json!(i as f64 - 0.5)).collect());
        a.site_properties.insert(
            "label".into(),
            (0..a.n_sites()).map(|i| json!(format!("{}{}", a.species()[i].symbol(), i + 1))).collect(),
        );
        a.properties.insert("energy".into(), json!(-3.25));
        a.properties.insert("nested".into(), json!({"k": [1, 2, {"x": null}]}));
        let b = rocksalt();
        let back = parse(&write(std::slice::from_ref(&a)), "p").unwrap();
        assert_eq!(back.len(), 1);
        assert_same(&a, &back[0], 1e-12);
        assert_eq!(back[0].site_properties, a.site_properties);
        assert_eq!(back[0].properties, a.properties);
        let text = write(&[a.clone(), b.clone()]);
        assert!(text.trim_start().starts_with('['));
        let back = parse(&text, "p").unwrap();
        assert_same(&b, &back[1], 1e-12);
        assert!(back[1].site_properties.is_empty() && back[1].properties.is_empty());
        assert_eq!(write(&[]).trim(), "[]");
    }

    /// Writes the cross-check files for `scripts/check_io_roundtrip.py` and reads them back.
    #[test]
    fn write_roundtrip_files() {
        let dir = roundtrip_dir();
        let mut a = triclinic();
        a.site_properties.insert("magmom".into(), (0..a.n_sites()).map(|i| json!(0.5 * i as f64)).collect());
        a.properties.insert("formation_energy_per_atom".into(), json!(-1.125));
        let frames = [a, rocksalt()];
        std::fs::write(dir.join("structures.json"), write(&frames)).unwrap();
        let side = json!({"format": "pmg_json", "structures": sidecar(&frames)});
        std::fs::write(dir.join("structures.json.expected.json"), serde_json::to_string_pretty(&side).unwrap())
            .unwrap();
        let back = crate::io::read_structures(&dir.join("structures.json")).unwrap();
        assert_eq!(back.len(), frames.len());
        for (a, b) in frames.iter().zip(&back) {
            assert_same(a, b, 1e-12);
        }
    }

    #[test]
    fn reference_files_from_pymatgen() {
        for file in ["pymatgen_structures.json", "pymatgen_entry.json"] {
            let (text, expected) = expected_for(file);
            let got = parse(&text, file).unwrap();
            assert_eq!(got.len(), expected.len(), "{file}");
            for (s, e) in got.iter().zip(&expected) {
                assert_matches_expected(s, e, 1e-10);
                for (k, v) in e["site_properties"].as_object().into_iter().flatten() {
                    assert_eq!(&serde_json::to_value(&s.site_properties[k]).unwrap(), v, "{file} {k}");
                }
                for (k, v) in e["properties"].as_object().into_iter().flatten() {
                    assert_eq!(&s.properties[k], v, "{file} {k}");
                }
            }
        }
    }
}
