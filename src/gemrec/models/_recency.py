"""Recency weights: each user's interactions weighted by their place in the user's own history."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import DataError

__all__ = ["recency_weighted"]


def recency_weighted(interactions: Interactions, recency: float) -> sp.csr_matrix | None:
    """``interactions.matrix`` with each edge's weight times ``exp(-recency (1 - q))``.

    ``q`` is the edge's place in its user's history ordered by time, ``(rank + 1/2) / n`` for the
    0-based ``rank`` among the user's ``n`` edges (tied times share their mean rank): the latest
    edge weighs about 1, the first ``exp(-recency)``. The weights depend on ranks only, so they
    mean the same for a user with ten interactions a day and one with ten a year, and a source's
    own order (``Interactions.order``) serves where it gives no times. Edges without a time rank
    first.

    Parameters
    ----------
    interactions : Interactions
        Its ``timestamps`` (each edge's last event time), else its ``order``, give the order.
    recency : float
        ``>= 0``; 0 leaves the weights as they are.

    Returns
    -------
    csr_matrix of float32 with ``interactions.matrix``'s structure, or None when ``recency`` is
    0 or the interactions carry neither timestamps nor an order.
    """
    times = interactions.timestamps if interactions.timestamps is not None else interactions.order
    if recency == 0 or times is None:
        return None
    m = sp.csr_matrix(interactions.matrix, dtype=np.float32, copy=True)
    m.sort_indices()
    t = sp.csr_matrix(times, dtype=np.float64, copy=True)
    t.sort_indices()
    if not (np.array_equal(t.indptr, m.indptr) and np.array_equal(t.indices, m.indices)):
        raise DataError("the interactions' times must have the same sparsity as the matrix")
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    stamp = np.nan_to_num(t.data, nan=-np.inf)
    order = np.lexsort((stamp, rows))  # by user, then time
    rows_s, stamp_s = rows[order], stamp[order]
    rank = np.arange(m.nnz, dtype=np.float64) - m.indptr[rows_s]
    # tied times (same user, same time) share the mean of their ranks
    new = np.ones(m.nnz, dtype=bool)
    new[1:] = (rows_s[1:] != rows_s[:-1]) | (stamp_s[1:] != stamp_s[:-1])
    group = np.cumsum(new) - 1
    size = np.bincount(group)
    mean_rank = np.bincount(group, weights=rank) / size
    q = (mean_rank[group] + 0.5) / counts[rows_s]
    weight = np.empty(m.nnz, dtype=np.float64)
    weight[order] = np.exp(-float(recency) * (1.0 - q))
    m.data = (m.data * weight).astype(np.float32)
    return m
