"""The blocklist in the store: ``GET``/``POST /v1/admin/blocklist`` in-process, two apps on one
store standing for two workers (real replicas: ``tests/serve/test_replicas.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

BLOCKLIST = "/v1/admin/blocklist"


def listed(c: TestClient, user: str, k: int = 20) -> list[str]:
    r = c.get(f"/v1/users/{user}/recommendations", params={"k": k})
    assert r.status_code == 200, r.text
    return [x["item_id"] for x in r.json()["items"]]


def similar(c: TestClient, item: str, k: int = 59) -> list[str]:
    r = c.get(f"/v1/items/{item}/similar", params={"k": k})
    assert r.status_code == 200, r.text
    return [x["item_id"] for x in r.json()["items"]]


def block(c: TestClient, **body: Any) -> dict[str, Any]:
    r = c.post(BLOCKLIST, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_blocked_item_leaves_lists_and_similar_items_and_comes_back(
    make_client: Any, svd_dir: Path
) -> None:
    c = make_client(svd_dir)
    before = listed(c, "u0")
    top = before[0]
    neighbour = next(i for i in similar(c, top, 5) if i != top)
    assert top in similar(c, neighbour)
    assert block(c, add=[top]) == {"blocked": 1, "unblocked": 0, "not_in_catalogue": []}
    assert c.get(BLOCKLIST).json() == {"item_ids": [top]}
    after = listed(c, "u0")
    # the rest of the list moves up by one and the 21st item fills the end
    assert top not in after and after[:19] == before[1:]
    assert top not in similar(c, neighbour)
    assert top not in listed(c, "newcomer", 60)  # a cold-start (trending) list too
    assert block(c, add=[top]) == {"blocked": 0, "unblocked": 0, "not_in_catalogue": []}
    assert block(c, remove=[top]) == {"blocked": 0, "unblocked": 1, "not_in_catalogue": []}
    assert c.get(BLOCKLIST).json() == {"item_ids": []}
    assert listed(c, "u0") == before
    assert top in similar(c, neighbour)


def test_two_workers_on_one_store_see_each_others_changes_on_the_next_request(
    make_client: Any, svd_dir: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    a, b = make_client(svd_dir, store=store), make_client(svd_dir, store=store)
    top = listed(b, "u5")[0]
    block(a, add=[top])
    assert top not in listed(b, "u5") and b.get(BLOCKLIST).json() == {"item_ids": [top]}
    # a reloaded model starts from the store's list
    assert b.post("/v1/admin/reload", json={}).status_code == 200
    assert top not in listed(b, "u5")
    block(a, remove=[top])
    assert listed(b, "u5")[0] == top


def test_an_id_blocked_before_its_item_exists_is_blocked_once_added(
    make_client: Any, svd_dir: Path
) -> None:
    c = make_client(svd_dir)
    assert block(c, add=["future", "i3"]) == {
        "blocked": 2,
        "unblocked": 0,
        "not_in_catalogue": ["future"],
    }
    item = {"item_id": "future", "category": "cat0", "brand": "b0"}
    assert c.post("/v1/items", json={"items": [item]}).status_code == 200
    assert "future" not in similar(c, "i0", 60)
    assert "future" not in listed(c, "u0", 60)
    block(c, remove=["future"])
    assert "future" in similar(c, "i0", 60)


def test_the_blocklist_option_seeds_the_store_once(
    make_client: Any, svd_dir: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'seeded.sqlite3'}"
    first = make_client(svd_dir, store=store, blocklist=("i1", "i2"))
    assert first.get(BLOCKLIST).json() == {"item_ids": ["i1", "i2"]}
    block(first, remove=["i1"])
    # a worker (re)started with the same option leaves the removal in place
    again = make_client(svd_dir, store=store, blocklist=("i1", "i2", "i4"))
    assert again.get(BLOCKLIST).json() == {"item_ids": ["i2", "i4"]}
    assert "i4" not in listed(first, "u0", 60)


def test_bad_updates_are_refused_naming_the_field(make_client: Any, svd_dir: Path) -> None:
    c = make_client(svd_dir, max_batch=2, api_key="k")
    key = {"Authorization": "Bearer k"}
    assert c.get(BLOCKLIST).status_code == 401
    assert c.post(BLOCKLIST, json={"add": ["i1"]}).status_code == 401
    for body, field in [
        ({"add": ["i1", "i2", "i3"]}, "add"),
        ({"remove": ["i1", "i2", "i3"]}, "remove"),
        ({"add": [""]}, "add.0"),
        ({"add": [7]}, "add.0"),
        ({"add": "i1"}, "add"),
        ({"block": ["i1"]}, "block"),
    ]:
        r = c.post(BLOCKLIST, json=body, headers=key)
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == field, (body, r.text)
    assert c.get(BLOCKLIST, headers=key).json() == {"item_ids": []}
    # one route per method on the path: a 405 names both
    assert c.put(BLOCKLIST, json={}, headers=key).headers["allow"] == "GET, POST"
