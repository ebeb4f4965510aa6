"""Reference points for cold-start evaluation: what a model must beat on items it never saw.

On a cold-items split every held-out item has no interaction, so global popularity scores them
all 0 and ranks them in id order; the category gives a first real signal. These baselines are
counts, fitted like any model (:func:`gemrec.models.fitting.fit_model`) and evaluated with the
protocol of the dataset (:func:`gemrec.eval.commands.evaluate_on_dataset`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.models.base import ModelTags, Recommender, State

__all__ = ["CategoryPopularity", "random_recall"]


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


def random_recall(n_candidates: int, k: int) -> float:
    """Expected Recall@k of a uniformly random ranking of ``n_candidates`` items.

    Each relevant item lands in the top k with probability ``min(k, n) / n``, whatever the
    number of relevant items, so this is also the mean over users.
    """
    if n_candidates < 1 or k < 1:
        raise ParameterError.invalid("n_candidates, k", "positive integers", (n_candidates, k))
    return min(k, n_candidates) / n_candidates
