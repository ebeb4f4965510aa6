"""The sparse part of a low-rank + sparse model, read for batch ANN retrieval.

For a block of users whose sparse scores are ``S = X @ P`` (CSR ``X``: the users' rows, e.g.
their interactions or their co-users; CSR ``P``: an item operator), :func:`sparse_candidates`
returns what :class:`gemrec.models.ann.ANNRecommender` needs of ``S`` without forming it: the
columns of each row's largest entries (items already seen left out) and the entries at given
candidate columns. A compiled (numba) kernel, parallel over rows, accumulates each row in a dense
scratch row reset through the list of touched columns (the cost is ``sum over stored x_ri of
nnz(P[i])``, as for :func:`gemrec.graph.kernels.accumulate_spmm`) and keeps the top in a bounded
heap; without numba (or with ``GEMREC_DISABLE_NUMBA`` set) a scipy product and NumPy selection
return the same sets. The tests check both against each other. The same kernel builds truncated
item-item operators (:func:`gemrec.models._topn.top_n_product` without a transform).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["sparse_candidates"]

_KERNEL: Any = None
_TRIED = False


def sparse_candidates(
    X: sp.csr_matrix,
    P: sp.csr_matrix,
    drop: sp.csr_matrix,
    cand: np.ndarray,
    c: int,
    *,
    prune: int | None = None,
    PT: sp.csr_matrix | None = None,
    compiled: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top of ``S = X @ P`` per row and ``S`` at candidate columns.

    Parameters
    ----------
    X : csr_matrix, shape (n, m)
    P : csr_matrix, shape (m, n_items)
    drop : csr_matrix, shape (n, n_items)
        Columns never returned in ``top`` (stored entries, any value).
    cand : ndarray of int64, shape (n, w)
        Candidate columns (``-1``: none).
    c : int
        Columns per row in ``top``.
    prune : int, optional
        Find ``top`` from the ``prune`` largest entries of each row of ``X`` only (an
        approximation: ``top`` is a candidate list); the values stay exact, computed per column
        from ``PT``. None: from every entry.
    PT : csr_matrix, shape (n_items, m), optional
        ``P.T`` as CSR (needed with ``prune``; computed once by the caller).
    compiled : bool
        Use the numba kernel when available (``False`` forces the scipy path).

    Returns
    -------
    top : ndarray of int64, shape (n, c)
        Columns of the ``c`` largest stored entries of each row of ``S`` (of the pruned product
        with ``prune``) outside ``drop``, in no particular order (ties at the cut go to the lower
        column), -1 padded.
    top_values : ndarray of float32, shape (n, c)
        Their entries of ``S`` (0 for padding).
    values : ndarray of float32, shape (n, w)
        ``S[r, cand[r, j]]`` (0 where ``cand`` is -1 or the entry is not stored).
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    P = sp.csr_matrix(P, dtype=np.float32)
    drop = sp.csr_matrix(drop)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    n, n_items = X.shape[0], P.shape[1]
    kernel = _load_kernel() if compiled else None
    if prune is not None and PT is None:
        PT = P.T.tocsr()
    if kernel is None:
        S = sp.csr_matrix(X @ P, dtype=np.float32)
        S.sort_indices()
        values, _ = _lookup(S, np.maximum(cand, 0))
        values[cand < 0] = 0.0
        found = S if prune is None else sp.csr_matrix(_prune_rows(X, prune) @ P)
        top = _row_top(_without(found, drop), c)
        top_values, _ = _lookup(S, np.maximum(top, 0))
        top_values[top < 0] = 0.0
        return top, top_values, values
    top = np.full((n, c), -1, np.int64)
    top_values = np.zeros((n, c), np.float32)
    values = np.zeros(cand.shape, np.float32)
    if n == 0:
        return top, top_values, values
    chunks = max(1, min(n, _threads()))
    full, pruned = kernel
    if prune is None:
        full(
            X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data,
            P.indptr.astype(np.int64), P.indices.astype(np.int64), P.data,
            drop.indptr.astype(np.int64), drop.indices.astype(np.int64),
            cand, int(c), int(n_items), chunks, top, top_values, values,
        )  # fmt: skip
        return top, top_values, values
    PT = sp.csr_matrix(PT, dtype=np.float32)
    pruned(
        X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data,
        P.indptr.astype(np.int64), P.indices.astype(np.int64), P.data,
        PT.indptr.astype(np.int64), PT.indices.astype(np.int64), PT.data,
        drop.indptr.astype(np.int64), drop.indices.astype(np.int64),
        cand, int(c), int(prune), int(X.shape[1]), int(n_items), chunks, top, top_values, values,
    )  # fmt: skip
    return top, top_values, values


def _prune_rows(X: sp.csr_matrix, h: int) -> sp.csr_matrix:
    """``X`` with only the ``h`` largest entries of each row (ties: lower column)."""
    X = sp.csr_matrix(X)
    X.sort_indices()
    keep = _row_top(X, h)
    values, _ = _lookup(X, np.maximum(keep, 0))
    rows = np.repeat(np.arange(X.shape[0]), h).reshape(X.shape[0], h)
    ok = keep >= 0
    return sp.csr_matrix((values[ok], (rows[ok], keep[ok])), shape=X.shape)


def _threads() -> int:
    import numba

    return int(numba.get_num_threads())


def _load_kernel() -> Any:
    global _KERNEL, _TRIED
    if _TRIED:
        return _KERNEL
    _TRIED = True
    if os.environ.get("GEMREC_DISABLE_NUMBA"):
        return None
    try:
        from numba import njit, prange
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None

    @njit(cache=True, nogil=True)
    def _worse(v: float, j: int, w: float, k: int) -> bool:
        """(v, j) ranks below (w, k): lower value, or equal value and higher column."""
        return v < w or (v == w and j > k)

    @njit(cache=True, nogil=True)
    def _sift_down(hv, hj, size):  # type: ignore[no-untyped-def]
        i = 0
        while True:
            a, b, m = 2 * i + 1, 2 * i + 2, i
            if a < size and _worse(hv[a], hj[a], hv[m], hj[m]):
                m = a
            if b < size and _worse(hv[b], hj[b], hv[m], hj[m]):
                m = b
            if m == i:
                return
            hv[i], hv[m] = hv[m], hv[i]
            hj[i], hj[m] = hj[m], hj[i]
            i = m

    @njit(parallel=True, cache=True, nogil=True)
    def _kernel(  # type: ignore[no-untyped-def]
        x_indptr, x_indices, x_data, p_indptr, p_indices, p_data, d_indptr, d_indices,
        cand, c, n_items, chunks, top, top_values, values,
    ):  # fmt: skip
        n = cand.shape[0]
        for ch in prange(chunks):
            lo, hi = ch * n // chunks, (ch + 1) * n // chunks
            acc = np.zeros(n_items, np.float32)
            mark = np.zeros(n_items, np.uint8)  # 0 untouched, 1 touched, 2 touched and dropped
            touched = np.empty(n_items, np.int64)
            hv = np.empty(max(c, 1), np.float32)
            hj = np.empty(max(c, 1), np.int64)
            for r in range(lo, hi):
                nt = 0
                for jj in range(x_indptr[r], x_indptr[r + 1]):
                    i, w = x_indices[jj], x_data[jj]
                    for kk in range(p_indptr[i], p_indptr[i + 1]):
                        j = p_indices[kk]
                        if mark[j] == 0:
                            mark[j] = 1
                            touched[nt] = j
                            nt += 1
                        acc[j] += w * p_data[kk]
                for t in range(cand.shape[1]):
                    j = cand[r, t]
                    if j >= 0 and mark[j] != 0:
                        values[r, t] = acc[j]
                for dd in range(d_indptr[r], d_indptr[r + 1]):
                    j = d_indices[dd]
                    if mark[j] == 1:
                        mark[j] = 2
                # a min-heap of the best c: its root is the worst kept entry
                size = 0
                for t in range(nt):
                    j = touched[t]
                    if mark[j] != 1:
                        continue
                    v = acc[j]
                    if size < c:
                        # sift up
                        i = size
                        hv[i], hj[i] = v, j
                        size += 1
                        while i > 0:
                            parent = (i - 1) // 2
                            if _worse(hv[i], hj[i], hv[parent], hj[parent]):
                                hv[i], hv[parent] = hv[parent], hv[i]
                                hj[i], hj[parent] = hj[parent], hj[i]
                                i = parent
                            else:
                                break
                    elif c > 0 and _worse(hv[0], hj[0], v, j):
                        hv[0], hj[0] = v, j
                        _sift_down(hv, hj, size)
                for t in range(size):
                    top[r, t] = hj[t]
                    top_values[r, t] = hv[t]
                for t in range(nt):
                    j = touched[t]
                    acc[j] = 0.0
                    mark[j] = 0

    @njit(cache=True, nogil=True)
    def _heap_push(hv, hj, size, c, v, j):  # type: ignore[no-untyped-def]
        """Offer (v, j) to a min-heap of the best ``c`` (root: the worst kept); returns size."""
        if size < c:
            i = size
            hv[i], hj[i] = v, j
            size += 1
            while i > 0:
                parent = (i - 1) // 2
                if _worse(hv[i], hj[i], hv[parent], hj[parent]):
                    hv[i], hv[parent] = hv[parent], hv[i]
                    hj[i], hj[parent] = hj[parent], hj[i]
                    i = parent
                else:
                    break
        elif c > 0 and _worse(hv[0], hj[0], v, j):
            hv[0], hj[0] = v, j
            _sift_down(hv, hj, size)
        return size

    @njit(cache=True, nogil=True)
    def _column_value(xs, pt_indptr, pt_indices, pt_data, j):  # type: ignore[no-untyped-def]
        v = np.float32(0.0)
        for kk in range(pt_indptr[j], pt_indptr[j + 1]):
            v += xs[pt_indices[kk]] * pt_data[kk]
        return v

    @njit(parallel=True, cache=True, nogil=True)
    def _pruned(  # type: ignore[no-untyped-def]
        x_indptr, x_indices, x_data, p_indptr, p_indices, p_data,
        pt_indptr, pt_indices, pt_data, d_indptr, d_indices,
        cand, c, h, m, n_items, chunks, top, top_values, values,
    ):  # fmt: skip
        n = cand.shape[0]
        for ch in prange(chunks):
            lo, hi = ch * n // chunks, (ch + 1) * n // chunks
            xs = np.zeros(m, np.float32)
            acc = np.zeros(n_items, np.float32)
            mark = np.zeros(n_items, np.uint8)
            touched = np.empty(n_items, np.int64)
            hv = np.empty(max(c, 1), np.float32)
            hj = np.empty(max(c, 1), np.int64)
            xv = np.empty(max(h, 1), np.float32)
            xj = np.empty(max(h, 1), np.int64)
            for r in range(lo, hi):
                # the row of X, scattered for exact column values; its h largest entries
                size_x = 0
                for jj in range(x_indptr[r], x_indptr[r + 1]):
                    xs[x_indices[jj]] = x_data[jj]
                    size_x = _heap_push(xv, xj, size_x, h, x_data[jj], x_indices[jj])
                nt = 0
                for t in range(size_x):
                    i, w = xj[t], xv[t]
                    for kk in range(p_indptr[i], p_indptr[i + 1]):
                        j = p_indices[kk]
                        if mark[j] == 0:
                            mark[j] = 1
                            touched[nt] = j
                            nt += 1
                        acc[j] += w * p_data[kk]
                for dd in range(d_indptr[r], d_indptr[r + 1]):
                    j = d_indices[dd]
                    if mark[j] == 1:
                        mark[j] = 2
                size = 0
                for t in range(nt):
                    j = touched[t]
                    if mark[j] == 1:
                        size = _heap_push(hv, hj, size, c, acc[j], j)
                for t in range(size):
                    top[r, t] = hj[t]
                    top_values[r, t] = _column_value(xs, pt_indptr, pt_indices, pt_data, hj[t])
                for t in range(cand.shape[1]):
                    j = cand[r, t]
                    if j >= 0:
                        values[r, t] = _column_value(xs, pt_indptr, pt_indices, pt_data, j)
                for t in range(nt):
                    j = touched[t]
                    acc[j] = 0.0
                    mark[j] = 0
                for jj in range(x_indptr[r], x_indptr[r + 1]):
                    xs[x_indices[jj]] = 0.0

    _KERNEL = (_kernel, _pruned)
    return _KERNEL


def _keys(m: sp.csr_matrix) -> np.ndarray:
    """``row * n_cols + col`` of each stored entry, ascending (indices sorted)."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys: np.ndarray = rows * int(m.shape[1]) + m.indices.astype(np.int64)
    return keys


