//! Geode's Oganov–Valle fingerprints against ASE's `OFPComparator` (ase-ga 1.0.3).
//!
//! Fixture: `tests/fixtures/fingerprint_ase.json`, made by `scripts/make_fingerprint_fixtures.py`.

use geode::crystal::fingerprint::{OvFingerprint, OvParams, cosine_distance, oganov_valle};
use geode::crystal::{Element, Lattice, Structure};
use nalgebra::Vector3;
use serde::Deserialize;

#[derive(Deserialize)]
struct Embedded {
    lattice: [[f64; 3]; 3],
    species: Vec<String>,
    frac_coords: Vec<[f64; 3]>,
}

#[derive(Deserialize)]
struct Params {
    rcut: f64,
    binwidth: f64,
    sigma: f64,
    nsigma: f64,
}

#[derive(Deserialize)]
struct Curve {
    z: [u32; 2],
    sum: f64,
    sumsq: f64,
    values: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct Pair {
    kind: String,
    note: String,
    params: Params,
    a: Embedded,
    b: Embedded,
    cosine_distance: f64,
    fingerprint_a: Vec<Curve>,
    fingerprint_b: Vec<Curve>,
}

#[derive(Deserialize)]
struct Fixture {
    pairs: Vec<Pair>,
}

fn structure(e: &Embedded) -> Structure {
    let lattice = Lattice::from_row_vectors(e.lattice).expect("fixture lattice");
    let species = e.species.iter().map(|s| Element::from_symbol(s).expect("fixture element")).collect();
    let frac = e.frac_coords.iter().map(|f| Vector3::from(*f)).collect();
    Structure::from_frac(lattice, species, frac).expect("fixture structure")
}

/// Compare curve summaries (and full values where stored); returns the largest relative error.
fn check_curves(fp: &OvFingerprint, want: &[Curve], what: &str) -> f64 {
    assert_eq!(fp.pairs().len(), want.len(), "{what}: number of element pairs");
    let mut worst: f64 = 0.0;
    for c in want {
        let (a, b) = (Element::from_z(c.z[0]).unwrap(), Element::from_z(c.z[1]).unwrap());
        let got = fp.curve(a, b).unwrap_or_else(|| panic!("{what}: pair {:?} missing", c.z));
        let sum: f64 = got.iter().sum();
        let sumsq: f64 = got.iter().map(|v| v * v).sum();
        worst = worst.max((sum - c.sum).abs() / (1.0 + c.sum.abs()));
        worst = worst.max((sumsq - c.sumsq).abs() / (1.0 + c.sumsq.abs()));
        if let Some(values) = &c.values {
            assert_eq!(values.len(), got.len(), "{what}: bins");
            for (x, y) in got.iter().zip(values) {
                worst = worst.max((x - y).abs() / (1.0 + y.abs()));
            }
        }
    }
    worst
}

#[test]
fn agrees_with_ase() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fingerprint_ase.json");
    let fx: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(fx.pairs.len() >= 20);
    let mut worst_curve: f64 = 0.0;
    let mut worst_cos: f64 = 0.0;
    for (k, p) in fx.pairs.iter().enumerate() {
        let params = OvParams {
            rcut_ang: p.params.rcut,
            binwidth_ang: p.params.binwidth,
            sigma_ang: p.params.sigma,
            nsigma: p.params.nsigma,
        };
        let fa = oganov_valle(&structure(&p.a), &params);
        let fb = oganov_valle(&structure(&p.b), &params);
        let what = format!("pair {k} ({} {})", p.kind, p.note);
        worst_curve = worst_curve.max(check_curves(&fa, &p.fingerprint_a, &format!("{what} a")));
        worst_curve = worst_curve.max(check_curves(&fb, &p.fingerprint_b, &format!("{what} b")));
        let d = cosine_distance(&fa, &fb);
        let err = (d - p.cosine_distance.max(0.0)).abs();
        worst_cos = worst_cos.max(err);
        assert!(err < 1e-9, "{what}: cosine distance {d} vs ASE {}", p.cosine_distance);
    }
    eprintln!(
        "fingerprints vs ASE: {} pairs, largest relative curve error {worst_curve:.1e}, largest cosine-distance error {worst_cos:.1e}",
        fx.pairs.len()
    );
    assert!(worst_curve < 1e-9, "curve error {worst_curve}");
}

#[test]
fn default_parameters_are_ases() {
    let p = OvParams::default();
    assert_eq!((p.rcut_ang, p.binwidth_ang, p.sigma_ang, p.nsigma), (20.0, 0.05, 0.02, 4.0));
}
