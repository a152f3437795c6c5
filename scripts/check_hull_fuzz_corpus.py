#!/usr/bin/env python3
"""Replay the `hull` fuzz target's corpus (fuzz/corpus/hull: reference table, `|`, query table) through
`geode hull --refs R --query Q --json` and through pymatgen's PhaseDiagram, and compare every energy above
the hull that both answer. The corpus is what libFuzzer kept for new coverage: odd formulas, repeated and
positive elemental rows, polymorphs, many systems in one table.

pymatgen is given what `geode hull` reads: for formation energies, an elemental entry at 0 eV/atom for
each element without an elemental row at or below 0 (what Geode adds); for total energies the rows as
they are. Cases pymatgen cannot read (a formula it parses differently or not at all, a table Python's csv
module splits differently) are counted as skipped, not compared.

    /tmp/ref/bin/python scripts/check_hull_fuzz_corpus.py [GEODE_BINARY]
"""
import csv
import io
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
GEODE = sys.argv[1] if len(sys.argv) > 1 else str(Path.home() / ".cache/geode-target/release/geode")


def table(raw: bytes):
    text = raw.decode("utf-8")
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if r]
    head = rows[0]
    kind = "formation_energy_per_atom" if "formation_energy_per_atom" in head else "energy_per_atom"
    fi, ei = head.index("formula"), head.index(kind)
    return kind, [(r[fi], float(r[ei])) for r in rows[1:]]


def main():
    files = sorted((ROOT / "fuzz/corpus/hull").iterdir())
    stats = {"cases": len(files), "geode_answered": 0, "compared_cases": 0, "compared_queries": 0, "skipped": 0}
    worst, bad, crashes = 0.0, [], []
    with tempfile.TemporaryDirectory() as d:
        r_path, q_path = Path(d, "refs.csv"), Path(d, "query.csv")
        for f in files:
            data = f.read_bytes()
            cut = data.find(b"|")
            refs, query = (data[:cut], data[cut + 1:]) if cut >= 0 else (data, b"")
            r_path.write_bytes(refs)
            q_path.write_bytes(query)
            p = subprocess.run([GEODE, "hull", "--refs", str(r_path), "--query", str(q_path), "--json"],
                               capture_output=True, timeout=60)
            if p.returncode not in (0, 1, 2) or b"internal error" in p.stderr:
                crashes.append((f.name, p.returncode, p.stderr.decode(errors="replace")[-300:]))
                continue
            answers = [json.loads(line) for line in p.stdout.decode().splitlines() if line.startswith("{")]
            answers = [a for a in answers if "e_above_hull" in a]
            if not answers:
                continue
            stats["geode_answered"] += 1
            try:
                kind, rows = table(refs)
                qkind, _ = table(query)
                if kind != qkind:
                    raise ValueError("kinds differ")
                entries = [PDEntry(Composition(fm), e * Composition(fm).num_atoms, name=fm) for fm, e in rows]
                if kind == "formation_energy_per_atom":
                    els = sorted({str(el) for fm, _ in rows for el in Composition(fm).elements})
                    for el in els:
                        if not any(Composition(fm).is_element and str(Composition(fm).elements[0]) == el and e <= 0
                                   for fm, e in rows):
                            entries.append(PDEntry(Composition(el), 0.0, name=el))
                pd = PhaseDiagram(entries)
                theirs = []
                for a in answers:
                    c = Composition(a["formula"])
                    _, eh = pd.get_decomp_and_e_above_hull(PDEntry(c, a["energy_per_atom"] * c.num_atoms),
                                                           allow_negative=True, check_stable=False)
                    theirs.append(eh)
            except Exception:  # noqa: BLE001 - pymatgen or csv reads the case differently: not comparable
                stats["skipped"] += 1
                continue
            stats["compared_cases"] += 1
            for a, eh in zip(answers, theirs):
                stats["compared_queries"] += 1
                diff = abs(a["e_above_hull"] - eh)
                worst = max(worst, diff)
                if diff > 1e-6 * (1 + abs(eh)):
                    bad.append((f.name, a["formula"], a["e_above_hull"], eh))
    stats["max_abs_diff_ev_per_atom"] = worst
    stats["disagreements"] = len(bad)
    stats["crashes"] = len(crashes)
    print(json.dumps(stats))
    for b in bad[:20]:
        print("differs:", b)
    for c in crashes[:10]:
        print("crash:", c)
    return 1 if bad or crashes else 0


sys.exit(main())
