"""The walk corpus of item2vec: item-item graphs, weighted random walks and skip-gram pairs.

An item graph (:func:`sequence_graph`, or the co-occurrence graph walked through users,
:func:`cooccurrence_hops`) is turned into "sentences" by weighted random walks
(:class:`RandomWalker`); items close to each other in a walk become (target, context) pairs
(:func:`skipgram_pairs`), and the walk frequency gives the negative-sampling distribution
(:func:`noise_distribution`). NumPy and SciPy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError

__all__ = [
    "AUTO_WALK_VISITS",
    "MAX_AUTO_WALKS",
    "MIN_AUTO_WALKS",
    "RandomWalker",
    "auto_walks",
    "cooccurrence_hops",
    "draw_walks",
    "keyed_draws",
    "noise_distribution",
    "noise_table",
    "random_walks",
    "resolve_graph",
    "sequence_graph",
    "skipgram_pairs",
    "uniform_from_bits",
    "walk_graph",
]

#: ``Item2Vec(walks_per_item="auto")``: an epoch's walks visit about this many items per training
#: interaction, with between :data:`MIN_AUTO_WALKS` and :data:`MAX_AUTO_WALKS` walks per item
#: (:func:`auto_walks`)
AUTO_WALK_VISITS = 10.0
MIN_AUTO_WALKS = 5
#: the cap keeps an epoch proportional to the items, not the interactions, on dense catalogues
MAX_AUTO_WALKS = 100


# --------------------------------------------------------------------------- item graphs
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


def resolve_graph(interactions: Interactions, graph: str) -> str:
    """``graph`` with ``"auto"`` resolved: the sequence graph when ``interactions`` carry
    timestamps, else co-occurrence."""
    if graph == "auto":
        return "sequence" if interactions.timestamps is not None else "cooccurrence"
    return graph


def walk_graph(
    interactions: Interactions, graph: str, session_gap_hours: float | None = None
) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """The hops of one item-to-item step and the items a walk can start from.

    Parameters
    ----------
    interactions : Interactions
    graph : {"auto", "sequence", "cooccurrence"}
        ``"auto"``: the sequence graph when ``interactions`` carry timestamps, else co-occurrence.
    session_gap_hours : float or None
        Sequence graph only (see :func:`sequence_graph`).

    Returns
    -------
    hops : list of csr_matrix
        ``[G]`` for the sequence graph, ``[X^T, X]`` for co-occurrence.
    starts : ndarray of int64, shape (n_starts,)
        Items with at least one edge, ascending.
    """
    graph = resolve_graph(interactions, graph)
    if graph == "sequence":
        g = sequence_graph(interactions, session_gap_hours=session_gap_hours)
        return [g], np.flatnonzero(np.diff(g.indptr) > 0)
    if graph == "cooccurrence":
        has_edges = np.asarray(interactions.binary().sum(axis=0)).ravel() > 0
        return cooccurrence_hops(interactions), np.flatnonzero(has_edges)
    raise ParameterError.invalid("graph", "one of 'auto', 'sequence', 'cooccurrence'", graph)


# --------------------------------------------------------------------------- walks
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


class RandomWalker:
    """Weighted random walks over a chain of hops, all walkers advanced together.

    Parameters
    ----------
    hops : sequence of csr_matrix
        One item-to-item step applies every hop in turn, e.g. ``[G]`` for an item graph or
        ``[X^T, X]`` (:func:`cooccurrence_hops`) for item -> user -> item. Each row is sampled in
        proportion to its stored weights (which must be non-negative).

    Notes
    -----
    From node ``c`` a step draws ``u ~ U[0, 1)`` and takes the first stored entry ``k`` of row ``c``
    whose cumulative within-row share exceeds ``u``: ``P(c -> indices[k]) = w_k / sum_row w``.
    Shifting each row's cumulative shares by its row number makes one global sorted array, so a
    single ``searchsorted`` serves every walker at once (O(log nnz) per step, no Python loop over
    walkers). The sorted arrays are built once, in the constructor.
    """

    def __init__(self, hops: Sequence[sp.csr_matrix]) -> None:
        self._samplers = [_Sampler.of(h) for h in hops]

    def walk(self, starts: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """Walks of ``length`` items (the start included) from each of ``starts``.

        Parameters
        ----------
        starts : ndarray of int, shape (n_walks,)
        length : int
        rng : numpy.random.Generator
            Each step of each hop draws one uniform number per walker still moving.

        Returns
        -------
        ndarray of int32, shape (n_walks, length)
            A walk that reaches an item without out-edges stops and is padded with -1.
        """
        walks = np.full((len(starts), length), -1, dtype=np.int32)
        cur = np.asarray(starts, dtype=np.int64)
        walks[:, 0] = cur
        for t in range(1, length):
            for s in self._samplers:
                cur = s.step(cur, rng)
            walks[:, t] = cur
            if not (cur >= 0).any():
                break
        return walks


def random_walks(
    hops: Sequence[sp.csr_matrix],
    starts: np.ndarray,
    length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``RandomWalker(hops).walk(starts, length, rng)``: see :class:`RandomWalker`.

    Returns
    -------
    ndarray of int32, shape (len(starts), length)
        Walks; a walk that reaches an item without out-edges stops and is padded with -1.
    """
    return RandomWalker(hops).walk(starts, length, rng)


