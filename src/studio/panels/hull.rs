//! The Hull tab: the convex hull of a chemical system from the embedded dataset's DFT formation energies —
//! formation energy against composition for binaries, the Gibbs triangle with tie-lines for ternaries —
//! with the stable phases marked, unstable ones faded, and the project's candidates of that system
//! overlaid with their predicted energies and σ. Click a point to open the crystal.

use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints, Points};
use serde_json::Value;

use crate::crystal::{Composition, Element};
use crate::data::Dataset;
use crate::energy::PhaseDiagram;
use crate::studio::app::{Item, StudioApp};

/// A computed hull picture for one chemical system.
#[derive(Debug, Default, Clone)]
pub struct HullView {
    /// The system as typed (e.g. `Li-O`), and its elements.
    pub system: String,
    pub elements: Vec<Element>,
    pub error: Option<String>,
    /// (item, formula, plot x, plot y, formation energy, e_above_hull, stable, σ of a prediction).
    pub points: Vec<HullPoint>,
    /// Segments between stable phases: binary hull line or ternary tie-lines, in plot coordinates.
    pub lines: Vec<[[f64; 2]; 2]>,
}

#[derive(Debug, Clone)]
pub struct HullPoint {
    pub item: Item,
    pub formula: String,
    pub xy: [f64; 2],
    pub formation_energy: f64,
    pub e_above_hull: f64,
    pub stable: bool,
    /// σ of the formation energy for predicted (candidate) points.
    pub std: Option<f64>,
}

/// Plot coordinates of a composition in a system: binaries (fraction of the second element, ΔH_f);
/// ternaries the Gibbs triangle (first element at (0, 0), second at (1, 0), third at (½, √3/2)).
fn coords(els: &[Element], c: &Composition, energy: f64) -> [f64; 2] {
    let n = c.num_atoms();
    let x: Vec<f64> = els.iter().map(|e| c.amount(*e) / n).collect();
    if els.len() == 2 { [x[1], energy] } else { [x[1] + x[2] / 2.0, x[2] * 3f64.sqrt() / 2.0] }
}

/// The hull picture of `system` (`A-B` or `A-B-C`) with the given candidates overlaid.
pub fn build(pd: &PhaseDiagram, system: &str, candidates: &[(i64, String, f64, Option<f64>)]) -> HullView {
    let mut v = HullView { system: system.to_string(), ..Default::default() };
    let els: Result<Vec<Element>, _> =
        system.split(['-', ' ', ',']).filter(|s| !s.is_empty()).map(Element::from_symbol).collect();
    let mut els = match els {
        Ok(e) if (2..=3).contains(&e.len()) => e,
        Ok(_) => {
            v.error = Some("enter a binary or ternary system, e.g. Li-O or Li-Fe-O".into());
            return v;
        }
        Err(e) => {
            v.error = Some(e.to_string());
            return v;
        }
    };
    els.dedup();
    let stable = match pd.stable_entries(&els) {
        Ok(s) => s,
        Err(e) => {
            v.error = Some(e.to_string());
            return v;
        }
    };
    let ds = Dataset::embedded();
    for e in &ds.entries {
        let c = e.structure.composition();
        if !c.elements().iter().all(|x| els.contains(x)) {
            continue;
        }
        let Ok(h) = pd.e_above_hull(&c, e.formation_energy_per_atom) else { continue };
        v.points.push(HullPoint {
            item: Item::Dataset(e.id),
            formula: e.formula.clone(),
            xy: coords(&els, &c, h.formation_energy_per_atom),
            formation_energy: h.formation_energy_per_atom,
            e_above_hull: h.e_above_hull,
            stable: false,
            std: None,
        });
    }
    // Stable phases (elements included), marked on the dataset points or added for synthetic elements.
    let ents = pd.entries();
    let mut stable_xy = Vec::new();
    for &i in &stable {
        let c = &ents[i].composition;
        let f = pd.formation_energy_per_atom(i);
        let xy = coords(&els, c, f);
        stable_xy.push((i, xy));
        match v.points.iter_mut().find(|p| matches!(p.item, Item::Dataset(id) if id.to_string() == ents[i].name)) {
            Some(p) => p.stable = true,
            None => v.points.push(HullPoint {
                item: Item::Dataset(u32::MAX),
                formula: c.reduced_formula(),
                xy,
                formation_energy: f,
                e_above_hull: 0.0,
                stable: true,
                std: None,
            }),
        }
    }
    // Tie-lines: two stable phases are joined when the hull at their midpoint is made of exactly them.
    for (a, (i, xa)) in stable_xy.iter().enumerate() {
        for (j, xb) in stable_xy.iter().skip(a + 1) {
            let mid = Composition::from_pairs(
                ents[*i]
                    .composition
                    .fractional()
                    .iter()
                    .map(|(e, x)| (e, x / 2.0))
                    .chain(ents[*j].composition.fractional().iter().map(|(e, x)| (e, x / 2.0))),
            );
            if let Ok(d) = pd.decomposition(&mid) {
                let mut ids: Vec<usize> = d.products.iter().map(|p| p.0).collect();
                ids.sort_unstable();
                let mut want = vec![*i, *j];
                want.sort_unstable();
                if ids == want {
                    v.lines.push([*xa, *xb]);
                }
            }
        }
    }
    for (id, formula, fe, std) in candidates {
        let Ok(c) = Composition::from_formula(formula) else { continue };
        if !c.elements().iter().all(|x| els.contains(x)) {
            continue;
        }
        let Ok(h) = pd.e_above_hull(&c, *fe) else { continue };
        v.points.push(HullPoint {
            item: Item::Candidate(*id),
            formula: formula.clone(),
            xy: coords(&els, &c, h.formation_energy_per_atom),
            formation_energy: h.formation_energy_per_atom,
            e_above_hull: h.e_above_hull,
            stable: false,
            std: *std,
        });
    }
    v.elements = els;
    v
}

