//! The command evaluator (a user's own DFT code behind the calculator seam), run for real: Quantum
//! ESPRESSO's pw.x (Debian's `quantum-espresso`, installed by `scripts/setup.sh`) on Si from a template with
//! placeholders, read back from its XML and held to the committed reference run of the same input
//! (tests/fixtures/dft/qe-si, read by ASE); a user's script writing JSON; failures (exit code, timeout,
//! no output, unconverged SCF) reported as failures with the task folder named.

mod common;

use std::io::Read;
use std::path::Path;

use common::{root, tmp};
use geode::crystal::{Element, Lattice, Structure};
use geode::energy::spec::from_spec;
use geode::energy::{CalcError, Calculator, LennardJones};
use nalgebra::Vector3;

/// The reference run's structure: Si₂ with atom 2 pushed off (1/4, 1/4, 1/4) (qe-si/si.scf.in).
fn si_displaced() -> Structure {
    let h = 2.715;
    let lat = Lattice::from_row_vectors([[0.0, h, h], [h, 0.0, h], [h, h, 0.0]]).unwrap();
    let si = Element::from_symbol("Si").unwrap();
    Structure::from_cart(lat, vec![si, si], &[Vector3::zeros(), Vector3::new(1.4075, 1.3575, 1.3375)]).unwrap()
}

fn unzip_pseudo(dir: &Path) -> std::path::PathBuf {
    let gz = Path::new("/usr/share/doc/quantum-espresso/examples/EPW/sic/pp/Si.pz-vbc.UPF.gz");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(gz)
            .expect("Quantum ESPRESSO's example pseudopotentials: run scripts/setup.sh (quantum-espresso-data)"),
    )
    .read_to_end(&mut text)
    .unwrap();
    let pseudo = dir.join("pseudo");
    std::fs::create_dir_all(&pseudo).unwrap();
    std::fs::write(pseudo.join("Si.pz-vbc.UPF"), text).unwrap();
    pseudo
}

const PW_TEMPLATE: &str = "&CONTROL
  calculation = 'scf'
  prefix = 'geode'
  outdir = './tmp'
  pseudo_dir = 'PSEUDO'
  tprnfor = .true.
  tstress = .true.
/
&SYSTEM
  ibrav = 0
  nat = {{nat}}
  ntyp = {{ntyp}}
  ecutwfc = 20.0
/
&ELECTRONS
  conv_thr = CONV
  electron_maxstep = MAXSTEP
/
ATOMIC_SPECIES
  Si 28.0855 Si.pz-vbc.UPF
CELL_PARAMETERS angstrom
{{cell_angstrom}}
ATOMIC_POSITIONS angstrom
{{positions_angstrom}}
K_POINTS automatic
  {{kmesh}} 0 0 0
";

fn pw_templates(dir: &Path, conv: &str, maxstep: usize) -> std::path::PathBuf {
    let pseudo = unzip_pseudo(dir);
    let t = dir.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    let text = PW_TEMPLATE
        .replace("PSEUDO", &pseudo.display().to_string())
        .replace("CONV", conv)
        .replace("MAXSTEP", &maxstep.to_string());
    std::fs::write(t.join("pw.in"), text).unwrap();
    t
}

