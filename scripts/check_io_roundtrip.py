"""Cross-check Geode's POSCAR, extxyz and pymatgen-JSON files against pymatgen and ASE, and regenerate
the reference files that pymatgen and ASE write for Geode's reader tests.

Usage (from the repository root, with pymatgen and ASE installed in the interpreter that runs this):
    python scripts/check_io_roundtrip.py [--no-cargo] [--no-refs]

1. Runs `cargo test --lib write_roundtrip_files`: Geode's writers put files into target/io-roundtrip/,
   each with a `<file>.expected.json` sidecar (lattice rows, species, fractional coordinates, site
   properties and properties a reader must find).
2. Reads every file with pymatgen and with ASE and compares against its sidecar. POSCAR: pymatgen's
   `Poscar` and `ase.io.read(format="vasp")`; extxyz: `ase.io.read(format="extxyz")` and pymatgen via
   `AseAtomsAdaptor` (pymatgen has no extxyz reader of its own); pymatgen JSON: `Structure.from_dict`
   and ASE via `AseAtomsAdaptor.get_atoms` (ASE has no reader for pymatgen JSON).
3. Unless --no-refs: writes tests/assets/formats/ (ASE-written extxyz, pymatgen-written POSCAR with
   selective dynamics, pymatgen `as_dict()` JSON of structures and of a ComputedStructureEntry), an
   `expected.json` with what pymatgen/ASE read back from those files, and a README.md.

Exits non-zero when any comparison fails.
"""

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import ase
import ase.io
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms, FixCartesian, FixScaled
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.vasp import Poscar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RT_DIR = os.path.join(ROOT, "target", "io-roundtrip")
REF_DIR = os.path.join(ROOT, "tests", "assets", "formats")
TOL = 1e-9
PMG_VERSION = importlib.metadata.version("pymatgen")
ASE_VERSION = ase.__version__

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"  FAIL {what}")
    return cond


def close(a, b, tol=TOL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) < tol))


