//! The project store: one SQLite file (WAL) holding runs, their logs, metrics and checkpoints,
//! candidates with properties and lineage, datasets, trained models and user annotations.
//!
//! Writes from a run are batched: each job step commits its candidates together with the run's new
//! checkpoint in one transaction, so a killed process loses at most the step in flight and a resumed
//! run never duplicates or skips a candidate.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::JobError;
use super::query::Filter;
use crate::crystal::Structure;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        seed INTEGER NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        code_version TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        progress REAL NOT NULL DEFAULT 0,
        stage TEXT NOT NULL DEFAULT '',
        counters TEXT NOT NULL DEFAULT '{}',
        checkpoint TEXT,
        checkpoint_at TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        pid INTEGER
    );
    CREATE TABLE run_logs (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        at TEXT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX run_logs_run ON run_logs(run_id);
    CREATE TABLE run_metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (run_id, name, step)
    );
    CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id),
        seq INTEGER NOT NULL,
        formula TEXT NOT NULL,
        chemical_system TEXT NOT NULL,
        n_sites INTEGER NOT NULL,
        stage TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        structure TEXT NOT NULL,
        properties TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        UNIQUE (run_id, seq)
    );
    CREATE INDEX candidates_formula ON candidates(formula);
    CREATE TABLE candidate_props (
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        name TEXT NOT NULL,
        value REAL NOT NULL,
        std REAL,
        PRIMARY KEY (candidate_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX candidate_props_value ON candidate_props(name, value);
    CREATE TABLE candidate_parents (
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        parent_id INTEGER NOT NULL REFERENCES candidates(id),
        PRIMARY KEY (candidate_id, parent_id)
    ) WITHOUT ROWID;
    CREATE TABLE annotations (
        candidate_id INTEGER PRIMARY KEY REFERENCES candidates(id),
        favourite INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        n_entries INTEGER NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        card TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    "#,
    // 2: the version of each run's stored parameter form (`engine::spec::SPEC_VERSION`).
    r#"
    ALTER TABLE runs ADD COLUMN spec_version INTEGER NOT NULL DEFAULT 1;
    "#,
    // 3: properties a user's models introduced (name, unit), so a later process knows them.
    r#"
    CREATE TABLE user_properties (
        name TEXT PRIMARY KEY,
        unit TEXT NOT NULL,
        description TEXT NOT NULL
    );
    "#,
];

/// `PRAGMA application_id` of a Geode project ("GEOD"), so no other SQLite file is taken for one.
pub const APPLICATION_ID: i32 = 0x4745_4f44;

/// Version of the schema this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Life-cycle state of a run, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Paused,
    Cancelled,
    Failed,
    Finished,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            RunStatus::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "paused" => RunStatus::Paused,
            "cancelled" => RunStatus::Cancelled,
            "failed" => RunStatus::Failed,
            "finished" => RunStatus::Finished,
            _ => return None,
        })
    }

    /// True when the run will not continue unless resumed.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Cancelled | RunStatus::Failed | RunStatus::Finished)
    }
}

/// A predicted or computed property value: mean, standard deviation and an optional interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PropValue {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// The model's calibrated 90 % interval, when the value is a model's prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo90: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hi90: Option<f64>,
}

impl PropValue {
    /// A model's prediction: mean, σ and its 90 % interval.
    pub fn predicted(p: &crate::ml::Prediction) -> PropValue {
        PropValue { value: p.mean, std: Some(p.std), lo90: Some(p.lo90), hi90: Some(p.hi90) }
    }

    /// A value with a standard deviation and no interval.
    pub fn with_std(value: f64, std: f64) -> PropValue {
        PropValue { value, std: Some(std), lo90: None, hi90: None }
    }
}

impl From<f64> for PropValue {
    fn from(value: f64) -> Self {
        PropValue { value, std: None, lo90: None, hi90: None }
    }
}

