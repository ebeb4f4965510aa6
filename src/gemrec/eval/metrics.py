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

from gemrec.errors import ParameterError

__all__ = ["METRICS", "random_recall", "ranking_metrics"]

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


def random_recall(n_candidates: int, k: int) -> float:
    """Expected Recall@k of a uniformly random ranking of ``n_candidates`` items.

    Each relevant item lands in the top k with probability ``min(k, n) / n``, whatever the
    number of relevant items, so this is also the mean over users.
    """
    if n_candidates < 1 or k < 1:
        raise ParameterError.invalid("n_candidates, k", "positive integers", (n_candidates, k))
    return min(k, n_candidates) / n_candidates
