"""Online state shared through the store: every worker and replica agrees on "trending now"."""

from __future__ import annotations

import pytest


def trending(client, k=3):
    body = client.get("/v1/users/stranger/recommendations", params={"k": k}).json()
    assert body["strategy"] == "trending"
    return [r["item_id"] for r in body["items"]]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_trending_counts_are_shared_by_every_app_on_one_store(
    backend, make_client, svd_dir, tmp_path, request
):
    """Events posted to one app (worker, replica) move "trending now" in the other at once."""
    url = (
        f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        if backend == "sqlite"
        else request.getfixturevalue("fresh_redis")
    )
    a = make_client(svd_dir, store=url, trending_cache_seconds=0.0)
    b = make_client(svd_dir, store=url, trending_cache_seconds=0.0)
    before = trending(b)
    assert "i55" not in before  # one of the least popular items
    events = [
        {"user_id": f"fan{n}", "item_id": "i55", "event_type": "view", "event_id": f"t{n}"}
        for n in range(30)
    ]
    assert a.post("/v1/events", json={"events": events}).json()["accepted"] == 30
    assert trending(a)[0] == trending(b)[0] == "i55"
    assert trending(a) == trending(b)
    # an app started later counts them too
    c = make_client(svd_dir, store=url)
    assert trending(c) == trending(a)


def test_own_events_show_at_once_despite_the_cache(make_client, svd_dir):
    c = make_client(svd_dir, trending_cache_seconds=3600.0)
    assert trending(c)[0] != "i55"
    events = [
        {"user_id": f"fan{n}", "item_id": "i55", "event_type": "view", "event_id": f"t{n}"}
        for n in range(30)
    ]
    c.post("/v1/events", json={"events": events})
    assert trending(c)[0] == "i55"
