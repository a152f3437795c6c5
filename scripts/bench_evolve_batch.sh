#!/usr/bin/env bash
# Evolution's relaxations, batched or not, here or on the local Slurm cluster: one evolve run of CHGNet
# SiO2 (16 individuals, the same seed) per setting, printing individuals per second and where the time
# went. Usage: scripts/bench_evolve_batch.sh [BUDGET]   (release build; Slurm via scripts/slurm-local.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-16}
export OMP_NUM_THREADS=1
geode=${CARGO_TARGET_DIR:-$HOME/.cache/geode-target}/release/geode
dir=$(mktemp -d /tmp/geode-bench-evolve.XXXXXX)
base="composition = \"SiO2\"\nformula_units = [1, 2]\npopulation = 8\nbudget = $budget\n"
relax="[relax]\npotential = \"chgnet\"\nfmax = 0.1\nmax_steps = 150\n"
run() { # name, config text
  printf "%b" "$2" > "$dir/$1.toml"
  local t0=$(date +%s.%N)
  "$geode" run evolve --config "$dir/$1.toml" --project "$dir/$1.geode" --seed 1 --threads 2 --json > "$dir/$1.json"
  local t1=$(date +%s.%N)
  python3 - "$1" "$dir/$1.json" "$t0" "$t1" <<'PY'
import json, sys
r = json.loads(open(sys.argv[2]).read().splitlines()[-1])["result"]
wall = float(sys.argv[4]) - float(sys.argv[3])
print(f"{sys.argv[1]:>14}: {r['evaluated']} individuals in {wall:.1f} s wall ({r['evaluated']/wall:.3f}/s), "
      f"relaxation {r['seconds']['relaxation']:.1f} s, {r['relax_steps']} FIRE steps, best {r['best']['energy_per_atom']:.4f} eV/atom")
PY
}
run batch1 "$base${relax}batch = 1\n"
run batch4 "$base${relax}batch = 4\n"
scripts/slurm-local.sh start >/dev/null
run slurm "$base${relax}batch = 4\n[executor]\nkind = \"slurm\"\ntasks_per_array_task = 4\ngeode = \"$geode\"\nwork_dir = \"$dir/work\"\npoll_interval_s = 1\n"
rm -rf "$dir"
