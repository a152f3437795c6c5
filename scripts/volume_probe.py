#!/usr/bin/env python3
"""Probe: is the cell volume what the forward model reads differently in generated and relaxed crystals?

For a `geode generate --relax chgnet --out D` folder, writes two rescaled copies of every generated CIF:
  D/oracle/  the generated crystal scaled (fractional coordinates kept) to its CHGNet-relaxed volume;
  D/bond/    scaled so the median ratio of each atom's nearest-neighbour distance to the dataset's median
             nearest-neighbour distance for that element pair is 1 (a data-driven bond-length rule);
and prints the relaxed/generated volume ratios. Then `geode predict D/oracle/*.cif --json` etc.
Needs pymatgen (a throwaway venv). Usage: volume_probe.py D [path/to/oqmd_icsd_20.json.gz]
(used for docs/generative.md, "What limits the 1.5–2.0 eV window").
"""
import collections, glob, gzip, json, os, sys

import numpy as np
from pymatgen.core import Lattice, Structure


def nearest_pair(s):
    for i, ns in enumerate(s.get_all_neighbors(6.0)):
        if ns:
            j = min(ns, key=lambda n: n.nn_distance)
            yield tuple(sorted((s[i].specie.Z, j.specie.Z))), j.nn_distance


def main(d, dataset):
    acc = collections.defaultdict(list)
    for e in json.load(gzip.open(dataset))['entries']:
        s = Structure(Lattice(np.array(e['lattice']).reshape(3, 3)), e['z'], np.array(e['frac']).reshape(-1, 3))
        for k, r in nearest_pair(s):
            acc[k].append(r)
    med = {k: (float(np.median(v)), len(v)) for k, v in acc.items()}
    os.makedirs(f'{d}/bond', exist_ok=True)
    os.makedirs(f'{d}/oracle', exist_ok=True)
    ratios, bond = [], []
    for f in sorted(glob.glob(f'{d}/*.cif')):
        name = os.path.basename(f)
        s = Structure.from_file(f)
        logs = [np.log(med[k][0] / r) for k, r in nearest_pair(s) if k in med and med[k][1] >= 5]
        sc = float(np.exp(np.median(logs))) if logs else 1.0
        b = s.copy()
        b.scale_lattice(s.volume * sc ** 3)
        b.to(filename=f'{d}/bond/{name}')
        rel = f'{d}/relaxed/{name}'
        if os.path.exists(rel):
            r = Structure.from_file(rel)
            ratios.append(r.volume / s.volume)
            bond.append(sc ** 3)
            o = s.copy()
            o.scale_lattice(r.volume)
            o.to(filename=f'{d}/oracle/{name}')
    ratios, bond = np.array(ratios), np.array(bond)
    print(f'relaxed/generated volume: mean {ratios.mean():.3f} median {np.median(ratios):.3f} sd {ratios.std():.3f} (n={len(ratios)})')
    print(f'bond-rule/generated volume: mean {bond.mean():.3f} median {np.median(bond):.3f} sd {bond.std():.3f}')
    print(f'corr(log relaxed ratio, log bond-rule ratio) = {np.corrcoef(np.log(ratios), np.log(bond))[0, 1]:.2f}')


if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, '..', 'assets', 'oqmd_icsd_20.json.gz'))
