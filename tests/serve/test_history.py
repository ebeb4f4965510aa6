"""``GET /v1/users/{user_id}/history``: offline history with its real event types and times."""

from __future__ import annotations

import math

import numpy as np

from gemrec.data.store import Dataset
from tests.serve.conftest import FUNNEL


def history(client, user_id):
    r = client.get(f"/v1/users/{user_id}/history")
    assert r.status_code == 200, r.text
    return r.json()["events"]


def test_offline_history_lists_the_dataset_events(make_client, typed_svd_dir, typed_shop):
    c = make_client(typed_svd_dir, dataset_dir=typed_shop)
    ds = Dataset.open(typed_shop)
    u = ds.user_index["u3"]
    held_out = set(ds.edges[(ds.edges.user == u) & (ds.edges.split == "test")].item)
    ev = ds.events[(ds.events.user == u) & ~ds.events.item.isin(held_out)]
    ev = ev.sort_values("timestamp", kind="stable")
    want = [
        (f"i{i}", t, ts, None if math.isnan(v) else v)
        for i, t, ts, v in zip(ev.item, ev.event_type, ev.timestamp, ev.value, strict=True)
    ]
    offline = [e for e in history(c, "u3") if e["source"] == "offline"]
    assert [(e["item_id"], e["event_type"], e["timestamp"], e["value"]) for e in offline] == want
    assert {"purchase", "cart", "view"} >= {e["event_type"] for e in offline}


def test_offline_history_falls_back_to_edges(make_client, typed_svd_dir, typed_shop_edges_only):
    """Without an event log: one row per pair, named by its strongest event type, at its last
    timestamp, with the pair's weight as value."""
    c = make_client(typed_svd_dir, dataset_dir=typed_shop_edges_only)
    ds = Dataset.open(typed_shop_edges_only)
    e = ds.edges[(ds.edges.user == ds.user_index["u3"]) & (ds.edges.split != "test")]
    e = e.sort_values("last_timestamp", kind="stable")
    want = [
        (
            f"i{row.item}",
            max((t for t in FUNNEL if getattr(row, f"n_{t}") > 0), key=FUNNEL.__getitem__),
            row.last_timestamp,
            float(row.weight),
        )
        for row in e.itertuples()
    ]
    offline = [e for e in history(c, "u3") if e["source"] == "offline"]
    assert [(e["item_id"], e["event_type"], e["timestamp"], e["value"]) for e in offline] == want


def test_offline_history_without_event_types_keeps_times(make_client, svd_dir, shop):
    c = make_client(svd_dir)
    e = Dataset.open(shop).edges
    e = e[(e.user == 0) & (e.split != "test")]
    times = dict(zip("i" + e.item.astype(str), e.last_timestamp, strict=True))
    offline = [x for x in history(c, "u0") if x["source"] == "offline"]
    assert {x["item_id"]: x["timestamp"] for x in offline} == times
    assert {x["event_type"] for x in offline} == {"interaction"}


def test_co_users_equals_the_sparse_product(svd_dir, shop):
    # the request-sized kernel against scipy's product, the definition
    from gemrec.serve import ServeSettings, load_engine

    history = load_engine(ServeSettings(model_dir=svd_dir, dataset_dir=shop)).history
    iu = history.item_users
    rng = np.random.default_rng(0)
    n_items = iu.shape[0]
    for n_rows, n_cols in ((1, 1), (20, 20), (7, 3), (0, 4)):
        rows = rng.integers(0, n_items, n_rows)
        cols = rng.integers(0, n_items, n_cols)  # duplicates included
        expected = (iu[rows] @ iu[cols].T).toarray()
        got = history.co_users(rows, cols)
        assert got.dtype == np.float32 and got.shape == (n_rows, n_cols)
        np.testing.assert_array_equal(got, expected)
    assert history.co_users(np.array([0]), np.array([0]))[0, 0] == history.item_degree[0]
