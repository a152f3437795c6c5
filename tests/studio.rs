//! The studio driven as a user drives it (egui_kittest, rendering through wgpu): search the dataset,
//! select a crystal and read its formula and space group in the inspector, filter, export a CIF and
//! read it back, drop a file on the window, and start a run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use geode::studio::{Dialogs, StudioApp, StudioOptions};

/// A file dropped on the window.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(h: &mut Harness<'static, StudioApp>, path: PathBuf) {
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(path)));
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("geode-studio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn harness(dir: &std::path::Path) -> Harness<'static, StudioApp> {
    let opts = StudioOptions {
        project: Some(dir.join("p.geode")),
        dialogs: Dialogs::Fixed(dir.to_path_buf()),
        persist: false,
        threads: 1,
        files: Vec::new(),
    };
    Harness::builder().with_size(egui::vec2(1440.0, 900.0)).wgpu().build_eframe(move |cc| StudioApp::new(cc, opts))
}

/// Step frames until `done` holds (the worker and the engine answer asynchronously).
fn step_until(
    h: &mut Harness<'static, StudioApp>,
    what: &str,
    mut done: impl FnMut(&mut Harness<'static, StudioApp>) -> bool,
) {
    let t0 = Instant::now();
    while !done(h) {
        assert!(t0.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ask the candidates tab to re-read the project and step until the rows have arrived (the query runs
/// off the UI thread).
fn reload_candidates(h: &mut Harness<'static, StudioApp>) {
    h.state_mut().candidates_dirty = true;
    h.step();
    step_until(h, "the candidate rows", |h| !h.state().candidates_loading());
    h.run_steps(2);
}

#[test]
fn search_select_inspect_export_and_open() {
    geode::ml::init_threads(1);
    let dir = tmp("flow");
    let mut h = harness(&dir);
    h.run_steps(3);
    let total = h.state().filtered.len();
    assert_eq!(total, 20988);

    // Search the dataset by formula.
    h.get_by_label("Search").focus();
    h.run_steps(1);
    h.get_by_label("Search").type_text("NaCl");
    h.run_steps(3);
    assert_eq!(h.state().state.search, "NaCl");
    let rows = h.state().filtered.clone();
    assert!(!rows.is_empty() && rows.len() < 20);
    assert!(rows.iter().all(|&i| h.state().dataset.entries[i].formula == "NaCl"));
    h.get_by_label(&format!("{} of 20988 crystals", rows.len()));

    // Click the first NaCl row: the inspector shows its formula and space group.
    h.get_all_by_label("NaCl").next().expect("a NaCl row").click();
    h.run_steps(3);
    assert!(h.state().selection.is_some());
    h.get_by_label("Fm-3m (225)");
    assert_eq!(h.state().viewer.structure().unwrap().reduced_formula(), "NaCl");

    // A range filter narrows the list; an element search combines with it.
    h.state_mut().state.search = "O".into();
    h.run_steps(2);
    h.get_by_label("Filters (0)").click();
    h.run_steps(2);
    h.get_by_label("Add range filter").click();
    h.run_steps(3);
    let filtered = h.state().filtered.clone();
    assert!(!filtered.is_empty());
    for &i in &filtered {
        let e = &h.state().dataset.entries[i];
        assert!(
            e.structure.composition().elements().iter().any(|x| x.symbol() == "O") && e.band_gap.unwrap() >= 0.5,
            "{} {:?}",
            e.formula,
            e.band_gap
        );
    }

    // Export the selected crystal as CIF (the session's dialogs write into `dir`) and read it back.
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label_contains("Export selected crystal").hover();
    h.run_steps(2);
    h.get_by_label("CIF…  Ctrl+E").click();
    let cif = dir.join("NaCl.cif");
    step_until(&mut h, "the exported CIF", |_| {
        cif.exists() && std::fs::metadata(&cif).map(|m| m.len() > 100).unwrap_or(false)
    });
    let back = geode::io::read_structures(&cif).unwrap();
    assert_eq!(back[0].reduced_formula(), "NaCl");
    assert_eq!(back[0].symmetry(0.1).unwrap().number, 225);

    // Drop a file on the window: it opens, is selected, and the inspector describes it.
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/examples/LiFePO4.cif");
    drop_file(&mut h, example);
    step_until(&mut h, "the dropped file", |h| h.state().files.len() == 1);
    h.run_steps(3);
    h.get_by_label("Pnma (62)");
    assert_eq!(h.state().viewer.structure().unwrap().reduced_formula(), "LiFePO4");

    // Bad input is reported, not fatal.
    let junk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/assets/malformed/junk.cif");
    drop_file(&mut h, junk);
    step_until(&mut h, "the error toast", |h| h.state().toasts.iter().any(|t| t.error && t.text.contains("junk.cif")));
    assert_eq!(h.state().files.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn runs_start_and_finish_from_the_studio() {
    geode::ml::init_threads(1);
    let dir = tmp("runs");
    let mut h = harness(&dir);
    h.run_steps(2);
    h.state_mut().start_run(
        geode::engine::RunSpec::Analyze(geode::engine::jobs::analyze::AnalyzeParams {
            sample: Some(20),
            chunk_size: 5,
            ..Default::default()
        }),
        3,
    );
    step_until(&mut h, "the run to finish", |h| h.state().runs.iter().any(|r| r.status == "finished"));
    h.state_mut().state.explorer_tab = geode::studio::state::ExplorerTab::Candidates;
    reload_candidates(&mut h);
    assert_eq!(h.state().candidates.len(), 20);
    h.get_by_label("Candidates (20)");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn screening_tab_launches_a_funnel_and_plots_its_pareto_front() {
    geode::ml::init_threads(1);
    let dir = tmp("screening");
    let mut h = harness(&dir);
    h.run_steps(2);
    h.get_by_label("Screening");
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Screening;
    h.run_steps(2);
    h.state_mut().state.screen.templates = "MgO".into();
    h.state_mut().state.screen.constraints = "band_gap > 1.0".into();
    h.state_mut().state.screen.objectives = "min e_above_hull\nmax band_gap".into();
    h.state_mut().state.screen.min_probability = 0.1;
    h.run_steps(1);
    // Rock salt from the AFLOW prototypes, picked from the list.
    h.state_mut().state.screen.prototype_filter = "B1".into();
    h.run_steps(2);
    h.get_by_label("+ B1 Halite  NaCl  (cF8, 225)").click();
    h.run_steps(2);
    h.get_by_label("[added] B1 Halite  NaCl  (cF8, 225)");
    assert_eq!(h.state().state.screen.templates, "MgO, aflow:AB_cF8_225_a_b");
    h.get_by_label("Launch screening").click();
    step_until(&mut h, "the screen run to finish", |h| {
        h.state().runs.iter().any(|r| r.kind == "screen" && r.status == "finished")
    });
    // The tab re-reads the run off the UI thread.
    step_until(&mut h, "the screening view of the finished run", |h| {
        h.state().screening.status == "finished" && !h.state().run_views_loading()
    });
    h.run_steps(3);
    let run = h.state().runs.iter().find(|r| r.kind == "screen").unwrap().clone();
    let passed = run.result.as_ref().unwrap()["passed"].as_u64().unwrap() as usize;
    assert!(passed > 0, "{:?}", run.result);
    // The panel shows the funnel and the survivors; the Pareto front is the result's.
    let front = run.result.as_ref().unwrap()["pareto_front"].as_u64().unwrap();
    h.get_by_label(&format!("Pareto front: {front} of {passed} passed (bright: non-dominated)"));
    h.get_by_label("structure model");
    assert_eq!(h.state().screening.points.len(), passed);
    assert_eq!(h.state().state.dock_tab, geode::studio::state::DockTab::Screening);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hull_tab_draws_the_dataset_hull_of_a_system() {
    let dir = tmp("hull");
    let mut h = harness(&dir);
    h.run_steps(2);
    h.get_by_label("Hull");
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Hull;
    h.state_mut().hull_system = "Li-O".into();
    h.run_steps(2);
    h.get_by_label("Show hull").click();
    h.run_steps(3);
    let v = &h.state().hull;
    assert!(v.error.is_none(), "{:?}", v.error);
    let n_stable = v.points.iter().filter(|p| p.stable).count();
    assert!(n_stable >= 3 && v.lines.len() == n_stable - 1);
    let label = format!("Li-O: {} phases, {n_stable} stable, 0 candidates (energies in eV/atom)", v.points.len());
    h.get_by_label(&label);
    // A selected ternary offers its own system.
    let id = h.state().dataset.with_formula("LiFeO2")[0].id;
    h.state_mut().select(geode::studio::app::Item::Dataset(id));
    h.run_steps(2);
    h.get_by_label("Use Fe-Li-O").click_accesskit();
    h.run_steps(3);
    assert_eq!(h.state().hull_system, "Fe-Li-O");
    assert!(h.state().hull.points.iter().any(|p| p.formula == "LiFeO2"), "the selected crystal's system is drawn");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn relax_runs_show_their_trajectory_and_play_it_in_the_viewer() {
    geode::ml::init_threads(1);
    let dir = tmp("relax");
    // A rattled rock salt, relaxed with CHGNet; a frame every 2 steps.
    let s = geode::data::Dataset::embedded()
        .lookup("NaCl")
        .into_iter()
        .map(|e| e.structure.clone())
        .min_by_key(|s| s.n_sites())
        .expect("NaCl in the dataset");
    let mut s = s.repeat([2, 1, 1]).unwrap();
    s.frac_coords_mut()[0] += nalgebra::Vector3::new(0.03, -0.02, 0.01);
    let input = dir.join("nacl.cif");
    geode::io::write_structures(&input, &[s], None).unwrap();
    let mut h = harness(&dir);
    h.run_steps(2);
    h.state_mut().start_run(
        geode::engine::RunSpec::Relax(geode::engine::jobs::relax::RelaxParams {
            structures: vec![input.to_str().unwrap().to_string()],
            frame_every: 2,
            fmax: 0.02,
            ..Default::default()
        }),
        1,
    );
    step_until(&mut h, "the relaxation to finish", |h| h.state().runs.iter().any(|r| r.status == "finished"));
    h.run_steps(3);
    h.get_by_label("Play").click();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(90) && !h.state().viewer.title.contains("relaxed") {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    let title = h.state().viewer.title.clone();
    assert!(
        title.starts_with("NaCl") && title.contains("relaxed ("),
        "the player should end on the relaxed structure: {title:?}"
    );
    // At the last frame the player stops by itself.
    step_until(&mut h, "the player to stop", |h| h.query_by_label("Play").is_some());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_selected_crystal_is_relaxed_from_the_runs_menu() {
    geode::ml::init_threads(1);
    let dir = tmp("relax-menu");
    let mut h = harness(&dir);
    h.run_steps(2);
    // A small dataset crystal: select it, then Runs > Relax the selected crystal with CHGNet.
    let id = geode::data::Dataset::embedded()
        .entries
        .iter()
        .find(|e| e.formula == "NaCl" && e.structure.n_sites() == 2)
        .map(|e| e.id)
        .expect("a 2-atom NaCl");
    h.state_mut().select(geode::studio::Item::Dataset(id));
    h.run_steps(2);
    // The Runs menu (the Runs dock tab has the same label): open whichever shows the menu item.
    let n = h.get_all_by_label("Runs").count();
    for k in 0..n {
        h.get_all_by_label("Runs").nth(k).unwrap().click();
        h.run_steps(2);
        if h.query_by_label("Relax the selected crystal with CHGNet").is_some() {
            break;
        }
    }
    h.get_by_label("Relax the selected crystal with CHGNet").click();
    h.run_steps(1);
    step_until(&mut h, "the relaxation to finish", |h| {
        h.state().runs.iter().any(|r| r.kind == "relax" && r.status == "finished")
    });
    let run = h.state().runs.iter().find(|r| r.kind == "relax").unwrap().clone();
    assert_eq!(run.params["structures"][0], format!("oqmd-icsd-{id}"));
    assert!(run.result.as_ref().is_some_and(|r| r["converged"] == 1), "{:?}", run.result);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn latent_map_shows_the_dataset_and_generates_towards_a_band_gap_target() {
    let dir = tmp("latent");
    let mut h = harness(&dir);
    h.run_steps(2);
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Latent;
    step_until(&mut h, "the latent map", |h| h.state().latent.map.is_some() || h.state().latent.error.is_some());
    assert_eq!(h.state().latent.error, None);
    let n = h.state().dataset.entries.len();
    assert_eq!(h.state().latent.map.as_ref().unwrap().points.len(), n);
    h.state_mut().latent.n = 6;
    h.run_steps(2);
    h.get_by_label("Generate").click_accesskit();
    h.run_steps(2);
    let t0 = Instant::now();
    while !h.state().runs.iter().any(|r| r.kind == "generate" && (r.status == "finished" || r.status == "failed")) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no generate run finished: runs {:?}, toasts {:?}",
            h.state().runs.iter().map(|r| (r.kind.clone(), r.status.clone())).collect::<Vec<_>>(),
            h.state().progress
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = h.state().runs.iter().find(|r| r.kind == "generate").unwrap().clone();
    assert_eq!(run.status, "finished", "{run:?}");
    assert_eq!(
        run.params["settings"]["sampling"]["guidance"],
        serde_json::json!(geode::ml::generative::sample::DEFAULT_GUIDANCE),
        "guided formulas are on by default"
    );
    assert_eq!(
        run.params["settings"]["oversample"],
        serde_json::json!(geode::search::generate::DEFAULT_OVERSAMPLE),
        "target runs keep the best of the default number of decodings"
    );
    reload_candidates(&mut h);
    let with_codes = h.state().candidates.iter().filter(|c| c.properties.get("latent").is_some()).count();
    assert!(with_codes >= 5, "{with_codes} generated candidates carry latent codes");
    assert!(h.state().candidates.iter().all(|c| c.properties.get("band_gap").is_some()));

    // The gallery shows the newest generated crystal; clicking it opens it.
    let newest = h
        .state()
        .candidates
        .iter()
        .filter(|c| c.source.starts_with("crystal-vae"))
        .max_by_key(|c| c.id)
        .unwrap()
        .clone();
    h.get_all_by(|n| n.label().is_some_and(|l| l.starts_with(&format!("{}\n", newest.formula))))
        .next()
        .expect("a gallery tile for the newest crystal")
        .click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().selection, Some(geode::studio::app::Item::Candidate(newest.id)));

    // Drag the target handle up by 40 points: the window moves up, and on release a new run starts.
    let first_run = h.state().latent.target_run;
    let (lo0, hi0) = (h.state().latent.gap_lo, h.state().latent.gap_hi);
    h.run_steps(3);
    let at = h.state().latent.handle_px.expect("the handle was drawn");
    h.hover_at(at);
    h.run_steps(2);
    assert_eq!(h.state().latent.handle_px, Some(at), "the layout is settled");
    h.drag_at(at);
    h.run_steps(1);
    for k in 1..=4 {
        h.hover_at(at - egui::vec2(0.0, 10.0 * k as f32));
        h.run_steps(1);
    }
    h.drop_at(at - egui::vec2(0.0, 40.0));
    h.run_steps(2);
    let (lo1, hi1) = (h.state().latent.gap_lo, h.state().latent.gap_hi);
    assert!(lo1 > lo0 + 0.1 && (hi1 - lo1 - (hi0 - lo0)).abs() < 1e-9, "window {lo0}–{hi0} → {lo1}–{hi1}");
    let retarget = h.state().latent.target_run;
    assert!(
        retarget.is_some() && retarget != first_run,
        "a new run towards the moved target: {first_run:?} → {retarget:?}"
    );
    let runs = geode::engine::store::Store::open(&dir.join("p.geode")).unwrap().runs().unwrap();
    let new = runs.iter().find(|r| Some(r.id) == retarget).expect("the retargeted run is stored");
    let target =
        geode::search::generate::PropertyTarget::parse(new.params["settings"]["targets"][0].as_str().unwrap()).unwrap();
    assert_eq!(target.target, geode::ml::Target::BandGap);
    assert!((target.lo - lo1).abs() <= 0.005 && (target.hi - hi1).abs() <= 0.005, "{target:?} vs [{lo1}, {hi1}]");
    assert_eq!(h.state().state.dock_tab, geode::studio::state::DockTab::Latent, "retargeting stays on the map");

    // A Shift+drag region on the map filters the explorer to the crystals inside it.
    let all = h.state().filtered.len();
    let map = h.state().latent.map.clone().unwrap();
    let (xs, ys): (Vec<f64>, Vec<f64>) = map.points.iter().map(|p| (p[0], p[1])).unzip();
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mx, my) = (med(xs), med(ys));
    h.state_mut().latent.region = Some([f64::NEG_INFINITY, mx, f64::NEG_INFINITY, my]);
    h.run_steps(2);
    let inside = h.state().filtered.len();
    let expected = map.points.iter().filter(|p| p[0] <= mx && p[1] <= my).count();
    assert!(inside < all && inside == expected, "{inside} of {all} rows in the region, expected {expected}");

    // Choosing t-SNE in the "map" box starts fitting it in the background, clears the region drawn on
    // the PCA map, and keeps the PCA map on screen meanwhile with a caption that says so. (The fit itself,
    // 24 s for these codes in a release build, is far slower in this unoptimised test build; its result
    // is tested by `generate map` in tests/generative.rs and projection's unit tests.)
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "map").click_accesskit();
    h.run_steps(2);
    h.get_by_label("t-SNE").click_accesskit();
    h.run_steps(3);
    assert_eq!(h.state().latent.method, geode::ml::generative::projection::MapMethod::Tsne);
    assert_eq!(h.state().latent.region, None, "a PCA-map region means nothing on the t-SNE map");
    assert!(h.state().latent.tsne.is_none() && h.state().latent.tsne_error.is_none());
    assert!(
        h.query_by_label_contains(&format!("fitting t-SNE to {n} codes, PCA shown meanwhile")).is_some(),
        "the caption tells the user the t-SNE map is on its way"
    );
    let shown = h.state().latent_current_map().unwrap();
    assert_eq!(shown.projection.method(), geode::ml::generative::projection::MapMethod::Pca);
    assert_eq!(shown.codes.len(), n, "the PCA map keeps the codes the t-SNE map is fitted to");
    std::fs::remove_dir_all(&dir).ok();
}

/// Press the Evolution tab's Start search and step until `n` evolve runs have ended.
fn start_search_and_wait(h: &mut Harness<'static, StudioApp>, n: usize) {
    h.run_steps(2);
    h.get_by_label("Start search").click_accesskit();
    h.run_steps(2);
    let t0 = Instant::now();
    while h
        .state()
        .runs
        .iter()
        .filter(|r| r.kind == "evolve" && (r.status == "finished" || r.status == "failed"))
        .count()
        < n
    {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "evolve run {n} did not finish: {:?}",
            h.state().runs.iter().map(|r| (r.kind.clone(), r.status.clone(), r.error.clone())).collect::<Vec<_>>()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Step until the Evolution tab shows the finished run `id` (it re-reads runs off the UI thread).
fn wait_for_evolution_view(h: &mut Harness<'static, StudioApp>, id: i64) {
    h.run_steps(2);
    step_until(h, "the evolution view of the finished run", |h| {
        let s = h.state();
        s.evolution.run == Some(id) && s.evolution.status == "finished" && !s.run_views_loading()
    });
    h.run_steps(2);
}

#[test]
fn evolution_tab_runs_a_search_plots_it_and_shows_the_family_of_the_best() {
    let dir = tmp("evolve");
    let mut h = harness(&dir);
    h.run_steps(2);
    {
        let app = h.state_mut();
        app.state.dock_tab = geode::studio::state::DockTab::Evolution;
        let f = &mut app.state.evolve;
        f.composition = "Ar".into();
        f.max_units = 3;
        f.population = 4;
        f.budget = 12;
        f.potential = "lj:sigma=3.405,epsilon=0.0104,cutoff=8.5".into();
    }
    start_search_and_wait(&mut h, 1);
    let run = h.state().runs.iter().find(|r| r.kind == "evolve").unwrap().clone();
    assert_eq!(run.status, "finished", "{run:?}");
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Evolution;
    wait_for_evolution_view(&mut h, run.id);
    let v = &h.state().evolution;
    assert_eq!(v.run, Some(run.id));
    assert_eq!(v.points.len(), 12, "every individual is plotted");
    assert_eq!(v.best.len(), 3, "one best-fitness point per generation");
    assert!(!v.family.is_empty() && v.family[0].1.contains("Ar"), "{:?}", v.family);
    // Opening the best from the family tree selects it.
    let (best, label) = v.family[0].clone();
    h.get_by_label(&label).click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().selection, Some(geode::studio::app::Item::Candidate(best)));

    // A two-objective search in prototype space: the live Pareto front is drawn.
    {
        let app = h.state_mut();
        app.state.dock_tab = geode::studio::state::DockTab::Evolution;
        let f = &mut app.state.evolve;
        f.space = "prototype".into();
        f.elements = "Ca, Sr, Ba, Mg, Ti, Zr, Sn, O, S".into();
        f.templates = "SrTiO3".into();
        f.population = 6;
        f.budget = 18;
        f.objectives = "e_above_hull\nband_gap in [2, 3]".into();
    }
    start_search_and_wait(&mut h, 2);
    let run = h.state().runs.iter().rev().find(|r| r.kind == "evolve").unwrap().clone();
    assert_eq!(run.status, "finished", "{run:?}");
    h.state_mut().selected_run = Some(run.id);
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Evolution;
    wait_for_evolution_view(&mut h, run.id);
    let v = &h.state().evolution;
    assert_eq!((v.run, v.axes.0.as_str(), v.axes.1.as_str()), (Some(run.id), "e_above_hull", "band_gap"));
    assert!(!v.front.is_empty() && v.front.len() <= v.points.len(), "front {:?} of {}", v.front, v.points.len());
}

#[test]
fn property_plot_opens_the_crystal_under_a_click_and_shift_drag_boxes_filter_the_explorer() {
    use egui_plot::PlotPoint;
    use geode::studio::app::{Item, column_value};
    let dir = tmp("plot");
    let mut h = harness(&dir);
    h.run_steps(3);
    assert_eq!(h.state().state.dock_tab, geode::studio::state::DockTab::Plots);
    let t = h.state().plot_transform.expect("the property plot was drawn");
    let (xc, yc) = (h.state().state.plot_x, h.state().state.plot_y);
    let ds = h.state().dataset;
    let xy = |e: &geode::data::Entry| Some([column_value(e, xc)?, column_value(e, yc)?]);
    let screen: Vec<(u32, egui::Pos2)> = ds
        .entries
        .iter()
        .filter_map(|e| xy(e).map(|p| (e.id, t.position_from_point(&PlotPoint::new(p[0], p[1])))))
        .collect();
    assert!(screen.len() > 20000, "every crystal with both properties is plotted: {}", screen.len());

    // Click on the crystal with the widest band gap: the crystal nearest the click opens.
    let (top_id, at) = *screen.iter().min_by(|a, b| a.1.y.total_cmp(&b.1.y)).unwrap();
    assert!(t.frame().contains(at), "{at:?} inside the plot frame {:?}", t.frame());
    h.hover_at(at);
    h.run_steps(2);
    h.drag_at(at);
    h.run_steps(1);
    h.drop_at(at);
    h.run_steps(2);
    let nearest = screen.iter().min_by(|a, b| a.1.distance(at).total_cmp(&b.1.distance(at))).unwrap().0;
    assert_eq!(h.state().selection, Some(Item::Dataset(nearest)), "clicked at the crystal {top_id}");
    let formula = ds.get(nearest).unwrap().formula.clone();
    assert!(h.query_all_by_label(&formula).next().is_some(), "the inspector shows {formula}");

    // Shift+drag a box over the middle of the plot: the explorer keeps exactly the crystals inside it.
    // (Where the plot is now: opening a crystal may have changed the layout.)
    h.run_steps(3);
    let t = h.state().plot_transform.expect("the property plot was drawn");
    let all = h.state().filtered.len();
    let f = *t.frame();
    let (a, b) = (f.lerp_inside(egui::vec2(0.3, 0.3)), f.lerp_inside(egui::vec2(0.7, 0.8)));
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::SHIFT));
    h.hover_at(a);
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: a,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::SHIFT,
    });
    h.run_steps(1);
    for k in 1..=5 {
        h.hover_at(a + (b - a) * (k as f32 / 5.0));
        h.run_steps(1);
    }
    h.event(egui::Event::PointerButton {
        pos: b,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::SHIFT,
    });
    h.run_steps(1);
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    h.run_steps(2);
    let bx = h.state().plot_box.expect("a Shift+drag leaves a box");
    let t_end = h.state().plot_transform.expect("the property plot was drawn");
    assert_eq!((t_end.bounds(), t_end.frame()), (t.bounds(), t.frame()), "the plot did not move during the drag");
    let (pa, pb) = (t.value_from_position(a), t.value_from_position(b));
    let scale = (t.dvalue_dpos()[0].abs(), t.dvalue_dpos()[1].abs());
    // The box spans the drag (its start is where egui recognised the drag, a few points in).
    assert!(
        (bx[1] - pa.x.max(pb.x)).abs() < 1e-6 && (bx[2] - pa.y.min(pb.y)).abs() < 1e-6,
        "box {bx:?} ends at the drop {pb:?}"
    );
    assert!(
        (bx[0] - pa.x.min(pb.x)).abs() < 12.0 * scale.0 && (bx[3] - pa.y.max(pb.y)).abs() < 12.0 * scale.1,
        "box {bx:?} starts near the press {pa:?}"
    );
    let inside = ds
        .entries
        .iter()
        .filter(|e| xy(e).is_some_and(|p| p[0] >= bx[0] && p[0] <= bx[1] && p[1] >= bx[2] && p[1] <= bx[3]))
        .count();
    let kept = h.state().filtered.len();
    assert!(kept < all && kept == inside && inside > 0, "{kept} of {all} rows kept, {inside} crystals inside the box");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_dock_keeps_its_height_on_every_tab() {
    use geode::studio::state::DockTab;
    let dir = tmp("dock");
    let mut h = harness(&dir);
    h.run_steps(3);
    for tab in [
        DockTab::Plots,
        DockTab::Latent,
        DockTab::Runs,
        DockTab::Models,
        DockTab::Screening,
        DockTab::Hull,
        DockTab::Evolution,
    ] {
        h.state_mut().state.dock_tab = tab;
        h.run_steps(4);
        let before = h.state().dock_height;
        h.run_steps(10);
        let after = h.state().dock_height;
        assert!(
            before > 100.0 && (after - before).abs() < 0.5,
            "{tab:?}: the dock went from {before} to {after} points in 10 frames"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
