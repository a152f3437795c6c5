//! What the viewer draws, as plain arrays: atoms (Cartesian Å, radius, colour), bonds (two endpoints
//! and two colours, half bonds to atoms outside the shown region), and unit-cell edges. Built from a
//! [`Structure`] the way VESTA shows one: supercell n×m×k, atoms on cell faces, edges and corners
//! repeated, bonds found across periodic boundaries.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::crystal::bonds::BondRule;
use crate::crystal::{Element, Structure};

/// Drawing style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Style {
    BallAndStick,
    SpaceFilling,
    Wireframe,
    /// Ball-and-stick plus translucent coordination polyhedra around cations.
    Polyhedra,
}

impl Style {
    pub const ALL: [Style; 4] = [Style::BallAndStick, Style::SpaceFilling, Style::Wireframe, Style::Polyhedra];

    pub fn label(self) -> &'static str {
        match self {
            Style::BallAndStick => "Ball and stick",
            Style::SpaceFilling => "Space filling",
            Style::Wireframe => "Wireframe",
            Style::Polyhedra => "Polyhedra",
        }
    }
}

/// Element colour scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColorScheme {
    Jmol,
    Vesta,
}

/// How to build a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneOptions {
    pub style: Style,
    pub colors: ColorScheme,
    /// Repetitions along a, b, c (each ≥ 1).
    pub supercell: [u32; 3],
    /// Repeat atoms lying on cell faces, edges and corners (within `boundary_tol` in fractional units).
    pub boundary_atoms: bool,
    pub bond_rule: BondRule,
    pub show_bonds: bool,
    pub show_cell: bool,
}

impl Default for SceneOptions {
    fn default() -> Self {
        SceneOptions {
            style: Style::BallAndStick,
            colors: ColorScheme::Vesta,
            supercell: [1, 1, 1],
            boundary_atoms: true,
            bond_rule: BondRule::default(),
            show_bonds: true,
            show_cell: true,
        }
    }
}

/// Fractional tolerance for boundary atoms (VESTA's default is similar).
pub const BOUNDARY_TOL: f64 = 1e-3;

/// One drawn atom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneAtom {
    /// Cartesian position (Å).
    pub pos: [f32; 3],
    pub radius: f32,
    /// Linear RGBA.
    pub color: [f32; 4],
    /// Index of the site in the structure.
    pub site: usize,
    /// Fractional coordinates of this copy (may be ≥ 1 in supercells and on boundaries).
    pub frac: [f64; 3],
    pub element: Element,
}

/// One drawn bond (or half bond, when `to_outside`): from `start` to `end`, coloured `color_a` on the
/// first half and `color_b` on the second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneBond {
    pub start: [f32; 3],
    pub end: [f32; 3],
    pub color_a: [f32; 4],
    pub color_b: [f32; 4],
    /// Indices into `Scene::atoms` (the second is `None` for a half bond to an atom not shown).
    pub atom_a: usize,
    pub atom_b: Option<usize>,
}

/// A coordination polyhedron: a centre atom and its bonded neighbours' positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Polyhedron {
    pub center: usize,
    pub vertices: Vec<[f32; 3]>,
    pub color: [f32; 4],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scene {
    pub atoms: Vec<SceneAtom>,
    pub bonds: Vec<SceneBond>,
    /// Cell edges as line segments (Å).
    pub cell_edges: Vec<[[f32; 3]; 2]>,
    pub polyhedra: Vec<Polyhedron>,
    /// Centre and radius of a sphere holding everything (Å).
    pub center: [f32; 3],
    pub radius: f32,
    /// Elements present, for the legend, in electronegativity order.
    pub elements: Vec<Element>,
}

/// sRGB 0–255 to linear 0–1.
pub fn srgb_to_linear(c: [u8; 3]) -> [f32; 4] {
    let f = |v: u8| {
        let x = v as f32 / 255.0;
        if x <= 0.04045 { x / 12.92 } else { ((x + 0.055) / 1.055).powf(2.4) }
    };
    [f(c[0]), f(c[1]), f(c[2]), 1.0]
}

/// The colour of an element in a scheme, linear RGBA.
pub fn element_color(e: Element, scheme: ColorScheme) -> [f32; 4] {
    let d = e.data();
    srgb_to_linear(match scheme {
        ColorScheme::Jmol => d.jmol_color,
        ColorScheme::Vesta => d.vesta_color,
    })
}

/// Drawn radius of an element (Å) in a style: space filling uses the atomic radius, ball-and-stick
/// 40 % of it (VESTA-like proportions), wireframe a small fixed dot.
pub fn element_radius(e: Element, style: Style) -> f32 {
    let d = e.data();
    let r = d.atomic_radius.or(d.atomic_radius_calculated).or(d.covalent_radius).unwrap_or(1.5) as f32;
    match style {
        Style::SpaceFilling => r,
        Style::BallAndStick | Style::Polyhedra => 0.4 * r,
        Style::Wireframe => 0.12,
    }
}

