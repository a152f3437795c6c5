//! The Slurm executor against a real one-node Slurm cluster (`scripts/slurm-local.sh`, started here if it
//! is not running): relaxations submitted as job arrays give the local executor's results, finished tasks
//! are reused, and the faults a cluster deals out (scancel, a worker killed with SIGKILL, a corrupt result,
//! the coordinator killed mid-campaign) lose nothing and compute nothing twice.
//!
//! Relaxations use the Lennard-Jones potential: its evaluations are exact in f64 whatever the batch, so
//! "the same results" means bit-identical energies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use geode::crystal::{Element, Lattice, Structure};
use geode::engine::Store;
use nalgebra::Vector3;
use rand::{Rng, SeedableRng};
use serde_json::Value;

mod common;
use common::*;

const LJ: &str = "lj:sigma=3.405,epsilon=0.0104";

/// Start the one-node cluster once per test binary; the guard keeps the tests of this file one at a time
/// (each expects the cluster's cores to itself).
fn cluster() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let out =
            Command::new(root().join("scripts/slurm-local.sh")).arg("start").output().expect("run slurm-local.sh");
        assert!(
            out.status.success(),
            "scripts/slurm-local.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    guard
}

/// Rattled argon supercells (2×2×2 conventional fcc, 32 atoms), strained differently: a relaxation takes
/// some hundreds of FIRE steps at fmax 1e-4.
fn argon(n: usize, seed: u64) -> Vec<Structure> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let ar = Element::from_symbol("Ar").unwrap();
    (0..n)
        .map(|k| {
            let a = 5.26 * (1.0 + 0.02 * k as f64);
            let base = [
                Vector3::zeros(),
                Vector3::new(0.0, 0.5, 0.5),
                Vector3::new(0.5, 0.0, 0.5),
                Vector3::new(0.5, 0.5, 0.0),
            ];
            let mut frac = Vec::new();
            for (i, j, l) in (0..8).map(|c| (c & 1, (c >> 1) & 1, (c >> 2) & 1)) {
                for b in &base {
                    let jitter = Vector3::from_fn(|_, _| rng.random_range(-0.015..0.015));
                    frac.push((b + Vector3::new(i as f64, j as f64, l as f64)) / 2.0 + jitter);
                }
            }
            Structure::from_frac(Lattice::cubic(2.0 * a).unwrap(), vec![ar; 32], frac).unwrap()
        })
        .collect()
}

struct Setup {
    dir: PathBuf,
    inputs: PathBuf,
    work: PathBuf,
}

fn setup(name: &str, n: usize) -> Setup {
    let dir = tmp(name);
    let inputs = dir.join("argon.extxyz");
    geode::io::write_structures(&inputs, &argon(n, 7), None).unwrap();
    Setup { work: dir.join("work"), inputs, dir }
}

fn config(s: &Setup, executor: &str, extra: &str) -> PathBuf {
    let text = format!(
        "structures = [{:?}]\npotential = {LJ:?}\nfmax = 1e-4\nmax_steps = 2000\nframe_every = 50\nbatch = 2\n{extra}\n{executor}\n",
        s.inputs.to_str().unwrap()
    );
    let path = s.dir.join(format!("{}.toml", if executor.is_empty() { "local" } else { "slurm" }));
    std::fs::write(&path, text).unwrap();
    path
}

fn slurm_table(s: &Setup, per_task: usize) -> String {
    format!(
        "[executor]\nkind = \"slurm\"\npartition = \"debug\"\ntime_limit = \"00:10:00\"\ntasks_per_array_task = {per_task}\n\
         geode = {:?}\nwork_dir = {:?}\npoll_interval_s = 0.3\nmax_retries = 2\n",
        env!("CARGO_BIN_EXE_geode"),
        s.work.to_str().unwrap()
    )
}

