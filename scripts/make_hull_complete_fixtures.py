#!/usr/bin/env python3
"""pymatgen's answers on the complete OQMD references (assets/hull_references.csv.gz), for
tests/hull_pymatgen.rs and the speed comparison in docs/stability.md.

    /tmp/ref/bin/python scripts/make_hull_complete_fixtures.py [--n 200] [--out tests/fixtures/hull_complete_pymatgen.json]

Queries: a seeded random sample of the ICSD rows, half of them cells of more than 20 atoms (the phases the
embedded dataset leaves out), each asked with its own composition and formation energy. For each query
pymatgen builds the PhaseDiagram of its chemical system from every reference inside it (ICSD rows and OQMD
composition-table rows, energies = formation energy x atoms) plus one el:X entry at 0 eV per element (what
Geode's PhaseDiagram::from_formation_energies adds), then calls
get_decomp_and_e_above_hull(PDEntry(comp, e * natoms), allow_negative=True, check_stable=False).
That is how a pymatgen user queries this reference set: one diagram per chemical system. The time of each
(build + query, time.perf_counter) is stored with the answer.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from importlib.metadata import version
from pathlib import Path

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

ROOT = Path(__file__).resolve().parent.parent
REFS = ROOT / "assets" / "hull_references.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "hull_complete_pymatgen.json")
    args = ap.parse_args()

    rows = []
    for line in gzip.open(REFS, "rt"):
        if line.startswith("#") or line.startswith("source,"):
            continue
        source, name, formula, energy, _stability = line.rstrip("\n").split(",")
        comp = Composition(formula)
        rows.append((f"{'icsd' if source == 'icsd' else 'oqmd-table'}:{name}", comp, float(energy), source))
    by_elements: dict[frozenset, list] = {}
    for r in rows:
        by_elements.setdefault(frozenset(e.symbol for e in r[1].elements), []).append(r)

    rng = random.Random(args.seed)
    icsd = [r for r in rows if r[3] == "icsd" and len(r[1].elements) > 1]
    big = [r for r in icsd if r[1].num_atoms > 20]
    small = [r for r in icsd if r[1].num_atoms <= 20]
    sample = rng.sample(big, args.n // 2) + rng.sample(small, args.n - args.n // 2)

    queries = []
    for name, comp, e, _ in sample:
        els = frozenset(x.symbol for x in comp.elements)
        t0 = time.perf_counter()
        entries = [
            PDEntry(c, f * c.num_atoms, name=n) for key, group in by_elements.items() if key <= els for n, c, f, _ in group
        ]
        entries += [PDEntry(Composition(x), 0.0, name=x) for x in sorted(els)]
        pd = PhaseDiagram(entries)
        decomp, ehull = pd.get_decomp_and_e_above_hull(
            PDEntry(comp, e * comp.num_atoms), allow_negative=True, check_stable=False
        )
        seconds = time.perf_counter() - t0
        queries.append(
            {
                "name": name,
                "formula": comp.formula.replace(" ", ""),
                "n_atoms": comp.num_atoms,
                "formation_energy_per_atom": e,
                "e_above_hull": ehull,
                "decomposition": sorted(
                    [{"formula": d.composition.reduced_formula, "fraction": x} for d, x in decomp.items()],
                    key=lambda d: d["formula"],
                ),
                "references_in_system": len(entries),
                "pymatgen_seconds": seconds,
            }
        )
    out = {
        "generator": "scripts/make_hull_complete_fixtures.py",
        "pymatgen": version("pymatgen"),
        "seed": args.seed,
        "references": "assets/hull_references.csv.gz",
        "queries": queries,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    total = sum(q["pymatgen_seconds"] for q in queries)
    print(json.dumps({"queries": len(queries), "pymatgen_seconds": total, "out": str(args.out)}))


if __name__ == "__main__":
    main()
