//! The latent map: the dataset's crystals encoded by the shipped crystal VAE and projected onto the
//! codes' two principal axes (or, chosen in the "map" box, a t-SNE map started from them, computed in
//! the background the first time it is asked for), coloured by any property. Hover shows the formula; a click on a crystal
//! opens it; a click on empty space decodes the code there (a one-crystal `generate` run); Shift+drag
//! boxes a region, which filters the explorer. Generated candidates appear on the map as orange
//! crosses at their codes.
//!
//! Beside it, the property plane (formation energy × band gap of the dataset) carries the target: a
//! band-gap window (and optionally a formation-energy ceiling) drawn as a shaded band with a handle.
//! Dragging the handle, or the range sliders, moves the window; on release a `generate` run starts
//! towards it (a running one from this panel is cancelled first: retargeting). Generated crystals land
//! on the plane at their predicted properties and in the gallery below, newest first, each a click away
//! from the viewer.
//!
//! Interpolation: mark a dataset crystal as the path's start, select another and press "Path to"; the
//! decoded crystals along the straight line between their codes are drawn as a path on the map and
//! "Play" steps through them in the viewer.
//!
//! Encoding the 21k crystals takes a few seconds, so it runs on a background thread the first time
//! the tab is shown; the map is kept for the session.

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use eframe::egui;
use egui_plot::{Line, MarkerShape, Plot, PlotPoints, Points, Polygon};

use super::raster::{ScatterCache, key_of};
use crate::engine::RunSpec;
use crate::engine::jobs::generate::GenerateParams;
use crate::ml::Target;
use crate::ml::generative::CrystalVae;
use crate::ml::generative::projection::{MapMethod, Projection, TSNE_EPOCHS, TSNE_PERPLEXITY};
use crate::search::generate::{CampaignSettings, Mode, PropertyTarget};
use crate::studio::app::{Item, StudioApp, column_value};
use crate::studio::state::Column;

/// The dataset on the map.
pub struct LatentMap {
    pub projection: Projection,
    /// Map coordinates per dataset entry (index into `dataset.entries`).
    pub points: Vec<[f64; 2]>,
    /// The dataset's codes (rows, in entry order), kept to fit other maps.
    pub codes: Arc<Vec<Vec<f64>>>,
    /// Seconds to encode the crystals and fit the map.
    pub seconds: f64,
    /// Map coordinates of generated candidates, placed once: on a t-SNE map placing a code means a
    /// search over every dataset code. Keyed by candidate id and the code's bits (ids restart in
    /// another project, and the map outlives the project).
    placed: Mutex<std::collections::HashMap<(i64, u64), [f64; 2]>>,
}

impl LatentMap {
    pub fn new(projection: Projection, codes: Arc<Vec<Vec<f64>>>, seconds: f64) -> LatentMap {
        let points = projection.points(&codes);
        LatentMap { projection, points, codes, seconds, placed: Mutex::new(Default::default()) }
    }

    /// Map coordinates of candidate `id`'s code `z` (cached).
    fn place(&self, id: i64, z: &[f64]) -> [f64; 2] {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        z.iter().for_each(|x| x.to_bits().hash(&mut h));
        let mut placed = self.placed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *placed.entry((id, h.finish())).or_insert_with(|| self.projection.project(z))
    }
}

/// Where the background thread delivers the map.
type MapReceiver = Receiver<Result<LatentMap, String>>;

/// The tab's state (kept by the app).
pub struct LatentPanel {
    /// The PCA map (computed first, whatever the method).
    pub map: Option<Arc<LatentMap>>,
    pub error: Option<String>,
    pending: Option<Arc<Mutex<MapReceiver>>>,
    /// The map drawn; t-SNE is fitted to the PCA map's codes the first time it is chosen.
    pub method: MapMethod,
    pub tsne: Option<Arc<LatentMap>>,
    pub tsne_error: Option<String>,
    tsne_pending: Option<Arc<Mutex<MapReceiver>>>,
    pub color: Column,
    pub gap_lo: f64,
    pub gap_hi: f64,
    pub use_fe_max: bool,
    pub fe_max: f64,
    pub n: usize,
    /// Start a run when the target handle or sliders are released.
    pub live: bool,
    /// Target runs use the conditional sampler (codes around training crystals meeting the target)
    /// instead of latent optimisation from prior samples.
    pub conditional: bool,
    /// Target runs also symmetrise and relax every valid crystal with CHGNet.
    pub relax: bool,
    /// Target runs let the composition model guide the choice of formula (`sampling.guidance`).
    pub guided: bool,
    /// Target runs decode this many codes per crystal and keep the one the generator's re-encoded heads
    /// put nearest the target (`oversample`; 1 = every code, fastest).
    pub best_of: usize,
    /// The generate run the target controls started last (cancelled when retargeted).
    pub target_run: Option<i64>,
    /// Whether the handle is being dragged, and where it was drawn last (screen points).
    pub dragging: bool,
    pub handle_px: Option<egui::Pos2>,
    /// A box on the map (PC1 min, max, PC2 min, max) that filters the explorer.
    pub region: Option<[f64; 4]>,
    /// Interpolation: the start crystal (dataset id), the run, and the animation (next step, time of the last).
    pub path_start: Option<u32>,
    pub path_run: Option<i64>,
    pub playing: Option<(usize, f64)>,
    /// The map's and the property plane's dataset points, kept between frames.
    pub map_scatter: ScatterCache,
    pub plane_scatter: ScatterCache,
}

