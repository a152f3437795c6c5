//! The models panel: which model predicts each property (shipped ensembles, a trained `.safetensors`
//! or a TorchScript `.pt` path), their test-split metrics from the model cards, parity plots
//! (predicted vs DFT on the test split, with ±σ error bars), and retraining as a background run.

use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints, Points};

use crate::ml::{Target, shipped};
use crate::studio::app::StudioApp;

/// Parity points drawn at most per plot (with error bars).
const MAX_PARITY: usize = 1500;

impl StudioApp {
    pub fn models_ui(&mut self, ui: &mut egui::Ui) {
        let cards = self.cards.clone();
        ui.horizontal_wrapped(|ui| {
            for t in Target::ALL {
                let cur = self.state.models.get(&t).cloned().unwrap_or_else(|| "graph".into());
                let mut next = cur.clone();
                crate::studio::labelled_combo(ui, &t.name().replace('_', " "), ("model_for", t.name()), &cur, |ui| {
                    for (name, c) in &cards {
                        if c.targets.contains(&t) {
                            ui.selectable_value(
                                &mut next,
                                name.clone(),
                                format!("{name} ({} × {})", c.architecture.kind_name(), c.n_members),
                            );
                        }
                    }
                });
                let mut path = if shipped::NAMES.contains(&next.as_str()) { String::new() } else { next.clone() };
                if ui
                    .add(
                        egui::TextEdit::singleline(&mut path)
                            .hint_text("or a .pt / .safetensors path")
                            .desired_width(150.0),
                    )
                    .lost_focus()
                    && !path.trim().is_empty()
                {
                    next = path.trim().to_string();
                }
                if next != cur {
                    self.state.models.insert(t, next);
                    if let Some(item) = self.selection.clone() {
                        self.select(item);
                    }
                }
                ui.separator();
            }
        });
        if cards.is_empty() {
            ui.weak("No shipped models found in assets/models/ (train them with the configs there).");
        }
        ui.columns(2, |cols| {
            let ui = &mut cols[0];
            egui::ScrollArea::horizontal().id_salt("model_metrics_scroll").show(ui, |ui| {
                egui::Grid::new("model_metrics").striped(true).num_columns(7).show(ui, |ui| {
                    for (h, tip) in [
                        ("Model", ""),
                        ("Property", ""),
                        ("MAE", "test-split mean absolute error"),
                        ("RMSE", ""),
                        ("R²", ""),
                        ("Cov. 90 %", "fraction of test crystals inside the 90 % conformal interval"),
                        ("Baseline", "MAE of the mean predictor (train-split mean)"),
                    ] {
                        let r = ui.strong(h);
                        if !tip.is_empty() {
                            r.on_hover_text(tip);
                        }
                    }
                    ui.end_row();
                    for (name, c) in &cards {
                        for (t, m) in &c.metrics {
                            let f = |k: &str| {
                                m.get(k)
                                    .and_then(|v| v.as_f64())
                                    .map(|x| format!("{x:.3}"))
                                    .unwrap_or_else(|| "–".into())
                            };
                            ui.label(name);
                            ui.label(t);
                            ui.label(f("mae"));
                            ui.label(f("rmse"));
                            ui.label(f("r2"));
                            ui.label(f("coverage90"));
                            ui.label(f("baseline_mae"));
                            ui.end_row();
                        }
                    }
                })
            });
            ui.add_space(6.0);
            for (name, c) in &cards {
                ui.collapsing(format!("Model card: {name}"), |ui| {
                    ui.label(format!(
                        "{} ensemble of {} members; data: {}",
                        c.architecture.kind_name(),
                        c.n_members,
                        c.data
                    ));
                    ui.label(format!("split: {}", c.split));
                    ui.label(format!(
                        "created {} with geode {}; weights sha256 {}",
                        c.created_at,
                        c.geode_version,
                        &c.weights_sha256[..c.weights_sha256.len().min(16)]
                    ));
                });
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                for name in shipped::NAMES {
                    if ui
                        .button(format!("Retrain {name}…"))
                        .on_hover_text(
                            "Start a training run with the config in assets/models/ (writes into the project's folder)",
                        )
                        .clicked()
                    {
                        match shipped::config(name).ok_or_else(|| "no config".to_string()).and_then(|t| {
                            crate::engine::RunConfig::parse("train", t, true, None).map_err(|e| e.to_string())
                        }) {
                            Ok(crate::engine::RunConfig {
                                spec: crate::engine::RunSpec::Train(mut p), seed, ..
                            }) => {
                                let out = self.project.with_file_name(format!("{name}-retrained.safetensors"));
                                p.out = out.display().to_string();
                                p.name = format!("{name}-retrained");
                                self.start_run(crate::engine::RunSpec::Train(p), seed);
                            }
                            Ok(_) => self.toast(format!("The training config of {name} is not a train run"), true),
                            Err(e) => self.toast(format!("Cannot read the training config of {name}: {e}"), true),
                        }
                    }
                }
            });
            let ui = &mut cols[1];
            let mut which = ui.data(|d| d.get_temp::<usize>(egui::Id::unique("parity_target"))).unwrap_or(0);
            ui.horizontal(|ui| {
                ui.label("Parity (test split):");
                for (k, t) in Target::ALL.iter().enumerate() {
                    if ui.selectable_label(which == k, t.name().replace('_', " ")).clicked() {
                        which = k;
                    }
                }
            });
            ui.data_mut(|d| d.insert_temp(egui::Id::unique("parity_target"), which));
            let target = Target::ALL[which];
            let model = self.state.models.get(&target).cloned().unwrap_or_else(|| "graph".into());
            match self.parity.get(&model) {
                None => {
                    if self.parity_pending(&model) {
                        ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label(format!("Predicting the test split with {model}…"));
                        });
                    } else if ui.button(format!("Compute parity for {model}")).clicked() {
                        self.request_parity(&model);
                    }
                }
                Some(Err(e)) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                Some(Ok(rows)) => {
                    let rows: Vec<_> = rows.iter().filter(|r| r.target == target).collect();
                    let stride = rows.len().div_ceil(MAX_PARITY).max(1);
                    let (lo, hi) = rows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
                        (a.min(r.dft).min(r.predicted.mean), b.max(r.dft).max(r.predicted.mean))
                    });
                    let mae =
                        rows.iter().map(|r| (r.predicted.mean - r.dft).abs()).sum::<f64>() / rows.len().max(1) as f64;
                    ui.weak(format!(
                        "{model}: {} test crystals, MAE {mae:.3} {}; bars are ±σ",
                        rows.len(),
                        target.unit()
                    ));
                    Plot::new(("parity", which))
                        .data_aspect(1.0)
                        .x_axis_label(format!("DFT {}", target.unit()))
                        .y_axis_label(format!("predicted {}", target.unit()))
                        .show(ui, |p| {
                            p.line(
                                Line::new("y = x", PlotPoints::from(vec![[lo, lo], [hi, hi]]))
                                    .color(egui::Color32::GRAY),
                            );
                            for r in rows.iter().step_by(stride) {
                                p.line(
                                    Line::new(
                                        "σ",
                                        PlotPoints::from(vec![
                                            [r.dft, r.predicted.mean - r.predicted.std],
                                            [r.dft, r.predicted.mean + r.predicted.std],
                                        ]),
                                    )
                                    .color(egui::Color32::from_rgba_unmultiplied(120, 160, 220, 90)),
                                );
                            }
                            let pts: Vec<[f64; 2]> =
                                rows.iter().step_by(stride).map(|r| [r.dft, r.predicted.mean]).collect();
                            p.points(
                                Points::new("test", PlotPoints::from(pts))
                                    .radius(1.6)
                                    .color(egui::Color32::from_rgb(70, 130, 220)),
                            );
                        });
                }
            }
        });
    }
}
