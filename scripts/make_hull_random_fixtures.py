#!/usr/bin/env python3
"""Write tests/fixtures/hull_random_pymatgen.json: random reference sets of the kind users concatenate
(several systems in one file, repeated elemental rows, elemental rows above and below 0 eV/atom,
polymorphs of one composition, positive formation energies, unreduced formulas) and random queries,
with pymatgen's answers.

Each case holds rows (formula, formation_energy_per_atom, in file order, named by their formula as
`geode hull --refs` names rows without a `name` column) and queries (formula, formation energy per atom).
pymatgen: `PDEntry(Composition(formula), e * natoms, name=formula)` for every row, plus an elemental entry
at 0 eV/atom for each element that has no elemental row at or below 0 (what `geode hull` adds);
`PhaseDiagram(entries)`; per query `get_decomp_and_e_above_hull(PDEntry(comp, e * n), allow_negative=True,
check_stable=False)`. Also the case of issue 30 (K-Mg-O with repeated elemental rows), verbatim.

    /tmp/ref/bin/python scripts/make_hull_random_fixtures.py
"""
import json
import random
import warnings
from importlib.metadata import version
from pathlib import Path

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
rng = random.Random(20261207)
POOL = ["Li", "Na", "K", "Mg", "Ca", "Al", "Ti", "Fe", "Ni", "Cu", "Zn", "Si", "O", "S", "N", "F", "Cl"]


def formula(els, amounts):
    return "".join(f"{e}{a}" for e, a in zip(els, amounts) if a > 0)


def random_rows(els, n):
    rows = []
    for _ in range(n):
        k = rng.randint(2, len(els))
        sub = rng.sample(els, k)
        amounts = [rng.randint(1, 6) for _ in sub]
        rows.append((formula(sub, amounts), round(rng.uniform(-2.5, 0.4), 6)))
    # polymorphs: the same composition again at another energy
    for f, e in rng.sample(rows, min(2, len(rows))):
        rows.append((f, round(e + rng.uniform(-0.2, 0.2), 6)))
    # elemental rows: repeated at 0, some above 0, sometimes one below 0
    for el in els:
        for _ in range(rng.randint(0, 3)):
            rows.append((f"{el}1", 0.0))
        if rng.random() < 0.4:
            rows.append((f"{el}1", round(rng.uniform(0.01, 0.3), 6)))
        if rng.random() < 0.2:
            rows.append((f"{el}2", round(rng.uniform(-0.3, -0.01), 6)))
    rng.shuffle(rows)
    return rows


def answer(rows, queries):
    entries = [PDEntry(Composition(f), e * Composition(f).num_atoms, name=f) for f, e in rows]
    els = sorted({str(el) for f, _ in rows for el in Composition(f).elements})
    for el in els:
        if not any(Composition(f).is_element and str(Composition(f).elements[0]) == el and e <= 0 for f, e in rows):
            entries.append(PDEntry(Composition(el), 0.0, name=el))
    pd = PhaseDiagram(entries)
    out = []
    for f, e in queries:
        c = Composition(f)
        decomp, ehull = pd.get_decomp_and_e_above_hull(PDEntry(c, e * c.num_atoms), allow_negative=True,
                                                       check_stable=False)
        out.append({"formula": f, "formation_energy_per_atom": e, "e_above_hull": ehull,
                    "decomposition": {x.composition.reduced_formula: amt for x, amt in decomp.items()}})
    return out


cases = []
issue30 = [("K1Mg6O6", -1.8563932824744687), ("K6Mg6O4", -1.7280864503388336), ("K1Mg2O4", -0.9979648386873092),
           ("K5Mg5O4", -0.9155423373778913), ("K1O1", 0.15824204952353238), ("Mg1O3", -1.5945963735124478),
           ("K1Mg2O5", -1.2229514419668315), ("K5Mg4O4", -2.337382318124469), ("K2Mg1O4", -0.07708798171187992),
           ("K4Mg5O1", -1.5532570178015708), ("O1", 0.0), ("Mg1", 0.0), ("K1", 0.0), ("O1", 0.0), ("O1", 0.0),
           ("O1", 0.0), ("Mg1", 0.0), ("O1", 0.0), ("Mg1", 0.0), ("Mg1", 0.0), ("Mg1", 0.0)]
cases.append({"name": "issue 30: K-Mg-O with repeated elemental rows", "rows": issue30,
              "queries": answer(issue30, [("K8Mg6O6", -1.6406389109551687)])})
for c in range(60):
    systems = [rng.sample(POOL, rng.randint(2, 4)) for _ in range(rng.randint(1, 3))]
    rows = [r for els in systems for r in random_rows(els, rng.randint(3, 12))]
    queries = []
    for _ in range(6):
        els = rng.choice(systems)
        sub = rng.sample(els, rng.randint(1, len(els)))
        queries.append((formula(sub, [rng.randint(1, 5) for _ in sub]), round(rng.uniform(-2.5, 0.5), 6)))
    cases.append({"name": f"random {c}", "rows": rows, "queries": answer(rows, queries)})
fx = {"source": f"pymatgen=={version('pymatgen')} PhaseDiagram.get_decomp_and_e_above_hull (allow_negative)",
      "cases": cases}
(ROOT / "tests" / "fixtures" / "hull_random_pymatgen.json").write_text(json.dumps(fx, indent=0) + "\n")
print(len(cases), "cases;", sum(len(c["queries"]) for c in cases), "queries;", "issue 30 answer:",
      cases[0]["queries"][0]["e_above_hull"])
