//! Renders the studio offscreen (egui_kittest + wgpu, lavapipe without a GPU) after running a small
//! screening funnel from the Screening tab, and saves the window as a PNG: the picture in
//! `docs/studio-screening.png`.
//!
//! `cargo run --release --example studio_screenshot -- docs/studio-screening.png [SYSTEM]` (with a system such
//! as `Ca-Ti-O`, the Hull tab of that system: `docs/studio-hull.png`; with `relax`, a CHGNet relaxation of a
//! rattled perovskite instead, its trajectory in the Runs tab and a middle frame in the viewer:
//! `docs/studio-relax.png`; with `latent`, the Latent map after a generate run towards a band-gap window:
//! `docs/studio-latent.png`; with `latent-tsne`, the same on the t-SNE map: `docs/studio-latent-tsne.png`; with `evolve`, the Evolution tab after a genetic search for SrTiO3 with CHGNet,
//! the best individual open in the viewer: `docs/studio-evolution.png`)

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use geode::studio::state::{Column, DockTab};
use geode::studio::{Dialogs, Item, StudioApp, StudioOptions};

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "studio-screening.png".into());
    geode::ml::init_threads(1);
    let dir = std::env::temp_dir().join(format!("geode-screenshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = StudioOptions {
        project: Some(dir.join("p.geode")),
        dialogs: Dialogs::Fixed(dir.clone()),
        persist: false,
        threads: 0,
        files: Vec::new(),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, opts));
    h.run_steps(3);
    let special = match std::env::args().nth(2).as_deref() {
        Some("latent") => Some(latent_view as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        Some("latent-tsne") => Some(latent_tsne_view as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        Some("evolve") => Some(evolve_view as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        Some("relax") => Some(relax_view as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        Some("overview") => Some(overview as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        Some("models") => Some(models_view as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        Some("predicted") => Some(predicted_view as fn(&mut Harness<'static, StudioApp>, &std::path::Path)),
        _ => None,
    };
    if let Some(view) = special {
        view(&mut h, &dir);
        save(&mut h, &out);
        return;
    }
    h.state_mut().state.dock_tab = DockTab::Screening;
    h.run_steps(2);
    h.get_by_label("Launch screening").click();
    wait_until(&mut h, 600, "the screen run did not finish", |h| {
        h.state().runs.iter().any(|r| r.kind == "screen" && r.status == "finished")
    });
    h.run_steps(5);
    // Open the best candidate of the Pareto front in the viewer.
    if let Some(p) = h.state().screening.points.iter().find(|p| p.4 == 0.0).cloned() {
        h.state_mut().select(Item::Candidate(p.0));
    }
    h.run_steps(10);
    // `-- OUT.png Li-Fe-O`: show the Hull tab of that system instead, with the candidates overlaid.
    if let Some(system) = std::env::args().nth(2) {
        h.state_mut().state.explorer_tab = geode::studio::state::ExplorerTab::Candidates;
        reload_candidates(&mut h);
        h.state_mut().state.dock_tab = DockTab::Hull;
        h.state_mut().hull_system = system;
        h.run_steps(2);
        h.get_by_label("Show hull").click();
        // The complete OQMD hull is built off the UI thread on first use.
        let t0 = Instant::now();
        while h.state().hull_pending && t0.elapsed() < Duration::from_secs(120) {
            h.step();
            std::thread::sleep(Duration::from_millis(50));
        }
        h.run_steps(5);
    }
    save(&mut h, &out);
}

/// Re-read the project's candidates and wait for the rows (the query runs off the UI thread).
fn reload_candidates(h: &mut Harness<'static, StudioApp>) {
    h.state_mut().candidates_dirty = true;
    h.step();
    let t0 = Instant::now();
    while h.state().candidates_loading() && t0.elapsed() < Duration::from_secs(60) {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
}

/// Render and write the PNG. The studio's panels have no fill (the window is cleared to the panel
/// colour, which kittest's renderer does not do), so the frame is laid over that colour here.
fn save(h: &mut Harness<'static, StudioApp>, out: &str) {
    let mut img = h.render().expect("render");
    let bg = h.state().background;
    for p in img.pixels_mut() {
        let keep = 1.0 - p[3] as f32 / 255.0;
        for (c, b) in p.0.iter_mut().zip([bg.r(), bg.g(), bg.b(), 255]) {
            *c = (*c as f32 + b as f32 * keep).round().min(255.0) as u8;
        }
    }
    img.save(out).expect("write PNG");
    eprintln!("wrote {out}");
}

/// The Latent map tab after a `generate` run towards band gaps of 1.5–2.0 eV launched from its form; one
/// generated crystal is open in the viewer.
fn latent_view(h: &mut Harness<'static, StudioApp>, _dir: &std::path::Path) {
    h.state_mut().state.dock_tab = DockTab::Latent;
    let t0 = Instant::now();
    while h.state().latent.map.is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "the latent map was not computed: {:?}",
            h.state().latent.error
        );
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    h.state_mut().latent.n = 24;
    h.run_steps(2);
    h.get_by_label("Generate").click_accesskit();
    wait_until(h, 600, "the generate run did not finish", |h| {
        h.state().runs.iter().any(|r| r.kind == "generate" && r.status == "finished")
    });
    h.state_mut().state.explorer_tab = geode::studio::state::ExplorerTab::Candidates;
    reload_candidates(h);
    if let Some(id) = h.state().candidates.iter().find(|c| c.stage == "generated").map(|c| c.id) {
        h.state_mut().select(Item::Candidate(id));
    }
    h.state_mut().state.dock_tab = DockTab::Latent;
    // An interpolation path between two dataset crystals, drawn on the map.
    let ds = geode::data::Dataset::embedded();
    let id_of = |f: &str| ds.entries.iter().find(|e| e.formula == f).map(|e| e.id);
    if let (Some(a), Some(b)) = (id_of("NaCl"), id_of("SrTiO3")) {
        h.state_mut().latent.path_start = Some(a);
        h.state_mut().select(Item::Dataset(b));
        h.state_mut().latent_path_to_selected();
        wait_until(h, 600, "the path run did not finish", |h| {
            h.state().runs.iter().filter(|r| r.kind == "generate" && r.status == "finished").count() >= 2
        });
        h.state_mut().candidates_dirty = true;
    }
    h.run_steps(10);
}

/// As [`latent_view`], on the t-SNE map (chosen in the "map" box before the run).
fn latent_tsne_view(h: &mut Harness<'static, StudioApp>, dir: &std::path::Path) {
    h.state_mut().latent.method = geode::ml::generative::projection::MapMethod::Tsne;
    latent_view(h, dir);
    let t0 = Instant::now();
    while h.state().latent.tsne.is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "the t-SNE map was not computed: {:?}",
            h.state().latent.tsne_error
        );
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    h.run_steps(10);
}

/// The studio as it opens, with a 28-atom crystal (LiFePO4-sized) selected: explorer, viewer,
/// inspector and the property plot of the whole dataset.
fn overview(h: &mut Harness<'static, StudioApp>, _dir: &std::path::Path) {
    let pick = h
        .state()
        .dataset
        .entries
        .iter()
        .find(|e| e.formula == "LiFePO4")
        .or_else(|| h.state().dataset.entries.iter().find(|e| e.structure.n_sites() == 28))
        .map(|e| e.id)
        .unwrap_or(0);
    h.state_mut().select(Item::Dataset(pick));
    h.run_steps(10);
}

/// The Models tab with the "Train on your data" form open and the shipped refractive-index and expt-gap
/// models added as property models; the inspector shows their predictions for a dataset crystal
/// (`docs/studio-models.png`).
fn models_view(h: &mut Harness<'static, StudioApp>, _dir: &std::path::Path) {
    h.state_mut().state.dock_tab = DockTab::Models;
    h.state_mut().state.property_models = vec!["refractive-index".into(), "expt-gap".into()];
    let pick = h.state().dataset.entries.iter().find(|e| e.formula == "GaAs").map(|e| e.id).unwrap_or(0);
    h.state_mut().select(Item::Dataset(pick));
    h.run_steps(3);
    h.get_by_label("Train on your data…").click();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
        let key = Item::Dataset(pick).key();
        let done = h.state().predictions.get(&key).is_some_and(|m| m.len() >= 3);
        if done {
            break;
        }
    }
    h.run_steps(10);
}

/// A relax run on a rattled, expanded 2×2×2 SrTiO3 with a frame every 4 steps; the trajectory view shows its
/// energy and fmax and the viewer a frame from the middle of the relaxation.
fn relax_view(h: &mut Harness<'static, StudioApp>, dir: &std::path::Path) {
    let s = geode::data::prototypes::find("E2_1").first().expect("the perovskite prototype").structure.clone();
    let el = |x: &str| geode::crystal::Element::from_symbol(x).unwrap();
    let map = s.species().iter().copied().collect::<std::collections::BTreeSet<_>>();
    let sub: std::collections::BTreeMap<_, _> = map
        .iter()
        .map(|&e| {
            (
                e,
                match e.symbol() {
                    "Ca" => el("Sr"),
                    other => el(other),
                },
            )
        })
        .collect();
    let mut s = s.substituted(&sub).repeat([2, 2, 2]).unwrap().scaled_to_volume(8.0 * 3.95f64.powi(3) * 1.06).unwrap();
    for (i, f) in s.frac_coords_mut().iter_mut().enumerate() {
        let t = i as f64;
        *f += nalgebra::Vector3::new((t * 1.7).sin(), (t * 2.3).cos(), (t * 0.9).sin()) * 0.012;
    }
    let input = dir.join("SrTiO3-rattled.cif");
    h.state_mut().state.show_explorer = false;
    geode::io::write_structures(&input, &[s], None).unwrap();
    h.state_mut().start_run(
        geode::engine::RunSpec::Relax(geode::engine::jobs::relax::RelaxParams {
            structures: vec![input.to_str().unwrap().to_string()],
            frame_every: 4,
            fmax: 0.02,
            ..Default::default()
        }),
        1,
    );
    wait_until(h, 600, "the relax run did not finish", |h| {
        h.state().runs.iter().any(|r| r.kind == "relax" && r.status == "finished")
    });
    h.run_steps(5);
    h.get_by_label("Play").click();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1700) {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(pause) = h.query_by_label("Pause") {
        pause.click();
    }
    h.run_steps(5);
}

/// The Evolution tab after a genetic search for SrTiO3 (CHGNet, 1–2 formula units, 48 structures)
/// launched from its form; the best individual is open in the viewer.
fn evolve_view(h: &mut Harness<'static, StudioApp>, _dir: &std::path::Path) {
    {
        let app = h.state_mut();
        app.state.dock_tab = DockTab::Evolution;
        let f = &mut app.state.evolve;
        f.composition = "SrTiO3".into();
        f.min_units = 1;
        f.max_units = 2;
        f.population = 8;
        f.budget = 48;
    }
    h.run_steps(2);
    h.get_by_label("Start search").click_accesskit();
    wait_until(h, 900, "the evolve run did not finish", |h| {
        h.state().runs.iter().any(|r| r.kind == "evolve" && (r.status == "finished" || r.status == "failed"))
    });
    h.state_mut().state.dock_tab = DockTab::Evolution;
    h.run_steps(5);
    if let Some((best, _)) = h.state().evolution.family.first().cloned() {
        h.state_mut().select(Item::Candidate(best));
    }
    h.state_mut().state.dock_tab = DockTab::Evolution;
    h.run_steps(10);
}

/// The property plot with a user model's property on an axis: the shipped refractive-index model as
/// "Also predict", its predictions for every dataset crystal against the band gap, coloured by density;
/// the explorer sorted by the predicted index (highest first).
fn predicted_view(h: &mut Harness<'static, StudioApp>, _dir: &std::path::Path) {
    h.state_mut().state.property_models = vec!["refractive-index".into()];
    wait_until(h, 300, "no dataset predictions", |h| !h.state().dataset_predicted.values.is_empty());
    let n = *h.state().dataset_predicted.values.keys().next().expect("a predicted property");
    {
        let s = &mut h.state_mut().state;
        s.dock_tab = DockTab::Plots;
        s.plot_x = Column::Predicted(n);
        s.plot_y = Column::BandGap;
        s.plot_color = Column::Density;
        s.sort = (Column::Predicted(n), true);
    }
    h.run_steps(10);
}

/// Step the studio until `done` holds, failing with `what` after `secs` seconds.
fn wait_until(
    h: &mut Harness<'static, StudioApp>,
    secs: u64,
    what: &str,
    done: impl Fn(&Harness<'static, StudioApp>) -> bool,
) {
    let t0 = Instant::now();
    while !done(h) {
        assert!(t0.elapsed() < Duration::from_secs(secs), "{what}");
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
}
