#!/usr/bin/env bash
# Geode vs pymatgen on the complete OQMD references, in one run: pymatgen answers (and is timed on) the
# queries of scripts/make_hull_complete_fixtures.py afresh, then Geode answers the same queries; the example
# prints both times and the ratios (one thread each).
#   scripts/bench_hull_complete.sh [PYTHON]      (PYTHON: an interpreter with pymatgen, default /tmp/ref/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-/tmp/ref/bin/python}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" scripts/make_hull_complete_fixtures.py --out "$tmp/queries.json" >&2
cargo run --release --quiet --example bench_hull_complete -- "$tmp/queries.json"
