"""The walk corpus: item graphs, the vectorised walker against a per-walker loop, pairs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.models._walks import (
    RandomWalker,
    auto_walks,
    cooccurrence_hops,
    draw_walks,
    noise_distribution,
    noise_table,
    random_walks,
    sequence_graph,
    skipgram_pairs,
    walk_graph,
)


def _reference_walks(hops, starts, length, rng):
    """One walker at a time: the definition of a weighted walk, drawing the same uniforms.

    Per step and hop, every walker still moving (in order) draws ``u`` and takes the first entry of
    its row whose cumulative share of the row's weight exceeds ``u``.
    """
    mats = [sp.csr_matrix(h, dtype=np.float64) for h in hops]
    for m in mats:
        m.eliminate_zeros()
    walks = np.full((len(starts), length), -1, dtype=np.int64)
    cur = [int(s) for s in starts]
    walks[:, 0] = cur
    for t in range(1, length):
        for m in mats:
            moving = [w for w, c in enumerate(cur) if c >= 0 and m.indptr[c + 1] > m.indptr[c]]
            draws = rng.random(len(moving))
            nxt = [-1] * len(cur)
            for w, u in zip(moving, draws, strict=True):
                lo, hi = m.indptr[cur[w]], m.indptr[cur[w] + 1]
                share = np.cumsum(m.data[lo:hi]) / m.data[lo:hi].sum()
                j = next((j for j, s in enumerate(share) if s > u), hi - lo - 1)
                nxt[w] = int(m.indices[lo + j])
            cur = nxt
        walks[:, t] = cur
        if all(c < 0 for c in cur):
            break
    return walks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walker_equals_the_per_walker_reference(seed):
    rng = np.random.default_rng(seed)
    dense = rng.random((8, 8)) * (rng.random((8, 8)) < 0.5)
    dense[3] = 0  # dangling: walks reaching it stop
    g = sp.csr_matrix(dense)
    g.data[::4] = 0.0  # stored zeros are never taken
    x = sp.random(5, 8, density=0.4, random_state=seed, format="csr")
    starts = rng.integers(0, 8, size=40)
    for hops in ([g], [x.T.tocsr(), x]):
        fast_rng, ref_rng = np.random.default_rng(seed + 10), np.random.default_rng(seed + 10)
        fast = RandomWalker(hops).walk(starts, 6, fast_rng)
        ref = _reference_walks(hops, starts, 6, ref_rng)
        np.testing.assert_array_equal(fast, ref)
        assert fast_rng.random() == ref_rng.random()  # the same number of draws


def test_walks_follow_edges_with_the_right_transition_probabilities():
    rng = np.random.default_rng(1)
    dense = rng.random((6, 6)) * (rng.random((6, 6)) < 0.6)
    np.fill_diagonal(dense, 0)
    dense[5] = 0  # a dangling node: walks reaching it stop
    dense[0, 5] = 0.7
    g = sp.csr_matrix(dense.astype(np.float32))
    starts = np.repeat(np.arange(5), 4000)
    walks = random_walks([g], starts, 4, np.random.default_rng(7))
    assert walks.shape == (20000, 4) and walks.dtype == np.int32
    a, b = walks[:, :-1].ravel(), walks[:, 1:].ravel()
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    assert (dense[a, b] > 0).all(), "a walk took a step along a non-edge"
    # once stopped, a walk stays padded
    stopped = walks[:, :-1] < 0
    assert (walks[:, 1:][stopped] == -1).all()
    assert (walks[walks[:, 1] == 5][:, 2:] == -1).all()
    counts = np.zeros((6, 6))
    np.add.at(counts, (a, b), 1)
    for i in range(5):
        n = counts[i].sum()
        if n == 0 or dense[i].sum() == 0:
            continue
        p = dense[i] / dense[i].sum()
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(counts[i] / n - p) <= 5 * se + 1e-9), (i, counts[i] / n, p)


def test_negative_weights_are_refused():
    with pytest.raises(ParameterError, match="negative"):
        RandomWalker([sp.csr_matrix(np.array([[0.0, -1.0], [1.0, 0.0]]))])


def test_cooccurrence_walk_is_the_degree_normalised_cooccurrence_graph():
    x = Interactions.from_arrays(
        np.array([0, 0, 0, 1, 1, 2, 2, 2, 2]),
        np.array([0, 1, 2, 1, 3, 0, 2, 3, 4]),
        np.array([1, 2, 1, 1, 1, 3, 1, 1, 1], dtype=np.float32),
    )
    hops = cooccurrence_hops(x)
    m = x.matrix.toarray().astype(np.float64)
    expected = (m / m.sum(axis=0, keepdims=True)).T @ (m / m.sum(axis=1, keepdims=True))
    starts = np.repeat(np.arange(5), 6000)
    walks = random_walks(hops, starts, 2, np.random.default_rng(3))
    counts = np.zeros((5, 5))
    np.add.at(counts, (walks[:, 0], walks[:, 1]), 1)
    emp = counts / counts.sum(axis=1, keepdims=True)
    se = np.sqrt(expected * (1 - expected) / 6000)
    assert np.all(np.abs(emp - expected) <= 5 * se + 1e-9)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0)


def test_sequence_graph_links_consecutive_items_within_sessions():
    # user 0: items 0 -> 1 -> 2 at t = 0, 60, 10_000 s; user 1: 2 -> 1 at 0, 30
    x = Interactions.from_arrays(
        np.array([0, 0, 0, 1, 1]),
        np.array([0, 1, 2, 2, 1]),
        timestamps=np.array([0.0, 60.0, 10_000.0, 0.0, 30.0]),
        n_items=4,
    )
    directed = sequence_graph(x, directed=True).toarray()
    want = np.zeros((4, 4), np.float32)
    want[0, 1] = want[1, 2] = want[2, 1] = 1
    np.testing.assert_array_equal(directed, want)
    sessions = sequence_graph(x, session_gap_hours=1.0, directed=True).toarray()
    want[1, 2] = 0  # 10_000 s > 1 h: a new session
    np.testing.assert_array_equal(sessions, want)
    undirected = sequence_graph(x).toarray()
    np.testing.assert_array_equal(undirected, undirected.T)
    assert undirected[1, 2] == 2 and undirected[0, 1] == 1


def test_walk_graph_chooses_the_graph_and_the_start_items():
    x = Interactions.from_arrays(
        np.array([0, 0, 1, 1]),
        np.array([0, 1, 1, 3]),
        timestamps=np.array([0.0, 5.0, 0.0, 5.0]),
        n_items=5,
    )
    hops, starts = walk_graph(x, "auto")
    assert len(hops) == 1 and starts.tolist() == [0, 1, 3]  # sequence: 0-1, 1-3
    untimed = Interactions(x.matrix, x.user_ids, x.item_ids, None)
    hops, starts = walk_graph(untimed, "auto")
    assert len(hops) == 2 and starts.tolist() == [0, 1, 3]  # co-occurrence: items with users
    with pytest.raises(ParameterError, match="timestamps"):
        walk_graph(untimed, "sequence")


def test_draw_walks_starts_each_item_walks_per_item_times():
    g = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    walks = draw_walks(RandomWalker([g]), np.array([0, 2]), 3, 4, np.random.default_rng(0))
    assert walks.shape == (6, 4)
    assert sorted(walks[:, 0].tolist()) == [0, 0, 0, 2, 2, 2]
    assert (walks[:, 1] == 1).all()


def test_auto_walks_visit_about_ten_items_per_interaction():
    # Gowalla's train split: 727,869 interactions on 40,979 items: ceil(10 * 727869 / 409790)
    assert auto_walks(727_869, 40_979, 10) == 18
    # MovieLens-1M's: 716,282 on 3,043 would take 236; a dense catalogue stops at the cap
    assert auto_walks(716_282, 3_043, 10) == 100
    assert auto_walks(716_282, 3_043, 10, maximum=1_000) == 236
    # a sparse catalogue keeps the minimum; so does a graph without walk starts
    assert auto_walks(1_000, 5_000, 10) == 5
    assert auto_walks(1_000, 0, 10) == 5
    assert auto_walks(1_000, 10, 10, visits=1.0, minimum=1) == 10


def test_skipgram_pairs_match_a_loop_reference():
    walks = np.array([[0, 1, 2, 1], [3, 4, -1, -1]], dtype=np.int32)
    tg, cx = skipgram_pairs(walks, 2)
    got = sorted(zip(tg.tolist(), cx.tolist(), strict=True))
    ref = []
    for w in walks.tolist():
        for i, a in enumerate(w):
            for j, b in enumerate(w):
                if a >= 0 and b >= 0 and a != b and 0 < abs(i - j) <= 2:
                    ref.append((a, b))
    assert got == sorted(ref)


def test_noise_distribution_and_its_table():
    walks = np.array([[0, 1, 1, -1], [2, 1, 0, 0]], dtype=np.int32)  # counts 3, 3, 1, 0
    prior = noise_distribution(walks, 4)
    want = np.array([3, 3, 1, 0], dtype=np.float64) ** 0.75
    np.testing.assert_allclose(prior, want / want.sum())
    table = noise_table(prior, 10_000)
    share = np.bincount(table, minlength=4) / len(table)
    np.testing.assert_allclose(share, prior, atol=1e-4)
    assert len(noise_table(np.zeros(3), 100)) == 0
    np.testing.assert_array_equal(noise_distribution(np.full((2, 3), -1), 3), 0.0)
