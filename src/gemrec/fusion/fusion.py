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

The parts live beside this module: :mod:`~gemrec.fusion.channels` (which models, fit how),
:mod:`~gemrec.fusion.lists` (the list kernels, :func:`~gemrec.fusion.lists.fuse_lists`),
:mod:`~gemrec.fusion.tuning` (method choice and weight search),
:mod:`~gemrec.fusion.learned` (the LightGBM blend) and :mod:`~gemrec.fusion.features` (the side
features it reads). This module holds the model: its parameters, the fit that ties the parts
together, scoring and persistence.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from gemrec.data.holdout import time_holdout, union, user_holdout
from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.fusion import learned
from gemrec.fusion.channels import ChannelSpec, channel_specs, fit_channel, refit_channel
from gemrec.fusion.features import SideFeatures, side_features
from gemrec.fusion.lists import NORMALIZATIONS
from gemrec.fusion.tuning import METHODS, Tuned, channel_gates, combine, tune
from gemrec.models.base import ModelTags, Recommender, State
from gemrec.tracking import curve_prefix

__all__ = ["VALIDATIONS", "Fusion"]

#: what ``Fusion(validation=...)`` accepts
VALIDATIONS = ("auto", "given", "time", "user")
#: what ``Fusion(refit=...)`` accepts, and what each value means
REFITS: dict[bool | str, str] = {
    "extend": "extend",
    "full": "full",
    "none": "none",
    True: "extend",
    False: "none",
}


