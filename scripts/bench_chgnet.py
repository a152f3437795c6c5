#!/usr/bin/env python3
"""Python CHGNet 0.4.2 throughput on the structures of tests/fixtures/chgnet_reference.json, the reference
side of scripts/bench_chgnet.sh: energy + forces + stress (task 'efs'), one structure per call and in batches
of 64, energies alone (task 'e', batches of 64), graph construction (CrystalGraphConverter, the compiled 'fast' algorithm) timed separately.
Prints one JSON line."""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from chgnet.model import CHGNet
from pymatgen.core import Lattice, Structure

ROOT = Path(__file__).resolve().parent.parent


def best_of(repeat, f):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fx = json.loads((ROOT / "tests/fixtures/chgnet_reference.json").read_text())
    structures = [Structure(Lattice(np.array(r["lattice"])), r["z"], np.array(r["frac"])) for r in fx["structures"]]
    model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    model.predict_structure(structures[:64], task="efs", batch_size=64)
    graphs_s = best_of(args.repeat, lambda: [model.graph_converter(s) for s in structures])
    single_s = best_of(args.repeat, lambda: [model.predict_structure(s, task="efs") for s in structures])
    batch_s = best_of(args.repeat, lambda: model.predict_structure(structures, task="efs", batch_size=64))
    energy_only_s = best_of(args.repeat, lambda: model.predict_structure(structures, task="e", batch_size=64))
    n = len(structures)
    print(json.dumps({
        "implementation": "chgnet-python", "threads": args.threads, "structures": n,
        "graphs_s": graphs_s, "single_s": single_s, "batch64_s": batch_s, "batch64_energy_only_s": energy_only_s,
        "single_per_structure_ms": 1e3 * single_s / n, "batch64_per_structure_ms": 1e3 * batch_s / n,
        "graph_share_single": graphs_s / single_s,
    }))


if __name__ == "__main__":
    main()
