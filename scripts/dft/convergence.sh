#!/usr/bin/env bash
# Convergence of Geode's CP2K defaults (docs/dft.md): total energy per atom of a metal (fcc Al), a
# semiconductor (diamond Si) and an oxide (rock-salt MgO), primitive cells at experimental lattice
# constants, against the density cutoff (at the default k-point density) and against the k-point density
# (at the default cutoff). Each row: system, parameter, value, k-mesh, eV/atom, seconds.
#
#   scripts/dft/convergence.sh [GEODE] > docs/dft-convergence.csv
#
# GEODE defaults to target/release/geode (cargo build --release). One CP2K process with one thread at a
# time; about 40 minutes on this machine (2 cores). SYSTEMS="MgO MgO_B2" (and CUTOFFS / KDS) rerun a part.
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
# a/2 (Å): Al 4.05 (fcc) and 3.24 (bcc), Si 5.431, MgO 4.212 (rock salt); CsCl-type MgO (B2) at a = 2.66.
h=2.025; cell Al 0 $h $h  $h 0 $h  $h $h 0 "Al 0 0 0"
h=1.62; cell Al_bcc -$h $h $h  $h -$h $h  $h $h -$h "Al 0 0 0"
h=2.7155; cell Si 0 $h $h  $h 0 $h  $h $h 0 "Si 0 0 0" "Si 0.25 0.25 0.25"
h=2.106; cell MgO 0 $h $h  $h 0 $h  $h $h 0 "Mg 0 0 0" "O 0.5 0.5 0.5"
cell MgO_B2 2.66 0 0  0 2.66 0  0 0 2.66 "Mg 0 0 0" "O 0.5 0.5 0.5"
# The Γ-centred mesh CP2K gets at k-point density k (Geode's rule: ⌈2π k |b_i|⌉, even counts raised by one).
mesh() { python3 - "$work/$2.cif" "$1" <<'PY'
import math, sys, re
t = open(sys.argv[1]).read()
g = lambda k: float(re.search(rf"_cell_{k}\s+(\S+)", t).group(1))
a, b, c = g("length_a"), g("length_b"), g("length_c")
al, be, ga = (math.radians(g(x)) for x in ("angle_alpha", "angle_beta", "angle_gamma"))
v = a * b * c * math.sqrt(1 - math.cos(al)**2 - math.cos(be)**2 - math.cos(ga)**2 + 2 * math.cos(al) * math.cos(be) * math.cos(ga))
rec = [b * c * math.sin(al) / v, a * c * math.sin(be) / v, a * b * math.sin(ga) / v]
ns = [math.ceil(2 * math.pi * float(sys.argv[2]) * r - 1e-9) for r in rec]
print("x".join(str(n + (n % 2 == 0)) for n in ns))
PY
}
echo "system,parameter,value,kmesh,energy_per_atom_ev,seconds"
run() { # system spec parameter value kdensity
  local t0 t1 out e
  t0=$(date +%s.%N)
  out=$("$GEODE" energy "$work/$1.cif" --potential "$2" --json 2>&1) || { echo "$1,$3,$4,,failed,"; echo "$out" >&2; return; }
  t1=$(date +%s.%N)
  e=$(echo "$out" | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['energy_per_atom'])")
  echo "$1,$3,$4,$(mesh "$5" "$1"),$e,$(python3 -c "print(round($t1 - $t0, 1))")"
}
systems=${SYSTEMS:-"Al Al_bcc Si MgO MgO_B2"}
for sys in $systems; do
  case $sys in
    Al|Si) cutoffs="300 400 500 600 800 1000"; kds="2 3 4 5 6 8" ;;
    Al_bcc) cutoffs=""; kds="2 3 4 5 6 8" ;;
    MgO) cutoffs="300 400 500 600 800 1000 1200 1400 1600"; kds="2 3 4" ;;
    MgO_B2) cutoffs="600 800 1000 1200 1400 1600"; kds="" ;;
  esac
  cutoffs=${CUTOFFS-$cutoffs}; kds=${KDS-$kds}  # override for partial reruns: CUTOFFS="1200" KDS=""
  for c in $cutoffs; do run "$sys" "cp2k:cutoff=$c,kdensity=4" cutoff "$c" 4; done
  for k in $kds; do run "$sys" "cp2k:cutoff=600,kdensity=$k" kdensity "$k" "$k"; done
done
