//! The latent map: the dataset's crystals encoded by the shipped crystal VAE and projected onto the
//! codes' two principal axes, coloured by any property. Hover shows the formula; a click on a crystal
//! opens it; a click on empty space decodes the code there (a one-crystal `generate` run); the target
//! form launches a `generate` run towards a band-gap window (and optionally a formation-energy
//! ceiling). Generated candidates appear on the map as orange crosses at their codes.
//!
//! Encoding the 21k crystals takes a few seconds, so it runs on a background thread the first time
//! the tab is shown; the map is kept for the session.

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use eframe::egui;
use egui_plot::{MarkerShape, Plot, PlotPoints, Points};

use super::plots::{BINS, colour_bins, viridis};
use crate::ml::generative::CrystalVae;
use crate::ml::generative::projection::Pca2;
use crate::studio::app::{Item, StudioApp, column_value};
use crate::studio::state::Column;

/// The dataset on the map.
pub struct LatentMap {
    pub pca: Pca2,
    /// Map coordinates per dataset entry (index into `dataset.entries`).
    pub points: Vec<[f64; 2]>,
    pub seconds: f64,
}

/// Where the background thread delivers the map.
type MapReceiver = Receiver<Result<LatentMap, String>>;

/// The tab's state (kept by the app).
pub struct LatentPanel {
    pub map: Option<Arc<LatentMap>>,
    pub error: Option<String>,
    pending: Option<Arc<Mutex<MapReceiver>>>,
    pub color: Column,
    pub gap_lo: f64,
    pub gap_hi: f64,
    pub use_fe_max: bool,
    pub fe_max: f64,
    pub n: usize,
}

impl Default for LatentPanel {
    fn default() -> Self {
        LatentPanel { map: None, error: None, pending: None, color: Column::BandGap, gap_lo: 1.5, gap_hi: 2.0, use_fe_max: false, fe_max: -1.0, n: 32 }
    }
}

/// Encode every dataset crystal and fit the map (blocking; run off the UI thread).
pub fn compute_map(ds: &crate::data::Dataset) -> Result<LatentMap, String> {
    let t0 = std::time::Instant::now();
    let vae = CrystalVae::shipped().map_err(|e| e.to_string())?;
    let z = vae.encode_structures(ds.entries.iter().map(|e| &e.structure))?.to_kind(tch::Kind::Double);
    let l = z.size()[1] as usize;
    let flat = Vec::<f64>::try_from(z.flatten(0, -1)).map_err(|e| e.to_string())?;
    let codes: Vec<Vec<f64>> = flat.chunks(l).map(<[f64]>::to_vec).collect();
    let pca = Pca2::fit(&codes).ok_or("too few crystals for a map")?;
    let points = codes.iter().map(|c| pca.project(c)).collect();
    Ok(LatentMap { pca, points, seconds: t0.elapsed().as_secs_f64() })
}

const MAX_POINTS: usize = 8000;

