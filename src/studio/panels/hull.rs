//! The Hull tab: the convex hull of a chemical system on the complete OQMD references (every OQMD-relaxed
//! ICSD structure and OQMD's composition table; built once, off the UI thread) or, on request, the
//! embedded ≤ 20-atom dataset alone — formation energy against composition for binaries, the Gibbs triangle
//! with tie-lines for ternaries — with every stable phase labelled, unstable ones faded, each phase's source
//! on hover, and the project's candidates of that system overlaid with their predicted energies and σ.
//! Click a point that is a dataset crystal or a candidate to open it.

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
    /// Where the phase comes from (`ICSD 1707 (OQMD-relaxed)`, `OQMD composition table`, a candidate).
    pub source: String,
}

/// Where a reference entry comes from, by its name (complete references: `icsd:<n>-<ICSD id>-<formula>`,
/// `oqmd-table:…`; the dataset diagram names entries by dataset id; elemental references by symbol).
pub fn source_of(name: &str) -> String {
    use crate::data::hull_references::Source;
    match Source::of_name(name) {
        Some(Source::Icsd) => {
            let label = &name["icsd:".len()..];
            let icsd = label.split('-').nth(1).unwrap_or("?");
            return format!("ICSD {icsd}, OQMD-relaxed ({label})");
        }
        Some(Source::OqmdTable) => return "OQMD composition table (often a hypothetical prototype)".into(),
        None => {}
    }
    if Element::from_symbol(name).is_ok() {
        "elemental reference (0 eV/atom)".into()
    } else {
        format!("embedded dataset, OQMD/ICSD {name}")
    }
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
    // Dataset crystals open in the viewer: the complete references name them by the same label.
    let ds = Dataset::embedded();
    let by_label: std::collections::HashMap<&str, u32> = ds.entries.iter().map(|e| (e.name.as_str(), e.id)).collect();
    let item_of = |name: &str| {
        name.strip_prefix("icsd:")
            .and_then(|l| by_label.get(l).copied())
            .or_else(|| name.parse::<u32>().ok().filter(|id| ds.get(*id).is_some()))
            .map_or(Item::Dataset(u32::MAX), Item::Dataset)
    };
    let ents = pd.entries();
    let stable_set: std::collections::HashSet<usize> = stable.iter().copied().collect();
    let mut stable_xy = Vec::new();
    for (i, e) in ents.iter().enumerate() {
        let c = &e.composition;
        if !c.elements().iter().all(|x| els.contains(x)) {
            continue;
        }
        let f = pd.formation_energy_per_atom(i);
        let is_stable = stable_set.contains(&i);
        let e_above =
            if is_stable { 0.0 } else { pd.e_above_hull(c, e.energy_per_atom).map_or(f64::NAN, |h| h.e_above_hull) };
        let xy = coords(&els, c, f);
        if is_stable {
            stable_xy.push((i, xy));
        }
        v.points.push(HullPoint {
            item: item_of(&e.name),
            formula: c.reduced_formula(),
            xy,
            formation_energy: f,
            e_above_hull: e_above,
            stable: is_stable,
            std: None,
            source: source_of(&e.name),
        });
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
            source: format!("project candidate {id} (predicted)"),
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
            recompute |= ui
                .checkbox(&mut self.hull_dataset_only, "dataset only (≤ 20 atoms)")
                .on_hover_text("Off: the complete OQMD references (every OQMD-relaxed ICSD structure and OQMD's composition table). On: only the embedded ≤ 20-atom training set.")
                .changed();
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
        // The complete hull is built once per process on a thread of its own; until then the tab says so.
        let pd = if self.hull_dataset_only {
            Some(
                self.phase_diagram
                    .get_or_insert_with(|| std::sync::Arc::new(PhaseDiagram::from_dataset(Dataset::embedded())))
                    .clone(),
            )
        } else {
            PhaseDiagram::complete_if_ready()
        };
        // Also on first display, for the system the tab starts with.
        self.hull_pending |= recompute || (self.hull.system.is_empty() && !self.hull_system.is_empty());
        match pd {
            None if self.hull_pending => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Building the complete OQMD hull (32,159 ICSD structures and 341,614 OQMD compositions)…");
                });
                ui.ctx().request_repaint_after(std::time::Duration::from_millis(100));
                return;
            }
            Some(pd) if self.hull_pending => {
                self.hull_pending = false;
                let cands: Vec<(i64, String, f64, Option<f64>)> = self
                    .candidates
                    .iter()
                    .filter_map(|c| {
                        let fe = c.properties.get("formation_energy_per_atom")?;
                        let value = fe.get("value").and_then(Value::as_f64).or_else(|| fe.as_f64())?;
                        Some((c.id, c.formula.clone(), value, fe.get("std").and_then(Value::as_f64)))
                    })
                    .collect();
                self.hull = build(&pd, &self.hull_system, &cands);
            }
            _ => {}
        }
        let v = &self.hull;
        if let Some(e) = &v.error {
            ui.colored_label(egui::Color32::from_rgb(230, 90, 80), e);
            return;
        }
        if v.elements.is_empty() {
            ui.weak("Type a binary or ternary system (or select a crystal and press Use) to see its convex hull from OQMD's DFT energies.");
            return;
        }
        let n_stable = v.points.iter().filter(|p| p.stable).count();
        let n_cand = v.points.iter().filter(|p| matches!(p.item, Item::Candidate(_))).count();
        ui.label(format!(
            "{}: {} phases, {} stable, {} candidates (energies in eV/atom; {})",
            v.system,
            v.points.len() - n_cand,
            n_stable,
            n_cand,
            if self.hull_dataset_only { "embedded ≤ 20-atom dataset" } else { "complete OQMD references" }
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
            // Every stable phase is labelled with its formula (elements at the corners already are).
            for p in pts.iter().filter(|p| p.stable && p.formula.chars().filter(|c| c.is_ascii_uppercase()).count() > 1)
            {
                plot_ui.text(
                    egui_plot::Text::new(
                        "label",
                        egui_plot::PlotPoint::new(p.xy[0], p.xy[1]),
                        format!("  {}", p.formula),
                    )
                    .anchor(egui::Align2::LEFT_TOP)
                    .color(egui::Color32::from_rgb(150, 195, 255)),
                );
            }
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
                "{}{}\nformation energy {:.3}{sigma} eV/atom\ne_above_hull {:.3} eV/atom\nsource: {}",
                p.formula,
                if p.stable { " (stable)" } else { "" },
                p.formation_energy,
                p.e_above_hull,
                p.source
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

    /// On the complete references every phase names its source, and stable ICSD phases of the dataset open.
    #[test]
    fn the_complete_hull_names_every_source() {
        let pd = PhaseDiagram::complete();
        let v = build(&pd, "Li-O", &[]);
        assert!(v.error.is_none());
        let li2o = v.points.iter().find(|p| p.stable && p.formula == "Li2O").expect("Li2O is stable");
        assert!(li2o.source.starts_with("ICSD"), "{}", li2o.source);
        assert!(matches!(li2o.item, Item::Dataset(id) if id != u32::MAX), "{:?}", li2o.item);
        assert!(v.points.iter().all(|p| !p.source.is_empty()));
        assert!(v.points.iter().any(|p| p.source.starts_with("OQMD composition table")));
        assert_eq!(v.lines.len(), v.points.iter().filter(|p| p.stable).count() - 1);
    }
}
