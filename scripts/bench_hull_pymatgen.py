#!/usr/bin/env python3
"""Time pymatgen on the work stored in tests/fixtures/hull_pymatgen.json (the baseline for Geode's hull code).

Run with the reference environment (see scripts/make_hull_fixtures.py):

    /tmp/ref/bin/python scripts/bench_hull_pymatgen.py [--fixture tests/fixtures/hull_pymatgen.json] [--repeat 3]

For every system in the fixture the same PDEntry list as the generator's is rebuilt from
assets/oqmd_icsd_20.json.gz (dataset entries listed in `references` plus one synthetic el:X entry with
energy 0 per element). Timed separately, with time.perf_counter, best of --repeat runs each:
  build_s  - constructing all PhaseDiagram objects (qhull included);
  query_s  - all queries, `get_decomp_and_e_above_hull(PDEntry(comp, e * natoms), allow_negative=True,
             check_stable=False)` on the already-built diagrams (query compositions and entries are made
             before the clock starts).
The answers are checked against the fixture (|de| <= 1e-9) outside the timed region. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "hull_pymatgen.json"
DATASET = ROOT / "assets" / "oqmd_icsd_20.json.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixture", type=Path, default=FIXTURE)
    ap.add_argument("--dataset", type=Path, default=DATASET)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    fx = json.loads(args.fixture.read_text())
    by_id = {e["id"]: e for e in json.loads(gzip.open(args.dataset).read())["entries"]}

    systems = []
    for s in fx["systems"]:
        ents = []
        for i in s["references"]:
            counts = Counter(Element.from_Z(z).symbol for z in by_id[i]["z"])
            ents.append(
                PDEntry(Composition(dict(counts)), by_id[i]["formation_energy_per_atom"] * sum(counts.values()), name=str(i))
            )
        ents += [PDEntry(Composition(el), 0.0, name=f"el:{el}") for el in s["elements"]]
        queries = []
        for q in s["queries"]:
            comp = Composition(q["formula"])
            queries.append((PDEntry(comp, q["energy_per_atom"] * comp.num_atoms), q["e_above_hull"]))
        systems.append((ents, queries))
    n_queries = sum(len(q) for _, q in systems)

    best_build = best_query = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        pds = [PhaseDiagram(ents) for ents, _ in systems]
        best_build = min(best_build, time.perf_counter() - t0)

        results = []
        t0 = time.perf_counter()
        for pd, (_, queries) in zip(pds, systems):
            for entry, _ in queries:
                results.append(pd.get_decomp_and_e_above_hull(entry, allow_negative=True, check_stable=False)[1])
        best_query = min(best_query, time.perf_counter() - t0)

        expected = [e for _, queries in systems for _, e in queries]
        bad = sum(1 for a, b in zip(results, expected) if abs(a - b) > 1e-9)
        if bad:
            print(f"warning: {bad} query answers differ from the fixture", file=sys.stderr)

    print(
        json.dumps(
            {
                "tool": "pymatgen",
                "version": version("pymatgen"),
                "systems": len(systems),
                "queries": n_queries,
                "build_s": round(best_build, 6),
                "query_s": round(best_query, 6),
                "per_query_us": round(best_query / n_queries * 1e6, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
