"""The HTTP API on the known-structure shop (users of block c like category c)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gemrec.data.store import Dataset
from gemrec.models.base import ModelTags
from gemrec.models.popularity import Popularity
from gemrec.serve import (
    Event,
    ServeSettings,
    demo_session,
    format_replay,
    open_store,
    replay_session,
)
from gemrec.serve._engine import Engine

K = 5


def cat_of(item_id: str) -> str:
    return f"cat{int(item_id[1:]) // 20}" if item_id[1:].isdigit() else "?"


def train_items(shop, user_id):
    ds = Dataset.open(shop)
    e = ds.edges
    u = ds.user_index[user_id]
    return {f"i{i}" for i in e[(e.user == u) & e.split.isin(["train", "valid"])].item}


def recs(client, user_id, **params):
    r = client.get(f"/v1/users/{user_id}/recommendations", params={"k": K, **params})
    assert r.status_code == 200, r.text
    return r.json()


def post(client, events, **kw):
    return client.post("/v1/events", json={"events": events}, **kw)


# --------------------------------------------------------------------------- personalisation
def test_known_user_gets_own_category_without_seen_items(make_client, svd_dir, shop):
    c = make_client(svd_dir)
    body = recs(c, "u0")
    ids = [r["item_id"] for r in body["items"]]
    assert body["strategy"] == "personalized" and len(ids) == K
    assert all(cat_of(i) == "cat0" for i in ids)
    assert not set(ids) & train_items(shop, "u0")
    assert [r["score"] for r in body["items"]] == sorted(
        (r["score"] for r in body["items"]), reverse=True
    )
    assert all(r["reason"].startswith("because you") for r in body["items"])
    seen = recs(c, "u0", exclude_seen="false")["items"]
    assert set(r["item_id"] for r in seen) & train_items(shop, "u0")


def test_event_is_reflected_in_the_next_list(make_client, svd_dir):
    c = make_client(svd_dir)
    first = [r["item_id"] for r in recs(c, "u0")["items"]]
    r = post(c, [{"user_id": "u0", "item_id": first[0], "event_type": "view"}])
    assert r.json() == {"accepted": 1, "duplicates": 0}
    after = [r["item_id"] for r in recs(c, "u0")["items"]]
    assert first[0] not in after
    # interest moves: a few purchases in cat2 turn a cat0 user's list towards cat2
    post(c, [{"user_id": "u0", "item_id": f"i{n}", "event_type": "buy"} for n in (40, 41, 42, 43)])
    moved = recs(c, "u0")
    assert moved["strategy"] == "personalized"
    assert sum(cat_of(r["item_id"]) == "cat2" for r in moved["items"]) >= 4
    assert not {"i40", "i41", "i42", "i43"} & {r["item_id"] for r in moved["items"]}
    assert "because you bought i4" in moved["items"][0]["reason"]


def test_unseen_user_is_personalised_from_first_events(make_client, svd_dir):
    c = make_client(svd_dir)
    assert recs(c, "newbie")["strategy"] == "trending"
    post(
        c,
        [
            {"user_id": "newbie", "item_id": "i21", "event_type": "view"},
            {"user_id": "newbie", "item_id": "i22", "event_type": "cart"},
        ],
    )
    body = recs(c, "newbie")
    assert body["strategy"] == "fold_in"
    ids = [r["item_id"] for r in body["items"]]
    assert all(cat_of(i) == "cat1" for i in ids) and not {"i21", "i22"} & set(ids)


def test_non_embedding_model_uses_its_own_scores(make_client, pop_dir, shop):
    c = make_client(pop_dir)
    body = recs(c, "u0", k=10)
    ds = Dataset.open(shop)
    e = ds.edges[ds.edges.split != "test"]
    counts = e.groupby("item").size()
    seen = {int(i[1:]) for i in train_items(shop, "u0")}
    expected = [
        f"i{i}"
        for i in sorted((i for i in counts.index if i not in seen), key=lambda i: (-counts[i], i))[
            :10
        ]
    ]
    assert [r["item_id"] for r in body["items"]] == expected
    # reasons from co-occurrence: u0 (block 0) shares users with cat0 items only
    for r in body["items"]:
        if cat_of(r["item_id"]) == "cat0":
            assert r["reason"].startswith("because you interacted with i")
        else:
            assert r["reason"] is None
    post(c, [{"user_id": "u0", "item_id": expected[0], "event_type": "view"}])
    assert expected[0] not in [r["item_id"] for r in recs(c, "u0", k=10)["items"]]


# --------------------------------------------------------------------------- cold start
def test_trending_follows_time_decayed_popularity(make_client, svd_dir, shop):
    c = make_client(svd_dir, trending_half_life_days=1.0)
    body = recs(c, "stranger", k=3)
    assert body["strategy"] == "trending"
    e = Dataset.open(shop).edges
    e = e[e.split != "test"]
    w = np.exp2(-(e.last_timestamp.max() - e.last_timestamp) / 86400.0)
    ref = pd.Series(w.to_numpy()).groupby(e.item.to_numpy()).sum().sort_values(ascending=False)
    assert [r["item_id"] for r in body["items"]] == [f"i{i}" for i in ref.index[:3]]
    assert all(r["reason"] == "trending now" for r in body["items"])


def test_cold_start_paths(make_client, svd_dir):
    c = make_client(svd_dir)
    body = recs(c, "stranger", category="cat1")
    assert body["strategy"] == "popular_in_category"
    assert [cat_of(r["item_id"]) for r in body["items"]] == ["cat1"] * K
    social = recs(c, "lurker0")  # follows users u60-u62 (block 2)
    assert social["strategy"] == "social" and all(
        cat_of(r["item_id"]) == "cat2" for r in social["items"][:3]
    )
    similar = recs(c, "lurker1")  # segment s2 = the users of block 2
    assert similar["strategy"] == "similar_users" and all(
        cat_of(r["item_id"]) == "cat2" for r in similar["items"]
    )
    assert (
        recs(c, "lurker2")["items"][0]["item_id"] == "i0"
    )  # segment s0: block 0's most popular item


# --------------------------------------------------------------------------- filters
def test_category_filter_blocklist_and_diversity_cap(make_client, svd_dir):
    c = make_client(svd_dir, blocklist=("i1", "i2"), diversity_cap=2)
    filtered = recs(c, "u0", category="cat1", k=8)
    assert len(filtered["items"]) == 8 and {cat_of(r["item_id"]) for r in filtered["items"]} == {
        "cat1"
    }
    body = recs(c, "u0", k=6)
    ids = [r["item_id"] for r in body["items"]]
    assert len(ids) == 6 and not {"i1", "i2"} & set(ids)
    assert pd.Series([cat_of(i) for i in ids]).value_counts().max() <= 2
    assert (
        recs(c, "u0", k=60, exclude_seen="false", category="cat0")["items"].__len__() == 18
    )  # 20 - blocklist


def test_unavailable_and_deleted_items_leave_every_result(make_client, svd_dir):
    c = make_client(svd_dir)
    top = [r["item_id"] for r in recs(c, "u0")["items"]]
    assert c.post(
        "/v1/items", json={"items": [{"item_id": top[0], "available": False}]}
    ).json() == {"created": 0, "updated": 1}
    assert c.delete(f"/v1/items/{top[1]}").json() == {"item_id": top[1], "deleted": True}
    after = [r["item_id"] for r in recs(c, "u0")["items"]]
    assert len(after) == K and not {top[0], top[1]} & set(after)
    sim = [r["item_id"] for r in c.get("/v1/items/i5/similar", params={"k": 30}).json()["items"]]
    assert not {top[0], top[1]} & set(sim)
    assert c.get(f"/v1/items/{top[1]}/similar").status_code == 404
    assert c.delete("/v1/items/nope").status_code == 404
    c.post("/v1/items", json={"items": [{"item_id": top[0], "available": True}]})
    c.post("/v1/items", json={"items": [{"item_id": top[1], "category": "cat0"}]})  # re-added
    again = [r["item_id"] for r in recs(c, "u0", k=20)["items"]]
    assert top[0] in again and top[1] in again


def test_new_item_gets_side_info_embedding(make_client, svd_dir):
    c = make_client(svd_dir)
    r = c.post(
        "/v1/items",
        json={
            "items": [
                {
                    "item_id": "fresh",
                    "category": "cat2",
                    "brand": "b1",
                    "title": "cat2 gadget",
                    "price": 9.5,
                }
            ]
        },
    )
    assert r.json() == {"created": 1, "updated": 0}
    sim = c.get("/v1/items/fresh/similar", params={"k": 5}).json()["items"]
    assert all(cat_of(s["item_id"]) == "cat2" for s in sim)
    # a cat2 user can now get it recommended, and events on it are accepted
    ids = [x["item_id"] for x in recs(c, "u60", k=20)["items"]]
    assert "fresh" in ids
    assert (
        post(c, [{"user_id": "u60", "item_id": "fresh", "event_type": "buy"}]).json()["accepted"]
        == 1
    )
    assert "fresh" not in [x["item_id"] for x in recs(c, "u60", k=20)["items"]]


@pytest.mark.parametrize("ann_threshold", [10, 20_000])
def test_updated_new_item_is_embedded_from_its_new_side_information(
    make_client, svd_dir, ann_threshold
):
    c = make_client(svd_dir, ann_threshold=ann_threshold)
    item = {"item_id": "fresh", "category": "cat0", "brand": "b0", "title": "cat0 gadget"}
    c.post("/v1/items", json={"items": [item]})
    assert {cat_of(s["item_id"]) for s in c.get("/v1/items/fresh/similar").json()["items"]} == {
        "cat0"
    }
    moved = {"item_id": "fresh", "category": "cat2", "brand": "b1", "title": "cat2 gadget"}
    assert c.post("/v1/items", json={"items": [moved]}).json() == {"created": 0, "updated": 1}
    sim = c.get("/v1/items/fresh/similar").json()["items"]
    assert {cat_of(s["item_id"]) for s in sim} == {"cat2"}
    assert "fresh" in [x["item_id"] for x in recs(c, "u60", k=20)["items"]]
    assert "fresh" not in [x["item_id"] for x in recs(c, "u0", k=20)["items"]]
    # availability alone does not move it
    c.post("/v1/items", json={"items": [{"item_id": "fresh", "available": True}]})
    assert c.get("/v1/items/fresh/similar").json()["items"] == sim


def test_similar_items(make_client, svd_dir, pop_dir):
    for d in (svd_dir, pop_dir):
        c = make_client(d)
        sim = c.get("/v1/items/i0/similar", params={"k": 5}).json()
        assert sim["item_id"] == "i0" and len(sim["items"]) == 5
        assert all(cat_of(s["item_id"]) == "cat0" and s["item_id"] != "i0" for s in sim["items"])
    assert c.get("/v1/items/zzz/similar").status_code == 404


# --------------------------------------------------------------------------- explain, history
def test_explain_paths_count_co_users(make_client, svd_dir, shop):
    c = make_client(svd_dir)
    target = recs(c, "u0")["items"][0]["item_id"]
    body = c.get("/v1/explain", params={"user_id": "u0", "item_id": target}).json()
    assert body["paths"], body
    ds = Dataset.open(shop)
    e = ds.edges[ds.edges.split != "test"]
    users_of = e.groupby("item").user.apply(set)
    tgt = int(target[1:])
    for p in body["paths"]:
        assert p["path"] == ["u0", p["via_item_id"], target]
        x = int(p["via_item_id"][1:])
        assert p["via_item_id"] in train_items(shop, "u0")
        assert p["co_users"] == len(users_of[x] & users_of[tgt])
        ref = p["co_users"] / np.sqrt(len(users_of[x]) * len(users_of[tgt]))
        assert p["similarity"] == pytest.approx(ref, abs=1e-5)
    weights = [p["weight"] for p in body["paths"]]
    assert weights == sorted(weights, reverse=True)
    assert "people who interacted with" in body["paths"][0]["description"]
    # online events become path sources too
    post(c, [{"user_id": "u0", "item_id": "i41", "event_type": "buy"}])
    online = c.get("/v1/explain", params={"user_id": "u0", "item_id": "i40"}).json()
    assert any(p["via_item_id"] == "i41" and p["user_event"] == "buy" for p in online["paths"])
    assert c.get("/v1/explain", params={"user_id": "u0", "item_id": "nope"}).status_code == 404
    assert c.get("/v1/explain", params={"user_id": "ghost", "item_id": "i1"}).status_code == 404


def test_history_has_offline_and_online(make_client, svd_dir, shop):
    c = make_client(svd_dir)
    post(
        c,
        [
            {
                "user_id": "u0",
                "item_id": "i50",
                "event_type": "view",
                "timestamp": 5.0,
                "event_id": "h1",
            }
        ],
    )
    events = c.get("/v1/users/u0/history").json()["events"]
    offline = {e["item_id"] for e in events if e["source"] == "offline"}
    online = [e for e in events if e["source"] == "online"]
    assert offline == train_items(shop, "u0")
    assert [(e["item_id"], e["event_id"], e["timestamp"]) for e in online] == [("i50", "h1", 5.0)]
    assert c.get("/v1/users/ghost/history").status_code == 404


# --------------------------------------------------------------------------- validation and limits
def test_bad_payloads_name_the_field(make_client, pop_dir):
    c = make_client(pop_dir)
    r = post(c, [{"user_id": "u0", "event_type": "view"}])
    assert r.status_code == 422 and "events.0.item_id" in r.json()["message"]
    r = post(
        c, [{"user_id": "u0", "item_id": "i1", "event_type": "view", "timestamp": "yesterday"}]
    )
    assert r.status_code == 422 and "events.0.timestamp" in r.json()["message"]
    r = post(c, [{"user_id": "u0", "item_id": "i1", "event_type": "view", "colour": "red"}])
    assert r.status_code == 422 and "events.0.colour" in r.json()["message"]
    r = post(
        c,
        [
            {"user_id": "u0", "item_id": "i1", "event_type": "view"},
            {"user_id": "u0", "item_id": "nope", "event_type": "view"},
        ],
    )
    assert r.status_code == 404 and r.json()["detail"] == (
        "unknown item_id 'nope' (events.1.item_id); add it first with POST /v1/items"
    )
    assert (
        c.get("/v1/users/u0/history").json()["events"][-1]["source"] == "offline"
    )  # nothing stored
    r = c.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = c.get("/v1/users/u0/recommendations", params={"k": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "k"
    r = c.get("/v1/users/u0/recommendations", params={"k": "ten"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "k"
    r = c.get("/v1/users/u0/recommendations", params={"exclude_seen": "maybe"})
    assert r.status_code == 422 and "exclude_seen" in r.json()["message"]
    r = c.get("/v1/users/u0/recommendations", params={"k": 10**6})
    assert r.status_code == 422 and "k must be at most" in r.json()["message"]
    r = c.post("/v1/items", json={"items": [{"item_id": "x", "price": -1}]})
    assert r.status_code == 422 and "items.0.price" in r.json()["message"]
    assert c.get("/v1/users/u0/recommendations", params={"category": "nope"}).status_code == 404


def test_size_limits(make_client, pop_dir):
    c = make_client(pop_dir, max_batch=10, max_body_bytes=2048)
    ev = {"user_id": "u0", "item_id": "i1", "event_type": "view"}
    r = post(c, [ev] * 11)
    assert r.status_code == 422 and r.json()["message"] == (
        "events: batch of 11 events exceeds the limit of 10; split it"
    )
    r = post(c, [{**ev, "user_id": "x" * 200}] * 10)
    assert r.status_code == 413 and "exceeds the limit of 2048 bytes" in r.json()["detail"]

    def chunks():  # no content-length: counted while streaming
        yield b'{"events": ['
        for _ in range(100):
            yield b'{"user_id": "u0", "item_id": "i1", "event_type": "view"},'
        yield b"]}"

    r = c.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert post(c, [ev] * 10).json()["accepted"] == 10


def test_idempotent_retries(make_client, pop_dir):
    c = make_client(pop_dir)
    batch = [
        {"user_id": "u1", "item_id": f"i{n}", "event_type": "view", "event_id": f"e{n}"}
        for n in range(5)
    ]
    assert post(c, batch).json() == {"accepted": 5, "duplicates": 0}
    assert post(c, [*batch, {**batch[0], "event_id": "e9"}]).json() == {
        "accepted": 1,
        "duplicates": 5,
    }
    online = [e for e in c.get("/v1/users/u1/history").json()["events"] if e["source"] == "online"]
    assert len(online) == 6


def test_api_key_on_writes(make_client, pop_dir):
    c = make_client(pop_dir, api_key="s3cret")
    ev = [{"user_id": "u0", "item_id": "i1", "event_type": "view"}]
    assert post(c, ev).status_code == 401
    assert post(c, ev, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert post(c, ev, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.post("/v1/admin/reload").status_code == 401
    assert c.delete("/v1/items/i1").status_code == 401
    assert c.get("/v1/users/u0/recommendations").status_code == 200
    locked = make_client(pop_dir, api_key="s3cret", protect_reads=True)
    assert locked.get("/v1/users/u0/recommendations").status_code == 401
    assert (
        locked.get(
            "/v1/users/u0/recommendations", headers={"Authorization": "Bearer s3cret"}
        ).status_code
        == 200
    )


# --------------------------------------------------------------------------- operations
def test_health_metrics_and_reload(make_client, svd_dir, pop_dir):
    c = make_client(svd_dir)
    h = c.get("/healthz").json()
    assert h["status"] == "ok" and h["model"] == "svd" and h["retrieval"] == "exact"
    post(c, [{"user_id": "u0", "item_id": "i1", "event_type": "view", "event_id": "m1"}] * 2)
    recs(c, "u0")
    text = c.get("/metrics").text
    assert (
        "gemrec_events_ingested_total 1.0" in text and "gemrec_events_duplicate_total 1.0" in text
    )
    assert f'gemrec_model_info{{model="svd",version="{h["model_version"]}"}} 1.0' in text
    assert (
        'gemrec_request_seconds_count{method="GET",route="/v1/users/{user_id}/recommendations"} 1.0'
        in text
    )
    assert 'gemrec_recommendations_total{strategy="personalized"} 1.0' in text
    r = c.post("/v1/admin/reload", json={"model_dir": str(pop_dir)})
    assert r.status_code == 200 and r.json()["model"] == "pop"
    assert c.get("/healthz").json()["model"] == "pop"
    assert 'gemrec_model_info{model="pop"' in c.get("/metrics").text
    # online state survives the swap: the viewed item stays excluded
    assert "i1" not in [x["item_id"] for x in recs(c, "u0", k=20)["items"]]
    r = c.post("/v1/admin/reload", json={"model_dir": "/no/such/dir"})
    assert r.status_code == 404 and r.json()["detail"] == (
        "model_dir '/no/such/dir' is not a gemrec model directory (no manifest.json)"
    )


def test_ann_retrieval_chosen_above_threshold(make_client, svd_dir):
    exact = make_client(svd_dir)
    ann = make_client(svd_dir, ann_threshold=10)
    assert ann.get("/healthz").json()["retrieval"] == "faiss-hnsw"
    for user in ("u0", "u31", "u77"):
        a = [r["item_id"] for r in recs(ann, user, k=10)["items"]]
        b = [r["item_id"] for r in recs(exact, user, k=10)["items"]]
        assert len(a) == 10 and len(set(a) & set(b)) >= 9


def test_replay_session_shows_the_list_changing(make_client, svd_dir):
    c = make_client(svd_dir)
    steps = replay_session(
        c,
        "shopper",
        [
            {"item_id": "i20", "event_type": "view"},
            {"item_id": "i21", "event_type": "cart"},
            {"item_id": "i22", "event_type": "buy"},
        ],
        k=5,
    )
    assert len(steps) == 4 and steps[0][0] is None
    assert [s[1]["strategy"] for s in steps] == ["trending", "fold_in", "fold_in", "fold_in"]
    for n, (_event, body) in enumerate(steps[1:], start=1):
        ids = {r["item_id"] for r in body["items"]}
        assert not {f"i{20 + j}" for j in range(n)} & ids
        assert all(cat_of(i) == "cat1" for i in ids)
    text = format_replay(steps)
    assert text.splitlines()[0].startswith("before the session [trending]")
    assert "after buy i22 [fold_in]" in text


def test_demo_session_replays_a_real_users_test_items(svd_dir, shop):
    steps, text = demo_session(svd_dir, shop, n_events=3, k=4)
    assert len(steps) == 4 and steps[0][1]["strategy"] == "trending"
    assert all(body["strategy"] == "fold_in" for _, body in steps[1:])
    posted = [event["item_id"] for event, _ in steps[1:]]
    e = Dataset.open(shop).edges
    owners = [set(e[e.item == int(i[1:])].user) for i in posted]
    assert set.intersection(*owners)  # one real user's items
    assert int(posted[0][1:]) in set(e[e.split == "test"].item)  # held-out item first
    assert not set(posted) & {r["item_id"] for r in steps[-1][1]["items"]}
    assert len(text.splitlines()) == 4


def test_models_without_fold_in_use_item_to_item_for_new_users(pop_dir, shop, tmp_path):
    class NoFoldIn(Popularity):
        tags = ModelTags()  # declares no fold-in

        def score_new(self, user_items):
            raise AssertionError("the engine must not call score_new of a model without fold-in")

    model = NoFoldIn.load(pop_dir)
    engine = Engine(
        ServeSettings(model_dir=pop_dir, dataset_dir=shop), model, Dataset.open(shop), pop_dir
    )
    store = open_store(f"sqlite:///{tmp_path / 'ev.sqlite3'}")
    store.append(
        [
            Event("walkin", "i41", "view", 1.0, None, "a"),
            Event("walkin", "i42", "buy", 2.0, None, "b"),
        ]
    )
    recs = engine.recommend("walkin", 5, engine.online_events(store, "walkin"))
    ids = [r.item_id for r in recs.items]
    assert recs.strategy == "fold_in" and len(ids) == 5
    # co-occurrence neighbours of cat2 items are cat2 items (block structure), seen ones excluded
    assert all(cat_of(i) == "cat2" for i in ids) and not {"i41", "i42"} & set(ids)
    store.close()


def test_state_is_swapped_through_dependency_overrides(make_client, svd_dir, shop, tmp_path):
    from dataclasses import replace

    from gemrec.serve import get_state

    c = make_client(svd_dir)
    real = c.app.state.service
    other = open_store(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    other.append(
        [Event("u0", "i41", "buy", 1.0, None, "o1"), Event("u0", "i42", "buy", 2.0, None, "o2")]
    )

    async def fake_state():
        return replace(real, store=other)

    c.app.dependency_overrides[get_state] = fake_state
    try:
        moved = [r["item_id"] for r in recs(c, "u0", k=10)["items"]]
        assert not {"i41", "i42"} & set(moved)
        assert sum(cat_of(i) == "cat2" for i in moved) >= 5
    finally:
        c.app.dependency_overrides.clear()
        other.close()
    assert all(cat_of(r["item_id"]) == "cat0" for r in recs(c, "u0")["items"])
