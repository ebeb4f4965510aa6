"""The learned blend: a LightGBM ranker over the union of the channels' candidates.

Each (user, item) candidate gets a feature row (:func:`candidate_features`), a ranker is trained
on the tuning users' held-out items (:func:`train_ranker`) and scores the candidates at
recommendation time (:func:`rank`). LightGBM is the optional ``gemrec[ltr]`` extra, imported only
when a ranker is trained or loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec._optional import require
from gemrec.analysis.interests import category_affinities
from gemrec.errors import GemrecError
from gemrec.fusion.features import SideFeatures
from gemrec.fusion.lists import normalise_scores, pair_keys
from gemrec.ranking import topk_pairs

__all__ = ["candidate_features", "load_ranker", "rank", "ranker_params", "train_ranker"]

FEATURE = "fusion method 'ltr'"
#: candidates from which :func:`rank` predicts with LightGBM's default threads (fewer: one thread)
PARALLEL_PREDICT_ROWS = 20_000


def ranker_params(*, seed: int, eval_at: int, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """LightGBM parameters of the ranker, plus ``num_boost_round`` and ``early_stopping_rounds``.

    Parameters
    ----------
    seed : int
    eval_at : int
        The NDCG cutoff that early stopping watches.
    overrides : dict, optional
        Replace any of the defaults.
    """
    params = {
        # the listwise cross-entropy objective (XE-NDCG) trains stably where lambdarank
        # stopped after a handful of trees and lost to its best channel (Gowalla holdout)
        "objective": "rank_xendcg",
        "metric": "ndcg",
        "eval_at": [eval_at],
        "learning_rate": 0.02,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.9,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "verbosity": -1,
        "num_boost_round": 600,
        "early_stopping_rounds": 100,
    }
    params.update(overrides or {})
    return params


def candidate_features(
    users: np.ndarray,
    lists: list[tuple[np.ndarray, np.ndarray]],
    side: SideFeatures,
    user_items: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of the channels' candidates and one feature row per candidate.

    Parameters
    ----------
    users : ndarray of int, shape (n,)
        The users the lists belong to (rows of ``side``'s per-user statistics).
    lists : list of (ids, scores)
        Per channel, the candidate block of the ``n`` users.
    side : SideFeatures
    user_items : csr_matrix of shape (n, n_items), optional
        Users given by their interactions (fold-in) instead of by id: activity and category
        affinity come from these rows, and the category recency is left missing.

    Returns
    -------
    rows : ndarray of int64, shape (n_pairs,)
        Row in ``users`` of each candidate; candidates are sorted by (row, item).
    items : ndarray of int64, shape (n_pairs,)
    x : ndarray of float32, shape (n_pairs, 2 * n_channels + 6)

    Notes
    -----
    The columns: per channel the 1-based rank and the min-max normalised score (NaN when the
    channel did not propose the item); the number of channels proposing it;
    ``log(1 + pop_i / mean pop)``; the item's age in days (time since its last interaction);
    ``log(1 + n_u / mean n)`` over active users (user activity); and, given item categories, the
    user's time-decayed share of activity in the item's category and the days since the user's
    last activity there (NaN otherwise). Popularity and activity are relative to their means: the
    channels are refit on more data than the blend was trained on, and absolute counts would
    shift under the learned thresholds.
    """
    n_items = side.n_items
    keys = [pair_keys(ids, n_items) for ids, _ in lists]
    uniq = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    rows, items = uniq // n_items, uniq % n_items
    feats: list[np.ndarray] = []
    n_prop = np.zeros(len(uniq), np.float32)
    for (ids, sc), ck in zip(lists, keys, strict=True):
        valid = ids >= 0
        rank_ = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.float32), ids.shape)[valid]
        ns = normalise_scores(sc, valid, "minmax")[valid]
        pos = np.searchsorted(uniq, ck)
        f_rank = np.full(len(uniq), np.nan, np.float32)
        f_score = np.full(len(uniq), np.nan, np.float32)
        f_rank[pos] = rank_
        f_score[pos] = ns
        n_prop[pos] += 1
        feats += [f_rank, f_score]
    feats.append(n_prop)
    feats.append(np.log1p(side.item_pop[items] / max(float(side.item_pop.mean()), 1e-12)))
    feats.append(side.item_age_days[items])
    if user_items is None:
        act = side.user_activity[users][rows]
    else:
        act = np.diff(sp.csr_matrix(user_items).indptr).astype(np.float32)[rows]
    active = side.user_activity[side.user_activity > 0]
    feats.append(np.log1p(act / (float(active.mean()) if len(active) else 1.0)))
    cat = side.item_categories[items]
    aff = np.full(len(uniq), np.nan, np.float32)
    rec = np.full(len(uniq), np.nan, np.float32)
    if side.cat_affinity is not None and len(uniq):  # sparse indexing with no pairs fails
        ok = cat >= 0
        if user_items is None:
            block = side.cat_affinity[users]
        else:
            ui = sp.csr_matrix(user_items)
            coo = ui.tocoo()
            block = category_affinities(
                coo.row, coo.col, coo.data, side.item_categories, n_users=ui.shape[0]
            )
        aff[ok] = np.asarray(block[rows[ok], cat[ok]]).ravel()
        if side.cat_last is not None and side.user_last is not None and user_items is None:
            last = np.asarray(side.cat_last[users][rows[ok], cat[ok]]).ravel()
            days = (side.user_last[users][rows[ok]] - last) / 86400.0
            rec[ok] = np.where(last > 0, days, np.nan)
    feats += [aff, rec]
    return rows, items, np.column_stack(feats).astype(np.float32)