/// A candidate as a job produces it; the store assigns the id.
#[derive(Debug, Clone)]
pub struct NewCandidate {
    /// Position of the candidate in its run's output (deterministic, unique per run).
    pub seq: i64,
    pub structure: Structure,
    pub stage: String,
    pub source: String,
    /// Numeric properties (filterable with `--where`), e.g. `band_gap` in eV.
    pub props: Vec<(String, PropValue)>,
    /// Other facts (JSON), e.g. the space-group symbol or a decomposition.
    pub extra: serde_json::Map<String, Value>,
    /// Parent candidates (evolutionary lineage): sequence numbers of earlier candidates of the same run
    /// (resolved to store ids when committed); store ids for candidates outside runs.
    pub parents: Vec<i64>,
}

/// A stored candidate.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRow {
    pub id: i64,
    pub run_id: Option<i64>,
    pub seq: i64,
    pub formula: String,
    pub chemical_system: String,
    pub n_sites: i64,
    pub stage: String,
    pub source: String,
    pub properties: Value,
    pub created_at: String,
}

/// A stored run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    /// The parameters as stored (see [`RunRow::spec`] for the typed form).
    pub params: Value,
    /// The version of the stored parameter form.
    pub spec_version: i64,
    pub seed: u64,
    pub priority: i64,
    pub status: String,
    pub code_version: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: f64,
    pub stage: String,
    pub counters: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub n_candidates: i64,
}

impl RunRow {
    /// The run's typed specification.
    pub fn spec(&self) -> Result<crate::engine::spec::RunSpec, JobError> {
        crate::engine::spec::RunSpec::from_stored(&self.kind, &self.params, self.spec_version)
    }
}

/// Sort order for candidate listings.
#[derive(Debug, Clone)]
pub struct SortBy {
    /// A column (`id`, `formula`, `n_sites`) or a property name.
    pub key: String,
    pub descending: bool,
}

impl SortBy {
    /// `band_gap` sorts ascending, `-band_gap` descending; the name must be a registered property
    /// (an unknown one is an error with the closest names, never an unsorted list).
    pub fn parse(text: &str) -> Result<SortBy, JobError> {
        let t = text.trim();
        let (key, descending) = match t.strip_prefix('-') {
            Some(k) => (k.trim(), true),
            None => (t, false),
        };
        let p = crate::data::property::lookup(key).map_err(|e| JobError::Filter(format!("sort key: {e}")))?;
        if p.name == "tag" {
            return Err(JobError::Filter(
                "cannot sort by tag: filter by it instead, e.g. --where \"has_tag('x')\"".into(),
            ));
        }
        Ok(SortBy { key: p.name.to_string(), descending })
    }
}

