//! Quantum ESPRESSO's XML output (`<prefix>.xml` / `data-file-schema.xml`, schema `qes`), as pw.x writes
//! it in Hartree atomic units: `output/atomic_structure` (cell `a1 a2 a3` and `atomic_positions/atom` in
//! bohr, species by label), `output/total_energy/etot` (Ha), `output/forces` (Ha/bohr, one row per atom),
//! `output/stress` (Ha/bohr³, QE's pressure-like sign), `output/convergence_info/scf_conv/convergence_achieved`
//! and, for relaxations, `opt_conv/convergence_achieved`.

use std::path::Path;

use nalgebra::{Matrix3, Vector3};
use roxmltree::{Document, Node};

use super::{DftResult, floats};
use crate::crystal::{Element, Lattice, Structure};
use crate::io::IoError;

/// Hartree in eV and the Bohr radius in Å (CODATA 2018, as QE 7).
pub const HARTREE_IN_EV: f64 = 27.211_386_245_988;
pub const BOHR_IN_ANG: f64 = 0.529_177_210_903;

fn child<'a, 'i>(n: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.tag_name().name() == tag)
}

fn path_of<'a, 'i>(n: Node<'a, 'i>, tags: &[&str]) -> Option<Node<'a, 'i>> {
    tags.iter().try_fold(n, |n, t| child(n, t))
}

fn text_bool(n: Option<Node>) -> Option<bool> {
    n.and_then(|n| n.text()).map(|t| matches!(t.trim(), "true" | "TRUE" | "T" | ".true."))
}

/// Read a pw.x XML file at `path`.
pub fn read(path: &Path) -> Result<DftResult, IoError> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    parse(&text, &path.display().to_string())
}

/// Parse the text of a pw.x XML file; `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<DftResult, IoError> {
    let doc = Document::parse(text)
        .map_err(|e| IoError::at(path, e.pos().row as usize, format!("not well-formed XML ({e})")))?;
    let root = doc.root_element();
    let err = |m: &str| IoError::whole(path, m.to_string());
    if root.tag_name().name() != "espresso" {
        return Err(err(&format!(
            "the root element is <{}>, not Quantum ESPRESSO's <qes:espresso>",
            root.tag_name().name()
        )));
    }
    let out = child(root, "output").ok_or_else(|| err("no <output>: pw.x did not finish writing it"))?;
    let st = child(out, "atomic_structure").ok_or_else(|| err("no <output><atomic_structure>"))?;
    let cell = child(st, "cell").ok_or_else(|| err("no <cell> in <atomic_structure>"))?;
    let mut rows = [[0.0; 3]; 3];
    for (i, tag) in ["a1", "a2", "a3"].iter().enumerate() {
        let v = floats(child(cell, tag).and_then(|n| n.text()).unwrap_or(""));
        if v.len() != 3 {
            return Err(err(&format!("<cell><{tag}> is not three numbers")));
        }
        rows[i] = [v[0] * BOHR_IN_ANG, v[1] * BOHR_IN_ANG, v[2] * BOHR_IN_ANG];
    }
    let lattice = Lattice::from_row_vectors(rows).map_err(|e| err(&format!("bad cell: {e}")))?;
    let positions = child(st, "atomic_positions").ok_or_else(|| err("no <atomic_positions>"))?;
    let mut species = Vec::new();
    let mut cart = Vec::new();
    for atom in positions.children().filter(|c| c.tag_name().name() == "atom") {
        let label = atom.attribute("name").unwrap_or("");
        // Species labels such as "Fe1" or "O_up": the element is the leading symbol.
        let (el, _) = Element::from_label(label).map_err(|_| err(&format!("species {label:?} names no element")))?;
        let v = floats(atom.text().unwrap_or(""));
        if v.len() != 3 {
            return Err(err(&format!("atom {label:?} has no three coordinates")));
        }
        species.push(el);
        cart.push(Vector3::new(v[0], v[1], v[2]) * BOHR_IN_ANG);
    }
    let n = species.len();
    let structure = Structure::from_cart(lattice, species, &cart).map_err(|e| IoError::crystal(path, None, e))?;
    let etot = path_of(out, &["total_energy", "etot"])
        .and_then(|n| n.text())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .ok_or_else(|| err("no <total_energy><etot>"))?;
    let force_unit = HARTREE_IN_EV / BOHR_IN_ANG;
    let forces = match child(out, "forces") {
        Some(f) => {
            let v = floats(f.text().unwrap_or(""));
            if v.len() != 3 * n {
                return Err(err(&format!("<forces> holds {} numbers for {n} atoms", v.len())));
            }
            Some(v.chunks(3).map(|c| Vector3::new(c[0], c[1], c[2]) * force_unit).collect())
        }
        None => None,
    };
    let stress_unit = HARTREE_IN_EV / BOHR_IN_ANG.powi(3);
    let stress = match child(out, "stress") {
        Some(s) => {
            let v = floats(s.text().unwrap_or(""));
            if v.len() != 9 {
                return Err(err(&format!("<stress> holds {} numbers, not 9", v.len())));
            }
            // Symmetric, so the storage order does not matter; QE's sign is the pressure's, ASE's the opposite.
            Some(Matrix3::from_fn(|i, j| -v[3 * i + j] * stress_unit))
        }
        None => None,
    };
    let conv = child(out, "convergence_info");
    let scf = text_bool(conv.and_then(|c| path_of(c, &["scf_conv", "convergence_achieved"])));
    let opt = text_bool(conv.and_then(|c| path_of(c, &["opt_conv", "convergence_achieved"])));
    let steps = conv
        .and_then(|c| path_of(c, &["opt_conv", "n_opt_steps"]))
        .and_then(|n| n.text())
        .and_then(|t| t.trim().parse::<usize>().ok())
        .unwrap_or(1);
    Ok(DftResult {
        structure,
        energy: etot * HARTREE_IN_EV,
        free_energy: etot * HARTREE_IN_EV,
        forces,
        stress,
        electronic_converged: scf.unwrap_or(false),
        ionic_converged: opt.unwrap_or(true),
        ionic_steps: steps.max(1),
    })
}
