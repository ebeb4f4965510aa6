"""A small reader of the LightGCN line format (``user item item ...``) for the lightgcn benchmarks.

The dataset importer (``gemrec import``) is the product path; this reader only exists so that the
benchmarks can run on ``../shared/data/gowalla`` directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gemrec.data.interactions import Interactions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def read_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) int64 arrays of a ``user item item ...`` file."""
    users: list[int] = []
    items: list[int] = []
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            users.extend([int(parts[0])] * (len(parts) - 1))
            items.extend(int(x) for x in parts[1:])
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def load_split(name: str = "gowalla") -> tuple[Interactions, Interactions]:
    """(train, test) Interactions of ``../shared/data/<name>/{train,test}.txt``."""
    folder = SHARED / name
    tu, ti = read_pairs(folder / "train.txt")
    su, si = read_pairs(folder / "test.txt")
    n_users = int(max(tu.max(), su.max())) + 1
    n_items = int(max(ti.max(), si.max())) + 1
    train = Interactions.from_arrays(tu, ti, n_users=n_users, n_items=n_items)
    test = Interactions.from_arrays(su, si, n_users=n_users, n_items=n_items)
    return train, test


def holdout(
    train: Interactions, fraction: float = 0.1, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Carve a validation split from ``train``: ``fraction`` of each user's items (users with >= 2).

    Returns (train_without_valid, valid).
    """
    m = train.matrix.tocsr()
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    deg = np.diff(m.indptr)[rows]
    pick = (rng.random(m.nnz) < fraction) & (deg >= 2)
    cols = m.indices
    fit = Interactions.from_arrays(rows[~pick], cols[~pick], n_users=m.shape[0], n_items=m.shape[1])
    val = Interactions.from_arrays(rows[pick], cols[pick], n_users=m.shape[0], n_items=m.shape[1])
    return fit, val
