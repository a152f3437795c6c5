//! VASP's `vasprun.xml`: the species from `<atominfo>`, each `<calculation>` (ionic step) with its
//! `<structure>` (basis rows in Å, fractional positions), `<varray name="forces">` (eV/Å),
//! `<varray name="stress">` (kBar, VASP's sign), `<energy>` (`e_fr_energy`, `e_wo_entrp`, `e_0_energy`)
//! and `<scstep>`s; `NELM` and `NSW` from `<parameters>`. Read as pymatgen's `Vasprun` and ASE's
//! `read_vasp_xml` read it (`tests/dft_parsers.rs` holds it to both).

use std::path::Path;

use nalgebra::{Matrix3, Vector3};
use roxmltree::{Document, Node};

use super::{DftResult, EV_PER_ANG3_IN_KBAR, floats};
use crate::crystal::{Element, Lattice, Structure};
use crate::io::IoError;

fn child<'a, 'i>(n: Node<'a, 'i>, tag: &str, name: Option<&str>) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag) && name.is_none_or(|want| c.attribute("name") == Some(want)))
}

/// The rows of a `<varray>` (each `<v>` a vector).
fn varray(n: Node) -> Vec<Vec<f64>> {
    n.children().filter(|c| c.has_tag_name("v")).map(|v| floats(v.text().unwrap_or(""))).collect()
}

/// An `<i name=…>` number under `n`, searched through every descendant (VASP nests parameters in separators);
/// the first occurrence wins, as in pymatgen (`NELM` appears again, as 1, under "response functions"). A
/// Fortran overflow (`*****`) reads as absent.
fn parameter(n: Node, name: &str) -> Option<f64> {
    n.descendants()
        .find(|c| c.has_tag_name("i") && c.attribute("name") == Some(name))
        .and_then(|c| c.text())
        .and_then(|t| t.trim().parse::<f64>().ok())
}

/// Read `vasprun.xml` at `path`.
pub fn read(path: &Path) -> Result<DftResult, IoError> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    parse(&text, &path.display().to_string())
}

