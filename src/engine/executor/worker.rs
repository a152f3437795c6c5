//! The worker: what `geode worker` runs on a node. It takes task folders (named on the command line, or
//! a slice of a manifest chosen by the Slurm array index), skips those already finished, and relaxes the
//! rest in batches (one batched potential evaluation per FIRE step), writing each result the moment it
//! finishes, so a node that dies loses only the relaxations in flight.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::task::{self, RelaxOutcome, TaskSpec};
use crate::crystal::Structure;
use crate::energy::{RelaxOptions, relax_many, spec::from_spec};
use crate::io::pmg_json;

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerReport {
    pub computed: usize,
    /// Already finished (result or error present): not computed again.
    pub skipped: usize,
    /// Failed evaluations (error.json written).
    pub failed: usize,
}

/// The task folders of array element `index` of a manifest (one task hash per line; element `index`
/// takes lines `index·per_task ..`). Manifests live in `WORK/arrays/`; the folders in `WORK/tasks/`.
pub fn manifest_slice(manifest: &Path, index: usize, per_task: usize) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let work = manifest
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{}: a manifest lives in WORK/arrays/", manifest.display()))?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    for (i, l) in lines.iter().enumerate() {
        if !task::is_hash(l) {
            return Err(format!("{} line {}: {l:?} is not a task hash", manifest.display(), i + 1));
        }
    }
    let start = index.saturating_mul(per_task.max(1));
    if start >= lines.len() {
        return Err(format!("{}: array index {index} is past its {} tasks", manifest.display(), lines.len()));
    }
    Ok(lines[start..(start + per_task.max(1)).min(lines.len())].iter().map(|h| task::task_dir(work, h)).collect())
}

/// Run the tasks in `dirs`, `batch` relaxations at once. Errors of one task (bad input, a potential
/// that fails) are written to its `error.json`; only problems with the folders themselves are returned.
pub fn run(dirs: &[PathBuf], batch: usize) -> Result<WorkerReport, String> {
    let mut report = WorkerReport::default();
    // Group by (potential, options) so each group shares one loaded potential and one batch.
    type Group = (RelaxOptions, Vec<(PathBuf, String, Structure, usize)>);
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for dir in dirs {
        let hash = dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if !task::is_hash(&hash) {
            return Err(format!("{}: not a task folder (its name is not a task hash)", dir.display()));
        }
        if dir.join("result.json").is_file() || dir.join("error.json").is_file() {
            report.skipped += 1;
            continue;
        }
        let TaskSpec::Relax(t) = match task::read_task(dir) {
            Ok(t) => t,
            Err(e) => {
                write_error(dir, &hash, &e)?;
                report.failed += 1;
                continue;
            }
        };
        let start = match pmg_json::structure_from_value(
            &t.structure,
            "structure",
            &dir.join("task.json").display().to_string(),
        ) {
            Ok(s) => s,
            Err(e) => {
                write_error(dir, &hash, &e.to_string())?;
                report.failed += 1;
                continue;
            }
        };
        let opts = t.options();
        let key = (t.potential.clone(), format!("{opts:?}"));
        let group = groups.entry(key).or_insert_with(|| (opts, Vec::new()));
        group.1.push((dir.clone(), hash, start, t.frame_every));
    }
    for ((potential, _), (opts, items)) in groups {
        let calc = match from_spec(&potential) {
            Ok(c) => c,
            Err(e) => {
                for (dir, hash, ..) in &items {
                    write_error(dir, hash, &format!("potential {potential:?}: {e}"))?;
                    report.failed += 1;
                }
                continue;
            }
        };
        let name = calc.name();
        let starts: Vec<Structure> = items.iter().map(|i| i.2.clone()).collect();
        let frames: std::cell::RefCell<Vec<Vec<(usize, Structure)>>> =
            std::cell::RefCell::new(vec![Vec::new(); items.len()]);
        let t0 = Instant::now();
        let mut io_error = None;
        relax_many(
            calc.as_ref(),
            &starts,
            &opts,
            batch.max(1),
            &mut |i, p, s| {
                let every = items[i].3;
                if every > 0 && p.step % every == 0 {
                    frames.borrow_mut()[i].push((p.step, s.clone()));
                }
                ControlFlow::Continue(())
            },
            &mut |i, r| {
                let (dir, hash, ..) = &items[i];
                let written = match r {
                    Ok(r) => {
                        let out = RelaxOutcome::new(
                            r,
                            std::mem::take(&mut frames.borrow_mut()[i]),
                            name.clone(),
                            t0.elapsed().as_secs_f64(),
                        );
                        report.computed += 1;
                        task::write_result(dir, hash, &out)
                    }
                    Err(e) => {
                        report.failed += 1;
                        task::write_error(dir, hash, &e.to_string())
                    }
                };
                match written {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        io_error = Some(format!("cannot write the result of {}: {e}", dir.display()));
                        ControlFlow::Break(())
                    }
                }
            },
        );
        if let Some(e) = io_error {
            return Err(e);
        }
    }
    Ok(report)
}

fn write_error(dir: &Path, hash: &str, e: &str) -> Result<(), String> {
    task::write_error(dir, hash, e).map_err(|io| format!("cannot write {}/error.json: {io}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_sliced_by_array_index_and_bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("geode-manifest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("arrays")).unwrap();
        let m = dir.join("arrays/m.txt");
        let hashes: Vec<String> = (0..5).map(|k| task::content_hash(&[k])).collect();
        std::fs::write(&m, hashes.join("\n") + "\n").unwrap();
        let slice = manifest_slice(&m, 1, 2).unwrap();
        assert_eq!(slice, vec![task::task_dir(&dir, &hashes[2]), task::task_dir(&dir, &hashes[3])]);
        assert_eq!(manifest_slice(&m, 2, 2).unwrap().len(), 1);
        assert!(manifest_slice(&m, 3, 2).unwrap_err().contains("past its 5 tasks"));
        std::fs::write(&m, format!("{}\n../../etc\n", hashes[0])).unwrap();
        let err = manifest_slice(&m, 0, 2).unwrap_err();
        assert!(err.contains("line 2") && err.contains("not a task hash"), "{err}");
        // A folder that is not named by a hash is refused before anything is read.
        assert!(run(&[dir.join("arrays")], 1).unwrap_err().contains("not a task folder"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
