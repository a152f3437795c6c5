//! Studio frame-time benchmark: whole frames of the real app (egui layout + the wgpu viewer + egui's
//! renderer, read back) through egui_kittest's wgpu harness at 1600×1000, on whatever adapter the
//! machine has (lavapipe without a GPU). Scenes (camera orbiting every frame, or still, when the viewer
//! re-uses its last image): the default view (full 20,988-row explorer,
//! LiFePO4-sized crystal in the viewer, property plot of the whole dataset); the same while an
//! `analyze` run keeps the engine's pool busy; and an N×N×N NaCl supercell in the viewer.
//!
//! `cargo run --release --example bench_studio [-- --frames 60 --supercell 10]`

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

fn frames(h: &mut Harness<'static, StudioApp>, n: usize, mut each: impl FnMut(&mut Harness<'static, StudioApp>, usize)) -> Vec<f64> {
    (0..n)
        .map(|i| {
            each(h, i);
            let t = Instant::now();
            h.step();
            // A frame that the software renderer cannot finish within kittest's poll timeout counts as
            // infinitely slow rather than aborting the benchmark.
            match h.render() {
                Ok(_) => t.elapsed().as_secs_f64() * 1e3,
                Err(e) => {
                    eprintln!("frame {i}: render failed: {e}");
                    f64::INFINITY
                }
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.iter().position(|a| a == "--frames").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(60);
    let cells: u32 = args.iter().position(|a| a == "--supercell").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(10);
    geode::ml::init_threads(1);
    let dir = std::env::temp_dir().join(format!("geode-bench-studio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = StudioOptions { project: Some(dir.join("p.geode")), dialogs: Dialogs::Fixed(dir.clone()), persist: false, threads: 0, files: Vec::new() };
    let mut h = Harness::builder().with_size(egui::vec2(1600.0, 1000.0)).wgpu().build_eframe(move |cc| StudioApp::new(cc, opts));
    h.run_steps(5);
    // A 28-atom crystal like the bundled LiFePO4 example.
    let pick = h.state().dataset.entries.iter().position(|e| e.structure.n_sites() == 28).unwrap_or(0) as u32;
    h.state_mut().select(Item::Dataset(pick));
    h.run_steps(10);
    // Orbit the camera a little every frame so the viewer redraws.
    let orbit = |h: &mut Harness<'static, StudioApp>, _i: usize| h.state_mut().viewer.camera.orbit(2.0, 0.0);
    let still = |_h: &mut Harness<'static, StudioApp>, _i: usize| {};
    let idle = frames(&mut h, n, orbit);
    let idle_still = frames(&mut h, n, still);
    // The same without the bottom dock (the 20,988-point property plot), to show where the time goes.
    h.state_mut().state.show_dock = false;
    h.run_steps(2);
    let no_dock = frames(&mut h, n, still);
    h.state_mut().state.show_dock = true;
    h.run_steps(2);
    h.state_mut().start_run("analyze", serde_json::json!({}), 1);
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
            "adapter": std::env::var("WGPU_ADAPTER_NAME").unwrap_or_else(|_| "default (lavapipe on machines without a GPU)".into()), "window": [1600, 1000], "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "default_view_orbiting": stats(idle),
            "default_view_still": stats(idle_still),
            "default_view_still_without_plot_dock": stats(no_dock),
            "default_view_with_analyze_run": {"run_still_running_at_end": running, "orbiting": stats(busy), "still": stats(busy_still)},
            "nacl_supercell": big.map(|(atoms, ms)| serde_json::json!({"atoms": atoms, "frames": stats(ms)})),
        })
    );
}
