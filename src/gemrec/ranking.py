"""Top-k selection: the one ranking kernel behind every ranked list gemrec returns.

``recommend``, ``similar_items``, evaluation, fusion, serving and the neighbourhood models' top-n
products all select with :func:`topk` (dense score blocks) or :func:`topk_pairs` (sparse
``(row, column, value)`` entries), so every list follows one rule:

* rows are sorted by descending score;
* **among equal scores the lower column index (internal id) comes first**, at the cut as well as
  inside the list, so results are deterministic and independent of the selection algorithm;
* ``-inf`` and NaN mark entries that must not be returned; a row with fewer than ``k`` other
  entries (or ``k`` above the number of columns) is padded with id ``-1`` and score ``-inf``.

A compiled (numba) kernel scans each row once with a bounded heap; without numba (or with
``GEMREC_DISABLE_NUMBA`` set) a NumPy path (``argpartition``, then a fix-up of ties at the cut and
a sort of the ``k`` winners) returns the same arrays. The tests check both against a full sort.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gemrec.errors import ParameterError

__all__ = ["topk", "topk_pairs"]

_KERNEL: Any = None
_TRIED = False


def topk(scores: Any, k: int, *, compiled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score block, sorted descending, ties to the lower column.

    Parameters
    ----------
    scores : array_like of float, shape (n_rows, n_cols)
        ``-inf`` or NaN marks an entry that must not be returned. float32 and float64 blocks are
        ranked in their own precision (other dtypes as float64).
    k : int
        Positive; may exceed ``n_cols`` (the rest is padding).
    compiled : bool
        Use the numba kernel when available (``False`` forces the NumPy path; tests compare both).

    Returns
    -------
    ids : ndarray of int32, shape (n_rows, k)
        Column indices, padded with -1 where a row has fewer than ``k`` returnable entries.
    values : ndarray of float32, shape (n_rows, k)
        Their scores, padded with -inf.

    Examples
    --------
    >>> ids, values = topk([[0.5, 2.0, 0.5, -np.inf]], 4)
    >>> ids.tolist(), values.tolist()
    ([[1, 0, 2, -1]], [[2.0, 0.5, 0.5, -inf]])
    """
    block = _as_block(scores)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ParameterError.invalid("k", "a positive integer", k)
    k = int(k)
    n_rows, n_cols = block.shape
    kk = min(k, n_cols)
    if kk == 0 or n_rows == 0:
        return np.full((n_rows, k), -1, np.int32), np.full((n_rows, k), -np.inf, np.float32)
    kernel = _load_kernel() if compiled else None
    if kernel is not None:
        ids = np.empty((n_rows, kk), np.int32)
        vals = np.empty((n_rows, kk), block.dtype)
        kernel(block, ids, vals)
    else:
        ids, vals = _topk_numpy(block, kk)
    values = vals.astype(np.float32)
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return ids, values


