"""Every model served through one API."""

from __future__ import annotations

import pytest

from gemrec.data.store import Dataset
from gemrec.models import get_model_class

MODELS = {
    "itemknn": {},
    "rp3beta": {},
    "graphfilter": {},
    "lightgcn": {"epochs": 3},
    # small-graph settings (the defaults are sized for catalogues of thousands of items)
    "item2vec": {
        "embedding_dim": 16,
        "walks_per_item": 8,
        "walk_length": 8,
        "pairs_per_batch": 512,
        "lr": 0.02,
    },
    # a fused model serves like any other (small channel set: the defaults fit lightgcn twice)
    "fusion": {"channels": ["rp3beta", "itemknn", "pop"]},
}


def cat_of(item_id: str) -> int:
    return int(item_id[1:]) // 20 if item_id[1:].isdigit() else -1


def _served(name, shop, tmp_path, make_client):
    """A client serving model ``name`` fitted on the shop."""
    model = get_model_class(name)(**MODELS[name]).fit(Dataset.open(shop).interactions())
    return make_client(model.save(tmp_path / name))


def _assert_new_user_is_folded_in(c):
    """Two views of cat2 items by an unseen user: a fold-in list of other cat2 items."""
    events = [{"user_id": "nu", "item_id": f"i{n}", "event_type": "view"} for n in (41, 42)]
    assert c.post("/v1/events", json={"events": events}).json()["accepted"] == 2
    fresh = c.get("/v1/users/nu/recommendations", params={"k": 5}).json()
    assert fresh["strategy"] == "fold_in"
    assert sum(cat_of(r["item_id"]) == 2 for r in fresh["items"]) >= 4
    assert not {"i41", "i42"} & {r["item_id"] for r in fresh["items"]}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_any_model_is_served(name, shop, tmp_path, make_client):
    c = _served(name, shop, tmp_path, make_client)
    body = c.get("/v1/users/u0/recommendations", params={"k": 5}).json()
    assert body["strategy"] == "personalized" and len(body["items"]) == 5
    assert sum(cat_of(r["item_id"]) == 0 for r in body["items"]) >= 4
    _assert_new_user_is_folded_in(c)
    sim = c.get("/v1/items/i0/similar", params={"k": 5}).json()["items"]
    assert len(sim) == 5 and "i0" not in {r["item_id"] for r in sim}
    c.post("/v1/items", json={"items": [{"item_id": "nw", "category": "cat1", "brand": "b1"}]})
    sim_new = c.get("/v1/items/nw/similar", params={"k": 5}).json()["items"]
    assert sum(cat_of(r["item_id"]) == 1 for r in sim_new) >= 4


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_known_users_fresh_events_move_their_list_at_once(name, shop, tmp_path, make_client):
    """u0 has 8 items of cat0; three views of cat2 items bring cat2 into its top 5 (any model)."""
    c = _served(name, shop, tmp_path, make_client)
    before = c.get("/v1/users/u0/recommendations", params={"k": 5}).json()["items"]
    assert sum(cat_of(r["item_id"]) == 2 for r in before) == 0
    events = [{"user_id": "u0", "item_id": f"i{n}", "event_type": "view"} for n in (41, 42, 43)]
    assert c.post("/v1/events", json={"events": events}).json()["accepted"] == 3
    after = c.get("/v1/users/u0/recommendations", params={"k": 5}).json()["items"]
    assert sum(cat_of(r["item_id"]) == 2 for r in after) >= 2, after


def test_a_fused_learned_blend_folds_in_fresh_events(shop, tmp_path, make_client):
    """The LightGBM blend scores a user from the events the service just received."""
    from gemrec.fusion import Fusion

    model = Fusion(channels=["rp3beta", "itemknn", "pop"], method="ltr")
    model.fit(Dataset.open(shop).interactions())
    assert model.method_ == "ltr"
    c = make_client(model.save(tmp_path / "fused"))
    _assert_new_user_is_folded_in(c)