impl Default for LatentPanel {
    fn default() -> Self {
        LatentPanel {
            map: None,
            error: None,
            pending: None,
            method: MapMethod::Pca,
            tsne: None,
            tsne_error: None,
            tsne_pending: None,
            color: Column::BandGap,
            gap_lo: 1.5,
            gap_hi: 2.0,
            use_fe_max: false,
            fe_max: -1.0,
            n: 32,
            live: true,
            conditional: false,
            relax: false,
            guided: true,
            best_of: crate::search::generate::DEFAULT_OVERSAMPLE,
            target_run: None,
            dragging: false,
            handle_px: None,
            region: None,
            path_start: None,
            path_run: None,
            playing: None,
            map_scatter: ScatterCache::default(),
            plane_scatter: ScatterCache::default(),
        }
    }
}

/// One generated crystal as the panel shows it.
struct Shown {
    id: i64,
    run_id: Option<i64>,
    formula: String,
    /// Map coordinates of its code, if it has one.
    map: Option<[f64; 2]>,
    /// Predicted formation energy (eV/atom) and band gap (eV).
    fe: Option<f64>,
    gap: Option<f64>,
    valid: bool,
    /// Position along an interpolation path.
    index: Option<u64>,
    /// A generated crystal after symmetrisation and relaxation (its predictions are the relaxed one's).
    relaxed: bool,
}

fn prop(v: &serde_json::Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.get("value").and_then(serde_json::Value::as_f64).or_else(|| x.as_f64()))
}

/// Seconds between steps of the path animation.
const PLAY_STEP_S: f64 = 0.7;
/// Crystals in the gallery.
const GALLERY: usize = 24;

/// Encode every dataset crystal and fit the map (blocking; run off the UI thread).
pub fn compute_map(ds: &crate::data::Dataset) -> Result<LatentMap, String> {
    let t0 = std::time::Instant::now();
    let vae = CrystalVae::shipped().map_err(|e| e.to_string())?;
    let codes = vae.code_rows(ds.entries.iter().map(|e| &e.structure))?;
    let projection = Projection::fit(MapMethod::Pca, &codes, TSNE_PERPLEXITY, TSNE_EPOCHS)?;
    Ok(LatentMap::new(projection, Arc::new(codes), t0.elapsed().as_secs_f64()))
}

/// Fit a map of `method` to codes already encoded (blocking; run off the UI thread).
pub fn compute_projection(codes: Arc<Vec<Vec<f64>>>, method: MapMethod) -> Result<LatentMap, String> {
    let t0 = std::time::Instant::now();
    let projection = Projection::fit(method, &codes, TSNE_PERPLEXITY, TSNE_EPOCHS)?;
    Ok(LatentMap::new(projection, codes, t0.elapsed().as_secs_f64()))
}

/// Receive what a background map thread sent, if it has.
/// `f`'s answer, or its panic as an error: a bug in a map computation shows as the map's error instead of
/// leaving the tab computing forever.
fn caught<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(format!("internal error: {}", crate::panic_message(&*p))))
}

fn received(pending: &Option<Arc<Mutex<MapReceiver>>>) -> Option<Result<LatentMap, String>> {
    pending.as_ref().and_then(|rx| rx.lock().ok().and_then(|r| r.try_recv().ok()))
}

/// Colour of generated crystals.
const GENERATED: egui::Color32 = egui::Color32::from_rgb(255, 140, 0);

