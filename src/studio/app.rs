//! The studio application: owns the engine, the project store, the worker, the viewer and the UI
//! state; each frame it drains engine events and worker results (`logic`), then lays out the top bar,
//! explorer, inspector, bottom dock and viewer (`ui`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use eframe::egui;

use super::state::{Column, DockTab, ExplorerTab, STORAGE_KEY, UiState};
use super::viewer::{Viewer, ViewerAction};
use super::worker::{ParityRow, Task, TaskResult, Worker};
use crate::crystal::Structure;
use crate::data::Dataset;
use crate::engine::store::{CandidateRow, RunRow};
use crate::engine::{Engine, EventKind, Progress, Store};
use crate::io::Format;

/// How file dialogs are answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialogs {
    /// The desktop's dialogs (rfd, on a background thread).
    Native,
    /// No dialog: open answers nothing, save writes into this folder (tests, scripted sessions).
    Fixed(PathBuf),
}

/// How the studio starts.
#[derive(Debug, Clone)]
pub struct StudioOptions {
    /// Project file; default: the last one, else `~/.local/share/geode/studio.geode`.
    pub project: Option<PathBuf>,
    pub dialogs: Dialogs,
    /// Read and write the UI state through eframe's storage.
    pub persist: bool,
    /// Worker threads of the engine's pool.
    pub threads: usize,
    /// Structure files to open at start.
    pub files: Vec<PathBuf>,
}

impl Default for StudioOptions {
    fn default() -> Self {
        StudioOptions {
            project: None,
            dialogs: Dialogs::Native,
            persist: true,
            threads: crate::engine::runner::default_threads(),
            files: Vec::new(),
        }
    }
}

/// What is selected: a dataset entry (by id), a candidate (store id), or a structure of an opened file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    Dataset(u32),
    Candidate(i64),
    File { file: usize, index: usize },
}

impl Item {
    pub fn key(&self) -> String {
        match self {
            Item::Dataset(id) => format!("dataset:{id}"),
            Item::Candidate(id) => format!("candidate:{id}"),
            Item::File { file, index } => format!("file:{file}:{index}"),
        }
    }
}

/// A structure file the user opened.
pub struct OpenedFile {
    pub path: PathBuf,
    pub structures: Vec<Structure>,
}

/// Answers of file dialogs.
enum DialogAnswer {
    Open(Vec<PathBuf>),
    Export { path: PathBuf, what: ExportWhat },
    Png { path: PathBuf, bytes: Vec<u8> },
    Project(PathBuf),
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExportWhat {
    /// The selected crystal in a structure format, or its properties as CSV (`None`).
    Selected(Option<Format>),
    /// Every crystal of the filtered explorer list.
    List(Option<Format>),
}

/// A transient message at the bottom right.
pub struct Toast {
    pub text: String,
    pub error: bool,
    pub at: Instant,
}

/// One exported item: name, structure and its (column, value) properties.
type ExportRow = (String, Structure, Vec<(String, String)>);

pub struct StudioApp {
    pub state: UiState,
    pub opts: StudioOptions,
    pub dataset: &'static Dataset,
    pub project: PathBuf,
    pub engine: Option<Engine>,
    pub store: Option<Store>,
    pub viewer: Viewer,
    pub selection: Option<Item>,
    pub files: Vec<OpenedFile>,
    /// Dataset rows (indices into `dataset.entries`) passing the explorer's search and filters, sorted.
    pub filtered: Vec<usize>,
    pub(crate) filter_key: String,
    pub candidates: Vec<CandidateRow>,
    /// The Latent map tab (the map is computed on first show).
    pub latent: super::panels::latent::LatentPanel,
    pub candidates_dirty: bool,
    /// Runs added candidates since the last query (re-queried at most every [`CANDIDATE_REFRESH`]).
    pub candidates_stale: bool,
    candidates_refreshed: Option<Instant>,
    candidates_query: super::background::BackgroundQuery<Result<Vec<CandidateRow>, String>>,
    pub candidate_error: Option<String>,
    pub runs: Vec<RunRow>,
    runs_refreshed: Option<Instant>,
    pub progress: HashMap<i64, Progress>,
    pub selected_run: Option<i64>,
    /// The selected relax run's trajectory view (plots and frame player).
    pub trajectory: crate::studio::panels::trajectory::TrajectoryView,
    /// The Screening tab's view of a screen run's survivors, and the query that refreshes it.
    pub screening: super::panels::screening::ScreeningView,
    pub(crate) screening_query: super::background::BackgroundQuery<super::panels::screening::ScreeningView>,
    /// The Evolution tab's view of an evolve run, and the query that refreshes it.
    pub evolution: super::panels::evolution::EvolutionView,
    pub(crate) evolution_query: super::background::BackgroundQuery<super::panels::evolution::EvolutionView>,
    /// The Hull tab: the system typed, its picture, and the dataset's phase diagram (built on first use).
    pub hull_system: String,
    /// The selected crystal's chemical system and number of elements, by item key (for the Hull tab's
    /// "Use system" button; read once per selection, not every frame).
    pub(crate) selected_system: Option<(String, String, usize)>,
    pub hull: super::panels::hull::HullView,
    /// The dataset-only hull (`dataset only` in the Hull tab), built on first use (small).
    pub phase_diagram: Option<std::sync::Arc<crate::energy::PhaseDiagram>>,
    /// The Hull tab shows the embedded dataset's hull instead of the complete OQMD one.
    pub hull_dataset_only: bool,
    /// The Hull tab has a system to draw once its diagram is ready.
    pub hull_pending: bool,
    /// Predictions per item key and model.
    pub predictions: HashMap<String, HashMap<String, super::worker::PredictionResult>>,
    pending: HashSet<(String, String)>,
    pub parity: HashMap<String, Result<Vec<ParityRow>, String>>,
    parity_pending: HashSet<String>,
    /// The "Also predict" models' predictions for the embedded dataset (the plots' predicted axes).
    pub dataset_predicted: DatasetPredicted,
    worker: Worker,
    dialog_tx: Sender<DialogAnswer>,
    dialog_rx: Receiver<DialogAnswer>,
    pub toasts: Vec<Toast>,
    /// Candidate annotation being edited: (id, favourite, tags, notes).
    pub annotation: Option<(i64, bool, String, String)>,
    /// The candidate the inspector shows, when it is not among the loaded rows (read once per reload).
    pub inspected: Option<CandidateRow>,
    /// Box selection in the property plot (x0, x1, y0, y1), filtering the explorer.
    pub plot_box: Option<[f64; 4]>,
    /// The property plot's points, kept between frames.
    pub plot_scatter: super::panels::raster::ScatterCache,
    /// Crystals the property plot leaves out because a predicted axis or colour lies outside its model's
    /// domain (counted when the points are rebuilt).
    pub plot_left_out: usize,
    /// Where the property plot was drawn last (plot ↔ screen coordinates).
    pub plot_transform: Option<egui_plot::PlotTransform>,
    /// Height of the bottom dock as last drawn (points); a tab whose content overflows it makes the
    /// panel grow frame after frame.
    pub dock_height: f32,
    /// The theme's panel colour, which the frame is cleared to (panels themselves have no fill).
    pub background: egui::Color32,
    /// Structure facts per item key (space group etc.), computed once.
    pub info_cache: HashMap<String, super::panels::inspector::ItemInfo>,
    /// Cards of the shipped models, read once at start-up.
    pub cards: Vec<(String, crate::ml::ensemble::ModelCard)>,
    /// The models trained in the open project (by file path), with their cards; read by the worker when
    /// the project opens and whenever a run starts or ends.
    pub project_cards: Vec<(String, crate::ml::ensemble::ModelCard)>,
    pub last_frame_ms: f32,
}

/// The default project file.
pub fn default_project() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("geode").join("studio.geode")
}

