#!/usr/bin/env python3
"""Build tests/fixtures/hull_pymatgen.json: convex-hull (phase-diagram) reference answers from pymatgen.

Run with a throw-away reference environment:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install pymatgen==2026.10.24 smact==4.0.2
    /tmp/ref/bin/python scripts/make_hull_fixtures.py [--out tests/fixtures/hull_pymatgen.json]

What it computes. Entries come from the embedded dataset assets/oqmd_icsd_20.json.gz (the composition of
an entry is the multiset of its `z` list, unreduced). For a chemical system S (a set of elements) the
reference entries are every dataset entry whose elements are a subset of S, as
`PDEntry(composition, energy=formation_energy_per_atom * n_atoms, name=str(id))`, plus one synthetic
elemental entry `PDEntry(Composition(el), 0.0, name="el:<El>")` per element of S. A pymatgen
`PhaseDiagram` is built from them. Systems (about 15 each of 2-, 3-, 4- and 5-element ones) are the
element sets of randomly drawn dataset entries with that many distinct elements.

For every system the file stores the sorted element symbols, the dataset ids used, the keys (entry
names) of `pd.stable_entries`, a list of queries (a random composition in the system, an energy per atom
= hull energy + uniform(-0.15, 0.4) rounded to 6 decimals, and pymatgen's
`get_decomp_and_e_above_hull(PDEntry(comp, e * natoms), allow_negative=True, check_stable=False)`), and,
for every stable compound (non-element), `get_equilibrium_reaction_energy` (with the decomposition it
is computed from) and `get_decomp_and_phase_separation_energy` (pymatgen's SLSQP "decomposition
enthalpy"). All energies are formation energies in eV/atom; decomposition amounts are atom fractions.
`notes` describes the pymatgen rules a reimplementation must follow.

The script re-executes itself with PYTHONHASHSEED=0: pymatgen iterates over sets of entries in a few
places (e.g. the SLSQP competing-entry list), and a fixed hash seed keeps the output byte-identical.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import warnings
from collections import Counter
from importlib.metadata import version
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram  # noqa: E402
from pymatgen.core import Composition, Element  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "assets" / "oqmd_icsd_20.json.gz"
OUT = ROOT / "tests" / "fixtures" / "hull_pymatgen.json"
SEED = 20260411
SYSTEMS_PER_SIZE = {2: 15, 3: 15, 4: 15, 5: 15}
QUERIES_PER_SYSTEM = 24

NOTES = """\
Reference: pymatgen.analysis.phase_diagram.PhaseDiagram (pymatgen %(pmg)s, scipy %(scipy)s). Entries are \
PDEntry(composition, energy); energy_per_atom = energy / composition.num_atoms (here: the formation energy per \
atom, so e*n/n is what pymatgen compares, not e itself). Rules replicated from PhaseDiagram._compute:
(1) elements = sorted(all elements of the entries) using Element.__lt__ (Pauling X, then symbol); hull coordinates \
of a composition are the atomic fractions of elements[1:], plus energy_per_atom as last coordinate.
(2) Duplicates: entries are sorted by (reduced_composition, energy_per_atom, str(name)) and grouped by equal \
reduced composition (Composition equality: same elements, amounts within 1e-8). Each group contributes ONE \
candidate, min(group, key=energy_per_atom), i.e. the lowest energy per atom, ties broken by the smallest \
str(name) (plain string order: dataset ids "123" sort before "el:Fe" because digits < 'e'; "10" < "9"). \
Only these per-composition minima can ever be stable; every other entry (polymorphs, scaled duplicates) is \
unstable, even when its energy equals the minimum.
(3) Elemental reference: for each element the group-minimum of the pure-element group (same rule) becomes \
el_refs[el]. Here each synthetic el:X has energy 0; a dataset elemental entry with formation energy < 0 \
would win, one with exactly 0.0 wins the tie by name order (digits < 'e'), so the stable key of an element \
may be a dataset id instead of "el:X". Missing element -> ValueError.
(4) Hull points: candidates whose formation energy w.r.t. el_refs, form_e = e_pa - sum_i x_i*e_pa(el_ref_i), \
is < -1e-11 (PhaseDiagram.formation_energy_tol), plus the elemental references (appended after them). \
An extra point (1/dim in every reduced coordinate, energy = max(all qhull data values)+1) is added; \
scipy ConvexHull(qhull_options="Qt i") is run on the (dim-1 fractions + energy) points; facets containing the \
extra point are dropped (this leaves the lower hull), and so are facets whose points, with the energy column \
replaced by 1, have |det| <= 1e-14 (zero volume in composition space, e.g. vertical facets). \
stable_entries = the hull points that are vertices of at least one remaining facet (points lying exactly on \
a facet without being a qhull vertex are NOT stable; 'Qt' triangulates, it does not add coplanar points).
(5) Decomposition of a composition: facets are scanned in qhull order; the FIRST facet whose barycentric \
coordinates of the point (atomic fractions of elements[1:]) are all >= -1e-9 (numerical_tol/10) is used; \
amounts = those barycentric coordinates, entries with |amount| <= 1e-8 (numerical_tol) are dropped (no \
renormalisation). hull_energy_per_atom = sum(amount * e_pa) over the kept entries. No facet -> RuntimeError. \
e_above_hull = entry.energy_per_atom - hull_energy_per_atom; with allow_negative=True it is returned as is \
(negative below the hull); with allow_negative=False a value < -1e-8 raises. check_stable=True would \
short-circuit entries that are (==) a stable entry to ({entry: 1.0}, 0.0); the queries here use \
check_stable=False. Entry equality (==, hash) is composition + np.allclose(energy), names are ignored.
(6) phase_separation[*].value = PhaseDiagram.get_equilibrium_reaction_energy(entry): the entry must be stable \
(else ValueError); elements return 0 (not listed here). Otherwise a new PhaseDiagram is built from the STABLE \
entries whose elements are a subset of the entry's elements, minus the entry itself (only that one entry: \
stable entries have distinct reduced compositions anyway), with elements=entry.composition.elements, and the \
answer is get_decomp_and_e_above_hull(entry, allow_negative=True) on it (<= 0 for stable entries). \
Unstable entries are not re-admitted: a compound that would become stable once the entry is removed is \
ignored. phase_separation[*].decomposition is that sub-diagram's decomposition.
(7) phase_separation[*].phase_separation_energy = get_decomp_and_phase_separation_energy(entry) with defaults \
(space_limit=200, stable_only=False, tols=(1e-8,), maxiter=1000): competing entries = hull points of (4) \
(per-composition minima with form_e < -1e-11, plus el_refs) whose elements are a subset of the entry's, \
EXCLUDING every one whose fractional composition equals the entry's within Composition.amount_tolerance=1e-8; \
the decomposition is found with scipy SLSQP (minimise sum x_i e_pa_i s.t. A x = b in atom fractions, \
0 <= x_i <= num_atoms), amounts <= 1e-8 dropped, energy = e_pa(entry) - sum(x_i e_pa_i). Mathematically this \
equals the hull answer of (6) but with previously-unstable hull points admitted; it is only SLSQP-accurate. \
phase_separation_energy_hull / phase_separation_hull_decomposition are the exact version computed by this script \
(not a pymatgen API): PhaseDiagram(those competing entries, elements=entry.composition.elements)\
.get_decomp_and_e_above_hull(entry, allow_negative=True). \
%(ps_stats)s
Queries: formula is an unreduced integer formula; energy_per_atom is the number e that was used \
(PDEntry energy = e * natoms); e_above_hull and decomposition ([name, atom fraction] sorted by name) are \
pymatgen's get_decomp_and_e_above_hull(..., allow_negative=True, check_stable=False)."""


