//! Fuzz opening a damaged project: a real project file (a run, candidates, a model), truncated or with
//! bytes overwritten, is opened and read the way `geode runs list` and `candidates list` read it. Every
//! damage gives data or an error naming the file, never a panic.
#![no_main]

use std::sync::OnceLock;

use geode::crystal::{Element, Lattice, Structure};
use geode::engine::{NewCandidate, PropValue, RunSpec, Store};
use libfuzzer_sys::fuzz_target;

/// Bytes of a small real project, made once.
fn template() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("geode-fuzz-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("template.geode");
        let _ = std::fs::remove_file(&path);
        {
            let mut s = Store::open(&path).expect("new project");
            let run = s.create_run(&RunSpec::default_for("relax").unwrap(), 7, 0).expect("run");
            s.log(run, "info", "made for fuzzing").unwrap();
            let cu = Element::from_symbol("Cu").unwrap();
            let st = Structure::from_frac(Lattice::cubic(3.6).unwrap(), vec![cu], vec![nalgebra::Vector3::zeros()])
                .unwrap();
            let cands: Vec<NewCandidate> = (0..4)
                .map(|i| NewCandidate {
                    seq: i,
                    structure: st.clone(),
                    stage: "fuzz".into(),
                    source: "fuzz".into(),
                    props: vec![("band_gap".into(), PropValue::with_std(i as f64, 0.1))],
                    extra: Default::default(),
                    parents: vec![],
                })
                .collect();
            s.insert_candidates(&cands).unwrap();
            s.annotate(1, Some(true), Some("tag"), Some("note")).unwrap();
            // Fold the write-ahead log into the file, so the template is one self-contained file.
            s.integrity_check().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    })
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = template().to_vec();
    // Input: a truncation length (2 bytes, 0 = none), then (offset: 3 bytes, value) patches.
    let Some((head, patches)) = data.split_at_checked(2) else { return };
    for p in patches.chunks_exact(4) {
        let off = (p[0] as usize) << 16 | (p[1] as usize) << 8 | p[2] as usize;
        let len = bytes.len().max(1);
        if let Some(b) = bytes.get_mut(off % len) {
            *b = p[3];
        }
    }
    let cut = u16::from_le_bytes([head[0], head[1]]) as usize;
    if cut > 0 && cut < bytes.len() {
        bytes.truncate(cut * bytes.len() / 65536);
    }
    let dir = std::env::temp_dir().join(format!("geode-fuzz-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("damaged.geode");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    std::fs::write(&path, &bytes).unwrap();
    if let Ok(store) = Store::open(&path) {
        let _ = store.runs();
        let _ = store.candidate_count();
        if let Ok(rows) = store.query_candidates(None, None, None, Some(10)) {
            for r in rows {
                let _ = store.candidate_structure(r.id);
                let _ = store.annotation(r.id);
            }
        }
        let _ = store.models();
        let _ = store.integrity_check();
    }
});
