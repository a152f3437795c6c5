//! The engine's command-line face as a user drives it: `geode run analyze`, `geode runs list|show`,
//! `geode candidates list|show|export` with `--where` and `--sort`, and bad configs and filters.

use serde_json::Value;

mod common;
use common::*;

fn prop(c: &Value, name: &str) -> Option<f64> {
    c["properties"][name]["value"].as_f64()
}

#[test]
fn run_list_filter_sort_show_and_export() {
    let d = tmp("flow");
    let config = d.join("run.toml");
    std::fs::write(&config, "seed = 5\nsample = 40\nchunk_size = 8\n").unwrap();
    let project = d.join("p.geode");
    let p = project.to_str().unwrap();

    let (code, out, err) = geode(&["run", "analyze", "--config", config.to_str().unwrap(), "--project", p, "--json"]);
    assert_eq!(code, 0, "{err}");
    let run = &json_lines(&out)[0];
    assert_eq!(run["status"], "finished");
    assert_eq!(run["n_candidates"], 40);
    assert_eq!(run["seed"], 5);
    assert_eq!(run["result"]["analysed"], 40);

    let (code, out, _) = geode(&["runs", "list", "--project", p, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out).len(), 1);
    let (code, out, _) = geode(&["runs", "show", "1", "--project", p, "--json"]);
    assert_eq!(code, 0);
    let shown = &json_lines(&out)[0];
    assert_eq!(shown["params"]["sample"], 40);
    assert!(shown["log"].as_array().unwrap().iter().any(|l| l["message"] == "started"));

    // Filter and sort: every row satisfies the filter, rows come in descending band gap.
    let (code, out, err) = geode(&[
        "candidates",
        "list",
        "--project",
        p,
        "--where",
        "band_gap > 0.5 and e_above_hull < 0.05",
        "--sort",
        "-band_gap",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    let (code, all_out, _) = geode(&["candidates", "list", "--project", p, "--limit", "1000", "--json"]);
    assert_eq!(code, 0);
    let all = json_lines(&all_out);
    assert_eq!(all.len(), 40);
    let expected = all
        .iter()
        .filter(|c| prop(c, "band_gap").is_some_and(|g| g > 0.5) && prop(c, "e_above_hull").is_some_and(|h| h < 0.05))
        .count();
    assert_eq!(rows.len(), expected);
    let gaps: Vec<f64> = rows.iter().map(|c| prop(c, "band_gap").unwrap()).collect();
    assert!(gaps.windows(2).all(|w| w[0] >= w[1]), "{gaps:?}");

    // Show: the CIF it prints reads back as the same formula.
    let id = all[0]["id"].as_i64().unwrap().to_string();
    let (code, out, _) = geode(&["candidates", "show", &id, "--project", p, "--json"]);
    assert_eq!(code, 0);
    let shown = &json_lines(&out)[0];
    let cif = shown["cif"].as_str().unwrap();
    let s = geode::io::parse_str(cif, geode::io::Format::Cif, "shown.cif").unwrap();
    assert_eq!(s[0].reduced_formula(), all[0]["formula"].as_str().unwrap());

    // Exports: CSV, extxyz, zip of CIFs, folder of POSCARs.
    let csv = d.join("c.csv");
    assert_eq!(geode(&["candidates", "export", "--project", p, "--out", csv.to_str().unwrap()]).0, 0);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 41);
    assert!(text.lines().next().unwrap().contains("band_gap"));
    let xyz = d.join("c.extxyz");
    assert_eq!(
        geode(&["candidates", "export", "--project", p, "--where", "n_sites <= 8", "--out", xyz.to_str().unwrap()]).0,
        0
    );
    let frames = geode::io::read_structures(&xyz).unwrap();
    assert_eq!(frames.len(), all.iter().filter(|c| c["n_sites"].as_i64().unwrap() <= 8).count());
    assert!(frames.iter().all(|s| s.n_sites() <= 8));
    let zip_path = d.join("c.zip");
    assert_eq!(geode(&["candidates", "export", "--project", p, "--out", zip_path.to_str().unwrap()]).0, 0);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    assert_eq!(zip.len(), 41, "40 structures and properties.csv");
    assert!(zip.by_name("properties.csv").is_ok());
    let mut first = String::new();
    std::io::Read::read_to_string(&mut zip.by_index(0).unwrap(), &mut first).unwrap();
    assert!(geode::io::parse_str(&first, geode::io::Format::Cif, "zip.cif").is_ok());
    let folder = d.join("poscars");
    assert_eq!(
        geode(&[
            "candidates",
            "export",
            "--project",
            p,
            "--out",
            folder.to_str().unwrap(),
            "--format",
            "poscar",
            "--limit",
            "5"
        ])
        .0,
        0
    );
    let files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 5);
    assert!(files.iter().all(|f| geode::io::read_structures(f).is_ok()));

    // Annotate, then filter on the annotation.
    assert_eq!(
        geode(&["candidates", "annotate", &id, "--project", p, "--favourite", "true", "--tags", "shortlist"]).0,
        0
    );
    let (_, out, _) =
        geode(&["candidates", "list", "--project", p, "--where", "favourite = 1 and tag = 'shortlist'", "--json"]);
    assert_eq!(json_lines(&out).iter().map(|c| c["id"].as_i64().unwrap().to_string()).collect::<Vec<_>>(), vec![id]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_configs_and_filters_are_named() {
    let d = tmp("bad");
    let project = d.join("p.geode");
    let p = project.to_str().unwrap();
    let config = d.join("run.toml");
    std::fs::write(&config, "sample = 10\nsymprek = 0.1\n").unwrap();
    let (code, _, err) = geode(&["run", "analyze", "--config", config.to_str().unwrap(), "--project", p]);
    assert_ne!(code, 0);
    assert!(err.contains("symprek") && err.contains("run.toml"), "{err}");
    std::fs::write(&config, "sample = \"ten\"\n").unwrap();
    let (code, _, err) = geode(&["run", "analyze", "--config", config.to_str().unwrap(), "--project", p]);
    assert_ne!(code, 0);
    assert!(err.contains("sample"), "{err}");
    let (code, _, err) = geode(&["run", "screen-everything", "--project", p]);
    assert_ne!(code, 0);
    assert!(err.contains("screen-everything"), "{err}");
    std::fs::write(&config, "sample = 3\n").unwrap();
    assert_eq!(geode(&["run", "analyze", "--config", config.to_str().unwrap(), "--project", p]).0, 0);
    for bad in ["band_gap >", "band_gap > 1 and", "(band_gap > 1", "band_gap ~ 2"] {
        let (code, _, err) = geode(&["candidates", "list", "--project", p, "--where", bad]);
        assert_ne!(code, 0, "{bad}");
        assert!(err.contains("filter"), "{bad}: {err}");
    }
    let (code, _, err) = geode(&["runs", "show", "99", "--project", p]);
    assert_ne!(code, 0);
    assert!(err.contains("99"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}
