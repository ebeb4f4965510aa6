"""A fusion model served fast: each channel's candidates through that channel's own fast path.

:class:`~gemrec.fusion.fusion.Fusion` combines each channel's top ``n_candidates`` items. Scoring
one user through ``Fusion.score`` scores every channel over the whole catalogue; here a channel
whose scores split into a low-rank part plus an exact sparse part
(``ModelTags.low_rank_plus_sparse``, graphfilter) or are inner products of embeddings
(``tags.inner_product``, lightgcn) proposes its
candidates from an ANN index over its item vectors (:class:`~gemrec.models.ann.ItemIndex`),
re-scored exactly, and the other channels (sparse item-item or user-user products, popularity)
score as they always do. The fusion then combines the lists it would have computed itself
(:meth:`~gemrec.fusion.fusion.Fusion.fused_scores`), so below ``ann_threshold`` items the scores
are the model's own, and above it they differ only where the HNSW search misses one of a channel's
top items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec.fusion.fusion import Fusion
from gemrec.models.ann import ItemIndex
from gemrec.models.base import Recommender
from gemrec.models.popularity import Popularity

__all__ = ["FusionScorer"]


class FusionScorer:
    """``score`` and ``score_new`` of a :class:`~gemrec.fusion.fusion.Fusion`, channel by channel.

    Parameters
    ----------
    model : Fusion
        Fitted.
    ann_threshold : int
        A channel with item vectors and at least this many items proposes its candidates through
        a faiss HNSW index; below it, through an exact product (the model's own scores).
    search_width : float
        An HNSW search asks for ``search_width * n_candidates`` items (a wider search finds more
        of the true top items) and keeps the ``n_candidates`` best after exact re-scoring. On
        Gowalla's default fusion the served top 20 of known users overlap the model's own by
        99.1 % at 1.0 and 99.4 % at 1.5, which costs about 1 ms more CPU per list (of about 6;
        benchmarks/bench_score_cpu.py measures both).

    Notes
    -----
    Per channel ``c`` and user ``u`` (fitted, or given by an interaction row ``x`` for fold-in),
    the candidate list is the top ``N = n_candidates`` items of ``s_c(u, .)`` without the items
    the channel saw for ``u``:

    - low-rank plus sparse: ``s = q E^T + t`` with ``q = user_embeddings_[u]`` and ``t =
      sparse_scores(u)`` (``split_new(x)`` for fold-in); candidates are the HNSW neighbours of
      ``q`` and the top of ``t``, re-scored exactly (:meth:`ItemIndex.search`);
    - embeddings, where the scores are inner products
      (``tags.inner_product``): ``s = q E^T`` with ``q =
      user_embeddings_[u]``, or ``queries_new(x)`` for fold-in;
    - popularity: the catalogue ordered once, the user's items skipped;
    - any other channel: its own ``recommend``.
    """

    def __init__(self, model: Fusion, ann_threshold: int, *, search_width: float = 1.0) -> None:
        self.model = model
        n_items = model.n_items
        self.n_candidates = min(model.n_candidates, n_items)
        self.n_search = min(
            n_items, max(self.n_candidates, round(search_width * self.n_candidates))
        )
        self._indexes: list[ItemIndex | None] = []
        #: per channel whose scores do not depend on the user: its items by descending score, and
        #: the scores
        self._orders: list[tuple[np.ndarray, np.ndarray] | None] = []
        for ch in model.channels_:
            order = None
            if ch.tags.low_rank_plus_sparse or ch.tags.inner_product:
                vectors = np.asarray(ch.item_embeddings_, np.float32)  # type: ignore[attr-defined]
                self._indexes.append(ItemIndex(vectors, ann_threshold, bias=ch.tags.item_bias))
            else:
                self._indexes.append(None)
                if isinstance(ch, Popularity):
                    # ties to the lower id, as the top-k kernel breaks them
                    scores = np.asarray(ch.item_scores_, np.float32)
                    order = (np.argsort(-scores, kind="stable").astype(np.int32), scores)
            self._orders.append(order)

    @property
    def n_items(self) -> int:
        return self.model.n_items

    @property
    def ann(self) -> bool:
        """Whether some channel proposes through an HNSW index."""
        return any(ix is not None and ix.ann for ix in self._indexes)

    def score(self, users: Any) -> np.ndarray:
        """``model.score(users)``, shape (n, n_items) float32 (fitted users)."""
        users = np.asarray(users, np.int64).reshape(-1)
        rows = [self._lists(int(u), None) for u in users]
        return self.model.fused_scores(users, _stack(rows))

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """``model.score_new(user_items)``, shape (n, n_items) float32."""
        ui = sp.csr_matrix(user_items, dtype=np.float32)
        rows = [self._lists(None, ui[r]) for r in range(ui.shape[0])]
        return self.model.fused_scores(np.arange(ui.shape[0]), _stack(rows), ui)

    def _lists(
        self, user: int | None, row: sp.csr_matrix | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each channel's candidate list for one fitted ``user`` or one interaction ``row``."""
        out = []
        channels = zip(self.model.channels_, self._indexes, self._orders, strict=True)
        for ch, index, order in channels:
            if order is not None:
                out.append(self._popular(ch, order, user, row))
            elif index is None:
                if row is None:
                    out.append(ch.recommend(np.array([user]), self.n_candidates))
                else:
                    out.append(ch.recommend(np.arange(1), self.n_candidates, user_items=row))
            else:
                out.append(self._search(ch, index, user, row))
        return out

    def _popular(
        self,
        ch: Recommender,
        order: tuple[np.ndarray, np.ndarray],
        user: int | None,
        row: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A popularity channel's top-N: the global order without the user's items."""
        seen = self._seen(ch, user, row)
        items, scores = order
        head = items[: self.n_candidates + len(seen)]
        ids = head[~np.isin(head, seen)][: self.n_candidates]
        return _block(ids, scores[ids], self.n_candidates)

    @staticmethod
    def _seen(ch: Recommender, user: int | None, row: sp.csr_matrix | None) -> np.ndarray:
        """The items a channel excludes for a fitted ``user`` or an interaction ``row``."""
        if row is not None:
            out: np.ndarray = row.indices
            return out
        assert user is not None
        m = ch.interactions_
        seen: np.ndarray = m.indices[m.indptr[user] : m.indptr[user + 1]]
        return seen

    def _search(
        self, ch: Recommender, index: ItemIndex, user: int | None, row: sp.csr_matrix | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One channel's top-N through its index (class Notes), as a (1, N) list block."""
        model: Any = ch
        extra = None
        seen = self._seen(ch, user, row)
        if row is None:
            q = np.asarray(model.user_embeddings_[user], np.float32)
            if ch.tags.low_rank_plus_sparse:
                extra = model.sparse_scores(np.array([user]))[0]
        else:
            if ch.tags.low_rank_plus_sparse:
                queries, sparse = model.split_new(row)
                q, extra = queries[0], sparse[0]
            else:
                q = model.queries_new(row)[0]
        excluded = np.zeros(index.n_items, bool)
        excluded[seen] = True
        ids, vals = index.search(q, self.n_search, excluded, extra=extra)
        n = self.n_candidates
        return _block(ids[:n], vals[:n], n)


def _block(ids: np.ndarray, scores: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One user's ranked list as a (1, width) list block, padded with -1 / -inf."""
    out_ids = np.full((1, width), -1, np.int32)
    out_scores = np.full((1, width), -np.inf, np.float32)
    out_ids[0, : len(ids)] = ids
    out_scores[0, : len(ids)] = scores
    return out_ids, out_scores


def _stack(
    rows: list[list[tuple[np.ndarray, np.ndarray]]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-user channel lists -> per-channel list blocks over the users."""
    if not rows:
        return []
    return [
        (np.vstack([r[c][0] for r in rows]), np.vstack([r[c][1] for r in rows]))
        for c in range(len(rows[0]))
    ]
