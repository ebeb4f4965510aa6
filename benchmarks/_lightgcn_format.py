"""Small readers for the benchmark splits in ../shared/data (until the ingest importer lands).

Every function returns ``(train, test)`` as :class:`~gemrec.data.interactions.Interactions` sharing
one shape; ids are the files' own 0-based ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gemrec.data.interactions import Interactions

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

__all__ = ["SHARED", "holdout", "load_split", "random_holdout", "read_lines", "read_pairs"]


def read_lines(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``user item item ...`` lines (LightGCN format) into parallel int64 arrays."""
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for line in path.read_text().splitlines():
        parts = np.array(line.split(), dtype=np.int64)
        if len(parts) < 2:
            continue
        users.append(np.full(len(parts) - 1, parts[0]))
        items.append(parts[1:])
    return np.concatenate(users), np.concatenate(items)


def _pairs(
    path: Path, sep: str | None, one_based: bool, min_rating: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    arr = np.loadtxt(path, delimiter=sep, dtype=np.float64, ndmin=2)
    if arr.shape[1] >= 3 and min_rating > 0:
        arr = arr[arr[:, 2] >= min_rating]
    u, i = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    return (u - 1, i - 1) if one_based else (u, i)


def _build(
    tr: tuple[np.ndarray, np.ndarray], te: tuple[np.ndarray, np.ndarray]
) -> tuple[Interactions, Interactions]:
    n_users = int(max(tr[0].max(), te[0].max())) + 1
    n_items = int(max(tr[1].max(), te[1].max())) + 1
    train = Interactions.from_arrays(*tr, n_users=n_users, n_items=n_items)
    test = Interactions.from_arrays(*te, n_users=n_users, n_items=n_items)
    # implicit feedback: duplicates collapse to one edge
    train.matrix.data[:] = 1.0
    test.matrix.data[:] = 1.0
    return train, test


def load_split(name: str = "gowalla") -> tuple[Interactions, Interactions]:
    """The published train/test split of a shared dataset.

    ``name``: ``gowalla`` (LightGCN split), ``ml1m`` (UltraGCN implicit split), ``lastfm``
    (LightGCN-PyTorch split, 1-based tab-separated pairs) or ``ml100k`` (official ``u1``
    split, every rating counted as an interaction).
    """
    if name == "gowalla":
        root = SHARED / "gowalla"
        return _build(read_lines(root / "train.txt"), read_lines(root / "test.txt"))
    if name == "ml1m":
        root = SHARED / "movielens-1m" / "ultragcn_implicit_split"
        return _build(read_lines(root / "train.txt"), read_lines(root / "test.txt"))
    if name == "lastfm":
        root = SHARED / "lastfm-2k" / "lightgcn_pytorch_split"
        return _build(
            _pairs(root / "data1.txt", None, True), _pairs(root / "test1.txt", None, True)
        )
    if name == "ml100k":
        root = SHARED / "movielens-100k"
        return _build(_pairs(root / "u1.base", None, True), _pairs(root / "u1.test", None, True))
    raise ValueError(f"unknown split {name!r}; expected gowalla, ml1m, lastfm or ml100k")


def random_holdout(
    train: Interactions, fraction: float = 0.2, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Carve a validation split from ``train``: ``fraction`` of each user's items, at random.

    Users with a single item keep it in train. Returns ``(train_without_valid, valid)``.
    """
    rng = np.random.default_rng(seed)
    m = train.matrix.tocoo()
    order = np.lexsort((rng.random(m.nnz), m.row))
    rows, cols = m.row[order], m.col[order]
    counts = np.bincount(rows, minlength=train.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(rows)) - starts[rows]
    n_valid = np.floor(counts * fraction).astype(np.int64)
    n_valid[(counts >= 2) & (n_valid == 0)] = 1
    is_valid = rank < n_valid[rows]
    shape = dict(n_users=train.n_users, n_items=train.n_items)
    tr = Interactions.from_arrays(rows[~is_valid], cols[~is_valid], **shape)
    va = Interactions.from_arrays(rows[is_valid], cols[is_valid], **shape)
    return tr, va


#: the name the lightgcn benchmarks use
read_pairs = read_lines


def holdout(
    train: Interactions, fraction: float = 0.1, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Carve a validation split: each edge of a user with >= 2 items -> valid w.p. ``fraction``.

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