#[test]
fn pw_x_through_a_template_reproduces_the_reference_run() {
    let dir = tmp("dft-command-qe");
    let t = pw_templates(&dir, "1.0d-8", 100);
    // kdensity 0.9 per Å⁻¹ gives the reference's 2×2×2 mesh on this cell.
    let spec = format!(
        "command:read=qe,templates={},output=tmp/geode.xml,kdensity=0.9,workdir={},run=pw.x -in pw.in > pw.out 2>&1",
        t.display(),
        dir.join("tasks").display()
    );
    let calc = from_spec(&spec).unwrap();
    let ev = calc.calculate(&si_displaced()).unwrap();
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/dft/expected.json")).unwrap())
            .unwrap();
    let reference = &exp["qe"]["qe-si/si.xml"]["xml_converted"];
    // The same input on the same pw.x: the same energy to SCF precision (1e-8 Ry ≈ 1.4e-7 eV), up to the
    // CODATA of the unit conversion (ASE's in the reference file, 2018 here): 1e-4 eV.
    assert!((ev.energy - reference["energy_eV"].as_f64().unwrap()).abs() < 1e-4, "{}", ev.energy);
    let want: Vec<Vec<f64>> = serde_json::from_value(reference["forces"].clone()).unwrap();
    for (a, b) in ev.forces.iter().zip(&want) {
        for k in 0..3 {
            assert!((a[k] - b[k]).abs() < 1e-3, "{a:?} vs {b:?}");
        }
    }
    // The task folder holds what the user's code saw: the filled template and the structure files.
    let task = std::fs::read_dir(dir.join("tasks")).unwrap().next().unwrap().unwrap().path();
    let pw_in = std::fs::read_to_string(task.join("pw.in")).unwrap();
    assert!(pw_in.contains("nat = 2") && pw_in.contains("2 2 2 0 0 0") && !pw_in.contains("{{"), "{pw_in}");
    assert!(task.join("POSCAR").is_file() && task.join("structure.cif").is_file());
    // One SCF step allowed: pw.x stops unconverged, and that is a failure, not a number.
    let dir2 = tmp("dft-command-qe-unconverged");
    let t2 = pw_templates(&dir2, "1.0d-12", 1);
    let spec2 = format!(
        "command:read=qe,templates={},output=tmp/geode.xml,kdensity=0.9,run=pw.x -in pw.in > pw.out 2>&1",
        t2.display()
    );
    match from_spec(&spec2).unwrap().calculate(&si_displaced()) {
        Err(CalcError::Failed { reason, .. }) => {
            assert!(reason.contains("did not converge") || reason.contains("exited"), "{reason}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_users_script_writing_json_is_read_with_units_and_order_kept() {
    let dir = tmp("dft-command-json");
    let t = dir.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    // The user's "code": Geode's own Lennard-Jones through `geode energy --json`, its stress (GPa) turned into
    // eV/Å³ by a Python one-liner, written as result.json.
    std::fs::write(
        t.join("run.sh"),
        format!(
            "set -e\n'{}' energy structure.extxyz --potential lj:sigma=2.3,epsilon=0.05 --json > line.json\n\
             python3 -c \"import json; d = json.load(open('line.json')); \
             json.dump({{'energy': d['energy'], 'forces': d['forces'], 'stress': [[x / 160.2176634 for x in r] for r in d['stress_gpa']]}}, open('result.json', 'w'))\"\n",
            env!("CARGO_BIN_EXE_geode")
        ),
    )
    .unwrap();
    let calc = from_spec(&format!("command:read=json,templates={},run=sh run.sh", t.display())).unwrap();
    let o = Element::from_symbol("O").unwrap();
    let si = Element::from_symbol("Si").unwrap();
    // Species interleaved, so a reordering would show.
    let s = Structure::from_cart(
        Lattice::from_row_vectors([[4.1, 0.0, 0.0], [0.3, 4.3, 0.0], [0.1, 0.2, 4.6]]).unwrap(),
        vec![o, si, o, si],
        &[
            Vector3::new(0.1, 0.2, 0.0),
            Vector3::new(2.0, 0.1, 0.3),
            Vector3::new(0.2, 2.2, 2.0),
            Vector3::new(2.1, 2.0, 2.4),
        ],
    )
    .unwrap();
    let ev = calc.calculate(&s).unwrap();
    let direct = LennardJones::new(2.3, 0.05).calculate(&s).unwrap();
    assert!((ev.energy - direct.energy).abs() < 1e-9);
    for (a, b) in ev.forces.iter().zip(&direct.forces) {
        assert!((a - b).norm() < 1e-9, "{a:?} vs {b:?}");
    }
    assert!(
        (ev.stress - direct.stress).norm() < 1e-9 * direct.stress.norm().max(1.0),
        "{} vs {}",
        ev.stress,
        direct.stress
    );
}

#[test]
fn failures_name_the_folder_and_the_reason() {
    let s = si_displaced();
    let fail = |spec: &str| match from_spec(spec).unwrap().calculate(&s) {
        Err(CalcError::Failed { reason, .. }) => reason,
        other => panic!("{spec}: expected a failure, got {other:?}"),
    };
    let r = fail("command:read=json,run=echo 'no licence for vasp' >&2; exit 3");
    assert!(r.contains("exit status: 3") && r.contains("no licence for vasp") && r.contains("folder kept"), "{r}");
    let r = fail("command:read=vasprun,run=true");
    assert!(r.contains("vasprun.xml") && r.contains("folder kept"), "{r}");
    let start = std::time::Instant::now();
    let r = fail("command:read=json,timeout=1,run=sleep 30 & sleep 30");
    assert!(r.contains("timed out after 1 s"), "{r}");
    assert!(start.elapsed().as_secs() < 10, "the timeout killed the process group");
    let r = fail(
        "command:read=json,run=echo '{\"energy\": -1.0, \"forces\": [[0,0,0]], \"converged\": false}' > result.json",
    );
    assert!(r.contains("did not converge"), "{r}");
    let r = fail("command:read=json,run=echo '{\"energy\": -1.0, \"force\": [[0,0,0]]}' > result.json");
    assert!(r.contains("unknown key \"force\""), "{r}");
}

#[test]
fn geode_hull_places_structures_on_references_of_the_same_evaluator_cached_once() {
    let dir = tmp("dft-system-refs");
    // Argon in fcc at a stretched lattice constant, judged by Lennard-Jones argon on its own references.
    let ar = Element::from_symbol("Ar").unwrap();
    let s = Structure::from_frac(
        Lattice::from_row_vectors([[0.0, 2.9, 2.9], [2.9, 0.0, 2.9], [2.9, 2.9, 0.0]]).unwrap(),
        vec![ar],
        vec![Vector3::zeros()],
    )
    .unwrap();
    let file = dir.join("ar.cif");
    std::fs::write(&file, geode::io::cif::write(&s, "Ar")).unwrap();
    let cache = dir.join("refs.csv");
    let spec = "lj:sigma=3.405,epsilon=0.0104";
    let args = [
        "hull",
        "--structures",
        file.to_str().unwrap(),
        "--potential",
        spec,
        "--system-refs",
        cache.to_str().unwrap(),
        "--json",
    ];
    let (code, out, err) = common::geode(&args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("references to relax"), "{err}");
    let row = &common::json_lines(&out)[0];
    let e_hull = row["e_above_hull"].as_f64().unwrap();
    // The hull is the lowest relaxed argon reference: the stretched fcc cell lies above it by exactly the
    // difference of the two Lennard-Jones energies.
    let table =
        geode::energy::system_refs::SystemReferences::open(&cache, &LennardJones::new(3.405, 0.0104).name()).unwrap();
    let lowest = table.rows().iter().map(|r| r.energy_per_atom).fold(f64::INFINITY, f64::min);
    let mine = LennardJones::new(3.405, 0.0104).calculate(&s).unwrap().energy_per_atom();
    assert!((e_hull - (mine - lowest)).abs() < 1e-9, "{e_hull} vs {}", mine - lowest);
    assert!(e_hull > 0.0);
    // A second run relaxes nothing: every reference comes from the cache.
    let (code, out2, err2) = common::geode(&args);
    assert_eq!(code, 0, "{err2}");
    assert!(!err2.contains("references to relax"), "{err2}");
    assert_eq!(common::json_lines(&out2)[0]["e_above_hull"], row["e_above_hull"]);
}
