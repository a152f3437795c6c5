//! The crystal viewer: scene building ([`scene`]), the orbit camera ([`camera`]), the wgpu renderer
//! ([`render`]) and the egui widget below that ties them together (toolbar, orbit/pan/zoom, hover
//! tooltip, click to select, distance and angle measurements, labels, legend).
//!
//! Boundary: the viewer draws plain arrays built from a [`Structure`]; it knows nothing of the store,
//! jobs or models.

pub mod camera;
pub mod render;
pub mod scene;

use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu;
use eframe::wgpu;
use serde::{Deserialize, Serialize};

use crate::crystal::Structure;
use crate::crystal::bonds::BondRule;
use camera::{Camera, pick_sphere};
use render::{DrawData, ViewerRenderer};
use scene::{ColorScheme, Scene, SceneOptions, Style, build_scene};

/// Viewer settings that persist between sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerSettings {
    pub scene: SceneOptions,
    pub orthographic: bool,
    pub labels: bool,
    pub legend: bool,
}

impl Default for ViewerSettings {
    fn default() -> Self {
        ViewerSettings { scene: SceneOptions::default(), orthographic: false, labels: false, legend: true }
    }
}

/// What the viewer asks its host to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewerAction {
    /// Render at this size and save as PNG.
    ExportPng { width: u32, height: u32 },
}

/// A measurement between selected atoms.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// Distance (Å) between two atoms, with their labels.
    Distance { a: String, b: String, ang: f64 },
    /// Angle (degrees) a–b–c at b.
    Angle { a: String, b: String, c: String, deg: f64 },
}

pub struct Viewer {
    /// Distinguishes this view's GPU resources from other views'.
    pub id: u64,
    pub settings: ViewerSettings,
    pub camera: Camera,
    structure: Option<Structure>,
    pub title: String,
    scene: Scene,
    draw: Arc<DrawData>,
    version: u64,
    pub hovered: Option<usize>,
    /// Selected atoms (indices into the scene), at most three, in click order.
    pub selected: Vec<usize>,
    export_size: [u32; 2],
    background: [f64; 4],
    cell_color: [f32; 4],
}

impl Viewer {
    pub fn new(id: u64, settings: ViewerSettings) -> Viewer {
        Viewer {
            id,
            settings,
            camera: Camera::default(),
            structure: None,
            title: String::new(),
            scene: Scene::default(),
            draw: Arc::new(DrawData::default()),
            version: 0,
            hovered: None,
            selected: Vec::new(),
            export_size: [1600, 1200],
            background: [0.1, 0.1, 0.12, 1.0],
            cell_color: [0.75, 0.75, 0.78, 1.0],
        }
    }

    /// Install the renderer in eframe's wgpu callback resources (once, at start-up).
    pub fn install(render_state: &egui_wgpu::RenderState) {
        let r = ViewerRenderer::new(&render_state.device, Some(render_state.target_format));
        render_state.renderer.write().callback_resources.insert(r);
    }

    pub fn structure(&self) -> Option<&Structure> {
        self.structure.as_ref()
    }

    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    pub fn draw_data(&self) -> &DrawData {
        &self.draw
    }

    /// Show a structure (resets the camera and the selection).
    pub fn set_structure(&mut self, s: Structure, title: impl Into<String>) {
        self.structure = Some(s);
        self.title = title.into();
        self.selected.clear();
        self.hovered = None;
        self.rebuild();
        self.reset_camera();
    }

    pub fn clear(&mut self) {
        self.structure = None;
        self.title.clear();
        self.scene = Scene::default();
        self.selected.clear();
        self.refresh_draw();
    }

    /// Light or dark background and cell-edge colours (linear RGB).
    pub fn set_theme(&mut self, dark: bool) {
        let (bg, cell) = if dark {
            ([0.012, 0.012, 0.016, 1.0], [0.6, 0.6, 0.65, 1.0])
        } else {
            ([0.93, 0.93, 0.94, 1.0], [0.12, 0.12, 0.14, 1.0])
        };
        if self.background != bg {
            self.background = bg;
            self.cell_color = cell;
            self.refresh_draw();
        }
    }

    pub fn background(&self) -> [f64; 4] {
        self.background
    }

    /// Rebuild the scene after a change of structure or settings.
    pub fn rebuild(&mut self) {
        self.scene = match &self.structure {
            Some(s) => build_scene(s, &self.settings.scene),
            None => Scene::default(),
        };
        self.selected.retain(|&i| i < self.scene.atoms.len());
        self.refresh_draw();
    }

