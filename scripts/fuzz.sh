#!/usr/bin/env bash
# Build the fuzz targets of fuzz/ and run the named ones side by side for SECONDS each (niced, so a build
# on the same machine keeps priority): scripts/fuzz.sh SECONDS TARGET...
# Logs: fuzz/logs/TARGET.log (libFuzzer's final stats at the end); findings: fuzz/artifacts/TARGET/.
# Targets: cif poscar extxyz pmg_json formula expr run_config hull chem store (docs/robustness.md).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain take
# libFuzzer's instrumentation flags. No sanitizer: the code under test is safe Rust, and SQLite and
# libtorch are not built with one.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=$1
shift
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none -O --debug-assertions
bin=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/logs
for t in "$@"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    LD_LIBRARY_PATH="$PWD/.libtorch/torch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=1 nice -n 19 "$bin/$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" \
        >"fuzz/logs/$t.log" 2>&1 &
done
wait
for t in "$@"; do
    echo "== $t: $(grep -E '^stat::number_of_executed_units' "fuzz/logs/$t.log" || echo 'no final stats (crashed?)')"
    ls "fuzz/artifacts/$t"
done