impl StudioApp {
    pub fn hull_ui(&mut self, ui: &mut egui::Ui) {
        let mut recompute = false;
        ui.horizontal(|ui| {
            ui.label("Chemical system");
            let r = ui.add(
                egui::TextEdit::singleline(&mut self.hull_system).hint_text("Li-O or Li-Fe-O").desired_width(140.0),
            );
            recompute |= r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            recompute |= ui.button("Show hull").clicked();
            if let Some(item) = self.selection.clone() {
                let key = item.key();
                if self.selected_system.as_ref().is_none_or(|(k, _, _)| *k != key) {
                    self.selected_system = self.structure_of(&item).map(|(s, _)| {
                        let c = s.composition();
                        (key, c.chemical_system(), c.n_elements())
                    });
                }
                if let Some((_, sys, n)) = &self.selected_system
                    && (2..=3).contains(n)
                    && ui.button(format!("Use {sys}")).clicked()
                {
                    self.hull_system = sys.clone();
                    recompute = true;
                }
            }
        });
        // Also on first display, for the system the tab starts with.
        if recompute || (self.hull.system.is_empty() && !self.hull_system.is_empty()) {
            let pd = self.phase_diagram.get_or_insert_with(|| PhaseDiagram::from_dataset(Dataset::embedded()));
            let cands: Vec<(i64, String, f64, Option<f64>)> = self
                .candidates
                .iter()
                .filter_map(|c| {
                    let fe = c.properties.get("formation_energy_per_atom")?;
                    let value = fe.get("value").and_then(Value::as_f64).or_else(|| fe.as_f64())?;
                    Some((c.id, c.formula.clone(), value, fe.get("std").and_then(Value::as_f64)))
                })
                .collect();
            self.hull = build(pd, &self.hull_system, &cands);
        }
        let v = &self.hull;
        if let Some(e) = &v.error {
            ui.colored_label(egui::Color32::from_rgb(230, 90, 80), e);
            return;
        }
        if v.elements.is_empty() {
            ui.weak("Type a binary or ternary system (or select a crystal and press Use) to see its convex hull from the dataset's DFT energies.");
            return;
        }
        let n_stable = v.points.iter().filter(|p| p.stable).count();
        let n_cand = v.points.iter().filter(|p| matches!(p.item, Item::Candidate(_))).count();
        ui.label(format!(
            "{}: {} phases, {} stable, {} candidates (energies in eV/atom)",
            v.system,
            v.points.len() - n_cand,
            n_stable,
            n_cand
        ));
        let binary = v.elements.len() == 2;
        let mut plot = Plot::new("hull_plot").label_formatter(|_| None);
        if binary {
            plot = plot
                .x_axis_label(format!("x in {}(1-x) {}(x)", v.elements[0], v.elements[1]))
                .y_axis_label("formation energy (eV/atom)");
        } else {
            plot = plot.data_aspect(1.0).show_axes([false, false]).show_grid(false);
        }
        let pts = &v.points;
        let resp = plot.show(ui, |plot_ui| {
            for l in &v.lines {
                plot_ui.line(
                    Line::new("hull", PlotPoints::from(l.to_vec()))
                        .color(egui::Color32::from_rgb(90, 160, 255))
                        .width(1.5),
                );
            }
            if !binary {
                let (a, b, c) = ([0.0, 0.0], [1.0, 0.0], [0.5, 3f64.sqrt() / 2.0]);
                plot_ui.line(
                    Line::new("triangle", PlotPoints::from(vec![a, b, c, a])).color(egui::Color32::from_gray(140)),
                );
                for (p, e) in [(a, v.elements[0]), (b, v.elements[1]), (c, v.elements[2])] {
                    plot_ui.text(egui_plot::Text::new(
                        "corner",
                        egui_plot::PlotPoint::new(p[0], p[1] - 0.05 + if p[1] > 0.0 { 0.1 } else { 0.0 }),
                        e.symbol(),
                    ));
                }
            }
            let unstable: Vec<[f64; 2]> =
                pts.iter().filter(|p| !p.stable && matches!(p.item, Item::Dataset(_))).map(|p| p.xy).collect();
            let stable: Vec<[f64; 2]> = pts.iter().filter(|p| p.stable).map(|p| p.xy).collect();
            let cands: Vec<[f64; 2]> =
                pts.iter().filter(|p| matches!(p.item, Item::Candidate(_))).map(|p| p.xy).collect();
            plot_ui.points(
                Points::new("unstable", PlotPoints::from(unstable)).radius(2.5).color(egui::Color32::from_gray(120)),
            );
            plot_ui.points(
                Points::new("stable", PlotPoints::from(stable))
                    .radius(4.5)
                    .color(egui::Color32::from_rgb(90, 160, 255)),
            );
            plot_ui.points(
                Points::new("candidates", PlotPoints::from(cands))
                    .radius(4.0)
                    .color(egui::Color32::from_rgb(255, 170, 40))
                    .shape(egui_plot::MarkerShape::Diamond),
            );
            if binary {
                // Candidates' σ as vertical error bars.
                for p in pts.iter().filter(|p| p.std.is_some()) {
                    let s = p.std.unwrap_or(0.0);
                    plot_ui.line(
                        Line::new("σ", PlotPoints::from(vec![[p.xy[0], p.xy[1] - s], [p.xy[0], p.xy[1] + s]]))
                            .color(egui::Color32::from_rgb(255, 170, 40)),
                    );
                }
            }
            plot_ui.response().hover_pos().and_then(|px| {
                pts.iter()
                    .map(|p| (p, plot_ui.screen_from_plot(egui_plot::PlotPoint::new(p.xy[0], p.xy[1])).distance(px)))
                    .filter(|(_, d)| *d < 8.0)
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(p, _)| p.clone())
            })
        });
        if let Some(p) = resp.inner {
            let sigma = p.std.map(|s| format!(" ± {s:.3}")).unwrap_or_default();
            resp.response.clone().on_hover_text_at_pointer(format!(
                "{}{}\nformation energy {:.3}{sigma} eV/atom\ne_above_hull {:.3} eV/atom",
                p.formula,
                if p.stable { " (stable)" } else { "" },
                p.formation_energy,
                p.e_above_hull
            ));
            if resp.response.clicked() && !matches!(p.item, Item::Dataset(u32::MAX)) {
                self.select(p.item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_ternary_hulls_from_the_dataset() {
        let pd = PhaseDiagram::from_dataset(Dataset::embedded());
        let v = build(&pd, "Li-O", &[(7, "Li2O2".into(), -1.0, Some(0.05))]);
        assert!(v.error.is_none());
        let stable: Vec<&str> = v.points.iter().filter(|p| p.stable).map(|p| p.formula.as_str()).collect();
        assert!(stable.contains(&"Li2O"), "{stable:?}");
        // A binary hull is a chain: one segment fewer than its stable phases.
        assert_eq!(v.lines.len(), stable.len() - 1);
        assert!(v.points.iter().any(|p| p.item == Item::Candidate(7) && p.std == Some(0.05)));
        let t = build(&pd, "Li-Fe-O", &[]);
        let n = t.points.iter().filter(|p| p.stable).count();
        // A triangulated Gibbs triangle with n vertices (3 on the corners, k on the boundary) has 2n − 3 − …
        // edges at most 3n − 6 + 3 = 3n − 3; at least the n − 1 of a spanning tree.
        assert!(t.lines.len() >= n - 1 && t.lines.len() <= 3 * n - 3, "{} lines for {n} stable phases", t.lines.len());
        assert!(t.points.iter().all(|p| p.xy[1] >= -1e-12 && p.xy[1] <= 0.87));
        assert!(build(&pd, "Li", &[]).error.is_some());
        assert!(build(&pd, "Li-Xq", &[]).error.is_some());
    }
}
