#!/usr/bin/env bash
# The worked example of docs/dft.md: Mg2Si polymorphs enumerated into AFLOW prototypes, relaxed with CHGNet,
# ranked on the complete OQMD hull; the five best get CP2K single points at their CHGNet geometry and go onto
# the CP2K hull of Mg–Si (references relaxed with the same CP2K settings, cached in cp2k-refs.csv).
#
#   scripts/dft/worked_example.sh [OUT_DIR]      # GEODE=path/to/geode, SPEC=cp2k:… to change them
#
# About 25 min for the CHGNet relaxations (debug build; minutes in release) and 30–40 min for CP2K on this
# machine (2 cores). Rerunning reuses the cached references.
set -euo pipefail
G=${GEODE:-${CARGO_TARGET_DIR:-target}/release/geode}
S=${SPEC:-cp2k:kdensity=3}
out=${1:-mgsi-example}
mkdir -p "$out" && cd "$out"
[ -d cands ] || "$G" enumerate aflow:A2B aflow:AB2 --elements Mg,Si --out cands > enumerate.txt
[ -d relaxed ] || "$G" relax cands/*.cif --out-dir relaxed --json > relax.jsonl
"$G" hull --structures relaxed/*.cif --json > chgnet_hull.jsonl
# The five lowest above the CHGNet-on-OQMD hull.
top=$(python3 -c "
import json
rows = [json.loads(l) for l in open('chgnet_hull.jsonl') if l.startswith('{')]
rows.sort(key=lambda r: r['e_above_hull'])
print(' '.join(r['name'].split('#')[0] for r in rows[:5]))")
t0=$(date +%s)
"$G" hull --structures ${top%% *} --potential "$S" --system-refs cp2k-refs.csv --json > refs-hull.jsonl 2> refs.log
echo "references: $(( $(date +%s) - t0 )) s" >> refs.log
echo "name,formula,energy_per_atom,seconds" > cands.csv
for f in $top; do
  t0=$(date +%s.%N)
  e=$("$G" energy "$f" --potential "$S" --json | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['energy_per_atom'])")
  t1=$(date +%s.%N)
  echo "$(basename "$f" .cif),Mg2Si,$e,$(python3 -c "print(round($t1 - $t0, 1))")" >> cands.csv
done
"$G" hull --refs cp2k-refs.csv --query cands.csv --json > cp2k_hull.jsonl
cat cp2k_hull.jsonl
