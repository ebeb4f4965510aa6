from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gemrec.data.store import Dataset, write_dataset
from gemrec.models import make_model
from gemrec.models.base import Recommender
from gemrec.models.svd import PureSVD
from gemrec.serve import ServeSettings
from gemrec.serve._engine import Engine
from gemrec.serve._store import Event


def test_similar_users_bin_numeric_metadata(tmp_path):
    """Users 0-9 touch items 0-5, 10-19 items 4-9, ...; a new user aged 22 (female) without
    interactions is grouped with the young women (ages 20-29 bin) and gets their items."""
    n_users, n_items = 50, 20
    ages = np.arange(20, 70, dtype=float)
    ages[3] = np.nan  # missing values form their own group
    users = pd.DataFrame(
        {
            "user": np.arange(n_users + 1, dtype=np.int32),
            "user_id": [f"u{i}" for i in range(n_users + 1)],
            "age": np.r_[ages, 22.0],
            "gender": ["F", "M"] * 25 + ["F"],
        }
    )
    items = pd.DataFrame(
        {"item": np.arange(n_items, dtype=np.int32), "item_id": [f"i{i}" for i in range(n_items)]}
    )
    pairs = [(u, (u // 10) * 4 + j) for u in range(n_users) for j in range(3)]
    edges = pd.DataFrame(
        {
            "user": np.int32([p[0] for p in pairs]),
            "item": np.int32([p[1] for p in pairs]),
            "weight": np.float32(1.0),
            "split": "train",
        }
    )
    ds = Dataset.open(
        write_dataset(tmp_path / "ds", users=users, items=items, edges=edges, manifest={})
    )
    model_dir = PureSVD(factors=4).fit(ds.interactions("train")).save(tmp_path / "m")
    engine = Engine(
        ServeSettings(model_dir=model_dir, dataset_dir=ds.path),
        Recommender.load(model_dir),
        ds,
        model_dir,
    )
    groups = engine.cold_start.user_groups
    assert (
        groups[50] == groups[0] == groups[2]
        and groups[50] != groups[1]
        and groups[50] != groups[10]
    )
    recs = engine.recommend("u50", 3, [])
    assert recs.strategy == "similar_users"
    assert {r.item_id for r in recs.items} <= {"i0", "i1", "i2", "i3", "i4", "i5"}


def test_online_interest_follows_the_documented_rule(tmp_path):
    """q = (1 - a) u + a |u| m / |m|, a = W / (W + c), with the dataset's own event weights
    halved every 10 events back, m the model's fold-in (Engine Notes)."""
    n_users, n_items = 30, 12
    pairs = [(u, (u % 3) * 4 + j) for u in range(n_users) for j in range(3)]
    edges = pd.DataFrame(
        {
            "user": np.int32([p[0] for p in pairs]),
            "item": np.int32([p[1] for p in pairs]),
            "weight": np.float32(1.0),
            "split": "train",
        }
    )
    users = pd.DataFrame({"user": np.arange(n_users, dtype=np.int32)})
    users["user_id"] = [f"u{i}" for i in range(n_users)]
    items = pd.DataFrame({"item": np.arange(n_items, dtype=np.int32)})
    items["item_id"] = [f"i{i}" for i in range(n_items)]
    manifest = {"event_weights": {"view": 1.0, "purchase": 7.0}}
    ds = Dataset.open(
        write_dataset(tmp_path / "ds", users=users, items=items, edges=edges, manifest=manifest)
    )
    model_dir = PureSVD(factors=3).fit(ds.interactions("train")).save(tmp_path / "m")
    model = Recommender.load(model_dir)
    settings = ServeSettings(model_dir=model_dir, dataset_dir=ds.path, online_pseudo_count=2.0)
    engine = Engine(settings, model, ds, model_dir)
    events = [Event("u0", "i5", "view", 1.0), Event("u0", "i9", "buy", 2.0)]  # buy = purchase
    w = np.array([1.0 * 2 ** (-1 / 10), 7.0])
    m = model.fold_in(model.item_embeddings_[[5, 9]], w.astype(np.float32))
    u = model.user_embeddings_[0]
    a = w.sum() / (w.sum() + 2.0)
    expected = (1 - a) * u + a * np.linalg.norm(u) * m / np.linalg.norm(m)
    np.testing.assert_allclose(engine.query_vector(0, events), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(engine.query_vector(None, events), m, rtol=1e-6)
    np.testing.assert_allclose(engine.query_vector(0, []), u)


@pytest.mark.parametrize("name", ["graphfilter", "itemknn", "userknn"])
def test_online_scores_equal_the_separate_reference(name, shop, tmp_path):
    # the online blend of a known user's scores and their session's fold-in (OnlineState Notes)
    ds = Dataset.open(shop)
    model_dir = make_model(name).fit(ds.interactions("train", "valid")).save(tmp_path / "m")
    model = Recommender.load(model_dir)
    engine = Engine(ServeSettings(model_dir=model_dir, dataset_dir=shop), model, ds, model_dir)
    online = engine.online
    user = 3
    user_id = engine.user_ids[user]
    picked = [engine.catalogue.item_ids[i] for i in (5, 9, 5)]
    events = [Event(user_id, i, "view", 0.0, seq=1) for i in picked]
    items, w = online.weights(events)
    row = sp.csr_matrix((w, (np.zeros(len(items), int), items)), shape=(1, model.n_items))
    learned = model.score(np.array([user]))[0]
    session = model.score_new(row)[0]
    expected = engine.interests.blend(session, float(w.sum()), learned)
    np.testing.assert_allclose(online.scores(user, events), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(online.scores(user, []), learned, rtol=1e-6)
    np.testing.assert_allclose(online.scores(None, events), session, rtol=1e-6)
    assert online.scores(None, []) is None


def test_low_rank_plus_sparse_lists_match_the_exact_engine(tmp_path):
    # graphfilter over the ANN threshold: low-pass candidates from HNSW + its sparse part's top,
    # re-scored exactly; the exact engine (threshold above the catalogue) is the reference
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 400
    pairs = {
        (int(u), int(i))
        for u, i in zip(rng.integers(0, n_users, 6000), rng.integers(0, n_items, 6000), strict=True)
    }
    users = pd.DataFrame(
        {"user": np.arange(n_users, dtype=np.int32), "user_id": [f"u{u}" for u in range(n_users)]}
    )
    items = pd.DataFrame(
        {"item": np.arange(n_items, dtype=np.int32), "item_id": [f"i{i}" for i in range(n_items)]}
    )
    edges = pd.DataFrame(
        {
            "user": np.int32([p[0] for p in sorted(pairs)]),
            "item": np.int32([p[1] for p in sorted(pairs)]),
            "weight": np.float32(1.0),
            "split": "train",
        }
    )
    ds = Dataset.open(
        write_dataset(tmp_path / "ds", users=users, items=items, edges=edges, manifest={})
    )
    model_dir = (
        make_model("graphfilter", n_components=16, item_item="sparse")
        .fit(ds.interactions("train"))
        .save(tmp_path / "m")
    )
    engines = {
        threshold: Engine(
            ServeSettings(model_dir=model_dir, dataset_dir=ds.path, ann_threshold=threshold),
            Recommender.load(model_dir),
            ds,
            model_dir,
        )
        for threshold in (1, 10**9)
    }
    assert engines[1].info()["retrieval"] == "faiss-hnsw"
    assert engines[10**9].info()["retrieval"] == "exact"
    model = engines[1].model
    overlap = []
    for u in range(0, n_users, 10):
        got = engines[1].recommend(f"u{u}", 10, [], with_reasons=False)
        want = engines[10**9].recommend(f"u{u}", 10, [], with_reasons=False)
        assert got.strategy == want.strategy == "personalized"
        ids = [int(r.item_id[1:]) for r in got.items]
        np.testing.assert_allclose(
            [r.score for r in got.items], model.score(np.array([u]))[0][ids], rtol=1e-4, atol=1e-5
        )  # the scores of the returned items are exact
        assert not set(ids) & set(model.interactions_[u].indices.tolist())
        overlap.append(len({r.item_id for r in got.items} & {r.item_id for r in want.items}) / 10)
    # a known user with fresh events: both parts blended with the full vectors' coefficients
    for u, first in [(v, i) for v in range(0, n_users, 30) for i in (v % 7, 200 + v % 9)]:
        # a second request of the same user reuses the norm of its learned scores
        events = [Event(f"u{u}", f"i{i}", "view", 0.0, seq=1) for i in (first, 100 + u % 50)]
        got = engines[1].recommend(f"u{u}", 10, events, with_reasons=False)
        want = engines[10**9].recommend(f"u{u}", 10, events, with_reasons=False)
        assert got.strategy == want.strategy == "personalized"
        np.testing.assert_allclose(
            [r.score for r in got.items],
            [
                dict((r.item_id, r.score) for r in want.items).get(r.item_id, r.score)
                for r in got.items
            ],
            rtol=1e-4,
            atol=1e-5,
        )  # the items both return have the same (exact) blended score
        overlap.append(len({r.item_id for r in got.items} & {r.item_id for r in want.items}) / 10)
    # a user the model does not know, with online events: the fold-in splits the same way
    for j in range(10):
        events = [Event(f"new{j}", f"i{i}", "view", 0.0, seq=1) for i in (j, j + 50, j + 90)]
        got = engines[1].recommend(f"new{j}", 10, events, with_reasons=False)
        want = engines[10**9].recommend(f"new{j}", 10, events, with_reasons=False)
        assert got.strategy == want.strategy == "fold_in"
        overlap.append(len({r.item_id for r in got.items} & {r.item_id for r in want.items}) / 10)
    assert np.mean(overlap) >= 0.95


def test_low_rank_split_of_a_recency_weighted_filter_equals_its_scores(shop, tmp_path):
    # a fitted user's part of the blend comes from the rows the model weighted by time
    ds = Dataset.open(shop)
    train = ds.interactions("train", "valid")
    assert train.timestamps is not None
    fitted = make_model("graphfilter", n_components=8, item_item="sparse", recency=2.0).fit(train)
    model = Recommender.load(fitted.save(tmp_path / "m"))
    engine = Engine(
        ServeSettings(model_dir=tmp_path / "m", dataset_dir=shop), model, ds, tmp_path / "m"
    )
    online = engine.online
    picked = [engine.catalogue.item_ids[i] for i in (5, 9)]
    for user in (3, 11):
        events = [Event(engine.user_ids[user], i, "cart", 0.0, seq=1) for i in picked]
        split = online.low_rank_split(user, events)
        assert split is not None
        q, sparse = split
        np.testing.assert_allclose(
            q @ model.item_embeddings_.T + sparse,
            online.scores(user, events),
            rtol=1e-4,
            atol=1e-6,
        )
