"""Holdouts carved from an :class:`~gemrec.data.interactions.Interactions` object, and their union.

:mod:`gemrec.data.splits` splits raw event arrays when a dataset is imported; the functions here
split an already built ``Interactions`` (a model tuning itself on part of its training data, a
benchmark replaying time windows). Every split returns ``(kept, held)`` sharing the id maps, with
weights, last and first event times carried over edge by edge:

- :func:`user_holdout`: per user, a share of the user's edges (the latest ones when there are
  timestamps, random ones otherwise).
- :func:`time_holdout`: one global cut; the pairs first seen after it are held out, as in a
  temporal test split.
- :func:`split_by_mask`: any edge mask.
- :func:`union`: the inverse, e.g. train + validation.

Edges are addressed in the order of ``interactions.matrix.tocoo()`` (row-major, the CSR order);
:func:`edge_timestamps` gives each edge's time in that order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError

__all__ = ["edge_timestamps", "split_by_mask", "time_holdout", "union", "user_holdout"]


def edge_timestamps(matrix: sp.csr_matrix, timestamps: sp.csr_matrix) -> np.ndarray:
    """The time of each stored edge of ``matrix``, in ``matrix.tocoo()`` order.

    Parameters
    ----------
    matrix : csr_matrix, shape (n_users, n_items)
    timestamps : csr_matrix, shape (n_users, n_items)
        Epoch seconds (``Interactions.timestamps`` or ``first_timestamps``).

    Returns
    -------
    ndarray of float64, shape (matrix.nnz,)
        NaN where ``timestamps`` has no (positive) entry.
    """
    if (
        timestamps.nnz == matrix.nnz
        and np.array_equal(timestamps.indptr, matrix.indptr)
        and np.array_equal(timestamps.indices, matrix.indices)
    ):
        t = timestamps.data.astype(np.float64)  # same structure: CSR order == COO order
    else:
        coo = matrix.tocoo()
        t = np.asarray(timestamps[coo.row, coo.col]).ravel().astype(np.float64)
    out: np.ndarray = np.where(t > 0, t, np.nan)
    return out


def split_by_mask(
    interactions: Interactions, held: np.ndarray, *, kept_last: np.ndarray | None = None
) -> tuple[Interactions, Interactions]:
    """``(kept, held)`` parts of ``interactions`` by an edge mask.

    Parameters
    ----------
    interactions : Interactions
    held : ndarray of bool, shape (nnz,)
        True for the edges of the held part, in ``interactions.matrix.tocoo()`` order.
    kept_last : ndarray of float, shape (nnz,), optional
        Last event times to give the kept part instead of the edges' own (same order).

    Returns
    -------
    kept, held : Interactions
        Same shape and id maps; weights and times of each edge as in ``interactions``.
    """
    held = np.asarray(held, dtype=bool)
    if held.shape != (interactions.nnz,):
        raise ParameterError.invalid(
            "held", f"a boolean mask of shape ({interactions.nnz},)", held.shape
        )
    m = interactions.matrix.tocoo()
    t_all = (
        None
        if interactions.timestamps is None
        else edge_timestamps(interactions.matrix, interactions.timestamps)
    )
    f_all = (
        None
        if interactions.first_timestamps is None or t_all is None
        else edge_timestamps(interactions.matrix, interactions.first_timestamps)
    )
    o_all = (
        None
        if interactions.order is None
        else edge_timestamps(interactions.matrix, interactions.order)
    )

    def times(values: np.ndarray | None, sel: np.ndarray) -> sp.csr_matrix | None:
        if values is None:
            return None
        t = sp.csr_matrix(
            (np.nan_to_num(values[sel], nan=0.0), (m.row[sel], m.col[sel])), shape=m.shape
        )
        t.sort_indices()
        return t

    def part(sel: np.ndarray, last: np.ndarray | None) -> Interactions:
        mm = sp.csr_matrix((m.data[sel], (m.row[sel], m.col[sel])), shape=m.shape)
        mm.sort_indices()
        return interactions.with_matrix(
            mm.astype(np.float32), times(last, sel), times(f_all, sel), times(o_all, sel)
        )

    return part(~held, t_all if kept_last is None else kept_last), part(held, t_all)


def time_holdout(interactions: Interactions, fraction: float) -> tuple[Interactions, Interactions]:
    """Hold out the pairs that are new after one global time cut (the latest ``fraction``).

    Parameters
    ----------
    interactions : Interactions
        Must carry ``timestamps``; ``first_timestamps`` make the split exact (see Notes).
    fraction : float in (0, 1)
        Share of the dated pairs whose first event lies after the cut.

    Returns
    -------
    kept, held : Interactions

    Notes
    -----
    The cut is the ``1 - fraction`` quantile of the pairs' first event times. With first-event
    times a pair is held out when its first event is after the cut, as a temporal test split holds
    out only pairs new to their user; a pair touched before and again after the cut stays in the
    kept part, dated by its first event (its later events are not known before the cut). Without
    them, each pair is dated by its last event. Undated pairs stay in the kept part.
    """
    if interactions.timestamps is None:
        raise ParameterError(
            "parameter 'interactions' has no timestamps: a time holdout needs them "
            "(use user_holdout instead)"
        )
    if not 0.0 < fraction < 1.0:
        raise ParameterError.invalid("fraction", "a number in (0, 1)", fraction)
    last = edge_timestamps(interactions.matrix, interactions.timestamps)
    first = (
        last
        if interactions.first_timestamps is None
        else edge_timestamps(interactions.matrix, interactions.first_timestamps)
    )
    known = np.isfinite(first)
    if not known.any():
        return split_by_mask(interactions, np.zeros(interactions.nnz, bool))
    cut = float(np.quantile(first[known], 1.0 - fraction))
    held = known & (first > cut)
    kept_last = np.where(np.isfinite(last) & (last > cut) & ~held, first, last)
    return split_by_mask(interactions, held, kept_last=kept_last)


def user_holdout(
    interactions: Interactions, fraction: float, *, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Hold out ``fraction`` of each user's items: their latest ones when timestamps exist.

    Parameters
    ----------
    interactions : Interactions
    fraction : float in (0, 1)
        A user with ``n >= 3`` items gives ``max(1, floor(n * fraction))`` of them; users with
        fewer than 3 items keep them all.
    seed : int
        Breaks ties between equal times, and picks the items when there are no timestamps.

    Returns
    -------
    kept, held : Interactions
    """
    if not 0.0 < fraction < 1.0:
        raise ParameterError.invalid("fraction", "a number in (0, 1)", fraction)
    m = interactions.matrix.tocoo()
    rows = m.row
    rng = np.random.default_rng(seed)
    if interactions.timestamps is not None:
        key = edge_timestamps(interactions.matrix, interactions.timestamps)
        key = np.where(np.isnan(key), -np.inf, key) + rng.random(len(rows)) * 1e-6
    else:
        key = rng.random(len(rows))
    order = np.lexsort((key, rows))  # per user, oldest first
    r = rows[order]
    counts = np.bincount(r, minlength=interactions.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(r)) - starts[r]
    n_hold = np.where(counts >= 3, np.maximum(1, np.floor(counts * fraction)), 0).astype(np.int64)
    held = pos >= counts[r] - n_hold[r]
    mask = np.zeros(len(rows), bool)
    mask[order[held]] = True
    return split_by_mask(interactions, mask)


