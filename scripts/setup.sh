#!/usr/bin/env bash
# One-time set-up for building, running and testing Geode on a fresh Debian/Ubuntu machine:
#  1. libtorch 2.13 into .libtorch/ (scripts/install-libtorch.sh; skipped when present);
#  2. a Vulkan driver for wgpu when the machine has none: Mesa's lavapipe (software) lets the studio
#     and the viewer's offscreen-render tests run without a GPU (skipped when installed or not root);
#  3. CP2K for DFT (`--potential cp2k`, tests/dft_cp2k.rs): Debian's `cp2k` and `cp2k-data` (GTH
#     pseudopotentials, MOLOPT basis sets), and Quantum ESPRESSO (`quantum-espresso`, with the example
#     pseudopotentials of `quantum-espresso-data`) for the command evaluator's real runs
#     (tests/dft_command.rs); skipped when installed or not root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-libtorch.sh
if command -v dpkg >/dev/null && ! dpkg -s mesa-vulkan-drivers >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing mesa-vulkan-drivers (software Vulkan for wgpu)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null; }
  else
    echo "note: no mesa-vulkan-drivers; without a GPU driver run 'sudo apt-get install mesa-vulkan-drivers'" >&2
  fi
fi
DFT_PACKAGES="cp2k cp2k-data quantum-espresso quantum-espresso-data"
missing=""
for p in $DFT_PACKAGES; do command -v dpkg >/dev/null && ! dpkg -s "$p" >/dev/null 2>&1 && missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing$missing (DFT)" >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }
  else
    echo "note: for DFT run 'sudo apt-get install$missing'" >&2
  fi
fi
