//! The runs panel: every run of the project with status, progress, throughput and ETA; cancel, pause
//! and resume; the selected run's parameters, result, log and metric curves (e.g. training losses), and
//! for relaxations the trajectory (energy and fmax per step, frames played in the viewer).

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::studio::app::StudioApp;

impl StudioApp {
    pub fn runs_ui(&mut self, ui: &mut egui::Ui) {
        if self.runs.is_empty() {
            ui.weak("No runs in this project yet. Start one from the Runs menu or the Models tab, or with `geode run` on the command line.");
            return;
        }
        // A relaxation's trajectory across the whole dock: its plots need the width.
        if let Some(run) = self
            .selected_run
            .and_then(|id| self.runs.iter().find(|r| r.id == id))
            .filter(|r| r.kind == "relax" && self.store.is_some())
            .cloned()
        {
            self.trajectory_ui(ui, &run);
            ui.separator();
        }
        let mut action: Option<(&'static str, i64)> = None;
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical().id_salt("runs_list").show(&mut cols[0], |ui| {
                for r in self.runs.iter().rev() {
                    // Live progress while running; the stored value once the run has stopped (the last live event may predate the end).
                    let p = self.progress.get(&r.id).filter(|_| r.status == "running");
                    let frac = p.map(|p| p.fraction).unwrap_or(r.progress) as f32;
                    ui.horizontal(|ui| {
                        let sel = self.selected_run == Some(r.id);
                        if ui.selectable_label(sel, format!("{:>3} {:8} {:9}", r.id, r.kind, r.status)).clicked() {
                            self.selected_run = Some(r.id);
                        }
                        let mut text = format!("{:.0}%", frac * 100.0);
                        if let Some(p) = p.filter(|_| r.status == "running") {
                            text = format!("{} {} {}/{}", text, p.stage, p.done, p.total);
                            if let Some(t) = p.throughput_per_s {
                                text.push_str(&format!(" · {t:.1}/s"));
                            }
                            if let Some(eta) = p.eta_s {
                                text.push_str(&format!(" · ETA {eta:.0} s"));
                            }
                        }
                        ui.add(egui::ProgressBar::new(frac).desired_width(200.0).text(text));
                        match r.status.as_str() {
                            "running" => {
                                if ui.small_button("Pause").clicked() {
                                    action = Some(("pause", r.id));
                                }
                                if ui.small_button("Cancel").clicked() {
                                    action = Some(("cancel", r.id));
                                }
                            }
                            "queued" if ui.small_button("Cancel").clicked() => {
                                action = Some(("cancel", r.id));
                            }
                            "paused" | "cancelled" | "failed" if ui.small_button("Resume").clicked() => {
                                action = Some(("resume", r.id));
                            }
                            _ => {}
                        }
                    });
                }
            });
            let ui = &mut cols[1];
            let Some(run) = self.selected_run.and_then(|id| self.runs.iter().find(|r| r.id == id)).cloned() else {
                ui.weak("Select a run to see its log and metrics");
                return;
            };
            ui.strong(format!(
                "Run {} · {} · {} · seed {} · geode {}",
                run.id, run.kind, run.status, run.seed, run.code_version
            ));
            ui.label(format!(
                "{} candidates · created {} · finished {}",
                run.n_candidates,
                run.created_at,
                run.finished_at.as_deref().unwrap_or("–")
            ));
            if let Some(e) = &run.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            if run.params["executor"]["kind"] == "slurm"
                && let Some(store) = &self.store
            {
                queue_ui(ui, &run, store);
            }
            if let Some(store) = &self.store {
                let names: Vec<&str> = if run.kind == "train" {
                    vec!["train_loss", "val_mae_formation_energy_per_atom", "val_mae_band_gap"]
                } else {
                    vec![]
                };
                let series: Vec<(String, Vec<[f64; 2]>)> = names
                    .iter()
                    .filter_map(|n| {
                        store
                            .metrics(run.id, n)
                            .ok()
                            .filter(|v| !v.is_empty())
                            .map(|v| (n.to_string(), v.into_iter().map(|(s, y)| [s as f64, y]).collect()))
                    })
                    .collect();
                if !series.is_empty() {
                    Plot::new(("run_metrics", run.id))
                        .height(120.0)
                        .legend(Legend::default())
                        .x_axis_label("epoch")
                        .show(ui, |p| {
                            for (n, pts) in series {
                                p.line(Line::new(n, PlotPoints::from(pts)));
                            }
                        });
                }
                egui::ScrollArea::vertical().id_salt("run_log").stick_to_bottom(true).show(ui, |ui| {
                    ui.weak(format!("parameters {}", run.params));
                    if let Some(res) = &run.result {
                        ui.label(format!("result {res}"));
                    }
                    for (at, level, msg) in store.logs(run.id).unwrap_or_default() {
                        let t = format!("{at} [{level}] {msg}");
                        if level == "error" {
                            ui.colored_label(ui.visuals().error_fg_color, t)
                        } else {
                            ui.monospace(t)
                        };
                    }
                });
            }
        });
        if let (Some((what, id)), Some(engine)) = (action, &self.engine) {
            let r = match what {
                "pause" => {
                    engine.pause(id);
                    Ok(())
                }
                "cancel" => engine.cancel(id),
                _ => engine.resume(id),
            };
            if let Err(e) = r {
                self.toast(format!("Cannot {what} run {id}: {e}"), true);
            }
        }
    }
}

/// A Slurm run's queue: its tasks by state (as the last poll saw them), the job arrays it submitted and
/// how many tasks were resubmitted; why each was is in the log below.
fn queue_ui(ui: &mut egui::Ui, run: &crate::engine::store::RunRow, store: &crate::engine::Store) {
    let count = |k: &str| run.counters[k].as_f64().unwrap_or(0.0) as u64;
    let checkpoint = store.checkpoint(run.id).ok().flatten().unwrap_or_default();
    let remote = &checkpoint["job"]["remote"];
    let jobs: Vec<String> = remote["arrays"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["job_id"].as_u64()).map(|id| id.to_string()).collect())
        .unwrap_or_default();
    let retries: u64 = remote["retries"].as_object().map(|m| m.values().filter_map(|v| v.as_u64()).sum()).unwrap_or(0);
    let total = remote["hashes"].as_array().map_or(0, Vec::len);
    let settled = remote["settled"].as_array().map_or(0, Vec::len);
    ui.group(|ui| {
        ui.strong("Slurm queue");
        ui.label(format!(
            "{total} tasks: {} pending · {} running · {settled} back ({} converged, {} failed) · {retries} resubmitted",
            count("pending"),
            count("running"),
            count("converged"),
            count("failed"),
        ));
        let host = run.params["executor"]["host"].as_str().map(|h| format!(" on {h}")).unwrap_or_default();
        ui.label(format!(
            "job arrays{host}: {}",
            if jobs.is_empty() { "none submitted yet".to_string() } else { jobs.join(", ") }
        ));
    });
}
