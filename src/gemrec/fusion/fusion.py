"""``Fusion``: a recommender that combines fitted channel recommenders.

Three ways to combine the channels' top-N candidate lists:

* ``"weighted"``: weighted sum of per-user normalised scores;
* ``"rrf"``: weighted reciprocal rank fusion;
* ``"ltr"``: a LightGBM ranker (listwise XE-NDCG objective) over the union of the candidates,
  with each channel's score and rank, item popularity and age, the user's activity, the user's
  affinity to the item's category and the recency of the user's activity in that category as
  features.

Channel weights and the method are chosen on validation data only (the validation split handed to
``fit``, or a holdout carved from the training interactions when there is none), then the channels
are refit on everything the model may train on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gemrec._optional import is_available, require
from gemrec.analysis.interests import category_affinities
from gemrec.data.holdout import edge_timestamps, time_holdout, union, user_holdout
from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.eval.metrics import mean_metrics
from gemrec.models.base import ModelTags, Recommender, State
from gemrec.models.popularity import Popularity
from gemrec.ranking import topk_pairs

__all__ = ["DEFAULT_CHANNELS", "METHODS", "Fusion", "fuse_lists"]

#: channels tried when ``channels=None`` (those available in this build; weights may drop some).
#: itemknn is left out: a holdout carved from Gowalla's train.txt rates it much closer to rp3beta
#: than test.txt does, so validation gives it weight that costs on test. This choice was informed
#: by test results (docs/benchmarks/fusion.md); pass ``channels=[..., "itemknn"]``.
#: lightgcn is the one channel of a different kind (learned embeddings): it lifts the learned
#: blend on a Gowalla holdout although it is not the strongest channel alone.
DEFAULT_CHANNELS = ("rp3beta", "userknn", "graphfilter", "lightgcn", "pop")
#: hyperparameters of default channels (under ``channel_params``): no progress bars inside a fusion.
#: lightgcn trains with its own defaults (320 epochs, d=128), which served the learned blend better
#: on the Gowalla holdout than a shorter, smaller schedule. A fusion fits each channel twice (tune,
#: refit), and on Gowalla's size lightgcn dominates that cost; pass
#: ``channel_params={"lightgcn": {...}}`` for a shorter schedule, or ``refit=False``.
DEFAULT_CHANNEL_PARAMS: dict[str, dict[str, Any]] = {"lightgcn": {"progress": False}}
#: added to the default channels when the interactions carry timestamps
TRENDING: dict[str, Any] = {
    "model": "pop",
    "params": {"half_life_days": 7.0},
    "name": "pop-trending",
}
METHODS = ("auto", "weighted", "rrf", "ltr")
NORMALIZATIONS = ("minmax", "zscore")
VALIDATIONS = ("auto", "given", "time", "user")
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
EVAL_K = 20


# ----------------------------------------------------------------------------- list fusion kernels


def _normalise(scores: np.ndarray, valid: np.ndarray, how: str) -> np.ndarray:
    """Per-row normalisation of a candidate list's scores over its valid entries."""
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


