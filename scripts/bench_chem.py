#!/usr/bin/env python3
"""Geode vs smact / pymatgen on the chemical stages of screening, in one run, single thread both:
smact_validity (defaults) on the 20,428 compositions of tests/fixtures/smact_validity.json, and
pymatgen SubstitutionPredictor(threshold=1e-3).composition_prediction (both directions) on the 66
compositions of tests/fixtures/substitution_pymatgen.json. Builds and runs
`cargo run --release --example bench_chem`, then times Python (best of 3) and prints the ratios.

    /tmp/ref/bin/python scripts/bench_chem.py
"""
import json, subprocess, time
from importlib.metadata import version
from pathlib import Path

from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionPredictor
from pymatgen.core import Composition, Species
from smact.screening import smact_validity

root = Path(__file__).resolve().parent.parent
rust = json.loads(subprocess.run(["cargo", "run", "--release", "--quiet", "--example", "bench_chem"], cwd=root, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
fx = json.loads((root / "tests/fixtures/smact_validity.json").read_text())
formulas = [r[0] for r in fx["compositions"]]
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    valid = sum(1 for f in formulas if smact_validity(f))
    best = min(best, time.perf_counter() - t)
sub = json.loads((root / "tests/fixtures/substitution_pymatgen.json").read_text())
pred = SubstitutionPredictor(threshold=1e-3)
comps = [Composition({Species.from_str(s): n for s, n in zip(it["species"], it["amounts"])}) for it in sub["compositions"]]
best_sub = float("inf")
for _ in range(3):
    t = time.perf_counter()
    n = sum(len(pred.composition_prediction(c, to_this_composition=True)) + len(pred.composition_prediction(c, to_this_composition=False)) for c in comps)
    best_sub = min(best_sub, time.perf_counter() - t)
py = {"tool": f"smact {version('smact')} / pymatgen {version('pymatgen')}", "validity": {"compositions": len(formulas), "valid": valid, "s": best, "per_s": len(formulas) / best},
      "substitution": {"compositions": len(comps), "predictions": n, "s": best_sub}}
print(json.dumps(rust))
print(json.dumps(py))
print(json.dumps({"validity_ratio": best / rust["validity"]["s"], "substitution_ratio": best_sub / rust["substitution"]["s"]}))
