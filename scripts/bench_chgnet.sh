#!/usr/bin/env bash
# Geode's CHGNet vs Python CHGNet 0.4.2 in one run, one thread each, on the structures of
# tests/fixtures/chgnet_reference.json (single structures and batches of 64; energy, forces, stress).
#   scripts/bench_chgnet.sh [PYTHON]   (PYTHON: an interpreter with torch and chgnet==0.4.2, default /tmp/ref/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-/tmp/ref/bin/python}"
geode=$(OMP_NUM_THREADS=1 cargo run --release --quiet --no-default-features --example bench_chgnet -- --threads 1 --repeat 3 | tail -1)
ref=$(OMP_NUM_THREADS=1 "$py" scripts/bench_chgnet.py --threads 1 --repeat 3 2>/dev/null | tail -1)
echo "$geode"
echo "$ref"
"$py" - "$geode" "$ref" <<'PY'
import json, sys
g, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "single_ratio (python / geode)": p["single_s"] / g["single_s"],
    "batch64_ratio (python / geode)": p["batch64_s"] / g["batch64_s"],
    "graph_ratio (python / geode)": p["graphs_s"] / g["graphs_s"],
    "energy_only_batch64_ratio (python / geode)": p["batch64_energy_only_s"] / g["batch64_energy_only_s"],
}))
PY
