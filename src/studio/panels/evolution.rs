//! The Evolution tab: configure a global structure search (composition, formula units, algorithm,
//! population, budget, operator shares, objectives, potential), launch it as an `evolve` run, and watch
//! it: best and mean fitness and diversity per generation, every individual on a fitness-vs-generation
//! plot (or the Pareto plane of the first two objectives), the family tree of the best individual, and
//! a button that injects the crystal open in the viewer into the running population. Click a point or a
//! family member to open it.

use std::time::{Duration, Instant};

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use serde_json::Value;

use crate::engine::RunSpec;
use crate::engine::store::Store;
use crate::search::evolve::ObjectiveSpec;
use crate::studio::app::{Item, StudioApp};
use crate::studio::state::{DockTab, EvolveForm};

/// An evolve run as the tab shows it, read from the store (not every frame).
#[derive(Debug, Default)]
pub struct EvolutionView {
    pub run: Option<i64>,
    pub status: String,
    pub loaded: Option<Instant>,
    /// (generation, value) of the run's `best`, `mean` and `diversity` metrics.
    pub best: Vec<[f64; 2]>,
    pub mean: Vec<[f64; 2]>,
    pub diversity: Vec<[f64; 2]>,
    /// (candidate id, formula, x, y, stage) of every individual.
    pub points: Vec<(i64, String, f64, f64, String)>,
    /// Multi-objective runs: indices into `points` of the unique individuals no other one dominates.
    pub front: Vec<usize>,
    pub axes: (String, String),
    /// The best individual and its ancestors: (candidate id, label).
    pub family: Vec<(i64, String)>,
}

fn value(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.get("value").and_then(Value::as_f64).or_else(|| x.as_f64()))
}