impl StudioApp {
    pub fn new(cc: &eframe::CreationContext<'_>, opts: StudioOptions) -> StudioApp {
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            Viewer::install(rs);
        }
        let mut state: UiState = if opts.persist {
            cc.storage.and_then(|s| eframe::get_value(s, STORAGE_KEY)).unwrap_or_default()
        } else {
            UiState::default()
        };
        let ctx = cc.egui_ctx.clone();
        let worker = Worker::start(move || ctx.request_repaint());
        let project = opts.project.clone().or_else(|| state.last_project.clone()).unwrap_or_else(default_project);
        state.last_project = Some(project.clone());
        let (dialog_tx, dialog_rx) = channel();
        let mut app = StudioApp {
            viewer: Viewer::new(1, state.viewer.clone()),
            state,
            opts,
            dataset: Dataset::embedded(),
            project: project.clone(),
            engine: None,
            store: None,
            selection: None,
            files: Vec::new(),
            filtered: Vec::new(),
            filter_key: String::from("\u{0}"),
            candidates: Vec::new(),
            latent: Default::default(),
            candidates_dirty: true,
            candidates_stale: false,
            candidates_refreshed: None,
            candidates_query: Default::default(),
            candidate_error: None,
            runs: Vec::new(),
            runs_refreshed: None,
            progress: HashMap::new(),
            selected_run: None,
            trajectory: Default::default(),
            screening: Default::default(),
            screening_query: Default::default(),
            evolution: Default::default(),
            evolution_query: Default::default(),
            hull_system: "Li-Fe-O".into(),
            selected_system: None,
            hull: Default::default(),
            phase_diagram: None,
            hull_dataset_only: false,
            hull_pending: false,
            predictions: HashMap::new(),
            pending: HashSet::new(),
            parity: HashMap::new(),
            parity_pending: HashSet::new(),
            dataset_predicted: DatasetPredicted::default(),
            worker,
            dialog_tx,
            dialog_rx,
            toasts: Vec::new(),
            annotation: None,
            inspected: None,
            plot_box: None,
            plot_scatter: Default::default(),
            plot_left_out: 0,
            plot_transform: None,
            dock_height: 0.0,
            background: egui::Color32::from_gray(27),
            info_cache: HashMap::new(),
            cards: crate::ml::shipped::cards(),
            project_cards: Vec::new(),
            last_frame_ms: 0.0,
        };
        // A remembered shipped model that is not installed falls back to the best one that is.
        for t in crate::ml::Target::ALL {
            let chosen = app.state.models.get(&t).cloned().unwrap_or_default();
            let installed = app.cards.iter().any(|(n, c)| *n == chosen && c.targets.contains(&t));
            if !installed
                && (chosen.is_empty() || crate::ml::shipped::NAMES.contains(&chosen.as_str()))
                && let Some(best) = crate::ml::shipped::default_for(t)
            {
                app.state.models.insert(t, best.to_string());
            }
        }
        app.open_project(&project);
        app.apply_theme(&cc.egui_ctx);
        let files = app.opts.files.clone();
        app.open_paths(files);
        app
    }

    /// Open (or create) a project file and start an engine on it.
    pub fn open_project(&mut self, path: &Path) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        self.engine = None;
        match Engine::in_background(path, self.opts.threads, 2).and_then(|e| Store::open(path).map(|s| (e, s))) {
            Ok((e, s)) => {
                self.engine = Some(e);
                self.store = Some(s);
                self.project = path.to_path_buf();
                self.state.last_project = Some(path.to_path_buf());
                self.candidates_dirty = true;
                self.runs_refreshed = None;
                self.toast(format!("Project {}", path.display()), false);
            }
            Err(e) => {
                self.store = None;
                self.toast(format!("Cannot open project {}: {e}", path.display()), true);
            }
        }
    }

    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toasts.push(Toast { text: text.into(), error, at: Instant::now() });
    }

    /// Dark or light visuals. Panels are drawn without a fill: the frame is cleared to the panel colour
    /// ([`Self::background`]) instead, which saves painting every pixel of the window a second time
    /// (on a software renderer a full-window fill costs tens of milliseconds per frame).
    pub fn apply_theme(&mut self, ctx: &egui::Context) {
        let mut visuals = if self.state.dark { egui::Visuals::dark() } else { egui::Visuals::light() };
        self.background = visuals.panel_fill;
        visuals.panel_fill = egui::Color32::TRANSPARENT;
        ctx.set_visuals(visuals);
        self.viewer.set_theme(self.state.dark);
    }

    /// The structure of an item, with a title.
    pub fn structure_of(&self, item: &Item) -> Option<(Structure, String)> {
        match item {
            Item::Dataset(id) => self
                .dataset
                .get(*id)
                .map(|e| (e.structure.clone(), format!("{} · OQMD/ICSD {} · {}", e.formula, e.id, e.prototype))),
            Item::Candidate(id) => self.store.as_ref()?.candidate_structure(*id).ok().map(|s| {
                let f = s.reduced_formula();
                (s, format!("{f} · candidate {id}"))
            }),
            Item::File { file, index } => {
                let f = self.files.get(*file)?;
                let s = f.structures.get(*index)?;
                let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Some((
                    s.clone(),
                    if f.structures.len() > 1 {
                        format!("{} · {name} [{index}]", s.reduced_formula())
                    } else {
                        format!("{} · {name}", s.reduced_formula())
                    },
                ))
            }
        }
    }

    /// Select an item: show it in the viewer and ask for its predictions.
    pub fn select(&mut self, item: Item) {
        if let Some((s, title)) = self.structure_of(&item) {
            self.viewer.set_structure(s.clone(), title);
            self.request_predictions(&item, &s);
            self.annotation = None;
            self.selection = Some(item);
        } else {
            self.toast("That crystal is no longer available", true);
        }
    }

    fn request_predictions(&mut self, item: &Item, s: &Structure) {
        let key = item.key();
        let models: HashSet<String> = self.state.models.values().chain(&self.state.property_models).cloned().collect();
        for m in models {
            let done = self.predictions.get(&key).is_some_and(|p| p.contains_key(&m));
            if !done && self.pending.insert((key.clone(), m.clone())) {
                self.worker.send(Task::Predict { key: key.clone(), model: m, structure: Box::new(s.clone()) });
            }
        }
    }

    /// Ask the worker for the dataset predictions of every "Also predict" model not asked yet, and drop
    /// those of models no longer in the list.
    fn request_dataset_predictions(&mut self) {
        let p = &mut self.dataset_predicted;
        let gone: Vec<String> =
            p.requested.keys().filter(|m| !self.state.property_models.contains(m)).cloned().collect();
        for m in gone {
            for t in p.requested.remove(&m).flatten().unwrap_or_default() {
                p.values.remove(&t);
                p.outside.remove(&t);
                // Axes, colours, filters and the sort on the column fall back to the dataset's own.
                let d = UiState::default();
                let col = Column::Predicted(t);
                let st = &mut self.state;
                for (c, default) in
                    [(&mut st.plot_x, d.plot_x), (&mut st.plot_y, d.plot_y), (&mut st.plot_color, d.plot_color)]
                {
                    if *c == col {
                        *c = default;
                    }
                }
                if self.latent.color == col {
                    self.latent.color = Column::BandGap;
                }
                st.ranges.retain(|r| r.column != col);
                if st.sort.0 == col {
                    st.sort = d.sort;
                }
            }
            p.version += 1;
        }
        for m in &self.state.property_models {
            if !p.requested.contains_key(m) {
                p.requested.insert(m.clone(), None);
                self.worker.send(Task::DatasetPredictions { model: m.clone() });
            }
        }
    }

    /// The numeric columns plots, colours and range filters offer: the dataset's own, then each
    /// predicted property that has arrived.
    pub fn numeric_columns(&self) -> Vec<Column> {
        Column::NUMERIC.into_iter().chain(self.dataset_predicted.values.keys().map(|t| Column::Predicted(*t))).collect()
    }

    /// Ask for the parity data of a model (test-split predictions).
    pub fn request_parity(&mut self, model: &str) {
        if !self.parity.contains_key(model) && self.parity_pending.insert(model.to_string()) {
            self.worker.send(Task::Parity { model: model.to_string() });
        }
    }

    pub fn parity_pending(&self, model: &str) -> bool {
        self.parity_pending.contains(model)
    }

    /// Open structure files (read on the worker).
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        for p in paths {
            if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("geode")) {
                self.open_project(&p);
            } else {
                self.worker.send(Task::Load { path: p });
            }
        }
    }

    /// Show an open-file dialog (off the UI thread).
    pub fn open_dialog(&mut self) {
        match &self.opts.dialogs {
            Dialogs::Native => {
                let tx = self.dialog_tx.clone();
                std::thread::spawn(move || {
                    if let Some(paths) = rfd::FileDialog::new()
                        .set_title("Open crystal structures")
                        .add_filter("Structures", &["cif", "vasp", "poscar", "contcar", "xyz", "extxyz", "db", "json"])
                        .add_filter("Geode project", &["geode"])
                        .add_filter("All files", &["*"])
                        .pick_files()
                    {
                        let _ = tx.send(DialogAnswer::Open(paths));
                    }
                });
            }
            Dialogs::Fixed(_) => {
                self.toast("File dialogs are disabled in this session; drop files on the window instead", false)
            }
        }
    }

    /// Ask where to save, then write (`default_name` suggests the file name).
    fn save_dialog(
        &mut self,
        default_name: String,
        filter: (&'static str, &'static [&'static str]),
        then: impl FnOnce(PathBuf) -> DialogAnswer + Send + 'static,
    ) {
        match &self.opts.dialogs {
            Dialogs::Native => {
                let tx = self.dialog_tx.clone();
                std::thread::spawn(move || {
                    if let Some(path) =
                        rfd::FileDialog::new().set_file_name(&default_name).add_filter(filter.0, filter.1).save_file()
                    {
                        let _ = tx.send(then(path));
                    }
                });
            }
            Dialogs::Fixed(dir) => {
                let _ = self.dialog_tx.send(then(dir.join(default_name)));
            }
        }
    }

    /// Export the selection or the filtered list.
    pub fn export(&mut self, what: ExportWhat) {
        let (stem, fmt) = match what {
            ExportWhat::Selected(f) => (
                self.selection
                    .as_ref()
                    .and_then(|i| self.structure_of(i))
                    .map(|(s, _)| s.reduced_formula())
                    .unwrap_or_else(|| "crystal".into()),
                f,
            ),
            ExportWhat::List(f) => ("geode-export".to_string(), f),
        };
        if matches!(what, ExportWhat::Selected(_)) && self.selection.is_none() {
            self.toast("Nothing selected to export", true);
            return;
        }
        let (ext, filter): (&str, (&'static str, &'static [&'static str])) = match fmt {
            Some(Format::Cif) => ("cif", ("CIF", &["cif"])),
            Some(Format::Poscar) => ("vasp", ("POSCAR", &["vasp", "poscar"])),
            Some(Format::Extxyz) => ("extxyz", ("Extended XYZ", &["extxyz", "xyz"])),
            Some(_) => ("json", ("pymatgen JSON", &["json"])),
            None => ("csv", ("CSV", &["csv"])),
        };
        self.save_dialog(format!("{stem}.{ext}"), filter, move |path| DialogAnswer::Export { path, what });
    }

    /// The structures an export covers, with names and property rows.
    fn export_rows(&self, what: ExportWhat) -> Vec<ExportRow> {
        let items: Vec<Item> = match what {
            ExportWhat::Selected(_) => self.selection.iter().cloned().collect(),
            ExportWhat::List(_) => match self.state.explorer_tab {
                ExplorerTab::Dataset => {
                    self.filtered.iter().map(|&i| Item::Dataset(self.dataset.entries[i].id)).collect()
                }
                ExplorerTab::Candidates => self.candidates.iter().map(|c| Item::Candidate(c.id)).collect(),
                ExplorerTab::Files => self
                    .files
                    .iter()
                    .enumerate()
                    .flat_map(|(f, of)| (0..of.structures.len()).map(move |index| Item::File { file: f, index }))
                    .collect(),
            },
        };
        items
            .iter()
            .filter_map(|it| {
                let (s, title) = self.structure_of(it)?;
                let mut props = vec![
                    ("name".to_string(), it.key()),
                    ("formula".to_string(), s.reduced_formula()),
                    ("n_sites".to_string(), s.n_sites().to_string()),
                ];
                if let Item::Dataset(id) = it
                    && let Some(e) = self.dataset.get(*id)
                {
                    props.push(("formation_energy_per_atom".into(), e.formation_energy_per_atom.to_string()));
                    props.push(("band_gap".into(), e.band_gap.map(|g| g.to_string()).unwrap_or_default()));
                    props.push(("e_above_hull".into(), e.e_above_hull.to_string()));
                    props.push(("space_group".into(), e.space_group.to_string()));
                }
                if let Item::Candidate(id) = it
                    && let Some(c) = self.candidates.iter().find(|c| c.id == *id)
                    && let Some(o) = c.properties.as_object()
                {
                    for (k, v) in o {
                        if let Some(x) = v.get("value").and_then(|x| x.as_f64()) {
                            props.push((k.clone(), x.to_string()));
                        }
                    }
                }
                props.push(("density".into(), format!("{:.6}", s.density())));
                Some((title, s, props))
            })
            .collect()
    }

    fn write_export(&mut self, path: PathBuf, what: ExportWhat) {
        let rows = self.export_rows(what);
        if rows.is_empty() {
            self.toast("Nothing to export", true);
            return;
        }
        let fmt = match what {
            ExportWhat::Selected(f) | ExportWhat::List(f) => f,
        };
        let bytes = match fmt {
            Some(f) => {
                let structures: Vec<Structure> = rows
                    .into_iter()
                    .map(|(title, mut s, _)| {
                        s.properties.insert("id".into(), serde_json::json!(title));
                        s
                    })
                    .collect();
                match crate::io::to_string(&structures, f) {
                    Ok(t) => t.into_bytes(),
                    Err(e) => {
                        self.toast(format!("Cannot export: {e}"), true);
                        return;
                    }
                }
            }
            None => {
                let mut keys: Vec<String> = Vec::new();
                for (_, _, p) in &rows {
                    for (k, _) in p {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
                let mut text = keys.join(",") + "\n";
                for (_, _, p) in &rows {
                    let vals: Vec<String> = keys
                        .iter()
                        .map(|k| p.iter().find(|(kk, _)| kk == k).map(|(_, v)| csv_field(v)).unwrap_or_default())
                        .collect();
                    text.push_str(&vals.join(","));
                    text.push('\n');
                }
                text.into_bytes()
            }
        };
        self.worker.send(Task::Write { path, bytes });
    }

    /// Render the viewer at a size and save it as PNG (rendering uses eframe's device).
    fn export_png(&mut self, frame: &eframe::Frame, width: u32, height: u32) {
        let Some(rs) = frame.wgpu_render_state() else {
            self.toast("PNG export needs the wgpu renderer", true);
            return;
        };
        let mut renderer = rs.renderer.write();
        let Some(r) = renderer.callback_resources.get_mut::<super::viewer::render::ViewerRenderer>() else { return };
        match r.render_to_rgba(
            &rs.device,
            &rs.queue,
            self.viewer.draw_data(),
            &self.viewer.camera,
            [width, height],
            self.viewer.background(),
        ) {
            Ok(rgba) => match super::viewer::encode_png(&rgba, width, height) {
                Ok(png) => {
                    drop(renderer);
                    let stem = self.viewer.structure().map(|s| s.reduced_formula()).unwrap_or_else(|| "crystal".into());
                    self.save_dialog(format!("{stem}.png"), ("PNG image", &["png"]), move |path| DialogAnswer::Png {
                        path,
                        bytes: png,
                    });
                }
                Err(e) => self.toast(format!("Cannot encode PNG: {e}"), true),
            },
            Err(e) => self.toast(format!("Cannot render PNG: {e}"), true),
        }
    }

    /// Copy the selected crystal as CIF text.
    pub fn copy_cif(&mut self, ctx: &egui::Context) {
        match self.selection.as_ref().and_then(|i| self.structure_of(i)) {
            Some((s, title)) => {
                ctx.copy_text(crate::io::cif::write(&s, &title.replace([' ', '·'], "_")));
                self.toast("CIF copied to the clipboard", false);
            }
            None => self.toast("Nothing selected to copy", true),
        }
    }

    /// Relax the selected crystal with CHGNet as a `relax` run: dataset entries by id, anything else through
    /// a JSON copy next to the project (`<project>-inputs/`), which the run reads.
    pub fn relax_selected(&mut self) {
        let Some(item) = self.selection.clone() else { return };
        let input = match &item {
            Item::Dataset(id) => format!("oqmd-icsd-{id}"),
            other => {
                let Some((s, _)) = self.structure_of(other) else { return };
                let dir = self.project.with_file_name(format!(
                    "{}-inputs",
                    self.project
                        .file_stem()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "project".into())
                ));
                let path = dir.join(format!("relax-{}.json", other.key().replace(':', "-")));
                if let Err(e) = std::fs::create_dir_all(&dir)
                    .map_err(|e| e.to_string())
                    .and_then(|_| crate::io::write_structures(&path, &[s], None).map_err(|e| e.to_string()))
                {
                    self.toast(format!("Cannot write the input for the relaxation: {e}"), true);
                    return;
                }
                path.display().to_string()
            }
        };
        let params =
            crate::engine::jobs::relax::RelaxParams { structures: vec![input], frame_every: 5, ..Default::default() };
        self.start_run(crate::engine::RunSpec::Relax(params), 0);
    }

    /// Start a run on the engine and show it in the Runs tab.
    pub fn start_run(&mut self, spec: crate::engine::RunSpec, seed: u64) {
        self.submit_run(spec, seed, true);
    }

    /// Start a run on the engine; `show` switches the dock to the Runs tab. The run's id, or `None`
    /// (with a toast saying why: the spec is checked at submission, cheaply, on this thread).
    pub fn submit_run(&mut self, spec: crate::engine::RunSpec, seed: u64, show: bool) -> Option<i64> {
        let kind = spec.kind();
        let Some(engine) = &self.engine else {
            self.toast("No project open", true);
            return None;
        };
        match engine.submit(&spec, seed, 0) {
            Ok(id) => {
                self.selected_run = Some(id);
                if show {
                    self.state.dock_tab = DockTab::Runs;
                }
                self.runs_refreshed = None;
                self.toast(format!("Run {id} ({kind}) queued"), false);
                Some(id)
            }
            Err(e) => {
                self.toast(format!("Cannot start {kind}: {e}"), true);
                None
            }
        }
    }

    /// Drain engine events, worker results and dialog answers; refresh cached store views.
    pub fn logic(&mut self, ctx: &egui::Context, frame: &eframe::Frame) {
        let mut runs_changed = false;
        if let Some(engine) = &self.engine {
            for ev in engine.events().try_iter() {
                match ev.kind {
                    EventKind::Progress(p) => {
                        self.progress.insert(ev.run_id, p);
                    }
                    EventKind::Candidates(_) => self.candidates_stale = true,
                    EventKind::Finished { .. } | EventKind::Started => runs_changed = true,
                    EventKind::Metric { .. } | EventKind::Log { .. } => {}
                }
            }
        }
        self.request_dataset_predictions();
        for r in self.worker.drain() {
            match r {
                TaskResult::Predicted { key, model, result } => {
                    self.pending.remove(&(key.clone(), model.clone()));
                    self.predictions.entry(key).or_default().insert(model, result);
                }
                TaskResult::ProjectModels { project, result } if project == self.project => match result {
                    Ok(cards) => self.project_cards = cards,
                    Err(e) => self.toast(format!("{}: cannot list its models ({e})", project.display()), true),
                },
                TaskResult::ProjectModels { .. } => {}
                TaskResult::Parity { model, result } => {
                    self.parity_pending.remove(&model);
                    self.parity.insert(model, result);
                }
                // A model removed from the list meanwhile is not shown.
                TaskResult::DatasetPredictions { model, result }
                    if self.dataset_predicted.requested.contains_key(&model) =>
                {
                    match result {
                        Ok(columns) => {
                            let p = &mut self.dataset_predicted;
                            p.version += 1;
                            p.requested.insert(model, Some(columns.iter().map(|c| c.target).collect()));
                            for c in columns {
                                p.outside.insert(c.target, c.outside);
                                p.values.insert(c.target, c.values);
                            }
                        }
                        Err(e) => self.toast(format!("{model}: no predictions for the dataset ({e})"), true),
                    }
                }
                TaskResult::DatasetPredictions { .. } => {}
                TaskResult::Loaded { path, result } => match result {
                    Ok(structures) if !structures.is_empty() => {
                        let n = structures.len();
                        self.files.push(OpenedFile { path: path.clone(), structures });
                        let file = self.files.len() - 1;
                        self.state.explorer_tab = ExplorerTab::Files;
                        self.select(Item::File { file, index: 0 });
                        self.toast(
                            format!("Opened {} ({n} structure{})", path.display(), if n == 1 { "" } else { "s" }),
                            false,
                        );
                    }
                    Ok(_) => self.toast(format!("{} holds no structure", path.display()), true),
                    Err(e) => self.toast(e, true),
                },
                TaskResult::Written { path, result } => match result {
                    Ok(()) => self.toast(format!("Wrote {}", path.display()), false),
                    Err(e) => self.toast(e, true),
                },
            }
        }
        while let Ok(a) = self.dialog_rx.try_recv() {
            match a {
                DialogAnswer::Open(paths) => self.open_paths(paths),
                DialogAnswer::Export { path, what } => self.write_export(path, what),
                DialogAnswer::Png { path, bytes } => self.worker.send(Task::Write { path, bytes }),
                DialogAnswer::Project(p) => self.open_project(&p),
            }
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        if !dropped.is_empty() {
            self.open_paths(dropped);
        }
        if (runs_changed || self.runs_refreshed.is_none()) && self.store.is_some() {
            self.worker.send(Task::ProjectModels { project: self.project.clone() });
        }
        if runs_changed || self.runs_refreshed.is_none_or(|t| t.elapsed() > Duration::from_millis(500)) {
            if let Some(store) = &self.store {
                self.runs = store.runs().unwrap_or_default();
            }
            self.runs_refreshed = Some(Instant::now());
        }
        self.poll_candidates(ctx);
        self.refresh_filter();
        self.toasts.retain(|t| t.at.elapsed() < Duration::from_secs(if t.error { 8 } else { 4 }));
        let _ = frame;
    }

    /// Keep the candidates tab current without blocking frames: a query runs on a thread of its own
    /// (reading thousands of rows and their JSON properties takes tens of milliseconds), at once when
    /// the user changed something (`candidates_dirty`), at most every [`CANDIDATE_REFRESH`] while runs
    /// stream new candidates (`candidates_stale`). Results replace the rows when they arrive.
    fn poll_candidates(&mut self, ctx: &egui::Context) {
        if let Some(r) = self.candidates_query.poll() {
            match r.and_then(|rows| rows) {
                Ok(rows) => {
                    self.candidates = rows;
                    self.candidate_error = None;
                    self.inspected = None;
                }
                Err(e) => self.candidate_error = Some(e),
            }
        }
        let due = self.candidates_dirty
            || (self.candidates_stale && self.candidates_refreshed.is_none_or(|t| t.elapsed() >= CANDIDATE_REFRESH));
        if !due || self.candidates_query.busy() {
            return;
        }
        self.candidates_dirty = false;
        self.candidates_stale = false;
        self.candidates_refreshed = Some(Instant::now());
        if self.store.is_none() {
            return;
        }
        let filter = self.state.candidate_filter.trim().to_string();
        let project = self.project.clone();
        let started = self.candidates_query.start(ctx, "geode-candidates", move || {
            let parsed = if filter.is_empty() {
                None
            } else {
                Some(crate::engine::query::Filter::parse(&filter).map_err(|e| e.to_string())?)
            };
            Store::open(&project)
                .and_then(|s| s.query_candidates(parsed.as_ref(), None, None, Some(20_000)))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = started {
            self.candidate_error = Some(e);
        }
    }

    /// Whether the candidates tab is waiting for rows (a change not yet queried, or a query running).
    pub fn candidates_loading(&self) -> bool {
        self.candidates_dirty || self.candidates_query.busy()
    }

    /// Whether the Screening or Evolution tab is re-reading its run.
    pub fn run_views_loading(&self) -> bool {
        self.screening_query.busy() || self.evolution_query.busy()
    }

    /// Recompute the dataset explorer rows when the search, filters or sort changed.
    pub fn refresh_filter(&mut self) {
        let key = format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{}",
            self.state.search,
            self.state.ranges,
            self.state.sort,
            self.plot_box,
            self.latent.region,
            self.dataset_predicted.version
        );
        if key == self.filter_key {
            return;
        }
        self.filter_key = key;
        let search = super::panels::explorer::Search::parse(&self.state.search);
        let ds = self.dataset;
        let latent_region = self.latent.region.zip(self.latent_current_map());
        let p = &self.dataset_predicted;
        let mut rows: Vec<usize> = (0..ds.entries.len())
            .filter(|&i| {
                let e = &ds.entries[i];
                search.matches(e)
                    && self.state.ranges.iter().all(|r| {
                        let v = column_value(e, r.column, p);
                        v.is_some_and(|v| r.min.is_none_or(|m| v >= m) && r.max.is_none_or(|m| v <= m))
                    })
                    && self.plot_box.is_none_or(|b| {
                        let (x, y) = (column_value(e, self.state.plot_x, p), column_value(e, self.state.plot_y, p));
                        x.zip(y).is_some_and(|(x, y)| x >= b[0] && x <= b[1] && y >= b[2] && y <= b[3])
                    })
                    && latent_region.as_ref().is_none_or(|(b, map)| {
                        map.points.get(i).is_some_and(|p| p[0] >= b[0] && p[0] <= b[1] && p[1] >= b[2] && p[1] <= b[3])
                    })
            })
            .collect();
        let (col, desc) = self.state.sort;
        match col {
            Column::Formula => rows.sort_by(|&a, &b| ds.entries[a].formula.cmp(&ds.entries[b].formula)),
            Column::Id => rows.sort_by_key(|&i| ds.entries[i].id),
            c => rows.sort_by(|&a, &b| {
                column_value(&ds.entries[a], c, p)
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&column_value(&ds.entries[b], c, p).unwrap_or(f64::NEG_INFINITY))
            }),
        }
        if desc {
            rows.reverse();
        }
        self.filtered = rows;
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let sc = |m, k| KeyboardShortcut::new(m, k);
        if ctx.input_mut(|i| i.consume_shortcut(&sc(Modifiers::COMMAND, Key::O))) {
            self.open_dialog();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&sc(Modifiers::COMMAND, Key::E))) {
            self.export(ExportWhat::Selected(Some(Format::Cif)));
        }
        if ctx.input_mut(|i| i.consume_shortcut(&sc(Modifiers::COMMAND | Modifiers::SHIFT, Key::C))) {
            self.copy_cif(ctx);
        }
        if ctx.input_mut(|i| i.consume_shortcut(&sc(Modifiers::COMMAND, Key::T))) {
            self.state.dark = !self.state.dark;
            self.apply_theme(ctx);
        }
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        for (k, axis) in [(Key::Num1, 0), (Key::Num2, 1), (Key::Num3, 2)] {
            if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, k)) {
                self.viewer.view_along(axis);
            }
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::R)) {
            self.viewer.reset_camera();
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) {
            self.viewer.selected.clear();
            self.viewer.rebuild();
        }
        // Up/down walk the explorer's dataset list.
        let step = if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::ArrowDown)) {
            1
        } else if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::ArrowUp)) {
            -1
        } else {
            0
        };
        if step != 0 && self.state.explorer_tab == ExplorerTab::Dataset && !self.filtered.is_empty() {
            let cur = match &self.selection {
                Some(Item::Dataset(id)) => self.filtered.iter().position(|&i| self.dataset.entries[i].id == *id),
                _ => None,
            };
            let next = match cur {
                Some(p) => (p as i64 + step).clamp(0, self.filtered.len() as i64 - 1) as usize,
                None => 0,
            };
            self.select(Item::Dataset(self.dataset.entries[self.filtered[next]].id));
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui, frame: &eframe::Frame) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open structures…  Ctrl+O").clicked() {
                    self.open_dialog();
                }
                if ui.button("Open project…").clicked() {
                    let tx = self.dialog_tx.clone();
                    if self.opts.dialogs == Dialogs::Native {
                        std::thread::spawn(move || {
                            if let Some(p) = rfd::FileDialog::new().add_filter("Geode project", &["geode"]).pick_file()
                            {
                                let _ = tx.send(DialogAnswer::Project(p));
                            }
                        });
                    }
                }
                if ui.button("New project…").clicked() && self.opts.dialogs == Dialogs::Native {
                    let tx = self.dialog_tx.clone();
                    std::thread::spawn(move || {
                        if let Some(p) = rfd::FileDialog::new()
                            .set_file_name("project.geode")
                            .add_filter("Geode project", &["geode"])
                            .save_file()
                        {
                            let _ = tx.send(DialogAnswer::Project(p));
                        }
                    });
                }
                ui.separator();
                ui.menu_button("Export selected crystal", |ui| {
                    for (label, f) in [
                        ("CIF…  Ctrl+E", Some(Format::Cif)),
                        ("POSCAR…", Some(Format::Poscar)),
                        ("Extended XYZ…", Some(Format::Extxyz)),
                        ("pymatgen JSON…", Some(Format::PymatgenJson)),
                        ("Properties as CSV…", None),
                    ] {
                        if ui.button(label).clicked() {
                            self.export(ExportWhat::Selected(f));
                        }
                    }
                });
                ui.menu_button("Export explorer list", |ui| {
                    for (label, f) in [
                        ("CIF (one block per crystal)…", Some(Format::Cif)),
                        ("Extended XYZ…", Some(Format::Extxyz)),
                        ("pymatgen JSON…", Some(Format::PymatgenJson)),
                        ("Properties as CSV…", None),
                    ] {
                        if ui.button(label).clicked() {
                            self.export(ExportWhat::List(f));
                        }
                    }
                });
                if ui.button("Copy CIF  Ctrl+Shift+C").clicked() {
                    self.copy_cif(ui.ctx());
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                if ui.checkbox(&mut self.state.dark, "Dark theme  Ctrl+T").changed() {
                    self.apply_theme(ui.ctx());
                }
                ui.checkbox(&mut self.state.show_explorer, "Explorer");
                ui.checkbox(&mut self.state.show_inspector, "Inspector");
                ui.checkbox(&mut self.state.show_dock, "Plots, runs and models");
                ui.separator();
                ui.label("Viewer: 1/2/3 view along a/b/c, R reset, Esc clear selection");
                ui.label("Drag to orbit, right-drag or Shift+drag to pan, scroll to zoom");
            });
            ui.menu_button("Runs", |ui| {
                if ui.button("Analyse 500 dataset crystals (symmetry, validity, duplicates)").clicked() {
                    self.start_run(
                        crate::engine::RunSpec::Analyze(crate::engine::jobs::analyze::AnalyzeParams {
                            sample: Some(500),
                            ..Default::default()
                        }),
                        0,
                    );
                }
                if ui.button("Analyse the whole dataset").clicked() {
                    self.start_run(crate::engine::RunSpec::Analyze(Default::default()), 0);
                }
                let relax = ui
                    .add_enabled(self.selection.is_some(), egui::Button::new("Relax the selected crystal with CHGNet"));
                if relax
                    .on_hover_text("FIRE on positions and cell, fmax 0.05 eV/A; the trajectory appears in the Runs tab")
                    .clicked()
                {
                    self.relax_selected();
                }
                ui.separator();
                if ui.button("Show runs").clicked() {
                    self.state.show_dock = true;
                    self.state.dock_tab = DockTab::Runs;
                }
            });
            ui.separator();
            let name = self.project.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            ui.label(format!("Project: {name}")).on_hover_text(self.project.display().to_string());
            ui.label(format!("Dataset: OQMD/ICSD, {} crystals", self.dataset.len()));
            let running: Vec<&RunRow> = self
                .runs
                .iter()
                .filter(|r| r.status == "running" || r.status == "queued" || r.status == "paused")
                .collect();
            if !running.is_empty() {
                ui.separator();
                for r in running.iter().take(3) {
                    let p = self
                        .progress
                        .get(&r.id)
                        .filter(|_| r.status == "running")
                        .map(|p| p.fraction)
                        .unwrap_or(r.progress);
                    let label = format!("{} {} {}", r.kind, r.id, r.status);
                    if ui.add(egui::ProgressBar::new(p as f32).desired_width(120.0).text(label)).clicked() {
                        self.state.show_dock = true;
                        self.state.dock_tab = DockTab::Runs;
                        self.selected_run = Some(r.id);
                    }
                }
            }
            let _ = frame;
        });
    }

    fn toasts_ui(&self, ctx: &egui::Context) {
        if self.toasts.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("toasts")).anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -12.0)).show(
            ctx,
            |ui| {
                for t in self.toasts.iter().rev().take(4) {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        let text = egui::RichText::new(&t.text);
                        ui.label(if t.error { text.color(ui.visuals().error_fg_color) } else { text });
                    });
                }
            },
        );
    }
}

