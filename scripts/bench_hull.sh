#!/usr/bin/env bash
# Geode vs pymatgen convex hulls in one run, on the systems and queries of tests/fixtures/hull_pymatgen.json.
#   scripts/bench_hull.sh [PYTHON]      (PYTHON: an interpreter with pymatgen, default /tmp/ref/bin/python)
# Prints both JSON lines and the speed ratios (pymatgen time / Geode time, single thread both).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-/tmp/ref/bin/python}"
geode=$(cargo run --release --quiet --example bench_hull -- --repeat 20 | tail -1)
pmg=$("$py" scripts/bench_hull_pymatgen.py --repeat 20 | tail -1)
echo "$geode"
echo "$pmg"
"$py" - "$geode" "$pmg" <<'PY'
import json, sys
g, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "build_ratio": p["build_s"] / g["build_s"],
    "query_ratio": p["query_s"] / g["query_s"],
    "batch_ratio (build + queries)": (p["build_s"] + p["query_s"]) / (g["build_s"] + g["query_s"]),
}))
PY
