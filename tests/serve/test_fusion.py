"""A served fusion: each channel's candidates through its own fast path, the model's own lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gemrec.data.store import Dataset, write_dataset
from gemrec.fusion.fusion import Fusion
from gemrec.models import make_model
from gemrec.models.base import Recommender
from gemrec.serve import ServeSettings
from gemrec.serve._engine import Engine
from gemrec.serve._fusion import FusionScorer
from gemrec.serve._store import Event

#: a low-rank + sparse channel, an inner-product one (both through an index), two exact ones
CHANNELS = ["graphfilter", "svd", "rp3beta", "pop"]
PARAMS = {"graphfilter": {"n_components": 8, "item_item": "sparse"}, "svd": {"factors": 8}}


@pytest.fixture(scope="module")
def random_shop(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """300 users x 400 items, random pairs (enough items for the HNSW path to search)."""
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 400
    pairs = sorted(
        {
            (int(u), int(i))
            for u, i in zip(
                rng.integers(0, n_users, 6000), rng.integers(0, n_items, 6000), strict=True
            )
        }
    )
    edges = pd.DataFrame(
        {
            "user": np.int32([p[0] for p in pairs]),
            "item": np.int32([p[1] for p in pairs]),
            "weight": np.float32(1.0),
            "split": "train",
        }
    )
    users = pd.DataFrame(
        {"user": np.arange(n_users, dtype=np.int32), "user_id": [f"u{u}" for u in range(n_users)]}
    )
    items = pd.DataFrame(
        {"item": np.arange(n_items, dtype=np.int32), "item_id": [f"i{i}" for i in range(n_items)]}
    )
    path = tmp_path_factory.mktemp("fusion-serve") / "ds"
    return Dataset.open(write_dataset(path, users=users, items=items, edges=edges, manifest={}))


def _engine(ds: Dataset, model_dir, threshold: int, precompute: str = "off", **extra) -> Engine:  # type: ignore[no-untyped-def]
    """An engine over the fusion; lists scored live unless ``precompute`` is "on" or "auto"."""
    settings = ServeSettings(
        model_dir=model_dir,
        dataset_dir=ds.path,
        ann_threshold=threshold,
        precompute_lists=precompute,
        **extra,
    )
    return Engine(settings, Recommender.load(model_dir), ds, model_dir)


@pytest.fixture(scope="module", params=["weighted", "rrf"])
def fusion_dir(request, random_shop, tmp_path_factory):  # type: ignore[no-untyped-def]
    model = make_model(
        "fusion",
        channels=CHANNELS,
        channel_params=PARAMS,
        method=request.param,
        weights=[1.0, 0.5, 1.0, 0.25],
        n_candidates=20,
        validation="user",
    ).fit(random_shop.interactions("train"))
    return model.save(tmp_path_factory.mktemp("fusion-model") / request.param)


def _ids(items: list) -> list[int]:  # type: ignore[type-arg]
    return [int(r.item_id[1:]) for r in items]


def test_served_lists_equal_the_models_recommend(random_shop, fusion_dir):
    engine = _engine(random_shop, fusion_dir, 10**9)  # exact indexes
    model = engine.model
    assert isinstance(model, Fusion) and engine.fusion is not None
    # graphfilter and svd propose through an index, pop through its order, rp3beta exactly
    assert [ix is not None for ix in engine.fusion._indexes] == [True, True, False, False]
    assert [o is not None for o in engine.fusion._orders] == [False, False, False, True]
    users = np.arange(0, 300, 7)
    want_ids, want_scores = model.recommend(users, 10)
    for u, ids, scores in zip(users, want_ids, want_scores, strict=True):
        got = engine.recommend(f"u{u}", 10, [], with_reasons=False)
        assert got.strategy == "personalized"
        assert _ids(got.items) == ids.tolist()
        np.testing.assert_allclose([r.score for r in got.items], scores, rtol=1e-5, atol=1e-6)
    # users the model does not know, given by online events: the fused fold-in
    online = engine.online
    for j in range(12):
        events = [Event(f"new{j}", f"i{i}", "view", 0.0, seq=1) for i in (j, 3 * j + 40, j + 90)]
        items, w = online.weights(events)
        row = sp.csr_matrix((w, (np.zeros(len(items), int), items)), shape=(1, model.n_items))
        ids, scores = model.recommend(np.arange(1), 10, user_items=row)
        got = engine.recommend(f"new{j}", 10, events, with_reasons=False)
        assert got.strategy == "fold_in"
        assert _ids(got.items) == ids[0].tolist()
        np.testing.assert_allclose([r.score for r in got.items], scores[0], rtol=1e-5, atol=1e-6)


def test_a_fresh_event_changes_the_list_at_once(random_shop, fusion_dir):
    # a known user's fused scores blended with the fused fold-in of their session (OnlineState)
    engine = _engine(random_shop, fusion_dir, 10**9)
    model = engine.model
    changed = 0
    for u in range(0, 300, 30):
        events = [Event(f"u{u}", f"i{i}", "view", 0.0, seq=1) for i in (u % 13, 200 + u % 17)]
        items, w = engine.online.weights(events)
        row = sp.csr_matrix((w, (np.zeros(len(items), int), items)), shape=(1, model.n_items))
        blend = engine.interests.blend(
            model.score_new(row)[0], float(w.sum()), model.score(np.array([u]))[0]
        )
        blend[model.interactions_[u].indices] = -np.inf
        blend[items] = -np.inf
        want = np.argsort(-blend, kind="stable")[:10]
        got = engine.recommend(f"u{u}", 10, events, with_reasons=False)
        assert _ids(got.items) == want.tolist()
        before = engine.recommend(f"u{u}", 10, [], with_reasons=False)
        changed += _ids(before.items) != _ids(got.items)
    assert changed >= 5


def test_scorer_matches_the_model_through_hnsw(random_shop, fusion_dir):
    # with HNSW indexes the candidates are approximate: the fused scores stay the model's on
    # almost every list, and the engine says it retrieves through faiss
    engine = _engine(random_shop, fusion_dir, 1)
    assert engine.info()["retrieval"] == "faiss-hnsw"
    model = engine.model
    scorer = FusionScorer(model, 1)
    users = np.arange(0, 300, 5)
    want_ids, _ = model.recommend(users, 10)
    overlap = [
        len(set(_ids(engine.recommend(f"u{u}", 10, [], with_reasons=False).items)) & set(ids)) / 10
        for u, ids in zip(users, want_ids.tolist(), strict=True)
    ]
    assert np.mean(overlap) >= 0.97
    exact = FusionScorer(model, 10**9)
    np.testing.assert_allclose(exact.score(users[:5]), model.score(users[:5]), rtol=1e-4, atol=1e-5)
    assert scorer.score(users[:5]).shape == (5, model.n_items)


def test_precomputed_lists_are_the_live_lists(random_shop, fusion_dir):
    # a fusion precomputes its known users' lists by default; served lists are those the
    # engine scores live, with blocked items, long lists and fresh events handled as live
    live = _engine(random_shop, fusion_dir, 10**9)
    engine = _engine(random_shop, fusion_dir, 10**9, precompute="auto")
    assert live.precomputed is None and live.info()["precomputed_users"] is None
    assert engine.precomputed is not None and engine.precomputed.wait(timeout=120)
    assert engine.info()["precomputed_users"] == 300
    # "auto" keeps within the memory bound (300 users x 100 items x 8 bytes); "on" ignores it
    bound = 300 * 100 * 8
    assert _engine(random_shop, fusion_dir, 10**9, "auto", precompute_max_bytes=bound).precomputed
    over = _engine(random_shop, fusion_dir, 10**9, "auto", precompute_max_bytes=bound - 1)
    assert over.precomputed is None and over.info()["precomputed_users"] is None
    forced = _engine(random_shop, fusion_dir, 10**9, "on", precompute_max_bytes=bound - 1)
    assert forced.precomputed is not None
    users = range(0, 300, 3)
    for u in users:
        got = engine.recommend(f"u{u}", 10, [], with_reasons=False)
        want = live.recommend(f"u{u}", 10, [], with_reasons=False)
        assert _ids(got.items) == _ids(want.items)
        np.testing.assert_allclose(
            [r.score for r in got.items], [r.score for r in want.items], rtol=1e-5, atol=1e-6
        )
    # the precomputed path answered: its list is read, not scored (equal by construction)
    listed = engine.precomputed.top(3, 10, np.zeros(400, bool))
    assert listed is not None
    assert [f"i{i}" for i in listed[0]] == [r.item_id for r in live.recommend("u3", 10, []).items]
    # the engine serves the stored list: a changed row shows in the next answer
    stored = engine.precomputed.ids[12].copy()
    engine.precomputed.ids[12, :2] = stored[[1, 0]]
    swapped = _ids(engine.recommend("u12", 10, [], with_reasons=False).items)
    assert swapped[:2] == stored[[1, 0]].tolist() and swapped[2:] == stored[2:10].tolist()
    engine.precomputed.ids[12] = stored
    # a blocked item leaves the list; the next item moves up, as in the live list
    first = engine.recommend("u3", 10, [], with_reasons=False).items[0].item_id
    for e in (engine, live):
        e.catalogue.block({first: True})
    got = engine.recommend("u3", 10, [], with_reasons=False)
    assert first not in {r.item_id for r in got.items}
    assert _ids(got.items) == _ids(live.recommend("u3", 10, [], with_reasons=False).items)
    # longer than the stored lists: scored live
    assert engine.precomputed.top(3, 150, np.zeros(400, bool)) is None
    long = engine.recommend("u6", 150, [], with_reasons=False)
    assert _ids(long.items) == _ids(live.recommend("u6", 150, [], with_reasons=False).items)
    # a fresh event: scored live at once
    events = [Event("u9", "i5", "view", 0.0, seq=1), Event("u9", "i205", "view", 0.0, seq=2)]
    got = engine.recommend("u9", 10, events, with_reasons=False)
    assert _ids(got.items) == _ids(live.recommend("u9", 10, events, with_reasons=False).items)
    assert _ids(got.items) != _ids(engine.recommend("u9", 10, [], with_reasons=False).items)