/// The form's contents as a typed `evolve` spec (the engine checks its values at submission).
pub fn form_params(f: &EvolveForm) -> Result<RunSpec, String> {
    use crate::engine::jobs::evolve::EvolveParams;
    use crate::search::evolve::evaluate::RelaxSettings;
    use crate::search::evolve::{Algorithm, EvolveSettings, OperatorShares, Space};
    let [random, heredity, strain, permutation, rattle] = f.shares;
    let list =
        |s: &str| s.split([',', ' ']).map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
    let algorithm = Algorithm::from_name(&f.algorithm).ok_or_else(|| {
        format!(
            "unknown algorithm {:?} (use {})",
            f.algorithm,
            Algorithm::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let mut search = EvolveSettings {
        formula_units: [f.min_units, f.max_units.max(f.min_units)],
        algorithm,
        population: f.population,
        budget: f.budget,
        operators: OperatorShares { random, heredity, strain, permutation, rattle, ..OperatorShares::default() },
        objectives: f
            .objectives
            .split(['\n', ';'])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(ObjectiveSpec::parse)
            .collect::<Result<_, _>>()?,
        ..EvolveSettings::default()
    };
    match f.space.as_str() {
        "variable" => search.elements = list(&f.elements),
        "prototype" => {
            search.space = Space::Prototype;
            search.elements = list(&f.elements);
            search.templates = list(&f.templates);
        }
        _ => search.composition = f.composition.trim().to_string(),
    }
    Ok(RunSpec::Evolve(EvolveParams {
        search,
        relax: RelaxSettings { potential: f.potential.trim().to_string(), ..RelaxSettings::default() },
        relax_top: f.relax_top,
        ..EvolveParams::default()
    }))
}

/// The evolution view of `run`, read from the project at `project` (off the UI thread). A project that
/// cannot be read gives an empty view of the run.
fn load_evolution(project: &std::path::Path, run: &crate::engine::store::RunRow) -> EvolutionView {
    let Ok(store) = Store::open(project) else {
        return EvolutionView {
            run: Some(run.id),
            status: run.status.clone(),
            loaded: Some(Instant::now()),
            ..Default::default()
        };
    };
    let metric = |name: &str| {
        store.metrics(run.id, name).unwrap_or_default().into_iter().map(|(g, x)| [g as f64, x]).collect::<Vec<_>>()
    };
    let specs: Vec<ObjectiveSpec> = run.params["objectives"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| ObjectiveSpec::parse(o.as_str()?).ok()).collect())
        .unwrap_or_default();
    let axes = match specs.as_slice() {
        [a, b, ..] => (a.column().to_string(), b.column().to_string()),
        [a] => ("generation".to_string(), a.column().to_string()),
        [] => ("generation".to_string(), "energy_per_atom".to_string()),
    };
    let rows = store.query_candidates(None, Some(run.id), None, Some(20_000)).unwrap_or_default();
    let mut points = Vec::new();
    let mut best: Option<(i64, f64)> = None;
    for r in &rows {
        if let (Some(x), Some(y)) = (value(&r.properties, &axes.0), value(&r.properties, &axes.1)) {
            points.push((r.id, r.formula.clone(), x, y, r.stage.clone()));
        }
        if r.stage == "individual"
            && let Some(f) = value(&r.properties, "fitness")
            && best.is_none_or(|b| f < b.1)
        {
            best = Some((r.id, f));
        }
    }
    // The live Pareto front of a multi-objective run: the two axes turned into the objectives' costs.
    let front: Vec<usize> = if specs.len() >= 2 {
        let unique: Vec<usize> = (0..points.len()).filter(|&i| points[i].4 == "individual").collect();
        let cost = |spec: &ObjectiveSpec, v: f64| {
            crate::search::evolve::evaluate::cost(
                spec,
                &std::collections::BTreeMap::from([(spec.column().to_string(), v)]),
            )
        };
        let costs: Vec<Vec<f64>> =
            unique.iter().map(|&i| vec![cost(&specs[0], points[i].2), cost(&specs[1], points[i].3)]).collect();
        let fronts = crate::search::objectives::non_dominated_fronts(&costs);
        unique.into_iter().zip(fronts).filter(|(_, f)| *f == 0).map(|(i, _)| i).collect()
    } else {
        Vec::new()
    };
    // Family tree of the best: breadth first through the stored parents (each looked up once).
    let mut family = Vec::new();
    if let Some((id, _)) = best {
        let mut queue = vec![id];
        let mut parents_of: Vec<Vec<i64>> = Vec::new();
        let mut k = 0;
        while k < queue.len() && queue.len() < 60 {
            let parents = store.candidate_parents(queue[k]).unwrap_or_default();
            for p in &parents {
                if !queue.contains(p) {
                    queue.push(*p);
                }
            }
            parents_of.push(parents);
            k += 1;
        }
        for (k, id) in queue.into_iter().enumerate() {
            if let Some(r) = rows.iter().find(|r| r.id == id) {
                let parents = parents_of.get(k).cloned().unwrap_or_default();
                let op = r.properties.get("operator").and_then(Value::as_str).unwrap_or("?");
                let label = format!(
                    "#{} {} · gen {} · {op}{} · {:.4} eV/atom · {}",
                    r.id,
                    r.formula,
                    value(&r.properties, "generation").unwrap_or(0.0),
                    if parents.is_empty() {
                        String::new()
                    } else {
                        format!(" of {}", parents.iter().map(|p| format!("#{p}")).collect::<Vec<_>>().join(" + "))
                    },
                    value(&r.properties, "energy_per_atom").unwrap_or(f64::NAN),
                    r.properties.get("space_group").and_then(Value::as_str).unwrap_or("")
                );
                family.push((id, label));
            }
        }
    }
    EvolutionView {
        run: Some(run.id),
        status: run.status.clone(),
        loaded: Some(Instant::now()),
        best: metric("best"),
        mean: metric("mean"),
        diversity: metric("diversity"),
        points,
        front,
        axes,
        family,
    }
}

impl StudioApp {
    /// Keep the tab's view of its run current: re-read when the shown run or its status changes, and at
    /// most once a second while it runs, on a thread of its own ([`BackgroundQuery`]).
    fn refresh_evolution(&mut self, ctx: &egui::Context) {
        if let Some(Ok(v)) = self.evolution_query.poll() {
            self.evolution = v;
        }
        let Some(run) = self.shown_run("evolve").cloned() else { return };
        let v = &self.evolution;
        let stale = v.run != Some(run.id)
            || v.status != run.status
            || (run.status == "running" && v.loaded.is_none_or(|t| t.elapsed() > Duration::from_secs(1)));
        if !stale || self.evolution_query.busy() || self.store.is_none() {
            return;
        }
        let project = self.project.clone();
        if let Err(e) = self.evolution_query.start(ctx, "geode-evolution-view", move || load_evolution(&project, &run))
        {
            self.toast(e, true);
        }
    }

    pub fn evolution_ui(&mut self, ui: &mut egui::Ui) {
        self.refresh_evolution(&ui.ctx().clone());
        let mut launch = false;
        let mut inject = false;
        let mut open: Option<i64> = None;
        let run = self.runs.iter().rev().find(|r| Some(r.id) == self.evolution.run).cloned();
        ui.columns(3, |cols| {
            // Left: the form and the run's status.
            let ui = &mut cols[0];
            let f = &mut self.state.evolve;
            egui::Grid::new("evolve_form").num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
                ui.label("Search space");
                egui::ComboBox::from_id_salt("evolve_space").selected_text(f.space.clone()).show_ui(ui, |ui| {
                    for (k, what) in [("fixed", "structures of one composition"), ("variable", "structures, every neutral stoichiometry of the elements"), ("prototype", "element assignments on templates, no relaxation")] {
                        ui.selectable_value(&mut f.space, k.to_string(), format!("{k}: {what}"));
                    }
                });
                ui.end_row();
                if f.space == "fixed" {
                    ui.label("Composition");
                    ui.add(egui::TextEdit::singleline(&mut f.composition).hint_text("formula unit, e.g. SrTiO3").desired_width(f32::INFINITY));
                } else {
                    ui.label("Elements");
                    ui.add(egui::TextEdit::singleline(&mut f.elements).hint_text("Ba, Ti, O").desired_width(f32::INFINITY));
                }
                ui.end_row();
                if f.space == "prototype" {
                    ui.label("Templates");
                    ui.add(egui::TextEdit::singleline(&mut f.templates).hint_text("SrTiO3, MgAl2O4, aflow:perovskite").desired_width(f32::INFINITY));
                    ui.end_row();
                }
                ui.label("Formula units");
                ui.horizontal(|ui| {
                    ui.add(egui::DragValue::new(&mut f.min_units).range(1..=20));
                    ui.label("to");
                    ui.add(egui::DragValue::new(&mut f.max_units).range(1..=20));
                });
                ui.end_row();
                ui.label("Algorithm");
                egui::ComboBox::from_id_salt("evolve_alg").selected_text(f.algorithm.clone()).show_ui(ui, |ui| {
                    for (a, what) in [("ga", "genetic (NSGA-II for several objectives)"), ("random", "random symmetric search"), ("anneal", "basin hopping with annealing"), ("swarm", "particle swarm (CALYPSO)"), ("bo", "Bayesian optimisation (GP surrogate, EI)")] {
                        ui.selectable_value(&mut f.algorithm, a.to_string(), format!("{a}: {what}"));
                    }
                });
                ui.end_row();
                ui.label("Population");
                ui.add(egui::DragValue::new(&mut f.population).range(2..=200));
                ui.end_row();
                ui.label("Budget (structures)");
                ui.add(egui::DragValue::new(&mut f.budget).range(2..=100_000));
                ui.end_row();
                for (k, name) in ["random", "heredity", "strain", "permutation", "rattle"].iter().enumerate() {
                    ui.label(format!("Share: {name}"));
                    ui.add(egui::Slider::new(&mut f.shares[k], 0.0..=1.0));
                    ui.end_row();
                }
                ui.label("Objectives");
                ui.add(egui::TextEdit::multiline(&mut f.objectives).desired_rows(2).desired_width(f32::INFINITY).hint_text("energy\ne_above_hull\nband_gap in [1, 2]"));
                ui.end_row();
                ui.label("Potential");
                ui.add(egui::TextEdit::singleline(&mut f.potential).desired_width(f32::INFINITY));
                ui.end_row();
                ui.label("Relax best afterwards");
                ui.add(egui::DragValue::new(&mut f.relax_top).range(0..=1000)).on_hover_text("After the search, relax this many of the best (Pareto front first) with the potential and place them on the CHGNet hull");
                ui.end_row();
            });
            ui.horizontal(|ui| {
                launch = ui.button("Start search").on_hover_text("Runs in the background as an evolve run; every individual is relaxed with the potential").clicked();
                let active = run.as_ref().is_some_and(|r| matches!(r.status.as_str(), "running" | "queued" | "paused" | "cancelled"));
                inject = ui.add_enabled(active && self.selection.is_some(), egui::Button::new("Inject viewed crystal")).on_hover_text("Add the crystal open in the viewer to the run's next generation").clicked();
            });
            match &run {
                None => {
                    ui.weak("No evolve run yet.");
                }
                Some(r) => {
                    let live = self.progress.get(&r.id);
                    let frac = if r.status == "running" { live.map_or(r.progress, |p| p.fraction) } else { r.progress };
                    ui.label(format!("Run {} · {} · {} · {:.0}% · {} structures", r.id, r.params["composition"].as_str().unwrap_or(""), r.status, frac * 100.0, r.n_candidates));
                    if let Some(e) = &r.error {
                        ui.colored_label(egui::Color32::from_rgb(230, 90, 80), e);
                    }
                }
            }
            // Middle: fitness and diversity per generation.
            let ui = &mut cols[1];
            let v = &self.evolution;
            ui.label("Fitness per generation (best so far, population mean)");
            let h = ui.available_height();
            Plot::new("evolve_fitness").height(h * 0.62).legend(Legend::default()).x_axis_label("generation").y_axis_label(v.axes.1.clone()).show(ui, |p| {
                p.line(Line::new("best", PlotPoints::from(v.best.clone())).color(egui::Color32::from_rgb(255, 170, 40)).width(2.0));
                p.line(Line::new("mean", PlotPoints::from(v.mean.clone())).color(egui::Color32::from_rgb(110, 160, 230)));
            });
            Plot::new("evolve_diversity").height(ui.available_height()).x_axis_label("generation").y_axis_label("diversity").show(ui, |p| {
                p.line(Line::new("diversity", PlotPoints::from(v.diversity.clone())).color(egui::Color32::from_rgb(120, 200, 120)));
            });
            // Right: individuals and the best one's family tree.
            let ui = &mut cols[2];
            let (xl, yl) = v.axes.clone();
            if v.front.is_empty() {
                ui.label(format!("{} individuals ({} vs {}); orange: unique, grey: duplicates", v.points.len(), yl, xl));
            } else {
                ui.label(format!("{} individuals ({} vs {}); large: Pareto front ({}), grey: duplicates", v.points.len(), yl, xl, v.front.len()));
            }
            let front: Vec<[f64; 2]> = v.front.iter().map(|&i| [v.points[i].2, v.points[i].3]).collect();
            let unique: Vec<[f64; 2]> = v.points.iter().filter(|p| p.4 == "individual").map(|p| [p.2, p.3]).collect();
            let dups: Vec<[f64; 2]> = v.points.iter().filter(|p| p.4 != "individual").map(|p| [p.2, p.3]).collect();
            let pts = &v.points;
            let resp = Plot::new("evolve_points").height(ui.available_height() * 0.55).x_axis_label(xl.clone()).y_axis_label(yl.clone()).label_formatter(|_| None).show(ui, |p| {
                p.points(Points::new("duplicates", PlotPoints::from(dups)).radius(2.5).color(egui::Color32::from_gray(110)));
                p.points(Points::new("individuals", PlotPoints::from(unique)).radius(3.5).color(egui::Color32::from_rgb(255, 170, 40)));
                p.points(Points::new("Pareto front", PlotPoints::from(front)).radius(6.0).color(egui::Color32::from_rgb(255, 230, 120)));
                p.response().hover_pos().and_then(|px| pts.iter().map(|q| (q, p.screen_from_plot(egui_plot::PlotPoint::new(q.2, q.3)).distance(px))).filter(|(_, d)| *d < 8.0).min_by(|a, b| a.1.total_cmp(&b.1)).map(|(q, _)| q.clone()))
            });
            if let Some(q) = &resp.inner {
                resp.response.clone().on_hover_text_at_pointer(format!("{} (candidate {}, {})\n{xl} {:.4}\n{yl} {:.4}", q.1, q.0, q.4, q.2, q.3));
                if resp.response.clicked() {
                    open = Some(q.0);
                }
            }
            ui.label("Family tree of the best (click to open)");
            egui::ScrollArea::vertical().id_salt("evolve_family").show(ui, |ui| {
                if v.family.is_empty() {
                    ui.weak("No individual yet.");
                }
                for (id, label) in &v.family {
                    if ui.link(label).clicked() {
                        open = Some(*id);
                    }
                }
            });
        });
        if let Some(id) = open {
            self.select(Item::Candidate(id));
        }
        if inject
            && let (Some(r), Some(item)) = (run, self.selection.clone())
            && let Some((s, _)) = self.structure_of(&item)
        {
            match crate::engine::jobs::evolve::inject(&self.project, r.id, &s) {
                Ok(_) => {
                    self.toast(format!("{} queued for run {}'s next generation", s.reduced_formula(), r.id), false)
                }
                Err(e) => self.toast(format!("Cannot inject: {e}"), true),
            }
        }
        if launch {
            match form_params(&self.state.evolve) {
                Ok(spec) => {
                    self.start_run(spec, 1);
                    self.state.dock_tab = DockTab::Evolution;
                }
                Err(e) => self.toast(format!("Cannot start evolve: {e}"), true),
            }
        }
    }
}
