//! The code's own layering, read from the source: a module never reaches a module on a higher floor,
//! `tch` stays in `ml` and `energy`, and `anyhow` stays in the two faces (`cli`, `studio`).
//!
//! Floors (ARCHITECTURE.md): 1 `crystal`; 2 `chem`, `io`, `data`; 3 `ml`, `energy`; 4 `search`;
//! 5 `engine`; 6 `cli`, `studio`.

use std::path::{Path, PathBuf};

fn floor(module: &str) -> Option<u8> {
    Some(match module {
        "crystal" => 1,
        "chem" | "io" | "data" => 2,
        "ml" | "energy" => 3,
        "search" => 4,
        "engine" => 5,
        "cli" | "studio" => 6,
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a line without its `//` comment (string contents are kept: they never hold these paths).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") { "" } else { line.split(" //").next().unwrap_or(line) }
}

/// Every `crate::MODULE` a line names.
fn crate_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let before = rest[..i].chars().last();
        // `geode_crate::` or `$crate::` are not ours.
        if !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            out.push(name);
        }
        rest = after;
    }
    // `use crate::{a, b}` lists.
    if let Some(i) = line.find("crate::{") {
        let inner = &line[i + 8..];
        out.extend(
            inner
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| floor(w).is_some())
                .map(String::from),
        );
    }
    out
}

#[test]
fn layers_tch_and_anyhow_stay_where_they_belong() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let module = rel.strip_prefix("src/").and_then(|r| r.split('/').next()).unwrap_or("");
        let Some(own) = floor(module) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        let mut in_tests = false;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                in_tests = true;
            }
            let c = code(line);
            for m in crate_modules(c) {
                if let Some(other) = floor(&m)
                    && other > own
                {
                    problems.push(format!("{rel}:{}: {module} (floor {own}) uses crate::{m} (floor {other})", n + 1));
                }
            }
            let uses_tch = c.contains("tch::") || c.trim_start().starts_with("use tch");
            if uses_tch && own != 3 {
                problems.push(format!("{rel}:{}: tch outside ml and energy", n + 1));
            }
            if c.contains("anyhow") && own < 6 && !in_tests {
                problems.push(format!("{rel}:{}: anyhow below cli and studio", n + 1));
            }
        }
    }
    assert!(files.len() > 100, "read only {} source files", files.len());
    assert!(problems.is_empty(), "{} layering problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_checker_sees_what_it_checks() {
    assert_eq!(crate_modules("use crate::engine::store::Store;"), ["engine"]);
    assert!(crate_modules("use crate::{crystal::Structure, engine::Store};").contains(&"engine".to_string()));
    assert!(crate_modules("$crate::foo").is_empty());
    assert_eq!(code("    // crate::engine"), "");
    assert_eq!(floor("search"), Some(4));
}