def _lookup(m: sp.csr_matrix, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``m[r, cols[r, j]]`` for a block of columns: (values, stored), shape of ``cols``."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    keys = _keys(m)
    want = np.arange(cols.shape[0], dtype=np.int64)[:, None] * int(m.shape[1]) + cols
    if len(keys) == 0:
        return np.zeros(cols.shape, np.float32), np.zeros(cols.shape, bool)
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    found = keys[pos] == want
    return np.where(found, m.data[pos], 0).astype(np.float32), found


def _without(m: sp.csr_matrix, drop: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` without the entries stored in ``drop`` (same shape)."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    drop = sp.csr_matrix(drop)
    drop.sort_indices()
    keys = _keys(m)
    if drop.nnz == 0 or len(keys) == 0:
        return m
    keep = ~np.isin(keys, _keys(drop), assume_unique=True)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape)


def _row_top(m: sp.csr_matrix, c: int) -> np.ndarray:
    """Columns of the ``c`` largest stored entries of each row (ties: lower column), -1 padded."""
    out = np.full((m.shape[0], c), -1, np.int64)
    if m.nnz == 0:
        return out
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(m.nnz) - m.indptr[rows[order]]
    keep = rank < c
    out[rows[order][keep], rank[keep]] = m.indices[order][keep]
    return out
