"""Popularity baselines."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.models.base import ModelTags, Recommender, State

__all__ = ["CategoryPopularity", "Popularity"]


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
