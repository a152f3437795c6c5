"""Fixtures for tests/own_data.rs: one small labelled set of crystals written in every format
`geode model train --data` reads (with deliberate bad rows), made with ASE and pymatgen, and
scikit-learn's classification metrics on random probabilities.

Run: python3 -m venv /tmp/ref && /tmp/ref/bin/pip install pymatgen==2026.10.24 ase scikit-learn
     /tmp/ref/bin/python scripts/make_own_data_fixtures.py
The target is ASE's mass density (g/cm³) of each cell, `mass_density`: a property of the structure
that a model can learn, computed by code no one here wrote.
"""
import json, os, sys
import numpy as np
import ase, ase.db, ase.io
from ase.build import bulk
import sklearn
from sklearn.metrics import roc_auc_score, f1_score, accuracy_score, log_loss, precision_score, recall_score, brier_score_loss
from pymatgen.io.ase import AseAtomsAdaptor
import pymatgen.core

out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "own_data")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261207)

pairs = [("Na", "Cl", 5.64), ("K", "Br", 6.6), ("Mg", "O", 4.21), ("Ca", "O", 4.81), ("Li", "F", 4.03),
         ("Sr", "S", 6.02), ("Ba", "Se", 6.6), ("Zn", "S", 5.41), ("Ga", "As", 5.65), ("Cs", "Cl", 4.12)]
kinds = {"Zn": "zincblende", "Ga": "zincblende", "Cs": "cesiumchloride"}
atoms_list = []
for i in range(80):
    a, b, a0 = pairs[i % len(pairs)]
    s = kinds.get(a, "rocksalt")
    at = bulk(a + b, s, a=a0 * rng.uniform(0.92, 1.08))
    if i % 3 == 0:
        at = at.repeat((1, 1, 2))
    atoms_list.append(at)

def density(at):
    return float(at.get_masses().sum() / at.get_volume() * 1.66053906660)

labels = [round(density(at), 6) for at in atoms_list]
splits = ["test" if i % 8 == 0 else "val" if i % 8 == 1 else "train" for i in range(len(atoms_list))]

# extxyz: label and split in info; frame 5 lacks the label (a bad row).
frames = []
for i, at in enumerate(atoms_list):
    at = at.copy()
    at.info = {"split": splits[i]}
    if i != 5:
        at.info["mass_density"] = labels[i]
    frames.append(at)
ase.io.write(os.path.join(out, "crystals.extxyz"), frames, format="extxyz")

# ASE database: key-value pairs; row id 8 has a non-numeric label.
dbp = os.path.join(out, "crystals.db")
if os.path.exists(dbp):
    os.remove(dbp)
with ase.db.connect(dbp) as db:
    for i, at in enumerate(atoms_list):
        kv = {"split": splits[i], "mass_density": labels[i] if i != 7 else "n/a"}
        db.write(at, key_value_pairs=kv)

# pymatgen JSON list: the label in each structure's properties; item 3's is null.
structs = [AseAtomsAdaptor.get_structure(at) for at in atoms_list]
items = []
for i, s in enumerate(structs):
    d = s.as_dict()
    d["properties"] = {"mass_density": None if i == 3 else labels[i], "split": splits[i]}
    items.append(d)
with open(os.path.join(out, "crystals.json"), "w") as f:
    json.dump(items, f)

# Matbench layout (pandas "split" orient, as matbench's own dataset files).
with open(os.path.join(out, "matbench_layout.json"), "w") as f:
    json.dump({"index": list(range(len(structs))), "columns": ["structure", "mass_density"],
               "data": [[s.as_dict(), labels[i]] for i, s in enumerate(structs)]}, f)

# A folder of CIFs and a CSV naming them; one row names a missing file, one has an empty label.
cif_dir = os.path.join(out, "cifs")
os.makedirs(cif_dir, exist_ok=True)
with open(os.path.join(cif_dir, "labels.csv"), "w") as f:
    f.write("file,mass_density\n")
    for i in range(24):
        name = f"c{i:02d}.cif"
        structs[i].to(filename=os.path.join(cif_dir, name))
        f.write(f"{name},{'' if i == 4 else labels[i]}\n")
    f.write("missing.cif,3.0\n")

# scikit-learn's classification metrics on random probabilities (with ties).
p = np.round(rng.uniform(0, 1, 300), 2)
y = (rng.uniform(0, 1, 300) < 0.2 + 0.6 * p).astype(int)
pred = (p >= 0.5).astype(int)
metrics = {
    "p": p.tolist(), "y": y.tolist(),
    "roc_auc": roc_auc_score(y, p), "f1": f1_score(y, pred), "accuracy": accuracy_score(y, pred),
    "precision": precision_score(y, pred), "recall": recall_score(y, pred),
    "log_loss": log_loss(y, p), "brier": brier_score_loss(y, p),
}
with open(os.path.join(out, "classification_sklearn.json"), "w") as f:
    json.dump(metrics, f)

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"labels": labels, "splits": splits, "versions": {
        "ase": ase.__version__, "pymatgen": pymatgen.core.__version__, "numpy": np.__version__,
        "scikit-learn": sklearn.__version__, "python": sys.version.split()[0]}}, f, indent=1)
print("wrote", out)