def union(a: Interactions, b: Interactions) -> Interactions:
    """``a`` and ``b`` together (e.g. train + validation).

    Weights of a pair in both are summed; its last event time is the later one and its first event
    time the earlier one, its source order the later one. Times (and orders) are kept only when
    both parts carry them.
    """
    if a.matrix.shape != b.matrix.shape:
        raise ParameterError.invalid("b", f"interactions of shape {a.matrix.shape}", b.matrix.shape)
    m = (a.matrix + b.matrix).tocsr()
    m.sort_indices()
    ts = _merge_times(a.timestamps, b.timestamps, m, np.fmax)
    first = _merge_times(a.first_timestamps, b.first_timestamps, m, np.fmin)
    order = _merge_times(a.order, b.order, m, np.fmax)
    return a.with_matrix(m.astype(np.float32), ts, first if ts is not None else None, order)


def _merge_times(
    a: sp.csr_matrix | None,
    b: sp.csr_matrix | None,
    m: sp.csr_matrix,
    how: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> sp.csr_matrix | None:
    """Times of ``a`` and ``b`` on the pattern of ``m``, combined by ``how`` where both exist."""
    if a is None or b is None:
        return None
    coo = m.tocoo()
    ta = np.full(m.nnz, np.nan)
    tb = np.full(m.nnz, np.nan)
    for t, src in ((ta, a), (tb, b)):
        s = src.tocsr()
        vals = np.asarray(s[coo.row, coo.col]).ravel()
        present = np.asarray(s.astype(bool)[coo.row, coo.col]).ravel()
        t[present] = vals[present]
    out = sp.csr_matrix((how(ta, tb), (coo.row, coo.col)), shape=m.shape)
    out.sort_indices()
    return out