    fn refresh_draw(&mut self) {
        self.draw = Arc::new(DrawData::from_scene(
            &self.scene,
            self.settings.scene.style,
            self.hovered,
            &self.selected,
            self.cell_color,
        ));
        self.version += 1;
    }

    pub fn reset_camera(&mut self) {
        self.camera = Camera::framing(self.scene.center, self.scene.radius, self.settings.orthographic);
    }

    /// Look along lattice vector `axis` (0 = a, 1 = b, 2 = c).
    pub fn view_along(&mut self, axis: usize) {
        let Some(s) = &self.structure else { return };
        let rows = s.lattice.row_vectors();
        let d = rows[axis].map(|x| x as f32);
        let up_axis = if axis == 2 { 1 } else { 2 };
        let up = rows[up_axis].map(|x| x as f32);
        self.camera.look_along(d, up);
        self.camera.target = self.scene.center;
        self.camera.fit(self.scene.radius);
    }

    /// Text naming a scene atom: `Fe3` (element and site index, 1-based as in VESTA).
    pub fn atom_label(&self, i: usize) -> String {
        self.scene.atoms.get(i).map(|a| format!("{}{}", a.element.symbol(), a.site + 1)).unwrap_or_default()
    }

    /// Distances and angles between the selected atoms.
    pub fn measurements(&self) -> Vec<Measurement> {
        let p = |i: usize| glam::Vec3::from(self.scene.atoms[i].pos).as_dvec3();
        let sel = &self.selected;
        let mut out = Vec::new();
        if sel.len() >= 2 {
            out.push(Measurement::Distance {
                a: self.atom_label(sel[0]),
                b: self.atom_label(sel[1]),
                ang: p(sel[0]).distance(p(sel[1])),
            });
        }
        if sel.len() == 3 {
            out.push(Measurement::Distance {
                a: self.atom_label(sel[1]),
                b: self.atom_label(sel[2]),
                ang: p(sel[1]).distance(p(sel[2])),
            });
            let (u, v) = (p(sel[0]) - p(sel[1]), p(sel[2]) - p(sel[1]));
            let deg = (u.dot(v) / (u.length() * v.length())).clamp(-1.0, 1.0).acos().to_degrees();
            out.push(Measurement::Angle {
                a: self.atom_label(sel[0]),
                b: self.atom_label(sel[1]),
                c: self.atom_label(sel[2]),
                deg,
            });
        }
        out
    }

    /// Toggle the selection of a scene atom (keeps the last three clicked).
    pub fn toggle_select(&mut self, i: usize) {
        if let Some(pos) = self.selected.iter().position(|&s| s == i) {
            self.selected.remove(pos);
        } else {
            self.selected.push(i);
            if self.selected.len() > 3 {
                self.selected.remove(0);
            }
        }
        self.refresh_draw();
    }

