"""Benchmark splits in ``../shared/data`` as ``(train, test)`` :class:`Interactions`.

LightGCN-format splits (``train.txt``/``test.txt``: ``user item item ...`` per line) go through the
importer (``gemrec import --format lightgcn``); the pair files of ML-100K and Last.fm, which no
import format reads, are read here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from gemrec.data.importer import import_dataset
from gemrec.data.interactions import Interactions
from gemrec.data.store import Dataset

__all__ = [
    "SHARED_DATA",
    "load_benchmark",
    "read_lightgcn_split",
    "read_pair_split",
    "validation_split",
]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_lightgcn_split(root: str | Path) -> tuple[Interactions, Interactions]:
    """``(train, test)`` over one shared id space, imported as ``gemrec import --format lightgcn``.

    The importer orders numeric ids numerically, so internal ids are the files' 0-based ids when
    every id from 0 to the largest occurs, as in Gowalla and the ML-1M UltraGCN split (there the
    matrices equal those of a direct read of the files, checked value for value).
    """
    with tempfile.TemporaryDirectory() as tmp:
        result = import_dataset([root], Path(tmp) / "ds", format="lightgcn", valid_fraction=0)
        dataset = Dataset.open(result.path)
        return dataset.interactions("train", "valid"), dataset.interactions("test")


def validation_split(
    train: Interactions, fraction: float = 0.2, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Carve a per-user random holdout from ``train``: ``(fit_part, valid_part)``.

    Each user with at least two items gives ``round(fraction * n)`` (at least one) of them to the
    validation part; the test split is never looked at.
    """
    rng = np.random.default_rng(seed)
    m = train.matrix.tocsr()
    keep = np.ones(m.nnz, dtype=bool)
    for u in range(m.shape[0]):
        a, b = m.indptr[u], m.indptr[u + 1]
        n = b - a
        if n < 2:
            continue
        n_valid = max(1, round(fraction * n))
        keep[a + rng.choice(n, size=n_valid, replace=False)] = False
    coo = m.tocoo()
    fit_m = Interactions.from_arrays(
        coo.row[keep], coo.col[keep], coo.data[keep], n_users=m.shape[0], n_items=m.shape[1]
    )
    valid_m = Interactions.from_arrays(
        coo.row[~keep], coo.col[~keep], coo.data[~keep], n_users=m.shape[0], n_items=m.shape[1]
    )
    return fit_m, valid_m


def read_pair_split(
    train_path: str | Path, test_path: str | Path
) -> tuple[Interactions, Interactions]:
    """``(train, test)`` from whitespace-separated ``user item [...]`` rows (extra columns ignored).

    Ids are remapped to contiguous internal ids over the union of both files.
    """
    tr = np.loadtxt(train_path, dtype=np.int64, usecols=(0, 1), ndmin=2)
    te = np.loadtxt(test_path, dtype=np.int64, usecols=(0, 1), ndmin=2)
    users, u_inv = np.unique(np.concatenate([tr[:, 0], te[:, 0]]), return_inverse=True)
    items, i_inv = np.unique(np.concatenate([tr[:, 1], te[:, 1]]), return_inverse=True)
    n = len(tr)
    train = Interactions.from_arrays(u_inv[:n], i_inv[:n], n_users=len(users), n_items=len(items))
    test = Interactions.from_arrays(u_inv[n:], i_inv[n:], n_users=len(users), n_items=len(items))
    # repeated pairs are one interaction
    return train.with_matrix(train.binary()), test.with_matrix(test.binary())


def load_benchmark(name: str) -> tuple[Interactions, Interactions]:
    """``(train, test)`` of a named benchmark split under ``../shared/data``."""
    if name == "gowalla":
        return read_lightgcn_split(SHARED_DATA / "gowalla")
    if name == "movielens-1m":
        return read_lightgcn_split(SHARED_DATA / "movielens-1m" / "ultragcn_implicit_split")
    if name == "movielens-100k":
        root = SHARED_DATA / "movielens-100k"
        return read_pair_split(root / "u1.base", root / "u1.test")
    if name == "lastfm-2k":
        root = SHARED_DATA / "lastfm-2k" / "lightgcn_pytorch_split"
        return read_pair_split(root / "data1.txt", root / "test1.txt")
    raise ValueError(f"unknown benchmark {name!r}")
