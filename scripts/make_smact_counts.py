#!/usr/bin/env python3
"""Write assets/smact_icsd24_counts.json and tests/fixtures/smact_plausible.json.

* The asset: SMACT's ICSD-24 occurrence counts of every non-zero oxidation state reported at least 3
  times (the states `smact_validity` uses by default, assets/smact_icsd24_consensus3.json), as
  ``{"Fe": {"2": 5046, "3": 8937, ...}, ...}``. Geode ranks charge-balanced assignments by them: the
  most plausible assignment maximises the product over elements of count(e, q) / Σ_q count(e, q).
* The fixture: for a list of formulas, every assignment SMACT accepts (one state per element from that
  set, Σ qᵢnᵢ = 0, ``smact.screening.pauling_test``), scored by the same rule, and the best one.

Run with an interpreter that has smact 4.0.2 (MIT):  /tmp/ref/bin/python scripts/make_smact_counts.py
"""
import itertools
import json
import math
import os
from importlib.metadata import version
from pathlib import Path

import smact
from smact.screening import pauling_test
from pymatgen.core import Composition

root = Path(__file__).resolve().parent.parent
raw = json.load(open(os.path.join(os.path.dirname(smact.__file__), "data", "oxidation_states_icsd24_counts.json")))
counts = {}
for row in raw:
    if row["oxidation_state"] != 0 and row["results_count"] >= 3:
        counts.setdefault(row["element"], {})[str(row["oxidation_state"])] = row["results_count"]
cons = json.load(open(root / "assets" / "smact_icsd24_consensus3.json"))["oxidation_states"]
for el, states in cons.items():
    assert sorted(int(q) for q in counts.get(el, {})) == sorted(states), el
text = '{"source":' + json.dumps(f"smact=={version('smact')} smact/data/oxidation_states_icsd24_counts.json") + ',\n'
text += '"rule":"results_count of every non-zero oxidation state with results_count >= 3",\n"counts":{\n'
text += ",\n".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in counts.items()) + "\n}}\n"
(root / "assets" / "smact_icsd24_counts.json").write_text(text)


def score(el, q):
    c = counts[el]
    return math.log(c[str(q)] / sum(c.values()))


formulas = ["SrTiO3", "LiFePO4", "Fe2O3", "FeO", "MnO2", "Mn2O3", "Co3O4", "CuAlO2", "LiCoO2", "BaTiO3",
            "NaCl", "CsPbI3", "SnO2", "SnO", "V2O5", "VO2", "Cu2O", "CuO", "TiO2", "Ti2O3", "CrO3", "Cr2O3",
            "MoS2", "WO3", "Fe3O4", "LiMn2O4", "NaNbO3", "KTaO3", "ZnGeN2", "MgSiN2", "CaTiO3", "PbTiO3",
            "BiFeO3", "LaMnO3", "Ag2O", "AgCl", "NiO", "Li2S", "NaN3", "CaC2"]
cases = []
for f in formulas:
    comp = Composition(f)
    els = [e.symbol for e in comp.elements]
    amounts = [int(comp[e]) for e in els]
    g = math.gcd(*amounts)
    amounts = [a // g for a in amounts]
    enegs = [smact.Element(e).pauling_eneg for e in els]
    ok = []
    for qs in itertools.product(*[cons[e] for e in els]):
        if sum(q * n for q, n in zip(qs, amounts)) == 0 and pauling_test(list(qs), enegs):
            ok.append((sum(score(e, q) for e, q in zip(els, qs)), list(qs)))
    ok.sort(key=lambda t: -t[0])
    cases.append({"formula": f, "elements": els, "valid": len(ok),
                  "best": ok[0][1] if ok else None, "best_score": ok[0][0] if ok else None,
                  "runner_up_score": ok[1][0] if len(ok) > 1 else None})
fx = {"source": f"smact=={version('smact')}: consensus-3 states, smact.screening.pauling_test; "
                "ranked by sum of ln(count/total) of the ICSD-24 counts (scripts/make_smact_counts.py)",
      "cases": cases}
(root / "tests" / "fixtures" / "smact_plausible.json").write_text(json.dumps(fx, indent=1) + "\n")
print(f"{len(counts)} elements; {len(cases)} formulas, {sum(c['best'] is not None for c in cases)} valid")
