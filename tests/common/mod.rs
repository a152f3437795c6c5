//! Helpers the integration tests share: running the `geode` binary as a user would, reading its JSON
//! lines, scratch folders, the source tree, fixtures, and small structures. Each test file takes what
//! it needs (`mod common;`), so helpers one file does not use are allowed to sit idle there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use geode::crystal::{Element, Lattice, Structure};
use nalgebra::Vector3;
use serde_json::Value;

/// Run `geode ARGS` in `dir` (or here) with one OpenMP thread: (exit code, stdout, stderr).
pub fn geode_in(dir: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geode"));
    cmd.args(args).env("OMP_NUM_THREADS", "1");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().expect("run geode");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `geode ARGS` here: (exit code, stdout, stderr).
pub fn geode(args: &[&str]) -> (i32, String, String) {
    geode_in(None, args)
}

/// The JSON objects of a command's `--json` output, one a line (other lines, such as progress, skipped).
pub fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A fresh, empty scratch folder for this test binary and `name`.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("geode-{}-{}-{name}", env!("CARGO_CRATE_NAME"), std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The source tree.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/NAME` as JSON.
pub fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Rock salt `AB` in its conventional cubic cell (8 atoms), lattice constant `a` Å.
pub fn rock_salt(a: f64, cation: &str, anion: &str) -> Structure {
    let (c, x) = (Element::from_symbol(cation).unwrap(), Element::from_symbol(anion).unwrap());
    let h = a / 2.0;
    let fcc = [Vector3::zeros(), Vector3::new(0.0, h, h), Vector3::new(h, 0.0, h), Vector3::new(h, h, 0.0)];
    let mut species = vec![c; 4];
    species.extend([x; 4]);
    let mut pos: Vec<Vector3<f64>> = fcc.to_vec();
    pos.extend(fcc.iter().map(|p| p + Vector3::new(h, 0.0, 0.0)));
    Structure::from_cart(Lattice::cubic(a).unwrap(), species, &pos).unwrap()
}

/// fcc `element` in its conventional cubic cell (4 atoms), lattice constant `a` Å.
pub fn fcc(a: f64, element: &str) -> Structure {
    let e = Element::from_symbol(element).unwrap();
    let h = a / 2.0;
    let pos = [Vector3::zeros(), Vector3::new(0.0, h, h), Vector3::new(h, 0.0, h), Vector3::new(h, h, 0.0)];
    Structure::from_cart(Lattice::cubic(a).unwrap(), vec![e; 4], &pos).unwrap()
}
