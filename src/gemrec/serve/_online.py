"""Online state: a user's acknowledged events turned into a query vector or a score vector, and
the events per item behind "trending now".

Online *user* state is never cached here: it is the user's recent events in the store, read per
request, so every worker process sees the same state and an acknowledged event is reflected by
the very next request. Item counts are the store's shared counters, read at most once per
``trending_cache_seconds`` (and at once after this worker's own writes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from gemrec.analysis.interests import InterestModel, blend_coefficients
from gemrec.models.ann import ItemIndex
from gemrec.models.base import Recommender
from gemrec.serve._catalogue import Catalogue, grown
from gemrec.serve._store import Event, EventStore

__all__ = ["OnlineState", "Scorer"]


class Scorer(Protocol):
    """What :meth:`OnlineState.scores` reads a model's scores through: the model itself, or a
    faster path to the same scores (:class:`~gemrec.serve._fusion.FusionScorer`)."""

    def score(self, users: Any) -> np.ndarray: ...

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray: ...


class OnlineState:
    """Online interest of users and event counts of items.

    Parameters
    ----------
    model : Recommender
    catalogue : Catalogue
    interests : InterestModel
        The interest rule (event weights, recency decay, prior mass).
    index : ItemIndex or None
        Item vectors of an embedding model (None for other models).
    folded_through_seq : int
        Store events up to this ``seq`` are already inside the model (a retrain folded them in).
    history_limit : int
        Most recent online events per user that count.
    counts_max_age : float
        Seconds the store's item counts are reused before being read again.
    scorer : Scorer, optional
        Where a model without embeddings gets its scores (``score``, ``score_new``); the model
        by default.

    Notes
    -----
    Online interest is :class:`~gemrec.analysis.interests.InterestModel`'s rule, the one the
    behaviour analysis uses. With the user's model embedding ``u`` (absent for unseen users) and
    online events ``e`` of weight ``w_e = type_weight(e) * 2 ** (-rank_e / 10)`` (the dataset's
    own event weights, so an online event weighs what it weighed in training; rank 0 = most
    recent) on items with embeddings ``v_e``::

        m = fold_in(v, w)  (the weighted mean, as EmbeddingRecommender.score_new)
        alpha = W / (W + c),  W = sum_e w_e                (c = settings.online_pseudo_count)
        q = (1 - alpha) u + alpha |u| m / |m|              (known user)
        q = m                                              (unseen user)

    Ranking for one user only depends on the direction of ``q``, so mixing unit directions keeps
    the learned preference and the session intent on one scale (``q`` keeps the scale of ``u``).
    Models without embeddings mix scores the same way: ``s = (1 - alpha) s_u + alpha |s_u| s_e /
    |s_e|`` with ``s_u`` the model's scores of the user and ``s_e`` its fold-in of the online events
    alone (``score_new``, or the model's item-to-item similarities where it has no fold-in), so a
    few fresh events move a long history's list at once.
    """

    def __init__(
        self,
        model: Recommender,
        catalogue: Catalogue,
        interests: InterestModel,
        index: ItemIndex | None,
        *,
        folded_through_seq: int,
        history_limit: int,
        counts_max_age: float,
        scorer: Scorer | None = None,
    ) -> None:
        self.model = model
        self.scorer: Scorer = model if scorer is None else scorer
        self.catalogue = catalogue
        self.interests = interests
        self.index = index
        self.folded_through_seq = folded_through_seq
        self.history_limit = history_limit
        self.n_model_items = model.n_items
        self.user_emb: np.ndarray | None = None
        if index is not None:
            self.user_emb = np.asarray(model.user_embeddings_, dtype=np.float32)  # type: ignore[attr-defined]
        self.counts_max_age = counts_max_age
        self._counts = np.zeros(0, np.float32)
        self._user_norms: np.ndarray | None = None
        if model.tags.low_rank_plus_sparse:  # what the norms precompute, once, before any request
            factors = model.item_embeddings_  # type: ignore[attr-defined]
            model.score_norms(  # type: ignore[attr-defined]
                np.zeros((1, factors.shape[1]), np.float32),
                np.zeros((1, model.n_items), np.float32),
                sp.csr_matrix((1, model.n_items), dtype=np.float32),
            )
        self._counts_from: tuple[EventStore | None, float] = (None, -math.inf)

    # ------------------------------------------------------------------ events
    def events(self, store: EventStore, user_id: str) -> list[Event]:
        """The user's recent online events not yet folded into the model, on known items."""
        evs = store.user_events(user_id, self.history_limit)
        idx = self.catalogue.index
        return [e for e in evs if e.seq > self.folded_through_seq and e.item_id in idx]

    def record(self, events: Sequence[Event]) -> None:
        """``events`` were stored (and counted by the store): read the counts again next time."""
        if events:
            self._counts_from = (None, -math.inf)

    def item_counts(self, store: EventStore | None) -> np.ndarray:
        """Stored events per item, shape (n_items,), from the store's shared counters.

        Read again when older than ``counts_max_age`` or from another store; zeros without one.
        """
        n = self.catalogue.n
        if store is None:
            return np.zeros(n, np.float32)
        now = time.monotonic()
        read_from, read_at = self._counts_from
        if read_from is not store or now - read_at >= self.counts_max_age:
            idx = self.catalogue.index
            counts = np.zeros(n, np.float32)
            for item_id, c in store.item_counts().items():
                i = idx.get(item_id)
                if i is not None and i < n:
                    counts[i] = c
            self._counts, self._counts_from = counts, (store, now)
        return grown(self._counts, n, 0.0)

    def weights(self, events: Sequence[Event]) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids of ``events`` (oldest first) and their weights (class Notes)."""
        items = np.array([self.catalogue.index[e.item_id] for e in events], dtype=np.int64)
        w = self.interests.weights([e.event_type for e in events]).astype(np.float32)
        return items, w

    # ------------------------------------------------------------------ interest

    def _session_row(self, items: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
        """The session's weighted items as one interaction row over the model's items."""
        return sp.csr_matrix(
            (w, (np.zeros(len(items), np.int64), items)),
            shape=(1, self.n_model_items),
            dtype=np.float32,
        )

    def query_vector(self, user: int | None, events: Sequence[Event]) -> np.ndarray | None:
        """The interest vector ``q`` of the class Notes (None: no events and no model user)."""
        assert self.index is not None and self.user_emb is not None
        u = self.user_emb[user] if user is not None and user < len(self.user_emb) else None
        if not events:
            return u
        items, w = self.weights(events)
        m = self.model.fold_in(self.index.vectors[items], w)  # type: ignore[attr-defined]
        return self.interests.blend(m, float(w.sum()), u)

    def scores(self, user: int | None, events: Sequence[Event]) -> np.ndarray | None:
        """Scores ``s`` of the model's items for a model without embeddings (class Notes).

        ``user``: the model's user (None for a user it does not know). None when there is neither
        a model user nor an online event on a model item.
        """
        learned = (
            np.asarray(self.scorer.score(np.array([user]))[0], np.float32)
            if user is not None
            else None
        )
        online = [e for e in events if self.catalogue.index[e.item_id] < self.n_model_items]
        if not online:
            return learned
        items, w = self.weights(online)
        row = self._session_row(items, w)
        session: np.ndarray
        if self.model.tags.fold_in:
            session = np.asarray(self.scorer.score_new(row), np.float32)[0]
        else:  # no fold-in: the model's own item-to-item similarities
            session = self._item_to_item(items, w)
        if learned is None:
            return session
        # the session's share grows with its weight, as for embedding models (class Notes)
        return self.interests.blend(session, float(w.sum()), learned)

    def low_rank_split(
        self, user: int | None, events: Sequence[Event]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(q, sparse)`` with ``q @ item_embeddings_.T + sparse`` equal to :meth:`scores` when
        the model's scores split that way (``ModelTags.low_rank_plus_sparse``); None when there
        is neither a model user nor an online event on a model item. A known user's scores and
        their session's blend (class Notes) part by part, with the coefficients of the full
        vectors' norms (``score_norms``)."""
        model: Any = self.model
        online = [e for e in events if self.catalogue.index[e.item_id] < self.n_model_items]
        learned: tuple[np.ndarray, np.ndarray] | None = None
        if user is not None:
            q = np.asarray(model.user_embeddings_[user], dtype=np.float32)
            learned = q, model.sparse_scores(np.array([user]))[0]
        if not online:
            return learned
        items, w = self.weights(online)
        row = self._session_row(items, w)
        queries, sparse = model.split_new(row)
        if learned is None:
            return queries[0], sparse[0]
        a, b = blend_coefficients(
            float(w.sum()),
            np.array([self._user_score_norm(user, *learned)]),
            model.score_norms(queries, sparse, row),
            recent_weight=self.interests.recent_weight,
            prior_mass=self.interests.prior_mass,
        )
        q_blend = (a[0] * learned[0] + b[0] * queries[0]).astype(np.float32)
        return q_blend, (a[0] * learned[1] + b[0] * sparse[0]).astype(np.float32)

    def _user_score_norm(self, user: int | None, query: np.ndarray, sparse: np.ndarray) -> float:
        """``|s_u|`` of a model user's full scores (the model's ``score_norms``, without the
        dense product): computed on the user's first fresh event, then kept, a constant of the
        model like its factors."""
        assert user is not None
        if self._user_norms is None:
            self._user_norms = np.full(self.model.n_users, np.nan)
        norm = float(self._user_norms[user])
        if np.isnan(norm):
            model: Any = self.model
            rows = model.fitted_rows(np.array([user]))
            norm = float(model.score_norms(query[None, :], sparse[None, :], rows)[0])
            self._user_norms[user] = norm
        return norm

    def _item_to_item(self, items: np.ndarray, weights: np.ndarray, width: int = 200) -> np.ndarray:
        """Fold-in for models without ``score_new``: ``s = sum_e w_e sim(i_e, .)`` over each event
        item's ``width`` most similar items (the model's own ``similar_items``)."""
        k = min(width, self.n_model_items - 1)
        scores = np.zeros(self.n_model_items, np.float32)
        if k < 1:
            return scores
        ids, sims = self.model.similar_items(items, k=k)
        ok = ids >= 0
        np.add.at(scores, ids[ok], (weights[:, None] * np.maximum(sims, 0))[ok])
        return scores
