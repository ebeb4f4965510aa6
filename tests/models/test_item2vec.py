"""Item2Vec (EGES): planted categories, cold start, the shared training loop, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import DataError, GemrecError, ParameterError
from gemrec.eval import evaluate
from gemrec.models.base import Recommender
from gemrec.models.fitting import fit_model
from gemrec.models.item2vec import AUTO_POPULARITY_WEIGHT, POPULARITY_WEIGHTS, Item2Vec

FAST = dict(
    embedding_dim=16,
    epochs=3,
    walks_per_item=8,
    walk_length=8,
    pairs_per_batch=512,
    lr=0.02,
    progress=False,
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


def _holdout(x: Interactions, seed: int = 0) -> tuple[Interactions, Interactions]:
    """One random item per user moved to a validation split (timestamps dropped)."""
    m = x.matrix.tocsr()
    rng = np.random.default_rng(seed)
    held = m.indptr[:-1] + rng.integers(0, np.diff(m.indptr))
    keep = np.ones(m.nnz, dtype=bool)
    keep[held] = False
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    shape = {"n_users": m.shape[0], "n_items": m.shape[1]}
    train = Interactions.from_arrays(rows[keep], m.indices[keep], **shape)
    valid = Interactions.from_arrays(rows[~keep], m.indices[~keep], **shape)
    return train, valid


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


@pytest.mark.parametrize(("timestamps", "window"), [(False, 1), (True, 3)])
def test_auto_window_is_one_step_on_cooccurrence_walks_and_three_on_sequences(
    timestamps, window, tmp_path
):
    x, _, _ = _planted(n_users=60)
    x = x if timestamps else _without_timestamps(x)
    m = Item2Vec(**{**FAST, "epochs": 1}).fit(x)
    assert m.window == "auto" and m.window_ == window
    m.save(tmp_path / "m")
    assert Item2Vec.load(tmp_path / "m").window_ == window
    # an explicit window is used as given
    assert Item2Vec(**{**FAST, "epochs": 1, "window": 2}).fit(x).window_ == 2


def test_auto_walks_per_item_follow_the_interactions_per_item(tmp_path):
    from gemrec.models._walks import walk_graph

    x, _, _ = _planted(n_users=300, per_user=12)  # 3,600 interactions on 80 items
    _, starts = walk_graph(x, "auto")
    m = Item2Vec(**{**FAST, "epochs": 1, "walks_per_item": "auto"}).fit(x)
    assert m.walks_per_item_ == int(np.ceil(10 * 3_600 / (len(starts) * FAST["walk_length"])))
    assert m.walks_per_item_ > 5
    m.save(tmp_path / "m")
    assert Item2Vec.load(tmp_path / "m").walks_per_item_ == m.walks_per_item_
    # an explicit number is used as given
    assert Item2Vec(**{**FAST, "epochs": 1}).fit(x).walks_per_item_ == FAST["walks_per_item"]


def test_defaults_learn_more_than_popularity_on_movielens_1m():
    """Shipped defaults but 20 walks per item (``"auto"`` draws 100 here, a fit of minutes) on the
    UltraGCN split of MovieLens-1M: at least 70 % of ItemKNN's Recall@20 (five negatives and a
    three-step window on the co-occurrence walks gave 49 % with 5 walks, barely above
    popularity)."""
    from gemrec.models.knn import ItemKNN
    from gemrec.models.popularity import Popularity
    from tests.conftest import shared_lightgcn_split

    train, test = shared_lightgcn_split("movielens-1m/ultragcn_implicit_split")
    model = Item2Vec(walks_per_item=20, progress=False).fit(train)
    recall = evaluate(model, test, ks=[20])["recall@20"]
    knn = evaluate(ItemKNN().fit(train), test, ks=[20])["recall@20"]
    pop = evaluate(Popularity().fit(train), test, ks=[20])["recall@20"]
    assert recall >= 0.7 * knn and recall >= 1.25 * pop


# ----------------------------------------------------------------------------- training loop
def test_without_valid_every_epoch_runs_and_the_loss_falls():
    x, _, _ = _planted(n_users=120)
    m = Item2Vec(**{**FAST, "epochs": 4}, seed=0).fit(x)
    assert [h["epoch"] for h in m.history_] == [1, 2, 3, 4] and m.best_epoch_ == 4
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]
    assert not any(k.startswith("valid_") for k in m.history_[0])


def test_early_stopping_on_valid_stops_and_keeps_the_best_epoch():
    x, _, _ = _planted(n_users=200)
    train, valid = _holdout(x)
    params = {**FAST, "epochs": 12, "patience": 2, "eval_k": 5, "seed": 0}
    m = Item2Vec(**params, popularity_weight=0.5).fit(train, valid=valid)
    recalls = [h["valid_recall@5"] for h in m.history_]
    assert len(recalls) < 12, "no early stop: the validation recall kept improving"
    assert m.best_epoch_ == m.history_[int(np.argmax(recalls))]["epoch"]
    assert m.best_epoch_ < len(recalls) and recalls[-1] < max(recalls)
    assert evaluate(m, valid, ks=[5])["recall@5"] == pytest.approx(max(recalls))
    # the kept embeddings are those an uninterrupted run of best_epoch_ epochs ends with
    shorter = Item2Vec(**{**params, "epochs": m.best_epoch_}).fit(train)
    np.testing.assert_array_equal(m.item_embeddings_, shorter.item_embeddings_)
    np.testing.assert_array_equal(m.user_embeddings_, shorter.user_embeddings_)


def test_auto_popularity_weight_is_the_best_on_valid_and_the_refit_keeps_it(tmp_path):
    x, _, _ = _planted(n_users=200)
    train, valid = _holdout(x)
    params = {**FAST, "epochs": 3, "eval_k": 5, "seed": 0}
    m = Item2Vec(**params).fit(train, valid=valid)
    tried = m.popularity_validation_
    assert sorted(tried) == sorted(POPULARITY_WEIGHTS)
    assert tried[m.popularity_weight_] == max(tried.values())
    assert len(set(tried.values())) > 1, "the prior weight changed no list: a vacuous choice"
    # the vectors are the best epoch's (validated with the provisional weight), re-weighted
    fixed = Item2Vec(**params, popularity_weight=AUTO_POPULARITY_WEIGHT).fit(train, valid=valid)
    np.testing.assert_array_equal(m.item_embeddings_, fixed.item_embeddings_)
    assert evaluate(m, valid, ks=[5])["recall@5"] == pytest.approx(tried[m.popularity_weight_])
    assert np.all(m.user_embeddings_[:, -1] == np.float32(m.popularity_weight_))
    # saved and loaded, and kept by the refit on train + valid (which has no validation split)
    m.save(tmp_path / "m")
    assert Recommender.load(tmp_path / "m").popularity_weight_ == m.popularity_weight_
    refit = fit_model(Item2Vec(**params), train, valid=valid).model
    assert (
        refit.popularity_weight_ == m.popularity_weight_
        and refit.popularity_weight == m.popularity_weight_
    )
    # without a validation split "auto" is the provisional weight
    assert Item2Vec(**params).fit(train).popularity_weight_ == AUTO_POPULARITY_WEIGHT


def test_resume_from_a_checkpoint_continues_the_same_run(tmp_path):
    x, feats, _ = _planted(n_users=120)
    train, valid = _holdout(x)
    params = {**FAST, "epochs": 4, "eval_every": 1, "patience": 10, "seed": 3}
    full = Item2Vec(**params).fit(train, valid=valid, side=SideInformation(item_features=feats))
    ckpt = str(tmp_path / "ckpt")
    Item2Vec(**{**params, "epochs": 2, "checkpoint_dir": ckpt}).fit(
        train, valid=valid, side=SideInformation(item_features=feats)
    )
    assert json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())["epoch"] == 2
    resumed = Item2Vec(**{**params, "checkpoint_dir": ckpt}).fit(
        train, valid=valid, side=SideInformation(item_features=feats)
    )
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    assert resumed.best_epoch_ == full.best_epoch_
    np.testing.assert_array_equal(resumed.item_embeddings_, full.item_embeddings_)
    np.testing.assert_array_equal(resumed.user_embeddings_, full.user_embeddings_)
    np.testing.assert_array_equal(resumed.attention_, full.attention_)
    new = {"category": ["cat1"], "price": [12.0]}
    np.testing.assert_array_equal(resumed.embed_new_items(new), full.embed_new_items(new))


def test_checkpoint_with_other_side_information_is_refused(tmp_path):
    x, feats, _ = _planted(n_users=60)
    params = {**FAST, "epochs": 1, "checkpoint_dir": str(tmp_path)}
    Item2Vec(**params).fit(x, side=SideInformation(item_features=feats))
    other = feats.assign(brand=feats["brand"].iloc[::-1].to_numpy())
    with pytest.raises(GemrecError, match="another run"):
        Item2Vec(**{**params, "epochs": 2}).fit(x, side=SideInformation(item_features=other))


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
        ("walks_per_item", 0),
        ("walks_per_item", "many"),
        ("window", 0),
        ("window", "wide"),
        ("lr_decay", 0.0),
        ("lr_decay", 1.5),
        ("negatives", -1),
        ("lr", 0.0),
        ("graph", "bipartite"),
        ("cold_dropout", 1.0),
        ("side_features", "category"),
        ("session_gap_hours", -1.0),
        ("epochs", 1.5),
        ("popularity_weight", -1.0),
        ("patience", 0),
        ("eval_every", 0),
        ("progress", "yes"),
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
