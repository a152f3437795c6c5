//! The explorer: the dataset (search by formula, elements or space group; range filters; sortable
//! columns; virtualised rows), the project's candidates (`--where` filter), and opened files.

use eframe::egui;
use egui_extras::{Column as TableColumn, TableBuilder};

use crate::crystal::{Composition, Element};
use crate::data::Entry;
use crate::studio::app::{Item, StudioApp, column_value};
use crate::studio::state::{Column, ExplorerTab, RangeFilter};

/// A parsed explorer search. Words are combined with "and":
/// - an element symbol (`Fe`): the crystal contains it;
/// - a formula (`LiFePO4`, `Fe2O3`): the reduced formula equals it;
/// - `sg:225` or a space-group number range `sg:221-230`: the recorded space group;
/// - anything else: a substring of the formula or the prototype label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    elements: Vec<Element>,
    formulas: Vec<String>,
    space_groups: Vec<(u16, u16)>,
    text: Vec<String>,
}

impl Search {
    pub fn parse(s: &str) -> Search {
        let mut out = Search::default();
        for w in s.split_whitespace() {
            if let Some(sg) = w.strip_prefix("sg:").or_else(|| w.strip_prefix("SG:")) {
                let (a, b) = sg.split_once('-').unwrap_or((sg, sg));
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    out.space_groups.push((a, b));
                    continue;
                }
            }
            if let Ok(e) = Element::from_symbol(w) {
                out.elements.push(e);
                continue;
            }
            if w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && let Ok(c) = Composition::from_formula(w)
            {
                out.formulas.push(c.reduced_formula());
                continue;
            }
            out.text.push(w.to_lowercase());
        }
        out
    }

    pub fn matches(&self, e: &Entry) -> bool {
        let comp = e.structure.composition();
        self.elements.iter().all(|el| comp.amount(*el) > 0.0)
            && self.formulas.iter().all(|f| *f == e.formula)
            && self.space_groups.iter().all(|(a, b)| (*a..=*b).contains(&e.space_group))
            && self.text.iter().all(|t| e.formula.to_lowercase().contains(t) || e.prototype.to_lowercase().contains(t))
    }
}

const TABLE_COLUMNS: [Column; 7] = [
    Column::Id,
    Column::Formula,
    Column::SpaceGroup,
    Column::Atoms,
    Column::FormationEnergy,
    Column::BandGap,
    Column::EAboveHull,
];

fn short_label(c: Column) -> &'static str {
    match c {
        Column::Id => "ID",
        Column::Formula => "Formula",
        Column::SpaceGroup => "SG",
        Column::Atoms => "N",
        Column::FormationEnergy => "ΔHf",
        Column::BandGap => "Gap",
        Column::EAboveHull => "E hull",
        Column::Density => "ρ",
        Column::VolumePerAtom => "V/atom",
        Column::Predicted(t) => t.name(),
    }
}