def auto_walks(
    n_interactions: int,
    n_starts: int,
    length: int,
    *,
    visits: float = AUTO_WALK_VISITS,
    minimum: int = MIN_AUTO_WALKS,
    maximum: int = MAX_AUTO_WALKS,
) -> int:
    """Walks per start item such that an epoch's walks visit about ``visits`` items per
    interaction: ``ceil(visits * n_interactions / (n_starts * length))``, clipped to
    ``[minimum, maximum]``.

    A fixed number of walks per item samples a catalogue with many interactions per item far more
    thinly than one with few: 5 walks of 10 items visit 0.2 items per interaction on MovieLens-1M
    (235 interactions per item) and 2.8 on Gowalla (18).
    """
    if n_starts <= 0:
        return int(minimum)
    walks = math.ceil(visits * n_interactions / (n_starts * length))
    return min(int(maximum), max(int(minimum), walks))


def draw_walks(
    walker: RandomWalker,
    starts: np.ndarray,
    walks_per_item: int,
    length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One epoch's corpus: ``walks_per_item`` walks from every start item, in shuffled order.

    Returns
    -------
    ndarray of int32, shape (walks_per_item * len(starts), length)
    """
    order = np.repeat(starts, walks_per_item)
    rng.shuffle(order)
    return walker.walk(order, length, rng)


# --------------------------------------------------------------------------- skip-gram corpus
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


def noise_distribution(walks: np.ndarray, n_items: int) -> np.ndarray:
    """The negative-sampling distribution: walk frequency to the 3/4 power, normalised.

    Returns
    -------
    ndarray of float64, shape (n_items,)
        Sums to 1; all zeros when the walks hold no item.
    """
    freq = np.bincount(walks[walks >= 0], minlength=n_items).astype(np.float64) ** 0.75
    total = freq.sum()
    out: np.ndarray = freq / total if total > 0 else freq
    return out


def noise_table(prior: np.ndarray, size: int) -> np.ndarray:
    """word2vec's unigram table: item ``i`` fills a share ``prior[i]`` of ``size`` slots.

    A uniformly drawn slot is then a draw from ``prior`` (up to rounding to ``1/size``).

    Returns
    -------
    ndarray of int64, shape (about size,)
        Empty when ``prior`` is all zeros.
    """
    if not prior.sum() > 0:
        return np.zeros(0, np.int64)
    bounds = np.round(np.cumsum(prior) * size).astype(np.int64)
    counts = np.diff(np.concatenate([[0], bounds]))
    return np.repeat(np.arange(len(prior), dtype=np.int64), counts)


def keyed_draws(keys: np.ndarray, n_draws: int) -> np.ndarray:
    """``n_draws`` pseudo-random 64-bit integers per key, a pure function of the key.

    A pair's negatives and dropout draw are derived from a key drawn with the pair, instead of
    from a generator's position: they are then the same whichever worker, device or batch the
    pair lands in (a batch split across data-parallel workers draws exactly what it would draw
    whole). The mixer is splitmix64's finaliser applied to ``key + (j+1) * golden``.

    Parameters
    ----------
    keys : ndarray of int64, shape (n,)
    n_draws : int

    Returns
    -------
    ndarray of uint64, shape (n, n_draws)
    """
    golden = np.uint64(0x9E3779B97F4A7C15)
    x = keys.astype(np.uint64)[:, None] + golden * np.arange(1, n_draws + 1, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def uniform_from_bits(bits: np.ndarray) -> np.ndarray:
    """Floats uniform in [0, 1) from 64-bit integers (their top 53 bits)."""
    out: np.ndarray = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return out
