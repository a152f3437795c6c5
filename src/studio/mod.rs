//! The studio: an eframe desktop application over the same engine, store and models as the CLI.
//! Layout: top bar (menus, project, dataset, running jobs), explorer (left), inspector (right), bottom
//! dock (property plot, runs, models), and the wgpu crystal viewer in the centre.
//!
//! Floor: the top layer beside `cli`; the only module that names egui, eframe or wgpu. Long work
//! (models, file reading and writing, runs) never runs on the UI thread: runs go to the engine,
//! the rest to [`worker`].

pub mod app;
pub mod background;
pub mod panels;
pub mod state;
pub mod viewer;
pub mod worker;

pub use app::{Dialogs, Item, StudioApp, StudioOptions};

/// A label followed by a combo box named by it (for screen readers and UI tests).
pub fn labelled_combo<R>(
    ui: &mut eframe::egui::Ui,
    label: &str,
    id_salt: impl std::hash::Hash + std::fmt::Debug,
    selected: impl Into<eframe::egui::WidgetText>,
    add_contents: impl FnOnce(&mut eframe::egui::Ui) -> R,
) -> eframe::egui::Response {
    let l = ui.label(label);
    eframe::egui::ComboBox::from_id_salt(id_salt)
        .selected_text(selected)
        .show_ui(ui, add_contents)
        .response
        .labelled_by(l.id)
}

/// Open the studio window; returns when it is closed.
pub fn run(opts: StudioOptions) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Geode")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        persist_window: opts.persist,
        ..Default::default()
    };
    eframe::run_native("Geode", native, Box::new(move |cc| Ok(Box::new(StudioApp::new(cc, opts))))).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the studio window: {e} (set WGPU_BACKEND=gl or vulkan, and DISPLAY or WAYLAND_DISPLAY)"
        )
    })
}