impl StudioApp {
    fn latent_poll(&mut self, ctx: &egui::Context) {
        if self.latent.map.is_none() && self.latent.pending.is_none() && self.latent.error.is_none() {
            let (tx, rx) = channel();
            let ds = self.dataset;
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(caught(|| compute_map(ds)));
                ctx.request_repaint();
            });
            self.latent.pending = Some(Arc::new(Mutex::new(rx)));
        }
        if let Some(r) = received(&self.latent.pending) {
            self.latent.pending = None;
            match r {
                Ok(m) => self.latent.map = Some(Arc::new(m)),
                Err(e) => self.latent.error = Some(e),
            }
        }
        // t-SNE, once chosen, from the PCA map's codes.
        if self.latent.method == MapMethod::Tsne
            && self.latent.tsne.is_none()
            && self.latent.tsne_pending.is_none()
            && self.latent.tsne_error.is_none()
            && let Some(map) = &self.latent.map
        {
            let (tx, rx) = channel();
            let codes = map.codes.clone();
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(caught(|| compute_projection(codes, MapMethod::Tsne)));
                ctx.request_repaint();
            });
            self.latent.tsne_pending = Some(Arc::new(Mutex::new(rx)));
        }
        if let Some(r) = received(&self.latent.tsne_pending) {
            self.latent.tsne_pending = None;
            match r {
                Ok(m) => {
                    self.latent.tsne = Some(Arc::new(m));
                    // The drawn map changes under any box drawn on the PCA map meanwhile.
                    if self.latent.method == MapMethod::Tsne {
                        self.latent.region = None;
                    }
                }
                Err(e) => self.latent.tsne_error = Some(e),
            }
        }
    }

    /// The map drawn: t-SNE when chosen and fitted, else PCA.
    pub fn latent_current_map(&self) -> Option<Arc<LatentMap>> {
        match self.latent.method {
            MapMethod::Tsne if self.latent.tsne.is_some() => self.latent.tsne.clone(),
            _ => self.latent.map.clone(),
        }
    }

    /// The target the controls set, typed.
    pub fn latent_targets(&self) -> Vec<PropertyTarget> {
        // Targets in steps of 0.01 eV (the handle's resolution), so runs read as they were meant.
        let r = |x: f64| (x * 100.0).round() / 100.0;
        let (lo, hi) = (r(self.latent.gap_lo.min(self.latent.gap_hi)), r(self.latent.gap_lo.max(self.latent.gap_hi)));
        let mut targets = vec![PropertyTarget { target: Target::BandGap, lo, hi, extreme: None }];
        if self.latent.use_fe_max {
            targets.push(PropertyTarget {
                target: Target::FormationEnergyPerAtom,
                lo: f64::NEG_INFINITY,
                hi: r(self.latent.fe_max),
                extreme: None,
            });
        }
        targets
    }

    /// A `generate` spec of `n` crystals in batches of `batch` with these settings (two Langevin steps
    /// per noise level: the studio's quick decoding); the "Also predict" models predict every crystal too.
    fn generate_spec(&self, n: usize, batch: usize, seeds: Vec<String>, settings: CampaignSettings) -> RunSpec {
        let mut settings = settings;
        settings.sampling.steps_per_level = 2;
        let property_models = self.state.property_models.clone();
        RunSpec::Generate(GenerateParams { n, batch, seeds, settings, property_models, ..GenerateParams::default() })
    }

    /// The `generate` run the target controls start.
    fn latent_target_params(&self) -> RunSpec {
        let mut settings = CampaignSettings {
            mode: if self.latent.conditional { Mode::Conditional } else { Mode::Sample },
            targets: self.latent_targets(),
            oversample: self.latent.best_of.max(1),
            ..CampaignSettings::default()
        };
        settings.sampling.guidance =
            if self.latent.guided { crate::ml::generative::sample::DEFAULT_GUIDANCE } else { 0.0 };
        let mut spec = self.generate_spec(self.latent.n.max(1), 16, Vec::new(), settings);
        if let RunSpec::Generate(p) = &mut spec
            && self.latent.relax
        {
            p.relax = "chgnet".into();
        }
        spec
    }

    /// Start a generation run towards the form's targets; its crystals arrive in the gallery and on
    /// both plots (the Runs tab has its progress and log).
    pub fn latent_generate_for_target(&mut self) {
        let spec = self.latent_target_params();
        self.latent.target_run = self.submit_run(spec, 0, false);
    }

    /// Retarget: cancel the panel's running target run, if any, and start one towards the new target,
    /// staying on this tab so the crystals can be watched arriving.
    pub fn latent_retarget(&mut self) {
        if let (Some(id), Some(engine)) = (self.latent.target_run, &self.engine)
            && self.runs.iter().any(|r| r.id == id && matches!(r.status.as_str(), "queued" | "running"))
        {
            let _ = engine.cancel(id);
        }
        let spec = self.latent_target_params();
        self.latent.target_run = self.submit_run(spec, 0, false);
    }

    /// Start an interpolation run from the marked start crystal to the selected dataset crystal.
    pub fn latent_path_to_selected(&mut self) {
        let (Some(a), Some(Item::Dataset(b))) = (self.latent.path_start, self.selection.clone()) else {
            self.toast("Mark a start crystal, then select the end crystal (both from the dataset)", true);
            return;
        };
        let seeds = vec![format!("oqmd-icsd-{a}"), format!("oqmd-icsd-{b}")];
        let settings = CampaignSettings { mode: Mode::Interpolate, ..CampaignSettings::default() };
        self.latent.path_run = self.submit_run(self.generate_spec(12, 12, seeds, settings), 0, false);
        self.latent.playing = None;
    }

    /// The generated candidates the panel shows, newest first.
    fn latent_shown(&self, map: &LatentMap) -> Vec<Shown> {
        let mut out: Vec<Shown> = self
            .candidates
            .iter()
            .filter(|c| c.source.starts_with("crystal-vae"))
            .map(|c| {
                let z: Option<Vec<f64>> = c
                    .properties
                    .get("latent")
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|v| v.as_f64()).collect());
                Shown {
                    id: c.id,
                    run_id: c.run_id,
                    formula: c.formula.clone(),
                    map: z.filter(|z| z.len() == map.projection.latent_dim()).map(|z| map.place(c.id, &z)),
                    fe: prop(&c.properties, "formation_energy_per_atom"),
                    gap: prop(&c.properties, "band_gap"),
                    valid: c.stage != "invalid",
                    index: c.properties.get("index").and_then(serde_json::Value::as_u64),
                    relaxed: c.stage == "relaxed",
                }
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.id));
        out
    }

    fn in_target(&self, fe: Option<f64>, gap: Option<f64>) -> bool {
        // Targets in steps of 0.01 eV (the handle's resolution), so runs read as they were meant.
        let r = |x: f64| (x * 100.0).round() / 100.0;
        let (lo, hi) = (r(self.latent.gap_lo.min(self.latent.gap_hi)), r(self.latent.gap_lo.max(self.latent.gap_hi)));
        gap.is_some_and(|g| g >= lo && g <= hi)
            && (!self.latent.use_fe_max || fe.is_some_and(|f| f < self.latent.fe_max))
    }

    pub fn latent_ui(&mut self, ui: &mut egui::Ui) {
        self.latent_poll(ui.ctx());
        let mut released = false;
        // Sliders are compound widgets that do not wrap, so each group gets its own row.
        let slider =
            |ui: &mut egui::Ui, v: &mut f64, range: std::ops::RangeInclusive<f64>, suffix: &str, enabled: bool| {
                ui.spacing_mut().slider_width = 90.0;
                let r =
                    ui.add_enabled(enabled, egui::Slider::new(v, range).step_by(0.05).fixed_decimals(2).suffix(suffix));
                r.drag_stopped() || (r.changed() && !r.dragged())
            };
        ui.horizontal(|ui| {
            ui.label("Target band gap");
            released |= slider(ui, &mut self.latent.gap_lo, 0.0..=8.0, "", true);
            ui.label("to");
            released |= slider(ui, &mut self.latent.gap_hi, 0.0..=8.0, " eV", true);
            if ui
                .button("Generate")
                .on_hover_text(
                    "Start a generate run: latent codes moved towards these targets, decoded, checked and predicted",
                )
                .clicked()
            {
                self.latent_generate_for_target();
            }
        });
        ui.horizontal_wrapped(|ui| {
            released |= ui.checkbox(&mut self.latent.use_fe_max, "and E_f below").on_hover_text("Also ask for a formation energy below this (eV/atom)").changed();
            released |= slider(ui, &mut self.latent.fe_max, -4.0..=1.0, " eV/atom", self.latent.use_fe_max);
            ui.label("crystals");
            ui.add(egui::DragValue::new(&mut self.latent.n).range(1..=2000));
            ui.checkbox(&mut self.latent.live, "live").on_hover_text("Start a run whenever the target is moved (a running one from here is cancelled)");
            ui.checkbox(&mut self.latent.conditional, "conditional").on_hover_text("Start from training crystals whose DFT labels meet the target (the conditional sampler) instead of prior samples");
            ui.checkbox(&mut self.latent.guided, "guided formulas").on_hover_text("Among the charge-balanced formulas nearest the composition head, pick the one the composition model predicts closest to the target");
            ui.add(egui::DragValue::new(&mut self.latent.best_of).range(1..=8).prefix("best of "))
                .on_hover_text("Decode this many crystals for each one kept, and keep the one the generator itself (encoding it again) puts nearest the target; 1 is fastest");
            ui.checkbox(&mut self.latent.relax, "relax (CHGNet)").on_hover_text("Symmetrise and relax every valid crystal with CHGNet, place it on the CHGNet hull and predict its properties again; the relaxed crystal joins the gallery beside the generated one (a few seconds per crystal)");
            let columns = self.numeric_columns();
            crate::studio::labelled_combo(ui, "map colour", "latent_colour", self.latent.color.label(), |ui| {
                for c in columns {
                    ui.selectable_value(&mut self.latent.color, c, c.label());
                }
            });
            let before = self.latent.method;
            crate::studio::labelled_combo(ui, "map", "latent_method", before.label(), |ui| {
                for m in MapMethod::ALL {
                    ui.selectable_value(&mut self.latent.method, m, m.label()).on_hover_text(match m {
                        MapMethod::Pca => "The codes' two principal axes: distances along them are latent distances, and a click decodes exactly the code there",
                        MapMethod::Tsne => "t-SNE started from the PCA map: neighbourhoods kept, distances between groups not; a click decodes a blend of the nearest crystals' codes (computed the first time, about a minute)",
                    });
                }
            });
            if self.latent.method != before {
                // A box drawn in one map's coordinates means nothing in the other's.
                self.latent.region = None;
                // Choosing t-SNE again (after PCA) after a failed fit tries again.
                if self.latent.method == MapMethod::Tsne {
                    self.latent.tsne_error = None;
                }
            }
        });
        let Some(map) = self.latent_current_map() else {
            match &self.latent.error {
                Some(e) => ui.colored_label(egui::Color32::from_rgb(220, 80, 80), format!("No latent map: {e}")),
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("Encoding {} crystals with the crystal VAE…", self.dataset.entries.len()))
                    })
                    .inner
                }
            };
            return;
        };
        let shown = self.latent_shown(&map);
        self.latent_path_ui(ui, &shown);
        // Two plots side by side over the gallery; each plot leaves room for its caption.
        let plot_h = (ui.available_height() - 46.0 - 40.0).max(100.0);
        ui.columns(2, |cols| {
            self.latent_map_ui(&mut cols[0], &map, &shown, plot_h);
            released |= self.latent_plane_ui(&mut cols[1], &shown, plot_h);
        });
        self.latent_gallery_ui(ui, &shown);
        if released && self.latent.live {
            self.latent_retarget();
        }
    }

    /// Interpolation controls and the path animation.
    fn latent_path_ui(&mut self, ui: &mut egui::Ui, shown: &[Shown]) {
        let path: Vec<&Shown> = self.latent_path(shown);
        ui.horizontal(|ui| {
            ui.label("Path:");
            let sel = match &self.selection {
                Some(Item::Dataset(id)) => Some(*id),
                _ => None,
            };
            if ui
                .add_enabled(sel.is_some(), egui::Button::new("Start here"))
                .on_hover_text("Mark the selected dataset crystal as the start of an interpolation path")
                .clicked()
            {
                self.latent.path_start = sel;
            }
            match self.latent.path_start.and_then(|id| self.dataset.get(id)) {
                Some(e) => ui.label(format!("from {} ({})", e.formula, e.id)),
                None => ui.weak("no start"),
            };
            let can = self.latent.path_start.is_some() && sel.is_some() && sel != self.latent.path_start;
            if ui
                .add_enabled(can, egui::Button::new("Path to selected"))
                .on_hover_text("Decode 12 crystals on the straight line between the two codes")
                .clicked()
            {
                self.latent_path_to_selected();
            }
            let label = if self.latent.playing.is_some() { "Pause" } else { "Play path" };
            if ui
                .add_enabled(path.len() > 1, egui::Button::new(label))
                .on_hover_text("Step through the path in the viewer")
                .clicked()
            {
                self.latent.playing = if self.latent.playing.is_some() { None } else { Some((0, 0.0)) };
            }
            if !path.is_empty() {
                ui.weak(format!("{} crystals on the path", path.len()));
            }
            if self.latent.region.is_some() && ui.button("Clear region").clicked() {
                self.latent.region = None;
            }
        });
        if let Some((k, last)) = self.latent.playing {
            let now = ui.input(|i| i.time);
            if now - last >= PLAY_STEP_S && !path.is_empty() {
                let id = path[k % path.len()].id;
                self.select(Item::Candidate(id));
                self.latent.playing = Some(((k + 1) % path.len(), now));
            }
            ui.ctx().request_repaint_after(std::time::Duration::from_secs_f64(PLAY_STEP_S / 2.0));
        }
    }

    /// The interpolation run's crystals in path order.
    fn latent_path<'a>(&self, shown: &'a [Shown]) -> Vec<&'a Shown> {
        let Some(run) = self.latent.path_run else { return Vec::new() };
        let mut path: Vec<&Shown> = shown.iter().filter(|s| s.run_id == Some(run) && s.map.is_some()).collect();
        path.sort_by_key(|s| s.index.unwrap_or(u64::MAX));
        path
    }

    fn latent_map_ui(&mut self, ui: &mut egui::Ui, map: &LatentMap, shown: &[Shown], height: f32) {
        let ds = self.dataset;
        let cc = self.latent.color;
        // Points drawn: the explorer's rows, without the map's own region (so the region can be redrawn).
        let regioned = self.latent.region.is_some();
        let key = key_of((
            if regioned { "" } else { self.filter_key.as_str() },
            cc,
            map.points.len(),
            map.projection.method().label(),
            self.dataset_predicted.version,
        ));
        let filtered = &self.filtered;
        let p = &self.dataset_predicted;
        self.latent.map_scatter.update_coloured(key, || {
            super::plots::plotted_rows(filtered, ds.entries.len(), regioned)
                .map(|i| (i, map.points[i], column_value(&ds.entries[i], cc, p).unwrap_or(0.0)))
                .collect()
        });
        let scatter = &self.latent.map_scatter;
        let n_rows = scatter.rows.len();
        let (cmin, cmax) = scatter.range;
        let generated: Vec<(i64, [f64; 2], &str)> =
            shown.iter().filter_map(|g| Some((g.id, g.map?, g.formula.as_str()))).collect();
        let path: Vec<[f64; 2]> = self.latent_path(shown).iter().filter_map(|s| s.map).collect();
        let selected = match &self.selection {
            Some(Item::Dataset(id)) => ds.entries.iter().position(|e| e.id == *id).map(|i| map.points[i]),
            Some(Item::Candidate(id)) => generated.iter().find(|g| g.0 == *id).map(|g| g.1),
            _ => None,
        };
        let start =
            self.latent.path_start.and_then(|id| ds.entries.iter().position(|e| e.id == id)).map(|i| map.points[i]);
        let shift = ui.input(|i| i.modifiers.shift);
        let region = self.latent.region;
        let [x_label, y_label] = map.projection.axis_labels();
        let resp = Plot::new(("latent_map", map.projection.method().label()))
            .height(height)
            .x_axis_label(x_label)
            .y_axis_label(y_label)
            .allow_drag(!shift)
            .allow_boxed_zoom(false)
            .label_formatter(|_| None)
            .show(ui, |plot_ui| {
                plot_ui.add(scatter.item("crystals", 1.8));
                if let Some(b) = region {
                    plot_ui.polygon(super::plots::selection_box("region", b));
                }
                if !generated.is_empty() {
                    let g: Vec<[f64; 2]> = generated.iter().map(|g| g.1).collect();
                    plot_ui.points(
                        Points::new("generated", PlotPoints::from(g))
                            .radius(5.0)
                            .shape(MarkerShape::Cross)
                            .color(GENERATED),
                    );
                }
                if path.len() > 1 {
                    plot_ui.line(
                        Line::new("path", PlotPoints::from(path.clone()))
                            .color(egui::Color32::from_rgb(90, 200, 255))
                            .width(2.0),
                    );
                }
                if let Some(s) = start {
                    plot_ui.points(
                        Points::new("path start", PlotPoints::from(vec![s]))
                            .radius(6.0)
                            .shape(MarkerShape::Diamond)
                            .color(egui::Color32::from_rgb(90, 200, 255)),
                    );
                }
                if let Some(s) = selected {
                    plot_ui.points(
                        Points::new("selected", PlotPoints::from(vec![s]))
                            .radius(7.0)
                            .color(egui::Color32::from_rgb(255, 200, 30))
                            .shape(MarkerShape::Circle)
                            .filled(false),
                    );
                }
                let pointer = plot_ui.pointer_coordinate();
                let near = plot_ui.response().hover_pos().and_then(|px| {
                    let d = |p: [f64; 2]| plot_ui.screen_from_plot(egui_plot::PlotPoint::new(p[0], p[1])).distance(px);
                    let g = generated
                        .iter()
                        .map(|g| (Item::Candidate(g.0), d(g.1)))
                        .filter(|x| x.1 < 8.0)
                        .min_by(|a, b| a.1.total_cmp(&b.1));
                    g.map(|x| x.0)
                        .or_else(|| scatter.nearest(plot_ui, px, 8.0).map(|i| Item::Dataset(ds.entries[i].id)))
                });
                (pointer, near)
            });
        let (pointer, near) = resp.inner;
        let response = resp.response;
        if let Some(item) = &near {
            let text = match item {
                Item::Dataset(id) => ds
                    .get(*id)
                    .map(|e| {
                        format!(
                            "{} ({})\n{} {:.3}",
                            e.formula,
                            e.id,
                            cc.label(),
                            column_value(e, cc, &self.dataset_predicted).unwrap_or(f64::NAN)
                        )
                    })
                    .unwrap_or_default(),
                Item::Candidate(id) => generated
                    .iter()
                    .find(|g| g.0 == *id)
                    .map(|g| format!("{} (generated, candidate {id})", g.2))
                    .unwrap_or_default(),
                Item::File { .. } => String::new(),
            };
            response.clone().on_hover_text_at_pointer(text);
        } else if let Some(p) = pointer {
            response.clone().on_hover_text_at_pointer(format!(
                "empty: click to decode a crystal at ({:.2}, {:.2}); Shift+drag to box a region",
                p.x, p.y
            ));
        }
        // Region selection with Shift+drag, in map coordinates.
        if let Some(r) = super::plots::shift_drag_box(ui, &response, pointer, shift, "latent_region_start") {
            self.latent.region = Some(r);
        }
        if response.clicked() {
            match (near, pointer) {
                (Some(item), _) => self.select(item),
                (None, Some(p)) => {
                    let z = map.projection.lift([p.x, p.y]);
                    let settings =
                        CampaignSettings { mode: Mode::Decode, points: vec![z], ..CampaignSettings::default() };
                    let property_models = self.state.property_models.clone();
                    let spec = RunSpec::Generate(GenerateParams {
                        n: 1,
                        batch: 1,
                        settings,
                        property_models,
                        ..GenerateParams::default()
                    });
                    self.start_run(spec, 0);
                }
                _ => {}
            }
        }
        let tsne_note = match (&self.latent.method, &self.latent.tsne, &self.latent.tsne_error) {
            (MapMethod::Tsne, None, Some(e)) => {
                format!("t-SNE failed ({e}), PCA shown (choose PCA, then t-SNE, to retry); ")
            }
            (MapMethod::Tsne, None, None) => {
                format!("fitting t-SNE to {} codes, PCA shown meanwhile; ", map.codes.len())
            }
            _ => String::new(),
        };
        ui.weak(format!(
            "{tsne_note}{} crystals, {} generated; {} {:.2} to {:.2}{}",
            n_rows,
            generated.len(),
            cc.label(),
            cmin,
            cmax,
            if region.is_some() { format!("; region: {} in the explorer", self.filtered.len()) } else { String::new() }
        ))
        .on_hover_text(format!("{} map, {:.0} s. Click a point to open it, empty space to decode there; Shift+drag boxes a region that filters the explorer.", map.projection.method().label(), map.seconds));
    }

    /// The property plane with the draggable target; true when the handle was released (retarget).
    fn latent_plane_ui(&mut self, ui: &mut egui::Ui, shown: &[Shown], height: f32) -> bool {
        let ds = self.dataset;
        self.latent.plane_scatter.update_plain(ds.len() as u64, egui::Color32::from_gray(110), || {
            ds.entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| Some((i, [e.formation_energy_per_atom, e.band_gap?])))
                .collect()
        });
        let backdrop = &self.latent.plane_scatter;
        // Targets in steps of 0.01 eV (the handle's resolution), so runs read as they were meant.
        let r = |x: f64| (x * 100.0).round() / 100.0;
        let (lo, hi) = (r(self.latent.gap_lo.min(self.latent.gap_hi)), r(self.latent.gap_lo.max(self.latent.gap_hi)));
        let handle = [self.latent.fe_max, 0.5 * (lo + hi)];
        let (hits, misses): (Vec<&Shown>, Vec<&Shown>) = shown
            .iter()
            .filter(|s| s.valid && s.fe.is_some() && s.gap.is_some())
            .partition(|s| self.in_target(s.fe, s.gap));
        let xy =
            |v: &[&Shown]| -> Vec<[f64; 2]> { v.iter().map(|s| [s.fe.unwrap_or(0.0), s.gap.unwrap_or(0.0)]).collect() };
        let (hit_pts, miss_pts) = (xy(&hits), xy(&misses));
        let use_fe = self.latent.use_fe_max;
        // Panning is off while the pointer is over the handle (as of the last frame) or dragging it.
        let hover_id = egui::Id::unique("latent_handle_hovered");
        let dragging = self.latent.dragging || ui.data(|d| d.get_temp::<bool>(hover_id).unwrap_or(false));
        let resp = Plot::new("latent_target_plane")
            .height(height)
            .x_axis_label("formation energy (eV/atom)")
            .y_axis_label("band gap (eV)")
            .allow_drag(!dragging)
            .allow_boxed_zoom(false)
            .default_x_bounds(-4.5, 1.0)
            .default_y_bounds(-0.2, 8.0)
            .label_formatter(|_| None)
            .show(ui, |plot_ui| {
                plot_ui.add(backdrop.item("dataset", 1.2));
                let (x0, x1) = (-6.0, if use_fe { handle[0] } else { 3.0 });
                plot_ui.polygon(
                    Polygon::new("target", PlotPoints::from(vec![[x0, lo], [x1, lo], [x1, hi], [x0, hi]]))
                        .fill_color(egui::Color32::from_rgba_unmultiplied(90, 200, 255, 40))
                        .stroke(egui::Stroke::new(1.0, egui::Color32::from_rgb(90, 200, 255))),
                );
                if !miss_pts.is_empty() {
                    plot_ui.points(
                        Points::new("generated", PlotPoints::from(miss_pts))
                            .radius(4.0)
                            .shape(MarkerShape::Cross)
                            .color(GENERATED),
                    );
                }
                if !hit_pts.is_empty() {
                    plot_ui.points(
                        Points::new("on target", PlotPoints::from(hit_pts))
                            .radius(4.5)
                            .shape(MarkerShape::Cross)
                            .color(egui::Color32::from_rgb(80, 220, 120)),
                    );
                }
                plot_ui.points(
                    Points::new("target handle", PlotPoints::from(vec![handle]))
                        .radius(8.0)
                        .shape(MarkerShape::Diamond)
                        .color(egui::Color32::from_rgb(90, 200, 255)),
                );
                let handle_px = plot_ui.screen_from_plot(egui_plot::PlotPoint::new(handle[0], handle[1]));
                let near_handle = plot_ui.response().hover_pos().is_some_and(|px| handle_px.distance(px) < 14.0);
                (plot_ui.pointer_coordinate(), plot_ui.pointer_coordinate_drag_delta(), near_handle, handle_px)
            });
        let (pointer, delta, near_handle, handle_px) = resp.inner;
        self.latent.handle_px = Some(handle_px);
        let response = resp.response;
        ui.data_mut(|d| d.insert_temp(hover_id, near_handle));
        // A drag that began on the handle moves the target.
        let pressed_on_handle = ui.input(|i| i.pointer.press_origin()).is_some_and(|p| p.distance(handle_px) < 14.0);
        if response.drag_started() && (near_handle || pressed_on_handle) {
            self.latent.dragging = true;
        }
        let mut released = false;
        if self.latent.dragging {
            if response.dragged() {
                // The window keeps its width and stays inside 0–8 eV.
                let dy = f64::from(delta.y).clamp(-lo, 8.0 - hi);
                self.latent.gap_lo += dy;
                self.latent.gap_hi += dy;
                self.latent.fe_max = (self.latent.fe_max + f64::from(delta.x)).clamp(-4.0, 1.0);
            }
            if response.drag_stopped() || !response.dragged() {
                self.latent.dragging = false;
                released = true;
            }
        }
        if near_handle || self.latent.dragging {
            response.clone().on_hover_text_at_pointer(format!(
                "target: band gap {lo:.2}–{hi:.2} eV{}; drag to move, release to generate",
                if use_fe {
                    format!(", formation energy below {:.2} eV/atom", self.latent.fe_max)
                } else {
                    String::new()
                }
            ));
        } else if let Some(p) = pointer {
            response.clone().on_hover_text_at_pointer(format!("E_f {:.2} eV/atom, band gap {:.2} eV", p.x, p.y));
        }
        // Generated and relaxed crystals are counted apart: a relaxed one is the same crystal again.
        let count = |v: &[&Shown], relaxed: bool| v.iter().filter(|s| s.relaxed == relaxed).count();
        let (n_valid, n_relaxed) =
            (count(&hits, false) + count(&misses, false), count(&hits, true) + count(&misses, true));
        let relaxed =
            if n_relaxed > 0 { format!(", {} of {n_relaxed} relaxed", count(&hits, true)) } else { String::new() };
        ui.weak(format!("target {lo:.2}–{hi:.2} eV: {} of {n_valid} valid generated inside{relaxed} (forward model); drag the diamond", count(&hits, false)));
        released
    }

    /// The newest generated crystals, each a click away from the viewer.
    fn latent_gallery_ui(&mut self, ui: &mut egui::Ui, shown: &[Shown]) {
        let mut open = None;
        egui::ScrollArea::horizontal().id_salt("latent_gallery").show(ui, |ui| {
            ui.horizontal(|ui| {
                if shown.is_empty() {
                    ui.weak(
                        "Generated crystals appear here as they are decoded: drag the target handle or press Generate.",
                    );
                }
                for s in shown.iter().take(GALLERY) {
                    let hit = s.valid && self.in_target(s.fe, s.gap);
                    let props = if s.valid {
                        format!(
                            "{} eV · {}",
                            s.gap.map(|g| format!("{g:.2}")).unwrap_or("?".into()),
                            s.fe.map(|f| format!("{f:.2}")).unwrap_or("?".into())
                        )
                    } else {
                        "invalid".into()
                    };
                    let text = format!("{}{}\n{props}", s.formula, if s.relaxed { " · relaxed" } else { "" });
                    let colour = if hit { egui::Color32::from_rgb(80, 220, 120) } else { ui.visuals().text_color() };
                    let selected = self.selection == Some(Item::Candidate(s.id));
                    let b = egui::Button::selectable(selected, egui::RichText::new(text).size(10.5).color(colour))
                        .min_size(egui::vec2(96.0, 36.0));
                    let tip = format!(
                        "candidate {}{}: band gap (eV) · formation energy (eV/atom), predicted{}; click to open",
                        s.id,
                        if s.relaxed { " (symmetrised and relaxed with CHGNet, then predicted again)" } else { "" },
                        if hit { "; inside the target (green)" } else { "" }
                    );
                    if ui.add(b).on_hover_text(tip).clicked() {
                        open = Some(s.id);
                    }
                }
            });
        });
        if let Some(id) = open {
            self.select(Item::Candidate(id));
        }
    }
}
