#!/usr/bin/env python3
"""For every mismatch dumped by `examples/chgnet_rattle_recovery --dump DIR`: relax the same rattled input and
the dataset crystal with Python CHGNet 0.4.2 (ASE FIRE + UnitCellFilter, fmax 0.05, 500 steps) and compare
energies and structures with Geode's relaxations. Prints one JSON line per crystal.
    OMP_NUM_THREADS=1 /tmp/ref/bin/python scripts/check_rattle_mismatches.py DIR
"""
import json
import sys
from pathlib import Path

import torch
from ase.filters import UnitCellFilter
from ase.optimize import FIRE
from chgnet.model import CHGNet, CHGNetCalculator
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

torch.set_num_threads(1)
calc = CHGNetCalculator(model=CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False), use_device="cpu")
sm = StructureMatcher()


def relax(s):
    atoms = AseAtomsAdaptor.get_atoms(s)
    atoms.calc = calc
    FIRE(UnitCellFilter(atoms), logfile=None).run(fmax=0.05, steps=500)
    return AseAtomsAdaptor.get_structure(atoms), float(atoms.get_potential_energy()) / len(atoms)


d = Path(sys.argv[1])
for rattled in sorted(d.glob("*.rattled.cif")):
    name = rattled.name[: -len(".rattled.cif")]
    ours = Structure.from_file(d / f"{name}.relaxed.cif")
    ours_orig = Structure.from_file(d / f"{name}.original-relaxed.cif")
    dataset = Structure.from_file(d / f"{name}.dataset.cif")
    py, e_py = relax(Structure.from_file(rattled))
    py_orig, e_py_orig = relax(dataset)
    print(json.dumps({
        "name": name,
        "python_rattled_relaxed_matches_dataset": bool(sm.fit(py, dataset)),
        "python_rattled_relaxed_matches_geode_rattled_relaxed": bool(sm.fit(py, ours)),
        "python_original_relaxed_matches_geode_original_relaxed": bool(sm.fit(py_orig, ours_orig)),
        "python_e_rattled_minus_original_ev_per_atom": e_py - e_py_orig,
    }), flush=True)
