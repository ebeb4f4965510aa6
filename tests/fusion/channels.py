"""A tiny channel model for the fusion tests (registered under a test-only name)."""

from __future__ import annotations

import numpy as np

from gemrec.data.interactions import Interactions
from gemrec.models.base import ModelTags, Recommender, State


class ItemCosine(Recommender):
    """score(u, i) = sum_j x_uj cos(j, i): dense item-item cosine (small catalogues only)."""

    name = "test_itemcos"

    def __init__(self, *, shrink: float = 0.0) -> None:
        self.shrink = shrink

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        x = interactions.binary().astype(np.float64)
        co = np.asarray((x.T @ x).todense())
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        self.similarity_ = sim.astype(np.float32)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.interactions_[users] @ self.similarity_, dtype=np.float32)

    def score_new(self, user_items: object) -> np.ndarray:
        return np.asarray(user_items @ self.similarity_, dtype=np.float32)  # type: ignore[operator]

    def _get_state(self) -> State:
        return {"similarity_": self.similarity_}

    def _set_state(self, state: State) -> None:
        self.similarity_ = state["similarity_"]


class ValidationSpy(ItemCosine):
    """ItemCosine that asks for validation data and records what ``fit`` received."""

    name = "test_validspy"
    tags = ModelTags(validation="early_stopping", fold_in=True)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        super()._fit(interactions, valid)
        self.fit_nnz_ = interactions.nnz
        self.got_valid_ = valid is not None
