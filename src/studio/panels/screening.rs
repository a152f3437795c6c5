//! The Screening tab: compose the funnel (templates from the dataset or the AFLOW prototypes,
//! substitution threshold, element exclusions, constraints, objectives), launch it as a `screen` run, watch the funnel counts per stage live, and
//! look at the survivors on a Pareto plot of the first two objectives (dominated points faded; click a
//! point to open the candidate in the viewer).

use std::time::{Duration, Instant};

use eframe::egui;
use egui_plot::{Plot, PlotPoints, Points};
use serde_json::Value;

use crate::engine::RunSpec;
use crate::engine::jobs::screen::STAGES;
use crate::engine::store::Store;
use crate::studio::app::{Item, StudioApp};
use crate::studio::state::DockTab;

/// Survivors of a screen run, read from the store (not every frame).
#[derive(Debug, Default)]
pub struct ScreeningView {
    pub run: Option<i64>,
    pub status: String,
    pub loaded: Option<Instant>,
    /// (candidate id, formula, x, y, Pareto rank) of candidates that passed every stage.
    pub points: Vec<(i64, String, f64, f64, f64)>,
    pub axes: (String, String),
}

fn value(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(|x| x.get("value").and_then(Value::as_f64).or_else(|| x.as_f64()))
}

/// The form's contents as a typed `screen` spec: constraints and objectives are parsed here (a
/// misspelt property is refused with the closest names); the engine checks the rest at submission.
pub fn form_params(f: &crate::studio::state::ScreenForm) -> Result<RunSpec, String> {
    use crate::search::objectives::{Constraint, Objective};
    let list = |s: &str, sep: &[char]| {
        s.split(sep).map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>()
    };
    let constraints =
        list(&f.constraints, &['\n', ';']).iter().map(|c| Constraint::parse(c)).collect::<Result<Vec<_>, _>>()?;
    let objectives =
        list(&f.objectives, &['\n', ';']).iter().map(|o| Objective::parse(o)).collect::<Result<Vec<_>, _>>()?;
    Ok(RunSpec::Screen(crate::engine::jobs::screen::ScreenParams {
        templates: list(&f.templates, &[',', ' ']),
        threshold: f.threshold,
        excluded_elements: list(&f.excluded, &[',', ' ']),
        max_atoms: f.max_atoms,
        constraints,
        objectives,
        min_probability: f.min_probability,
        relax_top: f.relax_top,
        ..Default::default()
    }))
}

/// The screening view of `run`, read from the project at `project` (off the UI thread). A project that
/// cannot be read gives an empty view of the run.
fn load_screening(project: &std::path::Path, run: &crate::engine::store::RunRow) -> ScreeningView {
    let objectives: Vec<String> = run.params["objectives"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.as_str()?.split_whitespace().nth(1).map(String::from)).collect())
        .unwrap_or_default();
    let x = objectives.first().cloned().unwrap_or_else(|| "e_above_hull".into());
    let y = objectives
        .get(1)
        .cloned()
        .unwrap_or_else(|| if x == "band_gap" { "e_above_hull".into() } else { "band_gap".into() });
    let mut points = Vec::new();
    if let Ok(store) = Store::open(project)
        && let Ok(rows) = store.query_candidates(None, Some(run.id), None, Some(20_000))
    {
        for r in rows.into_iter().filter(|r| r.stage == "constraints") {
            if let (Some(px), Some(py)) = (value(&r.properties, &x), value(&r.properties, &y)) {
                points.push((r.id, r.formula, px, py, value(&r.properties, "pareto_rank").unwrap_or(f64::NAN)));
            }
        }
    }
    ScreeningView { run: Some(run.id), status: run.status.clone(), loaded: Some(Instant::now()), points, axes: (x, y) }
}

impl StudioApp {
    /// The run of `kind` a tab shows: the selected run if it is one, else the newest of that kind.
    pub(crate) fn shown_run(&self, kind: &str) -> Option<&crate::engine::store::RunRow> {
        self.selected_run
            .and_then(|id| self.runs.iter().find(|r| r.id == id && r.kind == kind))
            .or_else(|| self.runs.iter().rev().find(|r| r.kind == kind))
    }