/// Parse the text of a `vasprun.xml`; `path` names it in errors. A run cut off mid-step (no closing tags)
/// is an error: VASP writes the file as it goes, so a truncated one is a run that died.
pub fn parse(text: &str, path: &str) -> Result<DftResult, IoError> {
    let doc = Document::parse(text).map_err(|e| {
        IoError::at(
            path,
            e.pos().row as usize,
            format!("not well-formed XML ({e}); a vasprun.xml of a run that was stopped?"),
        )
    })?;
    let root = doc.root_element();
    let err = |m: &str| IoError::whole(path, m.to_string());
    // Species, one per ion, from <atominfo><array name="atoms"><set><rc><c>Si</c><c>1</c></rc>…
    let atoms = root
        .descendants()
        .find(|n| n.has_tag_name("array") && n.attribute("name") == Some("atoms"))
        .ok_or_else(|| err("no <array name=\"atoms\"> in <atominfo>"))?;
    let mut species = Vec::new();
    for rc in atoms.descendants().filter(|n| n.has_tag_name("rc")) {
        let sym = rc.children().find(|c| c.has_tag_name("c")).and_then(|c| c.text()).unwrap_or("").trim();
        // POTCAR labels such as "Fe_pv": the element is the leading symbol.
        let (el, _) = Element::from_label(sym).map_err(|_| err(&format!("unknown element {sym:?} in <atominfo>")))?;
        species.push(el);
    }
    if species.is_empty() {
        return Err(err("no atoms in <atominfo>"));
    }
    let params = child(root, "parameters", None);
    let nelm = params.and_then(|p| parameter(p, "NELM")).unwrap_or(60.0) as usize;
    let nsw = params.and_then(|p| parameter(p, "NSW")).unwrap_or(0.0) as usize;
    let calcs: Vec<Node> = root.children().filter(|c| c.has_tag_name("calculation")).collect();
    let last = *calcs.last().ok_or_else(|| err("no <calculation> (ionic step) in the file"))?;
    let structure_node =
        child(last, "structure", None).ok_or_else(|| err("the last <calculation> has no <structure>"))?;
    let crystal = child(structure_node, "crystal", None).ok_or_else(|| err("<structure> without <crystal>"))?;
    let basis = varray(child(crystal, "varray", Some("basis")).ok_or_else(|| err("no basis in <crystal>"))?);
    let positions =
        varray(child(structure_node, "varray", Some("positions")).ok_or_else(|| err("no positions in <structure>"))?);
    if basis.len() != 3 || basis.iter().any(|r| r.len() != 3) || positions.len() != species.len() {
        return Err(err(&format!(
            "the last <structure> has {} basis rows and {} positions for {} atoms",
            basis.len(),
            positions.len(),
            species.len()
        )));
    }
    let lattice = Lattice::from_row_vectors([
        [basis[0][0], basis[0][1], basis[0][2]],
        [basis[1][0], basis[1][1], basis[1][2]],
        [basis[2][0], basis[2][1], basis[2][2]],
    ])
    .map_err(|e| err(&format!("bad basis: {e}")))?;
    let frac: Vec<Vector3<f64>> = positions.iter().map(|p| Vector3::new(p[0], p[1], p[2])).collect();
    let structure =
        Structure::from_frac(lattice, species.clone(), frac).map_err(|e| IoError::crystal(path, None, e))?;
    let forces = child(last, "varray", Some("forces"))
        .map(varray)
        .map(|rows| rows.iter().filter(|r| r.len() == 3).map(|r| Vector3::new(r[0], r[1], r[2])).collect::<Vec<_>>());
    if let Some(f) = &forces
        && f.len() != species.len()
    {
        return Err(err(&format!("{} force rows for {} atoms", f.len(), species.len())));
    }
    let stress = child(last, "varray", Some("stress")).map(varray).and_then(|rows| {
        (rows.len() == 3 && rows.iter().all(|r| r.len() == 3))
            .then(|| Matrix3::from_fn(|i, j| -rows[i][j] / EV_PER_ANG3_IN_KBAR))
    });
    // The step's energies: the <energy> child of <calculation> (not the <scstep>s').
    let energy_of = |n: Node, name: &str| child(n, "energy", None).and_then(|e| parameter(e, name));
    let e_fr = energy_of(last, "e_fr_energy").ok_or_else(|| err("no e_fr_energy in the last <calculation>"))?;
    let e_0 = energy_of(last, "e_0_energy").unwrap_or(e_fr);
    // VASP 5.4's <calculation> e_0_energy is wrong (it holds the entropy term): as ASE (and pymatgen when they
    // differ), the step's free energy plus the last electronic step's (e_0 − e_fr).
    let scsteps: Vec<Node> = last.children().filter(|c| c.has_tag_name("scstep")).collect();
    let energy = match scsteps.last().and_then(|s| Some((energy_of(*s, "e_0_energy")?, energy_of(*s, "e_fr_energy")?)))
    {
        Some((s0, sfr)) => e_fr + (s0 - sfr),
        None => e_0,
    };
    // Under PSTRESS (kBar) VASP's energies are enthalpies E + PV; ASE reports E, and so does Geode.
    let pstress = params.and_then(|p| parameter(p, "PSTRESS")).unwrap_or(0.0);
    let pv = pstress * structure.volume() / EV_PER_ANG3_IN_KBAR;
    let (energy, e_fr) = (energy - pv, e_fr - pv);
    Ok(DftResult {
        structure,
        energy,
        free_energy: e_fr,
        forces,
        stress,
        electronic_converged: scsteps.len() < nelm,
        ionic_converged: nsw <= 1 || calcs.len() < nsw,
        ionic_steps: calcs.len(),
    })
}
