#!/usr/bin/env python3
"""Cross-check the generated assets/ files against live pymatgen / smact imports.

Run with an interpreter that has pymatgen-core==2026.10.16 and smact==4.0.2 installed, e.g.

    /work/refvenv/bin/python scripts/check_element_assets.py

Exits non-zero on the first batch of mismatches. matminer is not needed: the Magpie
columns are spot-checked against hard-coded values from the matminer 0.10.1 tables.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"

SAMPLE = ["H", "He", "Li", "C", "O", "Na", "Si", "Fe", "Cu", "Ga", "Sr", "Sn", "I", "Ce", "Eu", "Pb", "U", "Lr"]

ELEMENT_KEYS = {
    "symbol", "z", "name", "atomic_mass", "electronegativity", "atomic_radius", "atomic_radius_calculated",
    "covalent_radius", "van_der_waals_radius", "jmol_color", "vesta_color", "row", "group", "mendeleev_number",
    "is_metal", "oxidation_states", "common_oxidation_states", "icsd_oxidation_states", "magpie",
}
MAGPIE_KEYS = {
    "Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row", "CovalentRadius",
    "Electronegativity", "NsValence", "NpValence", "NdValence", "NfValence", "NValence", "NsUnfilled",
    "NpUnfilled", "NdUnfilled", "NfUnfilled", "NUnfilled", "GSvolume_pa", "GSbandgap", "GSmagmom",
    "SpaceGroupNumber",
}
# (symbol, magpie property, value in matminer 0.10.1 magpie_elementdata; None = Missing/NaN)
MAGPIE_SPOT = [
    ("Fe", "MendeleevNumber", 55.0), ("Fe", "GSmagmom", 2.1106628), ("Fe", "SpaceGroupNumber", 229.0),
    ("O", "Electronegativity", 3.44), ("Si", "GSbandgap", 0.773), ("H", "CovalentRadius", 31.0),
    ("He", "Electronegativity", None), ("Cu", "NdValence", 10.0), ("Lr", "Number", 103.0),
    ("Og", "Number", None),
]

failures: list[str] = []


def check(cond: bool, msg: str) -> None:
    if not cond:
        failures.append(msg)


def main() -> None:
    warnings.simplefilter("ignore")
    from monty.serialization import loadfn
    import pymatgen.core.local_env as local_env
    from pymatgen.core import Element as PElement
    from pymatgen.core.structure_prediction.substitution_probability import SubstitutionProbability
    import smact
    from smact.screening import _get_icsd24_oxidation_dict
    import pymatgen.core as pmg_core

    print(f"pymatgen-core {version('pymatgen-core')}, smact {version('smact')}")
    check(version("pymatgen-core") == "2026.10.16", "pymatgen-core version is not the pinned 2026.10.16")
    check(version("smact") == "4.0.2", "smact version is not the pinned 4.0.2")

    doc = json.loads((ASSETS / "elements.json").read_text())
    els = doc["elements"]
    by_sym = {e["symbol"]: e for e in els}
    check([e["z"] for e in els] == list(range(1, len(els) + 1)), "elements not sorted / contiguous by Z")
    for e in els:
        check(set(e) == ELEMENT_KEYS, f"{e['symbol']}: key set {sorted(set(e) ^ ELEMENT_KEYS)}")
        check(set(e["magpie"]) == MAGPIE_KEYS, f"{e['symbol']}: magpie key set")
        # whole-table semantics checks that are cheap to do for every element
        p = PElement(e["symbol"])
        check(e["row"] == p.row and e["group"] == p.group, f"{e['symbol']}: row/group")
        check(e["is_metal"] == p.is_metal, f"{e['symbol']}: is_metal")

    # detailed per-element checks
    colors = loadfn(Path(pmg_core.__file__).parent / "ElementColorSchemes.yaml")
    for sym in SAMPLE:
        e, p = by_sym[sym], PElement(sym)
        check(e["z"] == p.Z and e["name"] == p.long_name, f"{sym}: z/name")
        check(e["atomic_mass"] == float(p.atomic_mass), f"{sym}: mass {e['atomic_mass']} vs {float(p.atomic_mass)}")
        x = None if math.isnan(p.X) else p.X
        check(e["electronegativity"] == x, f"{sym}: X {e['electronegativity']} vs {x}")
        check(e["oxidation_states"] == list(p.oxidation_states), f"{sym}: oxidation_states")
        check(e["common_oxidation_states"] == list(p.common_oxidation_states), f"{sym}: common_oxidation_states")
        check(e["mendeleev_number"] == p.mendeleev_no, f"{sym}: mendeleev")
        vdw = p.van_der_waals_radius
        check(e["van_der_waals_radius"] == (None if vdw is None else float(vdw)), f"{sym}: vdW")
        check(e["jmol_color"] == list(colors["Jmol"].get(sym, [128, 128, 128])), f"{sym}: jmol colour")
        check(e["vesta_color"] == list(colors["VESTA"].get(sym, [128, 128, 128])), f"{sym}: vesta colour")
        s = smact.Element(sym)
        check(e["covalent_radius"] == s.covalent_radius, f"{sym}: r_cov {e['covalent_radius']} vs {s.covalent_radius}")
        check(e["icsd_oxidation_states"] == (s.oxidation_states_icsd24 or []),
              f"{sym}: icsd24 {e['icsd_oxidation_states']} vs {s.oxidation_states_icsd24}")
    for sym, prop, val in MAGPIE_SPOT:
        check(by_sym[sym]["magpie"][prop] == val, f"{sym}: magpie {prop} {by_sym[sym]['magpie'][prop]} vs {val}")

    # vesta cutoffs vs pymatgen's own YAML load (CutOffDictNN.from_preset("vesta_2019") source)
    ref = loadfn(Path(local_env.__file__).parent / "vesta_cutoffs.yaml")
    ref = {tuple(k): v for k, v in ref.items()}
    cut = json.loads((ASSETS / "vesta_cutoffs.json").read_text())
    check({(c["a"], c["b"]): c["max"] for c in cut} == ref and len(cut) == len(ref), "vesta cutoffs differ")

    # lambda table vs SubstitutionProbability's internal map
    lam = json.loads((ASSETS / "lambda.json").read_text())
    sp = SubstitutionProbability()
    check(lam["default_lambda"] == sp.alpha, "default lambda")
    check(len(lam["pairs"]) == len(sp._l), f"lambda pair count {len(lam['pairs'])} vs {len(sp._l)}")
    for a, b, v in lam["pairs"]:
        got = sp.get_lambda(a, b)
        if got != v:
            check(False, f"lambda {a} {b}: {v} vs {got}")
            break

    # smact_validity default oxidation-state set (consensus 3)
    cons = json.loads((ASSETS / "smact_icsd24_consensus3.json").read_text())["oxidation_states"]
    ref3 = _get_icsd24_oxidation_dict(False, 3, "low")
    check(cons == ref3, "consensus-3 set differs from smact.screening._get_icsd24_oxidation_dict(False, 3, 'low')")

    if failures:
        print("FAILED:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print(f"OK: {len(els)} elements (row/group/is_metal all; mass, X, oxidation states, radii, colours for "
          f"{len(SAMPLE)}), {len(cut)} VESTA cutoffs, {len(lam['pairs'])} lambda pairs, "
          f"{len(cons)} consensus-3 entries")


if __name__ == "__main__":
    main()