def topk_pairs(
    rows: Any, cols: Any, values: Any, n_rows: int, k: int, *, compiled: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of sparse entries, with the contract and tie rule of :func:`topk`.

    Parameters
    ----------
    rows, cols : array_like of int, shape (m,)
        Row and column of each entry; ``(row, col)`` pairs must be unique. Absent pairs are never
        returned.
    values : array_like of float, shape (m,)
        Scores (``-inf`` / NaN: not returnable).
    n_rows : int
        Rows of the result (rows without entries are all padding).
    k : int
    compiled : bool
        As for :func:`topk`.

    Returns
    -------
    ids : ndarray of int32, shape (n_rows, k); values : ndarray of float32, shape (n_rows, k)
    """
    r = np.asarray(rows, dtype=np.int64).ravel()
    c = np.asarray(cols, dtype=np.int64).ravel()
    v = np.asarray(values).ravel()
    if v.dtype != np.float32:
        v = v.astype(np.float64)
    if not len(r) == len(c) == len(v):
        raise ParameterError.invalid(
            "rows, cols, values", "arrays of one length", (len(r), len(c), len(v))
        )
    if len(r) == 0:
        return topk(np.zeros((n_rows, 0), np.float32), k, compiled=compiled)
    counts = np.bincount(r, minlength=n_rows)
    if k >= counts.max():  # every entry is kept: a sort of the pairs (the usual re-ranking case)
        return _sorted_pairs(r, c, v, counts, n_rows, k)
    # pack each row's entries by ascending column into a -inf padded block: a lower position is a
    # lower column, so the dense kernel's tie rule carries over
    order = np.lexsort((c, r))
    r, c, v = r[order], c[order], v[order]
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(r)) - starts[r]
    block = np.full((n_rows, int(counts.max())), -np.inf, v.dtype)
    block[r, pos] = v
    col_of = np.full(block.shape, -1, np.int64)
    col_of[r, pos] = c
    ids, vals = topk(block, k, compiled=compiled)
    found = np.take_along_axis(col_of, np.maximum(ids, 0), axis=1)
    return np.where(ids >= 0, found, -1).astype(np.int32), vals


def _sorted_pairs(
    r: np.ndarray, c: np.ndarray, v: np.ndarray, counts: np.ndarray, n_rows: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_pairs` where ``k`` covers every row: sort by (row, descending value, column)."""
    keep = v > -np.inf  # drops -inf and NaN
    if not keep.all():
        r, c, v = r[keep], c[keep], v[keep]
        counts = np.bincount(r, minlength=n_rows)
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    pos = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    ids = np.full((n_rows, k), -1, np.int32)
    vals = np.full((n_rows, k), -np.inf, np.float32)
    ids[r, pos] = c
    vals[r, pos] = v
    return ids, vals


def _as_block(scores: Any) -> np.ndarray:
    block = np.asarray(scores)
    if block.ndim != 2:
        raise ParameterError.invalid("scores", "a 2-d array (n_rows, n_cols)", block.shape)
    if block.dtype not in (np.float32, np.float64):
        block = block.astype(np.float64)
    return np.ascontiguousarray(block)


# ----------------------------------------------------------------------------- NumPy path
def _topk_numpy(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k <= n_cols`` winners per row: ids int32 and values in the block's dtype."""
    n_cols = block.shape[1]
    if k == n_cols:
        cand = np.broadcast_to(np.arange(n_cols), block.shape)
    else:
        neg = -block  # NaN sorts last, i.e. below every score
        cand = np.ascontiguousarray(np.argpartition(neg, k - 1, axis=1)[:, :k])
        # the k-th best score; every entry above it is already among the candidates
        cut = -np.take_along_axis(neg, cand[:, k - 1 : k], axis=1)[:, 0]
        in_cand = (np.take_along_axis(block, cand, axis=1) == cut[:, None]).sum(axis=1)
        in_row = (block == cut[:, None]).sum(axis=1)
        # rows whose tie at the cut continues outside the candidates: keep the lowest columns
        fix = np.flatnonzero((in_row > in_cand) & (cut > -np.inf))
        step = max(1, (1 << 22) // n_cols)  # bounds the temporaries to a few 4M-entry blocks
        for start in range(0, len(fix), step):
            rows = fix[start : start + step]
            sub, c = block[rows], cut[rows, None]
            above = sub > c
            tied = sub == c
            need = k - above.sum(axis=1)
            take = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= need[:, None]))
            cand[rows] = np.nonzero(take)[1].reshape(len(rows), k)
    vals = np.take_along_axis(block, cand, axis=1)
    order = np.lexsort((cand, -vals), axis=1)
    ids = np.take_along_axis(cand, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1)
    absent = ~(vals > -np.inf)  # -inf and NaN
    ids[absent] = -1
    vals[absent] = -np.inf
    return ids, vals


# ----------------------------------------------------------------------------- compiled path
def _load_kernel() -> Any:
    global _KERNEL, _TRIED
    if _TRIED:
        return _KERNEL
    _TRIED = True
    if os.environ.get("GEMREC_DISABLE_NUMBA"):
        return None
    try:
        from gemrec._ranking_numba import topk_rows
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None
    _KERNEL = topk_rows
    return _KERNEL
