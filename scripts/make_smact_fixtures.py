#!/usr/bin/env python3
"""Build tests/fixtures/smact_validity.json: SMACT charge-neutrality / electronegativity verdicts.

Run with a throw-away reference environment:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install pymatgen==2026.10.24 smact==4.0.2
    /tmp/ref/bin/python scripts/make_smact_fixtures.py [--out tests/fixtures/smact_validity.json]

What it computes.
* `compositions`: every distinct reduced formula of assets/oqmd_icsd_20.json.gz plus RANDOM_COMPOSITIONS
  random compositions (2-4 distinct elements drawn from Z 1-94 without the noble gases, amounts 1..8,
  written unreduced and in random element order). Each row is
  `[formula, smact_validity(formula), smact_validity(formula, include_alloys=False)]`
  (`null` where the call raised).
* `filter`: for ~30 element tuples, `smact_filter(els, threshold=8)` with all other arguments at their
  defaults, each result as {"elements", "oxidation_states", "stoichiometry"} in smact's own order.
* `tables`: the data those functions read, so a reimplementation can be checked against it: the
  oxidation-state lists smact_validity uses by default (ICSD24 counts, consensus >= 3, no zero), the
  static ICSD24 list smact_filter uses by default (Element.oxidation_states_icsd24), Pauling
  electronegativities (Element.pauling_eneg, null when unknown) and smact.metals.
`notes` describes the exact rules (read from smact 4.0.2's smact/screening.py and smact/__init__.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import smact
from pymatgen.core import Composition
from pymatgen.core import Element as PmgElement
from smact.screening import _get_icsd24_oxidation_dict, smact_filter, smact_validity

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "assets" / "oqmd_icsd_20.json.gz"
OUT = ROOT / "tests" / "fixtures" / "smact_validity.json"
SEED = 20260412
RANDOM_COMPOSITIONS = 3000
NOBLE = {2, 10, 18, 36, 54, 86}

FILTER_SETS = [
    # binaries
    ("Li", "O"), ("Fe", "O"), ("Ti", "O"), ("Cu", "S"), ("Zn", "S"),
    ("Ga", "N"), ("Na", "Cl"), ("Ca", "F"), ("Mo", "S"), ("Sn", "O"),
    # ternaries
    ("Li", "Fe", "O"), ("Li", "Co", "O"), ("Ba", "Ti", "O"), ("Sr", "Ti", "O"), ("Cs", "Pb", "I"),
    ("Cs", "Pb", "Cl"), ("Ca", "Ti", "O"), ("Li", "P", "S"), ("Na", "Cl", "O"), ("K", "Mg", "F"),
    ("Ga", "N", "O"), ("Cu", "In", "S"), ("Mg", "Al", "O"), ("La", "N", "O"), ("Zn", "Sn", "N"),
    # quaternaries
    ("Li", "Fe", "P", "O"), ("Cu", "Zn", "Sn", "S"), ("Li", "La", "Zr", "O"), ("Na", "Fe", "S", "O"),
    ("Ba", "Y", "Cu", "O"),
]

NOTES = """\
smact %(smact)s, smact.screening.smact_validity(composition, use_pauling_test=True, include_alloys=True, \
check_metallicity=False, metallicity_threshold=0.7, oxidation_states_set=None, icsd_filter=None, \
mixed_valence=False). Steps, in order:
(1) composition = pymatgen Composition(formula); comp_dict = composition.as_dict() (element -> amount); \
elem_symbols = its keys.
(2) Fast paths: if len(set(elem_symbols)) == 1 -> True (any single element, also noble gases, also with \
include_alloys=False). If include_alloys and every symbol is in smact.metals -> True ("alloy" = ALL elements \
in smact.metals; that list (tables.metals) has no B, Si, As, Te, At, Lr but does contain Al, Ge, Sb, Po). \
check_metallicity is off by default (metallicity_score not used).
(3) counts = [int(v) for v in comp_dict.values()] (float amounts truncated); g = gcd(counts); \
stoichs = [(c // g,)] (one fixed ratio per element, i.e. the exact reduced formula); threshold = max(c // g) \
(unused because stoichs is given).
(4) Oxidation states (oxidation_states_set=None): ICSD24 table filtered with ICSD24FilterConfig() = \
consensus=3, include_zero=False, commonality="low": rows of oxidation_states_icsd24_counts.json with \
oxidation_state != 0 and results_count >= 3, grouped by element, sorted ascending (tables.ox_states_validity). \
If ANY element has no row -> False (missing in 4.0.2: He, Ne, Ar, At, Rn, Fr, Fm, Md, No, Lr). Ox state 0 is never used.
(5) for ox_states in itertools.product(*ox_combos): cn_r = neutral_ratios(ox_states, stoichs=stoichs, \
threshold=threshold) = [x for x in product(*stoichs) if sum(ox_i * x_i) == 0 and gcd(*x) == 1], i.e. just the \
test sum_i ox_i * n_i == 0 with ONE oxidation state per element (no mixed valence: Fe3O4 is False). If cn_r \
and not use_pauling_test -> True. Else en_ok = pauling_test(ox_states, electronegs) (a TypeError would count as \
True, but none can occur) and return True on the first combination that passes. No combination -> False. \
(mixed_valence=True would expand Fe/Mn/Co/... into one site per atom; off by default.)
(6) pauling_test with defaults (repeat_anions=True, repeat_cations=True, threshold=0.0) is eneg_states_test: \
for every unordered pair (i<j) of (ox, eneg): return False if eneg_i is None or eneg_j is None (so ANY element \
without a Pauling electronegativity fails every multi-element composition that reaches this test, even when \
both are cations), or (ox_i > 0 and ox_j < 0 and eneg_i >= eneg_j), or (ox_i < 0 and ox_j > 0 and eneg_i <= \
eneg_j). Equal electronegativity between a cation and an anion FAILS (strict: cation X must be < anion X). \
Pairs of two cations or two anions are not compared. Electronegativities: smact Element.pauling_eneg \
(element_data.txt 'el_neg'; tables.pauling_eneg, null = None).
Code: `for (ox1, eneg1), (ox2, eneg2) in itertools.combinations(list(zip(ox_states, enegs)), 2): if (eneg1 is \
None or eneg2 is None or ((ox1 > 0) and (ox2 < 0) and (eneg1 >= eneg2)) or ((ox1 < 0) and (ox2 > 0) and (eneg1 \
<= eneg2))): return False` / `return True`.
smact_filter(els, threshold=8, stoichs=None, species_unique=True, oxidation_states_set="icsd24", \
return_output="default"): NOTE it uses a DIFFERENT oxidation-state list from smact_validity: \
Element.oxidation_states_icsd24 = the static file oxidation_states_icsd24_filtered.txt (ICSD 2024, > 5 reports, \
i.e. >= 6; no states for He Ne Ar Pm At Rn Fr Ra Es Fm Md No Lr; tables.ox_states_filter, in file order). Any element without states -> ValueError. Then \
for ox_states in itertools.product(*ox_lists): cn_r = neutral_ratios(ox_states, threshold=8) = \
[x for x in itertools.product(range(1, 9), repeat=n) if sum(ox*x) == 0 and gcd(*x) == 1] (itertools order); \
if cn_r and pauling_test(ox_states, [e.pauling_eneg for e in els]) (same test as above, no try/except): \
append (symbols, ox_states, ratio) for every ratio. Output order = product order of ox states, then ratio \
order. species_unique=True keeps duplicates of element ratios with different ox states.
Counts: %(counts)s"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT.relative_to(ROOT)})")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rng = random.Random(SEED)

    data = json.loads(gzip.open(DATASET).read())
    formulas = sorted(
        {Composition(dict(Counter(PmgElement.from_Z(z).symbol for z in e["z"]))).reduced_formula for e in data["entries"]}
    )
    n_dataset = len(formulas)
    seen = set(formulas)
    zs = [z for z in range(1, 95) if z not in NOBLE]
    random_formulas = []
    while len(random_formulas) < RANDOM_COMPOSITIONS:
        els = [PmgElement.from_Z(z).symbol for z in rng.sample(zs, rng.randint(2, 4))]
        f = "".join(f"{el}{rng.randint(1, 8)}" for el in els)
        if f not in seen:
            seen.add(f)
            random_formulas.append(f)

    rows = []
    errors = []
    for f in formulas + random_formulas:
        row = [f]
        for kw in ({}, {"include_alloys": False}):
            try:
                row.append(bool(smact_validity(f, **kw)))
            except Exception as exc:  # noqa: BLE001
                row.append(None)
                errors.append(f"{f} {kw}: {type(exc).__name__}: {exc}")
        rows.append(row)

    filt = []
    for els in FILTER_SETS:
        res = smact_filter([smact.Element(s) for s in els], threshold=8)
        filt.append(
            {
                "elements": list(els),
                "count": len(res),
                "results": [
                    {"elements": list(r[0]), "oxidation_states": list(r[1]), "stoichiometry": list(r[2])} for r in res
                ],
            }
        )

    symbols = smact.ordered_elements(1, 103)
    ox_validity = _get_icsd24_oxidation_dict(include_zero=False, consensus=3, commonality="low")
    tables = {
        "ox_states_validity": {s: ox_validity[s] for s in symbols if s in ox_validity},
        "ox_states_filter": {s: smact.Element(s).oxidation_states_icsd24 for s in symbols if smact.Element(s).oxidation_states_icsd24},
        "pauling_eneg": {s: smact.Element(s).pauling_eneg for s in symbols},
        "metals": list(smact.metals),
    }

    n_true = sum(1 for r in rows if r[1])
    n_true_na = sum(1 for r in rows if r[2])
    counts = (
        f"{len(rows)} compositions ({n_dataset} dataset reduced formulas + {len(random_formulas)} random); "
        f"valid_default True for {n_true}, valid_no_alloys True for {n_true_na}; {len(errors)} calls raised"
        + (f" ({'; '.join(errors[:10])})" if errors else "")
        + f"; filter: {len(filt)} element sets, {sum(x['count'] for x in filt)} results."
    )
    doc = {
        "versions": {
            "smact": version("smact"),
            "pymatgen": version("pymatgen"),
            "pymatgen-core": version("pymatgen-core"),
            "python": sys.version.split()[0],
        },
        "generator": "scripts/make_smact_fixtures.py",
        "seed": SEED,
        "notes": NOTES % {"smact": version("smact"), "counts": counts},
        "defaults": {
            "smact_validity": {
                "use_pauling_test": True, "include_alloys": True, "check_metallicity": False,
                "metallicity_threshold": 0.7, "oxidation_states_set": None, "mixed_valence": False,
                "icsd_filter": {"include_zero": False, "consensus": 3, "commonality": "low"},
            },
            "smact_filter": {
                "threshold": 8, "stoichs": None, "species_unique": True, "oxidation_states_set": "icsd24",
                "return_output": "default",
            },
        },
        "tables": tables,
        "columns": ["formula", "valid_default", "valid_no_alloys"],
        "compositions": rows,
        "filter": filt,
    }
    d = lambda x: json.dumps(x, separators=(",", ":"))  # noqa: E731
    lines = ["{"]
    for k in ("versions", "generator", "seed", "notes", "defaults", "tables", "columns"):
        lines.append(f"{d(k)}:{d(doc[k])},")
    lines.append('"compositions":[')
    lines.append(",\n".join(d(r) for r in rows))
    lines.append('],"filter":[')
    lines.append(",\n".join(d(x) for x in filt))
    lines.append("]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    json.loads(args.out.read_text())
    print(f"wrote {args.out}: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
