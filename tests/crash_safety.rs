//! Crash safety: runs are killed with SIGKILL at random moments (fixed seed), ≥ 20 times; after every
//! kill the project opens, passes SQLite's integrity check, has lost no committed candidate, and what
//! it holds is a prefix of the uninterrupted run; `geode runs resume` then finishes with exactly the
//! uninterrupted run's results.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use geode::engine::Store;
use geode::engine::store::SortBy;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const CONFIG: &str = "seed = 21\nsample = 150\nchunk_size = 5\n";
const TRIALS: usize = 20;

fn geode(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn geode")
}

fn outcome(project: &Path) -> Vec<(i64, String, Value)> {
    let store = Store::open(project).expect("project opens after a kill");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    store
        .query_candidates(None, Some(1), Some(&SortBy { key: "seq".into(), descending: false }), None)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.formula, r.properties))
        .collect()
}

fn status(project: &Path) -> String {
    Store::open(project).unwrap().run(1).map(|r| r.status).unwrap_or_else(|_| "none".into())
}

#[test]
fn sigkill_at_random_points_then_resume() {
    let dir = std::env::temp_dir().join(format!("geode-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("run.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let cfg = config.to_str().unwrap();

    // The uninterrupted reference.
    let reference_project = dir.join("reference.geode");
    let t0 = Instant::now();
    let st = geode(&["run", "analyze", "--config", cfg, "--project", reference_project.to_str().unwrap(), "--json"])
        .wait()
        .unwrap();
    assert!(st.success());
    let full_ms = t0.elapsed().as_millis() as u64;
    let reference = outcome(&reference_project);
    assert_eq!(reference.len(), 150);
    // Analysis candidates are final once committed except for the later `duplicate_of` property, so
    // prefixes are compared on (seq, formula) and the final state on everything.
    let key = |v: &[(i64, String, Value)]| v.iter().map(|(s, f, _)| (*s, f.clone())).collect::<Vec<_>>();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut kills = 0;
    let mut projects: Vec<PathBuf> = Vec::new();
    while kills < TRIALS {
        let project = dir.join(format!("crash-{}.geode", projects.len()));
        let p = project.to_str().unwrap().to_string();
        projects.push(project.clone());
        let mut last_len = 0;
        loop {
            let mut child = if status(&project) == "none" {
                geode(&["run", "analyze", "--config", cfg, "--project", &p])
            } else {
                geode(&["runs", "resume", "1", "--project", &p])
            };
            let delay = rng.random_range(50..full_ms.max(200));
            std::thread::sleep(Duration::from_millis(delay));
            let finished = child.try_wait().unwrap().is_some();
            if !finished {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            child.wait().unwrap();
            let now = outcome(&project);
            assert!(now.len() >= last_len, "committed candidates were lost: {} < {last_len}", now.len());
            assert_eq!(key(&now), key(&reference[..now.len()]), "partial results differ from the reference");
            last_len = now.len();
            if status(&project) == "finished" {
                break;
            }
            if kills >= TRIALS {
                // Finish without further kills.
                assert!(geode(&["runs", "resume", "1", "--project", &p]).wait().unwrap().success());
                break;
            }
        }
        assert_eq!(status(&project), "finished");
        assert_eq!(outcome(&project), reference, "resumed run differs from the uninterrupted one");
    }
    std::fs::remove_dir_all(&dir).ok();
}
