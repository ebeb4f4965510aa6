"""Ranking metrics, exactly the LightGCN/NGCF protocol.

For a user with test items T and a top-K list r_1..r_K (training items already excluded):

* ``hit_j = 1`` if r_j is in T
* Recall@K    = sum_j hit_j / |T|
* Precision@K = sum_j hit_j / K
* NDCG@K      = sum_j hit_j / log2(j + 1)  /  sum_{j <= min(K, |T|)} 1 / log2(j + 1)
* HitRate@K   = 1 if any hit_j
* MRR@K       = 1 / (first j with hit_j), 0 if none
* MAP@K       = sum_j hit_j * Precision@j / min(K, |T|)

Each is averaged over all users with at least one test item.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gemrec.errors import ParameterError

__all__ = ["METRICS", "hits", "mean_metrics", "random_recall", "ranking_metrics"]

METRICS = ("recall", "precision", "ndcg", "hitrate", "mrr", "map")


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user metric values at cut-off ``k``.

    Parameters
    ----------
    hits : ndarray of bool, shape (n_users, >= k)
        ``hits[u, j]`` is True when the j-th recommended item of user u is relevant.
    n_relevant : ndarray of int, shape (n_users,)
        |T| per user; must be >= 1.
    k : int

    Returns
    -------
    dict of metric name -> ndarray of float64, shape (n_users,)
    """
    h = np.asarray(hits[:, :k], dtype=np.float64)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    pos = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(pos + 1.0)
    n_hits = h.sum(axis=1)
    dcg = h @ discounts
    ideal_len = np.minimum(n_rel, k).astype(np.int64)
    idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_len]
    first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, 0)
    mrr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    prec_at_j = np.cumsum(h, axis=1) / pos
    ap = (h * prec_at_j).sum(axis=1) / np.maximum(ideal_len, 1)
    return {
        "recall": n_hits / n_rel,
        "precision": n_hits / k,
        "ndcg": np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0),
        "hitrate": (n_hits > 0).astype(np.float64),
        "mrr": mrr,
        "map": ap,
    }


def hits(truth: sp.csr_matrix | sp.csr_array, ids: np.ndarray) -> np.ndarray:
    """Which recommended ids are relevant: is ``ids[r, j]`` stored in row ``r`` of ``truth``.

    Parameters
    ----------
    truth : csr_matrix, shape (n_rows, n_items)
        Relevant items per row (any stored entry counts).
    ids : ndarray of int, shape (n_rows, k)
        Top-k item ids per row; ``-1`` (padding) is never a hit.

    Returns
    -------
    ndarray of bool, shape (n_rows, k)

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> truth = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0]]))
    >>> hits(truth, np.array([[2, 0], [0, -1]])).tolist()
    [[True, False], [True, False]]
    """
    t = sp.csr_matrix(truth)
    t.sort_indices()
    ids = np.asarray(ids, dtype=np.int64)
    n_cols = np.int64(t.shape[1])
    rows = np.repeat(np.arange(t.shape[0], dtype=np.int64), np.diff(t.indptr))
    keys = rows * n_cols + t.indices  # ascending: rows ascend, indices sorted within a row
    query = np.arange(ids.shape[0], dtype=np.int64)[:, None] * n_cols + ids
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = (keys[pos] == query) if len(keys) else np.zeros(ids.shape, dtype=bool)
    return np.asarray(found & (ids >= 0))


def mean_metrics(ids: np.ndarray, truth: sp.csr_matrix | sp.csr_array, k: int) -> dict[str, float]:
    """Every metric at ``k`` of given top lists, averaged over the rows of ``truth``.

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, >= k)
        Top lists (``-1`` padding allowed).
    truth : csr_matrix, shape (n_rows, n_items)
        Relevant items per row; a row without any scores 0 and still counts in the mean.
    k : int

    Returns
    -------
    dict of metric name -> float
    """
    n_rel = np.diff(sp.csr_matrix(truth).indptr)
    per_row = ranking_metrics(hits(truth, ids[:, :k]), np.maximum(n_rel, 1), k)
    return {name: float(v.mean()) if len(v) else 0.0 for name, v in per_row.items()}


def random_recall(n_candidates: int, k: int) -> float:
    """Expected Recall@k of a uniformly random ranking of ``n_candidates`` items.

    Each relevant item lands in the top k with probability ``min(k, n) / n``, whatever the
    number of relevant items, so this is also the mean over users.
    """
    if n_candidates < 1 or k < 1:
        raise ParameterError.invalid("n_candidates, k", "positive integers", (n_candidates, k))
    return min(k, n_candidates) / n_candidates
