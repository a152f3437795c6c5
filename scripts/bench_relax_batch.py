#!/usr/bin/env python3
"""Python CHGNet 0.4.2's StructOptimizer on the structures of scripts/bench_relax_batch.sh: FIRE with ASE's
UnitCellFilter (the filter Geode's relaxation implements), fmax 0.05 eV/Å, at most 500 steps, CHGNet 0.3.0,
one structure at a time (StructOptimizer relaxes one Atoms object per call). Prints one JSON line."""
import argparse
import json
import time
import warnings

import torch
from ase.io import read
from chgnet.model import CHGNet, StructOptimizer
from pymatgen.io.ase import AseAtomsAdaptor

warnings.filterwarnings("ignore")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    atoms = read(args.input, index=":")
    model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    opt = StructOptimizer(model=model, optimizer_class="FIRE", use_device="cpu")
    opt.relax(atoms[0], fmax=0.05, steps=5, relax_cell=True, ase_filter="UnitCellFilter", verbose=False)
    t = time.perf_counter()
    energies, steps, converged = [], 0, 0
    for a in atoms:
        s = AseAtomsAdaptor.get_structure(a)
        r = opt.relax(s, fmax=0.05, steps=500, relax_cell=True, ase_filter="UnitCellFilter", verbose=False)
        traj = r["trajectory"]
        n = len(traj.energies)
        steps += n - 1
        converged += int(n - 1 < 500)
        energies.append(float(traj.energies[-1]) / len(a))
    secs = time.perf_counter() - t
    print(json.dumps({"seconds": secs, "relaxations_per_s": len(atoms) / secs, "steps": steps,
                      "converged": converged, "energies_per_atom": energies, "structures": len(atoms)}))


if __name__ == "__main__":
    main()
