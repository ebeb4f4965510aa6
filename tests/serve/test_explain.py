"""Reasons and explanation paths on the typed shop (weighted pairs from a view -> cart -> buy
funnel)."""

from __future__ import annotations

import numpy as np
import pytest

from gemrec.data.store import Dataset
from gemrec.serve._explain import verb
from tests.serve.conftest import FUNNEL


def users_of_items(shop):
    e = Dataset.open(shop).edges
    return e[e.split != "test"].groupby("item").user.apply(set)


def strongest_offline(shop, user_id):
    """item_id -> the strongest event type of the user's train/valid pair (by the FUNNEL table)."""
    ds = Dataset.open(shop)
    e = ds.edges[(ds.edges.user == ds.user_index[user_id]) & (ds.edges.split != "test")]
    out = {}
    for _, row in e.iterrows():
        done = [t for t in FUNNEL if row[f"n_{t}"] > 0]
        out[f"i{row['item']}"] = max(done, key=FUNNEL.__getitem__)
    return out


@pytest.mark.parametrize("model", ["typed_svd_dir", "typed_pop_dir"])
def test_explain_counts_distinct_co_users_and_bounds_similarity(
    model, make_client, typed_shop, request
):
    c = make_client(request.getfixturevalue(model), dataset_dir=typed_shop)
    users_of = users_of_items(typed_shop)
    checked = 0
    for target in ("i3", "i7", "i12"):
        body = c.get("/v1/explain", params={"user_id": "u0", "item_id": target}).json()
        for p in body["paths"]:
            x, y = int(p["via_item_id"][1:]), int(target[1:])
            common = len(users_of[x] & users_of[y])
            assert p["co_users"] == common
            assert p["similarity"] == pytest.approx(
                common / np.sqrt(len(users_of[x]) * len(users_of[y])), abs=1e-5
            )
            assert 0.0 <= p["similarity"] <= 1.0
            if common:
                assert f"; {common} people who interacted with" in p["description"]
            checked += common > 0
    assert checked >= 3


def test_paths_and_reasons_name_the_strongest_offline_event(make_client, typed_pop_dir, typed_shop):
    c = make_client(typed_pop_dir, dataset_dir=typed_shop)
    strongest = strongest_offline(typed_shop, "u0")
    assert len(set(strongest.values())) >= 2  # the check below tells types apart
    body = c.get("/v1/explain", params={"user_id": "u0", "item_id": "i3"}).json()
    for p in body["paths"]:
        assert p["user_event"] == strongest[p["via_item_id"]]
        assert p["description"].startswith(f"you {verb(p['user_event'])} {p['via_item_id']};")
    items = c.get("/v1/users/u0/recommendations", params={"k": 10}).json()["items"]
    named = [r["reason"] for r in items if r["reason"]]
    assert named
    for reason in named:
        x = reason.rsplit(" ", 1)[1]
        assert reason == f"because you {verb(strongest[x])} {x}"


@pytest.mark.parametrize("model", ["typed_svd_dir", "typed_pop_dir"])
def test_online_reason_names_the_strongest_event_not_the_first(
    model, make_client, typed_shop, request
):
    """A walk-in views, carts and buys one item, then views it again: the list is "because you
    bought" it, and so is the explanation path."""
    c = make_client(request.getfixturevalue(model), dataset_dir=typed_shop)
    events = [
        {"user_id": "walkin", "item_id": "i41", "event_type": t, "timestamp": 100.0 + n}
        for n, t in enumerate(["view", "cart", "buy", "view"])
    ]
    assert c.post("/v1/events", json={"events": events}).json()["accepted"] == 4
    items = c.get("/v1/users/walkin/recommendations", params={"k": 5}).json()["items"]
    named = [r for r in items if r["reason"]]
    assert named and all(r["reason"] == "because you bought i41" for r in named)
    body = c.get("/v1/explain", params={"user_id": "walkin", "item_id": named[0]["item_id"]})
    (path,) = body.json()["paths"]
    assert path["user_event"] == "buy" and path["description"].startswith("you bought i41")
    assert path["user_weight"] == pytest.approx(1 + 4 + 5 + 1, rel=0.01)
