#!/usr/bin/env bash
# Make .libtorch/ hold libtorch 2.13 (the CPU and CUDA libraries of the torch wheel), where
# .cargo/config.toml points LIBTORCH. The wheel is unpacked once per machine into
# ~/.cache/geode-libtorch and linked here; skipped when present. Nothing is installed system-wide
# and no Python runs at build time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .libtorch/torch/lib/libtorch_cpu.so ]; then
  exit 0
fi
cache="${GEODE_LIBTORCH_CACHE:-$HOME/.cache/geode-libtorch}"
if [ ! -f "$cache/torch/lib/libtorch_cpu.so" ]; then
  rm -rf "$cache.tmp"
  python3 -m pip install --quiet --no-deps --target "$cache.tmp" torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  rm -rf "$cache"
  mv "$cache.tmp" "$cache"
fi
rm -rf .libtorch
ln -s "$cache" .libtorch
