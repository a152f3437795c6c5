#!/usr/bin/env python3
"""Build tests/fixtures/substitution_pymatgen.json: pymatgen ionic-substitution predictions (Hautier et al. 2011).

Run with a throw-away reference environment (takes a few minutes):

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install pymatgen==2026.10.24 smact==4.0.2
    /tmp/ref/bin/python scripts/make_substitution_fixtures.py [--out tests/fixtures/substitution_pymatgen.json]

What it computes. Input compositions are reduced formulas drawn (fixed seed) from assets/oqmd_icsd_20.json.gz
(binary and ternary oxides, sulfides, halides, nitrides, and some quaternaries) plus a few classics, decorated
with oxidation states from `Composition(f).oxi_state_guesses()[0]`; formulas whose first guess is not all
integer, or that give a species missing from the lambda table (`SubstitutionProbability().species`), are
skipped. For each, `SubstitutionPredictor(threshold=1e-3).composition_prediction(comp, to_this_composition=T)`
is recorded for T = True ("to") and T = False ("from"): every prediction as
{"probability": p, "substitutions": [[from_species, to_species], ...]} (pairs in the composition's species
order), predictions sorted by probability descending, then by substitutions. `model` has the species list and
the normalisers px / Z of the probability model so a reimplementation can check its lambda table. `notes`
describes the algorithm as read from pymatgen's source.

The script re-executes itself with PYTHONHASHSEED=0 (pymatgen iterates over a set of Species).
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import math
import os
import random
import sys
from collections import Counter
from importlib.metadata import version
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

from pymatgen.analysis.structure_prediction.substitution_probability import (  # noqa: E402
    SubstitutionPredictor,
    SubstitutionProbability,
)
from pymatgen.core import Composition, Element, Species  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "assets" / "oqmd_icsd_20.json.gz"
OUT = ROOT / "tests" / "fixtures" / "substitution_pymatgen.json"
SEED = 20260413
THRESHOLD = 1e-3
MAX_ATOMS = 12  # reduced formula size limit (keeps oxi_state_guesses quick)
CLASSICS = ["Fe2O3", "LiFePO4", "BaTiO3", "NaCl", "CuInS2", "Cu2ZnSnS4", "LiCoO2", "CsPbI3", "GaN", "ZnS"]
# (number of elements, anion set, how many)
CATEGORIES = [
    (2, {"O"}, 8), (2, {"S"}, 5), (2, {"F", "Cl", "Br", "I"}, 6), (2, {"N"}, 4),
    (3, {"O"}, 10), (3, {"S"}, 5), (3, {"F", "Cl", "Br", "I"}, 6), (3, {"N"}, 4),
    (4, {"O", "S", "N", "F", "Cl", "Br", "I"}, 8),
]

NOTES = """\
pymatgen %(pmg)s, pymatgen.analysis.structure_prediction.substitution_probability (re-exported from \
pymatgen.core.structure_prediction.substitution_probability).
Model (SubstitutionProbability(lambda_table=None, alpha=-5)): rows [s1, s2, lambda] of data/lambda.json \
(6694 rows); rows containing "D1+" are skipped (11); species = every species appearing in a kept row (230); \
lambda(s1, s2) = table[frozenset({s1, s2})] (symmetric; no pair occurs twice; 192 rows are identities s-s), \
else alpha = -5. px[s] = sum over s' in species (s' = s included) of exp(lambda(s, s')) (built as: for (a, b) in \
product(species, repeat=2): v = exp(lambda(a, b)); px[a] += v/2; px[b] += v/2; Z += v). cond_prob(s1, s2) = \
exp(lambda(s1, s2)) / px[s2]  ("probability of substituting s1 for s2": s1 is the variable species, s2 the fixed one).
SubstitutionPredictor(threshold=1e-3).list_prediction(species, to_this_composition): every species must be in \
the model (else ValueError). For position i with fixed species t_i: to_this_composition=True scores a candidate \
s by cond_prob(s, t_i) = exp(lambda)/px[t_i] (s is the ORIGINAL species that becomes t_i); \
to_this_composition=False scores it by cond_prob(t_i, s) = exp(lambda)/px[s] (t_i becomes s). \
max_probabilities[i] = max over all model species s of that score. Depth-first branch and bound over positions \
in the composition's order: at each node best = [chosen probs so far] + max_probabilities[rest]; if \
reduce(mul, best) > threshold (strict), then at a leaf (all positions chosen) the prediction is \
{"probability": reduce(mul, best) = p_0*p_1*...*p_{n-1} multiplied left to right, "substitutions": \
{s_i: t_i} (True) or {t_i: s_i} (False)}, kept only if the chosen species are pairwise distinct (checked only at \
the leaf); otherwise it recurses over all model species for the next position. The bound only prunes (it is an \
upper bound), so the result set = all injective assignments whose product of conditional probabilities is \
> threshold. The identity substitution (s_i = t_i) is included like any other candidate (lambda(s, s) from the \
table, or alpha). No normalisation of the probabilities, no sorting (pymatgen's order follows set iteration).
composition_prediction(comp, to_this_composition): runs list_prediction(list(comp), ...) and keeps a \
prediction only if the OTHER composition is charge balanced: with subs = composition species -> other species, \
|sum_k subs[k].oxi_state * comp[k]| < 1e-8 (amounts of the given composition). Nothing else changes.
In this file: "substitutions" is [[from, to], ...] in the composition's species order (from = other species, \
to = composition species when direction is "to"; the reverse for "from"); predictions sorted by probability \
descending then by substitutions. %(stats)s"""


def decorate(formula: str) -> Composition | None:
    comp = Composition(formula)
    guesses = comp.oxi_state_guesses()
    if not guesses:
        return None
    g = guesses[0]
    if any(abs(v - round(v)) > 1e-9 for v in g.values()):
        return None
    return Composition({Species(str(el), int(round(g[str(el)]))): amt for el, amt in comp.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT.relative_to(ROOT)})")
    args = ap.parse_args()
    rng = random.Random(SEED)

    model = SubstitutionProbability()
    species_set = model.species

    data = json.loads(gzip.open(DATASET).read())
    reduced = sorted(
        {Composition(dict(Counter(Element.from_Z(z).symbol for z in e["z"]))).reduced_formula for e in data["entries"]}
    )
    reduced = [f for f in reduced if Composition(f).num_atoms <= MAX_ATOMS]

    chosen: list[tuple[str, Composition]] = []
    used = set()

    def try_add(f: str) -> bool:
        if f in used:
            return False
        oc = decorate(f)
        if oc is None or any(sp not in species_set for sp in oc):
            return False
        used.add(f)
        chosen.append((f, oc))
        return True

    for f in CLASSICS:
        try_add(f)
    for n, anions, want in CATEGORIES:
        pool = [
            f for f in reduced
            if len(Composition(f)) == n and any(str(el) in anions for el in Composition(f))
            and (n == 4 or sum(str(el) in anions for el in Composition(f)) == 1)
        ]
        rng.shuffle(pool)
        got = 0
        for f in pool:
            if got == want:
                break
            got += try_add(f)

    pred = SubstitutionPredictor(threshold=THRESHOLD)
    items = []
    n_pred = {"to": 0, "from": 0}
    for f, oc in chosen:
        item = {"formula": f, "species": [str(sp) for sp in oc], "amounts": [float(oc[sp]) for sp in oc]}
        for key, flag in (("to", True), ("from", False)):
            out = []
            for p in pred.composition_prediction(oc, to_this_composition=flag):
                pairs = [[str(a), str(b)] for a, b in p["substitutions"].items()]
                out.append({"probability": p["probability"], "substitutions": pairs})
            out.sort(key=lambda x: (-x["probability"], x["substitutions"]))
            item[key] = out
            n_pred[key] += len(out)
        items.append(item)
        print(f"{f}: {item['species']} to={len(item['to'])} from={len(item['from'])}", file=sys.stderr)

    # sanity check of the model description in NOTES
    sp_sorted = sorted(species_set, key=str)
    for s in sp_sorted[:5]:
        px = sum(math.exp(model.get_lambda(s, t)) for t in species_set)
        assert math.isclose(px, model.get_px(s), rel_tol=1e-12), (s, px, model.get_px(s))
    assert "reduce(mul, best_case_prob) > self.threshold" in inspect.getsource(SubstitutionPredictor.list_prediction)

    stats = (
        f"{len(items)} input compositions; {n_pred['to']} 'to' and {n_pred['from']} 'from' predictions in total."
    )
    doc = {
        "versions": {
            "pymatgen": version("pymatgen"),
            "pymatgen-core": version("pymatgen-core"),
            "python": sys.version.split()[0],
        },
        "generator": "scripts/make_substitution_fixtures.py",
        "seed": SEED,
        "threshold": THRESHOLD,
        "alpha": model.alpha,
        "notes": NOTES % {"pmg": version("pymatgen"), "stats": stats},
        "model": {
            "species": [str(s) for s in sp_sorted],
            "Z": model.Z,
            "px": {str(s): model.get_px(s) for s in sp_sorted},
        },
        "compositions": items,
    }
    d = lambda x: json.dumps(x, separators=(",", ":"))  # noqa: E731
    lines = ["{"]
    for k in ("versions", "generator", "seed", "threshold", "alpha", "notes", "model"):
        lines.append(f"{d(k)}:{d(doc[k])},")
    lines.append('"compositions":[')
    parts = []
    for it in items:
        head = {k: it[k] for k in ("formula", "species", "amounts")}
        s = d(head)[:-1]
        for key in ("to", "from"):
            s += f',\n"{key}":[\n' + ",\n".join(d(p) for p in it[key]) + "]"
        parts.append(s + "}")
    lines.append(",\n".join(parts))
    lines.append("]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    json.loads(args.out.read_text())
    print(f"wrote {args.out}: {stats}", file=sys.stderr)


if __name__ == "__main__":
    main()
