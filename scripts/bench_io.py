"""Geode vs pymatgen on the embedded dataset, in one run: CIF parse, CIF write, neighbour lists.

Usage (from the repo root, with pymatgen installed in the interpreter that runs this):
    python scripts/bench_io.py [--sample N] [--cutoff 5.0]

Builds and runs `cargo run --release --example bench_io`, which times Geode on every structure and
dumps its CIFs; then times pymatgen on the same CIF files (all of them, or a seeded random sample of N
for a quicker run, compared per structure) and prints both with the ratio.
"""
import argparse, json, os, random, subprocess, sys, tempfile, time

import pymatgen
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser, CifWriter

ap = argparse.ArgumentParser()
ap.add_argument("--sample", type=int, default=0, help="time pymatgen on N random files (0 = all)")
ap.add_argument("--cutoff", type=float, default=5.0)
args = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="geode-bench-")
out = subprocess.run(
    ["cargo", "run", "--release", "--quiet", "--example", "bench_io", "--", "--dump", tmp, "--cutoff", str(args.cutoff)],
    check=True, capture_output=True, text=True,
).stdout
rust = json.loads(out.strip().splitlines()[-1])
files = sorted(os.listdir(tmp))
if args.sample:
    random.seed(0)
    files = random.sample(files, min(args.sample, len(files)))
texts = [open(os.path.join(tmp, f)).read() for f in files]
n = len(texts)

t = time.perf_counter()
structures = [CifParser.from_str(x).parse_structures(primitive=False)[0] for x in texts]
py_parse = time.perf_counter() - t
t = time.perf_counter()
for s in structures:
    str(CifWriter(s))
py_write = time.perf_counter() - t
t = time.perf_counter()
pairs = 0
for s in structures:
    pairs += len(s.get_neighbor_list(args.cutoff)[0])
py_nb = time.perf_counter() - t

per = lambda total, count: total / count * 1e3
R = rust["structures"]
rows = [
    ("CIF parse", per(rust["cif_parse_s"], R), per(py_parse, n)),
    ("CIF write", per(rust["cif_write_s"], R), per(py_write, n)),
    (f"neighbour list {args.cutoff} Å", per(rust["neighbors_s"], R), per(py_nb, n)),
]
print(f"pymatgen {pymatgen.core.__version__ if hasattr(pymatgen.core, '__version__') else ''}; Geode on {R} structures, pymatgen on {n}")
print(f"{'task':28s} {'Geode ms/structure':>20s} {'pymatgen ms/structure':>22s} {'speed-up':>9s}")
for name, g, p in rows:
    print(f"{name:28s} {g:20.4f} {p:22.4f} {p / g:8.1f}x")
if n == R:
    print(f"neighbour pairs: Geode {rust['neighbor_pairs']}, pymatgen {pairs}")
print(json.dumps({"rust": rust, "pymatgen": {"n": n, "parse_s": py_parse, "write_s": py_write, "neighbors_s": py_nb, "pairs": pairs}}))