class Fusion(Recommender):
    """Combine several recommenders (channels) into one.

    Parameters
    ----------
    channels : list of (str or dict) or None
        Model names from :data:`gemrec.models.MODELS`, or ``{"model": name, "params": {...},
        "name": label}`` to use one model twice with different hyperparameters. None: those of
        :data:`~gemrec.fusion.channels.DEFAULT_CHANNELS` available in this build, plus
        :data:`~gemrec.fusion.channels.TRENDING` (popularity with a 7-day half-life) when the
        interactions carry timestamps. Validation may give some weight 0, which drops them.
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
    refit : {"extend", "full", "none"} or bool
        How the kept channels see train + validation after tuning. "extend" (True): through
        :meth:`~gemrec.models.base.Recommender.extended`: LightGCN propagates the ego embeddings
        it learned on the tuning split over the full graph instead of training again, the other
        channels are fit again (their fits are short). "full": every channel is trained again.
        "none" (False): the channels stay as tuned.
    ltr_params : dict, optional
        Overrides of the LightGBM parameters, plus ``num_boost_round`` (600) and
        ``early_stopping_rounds`` (100).
    support_gated : list of str, optional
        Labels of channels whose weight decays with the item's number of training interactions
        ``n_i``: ``w_c s / (s + n_i)`` in "weighted" and "rrf"
        (:func:`~gemrec.fusion.lists.support_gate`), e.g. a ``content`` channel that knows
        items with few interactions better than the collaborative channels do. The scale ``s``
        (or no gate) is chosen on validation with the weights, from
        :data:`~gemrec.fusion.tuning.SUPPORT_SCALES`. ("ltr" reads item popularity as a
        feature and ignores it.)
    seed : int

    Attributes
    ----------
    method_ : {"weighted", "rrf", "ltr"}
        The chosen blend.
    weights_ : ndarray of float64, shape (n_kept_channels,)
        Weights of the kept channels ("ltr" keeps every channel and does not use them).
    channels_ : list of Recommender
        The kept channels, fitted (brought to train + validation unless ``refit="none"``).
    channel_names_ : list of str
    channel_specs_ : list of ChannelSpec
        (label, model name, hyperparameters) of each kept channel.
    fallback_ : int
        Index in ``channels_`` of the popularity channel that serves users without history, or -1.
    ltr_model_ : lightgbm.Booster or None
        The learned blend when ``method_`` is "ltr".
    side_features_ : SideFeatures
        Popularity, activity, recency and category statistics of everything the model has seen.
    validation_ : dict
        The tuning report: each channel's and each compared method's validation Recall@20 /
        NDCG@20, the chosen method and its weight search.
    validation_mode_ : {"given", "time", "user"}
        What was tuned on.
    support_scale_ : float or None
        The gate scale ``s`` of the ``support_gated`` channels; None: no gate.
    support_gated_ : list of bool
        Per kept channel, whether it is gated.
    fit_seconds_ : dict of str -> float
        Where the fit's time went: ``channels`` (fitting them on the tuning split), ``tuning``
        (their candidate lists and the blend), ``refit`` (bringing the kept ones to all data).

    Notes
    -----
    The method is chosen by 2-fold cross-fitting over the validation users
    (:func:`~gemrec.fusion.tuning.tune`): channel weights (for "weighted" and "rrf", coordinate
    ascent) or the LightGBM ranker are fit on one half and scored on the other by Recall@20 +
    NDCG@20; the chosen method is then refit on all validation users. The learned blend's
    features per (user, item) candidate (:func:`~gemrec.fusion.learned.candidate_features`): for
    each channel the 1-based rank and the min-max normalised score (missing when the channel did
    not propose the item), the number of channels proposing it, ``log(1 + pop_i / mean pop)``,
    the item's age in days (time since its last interaction), ``log(1 + n_u / mean n)`` (user
    activity), and, given item categories, the user's (time-decayed) share of activity in the
    item's category and the days since the user's last activity there. The ranker is LightGBM's
    listwise ``rank_xendcg`` objective by default (``ltr_params`` overrides any LightGBM parameter
    and ``num_boost_round`` / ``early_stopping_rounds``).

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
    side_features_: SideFeatures
    ltr_model_: Any
    _tail: np.ndarray
    _gates: list[np.ndarray | None] | None
    tags: ClassVar[ModelTags] = ModelTags(
        validation="tuning",
        # categories feed the learned blend; all side information is handed on to the channels
        side_information=frozenset({"item_categories", "item_features", "social", "user_features"}),
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
        refit: bool | str = "extend",
        ltr_params: dict[str, Any] | None = None,
        support_gated: list[str] | None = None,
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
        self.support_gated = support_gated
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
        if self.support_gated is not None and (
            not isinstance(self.support_gated, list | tuple)
            or not all(isinstance(c, str) for c in self.support_gated)
        ):
            raise ParameterError.invalid(
                "support_gated", "a list of channel labels or None", self.support_gated
            )
        if not isinstance(self.refit, bool | str) or self.refit not in REFITS:
            raise ParameterError.invalid(
                "refit", "'extend', 'full', 'none', True or False", self.refit
            )
        if self.channel_params is not None and not isinstance(self.channel_params, dict):
            raise ParameterError.invalid(
                "channel_params", "a dict of model name -> dict", self.channel_params
            )

    # ----------------------------------------------------------------- fitting
    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        full = union(interactions, valid) if valid is not None and valid.nnz else interactions
        has_ts = full.timestamps is not None and full.timestamps.nnz > 0
        specs = channel_specs(self.channels, self.channel_params, has_timestamps=has_ts)
        if not specs:
            raise ParameterError(
                "parameter 'channels': no channel model is available in this build"
            )
        if self.weights is not None and len(self.weights) != len(specs):
            raise ParameterError.invalid(
                "weights", f"{len(specs)} numbers, one per channel", self.weights
            )
        names = [s.label for s in specs]
        unknown = set(self.support_gated or ()) - set(names)
        if unknown:
            raise ParameterError.invalid(
                "support_gated", f"labels of the channels {names}", sorted(unknown)
            )
        gated = [n in (self.support_gated or ()) for n in names]
        cats = self._side.item_categories
        item_categories = (
            np.asarray(cats, np.int64)
            if cats is not None
            else np.full(interactions.n_items, -1, np.int64)
        )
        train, holdout = self._tuning_split(interactions, valid, full, has_ts)
        clock = time.perf_counter()
        with curve_prefix("tuning/"):  # the refit below logs the channels' own curves
            channels = [fit_channel(s, train, self._side) for s in specs]
        self.fit_seconds_ = {"channels": time.perf_counter() - clock}
        clock = time.perf_counter()
        given = None if self.weights is None else np.asarray(self.weights, np.float64)
        if given is not None and self.method not in ("auto", "ltr") and not any(gated):
            tuned = Tuned(given, self.method, {"channels": names})  # nothing to choose
        else:
            tuned = tune(
                channels,
                names,
                train,
                holdout,
                side_features(train, item_categories),
                method=self.method,
                weights=given,
                normalization=self.normalization,
                rrf_k=self.rrf_k,
                n_candidates=self.n_candidates,
                min_gain=self.min_gain,
                tune_users=self.tune_users,
                ltr_params=self.ltr_params,
                seed=self.seed,
                gated=gated,
            )
        kept, self.fallback_ = _kept_channels(specs, tuned)
        self.support_scale_ = tuned.support_scale
        self.support_gated_ = [gated[j] for j in kept]
        self.channel_names_ = [names[j] for j in kept]
        self.channel_specs_ = [specs[j] for j in kept]
        self.weights_ = tuned.weights[kept].astype(np.float64)
        self.method_ = tuned.method
        self.validation_ = tuned.report
        self.ltr_model_ = tuned.ranker
        self.fit_seconds_["tuning"] = time.perf_counter() - clock
        clock = time.perf_counter()
        refit = REFITS[self.refit]
        if refit != "none" and full.nnz != train.nnz:
            self.channels_ = [
                refit_channel(specs[j], channels[j], full, self._side, anew=refit == "full")
                for j in kept
            ]
        else:
            self.channels_ = [channels[j] for j in kept]
        self.fit_seconds_["refit"] = time.perf_counter() - clock
        self.side_features_ = side_features(full, item_categories)
        self._prepare()
        self.interactions_ = full.matrix

    def _tuning_split(
        self,
        interactions: Interactions,
        valid: Interactions | None,
        full: Interactions,
        has_ts: bool,
    ) -> tuple[Interactions, Interactions]:
        """(what the channels are tuned on, the held-out targets), as ``validation`` says."""
        mode = self.validation
        if mode == "auto":
            mode = "time" if has_ts else "given"
        if mode == "time" and not has_ts:
            raise ParameterError(
                "parameter 'validation': 'time' needs interactions with timestamps"
            )
        self.validation_mode_ = mode
        if mode == "given" and valid is not None and valid.nnz:
            return interactions, valid
        if mode == "time":
            return time_holdout(full, self.holdout_fraction)
        return user_holdout(full, self.holdout_fraction, seed=self.seed)

    # ----------------------------------------------------------------- scoring
    def _combine(
        self,
        users: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        k: int,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return combine(
            users,
            lists,
            k,
            method=self.method_,
            weights=self.weights_,
            normalization=self.normalization,
            rrf_k=self.rrf_k,
            side=self.side_features_,
            ranker=self.ltr_model_,
            user_items=user_items,
            gates=self._gates,
        )

    def _prepare(self) -> None:
        """What scoring derives from the fitted state: the order of unproposed items, the gates."""
        self._tail = _unproposed_order(self.side_features_)
        self._gates = channel_gates(
            self.support_gated_, self.side_features_.item_pop, self.support_scale_
        )

    def channel_lists(
        self, users: np.ndarray, user_items: sp.csr_matrix | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each channel's top ``n_candidates`` items, the user's own items excluded.

        Parameters
        ----------
        users : ndarray of int, shape (n,)
            Fitted users (ignored when ``user_items`` is given).
        user_items : csr_matrix of shape (n, n_items), optional
            Users given by their interactions (each channel folds them in).

        Returns
        -------
        list of (ids, scores)
            Per kept channel, ids int32 (n, N) padded with -1 and scores float32 (n, N),
            ``N = min(n_candidates, n_items)``: what :meth:`fused_scores` combines.
        """
        rows_arg = users if user_items is None else np.arange(user_items.shape[0])
        n_cand = min(self.n_candidates, self.n_items)
        return [
            ch.recommend(rows_arg, n_cand, exclude_seen=True, user_items=user_items)
            for ch in self.channels_
        ]

    def fused_scores(
        self,
        users: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        """Fused scores of every item from the channels' candidate lists.

        Parameters
        ----------
        users : ndarray of int, shape (n,)
            Fitted users (their rows of the side features), or ``arange(n)`` with ``user_items``.
        lists : list of (ids, scores)
            Per kept channel, as :meth:`channel_lists` returns them; a service may compute them
            through each channel's own fast path (an ANN index) instead.
        user_items : csr_matrix of shape (n, n_items), optional
            Users given by their interactions.

        Returns
        -------
        ndarray of float32, shape (n, n_items)
            See :meth:`_score_block`'s Notes. The channel lists are always computed the same way
            (the user's own items excluded, no per-call exclusion or candidate restriction), so
            an item's fused score does not depend on what a ``recommend`` call excludes:
            ``recommend`` masks afterwards and agrees with ``score``.
        """
        n = len(users)
        width = sum(ids.shape[1] for ids, _ in lists)
        ids, sc = self._combine(users, lists, width, user_items)
        finite = ids >= 0
        lowest = np.nanmin(np.where(finite, sc, np.nan).astype(np.float64), axis=1, initial=np.inf)
        lowest = np.where(np.isfinite(lowest), lowest, 0.0)
        # items no channel proposes: below every proposed item, ordered by popularity
        out: np.ndarray = (lowest[:, None] - 1.0 + self._tail[None, :]).astype(np.float32)
        r = np.broadcast_to(np.arange(n)[:, None], ids.shape)
        out[r[finite], ids[finite]] = sc[finite]
        activity = (
            self.side_features_.user_activity[users]
            if user_items is None
            else np.diff(user_items.indptr)
        )
        cold = np.flatnonzero(activity == 0)
        if len(cold):  # no history: the channels have no signal, use the popularity fallback
            if self.fallback_ >= 0:
                fb = self.channels_[self.fallback_]
                out[cold] = (
                    fb.score(users[cold]) if user_items is None else fb.score_new(user_items[cold])
                )
            else:
                out[cold] = self.side_features_.item_pop[None, :]
        return out

    def _fused_dense(
        self,
        users: np.ndarray,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        """Fused scores of every item, shape (len(users), n_items), float32."""
        return self.fused_scores(users, self.channel_lists(users, user_items), user_items)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        """Fused scores of all items, shape (len(users), n_items).

        Notes
        -----
        Each channel proposes its top ``n_candidates`` unseen items; the proposed items get their
        fused score (RRF, weighted or learned, see :func:`~gemrec.fusion.lists.fuse_lists`).
        Every other item, the user's own items included, scores
        ``min(fused) - 1 + 0.5 pop_i / (max pop + 1)``: below all proposed items, ordered by
        popularity. Users without history get the popularity fallback channel's scores.
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
        return {"weights_": self.weights_, **self.side_features_.state()}

    def _set_state(self, state: State) -> None:
        self.weights_ = np.asarray(state["weights_"], np.float64)
        self.side_features_ = SideFeatures.from_state(state)

    def _save_artifacts(self, path: Path) -> None:
        chan_dir = path / "channels"
        chan_dir.mkdir(exist_ok=True)
        dirs = []
        for j, (ch, spec) in enumerate(zip(self.channels_, self.channel_specs_, strict=True)):
            d = f"{j}_{spec.model}"
            ch.save(chan_dir / d)
            dirs.append(d)
        if self.ltr_model_ is not None:
            (path / "ltr_model.txt").write_text(self.ltr_model_.model_to_string())
        meta = {
            "method": self.method_,
            "channels": self.channel_names_,
            "channel_specs": [list(spec) for spec in self.channel_specs_],
            "channel_dirs": dirs,
            "fallback": self.fallback_,
            "validation_mode": self.validation_mode_,
            "weights": [float(w) for w in self.weights_],
            "support_scale": self.support_scale_,
            "support_gated": self.support_gated_,
            "validation": self.validation_,
            "fit_seconds": self.fit_seconds_,
        }
        (path / "fusion.json").write_text(json.dumps(meta, indent=2))

    def _load_artifacts(self, path: Path) -> None:
        meta = json.loads((path / "fusion.json").read_text())
        self.method_ = meta["method"]
        self.channel_names_ = list(meta["channels"])
        self.channel_specs_ = [
            ChannelSpec(str(a), str(b), dict(c)) for a, b, c in meta["channel_specs"]
        ]
        self.fallback_ = int(meta["fallback"])
        self.validation_mode_ = meta["validation_mode"]
        self.validation_ = meta.get("validation", {})
        self.fit_seconds_ = dict(meta.get("fit_seconds", {}))
        self.channels_ = [Recommender.load(path / "channels" / d) for d in meta["channel_dirs"]]
        self.ltr_model_ = None
        if self.method_ == "ltr":
            self.ltr_model_ = learned.load_ranker((path / "ltr_model.txt").read_text())
        self.support_scale_ = meta.get("support_scale")
        self.support_gated_ = list(meta.get("support_gated", [False] * len(self.channel_names_)))
        self._prepare()


def _unproposed_order(side: SideFeatures) -> np.ndarray:
    """``0.5 pop_i / (max pop + 1)``, float64 (n_items,): how items no channel proposes rank."""
    pop = side.item_pop.astype(np.float64)
    out: np.ndarray = 0.5 * pop / (pop.max(initial=0.0) + 1.0)
    return out


def _kept_channels(specs: list[ChannelSpec], tuned: Tuned) -> tuple[np.ndarray, int]:
    """Indices of the channels a fusion keeps, and the fallback's position among them (or -1).

    A channel stays when its weight is positive ("ltr" keeps all). Users without history get the
    popularity channel with the best validation recall, which therefore always stays.
    """
    pops = [j for j, s in enumerate(specs) if s.model == "pop"]
    single = tuned.report.get("single_channels", {})
    fallback = (
        max(pops, key=lambda j: single.get(specs[j].label, {}).get("recall@20", 0.0))
        if pops
        else -1
    )
    keep = np.ones(len(specs), bool) if tuned.method == "ltr" else tuned.weights > 0
    if fallback >= 0:
        keep[fallback] = True
    kept = np.flatnonzero(keep)
    return kept, int(np.searchsorted(kept, fallback)) if fallback >= 0 else -1