def train_ranker(
    users: np.ndarray,
    lists: list[tuple[np.ndarray, np.ndarray]],
    truth: sp.csr_matrix,
    side: SideFeatures,
    *,
    params: dict[str, Any],
    seed: int,
) -> Any:
    """Train the ranker on the candidates of ``users``, labelled by the held-out ``truth``.

    Parameters
    ----------
    users : ndarray of int, shape (n,)
    lists : list of (ids, scores)
        Per channel, the candidate block of the ``n`` users.
    truth : csr_matrix of shape (n, n_items)
        Held-out items per user: a candidate among them is a positive.
    side : SideFeatures
        Of the interactions the channels were fit on.
    params : dict
        From :func:`ranker_params`.
    seed : int
        The fusion's seed; ``seed + 1`` draws the fifth of the users with a positive whose
        candidates early stopping watches (apart from the draws that split the tuning users).

    Returns
    -------
    lightgbm.Booster

    Raises
    ------
    GemrecError
        Fewer than two users have a positive among their candidates.
    MissingDependencyError
        lightgbm is not installed.
    """
    lgb = require("lightgbm", FEATURE)
    rows, items, x = candidate_features(users, lists, side)
    t = sp.csr_matrix(truth)
    t.sort_indices()
    n_items = side.n_items
    tkeys = (
        np.repeat(np.arange(t.shape[0], dtype=np.int64), np.diff(t.indptr)) * n_items + t.indices
    )
    label = np.isin(rows * n_items + items, tkeys).astype(np.float32)
    # users without a positive among their candidates teach a ranker nothing
    pos_per_row = np.bincount(rows, weights=label, minlength=len(users))
    keep_users = np.flatnonzero(pos_per_row > 0)
    if len(keep_users) < 2:
        raise GemrecError(
            "fusion: too few validation users with a hit among the candidates to train 'ltr'"
        )
    rng = np.random.default_rng(seed + 1)
    is_eval_user = np.zeros(len(users), bool)
    is_eval_user[rng.choice(keep_users, max(1, len(keep_users) // 5), replace=False)] = True
    has_pos = pos_per_row[rows] > 0
    tr = has_pos & ~is_eval_user[rows]
    ev = has_pos & is_eval_user[rows]

    def dataset(mask: np.ndarray) -> Any:
        groups = np.bincount(rows[mask], minlength=len(users))
        return lgb.Dataset(x[mask], label[mask], group=groups[groups > 0], free_raw_data=False)

    d_tr = dataset(tr)
    d_ev = dataset(ev)
    params = dict(params)
    rounds = int(params.pop("num_boost_round"))
    patience = int(params.pop("early_stopping_rounds"))
    return lgb.train(
        params,
        d_tr,
        num_boost_round=rounds,
        valid_sets=[d_ev],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )


def rank(
    ranker: Any,
    users: np.ndarray,
    lists: list[tuple[np.ndarray, np.ndarray]],
    k: int,
    side: SideFeatures,
    user_items: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of the channels' candidates by the ranker's score.

    Parameters are those of :func:`candidate_features`, plus the trained ``ranker`` and ``k``.

    Returns
    -------
    ids : ndarray of int32, shape (n, k); scores : ndarray of float32, shape (n, k)
        Padded with -1 / -inf; equal scores go to the lower item id.
    """
    rows, items, x = candidate_features(users, lists, side, user_items)
    if len(rows) == 0:
        return np.full((len(users), k), -1, np.int32), np.full((len(users), k), -np.inf, np.float32)
    best_it = getattr(ranker, "best_iteration", 0) or None
    # a request's few hundred candidates predict on the calling thread: starting OpenMP's
    # threads costs more than the prediction (about 2.6x the wall time on 2 busy cores)
    threads = 1 if len(x) < PARALLEL_PREDICT_ROWS else 0
    pred = np.asarray(
        ranker.predict(x, num_iteration=best_it, num_threads=threads), dtype=np.float64
    )
    return topk_pairs(rows, items, pred, len(users), k)


def load_ranker(text: str) -> Any:
    """A ranker from the text LightGBM's ``model_to_string`` wrote."""
    lgb = require("lightgbm", FEATURE)
    return lgb.Booster(model_str=text)
