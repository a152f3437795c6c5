#!/usr/bin/env python3
"""Build tests/fixtures/crystalnn_matminer.json: CrystalNN site data and the CDVAE structure fingerprint.

Run with the reference environment (pymatgen 2026.10.24, matminer 0.10.1):
    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install pymatgen==2026.10.24 matminer==0.10.1
    /tmp/ref/bin/python scripts/make_crystalnn_fixtures.py

The structure fingerprint is the one CDVAE's coverage metrics use (cdvae/scripts/eval_utils.py and
compute_metrics.py): `CrystalNNFingerprint.from_preset("ops")` of every site (61 values), averaged over the
sites, on structures without oxidation states. For every structure the file stores the lattice rows (Å),
species, fractional coordinates, the averaged fingerprint, and per site CrystalNN's coordination weights
(`get_nn_data(...).cn_weights`) and the rounded neighbour weights; `error` where matminer raises.

Structures: a seeded sample of the embedded dataset's test split (split by reduced formula, as
src/data/split.rs), a few textbook crystals, some rattled copies (no symmetric ties), and, when a folder
of CIFs is given (`--generated DIR`, e.g. the output of `geode generate --n 1000 --seed 1 --out DIR`),
a seeded sample of 24 of them: decoder output is less regular than anything in the dataset.
Also `default_radius`: pymatgen's CovalentRadius (atomic radius where it has none) per element, Z = 1..94.
"""
import argparse, gzip, json, random, warnings
from pathlib import Path

import numpy as np
from matminer.featurizers.site.fingerprint import CrystalNNFingerprint
from pymatgen.core import Element, Lattice, Structure

try:
    from pymatgen.analysis.local_env import CrystalNN, _get_default_radius
except ImportError:
    from pymatgen.core.local_env import CrystalNN, _get_default_radius

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "crystalnn_matminer.json"


def fnv1a64(b: bytes) -> int:
    h = 0xCBF29CE484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def emb(s: Structure, name: str) -> dict:
    return {
        "name": name,
        "lattice": [[float(x) for x in row] for row in s.lattice.matrix],
        "species": [sp.symbol for sp in s.species],
        "frac_coords": [[float(x) for x in row] for row in s.frac_coords],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=Path)
    args = ap.parse_args()
    data = json.load(gzip.open(ROOT / "assets/oqmd_icsd_20.json.gz"))
    test = []
    for e in data["entries"]:
        s = Structure(Lattice(np.array(e["lattice"]).reshape(3, 3)), [Element.from_Z(z) for z in e["z"]],
                      np.array(e["frac"]).reshape(-1, 3))
        if fnv1a64(s.composition.reduced_formula.encode()) % 10 == 0:
            test.append((e["name"], s))
    rng = random.Random(20261205)
    picked = rng.sample(test, 70)
    structures = [(f"test:{n}", s) for n, s in picked]
    structures += [
        ("fcc Cu", Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])),
        ("bcc Fe", Structure(Lattice.cubic(2.87), ["Fe"] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("rock salt NaCl", Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("CsCl", Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("zinc blende ZnS", Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]])),
        ("diamond Si", Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])),
        ("perovskite SrTiO3", Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                                        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])),
        ("graphite-like layer (long c)", Structure(Lattice.hexagonal(2.46, 16.0), ["C", "C"], [[0, 0, 0], [1 / 3, 2 / 3, 0]])),
        ("one atom, long axis", Structure(Lattice.tetragonal(3.0, 15.0), ["Ar"], [[0, 0, 0]])),
    ]
    np.random.seed(7)  # Structure.perturb draws from numpy's global generator
    for n, s in picked[:8]:
        r = s.copy()
        r.perturb(0.15, min_distance=0.02)
        structures.append((f"rattled:{n}", r))
    if args.generated:
        cifs = sorted(args.generated.glob("*.cif"))
        for path in random.Random(5).sample(cifs, 24):
            structures.append((f"generated:{path.name}", Structure.from_file(path)))
    fp = CrystalNNFingerprint.from_preset("ops")
    cnn = CrystalNN()
    out = []
    for name, s in structures:
        rec = emb(s, name)
        try:
            site_fps = [fp.featurize(s, i) for i in range(len(s))]
            rec["fingerprint"] = [float(x) for x in np.array(site_fps).mean(axis=0)]
            sites = []
            for i in range(len(s)):
                d = cnn.get_nn_data(s, i)
                sites.append({
                    "cn_weights": {str(k): float(v) for k, v in sorted(d.cn_weights.items())},
                    "weights": [float(x["weight"]) for x in d.all_nninfo],
                })
            rec["sites"] = sites
        except Exception as exc:  # noqa: BLE001 - recorded as the reference's answer
            rec["error"] = f"{type(exc).__name__}: {exc}"
        out.append(rec)
        print(name, len(s), "error" if "error" in rec else "ok", flush=True)
    radii = {}
    for z in range(1, 95):
        el = Element.from_Z(z)

        class _Site:
            specie = el
        try:
            radii[el.symbol] = float(_get_default_radius(_Site()))
        except Exception:  # noqa: BLE001
            pass
    OUT.write_text(json.dumps({
        "source": "pymatgen 2026.10.24 CrystalNN, matminer 0.10.1 CrystalNNFingerprint.from_preset('ops')",
        "labels": fp.feature_labels(),
        "default_radius": radii,
        "structures": out,
    }, indent=1))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
