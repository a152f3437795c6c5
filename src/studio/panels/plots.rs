//! The property explorer: a scatter of any two dataset properties coloured by a third (viridis), hover
//! for the formula, click to open the nearest crystal, Shift+drag to box-select (which filters the
//! explorer). Every crystal is drawn, as one texture ([`super::raster`]), so the plot stays fast on
//! software renderers.

use eframe::egui;
use egui_plot::{Plot, PlotPoints, Points, Polygon};

use super::raster::key_of;

use crate::studio::app::{Item, StudioApp, column_value};
use crate::studio::state::DockTab;

/// Viridis at t ∈ [0, 1] (five-stop piecewise-linear approximation).
pub fn viridis(t: f64) -> egui::Color32 {
    const STOPS: [[f64; 3]; 5] =
        [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let c: Vec<u8> = (0..3).map(|k| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8).collect();
    egui::Color32::from_rgb(c[0], c[1], c[2])
}

/// Dataset rows a scatter draws: the explorer's rows, or every row while the scatter's own selection
/// filters the explorer (so the selection can be redrawn).
pub fn plotted_rows<'a>(
    filtered: &'a [usize],
    n_entries: usize,
    own_selection: bool,
) -> Box<dyn Iterator<Item = usize> + 'a> {
    if own_selection { Box::new(0..n_entries) } else { Box::new(filtered.iter().copied()) }
}

/// How a Shift+drag selection box is drawn: translucent amber over the points.
pub fn selection_box(name: &str, b: [f64; 4]) -> Polygon<'static> {
    Polygon::new(name, PlotPoints::from(vec![[b[0], b[2]], [b[1], b[2]], [b[1], b[3]], [b[0], b[3]]]))
        .fill_color(egui::Color32::from_rgba_unmultiplied(255, 200, 30, 30))
        .stroke(egui::Stroke::new(1.0, egui::Color32::from_rgb(255, 200, 30)))
}

/// A box drawn on a plot with Shift+drag: (x min, x max, y min, y max) in plot coordinates once the drag
/// ends, `None` before (or for an empty box). `key` names the drag's start in egui's temporary memory.
pub fn shift_drag_box(
    ui: &egui::Ui,
    response: &egui::Response,
    pointer: Option<egui_plot::PlotPoint>,
    shift: bool,
    key: &str,
) -> Option<[f64; 4]> {
    let drag_id = egui::Id::unique(key);
    if shift && response.drag_started() {
        ui.data_mut(|d| d.insert_temp(drag_id, pointer));
    }
    if !response.drag_stopped() {
        return None;
    }
    let start = ui.data_mut(|d| d.remove_temp::<Option<egui_plot::PlotPoint>>(drag_id)).flatten()?;
    let end = pointer?;
    let b = [start.x.min(end.x), start.x.max(end.x), start.y.min(end.y), start.y.max(end.y)];
    (b[1] > b[0] && b[3] > b[2]).then_some(b)
}

