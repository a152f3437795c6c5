//! Slurm commands, built from arguments: `sbatch --array`, `squeue`, `scontrol show job`, `scancel`.
//! Every command is an argument vector run without a shell; nothing a user typed is pasted into a shell
//! line (task folders are hashes, the job script's values are quoted).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use super::SlurmProfile;

/// A Slurm job array element: (array job id, index).
pub type Element = (u64, usize);

/// What the queue says about an element still in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// PENDING, RUNNING, COMPLETING, …
    pub state: String,
    /// Slurm's reason (`Resources`, `Priority`, `None`, …).
    pub reason: String,
}

/// Run `argv` and return its standard output; a failure names the command and its standard error.
pub fn run(argv: &[String]) -> Result<String, String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {prog}: {e} (is Slurm installed and on PATH?)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{} failed ({}): {}", argv.join(" "), out.status, err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A value for a POSIX shell, single-quoted.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The job script of an array over `manifest`: each element runs `geode worker` on its slice.
pub fn job_script(profile: &SlurmProfile, manifest: &Path, batch: usize) -> String {
    let mut s =
        String::from("#!/bin/bash\n# Written by Geode: one array element relaxes its slice of the manifest.\nset -e\n");
    for line in &profile.setup {
        s += line;
        s += "\n";
    }
    s += &format!("export OMP_NUM_THREADS={}\n", profile.cpus_per_task);
    s += &format!(
        "exec {} worker --manifest {} --index \"$SLURM_ARRAY_TASK_ID\" --per-task {} --batch {} --threads {}\n",
        shell_quote(&profile.geode),
        shell_quote(&manifest.display().to_string()),
        profile.tasks_per_array_task,
        batch.max(1),
        profile.cpus_per_task
    );
    s
}

/// `sbatch` arguments for an array of `n` elements over the script `script`, logs in `logs`.
pub fn sbatch_args(profile: &SlurmProfile, name: &str, n: usize, script: &Path, logs: &Path) -> Vec<String> {
    let mut a = vec!["sbatch".to_string(), "--parsable".into(), format!("--job-name={name}")];
    let throttle = profile.max_running.map(|m| format!("%{m}")).unwrap_or_default();
    a.push(format!("--array=0-{}{throttle}", n.saturating_sub(1)));
    a.push(format!("--output={}/%A_%a.out", logs.display()));
    a.push(format!("--cpus-per-task={}", profile.cpus_per_task));
    a.push(format!("--time={}", profile.time_limit));
    if let Some(p) = &profile.partition {
        a.push(format!("--partition={p}"));
    }
    if let Some(acc) = &profile.account {
        a.push(format!("--account={acc}"));
    }
    if profile.gpus_per_task > 0 {
        a.push(format!("--gpus-per-task={}", profile.gpus_per_task));
    }
    a.extend(profile.sbatch_args.iter().cloned());
    a.push(script.display().to_string());
    a
}

/// The job id `sbatch --parsable` printed (`123` or `123;cluster`).
pub fn parse_job_id(out: &str) -> Result<u64, String> {
    let first = out.trim().split(';').next().unwrap_or("");
    first.parse().map_err(|_| format!("sbatch printed {:?}, not a job id", out.trim()))
}

/// `squeue` arguments listing every element of `jobs` still queued or running, one line each.
pub fn squeue_args(jobs: &[u64]) -> Vec<String> {
    let ids: Vec<String> = jobs.iter().map(u64::to_string).collect();
    vec!["squeue".into(), "-h".into(), "-r".into(), "-o".into(), "%i|%T|%r".into(), "-j".into(), ids.join(",")]
}

/// Parse `squeue -r -o %i|%T|%r` lines (`123_4|RUNNING|None`); lines of jobs that are not arrays are skipped.
pub fn parse_squeue(out: &str) -> BTreeMap<Element, Queued> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let mut f = line.trim().split('|');
        let (Some(id), Some(state), Some(reason)) = (f.next(), f.next(), f.next()) else { continue };
        let Some((job, idx)) = id.split_once('_') else { continue };
        let (Ok(job), Ok(idx)) = (job.parse::<u64>(), idx.parse::<usize>()) else { continue };
        m.insert((job, idx), Queued { state: state.to_string(), reason: reason.to_string() });
    }
    m
}

/// Whether squeue's failure only says the jobs are gone (Slurm answers an unknown id with an error).
pub fn is_unknown_job(err: &str) -> bool {
    err.contains("Invalid job id")
}

/// Why an element that left the queue ended, from `scontrol show job -o` (kept MinJobAge seconds after
/// the end): `FAILED (exit 1:0, reason NonZeroExitCode)`; `None` when Slurm no longer knows the job.
pub fn parse_scontrol_end(out: &str) -> Option<String> {
    let line = out.lines().find(|l| l.contains("JobState="))?;
    let field = |k: &str| {
        line.split_whitespace().find_map(|f| f.strip_prefix(k).map(str::to_string)).unwrap_or_else(|| "?".into())
    };
    Some(format!("{} (exit {}, reason {})", field("JobState="), field("ExitCode="), field("Reason=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lines_parse_to_elements() {
        let q = parse_squeue("12_0|RUNNING|None\n12_7|PENDING|Resources\n13|RUNNING|None\ngarbage\n");
        assert_eq!(q.len(), 2);
        assert_eq!(q[&(12, 7)].reason, "Resources");
        assert_eq!(parse_job_id("4711;cluster\n").unwrap(), 4711);
        assert!(parse_job_id("sbatch: error").is_err());
        let end = parse_scontrol_end(
            "JobId=5 ArrayJobId=4 ArrayTaskId=1 JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=9:0",
        );
        assert_eq!(end.as_deref(), Some("FAILED (exit 9:0, reason NonZeroExitCode)"));
    }

    #[test]
    fn scripts_quote_what_they_embed() {
        let p = SlurmProfile { geode: "/opt/my geode/bin/geode'x".into(), ..SlurmProfile::default() };
        let s = job_script(&p, Path::new("/w/arrays/ab.txt"), 4);
        assert!(s.contains(r"exec '/opt/my geode/bin/geode'\''x' worker --manifest '/w/arrays/ab.txt'"), "{s}");
        let a = sbatch_args(&p, "geode-1", 5, Path::new("/w/a.sh"), Path::new("/w/logs"));
        assert!(a.contains(&"--array=0-4".to_string()) && a.last().unwrap() == "/w/a.sh", "{a:?}");
    }
}