/// Build the scene of a structure.
pub fn build_scene(s: &Structure, opts: &SceneOptions) -> Scene {
    let n = opts.supercell.map(|x| x.max(1) as i32);
    let lat = s.lattice.cart_from_frac();
    let cart = |f: [f64; 3]| -> [f32; 3] {
        let v = lat * nalgebra::Vector3::new(f[0], f[1], f[2]);
        [v.x as f32, v.y as f32, v.z as f32]
    };
    let mut scene = Scene::default();
    // Index of shown copies: (site, integer offset of the copy relative to the wrapped site).
    let mut index: HashMap<(usize, [i32; 3]), usize> = HashMap::new();
    let wrapped: Vec<[f64; 3]> = s
        .frac_coords()
        .iter()
        .map(|f| [f.x.rem_euclid(1.0), f.y.rem_euclid(1.0), f.z.rem_euclid(1.0)])
        .map(|f| f.map(|x| if x >= 1.0 - 1e-12 { 0.0 } else { x }))
        .collect();
    for (site, f) in wrapped.iter().enumerate() {
        let el = s.species()[site];
        // Copies along each axis: the cells 0..n, plus one more when the atom sits on the lower face.
        let ranges: [Vec<i32>; 3] = std::array::from_fn(|k| {
            let mut v: Vec<i32> = (0..n[k]).collect();
            if opts.boundary_atoms && f[k] < BOUNDARY_TOL {
                v.push(n[k]);
            }
            v
        });
        for &i in &ranges[0] {
            for &j in &ranges[1] {
                for &k in &ranges[2] {
                    let fr = [f[0] + i as f64, f[1] + j as f64, f[2] + k as f64];
                    index.insert((site, [i, j, k]), scene.atoms.len());
                    scene.atoms.push(SceneAtom {
                        pos: cart(fr),
                        radius: element_radius(el, opts.style),
                        color: element_color(el, opts.colors),
                        site,
                        frac: fr,
                        element: el,
                    });
                }
            }
        }
    }
    // Bonds: from each shown copy to every periodic neighbour within the rule's cutoff.
    let need_bonds = (opts.show_bonds && opts.style != Style::SpaceFilling) || opts.style == Style::Polyhedra;
    if need_bonds {
        // Offsets of the wrapped coordinates relative to the structure's own coordinates.
        let shift: Vec<[i32; 3]> = s
            .frac_coords()
            .iter()
            .zip(&wrapped)
            .map(|(f, w)| [(f.x - w[0]).round() as i32, (f.y - w[1]).round() as i32, (f.z - w[2]).round() as i32])
            .collect();
        let bonds = s.bonds(opts.bond_rule);
        let mut neighbours: Vec<Vec<(usize, [i32; 3])>> = vec![Vec::new(); scene.atoms.len()];
        for (ai, a) in scene.atoms.clone().iter().enumerate() {
            let off = [a.frac[0].floor() as i32, a.frac[1].floor() as i32, a.frac[2].floor() as i32];
            for b in bonds.iter().filter(|b| b.a == a.site) {
                // Neighbour copy offset in the wrapped frame: off + image + shift(b) − shift(a).
                let t = [0, 1, 2].map(|k| off[k] + b.image[k] + shift[b.b][k] - shift[a.site][k]);
                neighbours[ai].push((b.b, t));
                match index.get(&(b.b, t)) {
                    Some(&bi) if bi > ai => scene.bonds.push(SceneBond {
                        start: a.pos,
                        end: scene.atoms[bi].pos,
                        color_a: a.color,
                        color_b: scene.atoms[bi].color,
                        atom_a: ai,
                        atom_b: Some(bi),
                    }),
                    Some(_) => {}
                    None => {
                        let other = cart([
                            wrapped[b.b][0] + t[0] as f64,
                            wrapped[b.b][1] + t[1] as f64,
                            wrapped[b.b][2] + t[2] as f64,
                        ]);
                        let mid = [0, 1, 2].map(|k| 0.5 * (a.pos[k] + other[k]));
                        scene.bonds.push(SceneBond {
                            start: a.pos,
                            end: mid,
                            color_a: a.color,
                            color_b: a.color,
                            atom_a: ai,
                            atom_b: None,
                        });
                    }
                }
            }
        }
        if opts.style == Style::Polyhedra {
            for (ai, a) in scene.atoms.iter().enumerate() {
                // Polyhedra around the less electronegative partner of each bond with ≥ 4 neighbours.
                let nb = &neighbours[ai];
                if nb.len() < 4 || nb.iter().any(|(site, _)| s.species()[*site].x() < a.element.x()) {
                    continue;
                }
                let vertices = nb
                    .iter()
                    .map(|(site, t)| {
                        cart([
                            wrapped[*site][0] + t[0] as f64,
                            wrapped[*site][1] + t[1] as f64,
                            wrapped[*site][2] + t[2] as f64,
                        ])
                    })
                    .collect();
                let mut color = a.color;
                color[3] = 0.45;
                scene.polyhedra.push(Polyhedron { center: ai, vertices, color });
            }
            if !opts.show_bonds {
                scene.bonds.clear();
            }
        }
    }
    if opts.show_cell {
        let nf = n.map(|x| x as f64);
        let corners: Vec<[f64; 3]> = (0..8)
            .map(|c| [((c & 1) as f64) * nf[0], (((c >> 1) & 1) as f64) * nf[1], (((c >> 2) & 1) as f64) * nf[2]])
            .collect();
        for a in 0..8 {
            for bit in [1, 2, 4] {
                if a & bit == 0 {
                    scene.cell_edges.push([cart(corners[a]), cart(corners[a | bit])]);
                }
            }
        }
    }
    // Bounding sphere over atoms and cell corners.
    let mut pts: Vec<[f32; 3]> = scene.atoms.iter().map(|a| a.pos).collect();
    pts.extend(scene.cell_edges.iter().flat_map(|e| [e[0], e[1]]));
    if !pts.is_empty() {
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in &pts {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        scene.center = [0, 1, 2].map(|k| 0.5 * (lo[k] + hi[k]));
        let max_r = scene.atoms.iter().map(|a| a.radius).fold(0.0, f32::max);
        scene.radius = pts
            .iter()
            .map(|p| {
                ((p[0] - scene.center[0]).powi(2) + (p[1] - scene.center[1]).powi(2) + (p[2] - scene.center[2]).powi(2))
                    .sqrt()
            })
            .fold(0.0, f32::max)
            + max_r;
    }
    let mut els = s.composition().sorted_elements();
    els.dedup();
    scene.elements = els;
    scene
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crystal::Lattice;
    use nalgebra::Vector3;

    fn na_bcc() -> Structure {
        let na = Element::from_symbol("Na").unwrap();
        Structure::from_frac(
            Lattice::cubic(4.23).unwrap(),
            vec![na, na],
            vec![Vector3::zeros(), Vector3::new(0.5, 0.5, 0.5)],
        )
        .unwrap()
    }

    #[test]
    fn corner_atoms_are_repeated_as_vesta_does() {
        let s = na_bcc();
        let scene = build_scene(&s, &SceneOptions::default());
        // 8 corner copies of site 0 and the body centre.
        assert_eq!(scene.atoms.len(), 9);
        assert_eq!(scene.cell_edges.len(), 12);
        let sc = build_scene(&s, &SceneOptions { supercell: [2, 1, 1], ..Default::default() });
        // 3×2×2 corner copies and 2 body centres.
        assert_eq!(sc.atoms.len(), 14);
        let no_boundary = build_scene(&s, &SceneOptions { boundary_atoms: false, ..Default::default() });
        assert_eq!(no_boundary.atoms.len(), 2);
    }

    #[test]
    fn bonds_cross_boundaries_and_stop_at_the_cutoff() {
        let s = na_bcc();
        // Na–Na nearest distance 3.663 Å; covalent 1.15 × 2 × 1.66 = 3.82 Å bonds it, the second shell at
        // 4.23 Å is not bonded.
        let scene = build_scene(&s, &SceneOptions { boundary_atoms: false, ..Default::default() });
        // Each atom has 8 neighbours; the one pair inside the shown region is one full bond, the other
        // 7 + 7 neighbours are outside and get half bonds.
        assert_eq!(scene.bonds.iter().filter(|b| b.atom_b.is_some()).count(), 1);
        assert_eq!(scene.bonds.iter().filter(|b| b.atom_b.is_none()).count(), 14);
        for b in &scene.bonds {
            let d =
                ((b.end[0] - b.start[0]).powi(2) + (b.end[1] - b.start[1]).powi(2) + (b.end[2] - b.start[2]).powi(2))
                    .sqrt();
            assert!((d - 3.663 / 2.0).abs() < 1e-2 || (d - 3.663).abs() < 1e-2, "{d}");
        }
        let full = build_scene(&s, &SceneOptions::default());
        assert_eq!(full.bonds.iter().filter(|b| b.atom_b.is_some()).count(), 8, "the centre bonds to all 8 corners");
        let tight =
            build_scene(&s, &SceneOptions { bond_rule: BondRule::Covalent { scale: 1.0 }, ..Default::default() });
        assert!(tight.bonds.is_empty());
    }
}
