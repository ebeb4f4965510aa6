"""Can MovieLens-1M's ``users.dat`` be joined to the UltraGCN implicit split's user ids?

The shared copy of MovieLens-1M has no ``ratings.dat``; its interactions are the UltraGCN split,
whose 6,022 users are numbered 0..6021. If user ``u`` of the split were ``UserID = u + 1 + offset``
(ids in order, a few users dropped), the gender of ``users.dat`` would be predictable from the
movies a user watched, as it is on every MovieLens release (ROC AUC well above 0.5). The script
computes, for each offset and each window of 800 users, the AUC of predicting the window's
genders from per-movie female rates learned on the other users. Values near 0.5 everywhere mean
the ids do not line up: the attributes cannot be attached to that split. The same measure on
MovieLens-100K, whose ``u.user`` ids are the ratings' ids, is printed first as the control.

Run: ``PYTHONPATH=src python benchmarks/studies/ml1m_user_join.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _data import SHARED_DATA

ROOT = SHARED_DATA / "movielens-1m"


def _interactions() -> sp.csr_matrix:
    rows: list[int] = []
    cols: list[int] = []
    for name in ("train.txt", "test.txt"):
        for line in (ROOT / "ultragcn_implicit_split" / name).read_text().splitlines():
            parts = [int(x) for x in line.split()]
            rows += [parts[0]] * (len(parts) - 1)
            cols += parts[1:]
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))
    m.data[:] = 1.0
    return m


def gender_auc(r: sp.csr_matrix, female: np.ndarray, offset: int, lo: int, hi: int) -> float:
    """AUC of the genders of split users ``lo..hi`` under ``UserID = u + 1 + offset``."""
    users = np.arange(r.shape[0])
    joined = users + offset < len(female)
    y = np.where(joined, female[np.minimum(users + offset, len(female) - 1)], 0.0)
    test = joined & (users >= lo) & (users < hi)
    train = joined & ~test
    rate = np.asarray(r[train].T @ y[train]).ravel() / np.maximum(
        np.asarray(r[train].sum(axis=0)).ravel(), 1.0
    )
    x = r[test]
    score = np.asarray(x @ rate).ravel() / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    yt = y[test]
    ranks = rankdata(score)
    pos, neg = yt.sum(), len(yt) - yt.sum()
    return float((ranks[yt == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _control() -> float:
    """The AUC on MovieLens-100K (ids joined for certain), users 0..400 as the window."""
    root = SHARED_DATA / "movielens-100k"
    data = np.loadtxt(root / "u.data", dtype=np.int64, usecols=(0, 1))
    r = sp.csr_matrix((np.ones(len(data), np.float32), (data[:, 0] - 1, data[:, 1] - 1)))
    r.data[:] = 1.0
    lines = (root / "u.user").read_text(encoding="latin-1").splitlines()
    female = np.asarray([line.split("|")[2] == "F" for line in lines], dtype=np.float64)
    return gender_auc(r, female, 0, 0, 400)


def main() -> int:
    print(f"control, MovieLens-100K (ids joined): AUC {_control():.3f}")
    r = _interactions()
    lines = (ROOT / "original_metadata" / "users.dat").read_text(encoding="latin-1").splitlines()
    female = np.asarray([line.split("::")[1] == "F" for line in lines], dtype=np.float64)
    offsets = (0, 1, 2, 5, 10, 18)
    print("window    " + "  ".join(f"offset {o:2d}" for o in offsets))
    for lo in (0, 1000, 3000, 5000):
        aucs = [gender_auc(r, female, o, lo, lo + 800) for o in offsets]
        print(f"{lo:4d}-{lo + 800:4d} " + "  ".join(f"{a:9.3f}" for a in aucs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
