"""Item2Vec (EGES): walks, graph construction, clustering, cold start, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import DataError, GemrecError, ParameterError
from gemrec.models.item2vec import (
    Item2Vec,
    cooccurrence_hops,
    random_walks,
    sequence_graph,
    skipgram_pairs,
)

FAST = dict(
    embedding_dim=16, epochs=3, walks_per_item=8, walk_length=8, pairs_per_batch=512, lr=0.02
)


def _planted(
    seed: int = 0, n_users: int = 300, n_cats: int = 4, per_cat: int = 20, per_user: int = 6
):
    """Users consume items of a single category; category = the right answer for neighbours."""
    rng = np.random.default_rng(seed)
    n_items = n_cats * per_cat
    cat = np.arange(n_items) // per_cat
    users, items, times = [], [], []
    for u in range(n_users):
        c = rng.integers(n_cats)
        chosen = rng.choice(np.flatnonzero(cat == c), per_user, replace=False)
        users += [u] * per_user
        items += chosen.tolist()
        times += (1_000_000 + u * 10_000 + np.arange(per_user) * 60).tolist()
    x = Interactions.from_arrays(
        np.array(users), np.array(items), n_items=n_items, timestamps=np.array(times, dtype=float)
    )
    feats = pd.DataFrame(
        {
            "item": np.arange(n_items),
            "category": [f"cat{c}" for c in cat],
            "brand": [f"brand{c}_{i % 2}" for i, c in enumerate(cat)],
            "price": (cat * 10 + rng.random(n_items)).astype(float),
            "title": [f"title {i}" for i in range(n_items)],
            "available": np.arange(n_items) % 3 != 0,
        }
    )
    return x, feats, cat


def _without_timestamps(x: Interactions) -> Interactions:
    return Interactions(x.matrix, x.user_ids, x.item_ids, None)


# ----------------------------------------------------------------------------- walks
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


# ----------------------------------------------------------------------------- learning
@pytest.mark.parametrize("graph", ["cooccurrence", "sequence"])
def test_items_of_one_category_cluster_without_side_information(graph):
    x, _, cat = _planted()
    m = Item2Vec(**FAST, graph=graph, seed=0).fit(x)
    ids, _ = m.similar_items(np.arange(x.n_items), k=5)
    assert (cat[ids] == cat[:, None]).mean() > 0.9
    # users are recommended items of their own category
    users = np.arange(50)
    user_cat = cat[x.matrix[users].indices[x.matrix[users].indptr[:-1]]]
    rec, _ = m.recommend(users, k=5)
    assert (cat[rec] == user_cat[:, None]).mean() > 0.8


def test_new_item_with_only_side_information_gets_neighbours_of_its_category():
    x, feats, cat = _planted()
    m = Item2Vec(**FAST, seed=0).fit(x, side=SideInformation(item_features=feats))
    # title is id-like and available a flag: both skipped
    assert set(m.side_fields_) == {"category", "brand", "price"}
    assert m.attention_.shape == (x.n_items, 4)
    np.testing.assert_allclose(m.attention_.sum(axis=1), 1.0, rtol=1e-5)
    new = pd.DataFrame(
        {"category": ["cat0", "cat2", "cat3"], "brand": ["brand0_1", "brand2_0", None]}
    )
    vecs = m.embed_new_items(new)
    assert vecs.shape == (3, 17) and vecs.dtype == np.float32
    np.testing.assert_allclose(vecs[:, -1], m.cold_log_prior_, rtol=1e-6)
    ids, scores = m.similar_to_vectors(vecs, k=10)
    assert (cat[ids] == np.array([0, 2, 3])[:, None]).mean() >= 0.9
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # a single dict is one item; only the price bucket known still lands near its category
    one = m.embed_new_items({"price": 31.5})
    ids1, _ = m.similar_to_vectors(one, k=10)
    assert (cat[ids1[0]] == 3).mean() >= 0.7
    # an unknown value carries no information: zero vector
    np.testing.assert_array_equal(m.embed_new_items({"category": "nope"})[:, :-1], 0.0)
    # new items can be scored for users directly
    assert (m.user_embeddings_ @ vecs.T).shape == (x.n_users, 3)


def test_catalogue_items_without_interactions_get_their_side_only_vector():
    x, feats, cat = _planted()
    # item 79 (cat 3) is never interacted with
    keep = x.matrix.toarray()
    keep[:, 79] = 0
    x2 = x.with_matrix(sp.csr_matrix(keep))
    m = Item2Vec(**FAST, seed=0).fit(
        _without_timestamps(x2), side=SideInformation(item_features=feats)
    )
    expected = m.embed_new_items(feats.iloc[[79]].drop(columns="item"))
    np.testing.assert_allclose(m.item_embeddings_[79], expected[0], rtol=1e-5, atol=1e-6)
    ids, _ = m.similar_items([79], k=10)
    assert (cat[ids[0]] == 3).mean() >= 0.8


def test_item_column_aligns_features_like_positional_rows():
    x, feats, _ = _planted()
    shuffled = feats.sample(frac=1.0, random_state=3)
    a = Item2Vec(**{**FAST, "epochs": 1}, seed=5).fit(
        x, side=SideInformation(item_features=shuffled)
    )
    b = Item2Vec(**{**FAST, "epochs": 1}, seed=5).fit(
        x, side=SideInformation(item_features=feats.drop(columns="item"))
    )
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)


def test_user_vectors_are_time_decayed_means():
    x, _, _ = _planted(n_users=40)
    m = Item2Vec(**{**FAST, "epochs": 1}, half_life_days=1 / 24 / 60, seed=0).fit(
        x
    )  # 1-minute half-life
    u = 3
    row = x.matrix[u]
    t = x.timestamps[u].toarray().ravel()[row.indices]
    w = np.exp2(-(t.max() - t) / 60.0)
    ref = (w[:, None] * m.vectors_[row.indices]).sum(axis=0) / w.sum()
    np.testing.assert_allclose(m.user_embeddings_[u, :-1], ref, rtol=1e-4, atol=1e-6)


def test_scores_add_the_weighted_log_prior_to_the_vector_match():
    x, _, _ = _planted(n_users=80)
    m = Item2Vec(**{**FAST, "epochs": 1}, popularity_weight=0.7, seed=0).fit(x)
    users = np.arange(5)
    rows = x.matrix[users].toarray()
    p = (rows / rows.sum(axis=1, keepdims=True)) @ m.vectors_
    expected = p @ m.vectors_.T + 0.7 * m.item_embeddings_[:, -1][None, :]
    np.testing.assert_allclose(m.score(users), expected, rtol=1e-4, atol=1e-5)
    # the prior is the log of a distribution over items
    prior = np.exp(m.item_embeddings_[:, -1].astype(np.float64))
    assert prior.sum() == pytest.approx(1.0, abs=1e-3)
    # fold-in of a user's own items reproduces the fitted scores
    np.testing.assert_allclose(m.score_new(x.matrix[users]), m.score(users), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- contract
def test_reproducible_with_a_seed():
    x, feats, _ = _planted(n_users=120)
    a = Item2Vec(**{**FAST, "epochs": 1}, seed=11).fit(x, side=SideInformation(item_features=feats))
    b = Item2Vec(**{**FAST, "epochs": 1}, seed=11).fit(x, side=SideInformation(item_features=feats))
    c = Item2Vec(**{**FAST, "epochs": 1}, seed=12).fit(x, side=SideInformation(item_features=feats))
    np.testing.assert_array_equal(a.item_embeddings_, b.item_embeddings_)
    np.testing.assert_array_equal(a.user_embeddings_, b.user_embeddings_)
    assert not np.allclose(a.item_embeddings_, c.item_embeddings_)


def test_save_load_round_trip(tmp_path):
    x, feats, _ = _planted(n_users=120)
    m = Item2Vec(**{**FAST, "epochs": 1}, seed=0).fit(x, side=SideInformation(item_features=feats))
    m.save(tmp_path / "m")
    assert "pickle" not in (tmp_path / "m" / "manifest.json").read_text()
    loaded = Item2Vec.load(tmp_path / "m")
    assert loaded.get_params() == m.get_params()
    np.testing.assert_array_equal(loaded.item_embeddings_, m.item_embeddings_)
    np.testing.assert_array_equal(loaded.user_embeddings_, m.user_embeddings_)
    np.testing.assert_array_equal(loaded.attention_, m.attention_)
    assert loaded.side_fields_ == m.side_fields_
    side = {"category": ["cat1", "cat2"], "brand": ["brand1_0", "x"], "price": [12.0, np.nan]}
    np.testing.assert_array_equal(loaded.embed_new_items(side), m.embed_new_items(side))
    np.testing.assert_array_equal(
        loaded.recommend(np.arange(10), k=5)[0], m.recommend(np.arange(10), k=5)[0]
    )


def test_model_without_side_information_refuses_new_items(tmp_path):
    x, _, _ = _planted(n_users=60)
    m = Item2Vec(**{**FAST, "epochs": 1}).fit(x)
    with pytest.raises(GemrecError, match="item_features"):
        m.embed_new_items({"category": "cat0"})
    m.save(tmp_path / "m")
    assert Item2Vec.load(tmp_path / "m").side_fields_ == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("embedding_dim", 0),
        ("walk_length", 1),
        ("window", 0),
        ("negatives", -1),
        ("lr", 0.0),
        ("graph", "bipartite"),
        ("cold_dropout", 1.0),
        ("side_features", "category"),
        ("session_gap_hours", -1.0),
        ("epochs", 1.5),
        ("popularity_weight", -1.0),
    ],
)
def test_bad_parameters_are_named(param, value):
    x, _, _ = _planted(n_users=20)
    with pytest.raises(ParameterError, match=param):
        Item2Vec(**{param: value}).fit(x)


def test_bad_item_features_are_explained():
    x, feats, _ = _planted(n_users=20)
    with pytest.raises(DataError, match="rows"):
        Item2Vec(**FAST).fit(
            x, side=SideInformation(item_features=feats.drop(columns="item").iloc[:5])
        )
    with pytest.raises(ParameterError, match="side_features"):
        Item2Vec(**FAST, side_features=["colour"]).fit(x, side=SideInformation(item_features=feats))
    with pytest.raises(DataError, match="item"):
        bad = feats.assign(item=feats["item"] + 1000)
        Item2Vec(**FAST).fit(x, side=SideInformation(item_features=bad))