    /// Keep the tab's view of its run current: re-read when the shown run or its status changes, and at
    /// most once a second while it runs, on a thread of its own ([`BackgroundQuery`]).
    fn refresh_screening(&mut self, ctx: &egui::Context) {
        if let Some(Ok(v)) = self.screening_query.poll() {
            self.screening = v;
        }
        let Some(run) = self.shown_run("screen").cloned() else { return };
        let v = &self.screening;
        let stale = v.run != Some(run.id)
            || v.status != run.status
            || (run.status == "running" && v.loaded.is_none_or(|t| t.elapsed() > Duration::from_secs(1)));
        if !stale || self.screening_query.busy() || self.store.is_none() {
            return;
        }
        let project = self.project.clone();
        if let Err(e) = self.screening_query.start(ctx, "geode-screening-view", move || load_screening(&project, &run))
        {
            self.toast(e, true);
        }
    }

    pub fn screening_ui(&mut self, ui: &mut egui::Ui) {
        self.refresh_screening(&ui.ctx().clone());
        let mut launch = false;
        let mut open: Option<i64> = None;
        ui.columns(2, |cols| {
            let ui = &mut cols[0];
            ui.horizontal(|ui| {
                launch = ui.button("Launch screening").on_hover_text("Stages: chemistry (SMACT), composition model, structure model, hull, constraints").clicked();
            });
            let f = &mut self.state.screen;
            egui::Grid::new("screen_form").num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
                ui.label("Templates");
                ui.add(egui::TextEdit::singleline(&mut f.templates).hint_text("dataset formulas or ids, aflow:B1, aflow:perovskite").desired_width(f32::INFINITY));
                ui.end_row();
                ui.label("AFLOW prototypes");
                ui.vertical(|ui| {
                    ui.add(egui::TextEdit::singleline(&mut f.prototype_filter).hint_text("find: B1, perovskite, AB2, cF8, * (288 in all)").desired_width(f32::INFINITY));
                    let filter = f.prototype_filter.trim();
                    if !filter.is_empty() {
                        let hits = crate::data::prototypes::find(filter);
                        if hits.is_empty() {
                            ui.weak("No prototype matches (label, Strukturbericht, Pearson symbol, stoichiometry or mineral).");
                        }
                        for p in hits.iter().take(8) {
                            let key = format!("aflow:{}", p.aflow);
                            let added = f.templates.split([',', ' ']).any(|t| t == key);
                            let text = format!("{} {}  {}  ({}, {})", if added { "[added]" } else { "+" }, p.display_name(), p.structure.reduced_formula(), p.pearson, p.space_group());
                            if ui.add_enabled(!added, egui::Button::new(text).small()).on_hover_text(&p.aflow).clicked() {
                                if !f.templates.trim().is_empty() {
                                    f.templates.push_str(", ");
                                }
                                f.templates.push_str(&key);
                            }
                        }
                        if hits.len() > 8 {
                            ui.weak(format!("... and {} more: narrow the search", hits.len() - 8));
                        }
                    }
                });
                ui.end_row();
                ui.label("Substitution probability >");
                ui.add(egui::DragValue::new(&mut f.threshold).speed(1e-4).range(1e-5..=0.5).max_decimals(5));
                ui.end_row();
                ui.label("Exclude elements");
                ui.add(egui::TextEdit::singleline(&mut f.excluded).desired_width(f32::INFINITY));
                ui.end_row();
                ui.label("Max atoms");
                ui.add(egui::DragValue::new(&mut f.max_atoms).range(1..=500));
                ui.end_row();
                ui.label("Constraints");
                ui.add(egui::TextEdit::multiline(&mut f.constraints).desired_rows(2).desired_width(f32::INFINITY).hint_text("band_gap in [1.1, 1.8]"));
                ui.end_row();
                ui.label("Objectives");
                ui.add(egui::TextEdit::multiline(&mut f.objectives).desired_rows(2).desired_width(f32::INFINITY).hint_text("min e_above_hull"));
                ui.end_row();
                ui.label("Keep if P(constraints) >=");
                ui.add(egui::DragValue::new(&mut f.min_probability).speed(0.01).range(0.0..=1.0));
                ui.end_row();
                ui.label("Relax best with CHGNet");
                ui.add(egui::DragValue::new(&mut f.relax_top).range(0..=1000)).on_hover_text("After the funnel, relax this many of the best-ranked candidates with CHGNet and place them on the CHGNet hull (relaxed_e_above_hull)");
                ui.end_row();
            });
            ui.separator();
            match self.runs.iter().rev().find(|r| Some(r.id) == self.screening.run) {
                None => {
                    ui.weak("No screening run yet.");
                }
                Some(run) => {
                    let live = self.progress.get(&run.id);
                    let frac = if run.status == "running" { live.map_or(run.progress, |p| p.fraction) } else { run.progress };
                    ui.label(format!("Run {} · {} · {:.0}%", run.id, run.status, frac * 100.0));
                    let total = run.counters.get("enumerated").and_then(Value::as_f64).unwrap_or(0.0).max(1.0);
                    for s in STAGES {
                        let n = live.and_then(|p| p.counters.get(s).copied()).or_else(|| run.counters.get(s).and_then(Value::as_f64)).unwrap_or(0.0);
                        ui.horizontal(|ui| {
                            ui.add(egui::ProgressBar::new((n / total) as f32).desired_width(160.0).text(format!("{n:.0}")));
                            ui.label(s.replace('_', " "));
                        });
                    }
                    if let Some(e) = &run.error {
                        ui.colored_label(egui::Color32::from_rgb(230, 90, 80), e);
                    }
                }
            }
            let ui = &mut cols[1];
            let v = &self.screening;
            let (xl, yl) = v.axes.clone();
            let front: Vec<[f64; 2]> = v.points.iter().filter(|p| p.4 == 0.0).map(|p| [p.2, p.3]).collect();
            let rest: Vec<[f64; 2]> = v.points.iter().filter(|p| p.4 != 0.0).map(|p| [p.2, p.3]).collect();
            ui.label(format!("Pareto front: {} of {} passed (bright: non-dominated)", front.len(), v.points.len()));
            let pts = &v.points;
            let resp = Plot::new("pareto_plot").x_axis_label(xl.clone()).y_axis_label(yl.clone()).label_formatter(|_| None).show(ui, |plot_ui| {
                plot_ui.points(Points::new("dominated", PlotPoints::from(rest)).radius(2.5).color(egui::Color32::from_gray(110)));
                plot_ui.points(Points::new("Pareto front", PlotPoints::from(front)).radius(4.5).color(egui::Color32::from_rgb(255, 170, 40)));
                plot_ui.response().hover_pos().and_then(|px| {
                    pts.iter().map(|p| (p, plot_ui.screen_from_plot(egui_plot::PlotPoint::new(p.2, p.3)).distance(px))).filter(|(_, d)| *d < 8.0).min_by(|a, b| a.1.total_cmp(&b.1)).map(|(p, _)| p.clone())
                })
            });
            if let Some(p) = &resp.inner {
                resp.response.clone().on_hover_text_at_pointer(format!("{} (candidate {})\n{xl} {:.3}\n{yl} {:.3}\nPareto rank {}", p.1, p.0, p.2, p.3, p.4));
                if resp.response.clicked() {
                    open = Some(p.0);
                }
            }
        });
        if let Some(id) = open {
            self.select(Item::Candidate(id));
        }
        if launch {
            match form_params(&self.state.screen) {
                Ok(spec) => self.start_run(spec, 1),
                Err(e) => self.toast(format!("Cannot start screen: {e}"), true),
            }
            self.state.dock_tab = DockTab::Screening;
        }
    }
}