fn run(config: &Path, project: &Path) -> (i32, String) {
    let (code, out, err) = geode(&[
        "run",
        "relax",
        "--config",
        config.to_str().unwrap(),
        "--project",
        project.to_str().unwrap(),
        "--json",
    ]);
    (code, format!("{out}{err}"))
}

/// input name → (energy, steps, converged, frames) of a project's relaxed candidates and frames.
fn outcome(project: &Path) -> BTreeMap<String, (f64, f64, f64, usize)> {
    let store = Store::open(project).unwrap();
    let rows = store.query_candidates(None, None, None, None).unwrap();
    let mut m: BTreeMap<String, (f64, f64, f64, usize)> = BTreeMap::new();
    for r in &rows {
        let p = |k: &str| {
            let v = &r.properties[k];
            v["value"].as_f64().or(v.as_f64()).unwrap_or_else(|| panic!("{k} of {}: {v}", r.source))
        };
        if r.stage == "relaxed" {
            let frames = rows.iter().filter(|f| f.stage == "frame" && f.source == r.source).count();
            let old = m.insert(r.source.clone(), (p("energy"), p("steps"), p("converged"), frames));
            assert!(old.is_none(), "{} stored twice", r.source);
        }
    }
    m
}

fn logs(project: &Path) -> String {
    let store = Store::open(project).unwrap();
    store.logs(1).unwrap().into_iter().map(|(_, l, m)| format!("{l}: {m}\n")).collect()
}

