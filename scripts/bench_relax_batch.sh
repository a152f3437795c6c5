#!/usr/bin/env bash
# Batched relaxation vs Python CHGNet 0.4.2's StructOptimizer, side by side in one run, one thread each:
# the same N structures (default 200), FIRE + UnitCellFilter, fmax 0.05 eV/Å, ≤ 500 steps, CHGNet 0.3.0.
#   scripts/bench_relax_batch.sh [N] [PYTHON]   (PYTHON: torch + chgnet==0.4.2, default /tmp/ref/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200}"
py="${2:-/tmp/ref/bin/python}"
dir=$(mktemp -d)
cargo build --release --quiet --example bench_relax_batch
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench_relax_batch"
OMP_NUM_THREADS=1 "$bench" --write "$dir/start.extxyz" --n "$n"
geode=$(OMP_NUM_THREADS=1 "$bench" --read "$dir/start.extxyz" --batches 1,8,32 --threads 1 | tail -1)
ref=$(OMP_NUM_THREADS=1 "$py" scripts/bench_relax_batch.py "$dir/start.extxyz" --threads 1 2>/dev/null | tail -1)
echo "$geode" >"$dir/geode.json"
echo "$ref" >"$dir/python.json"
"$py" - "$dir/geode.json" "$dir/python.json" <<'PY'
import json, sys, math
g, p = (json.load(open(f)) for f in sys.argv[1:3])
out = {"structures": p["structures"], "python_relaxations_per_s": p["relaxations_per_s"],
       "python_steps": p["steps"], "python_converged": p["converged"]}
for k in ("batch1", "batch8", "batch32"):
    r = g[k]
    d = [abs(a - b) for a, b in zip(r["energies_per_atom"], p["energies_per_atom"]) if math.isfinite(a)]
    d.sort()
    out[k] = {"relaxations_per_s": r["relaxations_per_s"], "ratio_vs_python": r["relaxations_per_s"] / p["relaxations_per_s"],
              "steps": r["steps"], "converged": r["converged"], "failed": r["failed"],
              "median_abs_dE_per_atom_vs_python": d[len(d) // 2] if d else None,
              "max_abs_dE_per_atom_vs_python": d[-1] if d else None}
print(json.dumps(out, indent=1))
PY
rm -rf "$dir"
