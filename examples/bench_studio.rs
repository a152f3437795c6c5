//! Studio frame-time benchmark: whole frames of the real app (egui layout + the wgpu viewer + egui's
//! renderer, read back) through egui_kittest's wgpu harness at the studio's default window size (1440×900), on whatever adapter the
//! machine has (lavapipe without a GPU). Scenes (camera orbiting every frame, or still, when the viewer
//! re-uses its last image): the default view (full 20,988-row explorer,
//! LiFePO4-sized crystal in the viewer, property plot of the whole dataset); the same while an
//! `analyze` run keeps the engine's pool busy; and an N×N×N NaCl supercell in the viewer.
//!
//! `cargo run --release --example bench_studio [-- --frames 60 --supercell 10 --size 1440x900]`

use std::time::Instant;

use eframe::egui;
use egui_kittest::Harness;
use geode::studio::{Dialogs, Item, StudioApp, StudioOptions};

fn stats(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let p = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    serde_json::json!({"frames": ms.len(), "mean_ms": mean, "median_ms": p(0.5), "p95_ms": p(0.95), "max_ms": p(1.0)})
}

fn frames(
    h: &mut Harness<'static, StudioApp>,
    n: usize,
    mut each: impl FnMut(&mut Harness<'static, StudioApp>, usize),
) -> Vec<f64> {
    let mut ui_ms = Vec::with_capacity(n);
    let mut tess_ms = Vec::with_capacity(n);
    let mut vertices = 0;
    let ms = (0..n)
        .map(|i| {
            each(h, i);
            let t = Instant::now();
            h.step();
            let layout = t.elapsed().as_secs_f64() * 1e3;
            ui_ms.push(layout);
            // Tessellation alone (the render below tessellates the same shapes again).
            let t1 = Instant::now();
            let prims = h.ctx.tessellate(h.output().shapes.clone(), h.ctx.pixels_per_point());
            tess_ms.push(t1.elapsed().as_secs_f64() * 1e3);
            vertices = prims
                .iter()
                .map(|p| match &p.primitive {
                    egui::epaint::Primitive::Mesh(m) => m.vertices.len(),
                    _ => 0,
                })
                .sum::<usize>();
            let t = Instant::now();
            // A frame (layout + tessellation + render + read back) that the software renderer cannot finish
            // within kittest's poll timeout counts as infinitely slow rather than aborting the benchmark.
            match h.render() {
                Ok(_) => layout + t.elapsed().as_secs_f64() * 1e3,
                Err(e) => {
                    eprintln!("frame {i}: render failed: {e}");
                    f64::INFINITY
                }
            }
        })
        .collect();
    ui_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    tess_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!(
        "  layout median {:.1} ms, tessellation median {:.1} ms ({vertices} vertices)",
        ui_ms[ui_ms.len() / 2],
        tess_ms[tess_ms.len() / 2]
    );
    ms
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // The studio opens at 1440×900 (studio::run); `--size 1600x1000` gives the figures of earlier notes.
    let size: Vec<f32> = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split('x').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![1440.0, 900.0]);
    let (width, height) = (size.first().copied().unwrap_or(1440.0), size.get(1).copied().unwrap_or(900.0));
    let cells: u32 = args
        .iter()
        .position(|a| a == "--supercell")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    geode::ml::init_threads(1);
    // The floor: an almost empty window through the same render path (kittest's render + read back).
    let mut empty = Harness::builder().with_size(egui::vec2(width, height)).wgpu().build_ui(|ui| {
        ui.label("empty");
    });
    empty.run_steps(3);
    let floor: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            empty.step();
            empty.render().map(|_| t.elapsed().as_secs_f64() * 1e3).unwrap_or(f64::INFINITY)
        })
        .collect();
    drop(empty);
    let dir = std::env::temp_dir().join(format!("geode-bench-studio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = StudioOptions {
        project: Some(dir.join("p.geode")),
        dialogs: Dialogs::Fixed(dir.clone()),
        persist: false,
        threads: 0,
        files: Vec::new(),
    };
    let mut h =
        Harness::builder().with_size(egui::vec2(width, height)).wgpu().build_eframe(move |cc| StudioApp::new(cc, opts));
    h.run_steps(5);
    // A 28-atom crystal like the bundled LiFePO4 example.
    let pick = h.state().dataset.entries.iter().position(|e| e.structure.n_sites() == 28).unwrap_or(0) as u32;
    h.state_mut().select(Item::Dataset(pick));
    h.run_steps(10);
    // Orbit the camera a little every frame so the viewer redraws.
    let orbit = |h: &mut Harness<'static, StudioApp>, _i: usize| h.state_mut().viewer.camera.orbit(2.0, 0.0);
    let still = |_h: &mut Harness<'static, StudioApp>, _i: usize| {};
    let idle = frames(&mut h, n, orbit);
    let redraws = h.state().plot_scatter.raster.redraws();
    let idle_still = frames(&mut h, n, still);
    eprintln!("  plot images drawn during {n} still frames: {}", h.state().plot_scatter.raster.redraws() - redraws);
    // The same without the bottom dock (the 20,988-point property plot), to show where the time goes.
    h.state_mut().state.show_dock = false;
    h.run_steps(2);
    let no_dock = frames(&mut h, n, still);
    h.state_mut().state.show_dock = true;
    h.run_steps(2);
    // Where the rest goes: one panel hidden at a time.
    let mut breakdown = serde_json::Map::new();
    for part in ["explorer", "inspector", "plot tab (runs tab instead)", "viewer (nothing selected)"] {
        let set = |h: &mut Harness<'static, StudioApp>, on: bool| {
            let st = &mut h.state_mut().state;
            match part {
                "explorer" => st.show_explorer = on,
                "inspector" => st.show_inspector = on,
                "plot tab (runs tab instead)" => {
                    st.dock_tab =
                        if on { geode::studio::state::DockTab::Plots } else { geode::studio::state::DockTab::Runs }
                }
                _ => {}
            }
        };
        let selected = h.state().selection.clone();
        set(&mut h, false);
        if part.starts_with("viewer") {
            h.state_mut().selection = None;
        }
        h.run_steps(3);
        breakdown.insert(format!("without {part}"), stats(frames(&mut h, n, still)));
        set(&mut h, true);
        h.state_mut().selection = selected;
        h.run_steps(3);
    }
    h.state_mut().start_run(geode::engine::RunSpec::Analyze(Default::default()), 1);
    h.run_steps(5);
    let busy = frames(&mut h, n, orbit);
    let busy_still = frames(&mut h, n, still);
    let running = h.state().runs.iter().any(|r| r.status == "running");
    // A supercell of the dataset's NaCl cell (`--supercell N`, default 10; the toolbar allows up to 20).
    let nacl = h.state().dataset.entries.iter().position(|e| e.formula == "NaCl");
    let big = nacl.map(|i| {
        h.state_mut().select(Item::Dataset(i as u32));
        h.run_steps(5);
        let v = &mut h.state_mut().viewer;
        v.settings.scene.supercell = [cells; 3];
        v.rebuild();
        v.reset_camera();
        h.run_steps(3);
        let atoms = h.state().viewer.scene().atoms.len();
        (atoms, frames(&mut h, n.min(30), orbit))
    });
    println!(
        "{}",
        serde_json::json!({
            "adapter": std::env::var("WGPU_ADAPTER_NAME").unwrap_or_else(|_| "default (lavapipe on machines without a GPU)".into()), "window": [width, height], "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "empty_window": stats(floor),
            "default_view_orbiting": stats(idle),
            "default_view_still": stats(idle_still),
            "default_view_still_without_plot_dock": stats(no_dock),
            "default_view_still_breakdown": breakdown,
            "default_view_with_analyze_run": {"run_still_running_at_end": running, "orbiting": stats(busy), "still": stats(busy_still)},
            "nacl_supercell": big.map(|(atoms, ms)| serde_json::json!({"atoms": atoms, "frames": stats(ms)})),
        })
    );
}
