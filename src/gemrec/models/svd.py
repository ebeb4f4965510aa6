"""PureSVD: a truncated SVD of the interaction matrix (Cremonesi, Koren & Turrin, RecSys 2010)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.graph.spectral import truncated_svd
from gemrec.models.base import EmbeddingRecommender, State

__all__ = ["PureSVD"]


class PureSVD(EmbeddingRecommender):
    """Rank-``factors`` SVD of the binarised interaction matrix; no training loop, no torch.

    A strong, cheap top-N baseline, and an embedding model whose fit takes seconds: the serving
    tests and the serving benchmark use it to exercise retrieval and fold-in.

    Parameters
    ----------
    factors : int
        Embedding dimension ``d`` (capped at ``min(n_users, n_items) - 1``).
    seed : int
        Seed of the ARPACK start vector (deterministic results).

    Attributes
    ----------
    user_embeddings_ : ndarray of float32, shape (n_users, d)
        ``U S^{1/2}``.
    item_embeddings_ : ndarray of float32, shape (n_items, d)
        ``V S^{1/2}``.
    singular_values_ : ndarray of float32, shape (d,)

    Notes
    -----
    ``X ~= U S V^T`` (:func:`gemrec.graph.spectral.truncated_svd`, exact Lanczos) with ``U``
    (n_users, d), ``S`` diagonal, ``V`` (n_items, d), so ``score(u, i) = (U S V^T)_{ui}``.
    Fold-in of a new row ``x``: ``u = x V S^{-1/2}``, i.e. scores ``x V V^T`` (PureSVD's
    projection), which equals ``score`` for a fitted user's own row.

    Examples
    --------
    >>> from gemrec.data.interactions import Interactions
    >>> inter = Interactions.from_arrays([0, 0, 1, 1, 2, 3], [0, 1, 0, 1, 0, 2])
    >>> PureSVD(factors=2).fit(inter).recommend([2], k=1)[0].tolist()
    [[1]]
    """

    name = "svd"

    def __init__(self, *, factors: int = 64, seed: int = 0) -> None:
        self.factors = factors
        self.seed = seed

    def _validate_params(self) -> None:
        if isinstance(self.factors, bool) or not isinstance(self.factors, int) or self.factors < 1:
            raise ParameterError.invalid("factors", "a positive integer", self.factors)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ParameterError.invalid("seed", "an integer", self.seed)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        x = interactions.binary()
        d = min(self.factors, min(x.shape) - 1)
        if d < 1:
            raise ParameterError(
                "parameter 'interactions': PureSVD needs at least 2 users and 2 items"
            )
        u, s, v = truncated_svd(x, d, method="arpack", seed=self.seed)
        root = np.sqrt(np.maximum(s.astype(np.float64), 1e-12))
        self.user_embeddings_ = (u * root).astype(np.float32)
        self.item_embeddings_ = (v * root).astype(np.float32)
        self.singular_values_ = s.astype(np.float32)

    def fold_in(self, item_vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The weighted mean of ``v_i S^{-1}`` (rows ``v_i`` of ``item_embeddings_``).

        With equal weights ``fold_in(...) @ item_embeddings_.T`` ranks like :meth:`score_new`.
        """
        self._check_fitted()
        scaled = np.asarray(item_vectors, np.float32) / np.maximum(self.singular_values_, 1e-12)
        return super().fold_in(scaled, weights)

    def queries_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """``x V S^{-1/2}`` of new binarised rows (``score_new`` is ``x V V^T``), (n, d) float32."""
        self._check_fitted()
        x = sp.csr_matrix(user_items, dtype=np.float32, copy=True)  # binarised below
        if x.shape[1] != self.n_items:
            raise ParameterError.invalid(
                "user_items", f"a sparse matrix with {self.n_items} columns", x.shape
            )
        x.data[:] = 1.0
        u = x @ (self.item_embeddings_ / np.maximum(self.singular_values_, 1e-12))
        return np.asarray(u, dtype=np.float32)

    def _get_state(self) -> State:
        return {**super()._get_state(), "singular_values_": self.singular_values_}

    def _set_state(self, state: State) -> None:
        super()._set_state(state)
        self.singular_values_ = np.asarray(state["singular_values_"], dtype=np.float32)
