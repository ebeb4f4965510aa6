"""Choosing a blend on validation data: the method by 2-fold cross-fitting, weights by search.

:func:`tune` takes fitted channels and the held-out interactions of a tuning split and returns
the method, the channel weights (and the ranker, for ``"ltr"``) that scored best on held-out
users, with a report of what was compared. :func:`combine` applies such a blend to candidate
lists. The objective everywhere is Recall@20 + NDCG@20 (:data:`EVAL_K`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec._optional import require
from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError
from gemrec.eval.metrics import mean_metrics
from gemrec.fusion import learned
from gemrec.fusion.features import SideFeatures
from gemrec.fusion.lists import fuse_lists, support_gate
from gemrec.models.base import Recommender
from gemrec.models.popularity import Popularity

__all__ = [
    "BLENDS",
    "EVAL_K",
    "METHODS",
    "SUPPORT_SCALES",
    "WEIGHT_GRID",
    "Tuned",
    "channel_gates",
    "combine",
    "recall_ndcg",
    "search_weights",
    "tune",
]

#: the ways to combine candidate lists
BLENDS = ("weighted", "rrf", "ltr")
#: what ``Fusion(method=...)`` accepts: a blend, or "auto" to choose one on validation data
METHODS = ("auto", *BLENDS)
#: the values each channel weight may take in the search
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
#: the cutoff of the objective, Recall@k + NDCG@k
EVAL_K = 20
#: the item-support scales tried for gated channels (:func:`~gemrec.fusion.lists.support_gate`),
#: next to no gate at all
SUPPORT_SCALES = (1.0, 3.0, 10.0, 30.0)

Lists = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Tuned:
    """What :func:`tune` chose.

    Attributes
    ----------
    weights : ndarray of float64, shape (n_channels,)
    method : {"weighted", "rrf", "ltr"}
    report : dict
        JSON-ready: the channels, the number of tuning users, each channel's and each compared
        method's validation Recall@20 / NDCG@20, the chosen method and its weight search.
    ranker : lightgbm.Booster or None
        The learned blend, trained on all tuning users, when ``method`` is "ltr".
    support_scale : float or None
        The scale of the gated channels' item-support gate; None: no gate.
    """

    weights: np.ndarray
    method: str
    report: dict[str, Any]
    ranker: Any = None
    support_scale: float | None = None


def channel_gates(
    gated: Sequence[bool] | None, item_support: np.ndarray, scale: float | None
) -> list[np.ndarray | None] | None:
    """Per channel, :func:`~gemrec.fusion.lists.support_gate` at ``scale`` where ``gated``, else
    None; None when no channel is gated or ``scale`` is None."""
    if gated is None or scale is None or not any(gated):
        return None
    gate = support_gate(item_support, scale)
    return [gate if on else None for on in gated]


def recall_ndcg(ids: np.ndarray, truth: sp.csr_matrix, k: int = EVAL_K) -> tuple[float, float]:
    """Mean Recall@k and NDCG@k of top lists ``ids`` against the rows of ``truth``."""
    m = mean_metrics(ids, truth, k)
    return m["recall"], m["ndcg"]


def combine(
    users: np.ndarray,
    lists: Lists,
    k: int,
    *,
    method: str,
    weights: np.ndarray,
    normalization: str,
    rrf_k: float,
    side: SideFeatures,
    ranker: Any = None,
    user_items: sp.csr_matrix | None = None,
    gates: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of the channels' candidate lists under one blend.

    Parameters
    ----------
    users : ndarray of int, shape (n,)
    lists : list of (ids, scores)
        Per channel, the candidate block of the ``n`` users.
    k : int
    method : {"weighted", "rrf", "ltr"}
        "weighted" and "rrf" are :func:`~gemrec.fusion.lists.fuse_lists` with ``weights``,
        ``normalization`` and ``rrf_k``; "ltr" ranks with ``ranker``.
    side : SideFeatures
        Of the interactions the channels were fit on (read by "ltr").
    user_items : csr_matrix, optional
        For "ltr": users given by their interactions (see
        :func:`~gemrec.fusion.learned.candidate_features`).
    gates : sequence of (ndarray or None), optional
        Item-support gates of "weighted" and "rrf" (:func:`channel_gates`).

    Returns
    -------
    ids : ndarray of int32, shape (n, k); scores : ndarray of float32, shape (n, k)
    """
    if method == "ltr":
        return learned.rank(ranker, users, lists, k, side, user_items)
    return fuse_lists(
        lists, weights, k, method=method, normalization=normalization, rrf_k=rrf_k, gates=gates
    )


