"""Users registered, updated and forgotten at run time (``POST /v1/users``, ``DELETE``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gemrec.data.store import Dataset
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.models.social import SocialRecommender
from gemrec.serve import open_store
from gemrec.serve.commands_retrain import retrain


def _cat(item_id: str) -> int:
    return int(item_id[1:]) // 20  # the shop's items i0-i19 are cat0, i20-i39 cat1, ...


def _recs(c: Any, user_id: str, k: int = 5) -> dict[str, Any]:
    r = c.get(f"/v1/users/{user_id}/recommendations", params={"k": k})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_new_user_with_attributes_or_friends_gets_the_matching_path(
    make_client: Any, pop_dir: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    extra = {"store": request.getfixturevalue("fresh_redis")} if backend == "redis" else {}
    c = make_client(pop_dir, **extra)
    assert _recs(c, "newbie")["strategy"] == "trending"
    # segment s1 is the segment of the users of block 1, who buy category cat1 only
    r = c.post("/v1/users", json={"user_id": "newbie", "attributes": {"segment": "s1"}})
    assert r.json() == {"created": 1, "updated": 0}
    body = _recs(c, "newbie")
    assert body["strategy"] == "similar_users"
    assert {_cat(x["item_id"]) for x in body["items"]} == {1}
    # following users of block 2 takes precedence over the attributes
    r = c.post("/v1/users", json={"user_id": "newbie", "friends": ["u60", "u61", "ghost"]})
    assert r.json() == {"created": 0, "updated": 1}
    body = _recs(c, "newbie")
    assert body["strategy"] == "social" and {_cat(x["item_id"]) for x in body["items"]} == {2}
    # an empty friend list drops the ties and keeps the attributes
    c.post("/v1/users", json={"user_id": "newbie", "friends": []})
    assert _recs(c, "newbie")["strategy"] == "similar_users"


def test_batch_is_idempotent_and_numbers_bin_like_the_dataset(
    make_client: Any, pop_dir: Path
) -> None:
    c = make_client(pop_dir)
    batch = {
        "users": [
            {"user_id": "a", "attributes": {"segment": "s0", "plan": "gold"}},
            {"user_id": "b", "friends": ["u30"]},
        ]
    }
    assert c.post("/v1/users/batch", json=batch).json() == {"created": 2, "updated": 0}
    assert c.post("/v1/users/batch", json=batch).json() == {"created": 0, "updated": 2}
    a, b = _recs(c, "a"), _recs(c, "b")
    # "plan" is not a dataset column: it is kept but does not narrow the group
    assert a["strategy"] == "similar_users" and {_cat(x["item_id"]) for x in a["items"]} == {0}
    assert b["strategy"] == "social" and {_cat(x["item_id"]) for x in b["items"]} == {1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"attributes": {"segment": "s1"}}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x", "attributes": {"bad name!": 1}}, "attributes.bad name!"),
        ({"user_id": "x", "attributes": {"segment": ["s1"]}}, "attributes.segment"),
        ({"user_id": "x", "friends": "u1"}, "friends"),
        ({"user_id": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_user_bodies_are_422_naming_the_field(
    make_client: Any, pop_dir: Path, body: dict[str, Any], field: str
) -> None:
    c = make_client(pop_dir)
    r = c.post("/v1/users", json=body)
    assert r.status_code == 422
    assert field in [d["field"] for d in r.json()["detail"]] or field in r.json()["message"]
    r = c.post("/v1/users/batch", json={"users": [{"user_id": "ok"}, body]})
    assert r.status_code == 422 and f"users.1.{field}" in r.json()["message"]
    assert c.post("/v1/users/batch", json={"users": [{"user_id": "ok"}]}).json()["created"] == 1


def test_a_registered_user_has_a_history_and_no_tie_to_themselves(
    make_client: Any, pop_dir: Path
) -> None:
    c = make_client(pop_dir)
    assert c.get("/v1/users/fresh/history").status_code == 404
    r = c.post("/v1/users", json={"user_id": "fresh", "friends": ["fresh", "u60"]})
    assert r.status_code == 200
    assert c.get("/v1/users/fresh/history").json() == {"user_id": "fresh", "events": []}
    assert c.app.state.service.store.get_user("fresh").friends == ("u60",)


def test_user_writes_need_the_key_and_respect_the_batch_limit(
    make_client: Any, pop_dir: Path
) -> None:
    c = make_client(pop_dir, api_key="k", max_batch=2)
    assert c.post("/v1/users", json={"user_id": "a"}).status_code == 401
    assert c.delete("/v1/users/u1").status_code == 401
    auth = {"Authorization": "Bearer k"}
    users = {"users": [{"user_id": f"n{i}"} for i in range(3)]}
    assert c.post("/v1/users/batch", json=users, headers=auth).status_code == 422
    assert c.post("/v1/users", json={"user_id": "a"}, headers=auth).status_code == 200


def test_delete_forgets_events_and_ties_and_retrain_leaves_the_user_out(
    make_client: Any, shop: Path, tmp_path: Path
) -> None:
    knn_dir = tmp_path / "knn"
    train_model(Dataset.open(shop), "itemknn", {"n_neighbors": 20}, knn_dir)
    store = f"sqlite:///{tmp_path / 'ev.sqlite3'}"
    c = make_client(knn_dir, store=store)
    events = [{"user_id": "walkin", "item_id": f"i{n}", "event_type": "buy"} for n in (20, 21)]
    events += [
        {"user_id": "u0", "item_id": "i40", "event_type": "view"},
        {"user_id": "u1", "item_id": "i41", "event_type": "view"},
    ]
    assert c.post("/v1/events", json={"events": events}).json()["accepted"] == 4
    c.post("/v1/users", json={"user_id": "fan", "friends": ["walkin", "u0"]})

    r = c.delete("/v1/users/walkin")
    assert r.json() == {"user_id": "walkin", "deleted": True, "events_removed": 2}
    assert c.get("/v1/users/walkin/history").status_code == 404
    assert _recs(c, "walkin")["strategy"] == "trending"  # no events left to fold in
    assert c.delete("/v1/users/u0").json()["events_removed"] == 1
    assert c.delete("/v1/users/nobody").status_code == 404
    s = open_store(store)
    try:
        fan = s.get_user("fan")
        assert fan is not None and fan.friends == ()  # ties to forgotten users are gone
        assert s.forgotten_users() == ["u0", "walkin"]
    finally:
        s.close()

    out = tmp_path / "knn-v2"
    summary = retrain(knn_dir, shop, store, out)
    assert summary["events_folded"] == 1 and summary["new_users"] == 0
    assert summary["users_forgotten"] == 1  # u0; walkin never reached the dataset
    old, new = Recommender.load(knn_dir), Recommender.load(out)
    assert old.interactions_[0].nnz > 0 and new.interactions_[0].nnz == 0
    assert new.interactions_[1, 41] == 1.0  # other users' events are folded as before
    np.testing.assert_array_equal(new.interactions_[2:].toarray(), old.interactions_[2:].toarray())


def test_social_path_scores_as_the_social_model(
    make_client: Any, pop_dir: Path, shop: Path
) -> None:
    """The served ``social`` list ranks by the ``social`` model's scores (two hops)."""
    c = make_client(pop_dir)
    engine = c.app.state.service.engine
    ds = Dataset.open(shop)
    model = SocialRecommender().fit(ds.interactions("train", "valid"), side=ds.side_information())
    lurker = engine.user_index["lurker0"]  # follows u60, u61, u62
    served = engine.cold_start._social_scores(lurker, None)
    np.testing.assert_allclose(served, model.score(np.array([lurker]))[0], atol=1e-5)
    # a new user following lurker0 reaches lurker0's ties at half weight (lurker0 has no items)
    via = engine.cold_start._social_scores(None, np.array([lurker]))
    np.testing.assert_allclose(via, 0.5 * served, atol=1e-6)
    c.post("/v1/users", json={"user_id": "fan", "friends": ["lurker0"]})
    assert _recs(c, "fan")["strategy"] == "social"
