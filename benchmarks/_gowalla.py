"""Readers for LightGCN-format splits (``train.txt``/``test.txt``: ``user item item ...`` per line).

A stop-gap for benchmarks and tests until ``gemrec import --format lightgcn`` is merged; it builds
the same :class:`~gemrec.data.interactions.Interactions` the dataset store would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gemrec.data.interactions import Interactions

__all__ = ["SHARED_DATA", "read_lightgcn_split", "validation_split"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _read_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        row = np.asarray(parts, dtype=np.int64)
        users.append(np.full(len(row) - 1, row[0]))
        items.append(row[1:])
    return np.concatenate(users), np.concatenate(items)


def read_lightgcn_split(root: str | Path) -> tuple[Interactions, Interactions]:
    """``(train, test)`` over one shared id space (ids as in the files, 0-based)."""
    root = Path(root)
    tu, ti = _read_lines(root / "train.txt")
    su, si = _read_lines(root / "test.txt")
    n_users = int(max(tu.max(), su.max())) + 1
    n_items = int(max(ti.max(), si.max())) + 1
    train = Interactions.from_arrays(tu, ti, n_users=n_users, n_items=n_items)
    test = Interactions.from_arrays(su, si, n_users=n_users, n_items=n_items)
    return train, test


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
