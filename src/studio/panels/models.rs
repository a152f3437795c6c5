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
        // The shipped models, then those trained in the project.
        let cards: Vec<_> = self.cards.iter().chain(&self.project_cards).cloned().collect();
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
        // Models of other properties (a user's, or the shipped Matbench ones), shown in the inspector too.
        ui.horizontal_wrapped(|ui| {
            let mut remove = None;
            let mut add = String::new();
            crate::studio::labelled_combo(
                ui,
                "Also predict:",
                ("property_model_add", "combo"),
                "add a model…",
                |ui| {
                    for (name, c) in &cards {
                        if c.targets.iter().any(|t| !Target::ALL.contains(t))
                            && !self.state.property_models.contains(name)
                        {
                            let what: Vec<&str> = c.targets.iter().map(|t| t.name()).collect();
                            ui.selectable_value(&mut add, name.clone(), format!("{name} ({})", what.join(", ")));
                        }
                    }
                },
            )
            .on_hover_text(
                "models of other properties: shown in the inspector, and predicted for every dataset crystal as \
                 columns of the explorer and axes of the property plot",
            );
            for (i, m) in self.state.property_models.iter().enumerate() {
                if ui.small_button(format!("{m} ×")).on_hover_text("stop predicting with this model").clicked() {
                    remove = Some(i);
                }
            }
            if let Some(i) = remove {
                self.state.property_models.remove(i);
            }
            let id = egui::Id::unique("property_model_path");
            let mut path: String = ui.data_mut(|d| d.get_temp_mut_or_default::<String>(id).clone());
            let r = ui.add(
                egui::TextEdit::singleline(&mut path).hint_text("or a .pt / .safetensors path").desired_width(150.0),
            );
            if r.lost_focus() && !path.trim().is_empty() {
                add = path.trim().to_string();
                path.clear();
            }
            ui.data_mut(|d| d.insert_temp(id, path));
            if !add.is_empty() && !self.state.property_models.contains(&add) {
                self.state.property_models.push(add);
                if let Some(item) = self.selection.clone() {
                    self.select(item);
                }
            }
        });
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
            self.train_own_ui(ui);
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                for name in shipped::NAMES.into_iter().filter(|n| shipped::config(n).is_some()) {
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

    /// "Train on your data": a `train` run on the user's labelled files for any named target (the form
    /// `geode model train` fills from its flags). Nothing is read here: the run reads and checks the files.
    fn train_own_ui(&mut self, ui: &mut egui::Ui) {
        let id = egui::Id::unique("train_own_form");
        let mut f: TrainForm = ui.data_mut(|d| d.get_temp_mut_or_default::<TrainForm>(id).clone());
        ui.collapsing("Train on your data…", |ui| {
            egui::Grid::new("train_own_grid").num_columns(2).show(ui, |ui| {
                let l = ui.label("Labelled files").on_hover_text(
                    "CSV (formula or file column), extxyz, ASE .db, pymatgen or Matbench JSON; several separated by ;",
                );
                ui.add(egui::TextEdit::singleline(&mut f.files).hint_text("path/to/data.csv").desired_width(260.0))
                    .labelled_by(l.id);
                ui.end_row();
                let l =
                    ui.label("Target").on_hover_text("the column or key holding the label; it becomes a property name");
                ui.add(egui::TextEdit::singleline(&mut f.target).hint_text("e.g. bulk_modulus").desired_width(160.0))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Unit");
                ui.add(egui::TextEdit::singleline(&mut f.unit).hint_text("e.g. GPa").desired_width(80.0))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Split column").on_hover_text(
                    "optional: the column or key giving each row's split (train, val, test); default: by reduced formula",
                );
                ui.add(egui::TextEdit::singleline(&mut f.split_column).hint_text("optional").desired_width(80.0))
                    .labelled_by(l.id);
                ui.end_row();
                ui.label("Task");
                ui.horizontal(|ui| {
                    ui.radio_value(&mut f.classification, false, "regression");
                    ui.radio_value(&mut f.classification, true, "classification (0/1)");
                });
                ui.end_row();
                ui.label("Model");
                ui.horizontal(|ui| {
                    ui.radio_value(&mut f.kind, "graph".to_string(), "graph (structures)");
                    ui.radio_value(&mut f.kind, "composition".to_string(), "composition (formulas)");
                });
                ui.end_row();
                ui.label("Start from").on_hover_text("fine-tune the shipped model of that kind (transfer learning)");
                ui.checkbox(&mut f.fine_tune, "the shipped model's weights");
                ui.end_row();
                ui.label("Values");
                ui.checkbox(&mut f.non_negative, "never negative (clamp predictions at 0)");
                ui.end_row();
                ui.label("Bad rows");
                ui.checkbox(&mut f.skip_bad, "skip them (each is logged in the run)");
                ui.end_row();
            });
            if ui.button("Train").clicked() {
                match f.spec(&self.project) {
                    Ok(spec) => self.start_run(spec, 0),
                    Err(e) => self.toast(e, true),
                }
            }
        });
        ui.data_mut(|d| d.insert_temp(id, f));
    }
}

/// The "Train on your data" form.
#[derive(Debug, Clone)]
struct TrainForm {
    files: String,
    target: String,
    unit: String,
    classification: bool,
    kind: String,
    fine_tune: bool,
    non_negative: bool,
    split_column: String,
    skip_bad: bool,
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm {
            files: String::new(),
            target: String::new(),
            unit: String::new(),
            classification: false,
            kind: "graph".into(),
            fine_tune: true,
            non_negative: false,
            split_column: String::new(),
            skip_bad: false,
        }
    }
}

impl TrainForm {
    /// The run this form asks for; the model goes beside the project as `TARGET.safetensors`.
    fn spec(&self, project: &std::path::Path) -> Result<crate::engine::RunSpec, String> {
        use crate::ml::train::{DataSource, TrainConfig};
        let files: Vec<String> =
            self.files.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if files.is_empty() {
            return Err("Name at least one labelled file".into());
        }
        let task = if self.classification { crate::ml::Task::Classification } else { crate::ml::Task::Regression };
        let target =
            Target::new(self.target.trim(), self.unit.trim(), task, self.non_negative && !self.classification)?;
        let cfg = TrainConfig {
            name: target.name().to_string(),
            model: self.kind.clone(),
            data: DataSource::Files {
                files,
                target: target.name().to_string(),
                split_column: Some(self.split_column.trim().to_string()).filter(|s| !s.is_empty()),
                skip_bad: self.skip_bad,
                label: None,
            },
            targets: vec![target],
            out: project.with_file_name(format!("{}.safetensors", target.name())).display().to_string(),
            from: self.fine_tune.then(|| self.kind.clone()),
            command: format!("studio: train {} on {}", target.name(), self.files),
            ..TrainConfig::default()
        };
        // The source model's architecture is taken when the run starts (`TrainJob::new`), off this thread.
        cfg.validate()?;
        Ok(crate::engine::RunSpec::Train(cfg))
    }
}