impl StudioApp {
    pub fn dock_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.state.dock_tab, DockTab::Plots, "Property plot");
            ui.selectable_value(&mut self.state.dock_tab, DockTab::Latent, "Latent map");
            let n_active = self.runs.iter().filter(|r| r.status == "running" || r.status == "queued").count();
            ui.selectable_value(
                &mut self.state.dock_tab,
                DockTab::Runs,
                if n_active > 0 { format!("Runs ({n_active} active)") } else { "Runs".to_string() },
            );
            ui.selectable_value(&mut self.state.dock_tab, DockTab::Models, "Models");
            ui.selectable_value(&mut self.state.dock_tab, DockTab::Screening, "Screening");
            ui.selectable_value(&mut self.state.dock_tab, DockTab::Hull, "Hull");
            ui.selectable_value(&mut self.state.dock_tab, DockTab::Evolution, "Evolution");
        });
        ui.separator();
        match self.state.dock_tab {
            DockTab::Plots => self.plot_ui(ui),
            DockTab::Latent => self.latent_ui(ui),
            DockTab::Runs => self.runs_ui(ui),
            DockTab::Models => self.models_ui(ui),
            DockTab::Screening => self.screening_ui(ui),
            DockTab::Hull => self.hull_ui(ui),
            DockTab::Evolution => self.evolution_ui(ui),
        }
    }

    fn plot_ui(&mut self, ui: &mut egui::Ui) {
        let ds = self.dataset;
        let (xc, yc, cc) = (self.state.plot_x, self.state.plot_y, self.state.plot_color);
        // Points shown: the explorer's rows without the plot's own box (so the box can be redrawn); the
        // points and colours are rebuilt only when those rows or the axes change.
        let boxed = self.plot_box.is_some();
        let key = key_of((
            if boxed { "" } else { self.filter_key.as_str() },
            xc,
            yc,
            cc,
            ds.len(),
            self.dataset_predicted.version,
        ));
        let filtered = &self.filtered;
        let p = &self.dataset_predicted;
        // Predictions outside their model's domain of applicability are left out (and counted below).
        let left_out = &mut self.plot_left_out;
        self.plot_scatter.update_coloured(key, || {
            *left_out = 0;
            plotted_rows(filtered, ds.entries.len(), boxed)
                .filter_map(|i| {
                    let e = &ds.entries[i];
                    if [xc, yc, cc].into_iter().any(|c| p.outside(e, c)) {
                        *left_out += 1;
                        return None;
                    }
                    Some((i, [column_value(e, xc, p)?, column_value(e, yc, p)?], column_value(e, cc, p).unwrap_or(0.0)))
                })
                .collect()
        });
        let n_outside = self.plot_left_out;
        let (cmin, cmax) = self.plot_scatter.range;
        let n_points = self.plot_scatter.rows.len();
        let left_out =
            if n_outside > 0 { format!(" ({n_outside} outside the model's domain left out)") } else { String::new() };
        // Controls and caption above the plot; the plot fills the rest of the dock exactly (content
        // below a plot that fills the dock would make the dock grow every frame).
        let columns = self.numeric_columns();
        ui.horizontal(|ui| {
            for (label, col) in [("x", &mut self.state.plot_x), ("y", &mut self.state.plot_y), ("colour", &mut self.state.plot_color)] {
                crate::studio::labelled_combo(ui, label, ("plot_axis", label), col.label(), |ui| {
                    for &c in &columns {
                        ui.selectable_value(col, c, c.label());
                    }
                });
            }
            // Truncated to the dock's width: a wider row would lay the whole dock (and the plot) out wider
            // than the part on screen.
            ui.add(egui::Label::new(egui::RichText::new(format!("{n_points} crystals{left_out}, colour {cmin:.2} to {cmax:.2}")).weak()).truncate())
                .on_hover_text("The colour scale (viridis) spans the 2nd to 98th percentile of the colour property. On the plot: click a point to open it; Shift+drag selects a region, which filters the explorer.");
        });
        let scatter = &self.plot_scatter;
        let selected = match &self.selection {
            Some(Item::Dataset(id)) => {
                ds.get(*id).and_then(|e| Some([column_value(e, xc, p)?, column_value(e, yc, p)?]))
            }
            _ => None,
        };
        let shift = ui.input(|i| i.modifiers.shift);
        let plot_box = self.plot_box;
        let resp = Plot::new("property_plot")
            .show_background(false)
            .x_axis_label(xc.label())
            .y_axis_label(yc.label())
            .allow_drag(!shift)
            .allow_boxed_zoom(false)
            .label_formatter(|_| None)
            .show(ui, |plot_ui| {
                plot_ui.add(scatter.item("crystals", 1.8));
                if let Some(s) = selected {
                    plot_ui.points(
                        Points::new("selected", PlotPoints::from(vec![s]))
                            .radius(6.0)
                            .color(egui::Color32::from_rgb(255, 200, 30))
                            .shape(egui_plot::MarkerShape::Circle)
                            .filled(false),
                    );
                }
                if let Some(b) = plot_box {
                    plot_ui.polygon(selection_box("selection", b));
                }
                let pointer = plot_ui.pointer_coordinate();
                let pointer_px = plot_ui.response().hover_pos();
                let nearest = pointer_px.and_then(|px| scatter.nearest(plot_ui, px, 8.0));
                (pointer, nearest)
            });
        self.plot_transform = Some(resp.transform);
        let (pointer, nearest) = resp.inner;
        let response = resp.response;
        if nearest.is_none() && pointer.is_some() && !response.dragged() {
            response.clone().on_hover_text_at_pointer(
                "Click a point to open it; Shift+drag to select a region (filters the explorer)",
            );
        }
        if let Some(i) = nearest {
            let e = &ds.entries[i];
            response.clone().on_hover_text_at_pointer(format!(
                "{} ({})\n{} {:.3}\n{} {:.3}",
                e.formula,
                e.id,
                xc.label(),
                column_value(e, xc, &self.dataset_predicted).unwrap_or(f64::NAN),
                yc.label(),
                column_value(e, yc, &self.dataset_predicted).unwrap_or(f64::NAN)
            ));
        }
        // Box selection with Shift+drag, in plot coordinates.
        if let Some(b) = shift_drag_box(ui, &response, pointer, shift, "plot_box_start") {
            self.plot_box = Some(b);
        }
        if response.clicked()
            && let Some(i) = nearest
        {
            self.select(Item::Dataset(ds.entries[i].id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_endpoints() {
        assert_eq!(viridis(0.0), egui::Color32::from_rgb(68, 1, 84));
        assert_eq!(viridis(1.0), egui::Color32::from_rgb(253, 231, 37));
        assert_eq!(viridis(2.0), viridis(1.0));
    }
}
