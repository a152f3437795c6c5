#!/usr/bin/env python3
"""Write tests/fixtures/show_cif_pymatgen.json: what pymatgen reads from `geode dataset show ID --format
cif > file.cif` (stdout only) for a few dataset entries, so tests/seams.rs can hold Geode's own output to
pymatgen's reading of it.

Run with an interpreter that has pymatgen, naming the geode binary:
    /tmp/ref/bin/python scripts/make_show_cif_fixture.py target/debug/geode
"""
import json
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from pymatgen.core import Structure

root = Path(__file__).resolve().parent.parent
geode = sys.argv[1] if len(sys.argv) > 1 else str(root / "target" / "debug" / "geode")
ids = ["3", "124", "7657", "18355", "30687"]
out = {}
with tempfile.TemporaryDirectory() as d:
    for i in ids:
        cif = subprocess.run([geode, "dataset", "show", i, "--format", "cif"], check=True, capture_output=True,
                             text=True).stdout
        path = Path(d) / f"{i}.cif"
        path.write_text(cif)
        s = Structure.from_file(path)
        out[i] = {
            "formula": s.composition.reduced_formula,
            "natoms": len(s),
            "abc": list(s.lattice.abc),
            "angles": list(s.lattice.angles),
            "volume": s.volume,
            "space_group_number": s.get_space_group_info(0.1)[1],
        }
fx = {"source": f"pymatgen=={version('pymatgen')} Structure.from_file on `geode dataset show ID --format cif` stdout",
      "entries": out}
(root / "tests" / "fixtures" / "show_cif_pymatgen.json").write_text(json.dumps(fx, indent=1) + "\n")
print(json.dumps(out, indent=1))
