"""The synthetic shop: reproducible, well-formed, and carrying the structure it claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gemrec.data.interactions import Interactions
from gemrec.data.synthetic import EVENT_TYPES, generate_shop, write_shop
from gemrec.errors import ParameterError
from gemrec.models.knn import ItemKNN
from gemrec.models.popularity import Popularity


@pytest.fixture(scope="module")
def shop():
    return generate_shop(n_users=600, n_items=400, n_categories=12, seed=7)


def test_same_seed_same_shop_other_seed_other_shop(shop):
    again = generate_shop(n_users=600, n_items=400, n_categories=12, seed=7)
    pd.testing.assert_frame_equal(shop.events, again.events)
    pd.testing.assert_frame_equal(shop.items, again.items)
    pd.testing.assert_frame_equal(shop.social, again.social)
    other = generate_shop(n_users=600, n_items=400, n_categories=12, seed=8)
    assert not shop.events[["user_id", "item_id"]].equals(other.events[["user_id", "item_id"]])


def test_tables_and_ids(shop):
    ev, items, users = shop.events, shop.items, shop.users
    assert list(items.columns) == ["item_id", "category", "brand", "title", "price"]
    assert {"user_id", "age_group", "country"} <= set(users.columns)
    assert users["user_id"].iloc[0] == "u0001" and items["item_id"].iloc[41] == "sku-00042"
    assert items["item_id"].is_unique and users["user_id"].is_unique and ev["event_id"].is_unique
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert set(ev["user_id"]) <= set(users["user_id"]) and set(ev["item_id"]) <= set(
        items["item_id"]
    )
    assert ev["timestamp"].is_monotonic_increasing
    assert (items["price"] > 0).all()
    assert items["category"].nunique() == 12
    # every title names its brand and category
    assert all(
        b in t and c in t for b, c, t in zip(items.brand, items.category, items.title, strict=True)
    )


def test_default_size_is_about_100k_events():
    shop = generate_shop()
    assert len(shop.users) == 2000 and len(shop.items) == 1000
    assert 70_000 <= len(shop.events) <= 140_000


def test_funnels_are_ordered_and_purchases_carry_the_price(shop):
    ev = shop.events
    counts = ev.groupby(["session_id", "item_id", "event_type"]).size().unstack(fill_value=0)
    assert (counts["purchase"] <= counts["cart"]).all()
    assert (counts["cart"] <= counts["click"]).all()
    assert (counts["fav"] <= counts["click"]).all()
    assert (counts["click"] <= counts["view"]).all()
    first = ev.groupby(["session_id", "item_id", "event_type"])["timestamp"].min().unstack()
    bought = first["purchase"].notna()
    assert (first.loc[bought, "cart"] < first.loc[bought, "purchase"]).all()
    assert (first.loc[bought, "view"] < first.loc[bought, "cart"]).all()
    buys = ev[ev["event_type"] == "purchase"].merge(shop.items, on="item_id")
    np.testing.assert_allclose(buys["value"], buys["price"])
    assert ev.loc[ev["event_type"] != "purchase", "value"].isna().all()
    # funnel rates: purchases are a small share of views
    rate = (ev["event_type"] == "purchase").sum() / (ev["event_type"] == "view").sum()
    assert 0.02 < rate < 0.15


def test_users_browse_their_true_interests(shop):
    truth = shop.truth
    item_cat = dict(zip(truth.item_ids, truth.item_category, strict=True))
    user_row = {u: i for i, u in enumerate(truth.user_ids)}
    views = shop.events[shop.events["event_type"] == "view"]
    u = views["user_id"].map(user_row).to_numpy()
    c = views["item_id"].map(item_cat).to_numpy()
    in_interest = truth.user_interest[u, c] > 0
    assert in_interest.mean() > 0.85  # focus=0.9 plus random sessions that hit an interest
    assert truth.interest_categories("u0001")[0] == truth.categories[truth.user_main_category[0]]
    np.testing.assert_allclose(truth.user_interest.sum(axis=1), 1.0)
    with pytest.raises(ParameterError, match="user_id"):
        truth.interest_categories("nobody")


def test_popularity_is_long_tailed(shop):
    views = shop.events[shop.events["event_type"] == "view"]["item_id"].value_counts()
    top = views.iloc[: len(shop.items) // 10].sum() / views.sum()
    assert top > 0.3  # the top 10 % of items take far more than 10 % of views


def test_friends_share_interests(shop):
    soc = shop.social
    assert (soc["user_id"] != soc["friend_id"]).all()
    pairs = set(zip(soc.user_id, soc.friend_id, strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    main = dict(zip(shop.truth.user_ids, shop.truth.user_main_category, strict=True))
    same = (soc["user_id"].map(main) == soc["friend_id"].map(main)).mean()
    assert same > 0.6  # random pairs would share it ~1/12 of the time


def _interactions(shop) -> Interactions:
    ev = shop.events
    u = pd.Categorical(ev["user_id"], categories=shop.truth.user_ids).codes
    i = pd.Categorical(ev["item_id"], categories=shop.truth.item_ids).codes
    return Interactions.from_arrays(
        u, i, n_users=len(shop.truth.user_ids), n_items=len(shop.truth.item_ids)
    )


def test_a_model_recovers_the_planted_interests(shop):
    truth = shop.truth
    inter = _interactions(shop)
    users = np.arange(inter.n_users)

    def share_in_interest(model):
        ids, _ = model.fit(inter).recommend(users, k=10)
        return (truth.user_interest[users[:, None], truth.item_category[ids]] > 0).mean()

    knn, pop = share_in_interest(ItemKNN(n_neighbors=50)), share_in_interest(Popularity())
    assert knn > 0.8
    assert knn > pop + 0.3
    sims, _ = ItemKNN(n_neighbors=50).fit(inter).similar_items(np.arange(inter.n_items), k=5)
    assert (truth.item_category[sims] == truth.item_category[:, None]).mean() > 0.6


def test_write_shop_produces_the_events_import_format(shop, tmp_path):
    paths = write_shop(shop, tmp_path / "shop")
    events = pd.read_csv(paths["events"], dtype={"event_id": str})
    assert list(events.columns) == [
        "user_id",
        "item_id",
        "event_type",
        "timestamp",
        "value",
        "event_id",
    ]
    assert len(events) == len(shop.events)
    assert events["timestamp"].dtype == np.int64
    np.testing.assert_array_equal(events["user_id"], shop.events["user_id"])
    items = pd.read_csv(paths["items"])
    assert list(items.columns) == ["item_id", "category", "brand", "title", "price"]
    assert list(pd.read_csv(paths["social"]).columns) == ["user_id", "friend_id"]
    assert pd.read_csv(paths["users"])["user_id"].tolist() == shop.users["user_id"].tolist()


@pytest.mark.parametrize(
    ("param", "value"),
    [("n_users", 0), ("n_items", -5), ("focus", 1.5), ("seed", "x"), ("n_categories", 10_000)],
)
def test_bad_parameters_are_named(param, value):
    with pytest.raises(ParameterError, match=f"'{param}'"):
        generate_shop(**{"n_users": 50, "n_items": 40, "n_categories": 5, param: value})
