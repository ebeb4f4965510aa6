"""Every model served through one API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gemrec.data.store import Dataset
from gemrec.models import MODELS as REGISTERED
from gemrec.models import get_model_class
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.serve.commands_retrain import retrain

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


#: small settings for every registered model, trained by the one fit path
EVERY_MODEL = {
    **{name: {} for name in REGISTERED},
    **MODELS,
    "lightgcn": {"epochs": 4, "embedding_dim": 16, "eval_every": 2},
    "mf": {"epochs": 4, "embedding_dim": 16, "eval_every": 2},
    "ncf": {"epochs": 4, "embedding_dim": 16, "eval_every": 2},
}


def _history(ds: Dataset) -> dict[str, set[str]]:
    e = ds.edges[ds.edges.split.isin(["train", "valid"])]
    out: dict[str, set[str]] = {}
    for u, i in zip(e.user, e.item, strict=True):
        out.setdefault(str(ds.user_ids[u]), set()).add(str(ds.item_ids[i]))
    return out


def test_every_registered_model_has_serving_settings():
    assert set(EVERY_MODEL) == set(REGISTERED)


@pytest.mark.parametrize("name", sorted(EVERY_MODEL))
def test_every_model_is_trained_served_retrained_and_reloaded(
    name, shop_with_valid, tmp_path, make_client
):
    """One fit path for train and retrain; "already seen" is the dataset's train + valid."""
    ds = Dataset.open(shop_with_valid)
    params = EVERY_MODEL[name]
    model_dir = tmp_path / name
    train_model(ds, name, params, model_dir, tune=False)
    store = f"sqlite:///{tmp_path / 'ev.sqlite3'}"
    c = make_client(model_dir, store=store, dataset_dir=shop_with_valid)
    history = _history(ds)
    for user in ("u0", "u31", "u65"):
        r = c.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        got = {x["item_id"] for x in r["items"]}
        assert len(got) == 10 and not got & history[user]
    events = [{"user_id": "walkin", "item_id": f"i{n}", "event_type": "buy"} for n in (21, 22)]
    assert c.post("/v1/events", json={"events": events}).json()["accepted"] == 2

    out = tmp_path / f"{name}-v2"
    record = retrain(model_dir, shop_with_valid, store, out)
    assert record["params"] == {k: v for k, v in params.items() if k != "progress"}
    assert record["trained_on"] == "train+valid" and record["events_folded"] == 2
    first = json.loads((model_dir / "training.json").read_text())
    assert record.get("early_stopping", {}).keys() == first.get("early_stopping", {}).keys()
    new = Recommender.load(out)
    assert type(new).tags.validation == get_model_class(name).tags.validation
    full = ds.interactions("train", "valid").matrix
    assert (new.interactions_[: ds.n_users] != full).nnz == 0  # valid edges were trained on

    assert c.post("/v1/admin/reload", json={"model_dir": str(out)}).status_code == 200
    body = c.get("/v1/users/walkin/recommendations", params={"k": 5}).json()
    assert body["strategy"] == "personalized"
    assert not {"i21", "i22"} & {r["item_id"] for r in body["items"]}


def test_a_model_trained_on_train_only_never_serves_validation_items(
    shop_with_valid, tmp_path, make_client
):
    """An early-stopped model kept without refit has not seen valid; the service still has."""
    ds = Dataset.open(shop_with_valid)
    model = train_model(ds, "mf", {"epochs": 20, "embedding_dim": 16}, tmp_path / "mf", refit=False)
    valid = ds.interactions("valid").matrix
    assert (model.interactions_.multiply(valid)).nnz == 0  # really trained without them
    # the model alone ranks many users' validation items in their top 10
    users = np.arange(90)
    ids, _ = model.recommend(users, k=10)
    alone = sum(bool(set(ids[u]) & set(valid[u].indices)) for u in users)
    assert alone >= 10
    c = make_client(tmp_path / "mf", dataset_dir=shop_with_valid)
    history = _history(ds)
    for u in users:
        user = str(ds.user_ids[u])
        r = c.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        assert not {x["item_id"] for x in r["items"]} & history[user], user