/// A dataset entry's value in a numeric column.
/// Property models' predictions for the embedded dataset's crystals, by property, then entry id.
#[derive(Default)]
pub struct DatasetPredicted {
    pub values: std::collections::BTreeMap<crate::ml::Target, HashMap<u32, f64>>,
    /// Per property, the entry ids outside its model's domain of applicability (the explorer shows their
    /// values in parentheses; the property plot leaves them out and says how many).
    pub outside: std::collections::BTreeMap<crate::ml::Target, HashSet<u32>>,
    /// Bumped when predictions arrive, so cached plots and filters are rebuilt.
    pub version: u64,
    /// Models whose predictions were asked for, with their targets once they arrived.
    requested: HashMap<String, Option<Vec<crate::ml::Target>>>,
}

impl DatasetPredicted {
    /// Whether `e`'s value in column `c` is a prediction outside its model's domain of applicability.
    pub fn outside(&self, e: &crate::data::Entry, c: Column) -> bool {
        matches!(c, Column::Predicted(t) if self.outside.get(&t).is_some_and(|o| o.contains(&e.id)))
    }
}

/// A dataset crystal's value in a numeric column (`predicted` holds the [`Column::Predicted`] ones).
pub fn column_value(e: &crate::data::Entry, c: Column, predicted: &DatasetPredicted) -> Option<f64> {
    Some(match c {
        Column::Predicted(t) => return predicted.values.get(&t).and_then(|v| v.get(&e.id)).copied(),
        Column::Id => e.id as f64,
        Column::Formula => return None,
        Column::SpaceGroup => e.space_group as f64,
        Column::Atoms => e.structure.n_sites() as f64,
        Column::FormationEnergy => e.formation_energy_per_atom,
        Column::BandGap => return e.band_gap,
        Column::EAboveHull => e.e_above_hull,
        Column::Density => e.structure.density(),
        Column::VolumePerAtom => e.structure.volume() / e.structure.n_sites() as f64,
    })
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}

