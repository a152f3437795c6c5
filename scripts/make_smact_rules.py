#!/usr/bin/env python3
"""Write assets/smact_rules.json: the two SMACT tables Geode's chemical rules need besides the oxidation
states (which assets/elements.json and assets/smact_icsd24_consensus3.json already carry):

* ``metals``: ``smact.metals``, the element list ``smact_validity(include_alloys=True)`` calls alloys;
* ``pauling_eneg``: ``smact.Element(sym).pauling_eneg`` for Z = 1..103 (SMACT's own ``element_data.txt``
  values, which differ from pymatgen's ``Element.X`` for 16 elements, e.g. W 1.7 vs 2.36), ``null``
  where SMACT has none (then every Pauling test with that element fails, as in SMACT).

Run with an interpreter that has smact 4.0.2 (MIT):  /tmp/ref/bin/python scripts/make_smact_rules.py
"""
import json
from importlib.metadata import version
from pathlib import Path

import smact
from pymatgen.core import Element as PmgElement

out = Path(__file__).resolve().parent.parent / "assets" / "smact_rules.json"
syms = [PmgElement.from_Z(z).symbol for z in range(1, 104)]
eneg = {}
for s in syms:
    try:
        eneg[s] = smact.Element(s).pauling_eneg
    except Exception:  # elements SMACT does not know
        eneg[s] = None
doc = {
    "source": f"smact=={version('smact')} smact/__init__.py (metals), smact/data/element_data.txt (el_neg via Element.pauling_eneg)",
    "license": "MIT (SMACT)",
    "metals": list(smact.metals),
    "pauling_eneg": eneg,
}
text = '{"source":' + json.dumps(doc["source"]) + ',\n"license":' + json.dumps(doc["license"]) + ',\n"metals":' + json.dumps(doc["metals"]) + ',\n"pauling_eneg":{\n'
text += ",\n".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in eneg.items()) + "\n}}\n"
out.write_text(text)
print(f"wrote {out}: {len(doc['metals'])} metals, {sum(v is not None for v in eneg.values())} electronegativities")
