//! The inspector: what the selected crystal is (formula, space group, lattice, density, validity),
//! what is known about it (DFT values, candidate properties with uncertainty and provenance), what
//! the models predict (mean ± σ, 90 % interval), the viewer's measurements, and the user's tags and
//! notes for candidates.

use eframe::egui;

use crate::crystal::Structure;
use crate::crystal::symmetry::DEFAULT_SYMPREC_ANG;
use crate::ml::{Target, shipped};
use crate::studio::app::{Item, StudioApp};
use crate::studio::viewer::Measurement;

/// Facts about a structure, computed once per selection.
#[derive(Debug, Clone)]
pub struct ItemInfo {
    pub formula: String,
    pub full_formula: String,
    pub n_sites: usize,
    pub space_group: Option<(u16, String)>,
    pub lattice: crate::crystal::LatticeParams,
    pub volume: f64,
    pub density: f64,
    pub valid: bool,
    pub min_distance: f64,
}

impl ItemInfo {
    pub fn of(s: &Structure) -> ItemInfo {
        let v = s.structural_validity();
        ItemInfo {
            formula: s.reduced_formula(),
            full_formula: s.composition().formula(),
            n_sites: s.n_sites(),
            space_group: if s.n_sites() <= 2000 {
                s.symmetry(DEFAULT_SYMPREC_ANG).ok().map(|d| (d.number as u16, d.symbol()))
            } else {
                None
            },
            lattice: s.lattice.params(),
            volume: s.volume(),
            density: s.density(),
            valid: v.valid,
            min_distance: v.min_distance_ang,
        }
    }
}

fn grid_row(ui: &mut egui::Ui, k: &str, v: impl Into<egui::WidgetText>) {
    ui.label(egui::RichText::new(k).weak());
    ui.label(v);
    ui.end_row();
}