    /// The toolbar: style, colours, supercell, boundary atoms, bonds, cell, labels, projection, views, export.
    pub fn toolbar_ui(&mut self, ui: &mut egui::Ui) -> Option<ViewerAction> {
        let mut action = None;
        let before = self.settings.clone();
        ui.horizontal_wrapped(|ui| {
            let s = &mut self.settings;
            crate::studio::labelled_combo(ui, "Style", ("style", self.id), s.scene.style.label(), |ui| {
                for st in Style::ALL {
                    ui.selectable_value(&mut s.scene.style, st, st.label());
                }
            });
            let colors = match s.scene.colors {
                ColorScheme::Jmol => "Jmol",
                ColorScheme::Vesta => "VESTA",
            };
            crate::studio::labelled_combo(ui, "Colours", ("colors", self.id), colors, |ui| {
                ui.selectable_value(&mut s.scene.colors, ColorScheme::Vesta, "VESTA");
                ui.selectable_value(&mut s.scene.colors, ColorScheme::Jmol, "Jmol");
            });
            ui.label("Supercell");
            for k in 0..3 {
                ui.add(egui::DragValue::new(&mut s.scene.supercell[k]).range(1..=20).speed(0.05))
                    .on_hover_text(["Repetitions along a", "Repetitions along b", "Repetitions along c"][k]);
            }
            ui.checkbox(&mut s.scene.boundary_atoms, "Boundary atoms")
                .on_hover_text("Repeat atoms on cell faces, edges and corners, as VESTA does");
            ui.checkbox(&mut s.scene.show_bonds, "Bonds");
            let vesta = matches!(s.scene.bond_rule, BondRule::Vesta);
            crate::studio::labelled_combo(
                ui,
                "by",
                ("bondrule", self.id),
                if vesta { "VESTA cutoffs" } else { "covalent radii" },
                |ui| {
                    if ui.selectable_label(!vesta, "Covalent radii ×1.15").clicked() {
                        s.scene.bond_rule = BondRule::default();
                    }
                    if ui.selectable_label(vesta, "VESTA cutoffs").clicked() {
                        s.scene.bond_rule = BondRule::Vesta;
                    }
                },
            );
            ui.checkbox(&mut s.scene.show_cell, "Cell");
            ui.checkbox(&mut s.labels, "Labels");
            ui.checkbox(&mut s.legend, "Legend");
            ui.checkbox(&mut s.orthographic, "Orthographic");
        });
        ui.horizontal(|ui| {
            for (k, name) in ["a", "b", "c"].iter().enumerate() {
                if ui.button(format!("View along {name}")).clicked() {
                    self.view_along(k);
                }
            }
            if ui.button("Reset view").clicked() {
                self.reset_camera();
            }
            ui.separator();
            ui.label("PNG");
            ui.add(egui::DragValue::new(&mut self.export_size[0]).range(64..=8192).suffix(" px"));
            ui.label("×");
            ui.add(egui::DragValue::new(&mut self.export_size[1]).range(64..=8192).suffix(" px"));
            if ui.add_enabled(self.structure.is_some(), egui::Button::new("Export PNG…")).clicked() {
                action = Some(ViewerAction::ExportPng { width: self.export_size[0], height: self.export_size[1] });
            }
        });
        if self.settings.orthographic != self.camera.orthographic {
            self.camera.orthographic = self.settings.orthographic;
        }
        if self.settings.scene != before.scene {
            self.rebuild();
            if self.settings.scene.supercell != before.scene.supercell {
                self.camera.target = self.scene.center;
                self.camera.fit(self.scene.radius);
            }
        }
        action
    }