def symbol(z: int) -> str:
    return Element.from_Z(z).symbol


def formula_of(counts: dict[str, int], order: list[str]) -> str:
    return "".join(f"{el}{counts[el]}" for el in order if counts.get(el, 0))


def decomp_list(decomp: dict) -> list:
    return sorted([[e.name, float(a)] for e, a in decomp.items()], key=lambda x: x[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT.relative_to(ROOT)})")
    args = ap.parse_args()

    rng = random.Random(SEED)
    data = json.loads(gzip.open(DATASET).read())
    entries = data["entries"]
    for e in entries:
        c = Counter(symbol(z) for z in e["z"])
        e["_counts"] = dict(c)
        e["_els"] = frozenset(c)

    # --- pick systems
    systems = []
    seen = set()
    for n, want in SYSTEMS_PER_SIZE.items():
        pool = [e for e in entries if len(e["_els"]) == n]
        rng.shuffle(pool)
        got = 0
        for e in pool:
            if e["_els"] in seen:
                continue
            seen.add(e["_els"])
            systems.append(e["_els"])
            got += 1
            if got == want:
                break

    out_systems = []
    ps_diffs = []
    n_queries = 0
    n_below = 0
    for S in systems:
        els_sorted = sorted(S)
        refs = [e for e in entries if e["_els"] <= S]
        pd_entries = [
            PDEntry(Composition(e["_counts"]), e["formation_energy_per_atom"] * sum(e["_counts"].values()), name=str(e["id"]))
            for e in refs
        ]
        pd_entries += [PDEntry(Composition(el), 0.0, name=f"el:{el}") for el in els_sorted]
        pd = PhaseDiagram(pd_entries)
        stable = sorted(e.name for e in pd.stable_entries)
        stable_compounds = sorted((e for e in pd.stable_entries if not e.is_element), key=lambda e: e.name)

        # --- queries
        comps: list[dict[str, int]] = []
        for el in rng.sample(els_sorted, min(2, len(els_sorted))):
            comps.append({el: rng.randint(1, 4)})
        for e in rng.sample(stable_compounds, min(3, len(stable_compounds))):
            red = e.composition.reduced_composition
            mult = rng.randint(1, 2)
            comps.append({str(k): int(round(v)) * mult for k, v in red.items()})
        while len(comps) < QUERIES_PER_SYSTEM:
            if len(els_sorted) == 2 or rng.random() < 0.3:
                sub = list(els_sorted)
            else:
                sub = rng.sample(els_sorted, rng.randint(2, len(els_sorted)))
            comps.append({el: rng.randint(1, 6) for el in sub})
        queries = []
        for counts in comps:
            comp = Composition(counts)
            natoms = sum(counts.values())
            hull = pd.get_hull_energy_per_atom(comp)
            e = round(hull + rng.uniform(-0.15, 0.4), 6)
            decomp, ehull = pd.get_decomp_and_e_above_hull(
                PDEntry(comp, e * natoms), allow_negative=True, check_stable=False
            )
            n_below += ehull < 0
            queries.append(
                {
                    "formula": formula_of(counts, els_sorted),
                    "energy_per_atom": e,
                    "e_above_hull": float(ehull),
                    "decomposition": decomp_list(decomp),
                }
            )
        n_queries += len(queries)

        # --- equilibrium reaction / phase separation energies of stable compounds
        phase_sep = []
        for entry in stable_compounds:
            val = pd.get_equilibrium_reaction_energy(entry)
            # replicate get_equilibrium_reaction_energy to obtain its decomposition
            space = frozenset(entry.composition.elements)
            sub_entries = [x for x in pd.stable_entries if space.issuperset(x.composition.elements) and x != entry]
            mod_pd = PhaseDiagram(sub_entries, elements=entry.composition.elements)
            eq_decomp, eq_val = mod_pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
            assert abs(eq_val - val) < 1e-12, (eq_val, val)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ps_decomp, ps_val = pd.get_decomp_and_phase_separation_energy(entry)
            # exact (hull-based) version of the same quantity: a PhaseDiagram of the competing entries
            frac = entry.composition.fractional_composition
            comp_entries = [
                x
                for x in pd.qhull_entries
                if space.issuperset(x.composition.elements) and x.composition.fractional_composition != frac
            ]
            ex_pd = PhaseDiagram(comp_entries, elements=entry.composition.elements)
            ex_decomp, ex_val = ex_pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
            ps_diffs.append((abs(ps_val - ex_val), abs(ex_val - val) > 1e-9))
            phase_sep.append(
                {
                    "key": entry.name,
                    "value": float(val),
                    "decomposition": decomp_list(eq_decomp),
                    "phase_separation_energy": float(ps_val),
                    "phase_separation_decomposition": decomp_list(ps_decomp),
                    "phase_separation_energy_hull": float(ex_val),
                    "phase_separation_hull_decomposition": decomp_list(ex_decomp),
                }
            )

        out_systems.append(
            {
                "elements": els_sorted,
                "references": sorted(e["id"] for e in refs),
                "stable": stable,
                "queries": queries,
                "phase_separation": phase_sep,
            }
        )
        print(f"{'-'.join(els_sorted)}: {len(refs)} refs, {len(stable)} stable, {len(queries)} queries", file=sys.stderr)

    max_dev = max((d for d, _ in ps_diffs), default=0.0)
    n_differ = sum(1 for _, differs in ps_diffs if differs)
    ps_stats = (
        f"In this file: {len(ps_diffs)} stable compounds; max |SLSQP phase_separation_energy - exact hull value| = "
        f"{max_dev:.3g} eV/atom; {n_differ} compounds where the exact phase-separation value differs from the "
        f"equilibrium reaction energy (value) by > 1e-9 (a candidate that is unstable in the full diagram becomes a competitor once the entry is removed)."
    )
    versions = {
        "pymatgen": version("pymatgen"),
        "pymatgen-core": version("pymatgen-core"),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": sys.version.split()[0],
    }
    notes = NOTES % {"pmg": versions["pymatgen"], "scipy": versions["scipy"], "ps_stats": ps_stats}
    doc = {
        "versions": versions,
        "generator": "scripts/make_hull_fixtures.py",
        "seed": SEED,
        "dataset": "assets/oqmd_icsd_20.json.gz",
        "notes": notes,
        "counts": {"systems": len(out_systems), "queries": n_queries, "queries_below_hull": int(n_below)},
        "systems": out_systems,
    }
    write(doc, args.out)
    print(f"wrote {args.out}: {len(out_systems)} systems, {n_queries} queries ({n_below} below hull)", file=sys.stderr)
    print(ps_stats, file=sys.stderr)


def write(doc: dict, path: Path) -> None:
    """Compact JSON with one query / phase-separation item per line."""
    d = lambda x: json.dumps(x, separators=(",", ":"))  # noqa: E731
    lines = ["{"]
    for k in ("versions", "generator", "seed", "dataset", "notes", "counts"):
        lines.append(f"{d(k)}:{d(doc[k])},")
    lines.append('"systems":[')
    for i, s in enumerate(doc["systems"]):
        lines.append("{")
        for k in ("elements", "references", "stable"):
            lines.append(f"{d(k)}:{d(s[k])},")
        lines.append('"queries":[')
        lines.append(",\n".join(d(q) for q in s["queries"]))
        lines.append('],"phase_separation":[')
        lines.append(",\n".join(d(p) for p in s["phase_separation"]))
        lines.append("]}" + ("," if i + 1 < len(doc["systems"]) else ""))
    lines.append("]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    json.loads(path.read_text())  # sanity check


if __name__ == "__main__":
    main()
