#!/usr/bin/env bash
# Matbench v0.1 data for `geode model benchmark` (assets/matbench/):
# - matbench_expt_gap and matbench_expt_is_metal: CrabNet's fold files, crabnet==2.0.8
#   crabnet/data/matbench_cv/{expt_gap,expt_is_metal}/{train,val,test}{0..4}.csv (MIT; data as Matbench);
# - matbench_dielectric: crystal-toolkit==2026.7.20 crystal_toolkit/apps/examples/matbench_dielectric.json.gz
#   (BSD-3-Clause-LBNL), with Matbench's folds (KFold(5, shuffle=True, random_state=18012019) over that
#   file's order) computed by scikit-learn and checked against crabnet's dielectric fold files by formula
#   and target (scripts/make_matbench_folds.py). Needs a venv with scikit-learn, pandas and pymatgen:
#   python3 -m venv /tmp/ref && /tmp/ref/bin/pip install scikit-learn pandas pymatgen==2026.10.24
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/tmp/ref/bin/python}
dest=assets/matbench
mkdir -p "$dest/matbench_cv" target/wheels
cn=target/wheels/crabnet-2.0.8-py3-none-any.whl
ct=target/wheels/crystal_toolkit-2026.7.20-py3-none-any.whl
[ -f "$cn" ] || python3 -m pip download --no-deps --python-version 3.9 --only-binary=:all: crabnet==2.0.8 -d target/wheels
[ -f "$ct" ] || python3 -m pip download --no-deps crystal-toolkit==2026.7.20 -d target/wheels
echo "4901565abaa5b4cd1a7841b9de647a3906df21676b226a7abf972d113f92054a  $cn" | sha256sum -c -
echo "93759d9785b6733870dd6c110088738649f8c6b4fdb96975219e07ae12b01075  $ct" | sha256sum -c -
tmp=$(mktemp -d)
unzip -q -o "$cn" 'crabnet/data/matbench_cv/*' -d "$tmp"
for t in expt_gap expt_is_metal; do
  rm -rf "$dest/matbench_cv/$t"
  cp -r "$tmp/crabnet/data/matbench_cv/$t" "$dest/matbench_cv/$t"
done
unzip -q -o -j "$ct" crystal_toolkit/apps/examples/matbench_dielectric.json.gz -d "$dest"
"$PY" scripts/make_matbench_folds.py "$dest/matbench_dielectric.json.gz" "$tmp/crabnet/data/matbench_cv/dielectric" \
  > "$dest/matbench_dielectric_folds.json"
rm -rf "$tmp"
