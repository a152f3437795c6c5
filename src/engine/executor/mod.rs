//! Executors: where a run's expensive evaluations (relaxations now; DFT later) are computed. The run's
//! config names one in its `[executor]` table; the job decides what is expensive, the executor only where it
//! runs.
//!
//! - `local` (the default): in this process, on the shared pool, relaxations batched on one machine.
//! - `slurm`: task folders on a filesystem the cluster's nodes share, submitted with `sbatch --array`,
//!   followed with `squeue` (and `scontrol show job` for jobs that left the queue), collected as they land.
//!
//! Work travels as task folders named by a content hash of (inputs, evaluator settings, code version)
//! ([`task`]): a task is computed once, so resubmitting, resuming or running a campaign twice reuses
//! finished results. `geode worker` runs them on a node ([`worker`]); [`coordinator`] submits, follows,
//! collects and resubmits; [`slurm`] builds the Slurm commands from arguments (never from pasted text).

pub mod access;
pub mod coordinator;
pub mod slurm;
pub mod task;
pub mod worker;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::JobError;

/// Where a run's expensive evaluations go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ExecutorSpec {
    /// This process, on the shared pool (relaxations batched).
    #[default]
    Local,
    /// A Slurm cluster, from this machine or over SSH.
    Slurm(Box<SlurmProfile>),
}

/// A Slurm profile: what `sbatch` is asked for and where the task folders live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmProfile {
    /// `--partition`; absent: the cluster's default.
    pub partition: Option<String>,
    /// `--account`; absent: the user's default.
    pub account: Option<String>,
    /// `--time` of each array task (`[D-]HH:MM:SS`).
    pub time_limit: String,
    /// `--cpus-per-task`; also the worker's thread count.
    pub cpus_per_task: u32,
    /// `--gpus-per-task`; 0: none requested.
    pub gpus_per_task: u32,
    /// Most array elements per `sbatch` (the cluster's MaxArraySize − 1 at most); more tasks make several arrays.
    pub array_size_limit: usize,
    /// Most array elements running at once (`--array=…%N`); absent: no throttle.
    pub max_running: Option<usize>,
    /// Evaluations per array element: small tasks are grouped so one Slurm task relaxes many (batched).
    pub tasks_per_array_task: usize,
    /// The `geode` binary on the nodes (a path, or a name on their PATH).
    pub geode: String,
    /// Lines the job script runs before the worker (e.g. `module load geode`). They are the profile
    /// owner's own shell lines and are written as given.
    pub setup: Vec<String>,
    /// Task folders, on a filesystem the nodes share. Empty: `PROJECT.cluster/` beside the project (for a
    /// cluster reached without `host`, i.e. this machine is a node or a login node).
    pub work_dir: String,
    /// `user@login-node` (or a `~/.ssh/config` alias): submit over SSH with the user's keys and agent;
    /// the host key must already be known (an unknown or changed key is an error with its fingerprint).
    pub host: Option<String>,
    /// An ssh configuration file for `host` (`ssh -F`); absent: the user's own `~/.ssh/config`.
    pub ssh_config: Option<String>,
    /// Extra `sbatch` arguments, each one argument (e.g. `--qos=short`).
    pub sbatch_args: Vec<String>,
    /// Seconds between polls of the queue and the result folders.
    pub poll_interval_s: f64,
    /// How many times a task that was lost (its Slurm task ended without a result) is resubmitted.
    pub max_retries: u32,
}

impl Default for SlurmProfile {
    fn default() -> Self {
        SlurmProfile {
            partition: None,
            account: None,
            time_limit: "01:00:00".into(),
            cpus_per_task: 1,
            gpus_per_task: 0,
            array_size_limit: 1000,
            max_running: None,
            tasks_per_array_task: 8,
            geode: "geode".into(),
            setup: Vec::new(),
            work_dir: String::new(),
            host: None,
            ssh_config: None,
            sbatch_args: Vec::new(),
            poll_interval_s: 5.0,
            max_retries: 2,
        }
    }
}