def search_weights(
    lists: Lists,
    truth: sp.csr_matrix,
    method: str,
    *,
    normalization: str,
    rrf_k: float,
    min_gain: float,
    gates: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Coordinate ascent over :data:`WEIGHT_GRID` maximising Recall@20 + NDCG@20.

    Parameters
    ----------
    lists : list of (ids, scores)
        Per channel, the candidate block of the tuning users.
    truth : csr_matrix of shape (n, n_items)
        Their held-out items.
    method : {"weighted", "rrf"}
    normalization, rrf_k
        As in :func:`~gemrec.fusion.lists.fuse_lists`.
    min_gain : float
        A channel at weight 0 enters only if it raises the objective by this relative amount.
    gates : sequence of (ndarray or None), optional
        Item-support gates (:func:`channel_gates`), fixed during the search.

    Returns
    -------
    weights : ndarray of float64, shape (n_channels,)
    trace : list of dict
        The weights and objective after each accepted step, starting from the best channel.

    Notes
    -----
    The search starts from the best single channel (weight 1, the others 0) and, at most twice
    over the channels, tries each grid value for each weight, keeping a change that raises the
    objective; it stops after a pass without a change.
    """
    n = len(lists)

    def objective(w: np.ndarray) -> float:
        if not w.any():
            return -1.0
        ids, _ = fuse_lists(
            lists, w, EVAL_K, method=method, normalization=normalization, rrf_k=rrf_k, gates=gates
        )
        r, nd = recall_ndcg(ids, truth)
        return r + nd

    # start from the best single channel, then let the others in; a channel enters only when
    # it gains at least ``min_gain`` (relative): small validation gains rarely carry to test
    singles = [objective(np.eye(n)[j]) for j in range(n)]
    w = np.eye(n)[int(np.argmax(singles))]
    best = max(singles)
    trace = [{"weights": w.tolist(), "objective": best}]
    for _ in range(2):
        improved = False
        for j in range(n):
            for g in WEIGHT_GRID:
                if g == w[j]:
                    continue
                cand = w.copy()
                cand[j] = g
                val = objective(cand)
                need = best * (1.0 + min_gain) if w[j] == 0 else best + 1e-9
                if val > need:
                    best, w, improved = val, cand, True
                    trace.append({"weights": w.tolist(), "objective": val})
        if not improved:
            break
    return w, trace


def tune(
    channels: Sequence[Recommender],
    names: Sequence[str],
    train: Interactions,
    holdout: Interactions,
    side: SideFeatures,
    *,
    method: str,
    weights: np.ndarray | None,
    normalization: str,
    rrf_k: float,
    n_candidates: int,
    min_gain: float,
    tune_users: int,
    ltr_params: dict[str, Any] | None,
    seed: int,
    gated: Sequence[bool] | None = None,
) -> Tuned:
    """Choose the blend of ``channels`` that best predicts ``holdout`` from ``train``.

    Parameters
    ----------
    channels : sequence of Recommender
        Fitted on ``train``; asked for ``max(n_candidates, 20)`` candidates per tuning user.
    names : sequence of str
        One label per channel, for the report.
    train : Interactions
        What the channels were fit on; tuning users must have a training interaction.
    holdout : Interactions
        The held-out items that are the targets.
    side : SideFeatures
        Of ``train``: the learned blend's features.
    method : {"auto", "weighted", "rrf", "ltr"}
        "auto" compares the three blends.
    weights : ndarray of float64, shape (n_channels,), or None
        Given channel weights; None searches them (:func:`search_weights`).
    normalization, rrf_k, min_gain, tune_users, ltr_params, seed
        The :class:`~gemrec.fusion.fusion.Fusion` parameters of the same names.
    gated : sequence of bool, optional
        The channels whose weight decays with the item's support in ``train``
        (:func:`~gemrec.fusion.lists.support_gate`): "weighted" and "rrf" choose its scale from
        :data:`SUPPORT_SCALES` or no gate, with the weights, on the same users.

    Returns
    -------
    Tuned

    Notes
    -----
    The tuning users (at most ``tune_users``, sampled with ``seed``) are split in two halves. For
    each method, its parameters (channel weights, or the LightGBM ranker) are fit on one half and
    scored on the other, both ways; the method with the best user-weighted Recall@20 + NDCG@20 is
    then refit on all tuning users. With fewer than two tuning users nothing is tuned: "rrf" (or
    the given method unless it is "ltr") with the given weights, or equal weights on the channels
    that are not popularity models.
    """
    rng = np.random.default_rng(seed)
    base = np.ones(len(names)) if weights is None else weights
    has_train = np.diff(train.matrix.indptr) > 0
    users = np.flatnonzero((np.diff(holdout.matrix.indptr) > 0) & has_train)
    if len(users) < 2:
        return _untuned(channels, names, len(users), method, weights)
    if len(users) > tune_users:
        users = np.sort(rng.choice(users, tune_users, replace=False))
    perm = rng.permutation(len(users))
    half = len(users) // 2
    folds = [np.sort(perm[:half]), np.sort(perm[half:])]
    n_cand = max(n_candidates, EVAL_K)
    lists = [c.recommend(users, n_cand, exclude_seen=True) for c in channels]
    truth = holdout.matrix[users]
    params = learned.ranker_params(seed=seed, eval_at=EVAL_K, overrides=ltr_params)

    def sub(part: np.ndarray) -> Lists:
        return [(ids[part], sc[part]) for ids, sc in lists]

    scales: list[float | None] = [None]
    if gated is not None and any(gated):
        scales += list(SUPPORT_SCALES)

    def gates(scale: float | None) -> list[np.ndarray | None] | None:
        return channel_gates(gated, side.item_pop, scale)

    def searched(
        part_lists: Lists, part_truth: sp.csr_matrix, blend: str
    ) -> tuple[np.ndarray, float | None, list[dict[str, Any]]]:
        """The weights (given, or searched) and the gate scale with the best objective."""
        best: tuple[float, np.ndarray, float | None, list[dict[str, Any]]] | None = None
        for scale in scales:
            if weights is not None:
                ids, _ = fuse_lists(
                    part_lists,
                    base,
                    EVAL_K,
                    method=blend,
                    normalization=normalization,
                    rrf_k=rrf_k,
                    gates=gates(scale),
                )
                r, nd = recall_ndcg(ids, part_truth)
                trace: list[dict[str, Any]] = [{"weights": base.tolist(), "objective": r + nd}]
                w = base
            else:
                w, trace = search_weights(
                    part_lists,
                    part_truth,
                    blend,
                    normalization=normalization,
                    rrf_k=rrf_k,
                    min_gain=min_gain,
                    gates=gates(scale),
                )
            obj = float(trace[-1]["objective"])
            if best is None or obj > best[0] + 1e-9:
                best = (obj, w, scale, trace)
        assert best is not None
        return best[1], best[2], best[3]

    report: dict[str, Any] = {
        "channels": list(names),
        "n_users_tune": len(users),
        "selection": "2-fold cross-fit",
    }
    single = {}
    for name, (ids, _) in zip(names, lists, strict=True):
        r, n = recall_ndcg(ids, truth)
        single[name] = {"recall@20": r, "ndcg@20": n}
    report["single_channels"] = single
    methods = list(BLENDS) if method == "auto" else [method]
    scores: dict[str, list[tuple[float, float, int]]] = {}
    for m in methods:
        for f in range(2):
            fit_part, eval_part = folds[f], folds[1 - f]
            le = sub(eval_part)
            if m == "ltr":
                try:
                    ranker = learned.train_ranker(
                        users[fit_part],
                        sub(fit_part),
                        truth[fit_part],
                        side,
                        params=params,
                        seed=seed,
                    )
                except ImportError:  # lightgbm missing: the other methods still work
                    break
                except GemrecError as exc:  # too few hits to learn from
                    if method == "ltr":
                        raise
                    report["ltr_skipped"] = str(exc)
                    scores.pop("ltr", None)
                    break
                ids, _ = learned.rank(ranker, users[eval_part], le, EVAL_K, side)
            else:
                w, scale, _ = searched(sub(fit_part), truth[fit_part], m)
                ids, _ = fuse_lists(
                    le,
                    w,
                    EVAL_K,
                    method=m,
                    normalization=normalization,
                    rrf_k=rrf_k,
                    gates=gates(scale),
                )
            r, n = recall_ndcg(ids, truth[eval_part])
            scores.setdefault(m, []).append((r, n, len(eval_part)))
    summary: dict[str, dict[str, Any]] = {}
    for m, vals in scores.items():
        tot = sum(v[2] for v in vals)
        summary[m] = {
            "recall@20": sum(v[0] * v[2] for v in vals) / tot,
            "ndcg@20": sum(v[1] * v[2] for v in vals) / tot,
        }
    if not summary:  # 'ltr' alone was asked for, and lightgbm is missing
        require("lightgbm", learned.FEATURE)
        raise GemrecError("fusion: no method could be tuned")
    best = max(summary, key=lambda m: summary[m]["recall@20"] + summary[m]["ndcg@20"])
    # final parameters of the chosen method, from all tuning users
    ranker = None
    trace: list[dict[str, Any]] = []
    final_scale: float | None = None
    if best == "ltr":
        ranker = learned.train_ranker(users, lists, truth, side, params=params, seed=seed)
        final_w = base
    else:
        final_w, final_scale, trace = searched(lists, truth, best)
    summary[best]["weights"] = [float(x) for x in final_w]
    if best != "ltr" and weights is None:
        summary[best]["search"] = trace
    if len(scales) > 1 and best != "ltr":
        summary[best]["support_scale"] = final_scale
    report["methods"] = summary
    report["chosen"] = best
    return Tuned(final_w, best, report, ranker, final_scale)


def _untuned(
    channels: Sequence[Recommender],
    names: Sequence[str],
    n_users: int,
    method: str,
    weights: np.ndarray | None,
) -> Tuned:
    """Too little data to tune on: untuned reciprocal rank fusion, recorded in the report."""
    blend = "rrf" if method in ("auto", "ltr") else method
    if weights is None:
        # popularity channels carry no personal signal: untuned, they only serve users without
        # history (as the fallback), unless there is nothing else
        personal = np.array([not isinstance(c, Popularity) for c in channels])
        weights = (personal if personal.any() else np.ones(len(names), bool)).astype(np.float64)
        how = f"equal-weight {blend} fusion of the non-popularity channels"
    else:
        how = f"{blend} fusion"
    report = {
        "channels": list(names),
        "n_users_tune": n_users,
        "chosen": blend,
        "untuned": (
            f"only {n_users} validation user(s) with training history; fell back to untuned "
            + how
            + (" instead of 'ltr'" if method == "ltr" else "")
        ),
    }
    return Tuned(weights, blend, report)
