#!/usr/bin/env python3
"""Build tests/fixtures/features_matminer.json: Magpie composition features from matminer.

Run with the reference environment (pymatgen 2026.10.24, matminer 0.10.1):
    /tmp/ref/bin/python scripts/make_feature_fixtures.py

Formulas: 300 distinct compositions of the embedded dataset (seeded sample) plus hand-picked ones
(an element, a noble-gas compound, fractional amounts). Features per formula, in Geode's order
(src/chem/features.rs): ElementProperty.from_preset("magpie") (132), Stoichiometry() (6),
ValenceOrbital(props=["frac"]) (4) and IonProperty's max and avg ionic character (2). NaN where
matminer gives NaN (Geode imputes those; the test skips them).
"""
import gzip, json, math, random, sys
from collections import Counter
from pathlib import Path

import matminer, pymatgen.core
from matminer.featurizers.composition import ElementProperty, IonProperty, Stoichiometry, ValenceOrbital
from pymatgen.core import Composition, Element

ROOT = Path(__file__).resolve().parent.parent
data = json.load(gzip.open(ROOT / "assets/oqmd_icsd_20.json.gz"))
comps = {}
for e in data["entries"]:
    c = Composition({Element.from_Z(z): n for z, n in Counter(e["z"]).items()})
    comps.setdefault(c.reduced_formula, c)
random.seed(20261201)
formulas = random.sample(sorted(comps), 300)
extra = ["Fe", "XeF4", "Li0.5CoO2", "Ca(SiAu)2", "Na2O", "HfO2", "UO2", "ThNi5", "KrF2"]
ep = ElementProperty.from_preset("magpie")
st = Stoichiometry()
vo = ValenceOrbital(props=["frac"])
ip = IonProperty(fast=True)
rows = []
for f in formulas + extra:
    c = comps.get(f) or Composition(f)
    v = list(ep.featurize(c)) + list(st.featurize(c)) + list(vo.featurize(c)) + list(ip.featurize(c))[1:]
    rows.append({"formula": f, "amounts": {el.symbol: amt for el, amt in c.items()}, "features": [None if (x is None or (isinstance(x, float) and math.isnan(x))) else float(x) for x in v]})
out = {
    "header": {"generator": "scripts/make_feature_fixtures.py", "versions": {"matminer": matminer.__version__ if hasattr(matminer, "__version__") else "0.10.1", "pymatgen": pymatgen.core.__version__}},
    "rows": rows,
}
text = '{"header": ' + json.dumps(out["header"]) + ',\n"rows": [\n' + ",\n".join(json.dumps(r) for r in rows) + "\n]}\n"
(ROOT / "tests/fixtures/features_matminer.json").write_text(text)
print(len(rows), "formulas")
