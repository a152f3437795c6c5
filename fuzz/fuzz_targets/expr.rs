//! Fuzz the one expression grammar (`candidates list --where`, config constraints, the studio's filter
//! box) and the target/objective/constraint/sort parsers built on it: any text gives a value or an
//! error, never a panic or a stack overflow; a parsed filter compiles to SQL that SQLite accepts and
//! runs on a real project with candidates.
#![no_main]

use std::sync::OnceLock;

use geode::crystal::{Element, Lattice, Structure};
use geode::engine::{NewCandidate, PropValue, Store};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static std::sync::Mutex<Store> {
    static STORE: OnceLock<std::sync::Mutex<Store>> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut s = Store::in_memory().expect("in-memory store");
        let na = Element::from_symbol("Na").unwrap();
        let cl = Element::from_symbol("Cl").unwrap();
        let nacl = Structure::from_frac(
            Lattice::cubic(5.64).unwrap(),
            vec![na, cl],
            vec![nalgebra::Vector3::zeros(), nalgebra::Vector3::new(0.5, 0.5, 0.5)],
        )
        .unwrap();
        let cands: Vec<NewCandidate> = (0..3)
            .map(|i| NewCandidate {
                seq: i,
                structure: nacl.clone(),
                stage: "fuzz".into(),
                source: "fuzz".into(),
                props: vec![
                    ("band_gap".into(), PropValue::with_std(1.0 + i as f64, 0.1)),
                    ("e_above_hull".into(), PropValue::with_std(0.01 * i as f64, 0.0)),
                ],
                extra: Default::default(),
                parents: vec![],
            })
            .collect();
        s.insert_candidates(&cands).expect("insert");
        std::sync::Mutex::new(s)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(filter) = geode::engine::query::Filter::parse(text) {
        let store = store().lock().unwrap();
        let _ = store.query_candidates(Some(&filter), None, None, Some(5));
        let _ = filter.as_window();
    }
    let _ = geode::data::expr::Expr::parse_window(text, "fuzz");
    let _ = geode::search::generate::PropertyTarget::parse(text);
    let _ = geode::search::objectives::Objective::parse(text);
    let _ = geode::search::objectives::Constraint::parse(text);
    if let Ok(sort) = geode::engine::store::SortBy::parse(text) {
        let store = store().lock().unwrap();
        let _ = store.query_candidates(None, None, Some(&sort), Some(5));
    }
});
