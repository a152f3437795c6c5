#!/usr/bin/env python3
"""Check that CIF files written by Geode are read back identically by pymatgen and ASE.

Usage (with the reference environment that has pymatgen and ASE):

    cargo test --lib io::cif::tests::write_roundtrip_samples   # writes target/cif-roundtrip/*.cif + *.json
    /work/refvenv/bin/python scripts/check_cif_roundtrip.py [DIR]

Each `NAME.cif` in DIR (default `target/cif-roundtrip`) comes with `NAME.json` holding what Geode meant
to write: lattice parameters, the lattice rows, species and wrapped fractional coordinates. The script
reads every CIF with pymatgen (`Structure.from_file`) and ASE (`ase.io.read`) and checks the cell
parameters (1e-6 Å / 1e-6°), the lattice rows for pymatgen (same orientation convention as Geode), and
that the sites match one to one with the same species within 1e-6 Å (periodic).

A second mode compares Geode's reading of real CIFs with pymatgen's own:

    /work/refvenv/bin/python scripts/check_cif_roundtrip.py --pairs ORIG.cif GEODE_P1.cif [ORIG2 GEODE2 ...]

where GEODE_P1.cif is `geode convert ORIG.cif GEODE_P1.cif`; pymatgen reads both and the structures
must agree site by site (1e-4 Å, since pymatgen merges symmetry images with its own tolerances).

Exit status 0 when every check passes.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def match_sites(matrix, species_a, frac_a, species_b, frac_b, tol_ang):
    """One-to-one match of two site lists in the same cell; returns (ok, worst distance, message)."""
    if len(species_a) != len(species_b):
        return False, float("inf"), f"{len(species_a)} sites vs {len(species_b)}"
    if sorted(species_a) != sorted(species_b):
        return False, float("inf"), "different species counts"
    matrix = np.asarray(matrix, dtype=float)
    fb = np.asarray(frac_b, dtype=float)
    used = np.zeros(len(species_b), dtype=bool)
    worst = 0.0
    for sp, fa in zip(species_a, frac_a):
        d = fb - np.asarray(fa, dtype=float)
        d -= np.round(d)
        dist = np.linalg.norm(d @ matrix, axis=1)
        dist[used] = np.inf
        dist[[s != sp for s in species_b]] = np.inf
        k = int(np.argmin(dist))
        if not np.isfinite(dist[k]) or dist[k] > tol_ang:
            return False, float(dist[k]), f"no {sp} site near {list(fa)} (closest {dist[k]:.3g} Å)"
        used[k] = True
        worst = max(worst, float(dist[k]))
    return True, worst, "ok"


def check_written(directory: Path) -> bool:
    from ase.io import read as ase_read
    from pymatgen.core import Structure

    files = sorted(directory.glob("*.cif"))
    if not files:
        print(f"no CIF files in {directory}; run `cargo test --lib io::cif::tests::write_roundtrip_samples` first")
        return False
    all_ok = True
    for cif in files:
        exp = json.loads(cif.with_suffix(".json").read_text())
        abc, angles = np.array(exp["abc"]), np.array(exp["angles"])
        matrix = np.array(exp["matrix"])
        species, frac = exp["species"], exp["frac_coords"]

        # pymatgen
        s = Structure.from_file(str(cif))
        p_ok = np.allclose(s.lattice.abc, abc, atol=1e-6) and np.allclose(s.lattice.angles, angles, atol=1e-6)
        p_ok &= np.allclose(s.lattice.matrix, matrix, atol=1e-6)
        ok, worst, msg = match_sites(matrix, species, frac, [site.specie.symbol for site in s], s.frac_coords, 1e-6)
        p_ok &= ok
        print(f"{cif.name:28s} pymatgen: {'ok' if p_ok else 'FAIL'} ({len(s)} sites, worst {worst:.2e} Å) {'' if ok else msg}")

        # ASE
        atoms = ase_read(str(cif))
        cellpar = atoms.cell.cellpar()
        a_ok = np.allclose(cellpar[:3], abc, atol=1e-6) and np.allclose(cellpar[3:], angles, atol=1e-6)
        ok, worst, msg = match_sites(matrix, species, frac, atoms.get_chemical_symbols(), atoms.get_scaled_positions(wrap=True), 1e-6)
        a_ok &= ok
        print(f"{cif.name:28s} ASE:      {'ok' if a_ok else 'FAIL'} ({len(atoms)} sites, worst {worst:.2e} Å) {'' if ok else msg}")
        all_ok &= p_ok and a_ok
    return all_ok


def check_pairs(paths: list[str]) -> bool:
    from pymatgen.core import Structure

    if len(paths) % 2:
        print("--pairs needs ORIG GEODE pairs")
        return False
    all_ok = True
    for orig, ours in zip(paths[::2], paths[1::2]):
        try:
            a = Structure.from_file(orig)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"{Path(orig).name:24s} pymatgen cannot read the original: {type(e).__name__}: {e}")
            all_ok = False
            continue
        b = Structure.from_file(ours)
        lat_ok = np.allclose(a.lattice.abc, b.lattice.abc, atol=1e-6) and np.allclose(a.lattice.angles, b.lattice.angles, atol=1e-6)
        ok, worst, msg = match_sites(
            a.lattice.matrix, [x.specie.symbol for x in a], a.frac_coords, [x.specie.symbol for x in b], b.frac_coords, 1e-4
        )
        good = lat_ok and ok
        all_ok &= good
        print(f"{Path(orig).name:24s} {a.composition.reduced_formula:10s} {len(a):4d} sites: {'ok' if good else 'FAIL'} (worst {worst:.2e} Å) {'' if ok else msg}")
    return all_ok


def main() -> int:
    args = sys.argv[1:]
    if args and args[0] == "--pairs":
        ok = check_pairs(args[1:])
    else:
        ok = check_written(Path(args[0]) if args else Path("target/cif-roundtrip"))
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
