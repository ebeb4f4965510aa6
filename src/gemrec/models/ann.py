"""Approximate top-k: candidates from a faiss index over item factors, re-scored exactly.

Two users of one index. The service (:class:`ItemIndex`, one query at a time) searches with business
filters applied *after* retrieval; to still return ``k`` items whenever ``k`` eligible items exist,
it over-fetches and retries with a larger fetch until it has enough or has looked at every item
(then it is exact). Batch recommendation (:class:`ANNRecommender`, ``gemrec recommend --ann``)
searches blocks of users at once with every core, re-scores the candidates exactly with the
wrapped model's own score and masks seen items; :func:`ann_recall` measures the approximation.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from gemrec._optional import require
from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.models._ann_kernels import _lookup, sparse_candidates
from gemrec.models.base import Recommender, _as_ids
from gemrec.ranking import topk, topk_pairs

__all__ = [
    "AUTO_ANN_ITEMS",
    "ANNRecommender",
    "ItemIndex",
    "ann_recall",
    "ann_supported",
    "list_recall",
    "select_top",
]


def select_top(
    scores: np.ndarray,
    k: int,
    excluded: np.ndarray | None = None,
    categories: np.ndarray | None = None,
    cap: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of one score vector with exclusions and a per-category cap.

    Parameters
    ----------
    scores : ndarray of float32, shape (n,)
    k : int
    excluded : ndarray of bool, shape (n,), optional
        True where an item must not be returned.
    categories : ndarray of int32, shape (n,), optional
        Category code per item (-1: none, never capped).
    cap : int, optional
        At most ``cap`` items of one category.

    Returns
    -------
    ids : ndarray of int64, shape (<= k,)
    scores : ndarray of float32, same shape; sorted descending, ties broken by lower id
        (:func:`gemrec.ranking.topk`).
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    n = len(s)
    if excluded is not None:
        s[excluded[:n]] = -np.inf
    fetch = min(n, k if cap is None else 4 * k)
    while fetch > 0:
        top, _ = topk(s[None, :], fetch)
        cand = top[0][top[0] >= 0].astype(np.int64)
        picked = _cap(cand, k, categories, cap)
        if len(picked) >= k or fetch >= n or len(cand) < fetch:
            return picked, s[picked]
        fetch = min(n, fetch * 4)
    return np.zeros(0, np.int64), np.zeros(0, np.float32)


def _cap(cand: np.ndarray, k: int, categories: np.ndarray | None, cap: int | None) -> np.ndarray:
    if cap is None or categories is None:
        return cand[:k]
    counts: dict[int, int] = {}
    out = []
    for i in cand.tolist():
        c = int(categories[i]) if i < len(categories) else -1
        if c >= 0:
            if counts.get(c, 0) >= cap:
                continue
            counts[c] = counts.get(c, 0) + 1
        out.append(i)
        if len(out) == k:
            break
    return np.asarray(out, dtype=np.int64)


class ItemIndex:
    """Maximum-inner-product search over item vectors that can grow (new items).

    Parameters
    ----------
    vectors : ndarray of float32, shape (n_items, d)
    ann_threshold : int
        With ``n_items >= ann_threshold`` a faiss index (inner product) answers queries;
        otherwise an exact matrix-vector product does.
    hnsw_m : int
        HNSW graph degree.
    kind : {"hnsw", "ivf"}
        ``"hnsw"``: ``IndexHNSWFlat`` (a proximity graph; ``efSearch`` follows the fetch size).
        ``"ivf"``: ``IndexIVFFlat`` (``nlist`` k-means cells, ``nprobe`` of them scanned per query).
    ef_construction : int
        HNSW build-time beam width.
    ef_search : int
        Smallest HNSW search beam width (``efSearch``); a search fetching more candidates
        widens it to their number.
    nlist : int, optional
        IVF cells; default ``4 sqrt(n_items)`` (at most ``n_items / 39``).
    nprobe : int
        IVF cells scanned per query.
    query_threads : int or None
        OpenMP threads faiss uses after the build (it builds with every core): 1 for the
        service, where one query gains nothing from threads; None leaves faiss' setting (batch
        search sets its own, :meth:`search_batch`).
    bias : bool
        The last coordinate of each item vector is an item bias (``ModelTags.item_bias``): the
        faiss index holds it shifted to start at 0, and the items with the largest
        ``q[-1] * bias`` join every query's candidates (see Notes).

    Notes
    -----
    score(u, i) = <q_u, v_i>. The ANN path is approximate; the over-fetch loop of :meth:`search`
    falls back to exact scoring once the fetch would cover half of the catalogue.

    A bias coordinate gets two things. An inner-product proximity graph leads a search towards
    items of large norm, and item2vec's log prior is large and negative for rare items: indexed
    as it is, the search proposed rare items and found about a tenth of the exact top 20. The
    index holds ``bias - min(bias)`` instead (at build), which adds the same ``q[-1] * min(bias)``
    to every item's score for a query, so its order is unchanged while popular items get the
    large norms; and the items of largest ``q[-1] * bias`` join the candidates, since an item can
    win by its bias with an unremarkable vector. Every candidate is scored exactly.

    A faiss index cannot move a vector in place, so :meth:`set_vector` inserts the item again as a
    new node at its new place and retires the old one: each node maps to an item, each item to its
    current node, and a search drops nodes that are no longer their item's current one (retired
    nodes still help an HNSW graph's navigation; each costs one vector of memory).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        ann_threshold: int,
        *,
        hnsw_m: int = 32,
        kind: Literal["hnsw", "ivf"] = "hnsw",
        ef_construction: int = 40,
        nlist: int | None = None,
        nprobe: int = 32,
        query_threads: int | None = 1,
        bias: bool = False,
        ef_search: int = 64,
    ) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.bias = bool(bias) and vectors.ndim == 2 and vectors.shape[1] >= 2
        #: items by bias, descending and ascending (built on first use, dropped on changes)
        self._order: tuple[np.ndarray, np.ndarray] | None = None
        self._bias_floor = 0.0
        if kind not in ("hnsw", "ivf"):
            raise ParameterError.invalid("kind", "'hnsw' or 'ivf'", kind)
        self._lock = threading.Lock()
        self._n = len(vectors)
        self._vecs = vectors.copy()
        self.dim = int(vectors.shape[1])
        self.ann = self._n >= ann_threshold
        self.kind = kind
        self.nprobe = int(nprobe)
        self.ef_search = int(ef_search)
        self._index: Any = None
        #: graph node -> item, and item -> its current node (see Notes)
        self._node_item = np.arange(self._n, dtype=np.int64)
        self._item_node = np.arange(self._n, dtype=np.int64)
        if self.ann:
            faiss = require(
                "faiss",
                f"approximate retrieval over {self._n} items (at least ann_threshold="
                f"{ann_threshold}; raise it for exact search)",
            )
            self._bias_floor = float(self._vecs[:, -1].min()) if self.bias and self._n else 0.0
            if kind == "hnsw":
                index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = int(ef_construction)
            else:
                # faiss' k-means wants at least 39 points per cell
                cells = int(nlist) if nlist else min(int(4 * np.sqrt(self._n)), self._n // 39)
                cells = max(1, min(cells, self._n))
                quantizer = faiss.IndexFlatIP(self.dim)
                index = faiss.IndexIVFFlat(quantizer, self.dim, cells, faiss.METRIC_INNER_PRODUCT)
                # k-means on a seeded sample: 64 points per cell is ample and bounds the cost
                sample = np.random.default_rng(0).permutation(self._n)[: 64 * cells]
                index.train(self._indexed(self._vecs[np.sort(sample)]))
                self._quantizer = quantizer  # the index refers to it; keep it alive
            index.add(self._indexed(self._vecs))  # built with every core ...
            if query_threads is not None:
                # ... queried with one in the service: for a single query threads only add overhead
                faiss.omp_set_num_threads(int(query_threads))
            self._index = index

    @property
    def n_items(self) -> int:
        return self._n

    @property
    def vectors(self) -> np.ndarray:
        """Item vectors, shape (n_items, d) (a view; do not modify)."""
        return self._vecs[: self._n]

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append item vectors; returns their new internal ids."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            start = self._n
            if start + len(vectors) > len(self._vecs):
                grown = np.zeros(
                    (max(2 * len(self._vecs), start + len(vectors)), self.dim), np.float32
                )
                grown[:start] = self._vecs[:start]
                self._vecs = grown
            self._vecs[start : start + len(vectors)] = vectors
            self._order = None
            items = np.arange(start, start + len(vectors))
            if self._index is not None:
                self._item_node = np.concatenate([self._item_node, self._graph_add(vectors, items)])
            self._n = start + len(vectors)
        return items

    def set_vector(self, item: int, vector: np.ndarray) -> None:
        """Replace one item's vector, in exact scores and in the HNSW graph (class Notes)."""
        vector = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            self._vecs[item] = vector[0]
            self._order = None
            if self._index is not None:
                (node,) = self._graph_add(vector, np.array([item]))
                self._item_node[item] = node

    def _indexed(self, vectors: np.ndarray) -> np.ndarray:
        """Item vectors as the faiss index holds them (a bias shifted, class Notes)."""
        if not self.bias:
            return np.ascontiguousarray(vectors)
        out = np.array(vectors, dtype=np.float32)
        out[:, -1] -= np.float32(self._bias_floor)
        return out

    def _bias_order(self, sign: float) -> np.ndarray:
        """Items by ``sign * bias``, best first (under the lock; kept until a vector changes)."""
        if self._order is None or len(self._order[0]) != self._n:
            desc = np.argsort(-self.vectors[:, -1], kind="stable").astype(np.int64)
            self._order = (desc, desc[::-1].copy())
        return self._order[0] if sign > 0 else self._order[1]

    def _graph_add(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Add graph nodes for ``items`` (under the lock); returns their node ids."""
        assert self._index is not None
        start = int(self._index.ntotal)
        self._index.add(self._indexed(vectors))
        self._node_item = np.concatenate([self._node_item, items.astype(np.int64)])
        return np.arange(start, start + len(vectors), dtype=np.int64)

    def scores(self, query: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Exact scores of all (or the given) items for one query vector."""
        v = self.vectors if items is None else self.vectors[items]
        return v @ np.asarray(query, dtype=np.float32)

    def search(
        self,
        query: np.ndarray,
        k: int,
        excluded: np.ndarray | None = None,
        categories: np.ndarray | None = None,
        cap: int | None = None,
        extra: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for one query, after filters; see :func:`select_top` for the arguments.

        ``extra``: scores added to the inner products, shape (n_items,) (a model's sparse part,
        see ``ModelTags.low_rank_plus_sparse``); its own top items join the ANN's candidates.
        """
        n = self._n
        if self._index is None:
            return select_top(self._scores_plus(query, extra), k, excluded, categories, cap)
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        fetch = 2 * k + 16
        while fetch < n // 2:
            params = self._search_params(fetch)
            with self._lock:  # a concurrent add would change the graph under the search
                _, nodes = self._index.search(q, fetch, params=params)
                node_item, item_node = self._node_item, self._item_node
                sign = float(q[0, -1]) if self.bias else 0.0
                order = self._bias_order(sign) if sign else None
            nodes = nodes[0][nodes[0] >= 0].astype(np.int64)
            cand = node_item[nodes]
            cand = cand[item_node[cand] == nodes]  # retired nodes of moved items
            if order is not None:  # the best items by bias join the candidates
                order = order[order < n] if len(order) > n else order  # items added meanwhile
                cand = np.union1d(cand, _first_eligible(order, fetch, excluded))
            if extra is not None:
                best = extra if excluded is None else np.where(excluded[:n], -np.inf, extra)
                top = np.argpartition(-best, fetch)[:fetch]
                cand = np.union1d(cand, top[np.isfinite(best[top])])
            if excluded is not None:
                cand = cand[~excluded[cand]]
            # the HNSW ranking is approximate: re-score the candidates exactly and sort
            sc = self.vectors[cand] @ q[0]
            if extra is not None:
                sc += extra[cand]
            ranked, _ = topk_pairs(np.zeros(len(cand)), cand, sc, 1, max(len(cand), 1))
            cand = ranked[0][ranked[0] >= 0].astype(np.int64)
            picked = _cap(cand, k, categories, cap)
            if len(picked) >= k:
                vals = self.vectors[picked] @ q[0]
                if extra is not None:
                    vals += extra[picked]
                return picked, vals.astype(np.float32)
            fetch *= 4
        return select_top(self._scores_plus(query, extra), k, excluded, categories, cap)

    def _search_params(self, fetch: int) -> Any:
        """faiss search parameters for a fetch of ``fetch`` candidates."""
        import faiss

        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))  # type: ignore[attr-defined]
        return faiss.SearchParametersIVF(nprobe=self.nprobe)  # type: ignore[call-arg]

    def search_batch(
        self, queries: np.ndarray, fetch: int, *, threads: int | None = None
    ) -> np.ndarray:
        """The ``fetch`` nearest items (inner product) of each query, unfiltered and unranked.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, d)
        fetch : int
            Candidates per query.
        threads : int, optional
            OpenMP threads for this search (default: every core), restored afterwards.

        Returns
        -------
        ndarray of int64, shape (n, fetch), or (n, 2 fetch) with a bias coordinate
            Item ids, -1 where the index returned fewer (or a retired node); with a bias, the
            ``fetch`` items of largest ``q[-1] * bias`` follow (an item may appear twice).
            Without an index (``ann`` False) every row is every item.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if self._index is None or fetch >= self._n:
            return np.broadcast_to(np.arange(self._n, dtype=np.int64), (len(q), self._n)).copy()
        import faiss

        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(int(threads) if threads else (os.cpu_count() or 1))
        try:
            with self._lock:
                _, nodes = self._index.search(q, int(fetch), params=self._search_params(fetch))
                node_item, item_node = self._node_item, self._item_node
                orders = (self._bias_order(1.0), self._bias_order(-1.0)) if self.bias else None
        finally:
            faiss.omp_set_num_threads(before)
        nodes = nodes.astype(np.int64)
        items = np.where(nodes >= 0, node_item[np.maximum(nodes, 0)], -1)
        current = (nodes >= 0) & (item_node[np.maximum(items, 0)] == nodes)
        found = np.where(current, items, -1)
        if orders is None:
            return found
        # the best items by q[-1] * bias, by the sign of q[-1] (none where it is 0)
        by_bias = np.full((len(q), int(fetch)), -1, np.int64)
        by_bias[q[:, -1] > 0] = orders[0][: int(fetch)]
        by_bias[q[:, -1] < 0] = orders[1][: int(fetch)]
        return np.hstack([found, by_bias])

    def _scores_plus(self, query: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        scores = self.scores(query)
        return scores if extra is None else scores + extra


def _first_eligible(order: np.ndarray, count: int, excluded: np.ndarray | None) -> np.ndarray:
    """The first ``count`` items of ``order`` that ``excluded`` does not exclude."""
    if excluded is None:
        return order[:count]
    take = count
    while True:
        head = order[:take]
        ok: np.ndarray = head[~excluded[head]]
        if len(ok) >= count or take >= len(order):
            return ok[:count]
        take *= 4


#: catalogue size from which ``gemrec recommend`` uses :class:`ANNRecommender` unless told not to
AUTO_ANN_ITEMS = 500_000


def ann_supported(model: Recommender | type[Recommender]) -> bool:
    """Whether :class:`ANNRecommender` can wrap ``model``: its scores are an inner product of
    its embeddings (``tags.inner_product``), or that plus a sparse part
    (``tags.low_rank_plus_sparse``)."""
    return bool(model.tags.inner_product or model.tags.low_rank_plus_sparse)


class ANNRecommender(Recommender):
    """A recommender whose top-k come from an ANN index over a wrapped model's item factors.

    For each block of users the index returns ``n_candidates`` items by inner product with the
    user's embedding (plus about as many as the user has seen, up to ``4 n_candidates``, since
    seen items are dropped afterwards); a model with a sparse part (graphfilter) adds the top
    ``n_candidates`` items of that part. Every candidate is then scored exactly (the wrapped
    model's score), seen and excluded items are dropped and the top ``k`` kept with
    :func:`gemrec.ranking.topk`. A user left with fewer than ``k`` candidates is scored exactly
    over the whole catalogue.

    Parameters
    ----------
    model : Recommender
        An embedding model with ``tags.inner_product`` or a ``tags.low_rank_plus_sparse`` model.
    n_candidates : int
        Candidates per user from the index (and from the sparse part). ``>= n_items``: every item,
        the lists of ``model`` (up to float summation order).
    index : {"hnsw", "ivf"}
        The faiss index (:class:`ItemIndex`).
    hnsw_m, ef_construction, nlist, nprobe
        As for :class:`ItemIndex`.
    sparse_prune : int or None
        A sparse part ``X @ P`` (graphfilter: the user's co-users ``X`` times their items ``P``)
        proposes its candidates from the ``sparse_prune`` largest entries of each user's row of
        ``X`` only; every candidate's value is still exact (read per item column). None: from
        the whole row (its cost grows with everything the user's items reach).
    threads : int, optional
        Threads of the faiss search (default: every core).

    Attributes
    ----------
    index_ : ItemIndex
        Over ``model.item_embeddings_``.
    build_seconds_ : float
        Time the index took to build.

    Examples
    --------
    >>> import numpy as np
    >>> from gemrec.data.interactions import Interactions
    >>> from gemrec.models.svd import PureSVD
    >>> rng = np.random.default_rng(0)
    >>> inter = Interactions.from_arrays(rng.integers(0, 50, 600), rng.integers(0, 40, 600))
    >>> ann = ANNRecommender(model=PureSVD(factors=8), n_candidates=40).fit(inter)
    >>> exact, _ = ann.model.recommend(np.arange(5), k=5)
    >>> bool((ann.recommend(np.arange(5), k=5)[0] == exact).all())
    True
    """

    name: ClassVar[str] = "ann"
    #: users whose candidates are gathered and scored at once (candidates x dim floats each)
    batch_size: ClassVar[int] = 1024

    def __init__(
        self,
        *,
        model: Recommender,
        n_candidates: int = 200,
        index: Literal["hnsw", "ivf"] = "hnsw",
        hnsw_m: int = 32,
        ef_construction: int = 40,
        nlist: int | None = None,
        nprobe: int = 32,
        sparse_prune: int | None = 256,
        threads: int | None = None,
    ) -> None:
        self.model = model
        self.n_candidates = n_candidates
        self.index = index
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.nlist = nlist
        self.nprobe = nprobe
        self.sparse_prune = sparse_prune
        self.threads = threads

    def _validate_params(self) -> None:
        if not isinstance(self.model, Recommender) or not ann_supported(self.model):
            raise ParameterError.invalid(
                "model",
                "a model whose scores are an inner product of its embeddings, alone or plus a "
                "sparse part (tags.inner_product or tags.low_rank_plus_sparse: mf, lightgcn, svd, "
                "item2vec, content, graphfilter)",
                type(self.model).__name__,
            )
        n = self.n_candidates
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ParameterError.invalid("n_candidates", "a positive integer", n)
        if self.index not in ("hnsw", "ivf"):
            raise ParameterError.invalid("index", "'hnsw' or 'ivf'", self.index)
        prune = self.sparse_prune
        if prune is not None and (
            isinstance(prune, bool) or not isinstance(prune, int | np.integer) or prune < 1
        ):
            raise ParameterError.invalid("sparse_prune", "a positive integer or None", prune)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        self.model.fit(interactions, valid=valid)
        self._build()

    def build(self) -> Self:
        """Build the index over the already fitted ``model`` (instead of :meth:`fit`)."""
        self._validate_params()
        self.model._check_fitted()
        self.interactions_ = self.model.interactions_
        self._build()
        return self

    def _build(self) -> None:
        start = time.perf_counter()
        emb = np.asarray(self.model.item_embeddings_, dtype=np.float32)  # type: ignore[attr-defined]
        self.index_ = ItemIndex(
            emb,
            0,
            bias=self.model.tags.item_bias,
            hnsw_m=int(self.hnsw_m),
            kind=self.index,
            ef_construction=int(self.ef_construction),
            nlist=self.nlist,
            nprobe=int(self.nprobe),
            query_threads=None,
        )
        self._sparse_transpose: sp.csr_matrix | None = None
        self.build_seconds_ = time.perf_counter() - start

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.score(users), dtype=np.float32)

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.model.score_new(user_items), dtype=np.float32)

    def save(self, path: str | Path) -> Path:
        raise GemrecError(
            "an ANNRecommender is not saved: save its model and wrap the loaded model again "
            "(the index is rebuilt from the item factors)"
        )

    def recommend(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: sp.csr_matrix | None = None,
        candidates: Any = None,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k through the index; arguments and results as :meth:`Recommender.recommend`.

        ``candidates`` and ``user_items`` are served by the wrapped model exactly.
        """
        self._check_fitted()
        if candidates is not None or user_items is not None:
            return self.model.recommend(
                users,
                k,
                exclude_seen=exclude_seen,
                exclude=exclude,
                candidates=candidates,
                user_items=user_items,
            )
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ParameterError.invalid("k", "a positive integer", k)
        users = _as_ids(users, "users", self.n_users)
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(users), self.n_items):
                raise ParameterError.invalid(
                    "exclude",
                    f"a sparse matrix of shape ({len(users)}, {self.n_items})",
                    exclude.shape,
                )
        out_ids = np.full((len(users), int(k)), -1, np.int32)
        out_scores = np.full((len(users), int(k)), -np.inf, np.float32)
        rows = int(self.batch_size)
        for start in range(0, len(users), rows):
            block = users[start : start + rows]
            drop = _drop_matrix(
                self.interactions_[block] if exclude_seen else None,
                None if exclude is None else exclude[start : start + len(block)],
                (len(block), self.n_items),
            )
            ids, vals = self._rank_block(block, int(k), drop)
            out_ids[start : start + len(block)] = ids
            out_scores[start : start + len(block)] = vals
            # too few candidates survived the filters: rank those users exactly
            short = np.flatnonzero((ids < 0).any(axis=1))
            if len(short):
                exact_ids, exact_vals = self.model.recommend(
                    block[short],
                    int(k),
                    exclude_seen=exclude_seen,
                    exclude=None if exclude is None else exclude[start + short],
                )
                out_ids[start + short] = exact_ids
                out_scores[start + short] = exact_vals
        return out_ids, out_scores

    def _rank_block(
        self, users: np.ndarray, k: int, drop: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of one block from its candidates; ``drop``: items never returned, per row."""
        model, n_items = self.model, self.n_items
        queries = np.asarray(model.user_embeddings_[users], dtype=np.float32)  # type: ignore[attr-defined]
        cand = self._search(queries, np.diff(drop.indptr))
        values = np.zeros(cand.shape, np.float32)
        if model.tags.low_rank_plus_sparse:
            # the sparse part's own top joins the candidates; both read in one pass over it
            X, P = model.sparse_operands(users)  # type: ignore[attr-defined]
            prune = self.sparse_prune
            if prune is not None and int(np.diff(X.indptr).max(initial=0)) <= prune:
                prune = None  # every row is read whole: the values come from the same pass
            if prune is not None and self._sparse_transpose is None:
                self._sparse_transpose = sp.csr_matrix(P.T, dtype=np.float32)
            top, top_values, values = sparse_candidates(
                X, P, drop, cand, min(int(self.n_candidates), n_items),
                prune=prune, PT=self._sparse_transpose,
            )  # fmt: skip
            cand = np.concatenate([cand, top], axis=1)
            values = np.concatenate([values, top_values], axis=1)
        order = np.argsort(cand, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1  # duplicates (rows stay ascending in id)
        valid = cand >= 0
        safe = np.where(valid, cand, 0)
        emb = model.item_embeddings_  # type: ignore[attr-defined]
        scores = np.einsum("nd,ncd->nc", queries, emb[safe], dtype=np.float32) + values
        scores[~valid | _lookup(drop, safe)[1]] = -np.inf
        pos, vals = topk(scores, k)
        ids = np.take_along_axis(cand, np.maximum(pos, 0).astype(np.int64), axis=1)
        return np.where(pos >= 0, ids, -1).astype(np.int32), vals

    def _search(self, queries: np.ndarray, n_dropped: np.ndarray) -> np.ndarray:
        """``n_candidates`` ids per query plus as many as the user's dropped items (up to
        ``4 n_candidates``), rounded up to a power of two: one search per such group, so a few
        heavy users do not widen every user's search. Shape (n, widest fetch), -1 padded."""
        n_cand, n_items = int(self.n_candidates), self.n_items
        extra = np.minimum(n_dropped, 4 * n_cand)
        bucket = np.where(extra > 0, 2 ** np.ceil(np.log2(np.maximum(extra, 1))), 0)
        fetch = np.minimum(n_items, n_cand + bucket.astype(np.int64))
        width = (int(fetch.max()) if len(queries) else 0) * (2 if self.index_.bias else 1)
        out = np.full((len(queries), width), -1, np.int64)
        for f in np.unique(fetch):
            rows = np.flatnonzero(fetch == f)
            found = self.index_.search_batch(queries[rows], int(f), threads=self.threads)
            out[rows, : found.shape[1]] = found
        return out


def _drop_matrix(
    seen: sp.csr_matrix | None, exclude: sp.csr_matrix | None, shape: tuple[int, int]
) -> sp.csr_matrix:
    """The union of ``seen`` and ``exclude`` as a 0/1 matrix with sorted indices."""
    out = sp.csr_matrix(shape, dtype=np.int8)
    for m in (seen, exclude):
        if m is not None:
            out = out + (sp.csr_matrix(m) != 0).astype(np.int8)
    out = sp.csr_matrix(out)
    out.sort_indices()
    return out


def ann_recall(
    ann: ANNRecommender,
    users: np.ndarray,
    k: int = 20,
    *,
    exclude_seen: bool = True,
    exclude: sp.csr_matrix | None = None,
) -> float:
    """Mean recall of the ANN top-``k`` against the wrapped model's exact top-``k``.

    Parameters
    ----------
    ann : ANNRecommender
    users : ndarray of int, shape (n,)
        Internal ids (a sample: exact scoring costs ``n x n_items``).
    k : int
    exclude_seen, exclude
        As for :meth:`Recommender.recommend`, applied to both lists.

    Returns
    -------
    float
        ``mean_u |ann_u & exact_u| / |exact_u|`` over users with a non-empty exact list (1.0 when
        there are none).
    """
    exact, _ = ann.model.recommend(users, k, exclude_seen=exclude_seen, exclude=exclude)
    approx, _ = ann.recommend(users, k, exclude_seen=exclude_seen, exclude=exclude)
    return list_recall(approx, exact)


def list_recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of ``|approx_row & exact_row| / |exact_row|`` (ids; -1 is padding).

    Parameters
    ----------
    approx, exact : ndarray of int, shape (n, k)
        Lists of the same users, e.g. from an :class:`ANNRecommender` and its wrapped model.

    Returns
    -------
    float
        Rows whose exact list is empty are left out; 1.0 when every row is.

    Examples
    --------
    >>> list_recall(np.array([[1, 2, -1]]), np.array([[2, 3, 1]]))
    0.6666666666666666
    """
    hits, sizes = [], []
    for e, a in zip(exact, approx, strict=True):
        e = e[e >= 0]
        if len(e):
            hits.append(len(np.intersect1d(e, a[a >= 0])))
            sizes.append(len(e))
    if not sizes:
        return 1.0
    return float(np.mean(np.asarray(hits) / np.asarray(sizes)))