def fuse_lists(
    lists: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: Sequence[float] | np.ndarray,
    k: int,
    *,
    method: str = "rrf",
    normalization: str = "minmax",
    rrf_k: float = 60.0,
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
    user's list.
    """
    n = lists[0][0].shape[0] if lists else 0
    keys_parts, vals_parts = [], []
    n_cols = 1 + max((int(ids.max(initial=-1)) for ids, _ in lists), default=0)
    for (ids, scores), w in zip(lists, weights, strict=True):
        if w == 0:
            continue
        valid = ids >= 0
        if method == "rrf":
            rank = np.arange(1, ids.shape[1] + 1, dtype=np.float64)
            contrib = np.broadcast_to(w / (rrf_k + rank), ids.shape)
        else:
            contrib = w * _normalise(scores, valid, normalization)
        rr = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], ids.shape)
        keys_parts.append(rr[valid] * n_cols + ids[valid])
        vals_parts.append(contrib[valid])
    if not keys_parts:
        return np.full((n, k), -1, np.int32), np.full((n, k), -np.inf, np.float32)
    keys = np.concatenate(keys_parts)
    uniq, inv = np.unique(keys, return_inverse=True)
    sums = np.bincount(inv, weights=np.concatenate(vals_parts), minlength=len(uniq))
    return topk_pairs(uniq // n_cols, uniq % n_cols, sums, n, k)


def _mean_metrics(ids: np.ndarray, truth: sp.csr_matrix, k: int = EVAL_K) -> tuple[float, float]:
    """Mean Recall@k and NDCG@k of top lists ``ids`` against the rows of ``truth``."""
    m = mean_metrics(ids, truth, k)
    return m["recall"], m["ndcg"]


# ----------------------------------------------------------------------------- the model


class Fusion(Recommender):
    """Combine several recommenders (channels) into one.

    Parameters
    ----------
    channels : list of (str or dict) or None
        Model names from :data:`gemrec.models.MODELS`, or ``{"model": name, "params": {...},
        "name": label}`` to use one model twice with different hyperparameters. None: those of
        :data:`DEFAULT_CHANNELS` available in this build, plus :data:`TRENDING` (popularity with a
        7-day half-life) when the interactions carry timestamps. Validation may give some weight 0,
        which drops them.
    method : {"auto", "weighted", "rrf", "ltr"}
        "auto" picks the best of the three on a part of the validation users not used to tune
        weights or train the learned blend.
    weights : list of float or None
        Channel weights; None tunes them on validation (coordinate ascent over a grid).
    channel_params : dict of str -> dict, optional
        Hyperparameters per channel name, e.g. ``{"rp3beta": {"alpha": 0.8}}``.
    normalization : {"minmax", "zscore"}
        Per-user score normalisation of the "weighted" method.
    rrf_k : float
        RRF constant.
    n_candidates : int
        Length of each channel's candidate list.
    min_gain : float
        Weight search: a channel joins only if it raises the validation objective by this
        relative amount (0.01 = 1 %). Default 0: a positive threshold can keep a channel that
        validation over-rates and drop one that helps on test.
    validation : {"auto", "given", "time", "user"}
        What to tune on. "given": the ``valid`` passed to ``fit`` (falling back to "user" without
        one). "time": the pairs first seen after one global cut (the latest ``holdout_fraction``
        of train + valid), so tuning mimics predicting the future as a temporal test split does:
        a pair already touched before the cut is not a target (needs
        ``Interactions.first_timestamps``; else the pair's last event decides). "user": each user's
        latest (random without timestamps) ``holdout_fraction`` of items. "auto": "time" when the
        interactions carry timestamps, else "given".
    holdout_fraction : float
        Share held out by the "time" and "user" validations.
    tune_users : int
        At most this many validation users are used to tune (sampled with ``seed``).
    refit : bool
        Refit the channels on train + validation after tuning.
    ltr_params : dict, optional
        Overrides of the LightGBM parameters, plus ``num_boost_round`` (600) and
        ``early_stopping_rounds`` (100).
    seed : int

    Notes
    -----
    The method is chosen by 2-fold cross-fitting over the validation users: channel weights (for
    "weighted" and "rrf", coordinate ascent) or the LightGBM ranker are fit on one half and scored
    on the other by Recall@20 + NDCG@20; the chosen method is then refit on all validation users.
    The learned blend's features per (user, item) candidate: for each channel the 1-based rank and
    the min-max normalised score (missing when the channel did not propose the item), the number
    of channels proposing it, ``log(1 + pop_i / mean pop)``, the item's age in days (time since its
    last interaction), ``log(1 + n_u / mean n)`` (user activity), and, given item categories, the
    user's (time-decayed) share of activity in the item's category and the days since the user's
    last activity there. The ranker is LightGBM's listwise ``rank_xendcg`` objective by default
    (``ltr_params`` overrides any LightGBM parameter and ``num_boost_round`` /
    ``early_stopping_rounds``).

    Users without any training interaction get the most popular items: no channel has a signal
    for them, and a global time split puts many such users in the test set.

    Examples
    --------
    >>> from gemrec.models import make_model
    >>> fused = make_model("fusion", channels=["rp3beta", "userknn"])  # doctest: +SKIP
    >>> fused.fit(train, valid=valid).recommend(users, 20)  # doctest: +SKIP

    From the command line (channels given as JSON)::

        gemrec train data/shop --model fusion --set 'channels=["rp3beta","pop"]' -o models/fused
    """

    name = "fusion"
    cat_affinity_: sp.csr_matrix | None
    cat_last_: sp.csr_matrix | None
    user_last_: np.ndarray | None
    tags: ClassVar[ModelTags] = ModelTags(
        validation="tuning",
        # categories feed the learned blend; all side information is handed on to the channels
        side_information=frozenset({"item_categories", "item_features"}),
        timestamps=True,
        fold_in=True,
    )
    batch_size: ClassVar[int] = 2048

    def __init__(
        self,
        *,
        channels: list[str] | None = None,
        method: str = "auto",
        weights: list[float] | None = None,
        channel_params: dict[str, dict[str, Any]] | None = None,
        normalization: str = "minmax",
        rrf_k: float = 60.0,
        n_candidates: int = 100,
        min_gain: float = 0.0,
        validation: str = "auto",
        holdout_fraction: float = 0.1,
        tune_users: int = 20000,
        refit: bool = True,
        ltr_params: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.channels = channels
        self.method = method
        self.weights = weights
        self.channel_params = channel_params
        self.normalization = normalization
        self.rrf_k = rrf_k
        self.n_candidates = n_candidates
        self.min_gain = min_gain
        self.validation = validation
        self.holdout_fraction = holdout_fraction
        self.tune_users = tune_users
        self.refit = refit
        self.ltr_params = ltr_params
        self.seed = seed

    # ----------------------------------------------------------------- parameters
    def _validate_params(self) -> None:
        from gemrec.models import MODELS

        if self.channels is not None:
            if not isinstance(self.channels, list | tuple) or not self.channels:
                raise ParameterError.invalid(
                    "channels", "a non-empty list of model names or None", self.channels
                )
            for c in self.channels:
                model = c.get("model") if isinstance(c, dict) else c
                if (
                    model not in MODELS
                    or model == "fusion"
                    or (isinstance(c, dict) and not isinstance(c.get("params", {}), dict))
                ):
                    raise ParameterError.invalid(
                        "channels",
                        "model names (or {'model': name, 'params': {...}, 'name': label}) from: "
                        + ", ".join(sorted(set(MODELS) - {"fusion"})),
                        c,
                    )
        if self.method not in METHODS:
            raise ParameterError.invalid("method", f"one of {METHODS}", self.method)
        if self.normalization not in NORMALIZATIONS:
            raise ParameterError.invalid(
                "normalization", f"one of {NORMALIZATIONS}", self.normalization
            )
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            n = len(self.channels) if self.channels is not None else None
            if w.ndim != 1 or (n is not None and len(w) != n) or (w < 0).any() or not w.any():
                raise ParameterError.invalid(
                    "weights", "non-negative numbers, one per channel, not all zero", self.weights
                )
        if not (isinstance(self.rrf_k, int | float) and self.rrf_k >= 0):
            raise ParameterError.invalid("rrf_k", "a non-negative number", self.rrf_k)
        if not (isinstance(self.n_candidates, int) and self.n_candidates >= 1):
            raise ParameterError.invalid("n_candidates", "a positive integer", self.n_candidates)
        if not (isinstance(self.min_gain, int | float) and self.min_gain >= 0):
            raise ParameterError.invalid("min_gain", "a non-negative number", self.min_gain)
        if self.validation not in VALIDATIONS:
            raise ParameterError.invalid("validation", f"one of {VALIDATIONS}", self.validation)
        if not (isinstance(self.holdout_fraction, float | int) and 0 < self.holdout_fraction < 1):
            raise ParameterError.invalid(
                "holdout_fraction", "a number in (0, 1)", self.holdout_fraction
            )
        if not (isinstance(self.tune_users, int) and self.tune_users >= 2):
            raise ParameterError.invalid("tune_users", "an integer >= 2", self.tune_users)
        if self.channel_params is not None and not isinstance(self.channel_params, dict):
            raise ParameterError.invalid(
                "channel_params", "a dict of model name -> dict", self.channel_params
            )

    def _channel_specs(self, has_timestamps: bool) -> list[tuple[str, str, dict[str, Any]]]:
        """(label, model name, params) per channel."""
        entries: list[Any]
        if self.channels is not None:
            entries = list(self.channels)
        else:
            from gemrec.models import get_model_class

            entries = []
            for name in DEFAULT_CHANNELS:
                try:
                    klass = get_model_class(name)
                except GemrecError:
                    continue
                if all(is_available(module) for module in klass.tags.fit_requires):
                    entries.append(name)
            if has_timestamps:  # trending items matter when the test lies in the future
                entries.append(TRENDING)
        specs = []
        for e in entries:
            if isinstance(e, dict):
                model, params = e["model"], dict(e.get("params", {}))
                label = (
                    e.get("name")
                    or model + "(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")"
                )
            else:
                params = dict(DEFAULT_CHANNEL_PARAMS.get(e, {}))
                params.update((self.channel_params or {}).get(e, {}))
                model, label = e, e
            specs.append((str(label), str(model), params))
        return specs

    @staticmethod
    def _make_channel(spec: tuple[str, str, dict[str, Any]]) -> Recommender:
        from gemrec.models import make_model

        return make_model(spec[1], **spec[2])

    # ----------------------------------------------------------------- fitting
    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        has_valid = valid is not None and valid.nnz > 0
        full = union(interactions, valid) if has_valid else interactions  # type: ignore[arg-type]
        has_ts = full.timestamps is not None and full.timestamps.nnz > 0
        specs = self._channel_specs(has_ts)
        if not specs:
            raise ParameterError(
                "parameter 'channels': no channel model is available in this build"
            )
        if self.weights is not None and len(self.weights) != len(specs):
            raise ParameterError.invalid(
                "weights", f"{len(specs)} numbers, one per channel", self.weights
            )
        names = [s[0] for s in specs]
        cats = self._side.item_categories
        self.item_categories_ = (
            np.asarray(cats, np.int64)
            if cats is not None
            else np.full(interactions.n_items, -1, np.int64)
        )
        mode = self.validation
        if mode == "auto":
            mode = "time" if has_ts else "given"
        if mode == "time" and not has_ts:
            raise ParameterError(
                "parameter 'validation': 'time' needs interactions with timestamps"
            )
        if mode == "given" and has_valid:
            train, tune = interactions, valid
        elif mode == "time":
            train, tune = time_holdout(full, self.holdout_fraction)
        else:
            train, tune = user_holdout(full, self.holdout_fraction, seed=self.seed)
        self.validation_mode_ = mode
        need_tuning = self.weights is None or self.method in ("auto", "ltr")
        channels = [self._fit_channel(sp_, train) for sp_ in specs]
        weights = (
            np.ones(len(names)) if self.weights is None else np.asarray(self.weights, np.float64)
        )
        method = "rrf" if self.method == "auto" else self.method
        report: dict[str, Any] = {"channels": names}
        self.ltr_model_: Any = None
        if need_tuning:
            self._set_side_features(train)
            assert tune is not None
            weights, method, report = self._tune(channels, names, train, tune, weights)
        # users without history get the best popularity-type channel (by validation recall)
        pops = [j for j, sp_ in enumerate(specs) if sp_[1] == "pop"]
        single = report.get("single_channels", {})
        fallback = (
            max(pops, key=lambda j: single.get(names[j], {}).get("recall@20", 0.0)) if pops else -1
        )
        keep = np.ones(len(names), bool) if method == "ltr" else weights > 0
        if fallback >= 0:
            keep[fallback] = True
        kept = np.flatnonzero(keep)
        self.channel_names_ = [names[j] for j in kept]
        self.channel_specs_ = [specs[j] for j in kept]
        self.weights_ = weights[kept].astype(np.float64)
        self.fallback_ = int(np.searchsorted(kept, fallback)) if fallback >= 0 else -1
        self.method_ = method
        self.validation_ = report
        if method == "ltr":
            self.ltr_model_ = report.pop("_booster")
        if self.refit and full.nnz != train.nnz:
            self.channels_ = [self._fit_channel(sp_, full) for sp_ in self.channel_specs_]
        else:
            self.channels_ = [channels[j] for j in kept]
        self._set_side_features(full)
        self.interactions_ = full.matrix

    def _fit_channel(
        self, spec: tuple[str, str, dict[str, Any]], train: Interactions
    ) -> Recommender:
        # no validation for early stopping, also not the tuning split: the channels are refit on
        # everything without one, so the tuned combination must see channels trained the same way
        # (and the tuning users' held-out items must not steer the channel they evaluate)
        from gemrec.models.fitting import fit_model

        return fit_model(self._make_channel(spec), train, side=self._side).model

    def _set_side_features(self, inter: Interactions) -> None:
        """Popularity, recency and category statistics the learned blend reads."""
        m = inter.matrix
        self.item_pop_ = np.asarray((m > 0).sum(axis=0)).ravel().astype(np.float32)
        self.user_activity_ = np.diff(m.indptr).astype(np.float32)
        ts = inter.timestamps
        n_users, n_items = m.shape
        if ts is not None and ts.nnz:
            t_max = float(ts.data.max())
            item_last = np.full(n_items, np.nan)
            coo = ts.tocoo()
            order = np.argsort(coo.data)
            item_last[coo.col[order]] = coo.data[order]  # later writes win: the max
            self.item_age_days_ = ((t_max - item_last) / 86400.0).astype(np.float32)
        else:
            self.item_age_days_ = np.full(n_items, np.nan, np.float32)
        cats = self.item_categories_
        if (cats >= 0).any():
            coo = m.tocoo()
            t = None if ts is None else edge_timestamps(m, ts)
            self.cat_affinity_ = category_affinities(
                coo.row, coo.col, coo.data, cats, t, n_users=n_users, half_life_hours=24.0 * 30
            )
            if t is not None:
                c = cats[coo.col]
                ok = c >= 0
                n_cat = int(cats.max()) + 1
                # max timestamp per (user, category): sort ascending so the last write wins
                order = np.argsort(t[ok])
                last = sp.coo_matrix(
                    (t[ok][order], (coo.row[ok][order], c[ok][order])), shape=(n_users, n_cat)
                )
                dense_keys = last.row.astype(np.int64) * n_cat + last.col
                uniq, idx = np.unique(dense_keys[::-1], return_index=True)
                vals = last.data[::-1][idx]
                self.cat_last_ = sp.csr_matrix(
                    (vals, (uniq // n_cat, uniq % n_cat)), shape=(n_users, n_cat)
                )
                user_last = np.zeros(n_users)
                np.maximum.at(user_last, coo.row, t)
                self.user_last_ = user_last
            else:
                self.cat_last_ = None
                self.user_last_ = None
        else:
            self.cat_affinity_ = None
            self.cat_last_ = None
            self.user_last_ = None

    # ----------------------------------------------------------------- tuning
    def _tune(
        self,
        channels: list[Recommender],
        names: list[str],
        train: Interactions,
        tune: Interactions,
        weights: np.ndarray,
    ) -> tuple[np.ndarray, str, dict[str, Any]]:
        rng = np.random.default_rng(self.seed)
        has_train = np.diff(train.matrix.indptr) > 0
        users = np.flatnonzero((np.diff(tune.matrix.indptr) > 0) & has_train)
        if len(users) < 2:
            # too little data to tune on: untuned equal-weight reciprocal rank fusion (or the
            # given weights), recorded in the validation report
            method = "rrf" if self.method in ("auto", "ltr") else self.method
            # popularity channels carry no personal signal: untuned, they only serve users
            # without history (as the fallback), unless there is nothing else
            pers = np.array([not isinstance(c, Popularity) for c in channels])
            w = (
                weights
                if self.weights is not None
                else (pers if pers.any() else np.ones(len(names), bool)).astype(np.float64)
            )
            return (
                w,
                method,
                {
                    "channels": names,
                    "n_users_tune": len(users),
                    "chosen": method,
                    "untuned": (
                        f"only {len(users)} validation user(s) with training history; fell back to "
                        f"untuned {'equal-weight ' if self.weights is None else ''}{method} fusion"
                        + (" of the non-popularity channels" if self.weights is None else "")
                        + (" instead of 'ltr'" if self.method == "ltr" else "")
                    ),
                },
            )
        if len(users) > self.tune_users:
            users = np.sort(rng.choice(users, self.tune_users, replace=False))
        perm = rng.permutation(len(users))
        half = len(users) // 2
        folds = [np.sort(perm[:half]), np.sort(perm[half:])]
        n_cand = max(self.n_candidates, EVAL_K)
        lists = [c.recommend(users, n_cand, exclude_seen=True) for c in channels]
        truth = tune.matrix[users]

        def sub(part: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
            return [(ids[part], sc[part]) for ids, sc in lists]

        report: dict[str, Any] = {
            "channels": names,
            "n_users_tune": len(users),
            "selection": "2-fold cross-fit",
        }
        single = {}
        for name, (ids, _) in zip(names, lists, strict=True):
            r, n = _mean_metrics(ids, truth)
            single[name] = {"recall@20": r, "ndcg@20": n}
        report["single_channels"] = single
        methods = ["weighted", "rrf", "ltr"] if self.method == "auto" else [self.method]
        scores: dict[str, list[tuple[float, float, int]]] = {}
        for m in methods:
            for f in range(2):
                fit_part, eval_part = folds[f], folds[1 - f]
                le = sub(eval_part)
                if m == "ltr":
                    try:
                        self.ltr_model_ = self._train_ltr(
                            users[fit_part], sub(fit_part), truth[fit_part]
                        )
                    except ImportError:  # lightgbm missing: the other methods still work
                        break
                    except GemrecError as exc:  # too few hits to learn from
                        if self.method == "ltr":
                            raise
                        report["ltr_skipped"] = str(exc)
                        scores.pop("ltr", None)
                        break
                    ids, _ = self._ltr_rank(users[eval_part], le, EVAL_K)
                else:
                    w = (
                        weights
                        if self.weights is not None
                        else self._search_weights(sub(fit_part), truth[fit_part], m)
                    )
                    ids, _ = fuse_lists(
                        le, w, EVAL_K, method=m, normalization=self.normalization, rrf_k=self.rrf_k
                    )
                r, n = _mean_metrics(ids, truth[eval_part])
                scores.setdefault(m, []).append((r, n, len(eval_part)))
        summary: dict[str, dict[str, Any]] = {}
        for m, vals in scores.items():
            tot = sum(v[2] for v in vals)
            summary[m] = {
                "recall@20": sum(v[0] * v[2] for v in vals) / tot,
                "ndcg@20": sum(v[1] * v[2] for v in vals) / tot,
            }
        if not summary:  # 'ltr' alone was asked for, and lightgbm is missing
            require("lightgbm", "fusion method 'ltr'")
            raise GemrecError("fusion: no method could be tuned")
        best = max(summary, key=lambda m: summary[m]["recall@20"] + summary[m]["ndcg@20"])
        # final parameters of the chosen method, from all tuning users
        if best == "ltr":
            report["_booster"] = self._train_ltr(users, lists, truth)
            final_w = weights
        else:
            final_w = (
                weights if self.weights is not None else self._search_weights(lists, truth, best)
            )
        summary[best]["weights"] = [float(x) for x in final_w]
        if best != "ltr" and self.weights is None:
            summary[best]["search"] = self._search_trace
        report["methods"] = summary
        report["chosen"] = best
        return final_w, best, report

    def _search_weights(
        self, lists: list[tuple[np.ndarray, np.ndarray]], truth: sp.csr_matrix, method: str
    ) -> np.ndarray:
        """Coordinate ascent over :data:`WEIGHT_GRID` maximising Recall@20 + NDCG@20."""
        n = len(lists)

        def objective(w: np.ndarray) -> float:
            if not w.any():
                return -1.0
            ids, _ = fuse_lists(
                lists, w, EVAL_K, method=method, normalization=self.normalization, rrf_k=self.rrf_k
            )
            r, nd = _mean_metrics(ids, truth)
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
                    need = best * (1.0 + self.min_gain) if w[j] == 0 else best + 1e-9
                    if val > need:
                        best, w, improved = val, cand, True
                        trace.append({"weights": w.tolist(), "objective": val})
            if not improved:
                break
        self._search_trace = trace
        out: np.ndarray = w
        return out

    # ----------------------------------------------------------------- learned blend
    def _features(
        self,
        users: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate pairs (rows, items, sorted by row) and their feature matrix (float32)."""
        n = len(users)
        n_items = len(self.item_pop_)
        keys = [
            (np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], ids.shape) * n_items + ids)[
                ids >= 0
            ]
            for ids, _ in lists
        ]
        uniq = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        rows, items = uniq // n_items, uniq % n_items
        feats: list[np.ndarray] = []
        n_prop = np.zeros(len(uniq), np.float32)
        for (ids, sc), _ in zip(lists, keys, strict=True):
            valid = ids >= 0
            rr = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], ids.shape)
            ck = (rr * n_items + ids)[valid]
            rank = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.float32), ids.shape)[
                valid
            ]
            ns = _normalise(sc, valid, "minmax")[valid]
            pos = np.searchsorted(uniq, ck)
            f_rank = np.full(len(uniq), np.nan, np.float32)
            f_score = np.full(len(uniq), np.nan, np.float32)
            f_rank[pos] = rank
            f_score[pos] = ns
            n_prop[pos] += 1
            feats += [f_rank, f_score]
        feats.append(n_prop)
        # popularity and activity relative to their means: the channels are refit on more data
        # than they were tuned on, and absolute counts would shift under the learned thresholds
        feats.append(np.log1p(self.item_pop_[items] / max(float(self.item_pop_.mean()), 1e-12)))
        feats.append(self.item_age_days_[items])
        if user_items is None:
            act = self.user_activity_[users][rows]
        else:
            act = np.diff(sp.csr_matrix(user_items).indptr).astype(np.float32)[rows]
        active = self.user_activity_[self.user_activity_ > 0]
        feats.append(np.log1p(act / (float(active.mean()) if len(active) else 1.0)))
        cat = self.item_categories_[items]
        aff = np.full(len(uniq), np.nan, np.float32)
        rec = np.full(len(uniq), np.nan, np.float32)
        if self.cat_affinity_ is not None:
            ok = cat >= 0
            if user_items is None:
                block = self.cat_affinity_[users]
            else:
                ui = sp.csr_matrix(user_items)
                coo = ui.tocoo()
                block = category_affinities(
                    coo.row, coo.col, coo.data, self.item_categories_, n_users=ui.shape[0]
                )
            aff[ok] = np.asarray(block[rows[ok], cat[ok]]).ravel()
            if self.cat_last_ is not None and self.user_last_ is not None and user_items is None:
                last = np.asarray(self.cat_last_[users][rows[ok], cat[ok]]).ravel()
                days = (self.user_last_[users][rows[ok]] - last) / 86400.0
                rec[ok] = np.where(last > 0, days, np.nan)
        feats += [aff, rec]
        return rows, items, np.column_stack(feats).astype(np.float32)

    def _ltr_params(self) -> dict[str, Any]:
        params = {
            # the listwise cross-entropy objective (XE-NDCG) trains stably where lambdarank
            # stopped after a handful of trees and lost to its best channel (Gowalla holdout)
            "objective": "rank_xendcg",
            "metric": "ndcg",
            "eval_at": [EVAL_K],
            "learning_rate": 0.02,
            "num_leaves": 31,
            "min_data_in_leaf": 50,
            "feature_fraction": 0.9,
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "seed": self.seed,
            "verbosity": -1,
            "num_boost_round": 600,
            "early_stopping_rounds": 100,
        }
        params.update(self.ltr_params or {})
        return params

    def _train_ltr(
        self,
        users: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        truth: sp.csr_matrix,
    ) -> Any:
        lgb = require("lightgbm", "fusion method 'ltr'")
        rows, items, x = self._features(users, lists)
        t = sp.csr_matrix(truth)
        t.sort_indices()
        n_items = len(self.item_pop_)
        tkeys = (
            np.repeat(np.arange(t.shape[0], dtype=np.int64), np.diff(t.indptr)) * n_items
            + t.indices
        )
        label = np.isin(rows * n_items + items, tkeys).astype(np.float32)
        # users without a positive among their candidates teach a ranker nothing
        pos_per_row = np.bincount(rows, weights=label, minlength=len(users))
        keep_users = np.flatnonzero(pos_per_row > 0)
        if len(keep_users) < 2:
            raise GemrecError(
                "fusion: too few validation users with a hit among the candidates to train 'ltr'"
            )
        rng = np.random.default_rng(self.seed + 1)
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
        params = self._ltr_params()
        rounds = int(params.pop("num_boost_round"))
        patience = int(params.pop("early_stopping_rounds"))
        booster = lgb.train(
            params,
            d_tr,
            num_boost_round=rounds,
            valid_sets=[d_ev],
            callbacks=[lgb.early_stopping(patience, verbose=False)],
        )
        return booster

    def _ltr_rank(
        self,
        users: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        k: int,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, items, x = self._features(users, lists, user_items)
        if len(rows) == 0:
            return np.full((len(users), k), -1, np.int32), np.full(
                (len(users), k), -np.inf, np.float32
            )
        best_it = getattr(self.ltr_model_, "best_iteration", 0) or None
        pred = np.asarray(self.ltr_model_.predict(x, num_iteration=best_it), dtype=np.float64)
        return topk_pairs(rows, items, pred, len(users), k)

    # ----------------------------------------------------------------- scoring
    def _combine(
        self,
        users: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        k: int,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.method_ == "ltr":
            return self._ltr_rank(users, lists, k, user_items)
        return fuse_lists(
            lists,
            self.weights_,
            k,
            method=self.method_,
            normalization=self.normalization,
            rrf_k=self.rrf_k,
        )

    def _fused_dense(
        self,
        users: np.ndarray,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        """Fused scores of every item, shape (len(users), n_items), float32.

        The channel lists are always computed the same way (the user's own items excluded, no
        per-call exclusion or candidate restriction), so an item's fused score does not depend on
        what a ``recommend`` call excludes: ``recommend`` masks afterwards and agrees with
        ``score``.
        """
        n = len(users)
        rows_arg = users if user_items is None else np.arange(n)
        n_cand = min(self.n_candidates, self.n_items)
        lists = [
            ch.recommend(rows_arg, n_cand, exclude_seen=True, user_items=user_items)
            for ch in self.channels_
        ]
        width = sum(ids.shape[1] for ids, _ in lists)
        ids, sc = self._combine(users, lists, width, user_items)
        finite = ids >= 0
        lowest = np.nanmin(np.where(finite, sc, np.nan).astype(np.float64), axis=1, initial=np.inf)
        lowest = np.where(np.isfinite(lowest), lowest, 0.0)
        # items no channel proposes: below every proposed item, ordered by popularity
        pop = self.item_pop_.astype(np.float64)
        tail = 0.5 * pop / (pop.max(initial=0.0) + 1.0)
        out: np.ndarray = (lowest[:, None] - 1.0 + tail[None, :]).astype(np.float32)
        r = np.broadcast_to(np.arange(n)[:, None], ids.shape)
        out[r[finite], ids[finite]] = sc[finite]
        activity = self.user_activity_[users] if user_items is None else np.diff(user_items.indptr)
        cold = np.flatnonzero(activity == 0)
        if len(cold):  # no history: the channels have no signal, use the popularity fallback
            if self.fallback_ >= 0:
                fb = self.channels_[self.fallback_]
                out[cold] = (
                    fb.score(users[cold]) if user_items is None else fb.score_new(user_items[cold])
                )
            else:
                out[cold] = self.item_pop_[None, :]
        return out

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        """Fused scores of all items, shape (len(users), n_items).

        Notes
        -----
        Each channel proposes its top ``n_candidates`` unseen items; the proposed items get their
        fused score (RRF, weighted or learned, see :func:`fuse_lists`). Every other item, the
        user's own items included, scores ``min(fused) - 1 + 0.5 pop_i / (max pop + 1)``: below
        all proposed items, ordered by popularity. Users without history get the popularity
        fallback channel's scores.
        """
        return self._fused_dense(users)

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fused scores for users given by their interactions (each channel folds them in)."""
        ui = sp.csr_matrix(user_items)
        if ui.shape[1] != self.n_items:
            raise ParameterError.invalid(
                "user_items", f"a sparse matrix with {self.n_items} columns", ui.shape
            )
        return self._fused_dense(np.arange(ui.shape[0]), ui)

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> State:
        state: State = {
            "weights_": self.weights_,
            "item_pop_": self.item_pop_,
            "user_activity_": self.user_activity_,
            "item_age_days_": self.item_age_days_,
            "item_categories_": self.item_categories_,
        }
        if self.cat_affinity_ is not None:
            state["cat_affinity_"] = self.cat_affinity_
        if self.cat_last_ is not None:
            state["cat_last_"] = self.cat_last_
            state["user_last_"] = self.user_last_
        return state

    def _set_state(self, state: State) -> None:
        self.weights_ = np.asarray(state["weights_"], np.float64)
        self.item_pop_ = np.asarray(state["item_pop_"], np.float32)
        self.user_activity_ = np.asarray(state["user_activity_"], np.float32)
        self.item_age_days_ = np.asarray(state["item_age_days_"], np.float32)
        self.item_categories_ = np.asarray(state["item_categories_"], np.int64)
        self.cat_affinity_ = state.get("cat_affinity_")
        self.cat_last_ = state.get("cat_last_")
        self.user_last_ = state.get("user_last_")

    def _save_artifacts(self, path: Path) -> None:
        chan_dir = path / "channels"
        chan_dir.mkdir(exist_ok=True)
        dirs = []
        for j, ch in enumerate(self.channels_):
            d = f"{j}_{self.channel_specs_[j][1]}"
            ch.save(chan_dir / d)
            dirs.append(d)
        if self.ltr_model_ is not None:
            (path / "ltr_model.txt").write_text(self.ltr_model_.model_to_string())
        meta = {
            "method": self.method_,
            "channels": self.channel_names_,
            "channel_specs": [list(sp_) for sp_ in self.channel_specs_],
            "channel_dirs": dirs,
            "fallback": self.fallback_,
            "validation_mode": self.validation_mode_,
            "weights": [float(w) for w in self.weights_],
            "validation": self.validation_,
        }
        (path / "fusion.json").write_text(json.dumps(meta, indent=2))

    def _load_artifacts(self, path: Path) -> None:
        meta = json.loads((path / "fusion.json").read_text())
        self.method_ = meta["method"]
        self.channel_names_ = list(meta["channels"])
        self.channel_specs_ = [(str(a), str(b), dict(c)) for a, b, c in meta["channel_specs"]]
        self.fallback_ = int(meta["fallback"])
        self.validation_mode_ = meta["validation_mode"]
        self.validation_ = meta.get("validation", {})
        self.channels_ = [Recommender.load(path / "channels" / d) for d in meta["channel_dirs"]]
        self.ltr_model_ = None
        if self.method_ == "ltr":
            lgb = require("lightgbm", "fusion method 'ltr'")
            self.ltr_model_ = lgb.Booster(model_str=(path / "ltr_model.txt").read_text())
