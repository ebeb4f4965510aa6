"""What each user already has offline: the dataset's history plus what a retrain folded in.

"Already seen" is the dataset's train + valid edges and the online events a retrain folded into
the model (the model's own interactions), never only what one model happened to train on. The
same matrix gives the co-users behind explanations and the social and similar-users cold start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec.data.store import Dataset
from gemrec.models.base import Recommender

__all__ = ["History"]


class History:
    """Users' offline items over the engine's id space.

    Parameters
    ----------
    dataset : Dataset
    model : Recommender
        Its ``interactions_`` hold the online events a retrain folded in.
    user_ids, item_ids : sequence of str
        The engine's id maps (the dataset's, grown by retrains).

    Attributes
    ----------
    seen : csr_matrix of float32, shape (n_users, n_model_items)
        Weight of each user's offline (user, item) pair.
    item_users : csr_matrix, shape (n_model_items, n_users)
        ``seen`` transposed: the users of each item.
    item_degree : ndarray of float32, shape (n_model_items,)
        Number of users of each item.
    """

    def __init__(
        self, dataset: Dataset, model: Recommender, user_ids: list[str], item_ids: list[str]
    ) -> None:
        history = dataset.interactions("train", "valid").grown(
            np.asarray(user_ids), np.asarray(item_ids)
        )
        self.seen: sp.csr_matrix = history.matrix.maximum(
            sp.csr_matrix(model.interactions_, dtype=np.float32)
        ).tocsr()
        self.item_users: sp.csr_matrix = self.seen.T.tocsr()
        self.item_degree = np.diff(self.item_users.indptr).astype(np.float32)

    @property
    def n_users(self) -> int:
        return int(self.seen.shape[0])

    def items(self, user: int | None) -> np.ndarray:
        """Internal ids of ``user``'s offline items (empty for an unknown user)."""
        if user is None or user >= self.seen.shape[0]:
            return np.zeros(0, np.int64)
        row = self.seen.indices[self.seen.indptr[user] : self.seen.indptr[user + 1]]
        return np.asarray(row, dtype=np.int64)

    def records(self, user: int | None, item_ids: list[str]) -> list[dict[str, Any]]:
        """``user``'s offline history as ``GET /v1/users/{id}/history`` lists it."""
        if user is None or user >= self.seen.shape[0]:
            return []
        row = self.seen[user]
        return [
            {
                "item_id": item_ids[i],
                "event_type": "interaction",
                "value": float(w),
                "timestamp": None,
                "source": "offline",
            }
            for i, w in zip(row.indices.tolist(), row.data.tolist(), strict=True)
        ]
