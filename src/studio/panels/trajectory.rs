//! A relaxation run's trajectory, under the runs panel: energy (eV) and log₁₀ fmax (eV/Å) per FIRE step for
//! one of the run's input structures, and its stored frames played in the viewer (slider, play/pause).
//! Everything comes from the project store (the `energy:<i>` / `fmax:<i>` metrics and the candidates at stage
//! `frame` and `relaxed` that the `relax` job writes) and, for the relaxation in flight, from the run's live
//! progress counters (`input`, `step`, `energy`, `fmax`), drawn as a second curve until the structure is done.

use std::time::{Duration, Instant};

use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints, VLine};
use serde_json::Value;

use crate::engine::store::RunRow;
use crate::studio::app::{Item, StudioApp};

/// Seconds between frames while playing.
const FRAME_INTERVAL: Duration = Duration::from_millis(400);

/// What the trajectory view shows, refreshed from the store when the run or input changes (and every
/// second while the run is running).
#[derive(Default)]
pub struct TrajectoryView {
    run: Option<i64>,
    input: usize,
    n_inputs: usize,
    energy: Vec<[f64; 2]>,
    log_fmax: Vec<[f64; 2]>,
    /// (step, candidate id), in step order; the relaxed structure last.
    frames: Vec<(i64, i64)>,
    current: usize,
    playing: bool,
    last_advance: Option<Instant>,
    refreshed: Option<Instant>,
    /// The run's status and candidate count at the last refresh.
    seen: (String, i64),
    /// Steps of the relaxation in flight, from the run's live progress counters: (step, energy, fmax).
    live: Vec<(f64, f64, f64)>,
}

fn step_of(props: &Value) -> Option<i64> {
    let v = props.get("step").or_else(|| props.get("steps"))?;
    v.get("value").and_then(Value::as_f64).or_else(|| v.as_f64()).map(|x| x as i64)
}

