//! How the coordinator reaches the cluster: on this machine (the task folders are local files and the Slurm
//! commands run here), or over SSH with the user's own keys, agent and `~/.ssh/config`.
//!
//! Over SSH the coordinator keeps a local mirror of the work folder: task folders are written there and
//! pushed with `tar | ssh … tar -x`, outcomes are pulled back the same way into a staging folder and only
//! regular files of the expected names and sizes move into the mirror. Every remote command is an argument
//! vector quoted for the remote shell. Host keys are verified (`StrictHostKeyChecking=yes`): an unknown or
//! changed key stops the run with the key's fingerprint, and nothing is ever accepted silently.
//! `BatchMode=yes` means ssh never asks for a password; nothing secret is stored in the project, the logs
//! or the task folders (the profile names only the host).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::slurm::shell_quote;
use super::task;

/// Where the cluster is.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// This machine has the Slurm commands and sees the work folder.
    Local,
    /// A login node reached over SSH.
    Ssh(Ssh),
}

/// An SSH destination: a `user@host` or an alias of the ssh configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Ssh {
    pub host: String,
    /// An ssh configuration file (`ssh -F`); absent: the user's own.
    pub config: Option<PathBuf>,
}

fn output(mut cmd: Command, input: Option<&[u8]>, shown: &str) -> Result<Vec<u8>, String> {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().expect("piped");
        let bytes = bytes.to_vec();
        // Write on a thread so a child that fills its output pipe first cannot deadlock us.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{shown} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

impl Ssh {
    fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20"]);
        if let Some(f) = &self.config {
            c.arg("-F").arg(f);
        }
        c
    }

    /// Run `argv` on the login node (each argument quoted for its shell).
    pub fn run(&self, argv: &[String], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let line = argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
        let mut c = self.ssh();
        c.arg("--").arg(&self.host).arg(line);
        output(c, input, &format!("ssh {} {}", self.host, argv.first().map_or("", String::as_str)))
            .map_err(|e| self.explain(e))
    }

    /// ssh's refusals of a host key, with the fingerprint of the key the host offers.
    fn explain(&self, e: String) -> String {
        let unknown =
            e.contains("Host key verification failed") || (e.contains("No ") && e.contains("host key is known"));
        if !unknown && !e.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return e;
        }
        let changed = e.contains("HAS CHANGED");
        let offered = self.offered_fingerprints().unwrap_or_else(|why| format!("(could not read it: {why})"));
        format!(
            "the host key of {} is {}: ssh refused to connect. The host offers {offered}. Check it with the cluster's \
             administrators, then add it to your known_hosts (ssh-keyscan); Geode never accepts a host key by itself.\n{}",
            self.host,
            if changed { "not the one known_hosts holds (it has CHANGED)" } else { "not in known_hosts" },
            e.lines().filter(|l| !l.trim().is_empty()).take(12).collect::<Vec<_>>().join("\n")
        )
    }

    /// The fingerprints (`SHA256:…`) of the keys the host offers, from `ssh -G` (host name and port as the
    /// configuration resolves them) and `ssh-keyscan`.
    fn offered_fingerprints(&self) -> Result<String, String> {
        let mut g = self.ssh();
        g.arg("-G").arg(&self.host);
        let conf = String::from_utf8_lossy(&output(g, None, "ssh -G")?).into_owned();
        let get = |k: &str| conf.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()));
        let (host, port) = (get("hostname ").unwrap_or_else(|| self.host.clone()), get("port ").unwrap_or("22".into()));
        let mut scan = Command::new("ssh-keyscan");
        scan.args(["-T", "10", "-p", &port, "--", &host]);
        let keys = output(scan, None, "ssh-keyscan")?;
        let mut fp = Command::new("ssh-keygen");
        fp.args(["-l", "-f", "-"]);
        let prints = String::from_utf8_lossy(&output(fp, Some(&keys), "ssh-keygen -l")?).into_owned();
        let list: Vec<String> = prints
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some(format!("{} {}", f.get(1)?, f.last()?))
            })
            .collect();
        if list.is_empty() {
            return Err(format!("ssh-keyscan found no key at {host}:{port}"));
        }
        Ok(format!("{} at {host}:{port}", list.join(", ")))
    }
}