impl StudioApp {
    pub fn explorer_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.state.explorer_tab, ExplorerTab::Dataset, "Dataset");
            ui.selectable_value(
                &mut self.state.explorer_tab,
                ExplorerTab::Candidates,
                format!("Candidates ({})", self.candidates.len()),
            );
            ui.selectable_value(
                &mut self.state.explorer_tab,
                ExplorerTab::Files,
                format!("Files ({})", self.files.len()),
            );
        });
        ui.separator();
        match self.state.explorer_tab {
            ExplorerTab::Dataset => self.dataset_ui(ui),
            ExplorerTab::Candidates => self.candidates_ui(ui),
            ExplorerTab::Files => self.files_ui(ui),
        }
    }

    fn dataset_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.state.search)
                    .hint_text("Fe O · LiFePO4 · sg:225 · perovskite")
                    .desired_width(f32::INFINITY)
                    .id(egui::Id::unique("dataset_search")),
            )
            .labelled_by(label.id);
        });
        ui.collapsing(format!("Filters ({})", self.state.ranges.len() + self.plot_box.is_some() as usize), |ui| {
            let mut remove = None;
            let columns = self.numeric_columns();
            for (i, r) in self.state.ranges.iter_mut().enumerate() {
                ui.horizontal(|ui| {
                    crate::studio::labelled_combo(ui, "Range", ("range_col", i), r.column.label(), |ui| {
                        for &c in &columns {
                            ui.selectable_value(&mut r.column, c, c.label());
                        }
                    });
                    range_bound_ui(ui, "min", &mut r.min);
                    range_bound_ui(ui, "max", &mut r.max);
                    if ui.small_button("×").on_hover_text("Remove this filter").clicked() {
                        remove = Some(i);
                    }
                });
            }
            if let Some(i) = remove {
                self.state.ranges.remove(i);
            }
            ui.horizontal(|ui| {
                if ui.button("Add range filter").clicked() {
                    self.state.ranges.push(RangeFilter { column: Column::BandGap, min: Some(0.5), max: None });
                }
                if self.plot_box.is_some() && ui.button("Clear plot selection").clicked() {
                    self.plot_box = None;
                }
            });
        });
        ui.label(format!("{} of {} crystals", self.filtered.len(), self.dataset.len()));
        let selected_id = match &self.selection {
            Some(Item::Dataset(id)) => Some(*id),
            _ => None,
        };
        let mut clicked = None;
        let mut sort = self.state.sort;
        let ds = self.dataset;
        let rows = &self.filtered;
        let predicted = &self.dataset_predicted;
        // The dataset's columns, then each "Also predict" model's predicted property.
        let table_columns: Vec<Column> =
            TABLE_COLUMNS.into_iter().chain(predicted.values.keys().map(|t| Column::Predicted(*t))).collect();
        let mut table = TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center));
        for &c in &table_columns {
            table = table.column(match c {
                Column::Formula => TableColumn::initial(110.0).at_least(60.0),
                Column::Id => TableColumn::initial(52.0),
                _ => TableColumn::initial(48.0).at_least(30.0),
            });
        }
        table
            .header(20.0, |mut header| {
                for &c in &table_columns {
                    header.col(|ui| {
                        let arrow = if sort.0 == c { if sort.1 { " v" } else { " ^" } } else { "" };
                        if ui
                            .add(
                                egui::Button::new(egui::RichText::new(format!("{}{arrow}", short_label(c))).strong())
                                    .frame(false),
                            )
                            .on_hover_text(match c {
                                Column::Predicted(_) => format!(
                                    "Sort by {}. Values in parentheses lie outside the model's domain of \
                                     applicability (an element it never saw, or far from its training data).",
                                    c.label()
                                ),
                                _ => format!("Sort by {}", c.label()),
                            })
                            .clicked()
                        {
                            sort = if sort.0 == c { (c, !sort.1) } else { (c, false) };
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, rows.len(), |mut row| {
                    let e = &ds.entries[rows[row.index()]];
                    row.set_selected(selected_id == Some(e.id));
                    for &c in &table_columns {
                        row.col(|ui| {
                            let t = match c {
                                Column::Id => e.id.to_string(),
                                Column::Formula => e.formula.clone(),
                                Column::SpaceGroup | Column::Atoms => {
                                    format!("{}", column_value(e, c, predicted).unwrap_or(0.0) as i64)
                                }
                                // A prediction outside its model's domain of applicability, in parentheses.
                                _ if predicted.outside(e, c) => column_value(e, c, predicted)
                                    .map(|v| format!("({v:.3})"))
                                    .unwrap_or_else(|| "–".into()),
                                _ => column_value(e, c, predicted)
                                    .map(|v| format!("{v:.3}"))
                                    .unwrap_or_else(|| "–".into()),
                            };
                            ui.add(egui::Label::new(t).selectable(false).truncate());
                        });
                    }
                    if row.response().clicked() {
                        clicked = Some(e.id);
                    }
                });
            });
        self.state.sort = sort;
        if let Some(id) = clicked {
            self.select(Item::Dataset(id));
        }
    }

    fn candidates_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Where");
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut self.state.candidate_filter)
                        .hint_text("band_gap > 1 and e_above_hull < 0.05")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            if r.lost_focus() || r.changed() {
                self.candidates_dirty = true;
            }
        });
        if let Some(e) = &self.candidate_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if self.candidates.is_empty() {
            ui.weak("No candidates in this project yet. Runs (Runs menu) write their results here.");
            return;
        }
        let selected = match &self.selection {
            Some(Item::Candidate(id)) => Some(*id),
            _ => None,
        };
        let mut clicked = None;
        let rows = &self.candidates;
        TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .column(TableColumn::initial(56.0))
            .column(TableColumn::initial(110.0))
            .column(TableColumn::initial(40.0))
            .column(TableColumn::remainder())
            .header(20.0, |mut h| {
                for t in ["ID", "Formula", "Run", "Properties"] {
                    h.col(|ui| {
                        ui.strong(t);
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, rows.len(), |mut row| {
                    let c = &rows[row.index()];
                    row.set_selected(selected == Some(c.id));
                    row.col(|ui| {
                        ui.label(c.id.to_string());
                    });
                    row.col(|ui| {
                        ui.label(&c.formula);
                    });
                    row.col(|ui| {
                        ui.label(c.run_id.map(|r| r.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        let props: Vec<String> = c
                            .properties
                            .as_object()
                            .map(|o| {
                                o.iter()
                                    .filter_map(|(k, v)| {
                                        v.get("value").and_then(|x| x.as_f64()).map(|x| format!("{k} {x:.3}"))
                                    })
                                    .take(4)
                                    .collect()
                            })
                            .unwrap_or_default();
                        ui.add(egui::Label::new(props.join(", ")).truncate());
                    });
                    if row.response().clicked() {
                        clicked = Some(c.id);
                    }
                });
            });
        if let Some(id) = clicked {
            self.select(Item::Candidate(id));
        }
    }

    fn files_ui(&mut self, ui: &mut egui::Ui) {
        if ui.button("Open structures…").clicked() {
            self.open_dialog();
        }
        if self.files.is_empty() {
            ui.weak("Drop CIF, POSCAR, extxyz, ASE .db or pymatgen JSON files on the window, or use File > Open structures (Ctrl+O)");
            return;
        }
        let mut clicked = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for (fi, f) in self.files.iter().enumerate() {
                let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                ui.label(egui::RichText::new(name).strong()).on_hover_text(f.path.display().to_string());
                for (si, s) in f.structures.iter().enumerate().take(5000) {
                    let item = Item::File { file: fi, index: si };
                    let sel = self.selection.as_ref() == Some(&item);
                    if ui
                        .selectable_label(sel, format!("  [{si}] {} ({} atoms)", s.reduced_formula(), s.n_sites()))
                        .clicked()
                    {
                        clicked = Some(item);
                    }
                }
            }
        });
        if let Some(it) = clicked {
            self.select(it);
        }
    }
}

