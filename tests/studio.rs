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

/// Steps the harness until the Hull tab has drawn its system (the complete hull is built off the UI thread).
fn wait_for_hull(h: &mut Harness<'static, StudioApp>) {
    let t0 = std::time::Instant::now();
    while h.state().hull_pending && t0.elapsed() < std::time::Duration::from_secs(300) {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    h.run_steps(3);
}

#[test]
fn hull_tab_draws_the_complete_hull_of_a_system_with_sources() {
    let dir = tmp("hull");
    let mut h = harness(&dir);
    h.run_steps(2);
    h.get_by_label("Hull");
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Hull;
    h.state_mut().hull_system = "Li-O".into();
    h.run_steps(2);
    h.get_by_label("Show hull").click();
    wait_for_hull(&mut h);
    let v = &h.state().hull;
    assert!(v.error.is_none(), "{:?}", v.error);
    let n_stable = v.points.iter().filter(|p| p.stable).count();
    assert!(n_stable >= 3 && v.lines.len() == n_stable - 1);
    assert!(v.points.iter().filter(|p| p.stable).all(|p| !p.source.is_empty()));
    let label = format!(
        "Li-O: {} phases, {n_stable} stable, 0 candidates (energies in eV/atom; complete OQMD references)",
        v.points.len()
    );
    h.get_by_label(&label);
    // The dataset-only hull is one click away, and has fewer phases.
    let complete = v.points.len();
    h.get_by_label("dataset only (≤ 20 atoms)").click();
    wait_for_hull(&mut h);
    assert!(h.state().hull.points.len() < complete);
    h.get_by_label("dataset only (≤ 20 atoms)").click();
    wait_for_hull(&mut h);
    // A selected ternary offers its own system.
    let id = h.state().dataset.with_formula("LiFeO2")[0].id;
    h.state_mut().select(geode::studio::app::Item::Dataset(id));
    h.run_steps(2);
    h.get_by_label("Use Fe-Li-O").click_accesskit();
    wait_for_hull(&mut h);
    assert_eq!(h.state().hull_system, "Fe-Li-O");
    assert!(h.state().hull.points.iter().any(|p| p.formula == "LiFeO2"), "the selected crystal's system is drawn");
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

#[test]
fn models_tab_trains_a_model_of_the_users_own_property() {
    geode::ml::init_threads(1);
    let dir = tmp("own");
    let mut h = harness(&dir);
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Models;
    h.run_steps(2);
    h.get_by_label("Train on your data…").click();
    h.run_steps(2);
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/own_data/crystals.extxyz");
    for (label, text) in [
        ("Labelled files", data.to_str().unwrap()),
        ("Target", "mass_density"),
        ("Unit", "g/cm³"),
        ("Split column", "split"),
    ] {
        h.get_by_label(label).focus();
        h.run_steps(1);
        h.get_by_label(label).type_text(text);
        h.run_steps(1);
    }
    h.get_by_label("skip them (each is logged in the run)").click();
    h.run_steps(1);
    // A composition model: predicting all 20,988 dataset crystals below then takes seconds, not a minute.
    h.get_by_label("composition (formulas)").click();
    h.run_steps(1);
    h.get_by_label("Train").click();
    step_until(&mut h, "the training run to end", |h| {
        h.state().runs.iter().any(|r| r.kind == "train" && (r.status == "finished" || r.status == "failed"))
    });
    let run = h.state().runs.iter().find(|r| r.kind == "train").unwrap().clone();
    assert_eq!(run.status, "finished", "{:?}", run.error);
    let card = geode::ml::checkpoint::card_from_file(&dir.join("mass_density.safetensors")).unwrap();
    assert_eq!((card.targets[0].name(), card.targets[0].unit()), ("mass_density", "g/cm³"));
    // "Also predict" with it (the project's trained models join the shipped ones in the list): every
    // dataset crystal gets its prediction (off the UI thread), which becomes an explorer column and a
    // property-plot axis.
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Models;
    step_until(&mut h, "the project's models to be listed", |h| !h.state().project_cards.is_empty());
    h.get_by_label("Also predict:").click_accesskit();
    h.run_steps(2);
    h.get_by_label_contains("(mass_density)").click_accesskit();
    h.run_steps(2);
    let target = card.targets[0];
    step_until(&mut h, "the dataset's predicted mass_density", |h| {
        h.state().dataset_predicted.values.contains_key(&target)
    });
    let n = h.state().dataset_predicted.values[&target].len();
    assert_eq!(n, geode::data::Dataset::embedded().len(), "every dataset crystal predicted");
    // Trained on 80 cells of a few elements, the model knows little of the dataset: crystals with elements it
    // never saw are marked outside its domain (the explorer shows them in parentheses, the plot leaves them out).
    let outside = &h.state().dataset_predicted.outside[&target];
    let unseen = geode::data::Dataset::embedded()
        .entries
        .iter()
        .filter(|e| e.structure.species().iter().any(|el| !card.training_elements.contains(&el.symbol().to_string())))
        .count();
    assert!(outside.len() >= unseen && unseen > 0, "{} outside, {unseen} with unseen elements", outside.len());
    // The predictions are the model's own (the same mean as `PropertyModel::predict`).
    let e = &geode::data::Dataset::embedded().entries[0];
    let m = geode::ml::shipped::open(dir.join("mass_density.safetensors").to_str().unwrap()).unwrap();
    let want = m.predict(std::slice::from_ref(&e.structure)).unwrap()[0][0].mean;
    let got = h.state().dataset_predicted.values[&target][&e.id];
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Plots;
    h.run_steps(2);
    h.get_by_label("x").click_accesskit();
    h.run_steps(2);
    h.get_by_label("mass_density (g/cm³, predicted)").click_accesskit();
    h.run_steps(3);
    assert_eq!(h.state().state.plot_x, geode::studio::state::Column::Predicted(target));
    // The explorer's new column, and the plot's axis name.
    assert!(h.query_all_by_label_contains("mass_density").count() >= 2);
    // Removing the model removes its column.
    h.state_mut().state.dock_tab = geode::studio::state::DockTab::Models;
    h.run_steps(2);
    let button = format!("{} ×", h.state().state.property_models[0]);
    h.get_by_label(&button).click();
    h.run_steps(3);
    assert!(h.state().dataset_predicted.values.is_empty());
    assert_eq!(h.state().state.plot_x, geode::studio::state::Column::FormationEnergy, "the axis falls back");
    std::fs::remove_dir_all(&dir).ok();
}