fn arrays(work: &Path) -> usize {
    std::fs::read_dir(work.join("arrays"))
        .map_or(0, |d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sh"))).count())
}

fn job(project: &Path) -> String {
    geode::engine::executor::coordinator::job_name(project, 1)
}

fn squeue(name: &str) -> Vec<String> {
    let out = Command::new("squeue").args(["-h", "-r", "-o", "%i|%T", "-n", name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// The local executor's results for the setup's structures (the reference every cluster run must equal).
fn local_reference(s: &Setup) -> BTreeMap<String, (f64, f64, f64, usize)> {
    let local = s.dir.join("local.geode");
    let (code, out) = run(&config(s, "", ""), &local);
    assert_eq!(code, 0, "{out}");
    outcome(&local)
}

/// `geode run relax` in the background, as a coordinator the test can kill.
fn spawn_run(config: &Path, project: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(["run", "relax", "--config", config.to_str().unwrap(), "--project", project.to_str().unwrap(), "--json"])
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Wait until `n` elements of the project's first run are running.
fn wait_for_running(project: &Path, n: usize) {
    wait_for("running elements", Duration::from_secs(60), || {
        squeue(&job(project)).iter().filter(|l| l.ends_with("RUNNING")).count() == n
    });
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slurm_gives_the_local_results_and_reuses_finished_tasks() {
    let _one = cluster();
    let s = setup("same", 5);
    let reference = local_reference(&s);
    assert_eq!(reference.len(), 5);
    assert!(reference.values().all(|r| r.2 == 1.0 && r.1 > 50.0), "{reference:?}");

    let remote = s.dir.join("slurm.geode");
    let cfg = config(&s, &slurm_table(&s, 2), "");
    let (code, out) = run(&cfg, &remote);
    assert_eq!(code, 0, "{out}\n{}", logs(&remote));
    assert_eq!(outcome(&remote), reference, "{}", logs(&remote));
    let log = logs(&remote);
    assert!(log.contains("5 of 5 relaxations submitted"), "{log}");
    assert_eq!(arrays(&s.work), 1);
    // Three elements (2 + 2 + 1 tasks), each leaving a worker log.
    let worker_logs = std::fs::read_dir(s.work.join("logs")).unwrap().count();
    assert_eq!(worker_logs, 3);

    // The same campaign again: every task is found finished; nothing is submitted.
    let again = s.dir.join("again.geode");
    let (code, out) = run(&cfg, &again);
    assert_eq!(code, 0, "{out}");
    assert!(logs(&again).contains("0 of 5 relaxations submitted (5 already computed)"), "{}", logs(&again));
    assert_eq!(arrays(&s.work), 1);
    assert_eq!(outcome(&again), reference);
}

#[test]
fn cancelled_and_killed_workers_are_resubmitted_and_nothing_is_lost() {
    let _one = cluster();
    let s = setup("faults", 6);
    let reference = local_reference(&s);

    let project = s.dir.join("slurm.geode");
    let cfg = config(&s, &slurm_table(&s, 3), "");
    let mut coordinator = spawn_run(&cfg, &project);
    // Both elements running: kill one worker with SIGKILL (a node that dies) and scancel the other.
    wait_for_running(&project, 2);
    std::thread::sleep(Duration::from_millis(300));
    let array = squeue(&job(&project))[0].split('_').next().unwrap().to_string();
    let victim = Command::new("pgrep").args(["-f", "geode worker --manifest .* --index 0 "]).output().unwrap();
    let pid = String::from_utf8_lossy(&victim.stdout).trim().to_string();
    assert!(!pid.is_empty() && !pid.contains('\n'), "worker of element 0: {pid:?}");
    assert!(Command::new("kill").args(["-9", &pid]).status().unwrap().success());
    assert!(Command::new("scancel").arg(format!("{array}_1")).status().unwrap().success());

    let status = coordinator.wait().unwrap();
    assert!(status.success(), "{}", logs(&project));
    let log = logs(&project);
    assert!(log.matches("resubmitting (retry 1 of 2)").count() >= 2, "{log}");
    assert!(log.contains("without its result"), "{log}");
    // Every structure stored once, each equal to the local run.
    assert_eq!(outcome(&project), reference, "{log}");
    eprintln!("{log}");
}

#[test]
fn a_corrupt_result_is_rejected_and_recomputed() {
    let _one = cluster();
    let s = setup("corrupt", 2);
    let reference = local_reference(&s);
    // A first campaign computes both tasks.
    let cfg = config(&s, &slurm_table(&s, 1), "");
    let (code, out) = run(&cfg, &s.dir.join("first.geode"));
    assert_eq!(code, 0, "{out}");
    // Damage them as a dying node or a hostile file would: one truncated, one claiming another task, and a
    // half-written temporary file beside them (never read).
    let tasks: Vec<PathBuf> =
        std::fs::read_dir(s.work.join("tasks")).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    assert_eq!(tasks.len(), 2);
    let r0 = tasks[0].join("result.json");
    let text = std::fs::read_to_string(&r0).unwrap();
    std::fs::write(&r0, &text[..text.len() / 2]).unwrap();
    std::fs::write(tasks[0].join("result.json.tmp"), "{\"format\": 1").unwrap();
    let r1 = tasks[1].join("result.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&r1).unwrap()).unwrap();
    v["result"]["energy"] = Value::from(f64::MAX);
    v["result"]["trajectory"] = Value::Array(vec![]);
    std::fs::write(&r1, serde_json::to_string(&v).unwrap()).unwrap();

    let project = s.dir.join("second.geode");
    let (code, out) = run(&cfg, &project);
    assert_eq!(code, 0, "{out}");
    let log = logs(&project);
    assert_eq!(log.matches("rejected its result").count(), 2, "{log}");
    assert!(log.contains("not a Geode result") && log.contains("trajectory points"), "{log}");
    assert!(tasks.iter().all(|t| t.join("result.json.rejected").is_file()));
    assert_eq!(outcome(&project), reference, "{log}");
}

#[test]
fn a_killed_coordinator_resumes_without_recomputing() {
    let _one = cluster();
    let s = setup("resume", 4);
    let reference = local_reference(&s);

    let project = s.dir.join("slurm.geode");
    let cfg = config(&s, &slurm_table(&s, 2), "");
    let mut coordinator = spawn_run(&cfg, &project);
    wait_for("the array", Duration::from_secs(60), || !squeue(&job(&project)).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    coordinator.kill().unwrap(); // SIGKILL
    coordinator.wait().unwrap();
    // The cluster finishes the work while no coordinator watches.
    wait_for("the array to finish", Duration::from_secs(120), || squeue(&job(&project)).is_empty());
    assert_eq!(Store::open(&project).unwrap().run(1).unwrap().status, "running");
    let t0 = Instant::now();
    let (code, out, err) = geode(&["runs", "resume", "1", "--project", project.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}{err}\n{}", logs(&project));
    assert_eq!(arrays(&s.work), 1, "resume submitted again:\n{}", logs(&project));
    assert!(!logs(&project).contains("resubmitting"), "{}", logs(&project));
    assert_eq!(outcome(&project), reference);
    eprintln!("resume took {:.1} s", t0.elapsed().as_secs_f64());
    // Invariant of the hand-off: task folders are hashes.
    for e in std::fs::read_dir(s.work.join("tasks")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(geode::engine::executor::task::is_hash(&name), "{name}");
    }
}

/// The test sshd on 127.0.0.1 (`scripts/sshd-local.sh`), started once; its folder.
fn sshd() -> PathBuf {
    static UP: OnceLock<PathBuf> = OnceLock::new();
    UP.get_or_init(|| {
        let out = Command::new(root().join("scripts/sshd-local.sh")).arg("start").output().expect("run sshd-local.sh");
        assert!(
            out.status.success(),
            "scripts/sshd-local.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(std::env::var("GEODE_SSHD_DIR").unwrap_or_else(|_| "/tmp/geode-sshd".into()))
    })
    .clone()
}

fn fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(public_key).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn over_ssh_host_keys_are_verified_and_results_match() {
    let _one = cluster();
    let ssh = sshd();
    let s = setup("ssh", 3);
    let reference = local_reference(&s);
    let table = format!(
        "{}host = \"geode-test\"\nssh_config = {:?}\n",
        slurm_table(&s, 2),
        ssh.join("ssh_config").to_str().unwrap()
    );
    let cfg = config(&s, &table, "");
    let known = ssh.join("known_hosts");
    let host_key = std::fs::read_to_string(ssh.join("host_key.pub")).unwrap();
    let entry =
        |key: &str| format!("[127.0.0.1]:2222 {}\n", key.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    let offered = fingerprint(&ssh.join("host_key.pub"));

    // Unknown host key: refused, with the fingerprint the host offers; nothing was sent.
    std::fs::write(&known, "").unwrap();
    let (code, out) = run(&cfg, &s.dir.join("unknown.geode"));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("not in known_hosts") && out.contains(&offered), "{out}");
    assert!(!s.work.exists(), "files reached the cluster before its key was checked");

    // A changed host key (known_hosts holds another key for the host): refused, with the fingerprint.
    let other = std::fs::read_to_string(ssh.join("client_key.pub")).unwrap();
    std::fs::write(&known, entry(&other)).unwrap();
    let (code, out) = run(&cfg, &s.dir.join("changed.geode"));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("CHANGED") && out.contains(&offered), "{out}");

    // The right key: the campaign runs over SSH and gives the local results.
    std::fs::write(&known, entry(&host_key)).unwrap();
    let project = s.dir.join("ssh.geode");
    let (code, out) = run(&cfg, &project);
    assert_eq!(code, 0, "{out}\n{}", logs(&project));
    assert_eq!(outcome(&project), reference, "{}", logs(&project));
    assert!(logs(&project).contains("3 of 3 relaxations submitted"), "{}", logs(&project));
    // Results were pulled into the local mirror; the cluster side has them too.
    let mirror = PathBuf::from(format!("{}.cluster-geode-test", project.display()));
    assert_eq!(std::fs::read_dir(mirror.join("tasks")).unwrap().count(), 3);
    assert!(std::fs::read_dir(s.work.join("tasks")).unwrap().all(|t| t.unwrap().path().join("result.json").is_file()));
    // No key material in the project or the task folders.
    let private = std::fs::read_to_string(ssh.join("client_key")).unwrap();
    let secret = private.lines().nth(1).unwrap();
    let bytes = std::fs::read(&project).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(secret));
    std::fs::write(&known, "").unwrap();
}

#[test]
fn slurmd_killed_mid_array_and_restarted_loses_nothing() {
    let _one = cluster();
    let s = setup("slurmd", 6);
    let reference = local_reference(&s);

    let project = s.dir.join("slurm.geode");
    let cfg = config(&s, &slurm_table(&s, 3), "");
    let coordinator = spawn_run(&cfg, &project);
    wait_for_running(&project, 2);
    // The node's daemon dies (SIGKILL) while both elements run, and comes back.
    assert!(Command::new("pkill").args(["-9", "-x", "slurmd"]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    let restart = Command::new(root().join("scripts/slurm-local.sh")).arg("start").output().unwrap();
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stderr));
    let out = coordinator.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", logs(&project));
    let log = logs(&project);
    assert_eq!(outcome(&project), reference, "{log}");
    eprintln!("{log}");
}

#[test]
fn screening_relaxes_its_best_candidates_on_the_cluster_as_it_would_locally() {
    let _one = cluster();
    let dir = tmp("screen");
    let work = dir.join("work");
    let base = "templates = [\"NaCl\", \"MgO\"]\nthreshold = 0.002\nexcluded_elements = [\"Tl\", \"Hg\", \"Cd\"]\n\
                constraints = [\"band_gap in [1.0, 8.0]\", \"e_above_hull < 0.3\"]\n\
                objectives = [\"min e_above_hull\", \"max band_gap\"]\nmin_probability = 0.05\nchunk_size = 16\n\
                relax_top = 3\nbatch = 4\n";
    let local_cfg = dir.join("local.toml");
    std::fs::write(&local_cfg, base).unwrap();
    let slurm_cfg = dir.join("slurm.toml");
    std::fs::write(
        &slurm_cfg,
        format!(
            "{base}[executor]\nkind = \"slurm\"\ntasks_per_array_task = 4\ngeode = {:?}\nwork_dir = {:?}\npoll_interval_s = 0.5\n",
            env!("CARGO_BIN_EXE_geode"),
            work.to_str().unwrap()
        ),
    )
    .unwrap();
    let relaxed = |project: &Path| -> BTreeMap<String, (f64, f64)> {
        let store = Store::open(project).unwrap();
        store
            .query_candidates(None, None, None, None)
            .unwrap()
            .into_iter()
            .filter(|r| r.stage == "relaxed")
            .map(|r| {
                let v = |k: &str| r.properties[k]["value"].as_f64().or(r.properties[k].as_f64()).unwrap_or(f64::NAN);
                (r.formula.clone(), (v("relaxed_energy_per_atom"), v("relaxed_e_above_hull")))
            })
            .collect()
    };
    let mut results = Vec::new();
    for (cfg, name) in [(&local_cfg, "local.geode"), (&slurm_cfg, "slurm.geode")] {
        let project = dir.join(name);
        let (code, out, err) = geode(&[
            "run",
            "screen",
            "--config",
            cfg.to_str().unwrap(),
            "--project",
            project.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{out}{err}");
        results.push(relaxed(&project));
    }
    assert!(results[0].len() >= 2, "{:?}", results[0]);
    assert_eq!(results[0].keys().collect::<Vec<_>>(), results[1].keys().collect::<Vec<_>>());
    for (f, (e, h)) in &results[0] {
        let (e2, h2) = results[1][f];
        // The same batch of CHGNet evaluations on both sides; float32 inside, so compared to 1e-6 eV/atom.
        assert!((e - e2).abs() < 1e-6 && (h - h2).abs() < 1e-6, "{f}: local {e} {h}, slurm {e2} {h2}");
    }
    assert_eq!(arrays(&work), 1);
}

/// An `[executor]` table for the local cluster: `per_task` tasks per array element, task folders in `work`.
fn executor_table(work: &Path, per_task: usize, poll_s: f64) -> String {
    format!(
        "[executor]\nkind = \"slurm\"\ntasks_per_array_task = {per_task}\ngeode = {:?}\nwork_dir = {:?}\npoll_interval_s = {poll_s}\n",
        env!("CARGO_BIN_EXE_geode"),
        work.to_str().unwrap()
    )
}

/// `geode run KIND` of the config `base` with `seed`, here and on the local cluster (`executor`):
/// the two projects, `DIR/local.geode` and `DIR/slurm.geode`.
fn local_and_slurm(dir: &Path, kind: &str, base: &str, executor: &str, seed: &str) -> [PathBuf; 2] {
    ["local", "slurm"].map(|name| {
        let cfg = dir.join(format!("{name}.toml"));
        let table = if name == "slurm" { executor } else { "" };
        std::fs::write(&cfg, format!("{base}{table}")).unwrap();
        let project = dir.join(format!("{name}.geode"));
        let (code, out, err) = geode(&[
            "run",
            kind,
            "--config",
            cfg.to_str().unwrap(),
            "--project",
            project.to_str().unwrap(),
            "--seed",
            seed,
            "--json",
        ]);
        assert_eq!(code, 0, "{out}{err}\n{}", logs(&project));
        project
    })
}

/// Seq, formula, stage, energy per atom and generation of a candidate.
type Individual = (i64, String, String, Option<f64>, Option<f64>);

/// Every candidate of a project's first run.
fn individuals(project: &Path) -> Vec<Individual> {
    let store = Store::open(project).unwrap();
    let sort = geode::engine::store::SortBy { key: "seq".into(), descending: false };
    let v = |r: &geode::engine::store::CandidateRow, k: &str| {
        r.properties.get(k).and_then(|x| x["value"].as_f64().or(x.as_f64()))
    };
    store
        .query_candidates(None, Some(1), Some(&sort), None)
        .unwrap()
        .into_iter()
        .map(|r| {
            let e = v(&r, "energy_per_atom").or(v(&r, "relaxed_energy_per_atom"));
            (r.seq, r.formula.clone(), r.stage.clone(), e, v(&r, "generation"))
        })
        .collect()
}

#[test]
fn evolution_sends_each_generation_out_as_one_array_and_finds_what_it_finds_locally() {
    let _one = cluster();
    let dir = tmp("evolve");
    let work = dir.join("work");
    let base = "composition = \"Ar\"\nformula_units = [1, 3]\npopulation = 4\nbudget = 16\nrelax_top = 2\n\
                [relax]\npotential = \"lj:sigma=3.405,epsilon=0.0104,cutoff=8.5\"\nfmax = 0.01\n";
    let results = local_and_slurm(&dir, "evolve", base, &executor_table(&work, 2, 0.3), "5").map(|p| individuals(&p));
    // 16 individuals and the 2 best relaxed again at the end.
    assert_eq!(results[0].len(), 18, "{:?}", results[0]);
    assert_eq!(results[0].iter().filter(|r| r.2 == "relaxed").count(), 2, "{:?}", results[0]);
    // Lennard-Jones evaluations are exact whatever the batch: the same search, individual by individual.
    assert_eq!(results[0], results[1]);
    // One array per generation (4 of 4 individuals), and one for the finals.
    let generations: BTreeMap<i64, usize> = results[1].iter().filter_map(|r| r.4).fold(BTreeMap::new(), |mut m, g| {
        *m.entry(g as i64).or_default() += 1;
        m
    });
    assert_eq!(arrays(&work), generations.len() + 1, "{generations:?}");
    assert!(generations.len() >= 4, "{generations:?}");
}

#[test]
fn generated_crystals_are_relaxed_on_the_cluster_as_they_would_be_locally() {
    let _one = cluster();
    let dir = tmp("generate");
    let work = dir.join("work");
    let base = "n = 6\nbatch = 6\nrelax = \"chgnet\"\nrelax_steps = 40\n";
    let relaxed = |project: &Path| -> Vec<(String, f64, f64)> {
        let store = Store::open(project).unwrap();
        let v = |r: &geode::engine::store::CandidateRow, k: &str| {
            r.properties.get(k).and_then(|x| x["value"].as_f64().or(x.as_f64())).unwrap_or(f64::NAN)
        };
        let mut rows: Vec<(String, f64, f64)> = store
            .query_candidates(None, None, None, None)
            .unwrap()
            .into_iter()
            .filter(|r| r.stage == "relaxed")
            .map(|r| (r.formula.clone(), v(&r, "relaxed_energy_per_atom"), v(&r, "relax_steps")))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        rows
    };
    let results = local_and_slurm(&dir, "generate", base, &executor_table(&work, 1, 0.5), "3").map(|p| relaxed(&p));
    assert!(!results[0].is_empty(), "no crystal was relaxed locally");
    assert_eq!(results[0].len(), results[1].len(), "{results:?}");
    for (l, r) in results[0].iter().zip(&results[1]) {
        // One structure per relaxation on both sides; CHGNet works in float32, so 1e-5 eV/atom.
        assert_eq!((&l.0, l.2), (&r.0, r.2), "{results:?}");
        assert!((l.1 - r.1).abs() < 1e-5, "{}: local {} slurm {}", l.0, l.1, r.1);
    }
    assert_eq!(arrays(&work), 1);

    // `geode generate --relax` (a folder, not a project) with --executor: the same relaxed energies.
    let profile = dir.join("profile.toml");
    std::fs::write(&profile, executor_table(&dir.join("cli-work"), 1, 0.5)).unwrap();
    let column = |csv: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(csv).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let k = header.iter().position(|h| *h == "relaxed_energy_per_atom").unwrap();
        // The first columns (file, formula, …) hold no commas; the relaxed energy is read by position.
        lines.map(|l| l.split(',').nth(k).unwrap_or("").to_string()).collect()
    };
    let mut energies = Vec::new();
    for (name, extra) in [("cli-local", vec![]), ("cli-slurm", vec!["--executor", profile.to_str().unwrap()])] {
        let out_dir = dir.join(name);
        let mut args =
            vec!["generate", "--n", "4", "--seed", "3", "--relax", "chgnet", "--relax-steps", "40", "--json", "--out"];
        args.push(out_dir.to_str().unwrap());
        args.extend(extra);
        let (code, out, err) = geode(&args);
        assert_eq!(code, 0, "{out}{err}");
        energies.push(column(&out_dir.join("generated.csv")));
    }
    assert_eq!(energies[0].len(), energies[1].len());
    assert!(energies[0].iter().any(|e| !e.is_empty()), "{energies:?}");
    for (l, r) in energies[0].iter().zip(&energies[1]) {
        let (l, r) = (l.parse::<f64>().unwrap_or(f64::NAN), r.parse::<f64>().unwrap_or(f64::NAN));
        // generated.csv holds 4 decimals: equal up to one unit in the last place.
        assert!((l.is_nan() && r.is_nan()) || (l - r).abs() < 1.5e-4, "{energies:?}");
    }
    assert_eq!(arrays(&dir.join("cli-work")), 1);
    eprintln!("run: {results:?}\ncommand: {energies:?}");
}

#[test]
fn relax_of_many_files_writes_each_result_locally_and_from_the_cluster() {
    let _one = cluster();
    let s = setup("many", 3);
    let single = s.dir.join("single.cif");
    geode::io::write_structures(&single, &argon(1, 11), None).unwrap();
    let profile = s.dir.join("profile.toml");
    std::fs::write(&profile, slurm_table(&s, 2)).unwrap();
    let common = ["--potential", LJ, "--fmax", "1e-4", "--steps", "2000", "--json"];
    let mut outputs = Vec::new();
    for (name, extra) in [("local", vec![]), ("slurm", vec!["--executor", profile.to_str().unwrap()])] {
        let out_dir = s.dir.join(name);
        let mut args = vec!["relax", s.inputs.to_str().unwrap(), single.to_str().unwrap(), "--out-dir"];
        args.push(out_dir.to_str().unwrap());
        args.extend(common);
        args.extend(extra);
        let (code, out, err) = geode(&args);
        assert_eq!(code, 0, "{out}{err}");
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 4, "{out}");
        for f in ["argon_0.cif", "argon_1.cif", "argon_2.cif", "single.cif"] {
            assert!(out_dir.join(f).is_file(), "{name}: {f} missing: {out}");
        }
        outputs.push(lines.iter().map(|l| (l["index"].clone(), l["energy"].as_f64().unwrap())).collect::<Vec<_>>());
    }
    assert_eq!(outputs[0], outputs[1]);
    // Ctrl-C cancels the run and its arrays; the same command again continues that run. (Task folders of
    // their own: the ones above hold these very tasks finished.)
    let fresh = s.dir.join("fresh-profile.toml");
    let text = slurm_table(&s, 2).replace(s.work.to_str().unwrap(), s.dir.join("work2").to_str().unwrap());
    std::fs::write(&fresh, text).unwrap();
    let out_dir = s.dir.join("resumed");
    let mut args = vec!["relax", s.inputs.to_str().unwrap(), single.to_str().unwrap(), "--out-dir"];
    args.push(out_dir.to_str().unwrap());
    args.extend(common);
    args.extend(["--executor", fresh.to_str().unwrap()]);
    let mut first = Command::new(env!("CARGO_BIN_EXE_geode"))
        .args(&args)
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let project = out_dir.join("relax.geode");
    wait_for_running(&project, 2);
    assert!(Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap().success());
    assert_eq!(first.wait().unwrap().code(), Some(130));
    assert_eq!(Store::open(&project).unwrap().run(1).unwrap().status, "cancelled");
    let (code, out, err) = geode(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("run 1 in"), "{err}");
    assert_eq!(Store::open(&project).unwrap().runs().unwrap().len(), 1);
    let resumed: Vec<_> =
        json_lines(&out).iter().map(|l| (l["index"].clone(), l["energy"].as_f64().unwrap())).collect();
    assert_eq!(resumed, outputs[1]);
    // The single file relaxed alone gives the same energy.
    let alone = s.dir.join("alone.cif");
    let (code, out, err) = geode(&[
        "relax",
        single.to_str().unwrap(),
        alone.to_str().unwrap(),
        "--potential",
        LJ,
        "--fmax",
        "1e-4",
        "--steps",
        "2000",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_lines(&out)[0]["energy"].as_f64().unwrap(), outputs[0][3].1);
    // A missing file stops the command before any work, naming it; a bad profile names the key.
    let (code, _, err) = geode(&["relax", "nope.cif", "--out-dir", s.dir.join("x").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("nope.cif"), "{err}");
    std::fs::write(&profile, "[executor]\nkind = \"slurm\"\npartitoin = \"debug\"\n").unwrap();
    let (code, _, err) = geode(&[
        "relax",
        single.to_str().unwrap(),
        "--out-dir",
        s.dir.join("y").to_str().unwrap(),
        "--executor",
        profile.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("partitoin") && err.contains("profile.toml"), "{err}");
    assert!(!s.dir.join("y").exists(), "nothing is created for a bad profile");
}