impl StudioApp {
    pub fn inspector_ui(&mut self, ui: &mut egui::Ui) {
        let Some(item) = self.selection.clone() else {
            ui.heading("Inspector");
            ui.weak("Select a crystal in the explorer, a point in the property plot, or open a file.");
            return;
        };
        let key = item.key();
        if !self.info_cache.contains_key(&key)
            && let Some((s, _)) = self.structure_of(&item)
        {
            self.info_cache.insert(key.clone(), ItemInfo::of(&s));
        }
        let Some(info) = self.info_cache.get(&key).cloned() else { return };
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading(&info.formula);
            ui.label(egui::RichText::new(&info.full_formula).weak());
            egui::Grid::new("inspector_structure").num_columns(2).striped(true).show(ui, |ui| {
                grid_row(
                    ui,
                    "Space group",
                    match &info.space_group {
                        Some((n, sym)) => format!("{sym} ({n})"),
                        None => "not determined".into(),
                    },
                );
                grid_row(ui, "Sites", info.n_sites.to_string());
                let p = info.lattice;
                grid_row(ui, "a, b, c", format!("{:.4}, {:.4}, {:.4} Å", p.a, p.b, p.c));
                grid_row(ui, "α, β, γ", format!("{:.3}, {:.3}, {:.3}°", p.alpha_deg, p.beta_deg, p.gamma_deg));
                grid_row(ui, "Volume", format!("{:.3} Å³", info.volume));
                grid_row(ui, "Density", format!("{:.4} g/cm³", info.density));
                grid_row(
                    ui,
                    "Validity",
                    if info.valid {
                        egui::RichText::new(format!("valid (min distance {:.3} Å)", info.min_distance))
                    } else {
                        egui::RichText::new(format!("INVALID (min distance {:.3} Å < 0.5 Å)", info.min_distance))
                            .color(ui.visuals().error_fg_color)
                    },
                );
            });
            ui.separator();
            self.known_properties_ui(ui, &item);
            ui.separator();
            self.predictions_ui(ui, &key);
            let ms = self.viewer.measurements();
            if !ms.is_empty() {
                ui.separator();
                ui.strong("Measurements");
                for m in ms {
                    ui.label(match m {
                        Measurement::Distance { a, b, ang } => format!("{a}–{b}: {ang:.4} Å"),
                        Measurement::Angle { a, b, c, deg } => format!("{a}–{b}–{c}: {deg:.2}°"),
                    });
                }
            }
            if let Item::Candidate(id) = item {
                ui.separator();
                self.annotation_ui(ui, id);
            }
        });
    }

    fn known_properties_ui(&mut self, ui: &mut egui::Ui, item: &Item) {
        match item {
            Item::Dataset(id) => {
                let Some(e) = self.dataset.get(*id) else { return };
                ui.strong("DFT (OQMD)");
                egui::Grid::new("inspector_dft").num_columns(2).striped(true).show(ui, |ui| {
                    grid_row(ui, "Formation energy", format!("{:.4} eV/atom", e.formation_energy_per_atom));
                    grid_row(
                        ui,
                        "Band gap",
                        e.band_gap.map(|g| format!("{g:.3} eV")).unwrap_or_else(|| "not recorded".into()),
                    );
                    grid_row(ui, "E above hull (OQMD)", format!("{:.4} eV/atom", e.e_above_hull));
                    // On the complete OQMD hull (built off the UI thread; queries are cached per system).
                    match crate::energy::PhaseDiagram::complete_if_ready() {
                        Some(pd) => match pd.e_above_hull(&e.structure.composition(), e.formation_energy_per_atom) {
                            Ok(h) => {
                                grid_row(ui, "Above complete hull", format!("{:.4} eV/atom", h.e_above_hull));
                                let phases = h
                                    .decomposition
                                    .products
                                    .iter()
                                    .map(|(k, x)| {
                                        let p = &pd.entries()[*k];
                                        format!(
                                            "{x:.3} {} ({})",
                                            p.composition.reduced_formula(),
                                            super::hull::source_of(&p.name)
                                        )
                                    })
                                    .collect::<Vec<_>>()
                                    .join("\n");
                                grid_row(ui, "Hull phases", phases);
                            }
                            Err(err) => grid_row(ui, "Above complete hull", format!("not on the hull: {err}")),
                        },
                        None => {
                            grid_row(ui, "Above complete hull", "building the complete OQMD hull…");
                            ui.ctx().request_repaint_after(std::time::Duration::from_millis(200));
                        }
                    }
                    grid_row(ui, "Prototype", &e.prototype);
                    grid_row(ui, "Source", format!("OQMD/ICSD {} ({}), {} split", e.id, e.name, e.split.name()));
                });
            }
            Item::Candidate(id) => {
                // A candidate outside the loaded rows is read once and kept until the rows reload.
                if !self.candidates.iter().any(|c| c.id == *id) && self.inspected.as_ref().is_none_or(|c| c.id != *id) {
                    let f = crate::engine::query::Filter::Num {
                        name: "id".into(),
                        op: crate::engine::query::Op::Eq,
                        value: *id as f64,
                    };
                    self.inspected = self
                        .store
                        .as_ref()
                        .and_then(|s| s.query_candidates(Some(&f), None, None, Some(1)).ok())
                        .and_then(|r| r.into_iter().next());
                }
                let Some(c) = self
                    .candidates
                    .iter()
                    .find(|c| c.id == *id)
                    .or(self.inspected.as_ref().filter(|c| c.id == *id))
                    .cloned()
                else {
                    return;
                };
                ui.strong("Candidate");
                egui::Grid::new("inspector_candidate").num_columns(2).striped(true).show(ui, |ui| {
                    grid_row(ui, "Run", c.run_id.map(|r| format!("{r} (seq {})", c.seq)).unwrap_or_else(|| "–".into()));
                    grid_row(ui, "Source", &c.source);
                    grid_row(ui, "Stage", &c.stage);
                    if let Some(o) = c.properties.as_object() {
                        for (k, v) in o {
                            let text = match (
                                v.get("value").and_then(|x| x.as_f64()),
                                v.get("std").and_then(|x| x.as_f64()),
                            ) {
                                (Some(x), Some(s)) => format!("{x:.4} ± {s:.4}"),
                                (Some(x), None) => format!("{x:.4}"),
                                _ => describe_json(v),
                            };
                            // Long values (decompositions, lists) are cut so the panel keeps its width.
                            if text.chars().count() > 48 {
                                ui.label(egui::RichText::new(k).weak());
                                ui.label(format!("{}…", text.chars().take(47).collect::<String>()))
                                    .on_hover_text(&text);
                                ui.end_row();
                            } else {
                                grid_row(ui, k, text);
                            }
                        }
                    }
                });
                if let Some(store) = &self.store
                    && let Ok(parents) = store.candidate_parents(*id)
                    && !parents.is_empty()
                {
                    ui.label(format!(
                        "Parents: {}",
                        parents.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            Item::File { file, index } => {
                if let Some(f) = self.files.get(*file) {
                    ui.strong("File");
                    ui.label(format!("{} [{}]", f.path.display(), index));
                }
            }
        }
    }

    fn predictions_ui(&mut self, ui: &mut egui::Ui, key: &str) {
        ui.horizontal(|ui| {
            ui.strong("Predicted");
            ui.weak("mean ± σ, 90 % interval");
        });
        if self.cards.is_empty() && self.state.models.values().all(|m| shipped::NAMES.contains(&m.as_str())) {
            ui.weak("No shipped models found (assets/models/).");
            return;
        }
        for t in Target::ALL {
            let model = self.state.models.get(&t).cloned().unwrap_or_else(|| "graph".into());
            let name = t.name().replace('_', " ");
            match self.predictions.get(key).and_then(|m| m.get(&model)) {
                Some(Ok(p)) => match p.values.iter().find(|(tt, _)| *tt == t) {
                    Some((_, x)) => {
                        ui.label(format!("{name}: {:.3} ± {:.3} {}", x.mean, x.std, t.unit()));
                        ui.weak(format!("    90 % interval [{:.3}, {:.3}] · {model}", x.lo90, x.hi90));
                    }
                    None => {
                        ui.weak(format!("{name}: {model} does not predict it"));
                    }
                },
                Some(Err(e)) => {
                    let short = if e.contains("no shipped model") {
                        "not available (model weights not found)".to_string()
                    } else {
                        e.chars().take(80).collect::<String>()
                    };
                    ui.add(
                        egui::Label::new(
                            egui::RichText::new(format!("{name}: {model} failed: {short}"))
                                .color(ui.visuals().error_fg_color),
                        )
                        .wrap(),
                    )
                    .on_hover_text(e);
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.weak(format!("{name}: predicting with {model}…"));
                    });
                }
            }
        }
        // The property models' own properties (a user's targets), with units and the domain flag's source.
        for model in self.state.property_models.clone() {
            match self.predictions.get(key).and_then(|m| m.get(&model)) {
                Some(Ok(p)) => {
                    if p.outside_domain == Some(true) {
                        ui.colored_label(
                            ui.visuals().warn_fg_color,
                            format!("outside {model}'s domain of applicability"),
                        )
                        .on_hover_text(
                            "far from the model's training data in its own representation (beyond the 99th \
                                 percentile of the training rows): an extrapolation",
                        );
                    }
                    for (t, x) in p.values.iter().filter(|(t, _)| !Target::ALL.contains(t)) {
                        let name = t.name().replace('_', " ");
                        if t.is_classification() {
                            ui.label(format!("{name}: P = {:.2} (members {:.2}–{:.2})", x.mean, x.lo90, x.hi90));
                        } else {
                            ui.label(format!("{name}: {:.3} ± {:.3} {}", x.mean, x.std, t.unit()));
                            ui.weak(format!("    90 % interval [{:.3}, {:.3}] · {model}", x.lo90, x.hi90));
                        }
                    }
                }
                Some(Err(e)) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("{model} failed")).on_hover_text(e.as_str());
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.weak(format!("predicting with {model}…"));
                    });
                }
            }
        }
        let models: Vec<String> = Target::ALL
            .iter()
            .filter_map(|t| self.state.models.get(t).cloned())
            .chain(self.state.property_models.iter().cloned())
            .collect();
        ui.weak(format!("Models: {} (change in the Models tab)", models.join(", ")));
    }

    fn annotation_ui(&mut self, ui: &mut egui::Ui, id: i64) {
        if self.annotation.as_ref().is_none_or(|a| a.0 != id)
            && let Some(store) = &self.store
        {
            let (fav, tags, notes) = store.annotation(id).unwrap_or_default();
            self.annotation = Some((id, fav, tags, notes));
        }
        let Some((_, fav, tags, notes)) = self.annotation.as_mut() else { return };
        ui.strong("Your notes");
        let mut changed = ui.checkbox(fav, "Favourite").changed();
        ui.horizontal(|ui| {
            ui.label("Tags");
            changed |= ui.add(egui::TextEdit::singleline(tags).hint_text("comma separated")).lost_focus();
        });
        changed |= ui.add(egui::TextEdit::multiline(notes).hint_text("Notes").desired_rows(3)).lost_focus();
        if changed
            && let Some(store) = &self.store
            && let Some((id, fav, tags, notes)) = &self.annotation
        {
            if let Err(e) = store.annotate(*id, Some(*fav), Some(tags), Some(notes)) {
                let msg = format!("Cannot save notes: {e}");
                self.toast(msg, true);
            } else {
                self.candidates_dirty = true;
            }
        }
    }
}