/// An open project file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// UTC timestamp with second precision, ISO 8601.
pub fn now_iso() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Store {
    /// Open a project file and bring its schema up to date, or create one where no file is. A file that
    /// is not a Geode project (empty, another program's SQLite database, or not SQLite at all) is
    /// refused and left as it was.
    pub fn open(path: &Path) -> Result<Store, JobError> {
        let existed = path.exists();
        if existed {
            Store::check_project(path)?;
        }
        let conn = Connection::open(path).map_err(|e| JobError::store(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| JobError::store(path, e))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(|e| JobError::store(path, e))?;
        let mut store = Store { conn, path: path.to_path_buf() };
        store.migrate()?;
        store.register_user_properties()?;
        Ok(store)
    }

    /// Refuse a file that is not a Geode project, without writing to it.
    fn check_project(path: &Path) -> Result<(), JobError> {
        let not_project = |why: &str| JobError::Store(format!("{} is not a Geode project: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| JobError::Store(format!("{e}: {}", path.display())))?;
        if meta.is_dir() {
            return Err(not_project("it is a folder"));
        }
        if meta.len() == 0 {
            return Err(not_project("the file is empty (remove it, or choose another name)"));
        }
        let mut head = [0u8; 16];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| JobError::Store(format!("{e}: {}", path.display())))?;
        if n < 16 || &head != b"SQLite format 3\0" {
            return Err(not_project("it is not an SQLite file"));
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| JobError::store(path, e))?;
        let app: i32 =
            conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| JobError::store(path, e))?;
        if app == APPLICATION_ID {
            return Ok(());
        }
        // Projects made before the application id was set: a `runs` and a `candidates` table.
        let ours: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'candidates', 'candidate_props')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| JobError::store(path, e))?;
        if app == 0 && ours == 3 { Ok(()) } else { Err(not_project("it is another program's SQLite database")) }
    }

    /// An in-memory store (tests, scratch runs).
    pub fn in_memory() -> Result<Store, JobError> {
        let conn = Connection::open_in_memory().map_err(|e| JobError::store(Path::new(":memory:"), e))?;
        let mut store = Store { conn, path: PathBuf::from(":memory:") };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> JobError {
        JobError::store(&self.path, e)
    }

    fn migrate(&mut self) -> Result<(), JobError> {
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(JobError::Store(format!(
                "project schema version {version} is newer than this Geode's {SCHEMA_VERSION}: {}",
                self.path.display()
            )));
        }
        let app: i32 = self.conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        if app != APPLICATION_ID {
            self.conn.pragma_update(None, "application_id", APPLICATION_ID).map_err(|e| self.err(e))?;
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| JobError::store(&self.path, e))?;
            tx.execute_batch(sql).map_err(|e| JobError::store(&self.path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(|e| JobError::store(&self.path, e))?;
            tx.commit().map_err(|e| JobError::store(&self.path, e))?;
        }
        Ok(())
    }

    /// Register the project's user properties (a user model's targets its runs stored) in the
    /// property registry, so filters, sorts and constraints may name them.
    fn register_user_properties(&self) -> Result<(), JobError> {
        let mut st =
            self.conn.prepare("SELECT name, unit, description FROM user_properties").map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (name, unit, description) = row.map_err(|e| self.err(e))?;
            // A clash (same name, other unit, in this process) leaves the first meaning in force.
            let _ = crate::data::property::register(&name, &unit, &description);
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64, JobError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    // ---- runs ----------------------------------------------------------------------------

    /// Record a new run in state `queued`; returns its id. The spec is stored in its versioned JSON form.
    pub fn create_run(&self, spec: &crate::engine::spec::RunSpec, seed: u64, priority: i64) -> Result<i64, JobError> {
        let (kind, params, version) = spec.to_stored();
        self.conn
            .execute(
                "INSERT INTO runs (kind, params, seed, priority, status, code_version, created_at, spec_version) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)",
                params![kind, params.to_string(), seed as i64, priority, env!("CARGO_PKG_VERSION"), now_iso(), version],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_status(&self, run_id: i64, status: RunStatus, error: Option<&str>) -> Result<(), JobError> {
        let now = now_iso();
        let sql = match status {
            RunStatus::Running => {
                "UPDATE runs SET status=?2, error=?3, started_at=COALESCE(started_at, ?4), finished_at=NULL, pid=?5, cancel_requested=0 WHERE id=?1"
            }
            s if s.is_terminal() => "UPDATE runs SET status=?2, error=?3, finished_at=?4, pid=?5 WHERE id=?1",
            _ => "UPDATE runs SET status=?2, error=?3, pid=?5 WHERE id=?1 AND ?4 IS NOT NULL",
        };
        let pid = (status == RunStatus::Running).then(|| std::process::id() as i64);
        self.conn.execute(sql, params![run_id, status.as_str(), error, now, pid]).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The store id of the candidate a run emitted as number `seq`, if it was committed.
    pub fn candidate_id(&self, run_id: i64, seq: i64) -> Result<Option<i64>, JobError> {
        self.conn
            .query_row("SELECT id FROM candidates WHERE run_id=?1 AND seq=?2", params![run_id, seq], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_result(&self, run_id: i64, result: &Value) -> Result<(), JobError> {
        self.conn
            .execute("UPDATE runs SET result=?2 WHERE id=?1", params![run_id, result.to_string()])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Ask a run (possibly in another process) to stop at its next check.
    pub fn request_cancel(&self, run_id: i64) -> Result<(), JobError> {
        let n = self
            .conn
            .execute("UPDATE runs SET cancel_requested=1 WHERE id=?1", params![run_id])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(JobError::NoSuchRun(run_id));
        }
        Ok(())
    }

    pub fn cancel_requested(&self, run_id: i64) -> Result<bool, JobError> {
        self.conn
            .query_row("SELECT cancel_requested FROM runs WHERE id=?1", params![run_id], |r| r.get::<_, i64>(0))
            .map(|v| v != 0)
            .map_err(|e| self.err(e))
    }

    pub fn log(&self, run_id: i64, level: &str, message: &str) -> Result<(), JobError> {
        self.conn
            .execute(
                "INSERT INTO run_logs (run_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, now_iso(), level, message],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn logs(&self, run_id: i64) -> Result<Vec<(String, String, String)>, JobError> {
        let mut st = self
            .conn
            .prepare("SELECT at, level, message FROM run_logs WHERE run_id=?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn metrics(&self, run_id: i64, name: &str) -> Result<Vec<(i64, f64)>, JobError> {
        let mut st = self
            .conn
            .prepare("SELECT step, value FROM run_metrics WHERE run_id=?1 AND name=?2 ORDER BY step")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![run_id, name], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn run(&self, run_id: i64) -> Result<RunRow, JobError> {
        self.runs_where("WHERE r.id = ?1", params![run_id])?.into_iter().next().ok_or(JobError::NoSuchRun(run_id))
    }

    pub fn runs(&self) -> Result<Vec<RunRow>, JobError> {
        self.runs_where("", params![])
    }

    fn runs_where(&self, clause: &str, p: impl rusqlite::Params) -> Result<Vec<RunRow>, JobError> {
        let sql = format!(
            "SELECT r.id, r.kind, r.params, r.seed, r.priority, r.status, r.code_version, r.created_at, r.started_at, r.finished_at,
                    r.progress, r.stage, r.counters, r.result, r.error,
                    (SELECT COUNT(*) FROM candidates c WHERE c.run_id = r.id), r.spec_version
             FROM runs r {clause} ORDER BY r.id"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(p, |r| {
                let params: String = r.get(2)?;
                let counters: String = r.get(12)?;
                let result: Option<String> = r.get(13)?;
                Ok(RunRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    params: serde_json::from_str(&params).unwrap_or(Value::Null),
                    seed: r.get::<_, i64>(3)? as u64,
                    priority: r.get(4)?,
                    status: r.get(5)?,
                    code_version: r.get(6)?,
                    created_at: r.get(7)?,
                    started_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    progress: r.get(10)?,
                    stage: r.get(11)?,
                    counters: serde_json::from_str(&counters).unwrap_or(Value::Null),
                    result: result.and_then(|s| serde_json::from_str(&s).ok()),
                    error: r.get(14)?,
                    n_candidates: r.get(15)?,
                    spec_version: r.get(16)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The last committed checkpoint of a run (JSON), if any.
    pub fn checkpoint(&self, run_id: i64) -> Result<Option<Value>, JobError> {
        let s: Option<String> = self
            .conn
            .query_row("SELECT checkpoint FROM runs WHERE id=?1", params![run_id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Commit one step of a run atomically: its candidates, metrics, progress and the new checkpoint.
    pub fn commit_step(&mut self, run_id: i64, step: &StepCommit) -> Result<Vec<i64>, JobError> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| JobError::store(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        let ids = insert_candidates(&tx, Some(run_id), &step.candidates).map_err(e)?;
        {
            let mut find = tx.prepare_cached("SELECT id FROM candidates WHERE run_id=?1 AND seq=?2").map_err(e)?;
            let mut prop = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO candidate_props (candidate_id, name, value, std) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            let mut json = tx
                .prepare_cached(
                    "UPDATE candidates SET properties = json_set(properties, '$.' || ?2, json(?3)) WHERE id=?1",
                )
                .map_err(e)?;
            let mut user = tx
                .prepare_cached("INSERT OR IGNORE INTO user_properties (name, unit, description) VALUES (?1, ?2, ?3)")
                .map_err(e)?;
            for (seq, name, v) in &step.prop_updates {
                if let Some(p) = crate::data::property::user(name) {
                    user.execute(params![p.name, p.unit, p.description]).map_err(e)?;
                }
                let id: i64 = find.query_row(params![run_id, seq], |r| r.get(0)).map_err(e)?;
                prop.execute(params![id, name, v.value, v.std]).map_err(e)?;
                json.execute(params![id, name, serde_json::to_string(v).unwrap_or_default()]).map_err(e)?;
            }
        }
        {
            let mut m = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO run_metrics (run_id, name, step, value) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            for (name, s, v) in &step.metrics {
                m.execute(params![run_id, name, s, v]).map_err(e)?;
            }
            let mut ins = tx.prepare_cached("INSERT INTO models (name, kind, path, sha256, metrics, card, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)").map_err(e)?;
            for md in &step.models {
                ins.execute(params![
                    md.name,
                    md.kind,
                    md.path,
                    md.sha256,
                    md.metrics.to_string(),
                    md.card.to_string(),
                    now_iso()
                ])
                .map_err(e)?;
            }
        }
        tx.execute(
            "UPDATE runs SET checkpoint=?2, checkpoint_at=?3, progress=?4, stage=?5, counters=?6 WHERE id=?1",
            params![
                run_id,
                step.checkpoint.to_string(),
                now_iso(),
                step.progress,
                step.stage,
                step.counters.to_string()
            ],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(ids)
    }

    /// Update the live progress fields only (no checkpoint).
    pub fn set_progress(&self, run_id: i64, progress: f64, stage: &str, counters: &Value) -> Result<(), JobError> {
        self.conn
            .execute(
                "UPDATE runs SET progress=?2, stage=?3, counters=?4 WHERE id=?1",
                params![run_id, progress, stage, counters.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    // ---- candidates ----------------------------------------------------------------------

    /// Insert candidates outside any run (imports), in one transaction.
    pub fn insert_candidates(&mut self, candidates: &[NewCandidate]) -> Result<Vec<i64>, JobError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| JobError::store(&path, e))?;
        let ids = insert_candidates(&tx, None, candidates).map_err(|e| JobError::store(&path, e))?;
        tx.commit().map_err(|e| JobError::store(&path, e))?;
        Ok(ids)
    }

    pub fn candidate_count(&self) -> Result<i64, JobError> {
        self.conn.query_row("SELECT COUNT(*) FROM candidates", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// Candidates matching `filter` (all when `None`), optionally of one run, sorted, at most `limit`.
    pub fn query_candidates(
        &self,
        filter: Option<&Filter>,
        run_id: Option<i64>,
        sort: Option<&SortBy>,
        limit: Option<usize>,
    ) -> Result<Vec<CandidateRow>, JobError> {
        let mut clauses = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut join = String::new();
        let mut order = "c.id".to_string();
        if let Some(s) = sort {
            let dir = if s.descending { "DESC" } else { "ASC" };
            let prop = crate::data::property::lookup(&s.key).map_err(|e| JobError::Filter(format!("sort key: {e}")))?;
            match prop.place {
                crate::data::property::Place::Column => order = format!("c.{} {dir}, c.id", prop.name),
                crate::data::property::Place::Annotation if prop.is_numeric() => {
                    order = format!(
                        "COALESCE((SELECT a.{} FROM annotations a WHERE a.candidate_id = c.id), 0) {dir}, c.id",
                        prop.name
                    )
                }
                crate::data::property::Place::Annotation => {
                    return Err(JobError::Filter(format!(
                        "cannot sort by {}: filter by it instead, e.g. --where \"has_tag('shortlist')\"",
                        prop.name
                    )));
                }
                crate::data::property::Place::Stored => {
                    let key = prop.name;
                    args.push(key.to_string().into());
                    join =
                        format!("LEFT JOIN candidate_props sp ON sp.candidate_id = c.id AND sp.name = ?{}", args.len());
                    order = format!("sp.value IS NULL, sp.value {dir}, c.id");
                }
            }
        }
        if let Some(f) = filter {
            let (sql, a) = f.to_sql(args.len() + 1);
            clauses.push(sql);
            args.extend(a);
        }
        if let Some(r) = run_id {
            args.push(r.into());
            clauses.push(format!("c.run_id = ?{}", args.len()));
        }
        let where_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let limit_sql = limit.map(|l| format!("LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT c.id, c.run_id, c.seq, c.formula, c.chemical_system, c.n_sites, c.stage, c.source, c.properties, c.created_at
             FROM candidates c {join} {where_sql} ORDER BY {order} {limit_sql}"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| {
                let props: String = r.get(8)?;
                Ok(CandidateRow {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    seq: r.get(2)?,
                    formula: r.get(3)?,
                    chemical_system: r.get(4)?,
                    n_sites: r.get(5)?,
                    stage: r.get(6)?,
                    source: r.get(7)?,
                    properties: serde_json::from_str(&props).unwrap_or(Value::Null),
                    created_at: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn candidate_structure(&self, id: i64) -> Result<Structure, JobError> {
        let text: String = self
            .conn
            .query_row("SELECT structure FROM candidates WHERE id=?1", params![id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(JobError::NoSuchCandidate(id))?;
        serde_json::from_str(&text).map_err(|e| JobError::Store(format!("candidate {id} has a corrupt structure: {e}")))
    }

    pub fn candidate_parents(&self, id: i64) -> Result<Vec<i64>, JobError> {
        let mut st = self
            .conn
            .prepare("SELECT parent_id FROM candidate_parents WHERE candidate_id=?1 ORDER BY parent_id")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![id], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    // ---- annotations, datasets, models -----------------------------------------------------

    pub fn annotate(
        &self,
        id: i64,
        favourite: Option<bool>,
        tags: Option<&str>,
        notes: Option<&str>,
    ) -> Result<(), JobError> {
        self.conn
            .execute("INSERT OR IGNORE INTO annotations (candidate_id) VALUES (?1)", params![id])
            .map_err(|e| self.err(e))?;
        if let Some(f) = favourite {
            self.conn
                .execute("UPDATE annotations SET favourite=?2 WHERE candidate_id=?1", params![id, f as i64])
                .map_err(|e| self.err(e))?;
        }
        if let Some(t) = tags {
            self.conn
                .execute("UPDATE annotations SET tags=?2 WHERE candidate_id=?1", params![id, t])
                .map_err(|e| self.err(e))?;
        }
        if let Some(n) = notes {
            self.conn
                .execute("UPDATE annotations SET notes=?2 WHERE candidate_id=?1", params![id, n])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// (favourite, tags, notes) of a candidate.
    pub fn annotation(&self, id: i64) -> Result<(bool, String, String), JobError> {
        Ok(self
            .conn
            .query_row("SELECT favourite, tags, notes FROM annotations WHERE candidate_id=?1", params![id], |r| {
                Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or((false, String::new(), String::new())))
    }

    pub fn record_dataset(&self, name: &str, source: &str, n_entries: usize, meta: &Value) -> Result<i64, JobError> {
        self.conn
            .execute(
                "INSERT INTO datasets (name, source, n_entries, meta, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET source=excluded.source, n_entries=excluded.n_entries, meta=excluded.meta",
                params![name, source, n_entries as i64, meta.to_string(), now_iso()],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row("SELECT id FROM datasets WHERE name=?1", params![name], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn record_model(
        &self,
        name: &str,
        kind: &str,
        path: &str,
        sha256: &str,
        metrics: &Value,
        card: &Value,
    ) -> Result<i64, JobError> {
        self.conn
            .execute(
                "INSERT INTO models (name, kind, path, sha256, metrics, card, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![name, kind, path, sha256, metrics.to_string(), card.to_string(), now_iso()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every recorded model, oldest first.
    pub fn models(&self) -> Result<Vec<ModelRow>, JobError> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, kind, path, sha256, metrics, created_at FROM models ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                let metrics: String = r.get(5)?;
                Ok(ModelRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    path: r.get(3)?,
                    sha256: r.get(4)?,
                    metrics: serde_json::from_str(&metrics).unwrap_or(Value::Null),
                    created_at: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Run an arbitrary read-only check (tests): `PRAGMA integrity_check`.
    pub fn integrity_check(&self) -> Result<String, JobError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))
    }
}

/// What one job step commits.
#[derive(Debug, Clone, Default)]
pub struct StepCommit {
    pub candidates: Vec<NewCandidate>,
    /// (sequence number in this run, property, value) for candidates committed earlier.
    pub prop_updates: Vec<(i64, String, PropValue)>,
    pub metrics: Vec<(String, i64, f64)>,
    /// Trained models to record (with the step, so a model is listed exactly when its run says so).
    pub models: Vec<NewModel>,
    pub checkpoint: Value,
    pub progress: f64,
    pub stage: String,
    pub counters: Value,
}

/// A trained model as a job reports it.
#[derive(Debug, Clone, Serialize)]
pub struct NewModel {
    pub name: String,
    pub kind: String,
    /// Where the weights were written.
    pub path: String,
    pub sha256: String,
    pub metrics: Value,
    pub card: Value,
}

/// A stored model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub path: String,
    pub sha256: String,
    pub metrics: Value,
    pub created_at: String,
}

fn insert_candidates(
    tx: &rusqlite::Transaction,
    run_id: Option<i64>,
    candidates: &[NewCandidate],
) -> Result<Vec<i64>, rusqlite::Error> {
    let now = now_iso();
    let mut ins = tx.prepare_cached(
        "INSERT INTO candidates (run_id, seq, formula, chemical_system, n_sites, stage, source, structure, properties, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(run_id, seq) DO NOTHING",
    )?;
    let mut prop = tx.prepare_cached(
        "INSERT OR REPLACE INTO candidate_props (candidate_id, name, value, std) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut par =
        tx.prepare_cached("INSERT OR IGNORE INTO candidate_parents (candidate_id, parent_id) VALUES (?1, ?2)")?;
    let mut user =
        tx.prepare_cached("INSERT OR IGNORE INTO user_properties (name, unit, description) VALUES (?1, ?2, ?3)")?;
    let mut seen_user: std::collections::BTreeSet<&str> = Default::default();
    let mut ids = Vec::with_capacity(candidates.len());
    for c in candidates {
        let comp = c.structure.composition();
        let mut props = c.extra.clone();
        for (k, v) in &c.props {
            props.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
            if !seen_user.contains(k.as_str())
                && let Some(p) = crate::data::property::user(k)
            {
                user.execute(params![p.name, p.unit, p.description])?;
                seen_user.insert(p.name);
            }
        }
        let structure = serde_json::to_string(&c.structure).unwrap_or_default();
        let n = ins.execute(params![
            run_id,
            c.seq,
            comp.reduced_formula(),
            comp.chemical_system(),
            c.structure.n_sites() as i64,
            c.stage,
            c.source,
            structure,
            Value::Object(props).to_string(),
            now
        ])?;
        if n == 0 {
            // Already committed by an earlier attempt of the same step: keep the first.
            continue;
        }
        let id = tx.last_insert_rowid();
        for (k, v) in &c.props {
            if v.value.is_finite() {
                prop.execute(params![id, k, v.value, v.std])?;
            }
        }
        for p in &c.parents {
            let parent: Option<i64> = match run_id {
                Some(r) => tx
                    .query_row("SELECT id FROM candidates WHERE run_id=?1 AND seq=?2", params![r, p], |row| row.get(0))
                    .ok(),
                None => Some(*p),
            };
            if let Some(parent) = parent {
                par.execute(params![id, parent])?;
            }
        }
        ids.push(id);
    }
    Ok(ids)
}
