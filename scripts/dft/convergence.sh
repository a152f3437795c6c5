#!/usr/bin/env bash
# Convergence of Geode's CP2K defaults (docs/dft.md): total energy per atom of a metal (fcc Al), a
# semiconductor (diamond Si) and an oxide (rock-salt MgO), primitive cells at experimental lattice
# constants, against the density cutoff (at the default k-point density) and against the k-point density
# (at the default cutoff). Each row: system, parameter, value, k-mesh, eV/atom, seconds.
#
#   scripts/dft/convergence.sh [GEODE] > docs/dft-convergence.csv
#
# GEODE defaults to target/release/geode (cargo build --release). One CP2K process with one thread at a
# time; about 20 minutes on this machine (2 cores).
set -euo pipefail
GEODE=${1:-${CARGO_TARGET_DIR:-target}/release/geode}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cell() { # name a b c (row vectors) then "El x y z" fractional lines
  local name=$1; shift
  { echo "data_$name"; echo "_symmetry_space_group_name_H-M 'P 1'"
    python3 - "$@" <<'PY'
import sys, math
a = [list(map(float, sys.argv[i:i+3])) for i in (1, 4, 7)]
L = [math.sqrt(sum(x*x for x in v)) for v in a]
ang = lambda u, v: math.degrees(math.acos(sum(x*y for x, y in zip(u, v)) / (math.sqrt(sum(x*x for x in u)) * math.sqrt(sum(y*y for y in v)))))
print(f"_cell_length_a {L[0]:.8f}\n_cell_length_b {L[1]:.8f}\n_cell_length_c {L[2]:.8f}")
print(f"_cell_angle_alpha {ang(a[1], a[2]):.8f}\n_cell_angle_beta {ang(a[0], a[2]):.8f}\n_cell_angle_gamma {ang(a[0], a[1]):.8f}")
print("loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z")
for k, s in enumerate(sys.argv[10:]):
    el, x, y, z = s.split()
    print(f"{el}{k} {el} {x} {y} {z}")
PY
  } > "$work/$name.cif"
}
declare -A half=([Al]=2.025 [Si]=2.7155 [MgO]=2.106)  # a/2 (Å): Al 4.05, Si 5.431, MgO 4.212
h=${half[Al]}; cell Al 0 $h $h  $h 0 $h  $h $h 0 "Al 0 0 0"
h=${half[Si]}; cell Si 0 $h $h  $h 0 $h  $h $h 0 "Si 0 0 0" "Si 0.25 0.25 0.25"
h=${half[MgO]}; cell MgO 0 $h $h  $h 0 $h  $h $h 0 "Mg 0 0 0" "O 0.5 0.5 0.5"
# The Γ-centred mesh CP2K gets at k-point density k on an fcc primitive cell of half-edge h (|b| = √3 / 2h).
mesh() { python3 -c "import math; n = math.ceil(2 * math.pi * $1 * math.sqrt(3) / (2 * $2) - 1e-9); n += n % 2 == 0; print(f'{n}x{n}x{n}')"; }
echo "system,parameter,value,kmesh,energy_per_atom_ev,seconds"
run() { # system spec parameter value kdensity
  local t0 t1 out e
  t0=$(date +%s.%N)
  out=$("$GEODE" energy "$work/$1.cif" --potential "$2" --json 2>&1) || { echo "$1,$3,$4,,failed," ; echo "$out" >&2; return; }
  t1=$(date +%s.%N)
  e=$(echo "$out" | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['energy_per_atom'])")
  echo "$1,$3,$4,$(mesh "$5" "${half[$1]}"),$e,$(python3 -c "print(round($t1 - $t0, 1))")"
}
for sys in Al Si MgO; do
  for c in 300 400 500 600 800 1000; do run "$sys" "cp2k:cutoff=$c" cutoff "$c" 4; done
  for k in 2 3 4 5 6 8; do run "$sys" "cp2k:kdensity=$k" kdensity "$k" "$k"; done
done
