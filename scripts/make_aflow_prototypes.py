#!/usr/bin/env python3
"""Write assets/aflow_prototypes.json (the 288 structures of the AFLOW Library of Crystallographic
Prototypes, Part 1, Mehl et al., Comput. Mater. Sci. 136, S1 (2017), as pymatgen ships them) and
tests/fixtures/aflow_prototypes_spglib.json (spglib's space group and pymatgen's reduced formula for each,
the reference the prototype tests check Geode's loader and symmetry finder against).

Source: pymatgen==2026.10.24 (MIT) pymatgen/analysis/prototypes/aflow_prototypes.json.gz, a list of
StructureNL dicts with tags {aflow, pearson, strukturbericht, mineral}.

Run with an interpreter that has pymatgen 2026.10.24 and spglib:
    /tmp/ref/bin/python scripts/make_aflow_prototypes.py
"""
import gzip
import json
from importlib.metadata import version
from pathlib import Path

import pymatgen.analysis.prototypes as protos
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

root = Path(__file__).resolve().parent.parent
src = Path(protos.__file__).parent / "aflow_prototypes.json.gz"
data = json.load(gzip.open(src))
out, fixture = [], []


def clean(tag):
    """The tags hold missing values as None or the string "None"."""
    return "" if tag in (None, "None") else str(tag)


for d in data:
    snl = d["snl"]
    tags = d["tags"]
    s = Structure.from_dict(snl)
    out.append({
        "aflow": tags["aflow"],
        "pearson": tags["pearson"],
        "strukturbericht": clean(tags.get("strukturbericht")),
        "mineral": clean(tags.get("mineral")),
        "lattice": [list(map(float, row)) for row in s.lattice.matrix],
        "species": [site.specie.symbol for site in s],
        "frac": [[round(float(x), 12) for x in site.frac_coords] for site in s],
    })
    fixture.append({
        "aflow": tags["aflow"],
        "reduced_formula": s.composition.reduced_formula,
        "n_sites": len(s),
        "volume": s.volume,
        "spglib_space_group_symprec_0.01": SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number(),
        "spglib_space_group_symprec_0.1": SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number(),
    })
header = {
    "source": f"pymatgen=={version('pymatgen')} pymatgen/analysis/prototypes/aflow_prototypes.json.gz",
    "license": "MIT (pymatgen); structures from the AFLOW Library of Crystallographic Prototypes (Mehl et al. 2017)",
}
text = "{" + ",\n".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in header.items())
text += ',\n"prototypes":[\n' + ",\n".join(json.dumps(p, separators=(",", ":")) for p in out) + "\n]}\n"
(root / "assets" / "aflow_prototypes.json").write_text(text)
(root / "tests" / "fixtures" / "aflow_prototypes_spglib.json").write_text(json.dumps({"source": header["source"], "spglib": version("spglib"), "prototypes": fixture}, indent=0) + "\n")
print(f"wrote {len(out)} prototypes")
