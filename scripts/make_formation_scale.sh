#!/usr/bin/env bash
# Refits CHGNet 0.3.0's chemical potentials and +U corrections onto OQMD's formation-energy scale
# (assets/potentials/chgnet-0.3.0-formation-scale.csv) from the shipped single-point CHGNet energies of every
# dataset crystal (assets/potentials/chgnet-0.3.0-references.csv.gz, made by `geode dataset energies`), by
# least squares on the training split, and prints the MAE per split and anion family. A rebuild embeds it.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc assets/potentials/chgnet-0.3.0-references.csv.gz > "$tmp/chgnet-0.3.0-references.csv"
cargo run --release --quiet --bin geode -- dataset scale --energies "$tmp/chgnet-0.3.0-references.csv" \
    --potential chgnet-0.3.0 --out assets/potentials/chgnet-0.3.0-formation-scale.csv
cargo run --release --quiet --bin geode -- dataset scale --energies "$tmp/chgnet-0.3.0-references.csv" \
    --scale assets/potentials/chgnet-0.3.0-formation-scale.csv
