"""What the neighbourhood models (ItemKNN, UserKNN, RP3beta) share.

Each learns one sparse similarity matrix ``similarity_`` and derives the rest of its scoring state
from it and the training interactions in ``_prepare`` (after ``fit`` and after ``load``). The
item-based ones also score the same way, ``scores = X @ W`` with an item x item ``W``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from gemrec.errors import ParameterError
from gemrec.models._topn import fold_in_rows
from gemrec.models.base import ModelTags, Recommender, State

__all__ = ["ItemToItemModel", "SimilarityModel", "check_n_neighbors"]


def check_n_neighbors(n: object) -> None:
    """Raise :class:`ParameterError` unless ``n_neighbors`` is a positive integer."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ParameterError.invalid("n_neighbors", "a positive integer", n)


class SimilarityModel(Recommender):
    """A recommender whose learned state is one sparse matrix, ``similarity_`` (float32 CSR).

    Subclasses set ``similarity_`` in ``_fit`` and call ``_prepare``; loading restores
    ``similarity_`` and calls ``_prepare`` again.
    """

    tags: ClassVar[ModelTags] = ModelTags(fold_in=True)

    similarity_: sp.csr_matrix

    @abstractmethod
    def _prepare(self) -> None:
        """Derive the scoring arrays from ``similarity_`` and ``interactions_``."""

    def _get_state(self) -> State:
        return {"similarity_": self.similarity_}

    def _set_state(self, state: State) -> None:
        self.similarity_ = sp.csr_matrix(state["similarity_"], dtype=np.float32)
        self._prepare()


class ItemToItemModel(SimilarityModel):
    """``scores = X @ W`` with ``W`` an (n_items, n_items) sparse matrix.

    ``_prepare`` sets ``_x`` (the interactions as scored, shape (n_users, n_items)) and ``_weights``
    (``W``); row i of ``similarity_`` holds the items similar to item i.
    """

    _x: sp.csr_matrix
    _weights: sp.csr_matrix

    def _binary_input(self) -> bool:
        """Whether interactions count as 1 whatever their weight (as ``_x`` does)."""
        return False

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self._x[users] @ self._weights).toarray(), dtype=np.float32)

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in: ``user_items @ W`` (W depends on items only: no user state is needed)."""
        self._check_fitted()
        x = fold_in_rows(user_items, self.n_items, binary=self._binary_input())
        return np.asarray((x @ self._weights).toarray(), dtype=np.float32)

    def _similar_block(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity_[items].toarray(), dtype=np.float32)
