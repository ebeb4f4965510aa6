"""List kernels: per-user score normalisation, candidate pair keys, and :func:`fuse_lists`.

A channel's candidate list for a block of users is a pair ``(ids, scores)`` of shape
``(n_users, N)``: ids padded with -1, rows sorted by descending score (what
:meth:`gemrec.models.base.Recommender.recommend` returns). Everything here works on such blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gemrec.ranking import topk_pairs

__all__ = ["NORMALIZATIONS", "fuse_lists", "normalise_scores", "pair_keys", "support_gate"]

#: per-user score normalisations of the "weighted" method
NORMALIZATIONS = ("minmax", "zscore")


def normalise_scores(scores: np.ndarray, valid: np.ndarray, how: str) -> np.ndarray:
    """Normalise each row of a candidate list's scores over its valid entries.

    Parameters
    ----------
    scores : ndarray of float, shape (n, N)
    valid : ndarray of bool, shape (n, N)
        The entries that hold a candidate (``ids >= 0``).
    how : {"minmax", "zscore"}
        ``(s - min) / (max - min)`` (1 where a row's valid scores are all equal) or
        ``(s - mean) / std`` (0 where they are all equal).

    Returns
    -------
    ndarray of float64, shape (n, N)
        0 at invalid entries.
    """
    s = np.where(valid, scores, np.nan).astype(np.float64)
    with np.errstate(all="ignore"):
        if how == "minmax":
            lo = np.nanmin(s, axis=1, keepdims=True)
            hi = np.nanmax(s, axis=1, keepdims=True)
            span = hi - lo
            out = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)
        else:
            mu = np.nanmean(s, axis=1, keepdims=True)
            sd = np.nanstd(s, axis=1, keepdims=True)
            out = np.where(sd > 0, (s - mu) / np.where(sd > 0, sd, 1.0), 0.0)
    return np.where(valid, out, 0.0)


def pair_keys(ids: np.ndarray, n_cols: int) -> np.ndarray:
    """One int64 key ``row * n_cols + id`` per candidate of a list block, in row-major order.

    Parameters
    ----------
    ids : ndarray of int, shape (n, N)
        Padded with -1; padding gets no key.
    n_cols : int
        Greater than every id, so that keys sort by (row, id) and decode as
        ``(key // n_cols, key % n_cols)``.

    Returns
    -------
    ndarray of int64, shape (number of ids >= 0,)

    Examples
    --------
    >>> pair_keys(np.array([[2, 0], [1, -1]]), 3).tolist()
    [2, 0, 4]
    """
    rows = np.broadcast_to(np.arange(ids.shape[0], dtype=np.int64)[:, None], ids.shape)
    valid = ids >= 0
    out: np.ndarray = rows[valid] * n_cols + ids[valid]
    return out


def support_gate(item_support: np.ndarray, scale: float) -> np.ndarray:
    """A channel's weight per item, decaying with the item's support: ``s / (s + n_i)``.

    Parameters
    ----------
    item_support : ndarray of float, shape (n_items,)
        ``n_i``, the item's training interactions.
    scale : float
        ``s > 0``: the support at which the weight is halved.

    Returns
    -------
    ndarray of float64, shape (n_items,)
        1 for an item without interactions, 1/2 at ``n_i = s``.

    Examples
    --------
    >>> support_gate(np.array([0.0, 4.0, 12.0]), 4.0).tolist()
    [1.0, 0.5, 0.25]
    """
    n = np.asarray(item_support, np.float64)
    out: np.ndarray = scale / (scale + n)
    return out


def fuse_lists(
    lists: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: Sequence[float] | np.ndarray,
    k: int,
    *,
    method: str = "rrf",
    normalization: str = "minmax",
    rrf_k: float = 60.0,
    gates: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse per-channel top-N lists into a top-k list.

    Parameters
    ----------
    lists : sequence of (ids, scores)
        Per channel: ids int (n, N) padded with -1, scores float (n, N), rows sorted descending.
    weights : sequence of float
        One per channel.
    k : int
    method : {"rrf", "weighted"}
    normalization : {"minmax", "zscore"}
        Per-user score normalisation for ``"weighted"``.
    rrf_k : float
        The RRF smoothing constant.
    gates : sequence of (ndarray of shape (n_items,) or None), optional
        One per channel: a factor per item on the channel's weight (:func:`support_gate`), or
        None for a constant weight.

    Returns
    -------
    ids : ndarray of int32, shape (n, k); scores : ndarray of float32, shape (n, k)
        Ranked by :func:`gemrec.ranking.topk_pairs`: equal fused scores go to the lower item id.

    Notes
    -----
    For user u and item i with rank ``r_c(i)`` (1-based) and normalised score ``s̃_c(i)`` in
    channel c (items absent from a channel's list contribute 0):

    .. math::

        \\text{rrf}(u, i) = \\sum_c \\frac{w_c}{k_{rrf} + r_c(i)}, \\qquad
        \\text{weighted}(u, i) = \\sum_c w_c \\tilde s_c(i),

    with ``s̃ = (s - min) / (max - min)`` (min-max) or ``(s - mean) / std`` (z-score) over the
    user's list. A gated channel's weight is ``w_c g_c(i)`` instead of ``w_c``.

    Examples
    --------
    >>> a = (np.array([[3, 1]]), np.array([[9.0, 5.0]]))
    >>> b = (np.array([[1, -1]]), np.array([[0.7, -np.inf]]))
    >>> ids, scores = fuse_lists([a, b], [1.0, 1.0], 2, method="rrf", rrf_k=1.0)
    >>> ids.tolist(), [round(float(s), 4) for s in scores[0]]
    ([[1, 3]], [0.8333, 0.5])
    """
    n = lists[0][0].shape[0] if lists else 0
    keys_parts, vals_parts = [], []
    n_cols = 1 + max((int(ids.max(initial=-1)) for ids, _ in lists), default=0)
    per_channel = [None] * len(lists) if gates is None else list(gates)
    for (ids, scores), w, gate in zip(lists, weights, per_channel, strict=True):
        if w == 0:
            continue
        valid = ids >= 0
        if method == "rrf":
            rank = np.arange(1, ids.shape[1] + 1, dtype=np.float64)
            contrib = np.broadcast_to(w / (rrf_k + rank), ids.shape)
        else:
            contrib = w * normalise_scores(scores, valid, normalization)
        keys_parts.append(pair_keys(ids, n_cols))
        vals_parts.append(contrib[valid] if gate is None else contrib[valid] * gate[ids[valid]])
    if not keys_parts:
        return np.full((n, k), -1, np.int32), np.full((n, k), -np.inf, np.float32)
    keys = np.concatenate(keys_parts)
    uniq, inv = np.unique(keys, return_inverse=True)
    sums = np.bincount(inv, weights=np.concatenate(vals_parts), minlength=len(uniq))
    return topk_pairs(uniq // n_cols, uniq % n_cols, sums, n, k)
