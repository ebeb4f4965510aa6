"""The partitioned synthetic shop: bounded parts, reproducible bytes, never half-written."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from gemrec.cli import main
from gemrec.data import generate as gen
from gemrec.data.generate import generate_to_parquet, session_shape
from gemrec.data.shop_model import events_per_view
from gemrec.errors import ParameterError

SMALL = {"n_users": 400, "n_items": 300, "n_events": 30_000, "n_categories": 8, "part_events": 8000}


def _digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen") / "shop"
    return generate_to_parquet(root, seed=3, **SMALL)


def test_layout_counts_and_tables(shop):
    root = shop.path
    parts = sorted((root / "events").glob("part-*.parquet"))
    assert len(parts) == shop.n_parts == 4
    meta = json.loads((root / "generate.json").read_text())
    assert meta["counts"] == {
        "users": 400,
        "items": 300,
        "events": shop.n_events,
        "parts": 4,
        "friendships": len(pd.read_parquet(root / "social.parquet")),
    }
    events = pd.read_parquet(root / "events")
    assert len(events) == shop.n_events
    assert abs(shop.n_events - 30_000) < 0.05 * 30_000
    assert list(events.columns) == [
        "user_id",
        "item_id",
        "event_type",
        "timestamp",
        "value",
        "event_id",
        "session_id",
    ]
    users = pd.read_parquet(root / "users.parquet")
    items = pd.read_parquet(root / "items.parquet")
    assert users["user_id"].tolist() == [f"u{i:04d}" for i in range(1, 401)]
    assert items["item_id"].tolist() == [f"sku-{i:05d}" for i in range(1, 301)]
    assert set(events["user_id"]) <= set(users["user_id"])
    assert set(events["item_id"]) <= set(items["item_id"])
    assert events["event_id"].is_unique
    assert events["event_id"].iloc[0] == "e0000001"
    # parts are blocks of users, each sorted by time
    for p in parts:
        part = pd.read_parquet(p)
        assert part["timestamp"].is_monotonic_increasing
    first = pd.read_parquet(parts[0])["user_id"]
    last = pd.read_parquet(parts[-1])["user_id"]
    assert first.max() < last.min()


def test_same_seed_same_bytes_other_seed_other_data(shop, tmp_path):
    again = generate_to_parquet(tmp_path / "again", seed=3, **SMALL)
    assert _digests(again.path) == _digests(shop.path)
    other = generate_to_parquet(tmp_path / "other", seed=4, **SMALL)
    a = pd.read_parquet(shop.path / "events" / "part-00000.parquet")
    b = pd.read_parquet(other.path / "events" / "part-00000.parquet")
    assert not a[["user_id", "item_id"]].equals(b[["user_id", "item_id"]])


def test_the_demo_shops_funnels_and_prices(shop):
    events = pd.read_parquet(shop.path / "events")
    items = pd.read_parquet(shop.path / "items.parquet")
    counts = events.groupby(["session_id", "item_id", "event_type"]).size().unstack(fill_value=0)
    assert (counts["purchase"] <= counts["cart"]).all()
    assert (counts["cart"] <= counts["click"]).all()
    assert (counts["click"] <= counts["view"]).all()
    buys = events[events["event_type"] == "purchase"].merge(items, on="item_id")
    np.testing.assert_allclose(buys["value"], buys["price"])
    assert events.loc[events["event_type"] != "purchase", "value"].isna().all()
    views = events[events["event_type"] == "view"]["item_id"].value_counts()
    assert views.iloc[:30].sum() / views.sum() > 0.3  # long tail: top 10% of items


def test_an_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = gen.draw_events
    monkeypatch.setattr(gen, "draw_events", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_to_parquet(tmp_path / "shop", seed=0, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_foreign_directory_and_replaces_its_own_output(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ParameterError, match="'-o'"):
        generate_to_parquet(tmp_path / "x", seed=0, **SMALL)
    first = generate_to_parquet(tmp_path / "y", seed=0, **SMALL)
    second = generate_to_parquet(tmp_path / "y", seed=1, **{**SMALL, "part_events": 40_000})
    assert second.n_parts == 1
    assert sorted(p.name for p in (first.path / "events").iterdir()) == ["part-00000.parquet"]


def test_friendships_are_symmetric_and_follow_interests(shop):
    social = pd.read_parquet(shop.path / "social.parquet")
    users = set(pd.read_parquet(shop.path / "users.parquet")["user_id"])
    pairs = set(zip(social["user_id"], social["friend_id"], strict=True))
    assert len(pairs) == len(social) and all((b, a) in pairs for a, b in pairs)
    assert not (social["user_id"] == social["friend_id"]).any()
    assert set(social["user_id"]) <= users
    assert 4 * 400 * 0.8 < len(social) <= 2 * 4 * 400 * 1.2  # about 4 started per user, both ways
    # homophily: friends share their top category of views far more often than strangers do
    events = pd.read_parquet(shop.path / "events")
    items = pd.read_parquet(shop.path / "items.parquet")
    views = events[events["event_type"] == "view"].merge(items, on="item_id")
    top = views.groupby("user_id")["category"].agg(lambda c: c.value_counts().index[0])
    linked = social.assign(a=social["user_id"].map(top), b=social["friend_id"].map(top)).dropna()
    shared = float((linked["a"] == linked["b"]).mean())
    chance = float((top.value_counts(normalize=True) ** 2).sum())
    assert shared > 3 * chance


def test_the_social_graph_is_imported(shop, tmp_path):
    root = shop.path
    argv = ["import", str(root / "events"), "--format", "events", "-o", str(tmp_path / "ds")]
    argv += ["--items", str(root / "items.parquet"), "--users", str(root / "users.parquet")]
    argv += ["--social", str(root / "social.parquet"), "--quiet"]
    assert main(argv) == 0
    from gemrec.data.store import Dataset

    social = Dataset.open(tmp_path / "ds").side_information().social
    assert social is not None
    assert social.nnz == len(pd.read_parquet(root / "social.parquet"))


def test_no_friendships_no_social_file(tmp_path):
    result = generate_to_parquet(tmp_path / "s", seed=0, **SMALL, friends_per_user=0.0)
    assert not (result.path / "social.parquet").exists()


def test_session_shape_meets_the_event_budget():
    per_view = events_per_view(0.9, 2, 20)
    s, v = session_shape(1000, 100_000, per_view)
    assert v == 5.0 and s * v * per_view * 1000 == pytest.approx(100_000)
    s, v = session_shape(1000, 3000, per_view)
    assert s == 1.0 and v * per_view * 1000 == pytest.approx(3000)
    with pytest.raises(ParameterError, match="'events'"):
        session_shape(1000, 100, per_view)


@pytest.mark.parametrize(
    ("param", "value", "name"),
    [
        ("n_users", 0, "users"),
        ("n_categories", 500, "n_categories"),
        ("part_events", 0, "part"),
        ("friends_per_user", -1.0, "friends_per_user"),
    ],
)
def test_bad_parameters_are_named(tmp_path, param, value, name):
    with pytest.raises(ParameterError, match=name):
        generate_to_parquet(tmp_path / "s", **{**SMALL, param: value})


def test_cli_writes_and_reports(tmp_path, capsys):
    argv = "--users 50 --items 40 --events 2000 --categories 5 --seed 2 --quiet".split()
    code = main(["generate", "-o", str(tmp_path / "s"), *argv])
    out = capsys.readouterr().out
    assert code == 0 and "generated 50 users, 40 items" in out
    assert (tmp_path / "s" / "generate.json").is_file()
