"""Top-k retrieval with business filters: exact for small catalogues, faiss HNSW above a threshold.

Filters (items already seen, a category, the blocklist, unavailable items) are applied *after*
retrieval; to still return ``k`` items whenever ``k`` eligible items exist, the search over-fetches
and retries with a larger fetch until it has enough or has looked at every item (then it is exact).
"""

from __future__ import annotations

import threading

import numpy as np

from gemrec._optional import require
from gemrec.ranking import topk, topk_pairs

__all__ = ["ItemIndex", "select_top"]


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
        With ``n_items >= ann_threshold`` a faiss ``IndexHNSWFlat`` (inner product) answers queries;
        otherwise an exact matrix-vector product does.
    hnsw_m : int
        HNSW graph degree.

    Notes
    -----
    score(u, i) = <q_u, v_i>. The ANN path is approximate; the over-fetch loop of :meth:`search`
    falls back to exact scoring once the fetch would cover half of the catalogue.

    A faiss HNSW graph cannot move or remove a node, so :meth:`set_vector` inserts the item again
    as a new node at its new place and retires the old one: each graph node maps to an item, each
    item to its current node, and a search drops nodes that are no longer their item's current one
    (retired nodes still help the graph's navigation; each costs one vector of memory).
    """

    def __init__(self, vectors: np.ndarray, ann_threshold: int, *, hnsw_m: int = 32) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._lock = threading.Lock()
        self._n = len(vectors)
        self._vecs = vectors.copy()
        self.dim = int(vectors.shape[1])
        self.ann = self._n >= ann_threshold
        self._index = None
        #: graph node -> item, and item -> its current node (see Notes)
        self._node_item = np.arange(self._n, dtype=np.int64)
        self._item_node = np.arange(self._n, dtype=np.int64)
        if self.ann:
            faiss = require(
                "faiss",
                f"approximate retrieval over {self._n} items (at least ann_threshold="
                f"{ann_threshold}; raise it for exact search)",
            )
            index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 40
            index.add(self._vecs)  # built with every core ...
            faiss.omp_set_num_threads(
                1
            )  # ... queried with one: for a single query threads only add overhead
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
            if self._index is not None:
                (node,) = self._graph_add(vector, np.array([item]))
                self._item_node[item] = node

    def _graph_add(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Add graph nodes for ``items`` (under the lock); returns their node ids."""
        assert self._index is not None
        start = int(self._index.ntotal)
        self._index.add(vectors)
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
        import faiss

        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        fetch = 2 * k + 16
        while fetch < n // 2:
            params = faiss.SearchParametersHNSW(efSearch=max(64, fetch))  # type: ignore[attr-defined]
            with self._lock:  # a concurrent add would change the graph under the search
                _, nodes = self._index.search(q, fetch, params=params)
                node_item, item_node = self._node_item, self._item_node
            nodes = nodes[0][nodes[0] >= 0].astype(np.int64)
            cand = node_item[nodes]
            cand = cand[item_node[cand] == nodes]  # retired nodes of moved items
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

    def _scores_plus(self, query: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        scores = self.scores(query)
        return scores if extra is None else scores + extra
