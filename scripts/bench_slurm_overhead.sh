#!/usr/bin/env bash
# Slurm overhead per task on the local one-node cluster (scripts/slurm-local.sh): the same N trivial
# relaxations (Lennard-Jones argon cells of 1–4 atoms, milliseconds each) as a local run and as a Slurm run,
# submit → every result stored in the project, timed end to end; and one task alone (the latency).
#   scripts/bench_slurm_overhead.sh [N] [TASKS_PER_ARRAY_TASK] [POLL_S]   (defaults 64, 1, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-64}"
per="${2:-1}"
poll="${3:-1}"
scripts/slurm-local.sh start >/dev/null
cargo build --release --quiet
geode="$(realpath "${CARGO_TARGET_DIR:-target}/release/geode")"
dir=$(mktemp -d)
python3 - "$dir/in.extxyz" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for k in range(n):
        a = 5.26 * (1 + 0.004 * k)
        f.write("4\n")
        f.write(f'Lattice="{a} 0 0 0 {a} 0 0 0 {a}" Properties=species:S:1:pos:R:3 pbc="T T T"\n')
        h = a / 2
        d = 0.01 * (k % 7)
        for x, y, z in [(d, 0, 0), (0, h, h), (h, 0, h), (h, h, 0)]:
            f.write(f"Ar {x} {y} {z}\n")
PY
common="potential = \"lj:sigma=3.405,epsilon=0.0104\"\nfmax = 1e-3\nframe_every = 0\nbatch = 8\n"
slurm="[executor]\nkind = \"slurm\"\ngeode = \"$geode\"\ntasks_per_array_task = $per\npoll_interval_s = $poll\n"
printf "structures = [\"%s\"]\n$common" "$dir/in.extxyz" >"$dir/local.toml"
printf "structures = [\"%s\"]\n$common$slurm" "$dir/in.extxyz" >"$dir/slurm.toml"
python3 - "$dir/in.extxyz" "$dir/one.extxyz" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
open(sys.argv[2], "w").write("\n".join(lines[:6]) + "\n")
PY
printf "structures = [\"%s\"]\n$common$slurm" "$dir/one.extxyz" >"$dir/one.toml"
t() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
tl=$(t env OMP_NUM_THREADS=1 "$geode" run relax --config "$dir/local.toml" --project "$dir/l.geode" --json)
ts=$(t env OMP_NUM_THREADS=1 "$geode" run relax --config "$dir/slurm.toml" --project "$dir/s.geode" --json)
t1=$(t env OMP_NUM_THREADS=1 "$geode" run relax --config "$dir/one.toml" --project "$dir/one.geode" --json)
python3 - "$n" "$per" "$poll" "$tl" "$ts" "$t1" <<'PY'
import json, sys
n, per, poll = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
tl, ts, t1 = map(float, sys.argv[4:7])
print(json.dumps({"tasks": n, "tasks_per_array_task": per, "poll_interval_s": poll, "local_s": round(tl, 2),
                  "slurm_s": round(ts, 2), "overhead_per_task_s": round((ts - tl) / n, 3),
                  "one_task_submit_to_stored_s": round(t1, 2)}))
PY
rm -rf "$dir"
