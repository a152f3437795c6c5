"""Matbench's five folds of matbench_dielectric over crystal-toolkit's copy (argv[1]), checked against
CrabNet's fold files (argv[2]/{train,val,test}{i}.csv) by alphabetical formula and target. Prints JSON:
the test indices of each fold, and how many of CrabNet's rows matched (CrabNet's copy has fewer rows).
Matbench: KFold(n_splits=5, shuffle=True, random_state=18012019) over the dataset in Matbench's order.
"""
import gzip, json, sys
import numpy as np, pandas as pd, sklearn, pymatgen.core
from sklearn.model_selection import KFold
from pymatgen.core import Structure

d = json.load(gzip.open(sys.argv[1]))
keys = sorted(d["structure"], key=int)
assert keys == [str(i) for i in range(len(keys))]
target = np.array([d["n"][k] for k in keys])
formula = [Structure.from_dict(d["structure"][k]).composition.alphabetical_formula.replace(" ", "") for k in keys]
folds, checks = [], []
for i, (_, test) in enumerate(KFold(n_splits=5, shuffle=True, random_state=18012019).split(target)):
    ours = set(zip([formula[j] for j in test], np.round(target[test], 6)))
    cn_test = pd.read_csv(f"{sys.argv[2]}/test{i}.csv")
    cn_train = pd.concat([pd.read_csv(f"{sys.argv[2]}/{p}{i}.csv") for p in ("train", "val")])
    in_test = len(set(zip(cn_test.formula, np.round(cn_test.target, 6))) & ours)
    in_train = len(set(zip(cn_train.formula, np.round(cn_train.target, 6))) & ours)
    assert in_train == 0, f"fold {i}: {in_train} of CrabNet's training rows fall in this test fold"
    folds.append([int(j) for j in test])
    checks.append({"fold": i, "test_rows": len(test), "crabnet_test_rows": len(cn_test),
                   "crabnet_test_rows_matched": in_test, "crabnet_train_rows_in_test": in_train})
json.dump({"kfold": "KFold(n_splits=5, shuffle=True, random_state=18012019)", "n": len(keys),
           "folds": folds, "crabnet_check": checks,
           "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pymatgen": pymatgen.core.__version__}},
          sys.stdout)