impl ExecutorSpec {
    /// The `[executor]` table of a TOML (or, by extension, JSON) file: the same table a run config holds,
    /// so one profile serves `geode run` and commands such as `geode relax --executor`. Errors name the
    /// file and the key.
    pub fn read(path: &Path) -> Result<ExecutorSpec, JobError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JobError::Config(format!("cannot read executor profile {}: {e}", path.display())))?;
        let at = |e: String| JobError::Config(format!("{e} (in {})", path.display()));
        let v: serde_json::Value = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            serde_json::from_str(&text).map_err(|e| at(format!("not valid JSON: {e}")))?
        } else {
            let t: toml::Value = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
            serde_json::to_value(t).map_err(|e| at(e.to_string()))?
        };
        let Some(table) = v.get("executor") else {
            return Err(
                at("no `[executor]` table (e.g. `[executor]` then `kind = \"slurm\"` and profile keys)".into()),
            );
        };
        if let Some(k) = v.as_object().and_then(|m| m.keys().find(|k| *k != "executor")) {
            return Err(at(format!("key `{k}`: a profile file holds only the `[executor]` table")));
        }
        let spec: ExecutorSpec =
            serde_json::from_value(table.clone()).map_err(|e| at(format!("key `executor`: {e}")))?;
        spec.validate().map_err(|e| at(e.to_string()))?;
        Ok(spec)
    }

    /// Cheap checks at submission (nothing is contacted).
    pub fn validate(&self) -> Result<(), JobError> {
        let ExecutorSpec::Slurm(p) = self else { return Ok(()) };
        let bad = |key: &str, what: String| Err(JobError::Config(format!("key `executor.{key}`: {what}")));
        let time_ok = {
            let t = p.time_limit.trim();
            let (days, hms) = t.split_once('-').unwrap_or(("0", t));
            days.parse::<u32>().is_ok()
                && !hms.is_empty()
                && hms.split(':').count() <= 3
                && hms.split(':').all(|x| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit()))
        };
        if !time_ok {
            return bad("time_limit", format!("expected [D-]HH:MM:SS, got {:?}", p.time_limit));
        }
        if p.cpus_per_task == 0 {
            return bad("cpus_per_task", "expected at least 1".into());
        }
        if p.array_size_limit == 0 {
            return bad("array_size_limit", "expected at least 1".into());
        }
        if p.tasks_per_array_task == 0 {
            return bad("tasks_per_array_task", "expected at least 1".into());
        }
        if p.max_running == Some(0) {
            return bad("max_running", "expected at least 1 (or leave it out)".into());
        }
        if !(p.poll_interval_s.is_finite() && p.poll_interval_s > 0.0) {
            return bad("poll_interval_s", format!("expected a positive number of seconds, got {}", p.poll_interval_s));
        }
        if p.geode.trim().is_empty() {
            return bad("geode", "name the geode binary on the nodes".into());
        }
        if p.host.is_some() && p.work_dir.is_empty() {
            return bad(
                "work_dir",
                "a run submitted over SSH needs a folder on the cluster's shared filesystem".into(),
            );
        }
        if p.host.is_some() && !p.work_dir.starts_with('/') {
            return bad(
                "work_dir",
                format!("{:?}: over SSH, give the folder's absolute path on the cluster", p.work_dir),
            );
        }
        for (key, v) in [("partition", &p.partition), ("account", &p.account), ("host", &p.host)] {
            if let Some(v) = v
                && (v.is_empty() || v.starts_with('-') || v.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return bad(key, format!("{v:?} is not a name"));
            }
        }
        Ok(())
    }

    /// Short description for logs (`local`, `slurm (partition debug)`, `slurm on user@host`).
    pub fn describe(&self) -> String {
        match self {
            ExecutorSpec::Local => "local".into(),
            ExecutorSpec::Slurm(p) => p.describe(),
        }
    }
}

impl SlurmProfile {
    /// `slurm`, `slurm on user@host`, `slurm (partition debug)`.
    pub fn describe(&self) -> String {
        let mut s = "slurm".to_string();
        if let Some(h) = &self.host {
            s += &format!(" on {h}");
        }
        if let Some(part) = &self.partition {
            s += &format!(" (partition {part})");
        }
        s
    }

    /// The task folders' root on this machine for a run of `project`: `work_dir` itself, or with `host`
    /// a local mirror `PROJECT.cluster-HOST/`.
    pub fn work_dir_for(&self, project: &Path) -> PathBuf {
        if let Some(h) = &self.host {
            let mut s = project.as_os_str().to_os_string();
            s.push(format!(
                ".cluster-{}",
                h.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-', "_")
            ));
            return PathBuf::from(s);
        }
        let dir = if self.work_dir.is_empty() {
            let mut s = project.as_os_str().to_os_string();
            s.push(".cluster");
            PathBuf::from(s)
        } else {
            PathBuf::from(&self.work_dir)
        };
        // The nodes read the job script's paths from wherever Slurm starts them: make them absolute.
        std::path::absolute(&dir).unwrap_or(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_read_from_toml_and_bad_keys_are_named() {
        let e: ExecutorSpec =
            toml::from_str("kind = \"slurm\"\npartition = \"debug\"\ntime_limit = \"0-02:00:00\"").unwrap();
        let ExecutorSpec::Slurm(p) = &e else { panic!("{e:?}") };
        assert_eq!(p.partition.as_deref(), Some("debug"));
        assert_eq!(p.tasks_per_array_task, 8);
        e.validate().unwrap();
        assert_eq!(toml::from_str::<ExecutorSpec>("kind = \"local\"").unwrap(), ExecutorSpec::Local);
        let unknown = toml::from_str::<ExecutorSpec>("kind = \"slurm\"\npartiton = \"debug\"").unwrap_err();
        assert!(unknown.to_string().contains("partiton"), "{unknown}");
        for (text, key) in [
            ("time_limit = \"two hours\"", "time_limit"),
            ("cpus_per_task = 0", "cpus_per_task"),
            ("partition = \"--wrap=rm\"", "partition"),
            ("host = \"me@login\"", "work_dir"),
            ("poll_interval_s = -1.0", "poll_interval_s"),
        ] {
            let e: ExecutorSpec = toml::from_str(&format!("kind = \"slurm\"\n{text}")).unwrap();
            let err = e.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