/// How often the candidates tab re-reads the project while runs add candidates.
pub const CANDIDATE_REFRESH: Duration = Duration::from_millis(1000);

impl eframe::App for StudioApp {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        StudioApp::logic(self, ctx, frame);
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        self.shortcuts(&ctx);
        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar_ui(ui, frame));
        if self.state.show_explorer {
            egui::Panel::left("explorer")
                .resizable(true)
                .default_size(360.0)
                .min_size(240.0)
                .max_size(700.0)
                .show(ui, |ui| self.explorer_ui(ui));
        }
        if self.state.show_inspector {
            egui::Panel::right("inspector")
                .resizable(true)
                .default_size(330.0)
                .min_size(240.0)
                .max_size(560.0)
                .show(ui, |ui| self.inspector_ui(ui));
        }
        if self.state.show_dock {
            self.dock_height = egui::Panel::bottom("dock")
                .resizable(true)
                .default_size(380.0)
                .min_size(140.0)
                .show(ui, |ui| self.dock_ui(ui))
                .response
                .rect
                .height();
        }
        let mut action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            action = self.viewer.toolbar_ui(ui);
            ui.separator();
            self.viewer.view_ui(ui);
        });
        if let Some(ViewerAction::ExportPng { width, height }) = action {
            self.export_png(frame, width, height);
        }
        self.state.viewer = self.viewer.settings.clone();
        self.toasts_ui(&ctx);
        if self.runs.iter().any(|r| r.status == "running") {
            ctx.request_repaint_after(Duration::from_millis(200));
        }
        self.last_frame_ms = t0.elapsed().as_secs_f32() * 1000.0;
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        self.background.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.opts.persist {
            eframe::set_value(storage, STORAGE_KEY, &self.state);
        }
    }
}
