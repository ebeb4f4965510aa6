"""A small, real embedding model for serving tests and the latency benchmark: truncated SVD.

The service works with any :class:`~gemrec.models.base.Recommender`; this one exists so the serving
layer can be exercised with embeddings (ANN retrieval, fold-in) without waiting for a trained graph
model. :func:`load_model` resolves it besides the models of :data:`gemrec.models.MODELS`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.models.base import EmbeddingRecommender, Recommender

__all__ = ["SERVE_MODELS", "TruncatedSVD", "load_model"]


class TruncatedSVD(EmbeddingRecommender):
    """Rank-``factors`` SVD of the (binarised) interaction matrix.

    Parameters
    ----------
    factors : int
        Embedding dimension ``d``.
    seed : int
        Seed of the ARPACK start vector (deterministic results).

    Notes
    -----
    ``X ~= U S V^T`` with ``U`` (n_users, d), ``S`` diagonal, ``V`` (n_items, d). User embeddings
    are ``U S^{1/2}``, item embeddings ``V S^{1/2}``, so ``score(u, i) = (U S V^T)_{ui}``.
    Fold-in of a new row ``x``: ``u = x V S^{-1/2}`` (the projection onto the item factors).
    """

    name = "svd"

    def __init__(self, *, factors: int = 64, seed: int = 0) -> None:
        self.factors = factors
        self.seed = seed

    def _validate_params(self) -> None:
        if not isinstance(self.factors, int) or self.factors < 1:
            raise ParameterError.invalid("factors", "a positive integer", self.factors)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        x = interactions.binary().astype(np.float64)
        d = min(self.factors, min(x.shape) - 1)
        if d < 1:
            raise ParameterError("TruncatedSVD needs at least 2 users and 2 items")
        v0 = np.random.default_rng(self.seed).standard_normal(min(x.shape))
        u, s, vt = svds(x, k=d, v0=v0, random_state=self.seed)
        order = np.argsort(-s)
        u, s, vt = u[:, order], s[order], vt[order]
        root = np.sqrt(np.maximum(s, 1e-12))
        self.user_embeddings_ = (u * root).astype(np.float32)
        self.item_embeddings_ = (vt.T * root).astype(np.float32)
        self.singular_values_ = s.astype(np.float32)

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        x = sp.csr_matrix(user_items, dtype=np.float32)
        x.data[:] = 1.0
        u = x @ (self.item_embeddings_ / np.maximum(self.singular_values_, 1e-12))
        return np.asarray(u @ self.item_embeddings_.T, dtype=np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {**super()._get_state(), "singular_values_": self.singular_values_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        self.singular_values_ = np.asarray(state["singular_values_"], dtype=np.float32)


#: models the service can load besides gemrec.models.MODELS (explicit, no import tricks)
SERVE_MODELS: dict[str, type[Recommender]] = {"svd": TruncatedSVD}


def load_model(path: str | Path) -> Recommender:
    """Load a saved model directory, dispatching on its manifest's model name."""
    path = Path(path)
    mf = path / "manifest.json"
    if not mf.is_file():
        raise GemrecError(f"{path}: not a gemrec model directory (no manifest.json)")
    name = json.loads(mf.read_text()).get("model")
    if name in SERVE_MODELS:
        return SERVE_MODELS[name].load(path)
    return Recommender.load(path)