fn range_bound_ui(ui: &mut egui::Ui, label: &str, v: &mut Option<f64>) {
    let mut on = v.is_some();
    if ui.checkbox(&mut on, label).changed() {
        *v = if on { Some(0.0) } else { None };
    }
    if let Some(x) = v {
        ui.add(egui::DragValue::new(x).speed(0.01).max_decimals(3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    #[test]
    fn search_by_elements_formula_and_space_group() {
        let ds = Dataset::embedded();
        let fe_o = Search::parse("Fe O");
        let n = ds.entries.iter().filter(|e| fe_o.matches(e)).count();
        assert!(n > 50, "{n}");
        assert!(
            ds.entries.iter().filter(|e| fe_o.matches(e)).all(|e| e.formula.contains("Fe") && e.formula.contains('O'))
        );
        let nacl = Search::parse("NaCl");
        assert!(ds.entries.iter().filter(|e| nacl.matches(e)).all(|e| e.formula == "NaCl"));
        let sg = Search::parse("sg:225");
        assert!(ds.entries.iter().filter(|e| sg.matches(e)).all(|e| e.space_group == 225));
        assert!(ds.entries.iter().any(|e| sg.matches(e)));
        assert_eq!(Search::parse("sg:221-230 Cu").space_groups, vec![(221, 230)]);
    }
}
