#!/usr/bin/env python3
"""Write tests/fixtures/lj_ase.json: ASE's LennardJones calculator (energy, forces, stress) on rattled and
strained argon cells, and ASE's FIRE on UnitCellFilter relaxing two of them (energy and fmax after every
step, steps taken, final cell and positions). The reference for Geode's pair potential and relaxation.

Run with an interpreter that has ase 3.29.0:  /tmp/ref/bin/python scripts/make_lj_fixtures.py
"""
import json
from pathlib import Path

import ase
import numpy as np
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.filters import UnitCellFilter
from ase.optimize import FIRE
from ase.stress import voigt_6_to_full_3x3_stress

SIGMA, EPSILON = 3.405, 0.0104  # argon (Å, eV)
RC = 3.0 * SIGMA


def calc():
    return LennardJones(sigma=SIGMA, epsilon=EPSILON, rc=RC, smooth=False)


def structures():
    rng = np.random.default_rng(7)
    out = {}
    fcc = bulk("Ar", "fcc", a=5.26, cubic=True)
    a = fcc.copy()
    a.positions += rng.normal(0, 0.05, a.positions.shape)
    out["fcc_rattled"] = a
    b = a.copy()
    b.set_cell(b.cell @ np.array([[1.04, 0.02, 0.0], [0.0, 0.97, 0.01], [0.01, 0.0, 1.02]]), scale_atoms=True)
    out["fcc_strained"] = b
    c = fcc.repeat((2, 2, 2))
    c.positions += rng.normal(0, 0.08, c.positions.shape)
    c.set_cell(c.cell * 1.03, scale_atoms=True)
    out["fcc_222_expanded"] = c
    cell = 1.35 * np.array([[5.9, 0.3, 0.2], [1.1, 6.2, -0.4], [0.6, 0.9, 6.6]])
    frac = rng.random((6, 3))
    d = ase.Atoms("Ar6", scaled_positions=frac, cell=cell, pbc=True)
    # keep atoms apart so the energy is moderate
    while min(d.get_all_distances(mic=True)[np.triu_indices(6, 1)]) < 3.1:
        d.set_scaled_positions(rng.random((6, 3)))
    out["triclinic_random"] = d
    return out


def record(atoms):
    return {"lattice": atoms.cell.array.tolist(), "species": atoms.get_chemical_symbols(), "frac": atoms.get_scaled_positions(wrap=False).tolist()}


doc = {"ase": ase.__version__, "sigma": SIGMA, "epsilon": EPSILON, "rc": RC, "structures": [], "relaxations": []}
for name, atoms in structures().items():
    atoms.calc = calc()
    doc["structures"].append({
        "name": name, **record(atoms),
        "energy": atoms.get_potential_energy(),
        "forces": atoms.get_forces().tolist(),
        "stress": voigt_6_to_full_3x3_stress(atoms.get_stress()).tolist(),
    })
for name in ["fcc_strained", "fcc_222_expanded", "triclinic_random"]:
    atoms = structures()[name]
    atoms.calc = calc()
    start = record(atoms)
    ucf = UnitCellFilter(atoms)
    opt = FIRE(ucf, logfile=None)
    trace = []
    opt.attach(lambda: trace.append({"energy": atoms.get_potential_energy(), "fmax": float(np.linalg.norm(ucf.get_forces(), axis=1).max())}))
    converged = opt.run(fmax=1e-3, steps=400)
    doc["relaxations"].append({"name": name, "start": start, "fmax": 1e-3, "max_steps": 400, "converged": bool(converged),
                               "steps": opt.nsteps, "trace": trace, "final": record(atoms), "final_energy": atoms.get_potential_energy()})
out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lj_ase.json"
out.write_text(json.dumps(doc, indent=0) + "\n")
print(f"wrote {out}: {[ (r['name'], r['steps'], r['converged']) for r in doc['relaxations']]}")
