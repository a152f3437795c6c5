//! Renders the studio offscreen (egui_kittest + wgpu, lavapipe without a GPU) after running a small
//! screening funnel from the Screening tab, and saves the window as a PNG: the picture in
//! `docs/studio-screening.png`.
//!
//! `cargo run --release --example studio_screenshot -- docs/studio-screening.png [SYSTEM]` (with a system such
//! as `Ca-Ti-O`, the Hull tab of that system: `docs/studio-hull.png`)

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use geode::studio::state::DockTab;
use geode::studio::{Dialogs, Item, StudioApp, StudioOptions};

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "studio-screening.png".into());
    geode::ml::init_threads(1);
    let dir = std::env::temp_dir().join(format!("geode-screenshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = StudioOptions { project: Some(dir.join("p.geode")), dialogs: Dialogs::Fixed(dir.clone()), persist: false, threads: 0, files: Vec::new() };
    let mut h = Harness::builder().with_size(egui::vec2(1600.0, 1000.0)).wgpu().build_eframe(move |cc| StudioApp::new(cc, opts));
    h.run_steps(3);
    h.state_mut().state.dock_tab = DockTab::Screening;
    h.run_steps(2);
    h.get_by_label("Launch screening").click();
    let t0 = Instant::now();
    while !h.state().runs.iter().any(|r| r.kind == "screen" && r.status == "finished") {
        assert!(t0.elapsed() < Duration::from_secs(600), "the screen run did not finish");
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    h.run_steps(5);
    // Open the best candidate of the Pareto front in the viewer.
    if let Some(p) = h.state().screening.points.iter().find(|p| p.4 == 0.0).cloned() {
        h.state_mut().select(Item::Candidate(p.0));
    }
    h.run_steps(10);
    // `-- OUT.png Li-Fe-O`: show the Hull tab of that system instead, with the candidates overlaid.
    if let Some(system) = std::env::args().nth(2) {
        h.state_mut().state.explorer_tab = geode::studio::state::ExplorerTab::Candidates;
        h.state_mut().candidates_dirty = true;
        h.run_steps(3);
        h.state_mut().state.dock_tab = DockTab::Hull;
        h.state_mut().hull_system = system;
        h.run_steps(2);
        h.get_by_label("Show hull").click();
        h.run_steps(5);
    }
    let img = h.render().expect("render");
    img.save(&out).expect("write PNG");
    eprintln!("wrote {out}");
}