impl StudioApp {
    fn latent_poll(&mut self, ctx: &egui::Context) {
        if self.latent.map.is_none() && self.latent.pending.is_none() && self.latent.error.is_none() {
            let (tx, rx) = channel();
            let ds = self.dataset;
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(compute_map(ds));
                ctx.request_repaint();
            });
            self.latent.pending = Some(Arc::new(Mutex::new(rx)));
        }
        let got = self.latent.pending.as_ref().and_then(|rx| rx.lock().ok().and_then(|r| r.try_recv().ok()));
        if let Some(r) = got {
            self.latent.pending = None;
            match r {
                Ok(m) => self.latent.map = Some(Arc::new(m)),
                Err(e) => self.latent.error = Some(e),
            }
        }
    }

    /// Start a generation run towards the form's targets.
    pub fn latent_generate_for_target(&mut self) {
        let mut targets = vec![format!("band_gap in [{}, {}]", self.latent.gap_lo.min(self.latent.gap_hi), self.latent.gap_lo.max(self.latent.gap_hi))];
        if self.latent.use_fe_max {
            targets.push(format!("formation_energy_per_atom < {}", self.latent.fe_max));
        }
        let params = serde_json::json!({"n": self.latent.n.max(1), "batch": 32, "settings": {"targets": targets, "sampling": {"steps_per_level": 2}}});
        self.start_run("generate", params, 0);
    }

    pub fn latent_ui(&mut self, ui: &mut egui::Ui) {
        self.latent_poll(ui.ctx());
        ui.horizontal_wrapped(|ui| {
            crate::studio::labelled_combo(ui, "colour", "latent_colour", self.latent.color.label(), |ui| {
                for c in Column::NUMERIC {
                    ui.selectable_value(&mut self.latent.color, c, c.label());
                }
            });
            ui.separator();
            ui.label("Target band gap (eV)");
            ui.add(egui::DragValue::new(&mut self.latent.gap_lo).speed(0.05).range(0.0..=10.0));
            ui.label("to");
            ui.add(egui::DragValue::new(&mut self.latent.gap_hi).speed(0.05).range(0.0..=10.0));
            ui.checkbox(&mut self.latent.use_fe_max, "formation energy below");
            ui.add_enabled(self.latent.use_fe_max, egui::DragValue::new(&mut self.latent.fe_max).speed(0.05).range(-5.0..=2.0).suffix(" eV/atom"));
            ui.label("crystals");
            ui.add(egui::DragValue::new(&mut self.latent.n).range(1..=2000));
            if ui.button("Generate").on_hover_text("Start a generate run: latent codes moved towards these targets, decoded, checked and predicted").clicked() {
                self.latent_generate_for_target();
            }
        });
        let Some(map) = self.latent.map.clone() else {
            match &self.latent.error {
                Some(e) => ui.colored_label(egui::Color32::from_rgb(220, 80, 80), format!("No latent map: {e}")),
                None => ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Encoding {} crystals with the crystal VAE…", self.dataset.entries.len()))
                }).inner,
            };
            return;
        };
        let ds = self.dataset;
        let cc = self.latent.color;
        let rows = &self.filtered;
        let n_rows = rows.len();
        let stride = rows.len().div_ceil(MAX_POINTS).max(1);
        let pts: Vec<(usize, [f64; 2], f64)> = rows.iter().step_by(stride).map(|&i| (i, map.points[i], column_value(&ds.entries[i], cc).unwrap_or(0.0))).collect();
        let (bins, cmin, cmax) = colour_bins(pts.iter().map(|p| (p.1, p.2)));
        // Generated candidates at their codes.
        let generated: Vec<(i64, [f64; 2], String)> = self
            .candidates
            .iter()
            .filter_map(|c| {
                let z: Vec<f64> = c.properties.get("latent")?.as_array()?.iter().filter_map(|v| v.as_f64()).collect();
                (z.len() == map.pca.mean.len()).then(|| (c.id, map.pca.project(&z), c.formula.clone()))
            })
            .collect();
        let selected = match &self.selection {
            Some(Item::Dataset(id)) => ds.entries.iter().position(|e| e.id == *id).map(|i| map.points[i]),
            Some(Item::Candidate(id)) => generated.iter().find(|g| g.0 == *id).map(|g| g.1),
            _ => None,
        };
        let resp = Plot::new("latent_map")
            .x_axis_label(format!("PC1 ({:.0} % of variance)", 100.0 * map.pca.explained[0]))
            .y_axis_label(format!("PC2 ({:.0} %)", 100.0 * map.pca.explained[1]))
            .allow_boxed_zoom(false)
            .label_formatter(|_| None)
            .show(ui, |plot_ui| {
                for (b, series) in bins.into_iter().enumerate() {
                    if !series.is_empty() {
                        plot_ui.points(Points::new(format!("bin{b}"), PlotPoints::from(series)).radius(1.8).color(viridis(b as f64 / (BINS - 1) as f64)));
                    }
                }
                if !generated.is_empty() {
                    let g: Vec<[f64; 2]> = generated.iter().map(|g| g.1).collect();
                    plot_ui.points(Points::new("generated", PlotPoints::from(g)).radius(5.0).shape(MarkerShape::Cross).color(egui::Color32::from_rgb(255, 140, 0)));
                }
                if let Some(s) = selected {
                    plot_ui.points(Points::new("selected", PlotPoints::from(vec![s])).radius(7.0).color(egui::Color32::from_rgb(255, 200, 30)).shape(MarkerShape::Circle).filled(false));
                }
                let pointer = plot_ui.pointer_coordinate();
                let near = plot_ui.response().hover_pos().and_then(|px| {
                    let d = |p: [f64; 2]| plot_ui.screen_from_plot(egui_plot::PlotPoint::new(p[0], p[1])).distance(px);
                    let g = generated.iter().map(|g| (Item::Candidate(g.0), d(g.1))).filter(|x| x.1 < 8.0).min_by(|a, b| a.1.total_cmp(&b.1));
                    g.or_else(|| pts.iter().map(|p| (Item::Dataset(ds.entries[p.0].id), d(p.1))).filter(|x| x.1 < 8.0).min_by(|a, b| a.1.total_cmp(&b.1)))
                        .map(|x| x.0)
                });
                (pointer, near)
            });
        let (pointer, near) = resp.inner;
        let response = resp.response;
        if let Some(item) = &near {
            let text = match item {
                Item::Dataset(id) => ds.get(*id).map(|e| format!("{} ({})\n{} {:.3}", e.formula, e.id, cc.label(), column_value(e, cc).unwrap_or(f64::NAN))).unwrap_or_default(),
                Item::Candidate(id) => generated.iter().find(|g| g.0 == *id).map(|g| format!("{} (generated, candidate {id})", g.2)).unwrap_or_default(),
                Item::File { .. } => String::new(),
            };
            response.clone().on_hover_text_at_pointer(text);
        } else if let Some(p) = pointer {
            response.clone().on_hover_text_at_pointer(format!("empty: click to decode a crystal at ({:.2}, {:.2})", p.x, p.y));
        }
        if response.clicked() {
            match (near, pointer) {
                (Some(item), _) => self.select(item),
                (None, Some(p)) => {
                    let z = map.pca.lift([p.x, p.y]);
                    self.start_run("generate", serde_json::json!({"n": 1, "batch": 1, "settings": {"mode": "decode", "points": [z]}}), 0);
                }
                _ => {}
            }
        }
        ui.weak(format!(
            "{} crystals{} encoded in {:.0} s; {} generated on the map; colour: {} from {:.3} to {:.3}",
            pts.len(),
            if stride > 1 { format!(" drawn (every {stride}th of {n_rows})") } else { String::new() },
            map.seconds,
            generated.len(),
            cc.label(),
            cmin,
            cmax
        ));
    }
}
