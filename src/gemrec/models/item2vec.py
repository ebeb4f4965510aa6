"""EGES-style item embeddings: weighted random walks, skip-gram, side-information fusion.

The model follows Wang et al., *Billion-scale Commodity Embedding for E-commerce Recommendation in
Alibaba* (KDD 2018): an item-item graph is built from co-behaviour, weighted random walks over it
become "sentences", a skip-gram with negative sampling learns from them, and each item's vector is
an attention-weighted sum of its own embedding and the embeddings of its side information
(category, brand, price bucket, ...). A brand-new item described only by side information gets a
vector from the side-information embeddings alone (cold start), so it can be recommended and has
similar items.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import DataError, GemrecError, ParameterError
from gemrec.models.base import EmbeddingRecommender, ModelTags, State
from gemrec.ranking import topk

__all__ = [
    "Item2Vec",
    "cooccurrence_hops",
    "random_walks",
    "sequence_graph",
    "skipgram_pairs",
]

#: columns of an item table that identify the item rather than describe it
_ID_COLUMNS = ("item", "item_id")


# ===================================================================== graph and walks
def sequence_graph(
    interactions: Interactions, *, session_gap_hours: float | None = None, directed: bool = False
) -> sp.csr_matrix:
    """Item-item graph of consecutive items in each user's time-ordered history.

    Parameters
    ----------
    interactions : Interactions
        Must carry ``timestamps``.
    session_gap_hours : float or None
        Two consecutive items are linked only when their timestamps differ by at most this many
        hours (a session boundary otherwise). None links all consecutive items.
    directed : bool
        Keep the edge direction ``earlier -> later``; otherwise the graph is symmetrised.

    Returns
    -------
    csr_matrix of float32, shape (n_items, n_items)
        ``G[i, j]`` = number of times ``j`` followed ``i`` (plus the reverse when undirected);
        no self-loops.
    """
    ts = interactions.timestamps
    if ts is None:
        raise ParameterError("a sequence graph needs Interactions.timestamps; none are present")
    ts = sp.csr_matrix(ts)
    n_items = interactions.n_items
    rows = np.repeat(np.arange(ts.shape[0], dtype=np.int64), np.diff(ts.indptr))
    t = ts.data.astype(np.float64)
    items = ts.indices.astype(np.int64)
    keep = np.isfinite(t)
    rows, t, items = rows[keep], t[keep], items[keep]
    order = np.lexsort((items, t, rows))
    rows, t, items = rows[order], t[order], items[order]
    same = rows[1:] == rows[:-1]
    if session_gap_hours is not None:
        same &= (t[1:] - t[:-1]) <= float(session_gap_hours) * 3600.0
    src, dst = items[:-1][same], items[1:][same]
    ne = src != dst
    src, dst = src[ne], dst[ne]
    g = sp.csr_matrix(
        (np.ones(len(src), np.float32), (src, dst)), shape=(n_items, n_items), dtype=np.float32
    )
    g.sum_duplicates()
    if not directed:
        g = (g + g.T).tocsr()
    g.sort_indices()
    return g.astype(np.float32)


def cooccurrence_hops(interactions: Interactions) -> list[sp.csr_matrix]:
    """The two hops (item -> user -> item) of a walk on the co-occurrence graph.

    Returns
    -------
    [X^T, X] : list of csr_matrix, shapes (n_items, n_users) and (n_users, n_items)

    Notes
    -----
    One item-to-item step of :func:`random_walks` over these hops moves from ``i`` to ``j`` with
    probability ``P[i, j] = sum_u (x_ui / d_i) (x_uj / d_u)`` with ``d_i = sum_u x_ui`` and
    ``d_u = sum_j x_uj``, i.e. a walk on the weighted co-occurrence graph
    ``C = X^T D_u^{-1} X`` (row-normalised), without ever building the n_items x n_items ``C``.
    """
    x = sp.csr_matrix(interactions.matrix, dtype=np.float32)
    x.eliminate_zeros()
    return [x.T.tocsr(), x]


@dataclass(frozen=True)
class _Sampler:
    """Row-wise inverse-CDF sampler over a CSR matrix (all rows at once)."""

    indptr: np.ndarray
    indices: np.ndarray
    cum: np.ndarray  # row r's entries hold r + (cumulative share within the row), last = r + 1

    @classmethod
    def of(cls, m: sp.csr_matrix) -> _Sampler:
        m = sp.csr_matrix(m, dtype=np.float64)
        m.eliminate_zeros()
        if m.nnz and m.data.min() < 0:
            raise ParameterError("random-walk graph has negative edge weights")
        n = m.shape[0]
        deg = np.diff(m.indptr)
        rows = np.repeat(np.arange(n, dtype=np.float64), deg)
        cs = np.cumsum(m.data)
        before = np.concatenate([[0.0], cs])[m.indptr[:-1]]  # cumulative weight before each row
        total = np.add.reduceat(m.data, m.indptr[:-1][deg > 0]) if m.nnz else np.zeros(0)
        row_total = np.zeros(n)
        row_total[deg > 0] = total
        share = (cs - np.repeat(before, deg)) / np.repeat(
            np.where(row_total > 0, row_total, 1.0), deg
        )
        cum = rows + np.minimum(share, 1.0)
        last = m.indptr[1:][deg > 0] - 1
        cum[last] = rows[last] + 1.0
        return cls(m.indptr.astype(np.int64), m.indices.astype(np.int64), cum)

    def step(self, nodes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One weighted step from each node; -1 where the node is -1 or has no out-edges."""
        out = np.full(len(nodes), -1, dtype=np.int64)
        alive = nodes >= 0
        alive[alive] = self.indptr[nodes[alive] + 1] > self.indptr[nodes[alive]]
        c = nodes[alive]
        u = rng.random(len(c))
        k = np.searchsorted(self.cum, c + u, side="right")
        # c + u can round up to c + 1 for u close to 1: clamp into the row
        k = np.clip(k, self.indptr[c], self.indptr[c + 1] - 1)
        out[alive] = self.indices[k]
        return out


