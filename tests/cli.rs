//! The `geode` binary as a user runs it: `info`, `convert`, `dataset`, and bad input.
//! Expected values for the LiFePO4 example are pymatgen 2026.10.24's (`Structure.from_file`,
//! `get_space_group_info(0.1)`, `.volume`, `.density`).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

#[test]
fn info_json_matches_pymatgen_for_the_example() {
    let f = root().join("assets/examples/LiFePO4.cif");
    let (code, out, err) = geode(&["info", "--json", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["formula"], "LiFePO4");
    assert_eq!(v["natoms"], 28);
    assert_eq!(v["space_group_number"], 62);
    assert!((v["volume"].as_f64().unwrap() - 291.35124144).abs() < 1e-6);
    assert!((v["density"].as_f64().unwrap() - 3.5965148007).abs() < 1e-6);
    assert_eq!(v["valid"], true);
    assert_eq!(v["file"], f.to_str().unwrap());
}

#[test]
fn no_arguments_without_a_display_is_a_clear_error() {
    // `geode` alone opens the studio; with no display server it must say so and exit, not panic.
    let out = Command::new(env!("CARGO_BIN_EXE_geode"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .env("HOME", std::env::temp_dir().join("geode-cli-test-home"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert_ne!(out.status.code(), Some(101), "panicked: {err}");
    assert!(err.contains("cannot open the studio window") && err.contains("DISPLAY"), "{err}");
}

#[test]
fn convert_round_trips_through_every_text_format() {
    let d = tmp("convert");
    let src = root().join("assets/examples/LiFePO4.cif");
    let mut previous = src.clone();
    for name in ["a.vasp", "b.xyz", "c.json", "d.cif", "POSCAR"] {
        let out = d.join(name);
        let (code, _, err) = geode(&["convert", previous.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        let (code, o, err) = geode(&["info", "--json", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        let v = &json_lines(&o)[0];
        assert_eq!(v["formula"], "LiFePO4", "{name}");
        assert_eq!(v["space_group_number"], 62, "{name}");
        assert!((v["volume"].as_f64().unwrap() - 291.35124144).abs() < 1e-5, "{name}");
        previous = out;
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn malformed_files_give_errors_naming_file_and_problem() {
    let dir = root().join("tests/assets/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 8);
    let args: Vec<&str> = std::iter::once("info")
        .chain(std::iter::once("--json"))
        .chain(files.iter().map(|p| p.to_str().unwrap()))
        .collect();
    let (code, out, err) = geode(&args);
    assert_eq!(code, 1, "a failing file makes the exit code 1; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len(), "{out}");
    for (v, f) in lines.iter().zip(&files) {
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("{} parsed: {v}", f.display()));
        assert!(msg.contains(f.to_str().unwrap()), "message does not name the file: {msg}");
        let textual = !f.file_name().unwrap().to_str().unwrap().starts_with("junk");
        let name = f.file_name().unwrap().to_str().unwrap();
        if textual && !name.ends_with(".json") {
            assert!(msg.contains("line "), "message does not name the line: {msg}");
        }
    }
    let missing = Path::new("/nonexistent/dir/x.cif");
    let (code, out, _) = geode(&["info", "--json", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(json_lines(&out)[0]["error"].as_str().unwrap().contains("/nonexistent/dir/x.cif"));
}

#[test]
fn dataset_commands() {
    let (code, out, err) = geode(&["dataset", "stats", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["entries"], 20988);
    let (code, out, err) = geode(&["dataset", "show", "3", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["formula"], "Ca(SiAu)2"); // pymatgen 2026.10.24 groups the Si–Au polyanion
    assert_eq!(v["name"], "100-1707-CaSi2Au2");
    let (code, _, err) = geode(&["dataset", "show", "no-such-entry"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-entry"), "{err}");
    let d = tmp("export");
    let csv = d.join("test.csv");
    let (code, _, err) = geode(&["dataset", "export", "--split", "test", "--out", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.lines().count() > 1500);
    assert!(text.lines().skip(1).all(|l| l.split(',').nth(3) == Some("test")));
    std::fs::remove_dir_all(&d).ok();
}

/// Every command and every argument of `geode` says what it is for in `--help`.
#[test]
fn every_command_and_argument_has_a_description() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} --{id}"));
            }
        }
        for s in cmd.get_subcommands() {
            let sub = format!("{path} {}", s.get_name());
            if s.get_name() != "help" && s.get_about().is_none() && s.get_long_about().is_none() {
                missing.push(format!("{sub} (the command itself)"));
            }
            walk(s, &sub, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&geode::cli::Cli::command(), "geode", &mut missing);
    assert!(missing.is_empty(), "{} undocumented:\n{}", missing.len(), missing.join("\n"));
}

#[test]
fn supercells_report_the_space_group_of_their_cell() {
    // `Structure::space_group` (what `geode info` prints) searches the primitive cell the pure translations
    // leave; it must give the group moyo finds on the cell itself, for every kind of crystal.
    let ds = geode::data::Dataset::embedded();
    let mut checked = 0;
    for e in ds.entries.iter().step_by(97).take(150) {
        let want = e.structure.symmetry(0.1).unwrap().number;
        let big = e.structure.repeat([2, 2, 2]).unwrap();
        let repeat = if big.n_sites() > 64 { big } else { big.repeat([2, 1, 1]).unwrap() };
        let (got, _) = repeat.space_group(0.1).unwrap();
        assert_eq!(got, want, "{} ({}): {got} from the supercell, {want} from the cell", e.formula, e.id);
        checked += 1;
    }
    assert_eq!(checked, 150);
    // A 10,648-site rock-salt cell (a 2-site cell made 22×22×11) through `geode info`.
    let dir = std::env::temp_dir().join(format!("geode-cli-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let na = geode::crystal::Element::from_symbol("Na").unwrap();
    let cl = geode::crystal::Element::from_symbol("Cl").unwrap();
    let l = geode::crystal::Lattice::from_row_vectors([[0.0, 2.82, 2.82], [2.82, 0.0, 2.82], [2.82, 2.82, 0.0]]);
    let cell = geode::crystal::Structure::from_frac(
        l.unwrap(),
        vec![na, cl],
        vec![nalgebra::Vector3::zeros(), nalgebra::Vector3::new(0.5, 0.5, 0.5)],
    )
    .unwrap();
    let path = dir.join("big.vasp");
    std::fs::write(&path, geode::io::poscar::write(&cell.repeat([22, 22, 11]).unwrap())).unwrap();
    let (code, stdout, err) = geode(&["info", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((v["natoms"].as_u64(), v["space_group_number"].as_u64()), (Some(10648), Some(225)), "{v}");
    // The Na–Cl distance, a/2 of the 5.64 Å conventional cell.
    assert!((v["min_distance"].as_f64().unwrap() - 2.82).abs() < 1e-6, "{v}");
    std::fs::remove_dir_all(&dir).ok();
}