/// A JSON value for people: strings without quotes, decompositions as `0.9 Ta2SnO6 + 0.1 Ta2O5`,
/// substitution lists as `Ca -> Ta, Ti -> Sn` (egui's default font has no arrow glyph), long number vectors
/// abbreviated, anything else compact JSON.
fn describe_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| x.get("formula").is_some() && x.get("fraction").is_some()) => a
            .iter()
            .map(|x| {
                format!("{:.3} {}", x["fraction"].as_f64().unwrap_or(f64::NAN), x["formula"].as_str().unwrap_or("?"))
            })
            .collect::<Vec<_>>()
            .join(" + "),
        Value::Array(a)
            if a.iter().all(|x| x.as_array().is_some_and(|p| p.len() == 2 && p.iter().all(Value::is_string))) =>
        {
            a.iter()
                .filter(|p| p[0] != p[1])
                .map(|p| format!("{} -> {}", p[0].as_str().unwrap_or("?"), p[1].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        }
        // Long numeric vectors (a latent code): the first values and the length, not a 1,000-character row.
        Value::Array(a) if a.len() > 6 && a.iter().all(Value::is_number) => {
            format!(
                "[{}, … ({} numbers)]",
                a.iter()
                    .take(3)
                    .map(|x| format!("{:.3}", x.as_f64().unwrap_or(f64::NAN)))
                    .collect::<Vec<_>>()
                    .join(", "),
                a.len()
            )
        }
        _ => v.to_string(),
    }
}