impl Access {
    /// Run a command where the cluster is; its standard output.
    pub fn run(&self, argv: &[String]) -> Result<String, String> {
        match self {
            Access::Local => super::slurm::run(argv),
            Access::Ssh(s) => s.run(argv, None).map(|o| String::from_utf8_lossy(&o).into_owned()),
        }
    }

    /// Make `rels` (paths under the local work folder `local`) exist under `remote` on the cluster.
    pub fn push(&self, local: &Path, remote: &Path, rels: &[String]) -> Result<(), String> {
        let Access::Ssh(s) = self else { return Ok(()) };
        for chunk in rels.chunks(2000) {
            let mut tar = Command::new("tar");
            tar.arg("-C").arg(local).args(["-cf", "-", "--"]).args(chunk);
            let bytes = output(tar, None, "tar -c")?;
            let dir = remote.display().to_string();
            let script = "mkdir -p \"$1\" && tar -C \"$1\" -xf -".to_string();
            s.run(&["sh".into(), "-c".into(), script, "sh".into(), dir], Some(&bytes))?;
        }
        Ok(())
    }

    /// Bring the outcomes (`result.json`, `error.json`) of tasks `hashes` from the cluster into the local
    /// mirror `local`, where absent. Only regular files of those names, within the size limit, are taken.
    pub fn pull(&self, local: &Path, remote: &Path, hashes: &[&str]) -> Result<(), String> {
        let Access::Ssh(s) = self else { return Ok(()) };
        let wanted: Vec<&str> = hashes
            .iter()
            .copied()
            .filter(|h| task::is_hash(h))
            .filter(|h| {
                let d = task::task_dir(local, h);
                !d.join("result.json").is_file() && !d.join("error.json").is_file()
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let stage = local.join(format!(".incoming-{}-{nanos}", std::process::id()));
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).map_err(|e| format!("cannot create {}: {e}", stage.display()))?;
        for chunk in wanted.chunks(2000) {
            // On the cluster: archive the outcomes that exist (names are hashes, so the loop is safe).
            let script = "cd \"$1\" && shift && for h in \"$@\"; do for f in result.json error.json; do \
                          [ -f \"tasks/$h/$f\" ] && [ ! -L \"tasks/$h/$f\" ] && echo \"tasks/$h/$f\"; done; done \
                          | tar -cf - -T - 2>/dev/null || true"
                .to_string();
            let mut argv = vec!["sh".to_string(), "-c".into(), script, "sh".into(), remote.display().to_string()];
            argv.extend(chunk.iter().map(|h| h.to_string()));
            let archive = s.run(&argv, None)?;
            if archive.is_empty() {
                continue;
            }
            let mut untar = Command::new("tar");
            untar.arg("-C").arg(&stage).args(["--no-same-owner", "--no-same-permissions", "-xf", "-"]);
            output(untar, Some(&archive), "tar -x")?;
        }
        for h in &wanted {
            for f in ["result.json", "error.json"] {
                let src = stage.join("tasks").join(h).join(f);
                let Ok(meta) = std::fs::symlink_metadata(&src) else { continue };
                if !meta.file_type().is_file() || meta.len() > task::MAX_RESULT_BYTES {
                    continue;
                }
                let dst = task::task_dir(local, h);
                std::fs::create_dir_all(&dst).map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
                std::fs::rename(&src, dst.join(f)).map_err(|e| format!("cannot move {}: {e}", src.display()))?;
            }
        }
        let _ = std::fs::remove_dir_all(&stage);
        Ok(())
    }

    /// Move a rejected result aside on the cluster too, so the task runs again there.
    pub fn reject(&self, remote: &Path, hash: &str) -> Result<(), String> {
        let Access::Ssh(s) = self else { return Ok(()) };
        let dir = task::task_dir(remote, hash).display().to_string();
        s.run(&["mv".into(), "-f".into(), format!("{dir}/result.json"), format!("{dir}/result.json.rejected")], None)
            .map(|_| ())
    }
}