    /// The 3D view filling `ui`'s remaining space.
    pub fn view_ui(&mut self, ui: &mut egui::Ui) {
        let size = ui.available_size().max(egui::vec2(64.0, 64.0));
        let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click_and_drag());
        if response.dragged_by(egui::PointerButton::Primary) && !ui.input(|i| i.modifiers.shift) {
            let d = response.drag_delta();
            self.camera.orbit(d.x, d.y);
        }
        if response.dragged_by(egui::PointerButton::Secondary)
            || response.dragged_by(egui::PointerButton::Middle)
            || (response.dragged_by(egui::PointerButton::Primary) && ui.input(|i| i.modifiers.shift))
        {
            let d = response.drag_delta();
            self.camera.pan(d.x, d.y, rect.height());
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y + i.zoom_delta().ln() * 200.0);
            if scroll != 0.0 {
                self.camera.zoom((scroll * 0.003).exp());
            }
        }
        // Picking on the CPU: exact ray–sphere tests, fine for 10⁵ atoms.
        let local = |p: egui::Pos2| [p.x - rect.min.x, p.y - rect.min.y];
        let hovered = response.hover_pos().and_then(|p| {
            let (o, d) = self.camera.ray(local(p), [rect.width(), rect.height()]);
            pick_sphere(o, d, self.scene.atoms.iter().map(|a| (a.pos, a.radius))).map(|h| h.0)
        });
        if hovered != self.hovered {
            self.hovered = hovered;
            self.refresh_draw();
        }
        if response.clicked() {
            match self.hovered {
                Some(i) => self.toggle_select(i),
                None => {
                    if !self.selected.is_empty() {
                        self.selected.clear();
                        self.refresh_draw();
                    }
                }
            }
        }
        let ppp = ui.ctx().pixels_per_point();
        let px = [(rect.width() * ppp).round().max(1.0) as u32, (rect.height() * ppp).round().max(1.0) as u32];
        ui.painter().add(egui_wgpu::Callback::new_paint_callback(
            rect,
            ViewerCallback {
                id: self.id,
                version: self.version,
                draw: self.draw.clone(),
                camera: self.camera,
                size_px: px,
                background: self.background,
            },
        ));
        self.overlay_ui(ui, rect);
        if let Some(i) = self.hovered {
            let a = self.scene.atoms[i];
            response.on_hover_ui_at_pointer(|ui| {
                ui.label(egui::RichText::new(format!("{} (site {})", a.element.symbol(), a.site + 1)).strong());
                ui.label(format!("fractional ({:.4}, {:.4}, {:.4})", a.frac[0], a.frac[1], a.frac[2]));
                ui.label(format!("Cartesian ({:.3}, {:.3}, {:.3}) Å", a.pos[0], a.pos[1], a.pos[2]));
                ui.weak("Click to select; select 2 for a distance, 3 for an angle");
            });
        }
    }

    /// Labels, legend, title and measurements drawn over the image.
    fn overlay_ui(&self, ui: &egui::Ui, rect: egui::Rect) {
        let painter = ui.painter_at(rect);
        let dark = ui.visuals().dark_mode;
        let text_color = if dark { egui::Color32::from_gray(230) } else { egui::Color32::from_gray(20) };
        let size = [rect.width(), rect.height()];
        if self.settings.labels && self.scene.atoms.len() <= 2000 {
            for (i, a) in self.scene.atoms.iter().enumerate() {
                if let Some(p) = self.camera.project(a.pos, size) {
                    painter.text(
                        rect.min + egui::vec2(p[0], p[1]),
                        egui::Align2::CENTER_CENTER,
                        self.atom_label(i),
                        egui::FontId::proportional(11.0),
                        text_color,
                    );
                }
            }
        }
        for &i in &self.selected {
            if let Some(p) = self.camera.project(self.scene.atoms[i].pos, size) {
                painter.text(
                    rect.min + egui::vec2(p[0] + 10.0, p[1] - 10.0),
                    egui::Align2::LEFT_BOTTOM,
                    self.atom_label(i),
                    egui::FontId::proportional(13.0),
                    egui::Color32::from_rgb(255, 200, 30),
                );
            }
        }
        if !self.title.is_empty() {
            painter.text(
                rect.left_top() + egui::vec2(8.0, 6.0),
                egui::Align2::LEFT_TOP,
                &self.title,
                egui::FontId::proportional(15.0),
                text_color,
            );
        }
        let mut y = rect.top() + 26.0;
        for m in self.measurements() {
            let t = match m {
                Measurement::Distance { a, b, ang } => format!("{a}–{b}  {ang:.4} Å"),
                Measurement::Angle { a, b, c, deg } => format!("{a}–{b}–{c}  {deg:.2}°"),
            };
            painter.text(
                egui::pos2(rect.left() + 8.0, y),
                egui::Align2::LEFT_TOP,
                t,
                egui::FontId::monospace(13.0),
                egui::Color32::from_rgb(255, 200, 30),
            );
            y += 18.0;
        }
        if self.settings.legend && !self.scene.elements.is_empty() {
            let mut x = rect.left() + 10.0;
            let yb = rect.bottom() - 14.0;
            for e in &self.scene.elements {
                let c = e.data();
                let rgb = match self.settings.scene.colors {
                    ColorScheme::Jmol => c.jmol_color,
                    ColorScheme::Vesta => c.vesta_color,
                };
                painter.circle_filled(egui::pos2(x + 6.0, yb), 6.0, egui::Color32::from_rgb(rgb[0], rgb[1], rgb[2]));
                let galley =
                    painter.layout_no_wrap(e.symbol().to_string(), egui::FontId::proportional(13.0), text_color);
                let w = galley.size().x;
                painter.galley(egui::pos2(x + 15.0, yb - galley.size().y / 2.0), galley, text_color);
                x += 26.0 + w;
            }
        }
        if self.structure.is_none() {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Select a crystal in the explorer, or open a file (Ctrl+O)",
                egui::FontId::proportional(16.0),
                text_color,
            );
        }
    }
}

/// The paint callback: renders into the view's offscreen target in `prepare`, blits in `paint`.
struct ViewerCallback {
    id: u64,
    version: u64,
    draw: Arc<DrawData>,
    camera: Camera,
    size_px: [u32; 2],
    background: [f64; 4],
}

impl egui_wgpu::CallbackTrait for ViewerCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(r) = resources.get_mut::<ViewerRenderer>() {
            r.set_scene(device, self.id, self.version, &self.draw);
            r.render(device, queue, encoder, self.id, &self.camera, self.size_px, self.background);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(r) = resources.get::<ViewerRenderer>() {
            r.blit(pass, self.id);
        }
    }
}

/// Encode tightly packed RGBA8 rows as PNG bytes.
pub fn encode_png(rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgba).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
