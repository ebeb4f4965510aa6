"""Popularity baselines."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.user_groups import (
    UserAttributes,
    estimate_shrinkage,
    group_counts,
    item_shares,
    shrunk_group_scores,
)
from gemrec.errors import ParameterError
from gemrec.models.base import ModelTags, Recommender, State

__all__ = ["CategoryPopularity", "Popularity", "UserGroupPopularity"]


class Popularity(Recommender):
    """Global popularity, optionally time-decayed.

    Parameters
    ----------
    half_life_days : float or None
        None: score = number of users who interacted with the item. Otherwise each edge counts
        ``2 ** (-(t_max - t) / half_life)`` where t is its last timestamp (trending items).
    weighted : bool
        Sum edge weights (behaviour strength) instead of counting users.

    Notes
    -----
    score(u, i) = sum_v w_vi * decay(t_vi), identical for every user.
    """

    name = "pop"
    tags: ClassVar[ModelTags] = ModelTags(timestamps=True, fold_in=True)

    def __init__(self, *, half_life_days: float | None = None, weighted: bool = False) -> None:
        self.half_life_days = half_life_days
        self.weighted = weighted

    def _validate_params(self) -> None:
        if self.half_life_days is not None and not (
            isinstance(self.half_life_days, int | float) and self.half_life_days > 0
        ):
            raise ParameterError.invalid(
                "half_life_days", "a positive number or None", self.half_life_days
            )
        if not isinstance(self.weighted, bool | np.bool_):
            raise ParameterError.invalid("weighted", "True or False", self.weighted)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        m = interactions.matrix if self.weighted else interactions.binary()
        if self.half_life_days is not None and interactions.timestamps is not None:
            ts = interactions.timestamps
            age_days = (ts.data.max() - ts.data) / 86400.0
            m = m.copy()
            m.data = m.data * np.exp2(-age_days / float(self.half_life_days)).astype(np.float32)
        self.item_scores_ = np.asarray(m.sum(axis=0), dtype=np.float32).ravel()

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(users), len(self.item_scores_)))

    def score_new(self, user_items: object) -> np.ndarray:
        n = user_items.shape[0]  # type: ignore[attr-defined]
        return np.broadcast_to(self.item_scores_, (n, len(self.item_scores_))).astype(np.float32)

    def _get_state(self) -> State:
        return {"item_scores_": self.item_scores_}

    def _set_state(self, state: State) -> None:
        self.item_scores_ = state["item_scores_"]


class CategoryPopularity(Recommender):
    """Popularity, and for items without interactions the popularity of their category.

    Notes
    -----
    With pop(j) the number of training users of item j, W the items with pop > 0 ("warm") and
    c(i) the category of item i:

        score(i) = pop(i)                                   if i is warm
        score(i) = mean_{j in W, c(j) = c(i)} pop(j)        otherwise, when that set is not empty
        score(i) = mean_{j in W} pop(j)                     otherwise

    A cold item is scored by what an item of its category draws on average: with cold items
    drawn uniformly from the catalogue, that is the expected popularity of a cold item of the
    category. The score is the same for every user. Categories come from
    ``SideInformation.item_categories`` (``-1``: unknown); without them every cold item gets the
    global mean and the ranking is the id order.
    """

    name = "category-pop"
    tags: ClassVar[ModelTags] = ModelTags(side_information=frozenset({"item_categories"}))

    def __init__(self) -> None:
        pass

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        pop = np.asarray(interactions.binary().sum(axis=0), dtype=np.float64).ravel()
        warm = pop > 0
        fallback = float(pop[warm].mean()) if warm.any() else 0.0
        scores = np.where(warm, pop, fallback)
        cats = self._side.item_categories
        if cats is not None:
            cats = np.asarray(cats, dtype=np.int64)
            known = cats >= 0
            n_cats = int(cats.max(initial=-1)) + 1
            sums = np.bincount(cats[known & warm], weights=pop[known & warm], minlength=n_cats)
            counts = np.bincount(cats[known & warm], minlength=n_cats)
            means = np.divide(sums, counts, out=np.full(n_cats, fallback), where=counts > 0)
            cold_known = ~warm & known
            scores[cold_known] = means[cats[cold_known]]
        self.item_scores_ = scores.astype(np.float32)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(users), len(self.item_scores_)))

    def _get_state(self) -> State:
        return {"item_scores_": self.item_scores_}

    def _set_state(self, state: State) -> None:
        self.item_scores_ = state["item_scores_"]


class UserGroupPopularity(Recommender):
    """Popularity among the users who share a user's metadata (the ``similar_users`` path).

    Parameters
    ----------
    columns : list of str or None
        The user metadata columns to compare (``SideInformation.user_features``); None: all but
        text columns with more distinct values than half the users (a zip code would make every
        group a single user).
    shrinkage : float or "auto"
        Weight of global popularity in each group's scores, in pseudo-users (0: the group alone;
        large: global popularity). ``"auto"``: estimated from how much the groups differ
        (:func:`~gemrec.data.user_groups.estimate_shrinkage`), kept as ``shrinkage_``.

    Notes
    -----
    With ``g(u)`` the group of user ``u`` (users with equal values in every column, numeric
    columns with more than 10 distinct values cut into 5 quantile bins:
    :class:`~gemrec.data.user_groups.UserAttributes`, the grouping the service's
    ``similar_users`` cold start uses), ``R`` the binary training matrix, ``n_g`` the group's
    users with any training item, ``p(i)`` the item's share of all users with a training item
    and ``s`` the shrinkage (:func:`~gemrec.data.user_groups.shrunk_group_scores`):

        score(u, i) = (sum_{v : g(v) = g(u)} R[v, i] + s * p(i)) / (n_g + s) + 1e-6 * p(i)

    so a small group's list leans on global popularity and a large group's on its own items.
    Users without metadata (or a model fit without user features) get ``p(i)``, global
    popularity. A user without history but with metadata (a cold user) gets the list of their
    group.
    """

    name = "similar-users"
    tags: ClassVar[ModelTags] = ModelTags(
        side_information=frozenset({"user_features"}), fold_in=True
    )

    def __init__(
        self, *, columns: list[str] | None = None, shrinkage: float | str = "auto"
    ) -> None:
        self.columns = columns
        self.shrinkage = shrinkage

    def _validate_params(self) -> None:
        if self.columns is not None and not (
            isinstance(self.columns, list | tuple) and all(isinstance(c, str) for c in self.columns)
        ):
            raise ParameterError.invalid("columns", "a list of column names or None", self.columns)
        if self.shrinkage != "auto" and not (
            isinstance(self.shrinkage, int | float)
            and not isinstance(self.shrinkage, bool)
            and 0 <= self.shrinkage < float("inf")
        ):
            raise ParameterError.invalid("shrinkage", 'a number >= 0 or "auto"', self.shrinkage)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        n = interactions.n_users
        binary = interactions.binary()
        self.item_scores_ = item_shares(binary)
        features = self._side.user_features
        attrs = None
        if features is not None:
            columns = None if self.columns is None else list(self.columns)
            attrs = UserAttributes.build(features, n, columns)
        self.user_group_ = np.full(n, -1, np.int64)
        if attrs is None:
            self.group_counts_ = sp.csr_matrix((0, interactions.n_items), dtype=np.float32)
            self.group_sizes_ = np.zeros(0, np.float32)
            self.shrinkage_ = 0.0
            return
        self.user_group_[: len(attrs.groups)] = attrs.groups
        self.group_counts_, self.group_sizes_ = group_counts(binary, self.user_group_)
        self.shrinkage_ = (
            estimate_shrinkage(self.group_counts_, self.group_sizes_)
            if self.shrinkage == "auto"
            else float(self.shrinkage)
        )

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        out = np.repeat(self.item_scores_[None, :], len(users), axis=0)
        groups = self.user_group_[users]
        known = np.flatnonzero(groups >= 0)
        if len(known):
            g = groups[known]
            out[known] = (
                shrunk_group_scores(
                    self.group_counts_[g].toarray(),
                    self.group_sizes_[g],
                    self.item_scores_,
                    self.shrinkage_,
                )
                + np.float32(1e-6) * self.item_scores_
            )
        return out

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Users unseen at fit time have no metadata here: popularity (see Notes)."""
        n = sp.csr_matrix(user_items).shape[0]
        return np.broadcast_to(self.item_scores_, (n, self.n_items)).astype(np.float32)

    def _get_state(self) -> State:
        return {
            "item_scores_": self.item_scores_,
            "user_group_": self.user_group_,
            "group_counts_": self.group_counts_,
            "group_sizes_": self.group_sizes_,
            "shrinkage_": np.float64(self.shrinkage_),
        }

    def _set_state(self, state: State) -> None:
        self.item_scores_ = state["item_scores_"]
        self.user_group_ = state["user_group_"]
        self.group_counts_ = sp.csr_matrix(state["group_counts_"])
        self.group_sizes_ = state["group_sizes_"]
        self.shrinkage_ = float(state["shrinkage_"])