def random_walks(
    hops: Sequence[sp.csr_matrix],
    starts: np.ndarray,
    length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Weighted random walks, all walkers advanced together.

    Parameters
    ----------
    hops : sequence of csr_matrix
        One item-to-item step applies every hop in turn, e.g. ``[G]`` for an item graph or
        ``[X^T, X]`` (:func:`cooccurrence_hops`) for item -> user -> item. Each row is sampled in
        proportion to its stored weights.
    starts : ndarray of int, shape (n_walks,)
        Start items.
    length : int
        Items per walk, the start included.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int32, shape (n_walks, length)
        Walks; a walk that reaches an item without out-edges stops and is padded with -1.

    Notes
    -----
    From node ``c`` a step draws ``u ~ U[0, 1)`` and takes the first stored entry ``k`` of row ``c``
    whose cumulative within-row share exceeds ``u``: ``P(c -> indices[k]) = w_k / sum_row w``.
    Shifting each row's cumulative shares by its row number makes one global sorted array, so a
    single ``searchsorted`` serves every walker at once (O(log nnz) per step, no Python loop over
    walkers).
    """
    samplers = [_Sampler.of(h) for h in hops]
    walks = np.full((len(starts), length), -1, dtype=np.int32)
    cur = np.asarray(starts, dtype=np.int64)
    walks[:, 0] = cur
    for t in range(1, length):
        for s in samplers:
            cur = s.step(cur, rng)
        walks[:, t] = cur
        if not (cur >= 0).any():
            break
    return walks


def skipgram_pairs(walks: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(target, context) pairs within ``window`` positions of each other, both directions.

    Padding (-1) and pairs of an item with itself are dropped.

    Returns
    -------
    targets, contexts : ndarray of int32, shape (n_pairs,)
    """
    tg, cx = [], []
    for o in range(1, window + 1):
        if o >= walks.shape[1]:
            break
        a, b = walks[:, :-o].ravel(), walks[:, o:].ravel()
        keep = (a >= 0) & (b >= 0) & (a != b)
        a, b = a[keep], b[keep]
        tg += [a, b]
        cx += [b, a]
    if not tg:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(tg).astype(np.int32), np.concatenate(cx).astype(np.int32)


# ===================================================================== side information
@dataclass
class _Field:
    """One side-information field: its vocabulary (categorical) or bucket edges (numeric)."""

    name: str
    kind: str  # "categorical" | "numeric"
    vocab: np.ndarray  # str values (categorical) or bucket labels "0".."B-1" (numeric)
    edges: np.ndarray  # float64 bucket edges (numeric), empty for categorical

    @property
    def size(self) -> int:
        return len(self.vocab)

    def codes(self, column: pd.Series) -> list[np.ndarray]:
        """Per-row arrays of vocabulary codes (unknown and missing values dropped)."""
        if self.kind == "numeric":
            x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            b = np.searchsorted(self.edges, x, side="right")
            return [
                np.array([v]) if np.isfinite(xi) else np.zeros(0, np.int64)
                for v, xi in zip(b, x, strict=True)
            ]
        index = {v: i for i, v in enumerate(self.vocab.tolist())}
        out = []
        for cell in column.tolist():
            vals = _cell_values(cell)
            out.append(np.array([index[v] for v in vals if v in index], dtype=np.int64))
        return out


def _cell_values(cell: Any) -> list[str]:
    """A cell as a list of string values: lists/arrays are multi-valued, missing -> []."""
    if isinstance(cell, list | tuple | np.ndarray | set):
        return [str(v) for v in cell if not _is_missing(v)]
    if _is_missing(cell):
        return []
    return [str(cell)]


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return bool(isinstance(v, str) and v == "")


def _learn_fields(table: pd.DataFrame, names: Sequence[str] | None, n_buckets: int) -> list[_Field]:
    """Vocabularies of the chosen columns (``names``; None = automatic choice, see Item2Vec)."""
    n = len(table)
    auto = names is None
    cols = [c for c in table.columns if c not in _ID_COLUMNS] if auto else list(names or [])
    fields: list[_Field] = []
    for name in cols:
        if name not in table.columns:
            raise ParameterError(
                f"parameter 'side_features' names column '{name}', which item_features lacks; "
                f"columns: {', '.join(map(str, table.columns))}"
            )
        col = table[name]
        if auto and pd.api.types.is_bool_dtype(col.dtype):
            continue  # flags such as `available` are business rules, not item descriptions
        if pd.api.types.is_float_dtype(col.dtype):
            x = col.to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            if len(np.unique(x)) < 2:
                continue
            qs = np.quantile(x, np.arange(1, n_buckets) / n_buckets)
            edges = np.unique(qs)
            vocab = np.array([f"b{i}" for i in range(len(edges) + 1)])
            fields.append(_Field(str(name), "numeric", vocab, edges))
            continue
        values = [v for cell in col.tolist() for v in _cell_values(cell)]
        vocab = np.array(sorted(set(values)), dtype=str)
        # automatic choice skips constant columns and near-unique ones (titles, descriptions)
        if auto and (len(vocab) < 2 or len(vocab) > max(2, n // 2)):
            continue
        if len(vocab) == 0:
            continue
        fields.append(_Field(str(name), "categorical", vocab, np.zeros(0)))
    return fields


def _padded(codes: list[np.ndarray], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row code lists as a padded (n, m) index array and mean-pooling weights."""
    m = max([len(c) for c in codes] + [1])
    idx = np.full((len(codes), m), pad, dtype=np.int64)
    wts = np.zeros((len(codes), m), dtype=np.float32)
    for r, c in enumerate(codes):
        if len(c):
            idx[r, : len(c)] = c
            wts[r, : len(c)] = 1.0 / len(c)
    return idx, wts


def _as_frame(side_info: Any, name: str) -> pd.DataFrame:
    if isinstance(side_info, pd.DataFrame):
        return side_info
    if isinstance(side_info, Mapping):
        if all(isinstance(v, list | tuple | np.ndarray | pd.Series) for v in side_info.values()):
            return pd.DataFrame({k: list(v) for k, v in side_info.items()})
        return pd.DataFrame([dict(side_info)])
    if isinstance(side_info, Sequence) and all(isinstance(r, Mapping) for r in side_info):
        return pd.DataFrame(list(side_info))
    raise ParameterError.invalid(
        name, "a pandas DataFrame, a dict or a list of dicts", type(side_info)
    )


# ===================================================================== the model
class Item2Vec(EmbeddingRecommender):
    """EGES item embeddings (graph walks + skip-gram + side-information attention).

    Parameters
    ----------
    embedding_dim : int
        Size ``d`` of every embedding.
    epochs : int
        Passes of skip-gram training; fresh walks are drawn for every epoch.
    walk_length : int
        Items per random walk.
    walks_per_item : int
        Walks started from every item that has graph neighbours, per epoch.
    window : int
        Skip-gram context: items at most this many steps apart in a walk form pairs.
    negatives : int
        Negative samples per pair, drawn from the walk-frequency distribution to the 3/4 power.
    lr : float
        Adam step size (sparse Adam on the embedding tables, Adam on the field attention).
    pairs_per_batch : int
        (target, context) pairs per optimisation step.
    graph : {"auto", "sequence", "cooccurrence"}
        The item-item graph. ``"sequence"``: consecutive items of each user's time-ordered history
        (needs timestamps; see :func:`sequence_graph`). ``"cooccurrence"``: items sharing a user,
        weighted ``sum_u x_ui x_uj / d_u`` (walked as item -> user -> item). ``"auto"``: sequence
        when the interactions carry timestamps, else co-occurrence.
    session_gap_hours : float or None
        Sequence graph only: no edge between consecutive items further apart than this.
    side_features : sequence of str or None
        Columns of ``item_features`` used as side information. None picks automatically every
        column except ``item``/``item_id`` and boolean flags (such as ``available``) that is
        either a float column (bucketed into ``price_buckets`` quantile buckets) or has between
        2 and ``n_items / 2`` distinct values (id-like columns such as titles are skipped).
        Cells may be lists (multi-valued fields, mean-pooled).
    price_buckets : int
        Quantile buckets for numeric side features.
    cold_dropout : float
        Probability that a training target loses its own item embedding and is represented by its
        side information alone (with the global field attention used for new items). This trains
        exactly the representation :meth:`embed_new_items` produces.
    half_life_days : float or None
        User vectors weight each item by ``2 ** (-age / half_life)``, the age measured from the
        user's latest interaction (needs timestamps). None: plain weighted mean.
    popularity_weight : float
        Weight ``beta`` of the item's log prior in user scores (see Notes). Skip-gram vectors
        model a popularity-normalised (PMI-like) association; adding ``beta * log P_n(i)`` turns
        it back into a conditional probability. 0 ranks by the vectors alone.
    n_threads : int
        Torch threads while training (restored afterwards). Skip-gram steps are many small
        gather/scatter ops, fastest single-threaded, and a shared 2-core machine stalls when
        several processes each spin two threads.
    seed : int
        Seeds walks, initialisation, negatives and batching; a fit is reproducible.

    Attributes
    ----------
    item_embeddings_ : ndarray of float32, shape (n_items, d + 1)
        ``[H_v, log P_n(v)]``: the fused EGES vector (items that never occurred in a walk get
        their side-only vector, or zeros without side information) and the item's log prior.
    user_embeddings_ : ndarray of float32, shape (n_users, d + 1)
        ``[p_u, beta]``: weighted (optionally time-decayed) mean of the user's ``H`` vectors and
        ``popularity_weight``, so ``user_embeddings_ @ item_embeddings_.T`` is the score.
    vectors_ : ndarray of float32, shape (n_items, d)
        ``H`` alone; ``similar_items`` is the cosine of these.
    cold_log_prior_ : float
        Log prior given to items never walked and to new items: the median over walked items.
    attention_ : ndarray of float32, shape (n_items, 1 + n_fields)
        Per-item softmax weights of [own embedding, field 1, ...]; zero for missing fields.
    field_attention_ : ndarray of float32, shape (n_fields,)
        Softmax weights of the fields for an item known only by its side information.
    side_fields_ : list of str
        Names of the side-information fields used.

    Notes
    -----
    Item ``v`` with side values ``s_v^1..s_v^n`` (``s_v^0 = v``) has the vector

    .. math:: H_v = \\sum_{j=0}^{n} \\frac{e^{a_v^j}}{\\sum_{k} e^{a_v^k}} W^j_{s_v^j}

    with ``a_v`` learned per item (missing fields are left out of the softmax). Skip-gram with
    negative sampling maximises, over walk pairs ``(v, u)`` and negatives ``u'``,

    .. math:: \\log\\sigma(H_v^\\top H_u) + \\sum_{u'} \\log\\sigma(-H_v^\\top H_{u'})

    The context side uses the same fused vectors (tied embeddings) rather than a second table:
    the one space then serves similarity, user scoring and cold start alike, and ``H_u^T H_v``
    is the co-occurrence score the model was trained on (scoring users against an untied
    input table was worse, see docs/benchmarks/item2vec.md). A new item has no ``W^0`` row and
    no ``a_v``: its vector is
    ``sum_{j>=1} softmax(g)_j W^j_{s^j}`` with a global field attention ``g`` trained on the
    ``cold_dropout`` share of targets. Users are ``p_u = sum_i c_ui H_i / sum_i c_ui`` with
    ``c_ui = x_ui 2^{-age_ui / half_life}`` and

    .. math:: \\mathrm{score}(u, i) = p_u^\\top H_i + \\beta \\log P_n(i)

    with ``P_n`` the negative-sampling distribution (walk frequency to the 3/4). At the optimum
    of SGNS, ``H_j^T H_i = log P(i | j) - log P_n(i) - log k`` (Levy & Goldberg, 2014), so
    ``beta = 1`` ranks by the conditional probability and ``beta = 0`` by the PMI-like
    association; ``beta = 0.5`` was best on Amazon Scientific and Gowalla
    (docs/benchmarks/item2vec.md).

    Side information reaches the model as ``fit(..., side=SideInformation(item_features=table))``
    (``gemrec train`` passes the dataset's item table): a DataFrame with one row per item,
    aligned with internal item ids (by its ``item`` column when present, else by position).

    Examples
    --------
    >>> from gemrec.data.interactions import Interactions
    >>> from gemrec.data.side import SideInformation
    >>> x = Interactions.from_arrays([0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 3])
    >>> feats = pd.DataFrame({"category": ["a", "a", "b", "b"]})
    >>> m = Item2Vec(embedding_dim=8, epochs=1, walks_per_item=2, seed=0)
    >>> m = m.fit(x, side=SideInformation(item_features=feats))
    >>> new = m.embed_new_items({"category": "a"})  # (1, embedding_dim + 1)
    >>> new.shape
    (1, 9)
    >>> ids, scores = m.similar_to_vectors(new, k=2)  # catalogue neighbours of the new item
    >>> ids.shape
    (1, 2)
    """

    name = "item2vec"
    tags: ClassVar[ModelTags] = ModelTags(
        side_information=frozenset({"item_features"}),
        timestamps=True,
        embeddings=True,
        fold_in=True,
        new_item_embedding=True,
        fit_requires=("torch",),
    )

    def __init__(
        self,
        *,
        embedding_dim: int = 64,
        epochs: int = 3,
        walk_length: int = 10,
        walks_per_item: int = 5,
        window: int = 3,
        negatives: int = 5,
        lr: float = 0.01,
        pairs_per_batch: int = 4096,
        graph: str = "auto",
        session_gap_hours: float | None = None,
        side_features: Sequence[str] | None = None,
        price_buckets: int = 10,
        cold_dropout: float = 0.1,
        half_life_days: float | None = None,
        popularity_weight: float = 0.5,
        n_threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.walk_length = walk_length
        self.walks_per_item = walks_per_item
        self.window = window
        self.negatives = negatives
        self.lr = lr
        self.pairs_per_batch = pairs_per_batch
        self.graph = graph
        self.session_gap_hours = session_gap_hours
        self.side_features = side_features
        self.price_buckets = price_buckets
        self.cold_dropout = cold_dropout
        self.half_life_days = half_life_days
        self.popularity_weight = popularity_weight
        self.n_threads = n_threads
        self.seed = seed

    # ----------------------------------------------------------------- validation
    def _validate_params(self) -> None:
        for name in (
            "embedding_dim",
            "epochs",
            "walk_length",
            "walks_per_item",
            "window",
            "pairs_per_batch",
            "price_buckets",
            "n_threads",
        ):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise ParameterError.invalid(name, "a positive integer", v)
        if self.walk_length < 2:
            raise ParameterError.invalid("walk_length", "an integer >= 2", self.walk_length)
        if not isinstance(self.negatives, int | np.integer) or self.negatives < 0:
            raise ParameterError.invalid("negatives", "a non-negative integer", self.negatives)
        if not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ParameterError.invalid("lr", "a positive number", self.lr)
        if self.graph not in ("auto", "sequence", "cooccurrence"):
            raise ParameterError.invalid(
                "graph", "one of 'auto', 'sequence', 'cooccurrence'", self.graph
            )
        if not isinstance(self.popularity_weight, int | float) or self.popularity_weight < 0:
            raise ParameterError.invalid(
                "popularity_weight", "a non-negative number", self.popularity_weight
            )
        for name in ("session_gap_hours", "half_life_days"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or not v > 0):
                raise ParameterError.invalid(name, "a positive number or None", v)
        if not isinstance(self.cold_dropout, int | float) or not 0 <= self.cold_dropout < 1:
            raise ParameterError.invalid("cold_dropout", "a number in [0, 1)", self.cold_dropout)
        if self.side_features is not None and (
            isinstance(self.side_features, str)
            or not all(isinstance(c, str) for c in self.side_features)
        ):
            raise ParameterError.invalid(
                "side_features", "a list of column names or None", self.side_features
            )
        if not isinstance(self.seed, int | np.integer):
            raise ParameterError.invalid("seed", "an integer", self.seed)

    # ----------------------------------------------------------------- fitting
    def _aligned_features(self, n_items: int) -> pd.DataFrame | None:
        table: pd.DataFrame | None = self._side.item_features
        if table is None:
            return None
        if "item" in table.columns:
            ids = pd.to_numeric(table["item"], errors="coerce").to_numpy()
            if np.isnan(ids.astype(np.float64)).any() or (ids < 0).any() or (ids >= n_items).any():
                raise DataError(
                    f"item_features column 'item' must hold internal item ids 0..{n_items - 1}",
                    field="item",
                )
            pos = ids.astype(np.int64)
            cols: dict[str, np.ndarray] = {}
            for c in table.columns:
                if pd.api.types.is_float_dtype(table[c].dtype):  # stays numeric for bucketing
                    arr = np.full(n_items, np.nan)
                    arr[pos] = table[c].to_numpy(dtype=np.float64)
                else:
                    arr = np.empty(n_items, dtype=object)
                    arr[:] = None
                    arr[pos] = table[c].to_numpy(dtype=object)
                cols[str(c)] = arr
            out = pd.DataFrame(cols)
            for c in table.columns:  # flags keep their type so the automatic choice skips them
                if pd.api.types.is_bool_dtype(table[c].dtype):
                    out[str(c)] = out[str(c)].astype("boolean")
            return out
        if len(table) != n_items:
            raise DataError(
                f"item_features has {len(table)} rows but the interactions have {n_items} items; "
                "add an 'item' column of internal ids or pass one row per item"
            )
        return table.reset_index(drop=True)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(int(self.n_threads))
        try:
            self._train(interactions)
        finally:
            torch.set_num_threads(before)

    def _train(self, interactions: Interactions) -> None:
        import torch

        n_items, d = interactions.n_items, int(self.embedding_dim)
        rng = np.random.default_rng(int(self.seed))
        gen = torch.Generator().manual_seed(int(self.seed))

        # --- side information
        table = self._aligned_features(n_items)
        fields = (
            _learn_fields(table, self.side_features, int(self.price_buckets))
            if table is not None
            else []
        )
        self._fields = fields
        side_idx, side_wts = [], []
        for f in fields:
            assert table is not None
            i, w = _padded(f.codes(table[f.name]), pad=f.size)
            side_idx.append(i)
            side_wts.append(w)
        has_field = (
            np.stack([w.sum(axis=1) > 0 for w in side_wts], axis=1)
            if fields
            else np.zeros((n_items, 0), bool)
        )

        # --- graph
        mode = self.graph
        if mode == "auto":
            mode = "sequence" if interactions.timestamps is not None else "cooccurrence"
        if mode == "sequence":
            g = sequence_graph(interactions, session_gap_hours=self.session_gap_hours)
            hops = [g]
            has_edges = np.diff(g.indptr) > 0
        else:
            hops = cooccurrence_hops(interactions)
            has_edges = np.asarray(interactions.binary().sum(axis=0)).ravel() > 0
        starts_1 = np.flatnonzero(has_edges)

        # --- torch modules
        own = torch.nn.Embedding(n_items, d, sparse=True)
        att = torch.nn.Embedding(n_items, 1 + len(fields), sparse=True)
        side: list[torch.nn.Embedding] = [
            torch.nn.Embedding(f.size + 1, d, sparse=True, padding_idx=f.size) for f in fields
        ]
        glob = torch.nn.Parameter(torch.zeros(len(fields)))
        with torch.no_grad():
            scale = 0.5 / d
            own.weight.uniform_(-scale, scale, generator=gen)
            for e in side:
                e.weight.uniform_(-scale, scale, generator=gen)
                e.weight[-1].zero_()
            att.weight.zero_()
        sparse_params = [own.weight, att.weight, *[e.weight for e in side]]
        opt = torch.optim.SparseAdam(sparse_params, lr=float(self.lr))
        opt_glob = torch.optim.Adam([glob], lr=float(self.lr)) if fields else None
        t_idx = [torch.from_numpy(i) for i in side_idx]
        t_wts = [torch.from_numpy(w) for w in side_wts]
        t_has = torch.from_numpy(has_field)
        can_drop = t_has.any(dim=1) if fields else torch.zeros(n_items, dtype=torch.bool)

        def fused(items: torch.Tensor, drop: torch.Tensor | None) -> torch.Tensor:
            vecs: list[torch.Tensor] = [own(items)]
            for e, i, w in zip(side, t_idx, t_wts, strict=True):
                vecs.append((e(i[items]) * w[items].unsqueeze(-1)).sum(dim=1))
            if not fields:
                return vecs[0]
            stack = torch.stack(vecs, dim=1)  # (B, 1 + F, d)
            logits = att(items)
            missing = torch.cat(
                [torch.zeros(len(items), 1, dtype=torch.bool), ~t_has[items]], dim=1
            )
            if drop is not None:
                cold = torch.cat(
                    [torch.full((len(items), 1), -torch.inf), glob.expand(len(items), -1)], dim=1
                )
                logits = torch.where(drop.unsqueeze(1), cold, logits)
            logits = logits.masked_fill(missing, -torch.inf)
            out: torch.Tensor = (torch.softmax(logits, dim=1).unsqueeze(-1) * stack).sum(dim=1)
            return out

        neg_table: torch.Tensor | None = None
        prior = np.zeros(n_items)
        seen = np.zeros(n_items, dtype=bool)
        bs, k = int(self.pairs_per_batch), int(self.negatives)
        for _epoch in range(int(self.epochs)):
            starts = np.repeat(starts_1, int(self.walks_per_item))
            rng.shuffle(starts)
            walks = random_walks(hops, starts, int(self.walk_length), rng)
            tg, cx = skipgram_pairs(walks, int(self.window))
            if len(tg) == 0:
                break
            seen[tg] = True
            if neg_table is None:
                # word2vec's unigram table: item i fills a share freq_i^0.75 of the slots, so a
                # uniform slot index is a draw from the smoothed walk-frequency distribution
                freq = np.bincount(walks[walks >= 0], minlength=n_items).astype(np.float64) ** 0.75
                prior = freq / freq.sum()
                size = max(1_000_000, 20 * n_items)
                bounds = np.round(np.cumsum(freq / freq.sum()) * size).astype(np.int64)
                neg_table = torch.from_numpy(
                    np.repeat(np.arange(n_items), np.diff(np.concatenate([[0], bounds])))
                )
            perm = rng.permutation(len(tg))
            tg_t, cx_t = (
                torch.from_numpy(tg[perm].astype(np.int64)),
                torch.from_numpy(cx[perm].astype(np.int64)),
            )
            for s in range(0, len(tg_t), bs):
                b_t, b_c = tg_t[s : s + bs], cx_t[s : s + bs]
                n = len(b_t)
                # one pass through the fused embedding for targets, contexts and negatives
                neg = neg_table[torch.randint(len(neg_table), (n * k,), generator=gen)]
                batch = torch.cat([b_t, b_c, neg])
                drop = None
                if fields and self.cold_dropout > 0:
                    drop = torch.zeros(len(batch), dtype=torch.bool)
                    drop[:n] = (torch.rand(n, generator=gen) < float(self.cold_dropout)) & can_drop[
                        b_t
                    ]
                emb = fused(batch, drop)
                h, c, z = emb[:n], emb[n : 2 * n], emb[2 * n :].view(n, k, -1)
                loss = -torch.nn.functional.logsigmoid((h * c).sum(dim=1)).mean()
                if k:
                    nsc = torch.bmm(z, h.unsqueeze(-1)).squeeze(-1)
                    loss = loss - torch.nn.functional.logsigmoid(-nsc).sum(dim=1).mean()
                opt.zero_grad()
                if opt_glob is not None:
                    opt_glob.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()  # type: ignore[no-untyped-call]
                if opt_glob is not None:
                    opt_glob.step()

        # --- export to numpy (serving never needs torch)
        with torch.no_grad():
            self.side_tables_ = [
                e.weight.detach().numpy()[:-1].astype(np.float32).copy() for e in side
            ]
            self.field_attention_ = (
                torch.softmax(glob.detach(), dim=0).numpy().astype(np.float32)
                if fields
                else np.zeros(0, np.float32)
            )
            logits = att.weight.detach().numpy().astype(np.float64)
            missing = np.concatenate([np.zeros((n_items, 1), bool), ~has_field], axis=1)
            logits[missing] = -np.inf
            a = np.exp(logits - logits.max(axis=1, keepdims=True))
            attn = (a / a.sum(axis=1, keepdims=True)).astype(np.float32)
            vecs = [own.weight.detach().numpy()] + [
                self._pool(t, i, w)
                for t, i, w in zip(self.side_tables_, side_idx, side_wts, strict=True)
            ]
            h_all = np.einsum("nj,jnd->nd", attn, np.stack(vecs)).astype(np.float32)
        cold_rows = ~seen
        if cold_rows.any():
            if fields:
                h_all[cold_rows] = self._side_only(
                    side_idx, side_wts, has_field, np.flatnonzero(cold_rows)
                )
                attn[cold_rows] = 0.0
                attn[cold_rows, 1:] = self._cold_attention(has_field[cold_rows])
            else:
                h_all[cold_rows] = 0.0
        self.attention_ = attn
        # a never-walked (or new) item gets the median prior of the walked ones: neutral, so
        # that its side-information match decides; the rarest item's prior would bury it
        positive = prior[prior > 0]
        self.cold_log_prior_ = float(np.median(np.log(positive))) if len(positive) else 0.0
        log_prior = np.full(n_items, self.cold_log_prior_, dtype=np.float64)
        log_prior[prior > 0] = np.log(prior[prior > 0])
        self.item_embeddings_ = np.hstack([h_all, log_prior[:, None]]).astype(np.float32)
        self.user_embeddings_ = self._user_vectors(interactions)

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _pool(table: np.ndarray, idx: np.ndarray, wts: np.ndarray) -> np.ndarray:
        padded = np.vstack([table, np.zeros((1, table.shape[1]), np.float32)])
        out: np.ndarray = np.einsum("nm,nmd->nd", wts, padded[idx]).astype(np.float32)
        return out

    def _cold_attention(self, has_field: np.ndarray) -> np.ndarray:
        w = np.where(has_field, self.field_attention_[None, :].astype(np.float64), 0.0)
        s = w.sum(axis=1, keepdims=True)
        return (w / np.where(s > 0, s, 1.0)).astype(np.float32)

    def _side_only(
        self,
        side_idx: list[np.ndarray],
        side_wts: list[np.ndarray],
        has_field: np.ndarray,
        rows: np.ndarray,
    ) -> np.ndarray:
        w = self._cold_attention(has_field[rows])
        out = np.zeros((len(rows), int(self.embedding_dim)), np.float32)
        for j, (t, i, ww) in enumerate(zip(self.side_tables_, side_idx, side_wts, strict=True)):
            out += w[:, j : j + 1] * self._pool(t, i[rows], ww[rows])
        return out

    def _user_vectors(self, interactions: Interactions) -> np.ndarray:
        x = sp.csr_matrix(interactions.matrix, dtype=np.float32, copy=True)
        if self.half_life_days is not None and interactions.timestamps is not None:
            ts = sp.csr_matrix(interactions.timestamps, dtype=np.float64)
            if ts.nnz == x.nnz and np.array_equal(ts.indices, x.indices):
                t = np.nan_to_num(ts.data, nan=-np.inf)
                deg = np.diff(ts.indptr)
                latest = np.zeros(len(deg))
                nz = deg > 0
                latest[nz] = np.maximum.reduceat(t, ts.indptr[:-1][nz])
                age_days = (np.repeat(latest, deg) - t) / 86400.0
                decay = np.exp2(-np.nan_to_num(age_days, posinf=0.0) / float(self.half_life_days))
                x.data = (x.data * decay).astype(np.float32)
        return self._mean_vectors(x)

    def _mean_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Row-weighted means of the item vectors, with the prior weight appended."""
        rs = np.asarray(x.sum(axis=1)).ravel()
        rs[rs == 0] = 1.0
        u = np.asarray(sp.diags((1.0 / rs).astype(np.float32)) @ x @ self.vectors_, np.float32)
        beta = np.full((u.shape[0], 1), float(self.popularity_weight), dtype=np.float32)
        return np.hstack([u, beta])

    @property
    def vectors_(self) -> np.ndarray:
        """The EGES vectors ``H`` without the log-prior column, shape (n_items, embedding_dim)."""
        return self.item_embeddings_[:, :-1]

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in: a new user is the weighted mean of the vectors of the items they touched."""
        self._check_fitted()
        u = self._mean_vectors(sp.csr_matrix(user_items, dtype=np.float32))
        return np.asarray(u @ self.item_embeddings_.T, dtype=np.float32)

    def fold_in(self, item_vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Weighted mean of the EGES vectors, with the prior weight ``β`` as the last coordinate."""
        m = super().fold_in(np.asarray(item_vectors)[:, :-1], weights)
        return np.append(m, np.float32(self.popularity_weight)).astype(np.float32)

    def _similar_block(self, items: np.ndarray) -> np.ndarray:
        v = self.vectors_
        norms = np.linalg.norm(v, axis=1) + 1e-12
        out: np.ndarray = (v[items] @ v.T) / norms[items, None] / norms[None, :]
        return out

    # ----------------------------------------------------------------- cold start
    @property
    def side_fields_(self) -> list[str]:
        self._check_fitted()
        return [f.name for f in self._fields]

    def embed_new_items(
        self, side_info: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """Vectors for items known only by their side information (cold start).

        Parameters
        ----------
        side_info : DataFrame, dict or list of dicts
            One row per new item with the side-information columns seen at fit time
            (:attr:`side_fields_`); a dict of scalars is one item, a dict of lists several.
            Unknown values and absent columns are ignored.

        Returns
        -------
        ndarray of float32, shape (n_new, embedding_dim + 1)
            Rows laid out like ``item_embeddings_``: ``sum_j softmax(g)_j W^j_{s^j}`` over the
            fields the item has (zero when no side value is known), then the median log prior
            of the walked items (``cold_log_prior_``). ``user_embeddings_ @ vectors.T`` scores
            the new items for every user.
        """
        self._check_fitted()
        if not self._fields:
            raise GemrecError(
                "this item2vec model was fitted without item side information "
                "(fit(..., side=SideInformation(item_features=...))): new items cannot be embedded"
            )
        table = _as_frame(side_info, "side_info")
        idx, wts = [], []
        for f in self._fields:
            col = table[f.name] if f.name in table.columns else pd.Series([None] * len(table))
            i, w = _padded(f.codes(col.reset_index(drop=True)), pad=f.size)
            idx.append(i)
            wts.append(w)
        has = np.stack([w.sum(axis=1) > 0 for w in wts], axis=1)
        vecs = self._side_only(idx, wts, has, np.arange(len(table)))
        prior = np.full((len(vecs), 1), self.cold_log_prior_, dtype=np.float32)
        return np.hstack([vecs, prior])

    def similar_to_vectors(self, vectors: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue items closest (cosine) to arbitrary vectors, e.g. from :meth:`embed_new_items`.

        Parameters
        ----------
        vectors : array, shape (n, embedding_dim + 1) or (n, embedding_dim)
            The log-prior column, when present, is ignored.
        k : int

        Returns
        -------
        ids : ndarray of int32, shape (n, k); scores : ndarray of float32, shape (n, k)
            Internal item ids and cosine similarities; a zero vector scores 0 everywhere.
        """
        self._check_fitted()
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None, :]
        d = self.vectors_.shape[1]
        if v.ndim != 2 or v.shape[1] not in (d, d + 1):
            raise ParameterError.invalid(
                "vectors", f"an array of shape (n, {d + 1}) or (n, {d})", v.shape
            )
        v = v[:, :d]
        if not isinstance(k, int | np.integer) or k < 1:
            raise ParameterError.invalid("k", "a positive integer", k)
        items = self.vectors_
        inorm = np.linalg.norm(items, axis=1) + 1e-12
        vnorm = np.linalg.norm(v, axis=1) + 1e-12
        sims = (v @ items.T) / vnorm[:, None] / inorm[None, :]
        return topk(np.asarray(sims, dtype=np.float32), int(k))

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> State:
        state = super()._get_state()
        state["attention_"] = self.attention_
        state["field_attention_"] = self.field_attention_
        state["cold_log_prior_"] = np.float64(self.cold_log_prior_)
        state["side_names_"] = np.array([f.name for f in self._fields], dtype=str)
        state["side_kinds_"] = np.array([f.kind for f in self._fields], dtype=str)
        for j, f in enumerate(self._fields):
            state[f"side_vocab_{j}_"] = f.vocab.astype(str)
            state[f"side_edges_{j}_"] = f.edges.astype(np.float64)
            state[f"side_table_{j}_"] = self.side_tables_[j]
        return state

    def _set_state(self, state: State) -> None:
        super()._set_state(state)
        self.attention_ = np.asarray(state["attention_"], dtype=np.float32)
        self.field_attention_ = np.asarray(state["field_attention_"], dtype=np.float32)
        self.cold_log_prior_ = float(state["cold_log_prior_"])
        names = [str(s) for s in state["side_names_"]]
        kinds = [str(s) for s in state["side_kinds_"]]
        self._fields = [
            _Field(
                n,
                kd,
                np.asarray(state[f"side_vocab_{j}_"]).astype(str),
                np.asarray(state[f"side_edges_{j}_"]),
            )
            for j, (n, kd) in enumerate(zip(names, kinds, strict=True))
        ]
        self.side_tables_ = [
            np.asarray(state[f"side_table_{j}_"], dtype=np.float32) for j in range(len(names))
        ]
