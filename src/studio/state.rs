//! What the studio remembers between sessions (through eframe's storage), kept apart from results,
//! which live in the project store: theme, panel layout, the last project, viewer settings, explorer
//! filters and model choices.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::viewer::ViewerSettings;
use crate::ml::Target;

/// Tabs of the bottom dock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DockTab {
    Plots,
    Latent,
    Runs,
    Models,
    Screening,
    Hull,
    Evolution,
}

/// The Evolution tab's form (what an `evolve` run is launched with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvolveForm {
    /// `fixed` (a composition), `variable` (every neutral stoichiometry of `elements`) or `prototype`
    /// (element assignments from `elements` on `templates`, no relaxation).
    pub space: String,
    pub composition: String,
    /// Comma-separated elements (variable composition, prototype pool).
    pub elements: String,
    /// Comma-separated templates (prototype space): dataset formulas or ids, aflow:KEY.
    pub templates: String,
    pub min_units: usize,
    pub max_units: usize,
    /// `ga`, `random`, `anneal` or `swarm`.
    pub algorithm: String,
    pub population: usize,
    pub budget: usize,
    /// Shares of random, heredity, strain, permutation, rattle.
    pub shares: [f64; 5],
    /// One objective per line (`energy`, `e_above_hull`, `band_gap in [1, 2]`).
    pub objectives: String,
    /// `chgnet` or `lj:…`.
    pub potential: String,
    /// Relax this many of the best afterwards onto the CHGNet hull.
    pub relax_top: usize,
}

impl Default for EvolveForm {
    fn default() -> Self {
        EvolveForm {
            space: "fixed".into(),
            elements: "Ba, Ti, O".into(),
            templates: "SrTiO3, MgAl2O4".into(),
            composition: "MgO".into(),
            min_units: 1,
            max_units: 4,
            algorithm: "ga".into(),
            population: 10,
            budget: 80,
            shares: [0.2, 0.4, 0.15, 0.1, 0.15],
            objectives: "energy".into(),
            potential: "chgnet".into(),
            relax_top: 0,
        }
    }
}

/// The Screening tab's form (what a `screen` run is launched with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScreenForm {
    /// Dataset formulas or ids, or `aflow:KEY` prototypes, separated by commas or spaces.
    pub templates: String,
    /// Filter of the AFLOW prototype picker (label, Strukturbericht, Pearson, stoichiometry, mineral).
    pub prototype_filter: String,
    pub threshold: f64,
    pub excluded: String,
    pub max_atoms: usize,
    /// One constraint per line, e.g. `band_gap in [1.1, 1.8]`.
    pub constraints: String,
    /// One objective per line, e.g. `min e_above_hull`.
    pub objectives: String,
    pub min_probability: f64,
    /// Relax this many of the best candidates with CHGNet after the funnel.
    pub relax_top: usize,
}

impl Default for ScreenForm {
    fn default() -> Self {
        ScreenForm {
            templates: "SrTiO3, CaTiO3, MgAl2O4, CuAlO2, ZnGeN2".into(),
            prototype_filter: String::new(),
            threshold: 1e-3,
            excluded: "Tl, Hg, Cd, Pb, As".into(),
            max_atoms: 40,
            constraints: "band_gap in [1.1, 1.8]\ne_above_hull < 0.05".into(),
            objectives: "min e_above_hull\nmax band_gap".into(),
            min_probability: 0.2,
            relax_top: 0,
        }
    }
}

/// Tabs of the explorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExplorerTab {
    Dataset,
    Candidates,
    Files,
}

/// A numeric column of the dataset explorer and the property plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Column {
    Id,
    Formula,
    SpaceGroup,
    Atoms,
    FormationEnergy,
    BandGap,
    EAboveHull,
    Density,
    VolumePerAtom,
    /// A property model's prediction for each crystal (a user's property, from an "Also predict" model).
    Predicted(crate::ml::Target),
}

impl Column {
    /// Numeric columns, for plot axes, colour and range filters.
    pub const NUMERIC: [Column; 7] = [
        Column::FormationEnergy,
        Column::BandGap,
        Column::EAboveHull,
        Column::Density,
        Column::VolumePerAtom,
        Column::Atoms,
        Column::SpaceGroup,
    ];

    pub fn label(self) -> String {
        match self {
            Column::Id => "ID",
            Column::Formula => "Formula",
            Column::SpaceGroup => "Space group",
            Column::Atoms => "Atoms",
            Column::FormationEnergy => "ΔHf (eV/atom)",
            Column::BandGap => "Band gap (eV)",
            Column::EAboveHull => "E above hull (eV/atom)",
            Column::Density => "Density (g/cm³)",
            Column::VolumePerAtom => "Volume/atom (Å³)",
            Column::Predicted(t) if t.unit().is_empty() => return format!("{} (predicted)", t.name()),
            Column::Predicted(t) => return format!("{} ({}, predicted)", t.name(), t.unit()),
        }
        .to_string()
    }
}

/// A range filter on a numeric column (inclusive); `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RangeFilter {
    pub column: Column,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UiState {
    pub dark: bool,
    pub show_explorer: bool,
    pub show_inspector: bool,
    pub show_dock: bool,
    pub dock_tab: DockTab,
    pub explorer_tab: ExplorerTab,
    pub last_project: Option<PathBuf>,
    pub viewer: ViewerSettings,
    /// Explorer search text: formula, elements (`Fe O`), `sg:225` or a space-group symbol.
    pub search: String,
    pub ranges: Vec<RangeFilter>,
    pub sort: (Column, bool),
    /// The `--where` filter of the candidates tab.
    pub candidate_filter: String,
    /// Model used for each property in the inspector and the models panel.
    pub models: BTreeMap<Target, String>,
    /// More models (a user's `.safetensors` / `.pt`, or the shipped user-property models) whose properties
    /// the inspector shows too.
    pub property_models: Vec<String>,
    pub plot_x: Column,
    pub plot_y: Column,
    pub plot_color: Column,
    pub screen: ScreenForm,
    pub evolve: EvolveForm,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            dark: true,
            show_explorer: true,
            show_inspector: true,
            show_dock: true,
            dock_tab: DockTab::Plots,
            explorer_tab: ExplorerTab::Dataset,
            last_project: None,
            viewer: ViewerSettings::default(),
            search: String::new(),
            ranges: Vec::new(),
            sort: (Column::Id, false),
            candidate_filter: String::new(),
            models: Target::ALL.iter().map(|t| (*t, "graph".to_string())).collect(),
            property_models: Vec::new(),
            plot_x: Column::FormationEnergy,
            plot_y: Column::BandGap,
            plot_color: Column::EAboveHull,
            screen: ScreenForm::default(),
            evolve: EvolveForm::default(),
        }
    }
}

/// Key of the state in eframe's storage.
pub const STORAGE_KEY: &str = "geode-studio-state";
