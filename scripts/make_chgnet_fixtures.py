#!/usr/bin/env python3
"""Write tests/fixtures/chgnet_reference.json: CHGNet 0.3.0 (chgnet==0.4.2, the Python reference) on
dataset crystals and on rattled and strained copies of them (energy, forces, stress, magnetic moments and
the sizes of CHGNet's atom and bond graphs), plus ASE FIRE + UnitCellFilter relaxations driven by
CHGNetCalculator. The reference for Geode's `energy::chgnet`.

Run with an interpreter that has torch, chgnet==0.4.2, pymatgen and ase:
    OMP_NUM_THREADS=1 /tmp/ref/bin/python scripts/make_chgnet_fixtures.py [--n 120] [--relax 12]
"""
import argparse
import importlib.metadata
import gzip
import json
from pathlib import Path

import ase
import chgnet
import numpy as np
import torch
from ase.filters import UnitCellFilter
from ase.optimize import FIRE
from chgnet.model import CHGNet, CHGNetCalculator
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

ROOT = Path(__file__).resolve().parent.parent
GPA = 160.21766208  # CHGNet's eV/Å³ → GPa factor


def dataset():
    with gzip.open(ROOT / "assets/oqmd_icsd_20.json.gz") as f:
        return json.load(f)["entries"]


def to_structure(e):
    lat = np.array(e["lattice"]).reshape(3, 3)
    return Structure(Lattice(lat), e["z"], np.array(e["frac"]).reshape(-1, 3))


def record(s: Structure):
    return {"lattice": s.lattice.matrix.tolist(), "z": [site.specie.Z for site in s], "frac": s.frac_coords.tolist()}


def variants(s: Structure, rng):
    rattled = s.copy()
    cart = rattled.cart_coords + rng.normal(0.0, 0.03, (len(s), 3))
    rattled = Structure(s.lattice, s.species, cart, coords_are_cartesian=True)
    eps = rng.uniform(-0.03, 0.03, (3, 3))
    eps = 0.5 * (eps + eps.T)
    strained = Structure(Lattice(s.lattice.matrix @ (np.eye(3) + eps)), s.species, s.frac_coords)
    cart = strained.cart_coords + rng.normal(0.0, 0.02, (len(s), 3))
    strained = Structure(strained.lattice, s.species, cart, coords_are_cartesian=True)
    return {"dataset": s, "rattled": rattled, "strained": strained}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=120, help="dataset crystals (each also rattled and strained)")
    ap.add_argument("--relax", type=int, default=12, help="relaxations (rattled + strained copies)")
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/chgnet_reference.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(2026)
    entries = [e for e in dataset() if max(e["z"]) <= 94]
    picks = sorted(rng.choice(len(entries), size=args.n, replace=False).tolist())
    model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    doc = {
        "chgnet": chgnet.__version__, "torch": torch.__version__, "pymatgen": importlib.metadata.version("pymatgen"),
        "ase": ase.__version__, "model": "0.3.0", "structures": [], "relaxations": [],
    }
    for idx in picks:
        e = entries[idx]
        for kind, s in variants(to_structure(e), rng).items():
            g = model.graph_converter(s)
            p = model.predict_structure(s, task="efsm")
            n = len(s)
            doc["structures"].append({
                "id": e["id"], "name": e["name"], "kind": kind, **record(s),
                "energy": float(p["e"]) * n,
                "forces": p["f"].tolist(),
                "stress": (p["s"] / GPA).tolist(),  # eV/Å³, ASE's sign
                "magmoms": p["m"].reshape(-1).tolist(),
                "n_directed": int(g.atom_graph.shape[0]),
                "n_undirected": int(len(g.undirected2directed)),
                "n_angles": int(g.bond_graph.shape[0]),
            })
    calc = CHGNetCalculator(model=model, use_device="cpu")
    relax_picks = picks[: args.relax]
    for k, idx in enumerate(relax_picks):
        e = entries[idx]
        s = variants(to_structure(e), rng)["strained" if k % 2 else "rattled"]
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        energies = []
        opt = FIRE(UnitCellFilter(atoms), logfile=None)
        opt.attach(lambda: energies.append(float(atoms.get_potential_energy())))
        converged = opt.run(fmax=0.05, steps=500)
        final = AseAtomsAdaptor.get_structure(atoms)
        doc["relaxations"].append({
            "id": e["id"], "name": e["name"], "initial": record(s), "final": record(final),
            "energy": float(atoms.get_potential_energy()), "steps": int(opt.nsteps), "converged": bool(converged),
            "energies": energies,
        })
    Path(args.out).write_text(json.dumps(doc))
    print(f"wrote {args.out}: {len(doc['structures'])} structures, {len(doc['relaxations'])} relaxations")


if __name__ == "__main__":
    main()