def ase_moving(atoms):
    """Per-atom 'may move' flags from ASE constraints (True = free, as VASP's T)."""
    m = np.ones((len(atoms), 3), dtype=bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            m[c.index] = False
        elif isinstance(c, (FixScaled, FixCartesian)):
            for i in np.atleast_1d(c.index):
                m[i] &= ~np.asarray(c.mask, dtype=bool)
    return m


def numpy_to_python(o):
    """json.dump fallback for numpy scalars and arrays."""
    return o.tolist() if hasattr(o, "tolist") else o.item()


def voigt_to_3x3(v):
    xx, yy, zz, yz, xz, xy = v
    return [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]


def compare_structure(tag, lattice, species, frac, exp):
    check(close(lattice, exp["lattice"]), f"{tag}: lattice {np.asarray(lattice).tolist()} != {exp['lattice']}")
    check(list(species) == exp["species"], f"{tag}: species {list(species)} != {exp['species']}")
    check(close(frac, exp["frac_coords"]), f"{tag}: fractional coordinates differ")


def check_poscar(path, expected):
    name = os.path.basename(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = Poscar.from_file(path)
    [exp] = expected
    s = p.structure
    compare_structure(f"{name} pymatgen", s.lattice.matrix, [x.symbol for x in s.species], s.frac_coords, exp)
    sd = exp["site_properties"].get("selective_dynamics")
    if sd is not None:
        got = [list(map(bool, f)) for f in s.site_properties.get("selective_dynamics", [])]
        check(got == sd, f"{name} pymatgen: selective dynamics {got} != {sd}")
    if "comment" in exp["properties"]:
        check(p.comment == exp["properties"]["comment"], f"{name} pymatgen: comment {p.comment!r}")
    a = ase.io.read(path, format="vasp")
    compare_structure(f"{name} ASE", a.cell[:], a.get_chemical_symbols(), a.get_scaled_positions(wrap=False), exp)
    if sd is not None:
        check(ase_moving(a).tolist() == sd, f"{name} ASE: selective dynamics {ase_moving(a).tolist()} != {sd}")


def check_extxyz(path, expected):
    name = os.path.basename(path)
    frames = ase.io.read(path, index=":", format="extxyz")
    check(len(frames) == len(expected), f"{name}: {len(frames)} frames, expected {len(expected)}")
    for k, (a, exp) in enumerate(zip(frames, expected)):
        tag = f"{name}[{k}]"
        compare_structure(f"{tag} ASE", a.cell[:], a.get_chemical_symbols(), a.get_scaled_positions(wrap=False), exp)
        check(all(a.pbc), f"{tag} ASE: pbc {a.pbc}")
        sp, props = exp["site_properties"], exp["properties"]
        if "forces" in sp:
            check(close(a.get_forces(apply_constraint=False), sp["forces"], 1e-12), f"{tag} ASE: forces differ")
        if "energy" in props:
            check(abs(a.get_potential_energy() - props["energy"]) < 1e-12, f"{tag} ASE: energy")
        if "stress" in props:
            check(close(voigt_to_3x3(a.get_stress(voigt=True)), props["stress"], 1e-12), f"{tag} ASE: stress")
        for key, val in props.items():
            if key not in ("energy", "stress"):
                check(a.info.get(key) == val, f"{tag} ASE: info[{key!r}] {a.info.get(key)!r} != {val!r}")
        if "selective_dynamics" in sp:
            check(ase_moving(a).tolist() == sp["selective_dynamics"], f"{tag} ASE: move_mask")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = AseAtomsAdaptor.get_structure(a)
        compare_structure(f"{tag} pymatgen (AseAtomsAdaptor)", s.lattice.matrix, [x.symbol for x in s.species], s.frac_coords, exp)
        if "selective_dynamics" in sp:
            got = [list(map(bool, f)) for f in s.site_properties.get("selective_dynamics", [])]
            check(got == sp["selective_dynamics"], f"{tag} pymatgen: selective dynamics {got}")


def check_pmg_json(path, expected):
    name = os.path.basename(path)
    with open(path) as f:
        d = json.load(f)
    dicts = d if isinstance(d, list) else [d]
    check(len(dicts) == len(expected), f"{name}: {len(dicts)} structures, expected {len(expected)}")
    for k, (sd, exp) in enumerate(zip(dicts, expected)):
        tag = f"{name}[{k}]"
        s = Structure.from_dict(sd)
        compare_structure(f"{tag} pymatgen", s.lattice.matrix, [x.symbol for x in s.species], s.frac_coords, exp)
        for key, vals in exp["site_properties"].items():
            check(s.site_properties.get(key) == vals, f"{tag} pymatgen: site property {key}")
        check(dict(s.properties) == exp["properties"], f"{tag} pymatgen: properties {s.properties}")
        a = AseAtomsAdaptor.get_atoms(s)
        compare_structure(f"{tag} ASE (AseAtomsAdaptor)", a.cell[:], a.get_chemical_symbols(), a.get_scaled_positions(wrap=False), exp)


def cross_check(run_cargo):
    if run_cargo:
        print("running: cargo test --lib write_roundtrip_files")
        subprocess.run(["cargo", "test", "--quiet", "--lib", "write_roundtrip_files"], cwd=ROOT, check=True)
    files = sorted(f for f in os.listdir(RT_DIR) if not f.endswith(".expected.json")) if os.path.isdir(RT_DIR) else []
    check(len(files) >= 4, f"{RT_DIR}: {len(files)} files written by Geode, expected at least 4")
    for f in files:
        path = os.path.join(RT_DIR, f)
        with open(path + ".expected.json") as fh:
            side = json.load(fh)
        n_before = len(failures)
        {"poscar": check_poscar, "extxyz": check_extxyz, "pmg_json": check_pmg_json}[side["format"]](path, side["structures"])
        print(f"{'ok  ' if len(failures) == n_before else 'FAIL'} {f} ({side['format']}, {len(side['structures'])} structure(s))")


# ---------------------------------------------------------------------------------------------------
# Reference files written by pymatgen and ASE.

TRICLINIC = [[4.1, 0.2, -0.1], [0.7, 5.3, 0.3], [-0.4, 0.9, 6.2]]
TRI_SPECIES = ["Li", "Fe", "O", "Fe", "O", "O", "Li"]
TRI_FRAC = [[0, 0, 0], [0.5, 0.25, 0.125], [0.123456789012345, 0.7, 0.9], [0.75, 0.5, 0.375],
            [0.31, 0.62, 0.04], [0.9, 0.1, 0.55], [0.5, 0.5, 0.5]]


def entry(lattice, species, frac, site_properties=None, properties=None):
    return {
        "lattice": np.asarray(lattice, dtype=float).tolist(),
        "species": list(species),
        "frac_coords": np.asarray(frac, dtype=float).tolist(),
        "site_properties": site_properties or {},
        "properties": properties or {},
    }


def make_refs():
    os.makedirs(REF_DIR, exist_ok=True)
    expected = {}

    # 1. ASE extxyz: a triclinic frame with info, a calculator (energy, forces, stress), an extra array
    #    and a FixCartesian constraint (written as move_mask), then a plain cubic frame.
    a = ase.Atoms(TRI_SPECIES, cell=TRICLINIC, scaled_positions=TRI_FRAC, pbc=True)
    a.info.update({"name": "Li-Fe-O test frame", "n": 3, "flag": True, "vec": np.array([1.0, 2.0, 3.0])})
    a.set_initial_magnetic_moments([0.0, 4.0, 0.0, 3.5, 0.0, 0.0, 0.0])
    forces = np.array([[0.125 * i, -0.5, 0.0078125 * i] for i in range(len(a))])
    stress = np.array([0.01, 0.02, 0.03, 0.004, 0.003, 0.002])  # Voigt xx yy zz yz xz xy
    a.calc = SinglePointCalculator(a, energy=-42.125, forces=forces, stress=stress)
    a.set_constraint(FixCartesian(1, mask=[True, False, False]))
    b = ase.Atoms("NaCl", cell=[5.64, 5.64, 5.64], scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], pbc=True)
    b.calc = SinglePointCalculator(b, energy=-6.5)
    name = "ase_frames.extxyz"
    ase.io.write(os.path.join(REF_DIR, name), [a, b], format="extxyz")
    frames = []
    for f in ase.io.read(os.path.join(REF_DIR, name), index=":", format="extxyz"):
        props = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.info.items()}
        props["energy"] = f.get_potential_energy()
        sp = {}
        try:
            props["stress"] = voigt_to_3x3(f.get_stress(voigt=True).tolist())
        except Exception:
            pass
        try:
            sp["forces"] = f.get_forces(apply_constraint=False).tolist()
        except Exception:
            pass
        if f.constraints:
            sp["selective_dynamics"] = ase_moving(f).tolist()
        for k in f.arrays:
            if k not in ("numbers", "positions"):
                sp[k] = f.arrays[k].tolist()
        frames.append(entry(f.cell[:], f.get_chemical_symbols(), f.get_scaled_positions(wrap=False), sp, props))
    expected[name] = {"written_by": f"ase.io.write(format='extxyz'), ASE {ASE_VERSION}", "read_with": "ase.io.read", "structures": frames}

    # 2. pymatgen POSCAR with selective dynamics. The species are not grouped, so pymatgen writes one
    #    group per run of equal species (symbols repeat: Li Fe O Fe O Li).
    s = Structure(Lattice(TRICLINIC), TRI_SPECIES, TRI_FRAC)
    sd = [[i % 2 == 0, True, i % 3 == 0] for i in range(len(s))]
    name = "pymatgen_selective.vasp"
    Poscar(s, comment="Li2Fe2O3 triclinic, written by pymatgen", selective_dynamics=sd).write_file(os.path.join(REF_DIR, name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = Poscar.from_file(os.path.join(REF_DIR, name))
    r = p.structure
    expected[name] = {
        "written_by": f"pymatgen.io.vasp.Poscar.write_file, pymatgen {PMG_VERSION}",
        "read_with": "Poscar.from_file",
        "structures": [entry(r.lattice.matrix, [x.symbol for x in r.species], r.frac_coords,
                             {"selective_dynamics": [list(map(bool, f)) for f in r.site_properties["selective_dynamics"]]},
                             {"comment": p.comment})],
    }

    # 3. pymatgen as_dict JSON: a list of two structures, one with oxidation states and properties.
    s1 = Structure(Lattice(TRICLINIC), TRI_SPECIES, TRI_FRAC,
                   site_properties={"magmom": [0, 4, 0, 3.5, 0, 0, 0]}, properties={"energy": -1.5, "note": "test"})
    s2 = Structure(Lattice.from_parameters(3.0, 4.0, 5.0, 80, 95, 100), ["Fe3+", "O2-", "Fe2+"],
                   [[0, 0, 0], [0.5, 0.5, 0.5], [0.1, 0.2, 0.3]])
    name = "pymatgen_structures.json"
    with open(os.path.join(REF_DIR, name), "w") as f:
        json.dump([s1.as_dict(), s2.as_dict()], f, indent=1)
    with open(os.path.join(REF_DIR, name)) as f:
        back = [Structure.from_dict(d) for d in json.load(f)]
    expected[name] = {
        "written_by": f"json.dump([Structure.as_dict(), ...]), pymatgen {PMG_VERSION}",
        "read_with": "Structure.from_dict",
        "structures": [entry(x.lattice.matrix, [e.element.symbol if hasattr(e, "element") else e.symbol for e in x.species],
                             x.frac_coords, {k: v for k, v in x.site_properties.items()}, dict(x.properties)) for x in back],
    }

    # 4. A ComputedStructureEntry.
    e = ComputedStructureEntry(Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
                               -16.5, correction=-0.25, entry_id="test-1")
    name = "pymatgen_entry.json"
    with open(os.path.join(REF_DIR, name), "w") as f:
        json.dump(e.as_dict(), f, indent=1)
    with open(os.path.join(REF_DIR, name)) as f:
        back = ComputedStructureEntry.from_dict(json.load(f))
    x = back.structure
    expected[name] = {
        "written_by": f"json.dump(ComputedStructureEntry.as_dict()), pymatgen {PMG_VERSION}",
        "read_with": "ComputedStructureEntry.from_dict",
        "structures": [entry(x.lattice.matrix, [e.symbol for e in x.species], x.frac_coords, {},
                             {"entry_id": back.entry_id, "energy": back.energy,
                              "uncorrected_energy": back.uncorrected_energy, "correction": back.correction})],
    }

    with open(os.path.join(REF_DIR, "expected.json"), "w") as f:
        json.dump({"generator": f"scripts/check_io_roundtrip.py, pymatgen {PMG_VERSION}, ase {ASE_VERSION}", "files": expected}, f, indent=1, default=numpy_to_python)
        f.write("\n")
    with open(os.path.join(REF_DIR, "README.md"), "w") as f:
        f.write(f"""# Reference files written by pymatgen and ASE

generated by scripts/check_io_roundtrip.py with pymatgen {PMG_VERSION} / ase {ASE_VERSION}

| file | written by |
|---|---|
""")
        for n, v in expected.items():
            f.write(f"| `{n}` | {v['written_by']} |\n")
        f.write("""
`expected.json` holds what pymatgen or ASE read back from each file (lattice rows in Å, species,
fractional coordinates, site properties, properties); the Rust tests in `src/io/poscar.rs`,
`src/io/extxyz.rs` and `src/io/pmg_json.rs` parse these files and compare against it.
Regenerate with `python scripts/check_io_roundtrip.py` (needs pymatgen and ase).
""")
    print(f"wrote {len(expected)} reference files, expected.json and README.md to {os.path.relpath(REF_DIR, ROOT)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-cargo", action="store_true", help="use the files already in target/io-roundtrip")
    ap.add_argument("--no-refs", action="store_true", help="do not rewrite tests/assets/formats")
    args = ap.parse_args()
    print(f"pymatgen {PMG_VERSION}, ase {ASE_VERSION}")
    cross_check(not args.no_cargo)
    if not args.no_refs:
        make_refs()
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
