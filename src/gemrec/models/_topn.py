"""Blockwise sparse products that keep only the top-n entries of each row.

Neighbourhood models (ItemKNN, UserKNN, RP3beta) need a similarity ``S = f(A @ B)`` whose full form
would be dense (Gowalla: 41k x 41k = 6.7 GB in float32). Rows are computed in blocks: a sparse
product, a dense copy of the block (``block * n_cols`` floats), an element-wise transform, the
diagonal removed, and :func:`gemrec.ranking.topk` per row; only ``n`` entries per row are kept (ties
at the n-th value go to the lower column). Without a transform (graphfilter's truncated item-item
operator) no dense block is formed: each row is accumulated over the columns it reaches only
(:func:`gemrec.models._ann_kernels.sparse_candidates`), so the cost is that of the sparse product
(``sum over rows of A, over their entries a_ik, of nnz(B[k])``) whatever the number of columns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from gemrec.errors import ParameterError
from gemrec.models._ann_kernels import sparse_candidates
from gemrec.ranking import topk

__all__ = ["fold_in_rows", "top_n_product"]

#: dense floats materialised per block (~128 MB in float32)
BLOCK_FLOATS = 32_000_000
#: kept entries per block of the sparse path (no transform)
SPARSE_BLOCK_ENTRIES = 16_000_000


def top_n_product(
    left: sp.csr_matrix,
    right: sp.csr_matrix,
    n: int,
    *,
    transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    drop_diagonal: bool = True,
) -> sp.csr_matrix:
    """Row-wise top-n of ``transform(left @ right)``, as a sparse matrix.

    Parameters
    ----------
    left : csr_matrix, shape (n_rows, d)
    right : csr_matrix, shape (d, n_cols)
    n : int
        Entries kept per row (the largest, ties to the lower column; zeros are never stored).
    transform : callable, optional
        ``transform(block, rows) -> block`` applied to each dense block of shape
        ``(len(rows), n_cols)`` (float32), in place or not; ``rows`` are the global row indices.
        Without one, rows are accumulated sparsely and the largest *stored* entries are kept (the
        same set for products without negative entries), at the cost of the sparse product alone.
    drop_diagonal : bool
        Set entry ``(r, r)`` to zero before selection (requires a square result).

    Returns
    -------
    csr_matrix of float32, shape (n_rows, n_cols)
        At most ``n`` non-zeros per row, sorted indices.
    """
    left = sp.csr_matrix(left, dtype=np.float32)
    right = sp.csr_matrix(right, dtype=np.float32)
    n_rows, n_cols = left.shape[0], right.shape[1]
    keep = int(min(n, n_cols))
    if drop_diagonal and n_rows != n_cols:
        raise ParameterError.invalid("drop_diagonal", "a square product", (n_rows, n_cols))
    if transform is None:
        # (ids int64 + values float32) per kept entry: about 200 MB per block at n = 256
        block = max(1, min(n_rows, SPARSE_BLOCK_ENTRIES // max(keep, 1)))
    else:
        block = max(1, min(n_rows, BLOCK_FLOATS // max(n_cols, 1)))
    indptr = [np.zeros(1, np.int64)]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    nnz = 0
    for start in range(0, n_rows, block):
        rows = np.arange(start, min(start + block, n_rows))
        if keep == 0:
            counts = np.zeros(len(rows), np.int64)
        else:
            if transform is None:
                ids, vals = _block_top_sparse(left[rows], right, rows, keep, drop_diagonal)
            else:
                dense = np.asarray(transform((left[rows] @ right).toarray(), rows), np.float32)
                if drop_diagonal:
                    dense[np.arange(len(rows)), rows] = 0.0
                ids, vals = topk(dense, keep)
            kept = (ids >= 0) & (vals != 0)
            counts = kept.sum(axis=1)
            # sort each row's kept columns ascending so the CSR is canonical
            ids_sel = np.where(kept, ids.astype(np.int64), np.iinfo(np.int64).max)
            order = np.argsort(ids_sel, axis=1, kind="stable")
            ids_sorted = np.take_along_axis(ids_sel, order, axis=1)
            vals_sorted = np.take_along_axis(vals, order, axis=1)
            mask = ids_sorted != np.iinfo(np.int64).max
            indices.append(ids_sorted[mask].astype(np.int32))
            data.append(vals_sorted[mask].astype(np.float32))
        indptr.append(nnz + np.cumsum(counts))
        nnz += int(counts.sum())
    out = sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int32),
            np.concatenate(indptr),
        ),
        shape=(n_rows, n_cols),
    )
    out.has_sorted_indices = True
    return out


def _block_top_sparse(
    left: sp.csr_matrix, right: sp.csr_matrix, rows: np.ndarray, keep: int, drop_diagonal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The ``keep`` largest stored entries of each row of ``left @ right`` (global ``rows``)."""
    n, n_cols = len(rows), right.shape[1]
    if drop_diagonal:
        drop = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), rows)), shape=(n, n_cols))
    else:
        drop = sp.csr_matrix((n, n_cols), dtype=np.float32)
    ids, vals, _ = sparse_candidates(left, right, drop, np.zeros((n, 0), np.int64), keep)
    return ids, vals


def fold_in_rows(user_items: sp.csr_matrix, n_items: int, *, binary: bool = False) -> sp.csr_matrix:
    """A float32 copy of ``user_items`` checked to have ``n_items`` columns (ones if ``binary``)."""
    x = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    if x.shape[1] != n_items:
        raise ParameterError.invalid("user_items", f"a matrix with {n_items} columns", x.shape)
    if binary:
        x.data[:] = 1.0
    return x