impl StudioApp {
    fn refresh_trajectory(&mut self, run: &RunRow) {
        let Some(store) = &self.store else { return };
        let v = &mut self.trajectory;
        if v.run != Some(run.id) {
            *v = TrajectoryView { run: Some(run.id), ..Default::default() };
        }
        let inputs: Vec<String> = run
            .params
            .get("structures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        v.n_inputs = (0..)
            .take_while(|i| store.metrics(run.id, &format!("energy:{i}")).map(|m| !m.is_empty()).unwrap_or(false))
            .count()
            .max(inputs.len().min(1));
        let i = v.input;
        v.energy = store
            .metrics(run.id, &format!("energy:{i}"))
            .unwrap_or_default()
            .into_iter()
            .map(|(s, e)| [s as f64, e])
            .collect();
        v.log_fmax = store
            .metrics(run.id, &format!("fmax:{i}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, f)| *f > 0.0)
            .map(|(s, f)| [s as f64, f.log10()])
            .collect();
        // Frames of this input: candidates whose `extra.input` names it; the n-th input's source is `relax:<name>`.
        let rows = store.query_candidates(None, Some(run.id), None, None).unwrap_or_default();
        let mut sources: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.stage == "relaxed") {
            if !sources.contains(&r.source.as_str()) {
                sources.push(&r.source);
            }
        }
        let mut frames: Vec<(i64, i64)> = Vec::new();
        if let Some(src) = sources.get(i) {
            frames = rows
                .iter()
                .filter(|r| r.source == *src && r.stage == "frame")
                .filter_map(|r| Some((step_of(&r.properties)?, r.id)))
                .collect();
            frames.sort_unstable();
            if let Some(relaxed) = rows.iter().find(|r| r.source == *src && r.stage == "relaxed") {
                frames.push((step_of(&relaxed.properties).unwrap_or(i64::MAX), relaxed.id));
            }
        }
        v.frames = frames;
        v.current = v.current.min(v.frames.len().saturating_sub(1));
        v.refreshed = Some(Instant::now());
        v.seen = (run.status.clone(), run.n_candidates);
    }

    fn show_frame(&mut self, k: usize) {
        let Some(&(step, id)) = self.trajectory.frames.get(k) else { return };
        self.trajectory.current = k;
        if let Some((s, _)) = self.structure_of(&Item::Candidate(id)) {
            let last = k + 1 == self.trajectory.frames.len();
            let title = format!(
                "{} · run {} · {}",
                s.reduced_formula(),
                self.trajectory.run.unwrap_or(0),
                if last { format!("relaxed ({step} steps)") } else { format!("step {step}") }
            );
            self.viewer.set_structure(s, title);
        }
    }

    /// The trajectory of the selected `relax` run.
    pub fn trajectory_ui(&mut self, ui: &mut egui::Ui, run: &RunRow) {
        let v = &self.trajectory;
        let changed = v.seen.0 != run.status || v.seen.1 != run.n_candidates;
        let stale = v.run != Some(run.id)
            || (changed && v.refreshed.is_none_or(|t| t.elapsed() > Duration::from_secs(1)))
            || (changed && run.status != "running");
        if stale {
            self.refresh_trajectory(run);
        }
        // The relaxation in flight streams its step, energy and fmax through the progress counters.
        if let Some(c) = self.progress.get(&run.id).map(|p| &p.counters).filter(|_| run.status == "running") {
            if let (Some(&input), Some(&step), Some(&e), Some(&f)) =
                (c.get("input"), c.get("step"), c.get("energy"), c.get("fmax"))
            {
                let v = &mut self.trajectory;
                if input as usize == v.input && v.live.last().is_none_or(|l| l.0 != step) {
                    if v.live.last().is_some_and(|l| step < l.0) {
                        v.live.clear();
                    }
                    v.live.push((step, e, f));
                }
            }
        } else {
            self.trajectory.live.clear();
        }
        ui.horizontal(|ui| {
            ui.label("Structure");
            let mut input = self.trajectory.input;
            egui::ComboBox::from_id_salt(("traj_input", run.id)).selected_text(format!("{}", input + 1)).show_ui(
                ui,
                |ui| {
                    for k in 0..self.trajectory.n_inputs.max(1) {
                        ui.selectable_value(&mut input, k, format!("{}", k + 1));
                    }
                },
            );
            if input != self.trajectory.input {
                self.trajectory.input = input;
                self.trajectory.current = 0;
                self.trajectory.playing = false;
                self.refresh_trajectory(run);
            }
            let n = self.trajectory.frames.len();
            if n > 0 {
                let label = if self.trajectory.playing { "Pause" } else { "Play" };
                if ui
                    .button(label)
                    .on_hover_text("Animate the stored frames of this relaxation in the viewer")
                    .clicked()
                {
                    self.trajectory.playing = !self.trajectory.playing;
                    if self.trajectory.playing && self.trajectory.current + 1 >= n {
                        self.trajectory.current = 0;
                    }
                    self.trajectory.last_advance = None;
                }
                let mut k = self.trajectory.current;
                if ui.add(egui::Slider::new(&mut k, 0..=n - 1).show_value(false)).changed() {
                    self.trajectory.playing = false;
                    self.show_frame(k);
                }
                let (step, _) = self.trajectory.frames[self.trajectory.current.min(n - 1)];
                let at = if self.trajectory.current + 1 == n { "relaxed".to_string() } else { format!("step {step}") };
                ui.label(format!("frame {} of {n} ({at})", self.trajectory.current + 1));
            } else {
                ui.weak("no frames stored yet");
            }
        });
        if self.trajectory.playing {
            let due = self.trajectory.last_advance.is_none_or(|t| t.elapsed() >= FRAME_INTERVAL);
            if due {
                let n = self.trajectory.frames.len();
                let next = if self.trajectory.last_advance.is_none() {
                    self.trajectory.current
                } else {
                    self.trajectory.current + 1
                };
                if next < n {
                    self.show_frame(next);
                    self.trajectory.last_advance = Some(Instant::now());
                } else {
                    self.trajectory.playing = false;
                }
            }
            ui.ctx().request_repaint_after(FRAME_INTERVAL);
        }
        let marker = self
            .trajectory
            .frames
            .get(self.trajectory.current)
            .map(|&(s, _)| s as f64)
            .filter(|s| *s < i64::MAX as f64);
        let v = &self.trajectory;
        let live_e: Vec<[f64; 2]> = v.live.iter().map(|l| [l.0, l.1]).collect();
        let live_f: Vec<[f64; 2]> = v.live.iter().filter(|l| l.2 > 0.0).map(|l| [l.0, l.2.log10()]).collect();
        ui.columns(2, |cols| {
            step_plot(&mut cols[0], ("traj_energy", run.id), "energy (eV)", &v.energy, live_e, marker);
            step_plot(&mut cols[1], ("traj_fmax", run.id), "log10 fmax (eV/A)", &v.log_fmax, live_f, marker);
        });
    }
}

/// One quantity against the FIRE step: the committed series, the steps in flight and the shown frame.
fn step_plot(
    ui: &mut egui::Ui,
    id: (&str, i64),
    label: &str,
    series: &[[f64; 2]],
    live: Vec<[f64; 2]>,
    marker: Option<f64>,
) {
    Plot::new(id).height(150.0).x_axis_label("FIRE step").y_axis_label(label).show(ui, |p| {
        p.line(Line::new(label, PlotPoints::from(series.to_vec())));
        if !live.is_empty() {
            p.line(Line::new("in flight", PlotPoints::from(live)));
        }
        if let Some(x) = marker {
            p.vline(VLine::new("frame", x));
        }
    });
}
