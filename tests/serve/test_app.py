"""``create_app``: routers wired with their access rules, state and settings as dependencies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gemrec.serve import ServeSettings, create_app
from gemrec.serve._deps import get_settings

WRITES = {
    ("post", "/v1/events"),
    ("post", "/v1/items"),
    ("delete", "/v1/items/{item_id}"),
    ("post", "/v1/admin/reload"),
    ("get", "/v1/admin/blocklist"),
    ("post", "/v1/admin/blocklist"),
    ("post", "/v1/users"),
    ("post", "/v1/users/batch"),
    ("delete", "/v1/users/{user_id}"),
}
READS = {
    ("get", "/v1/users/{user_id}/recommendations"),
    ("get", "/v1/items/{item_id}/similar"),
    ("get", "/v1/users/{user_id}/history"),
    ("get", "/v1/explain"),
}
OPEN = {("get", "/healthz"), ("get", "/metrics")}


def _keyed_operations(settings: ServeSettings) -> set[tuple[str, str]]:
    """Operations whose OpenAPI entry requires the bearer key."""
    doc = create_app(settings).openapi()
    return {
        (method, path)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security") == [{"bearer": []}]
    }


def test_every_route_is_wired_with_its_access_rule():
    base = ServeSettings(model_dir=Path("m"), dataset_dir=Path("d"))
    doc = create_app(base).openapi()
    assert {(m, p) for p, ops in doc["paths"].items() for m in ops} == WRITES | READS | OPEN
    # writes take the key when one is set; reads only with protect_reads
    assert _keyed_operations(base) == set()
    assert _keyed_operations(replace(base, protect_reads=True)) == set()
    assert _keyed_operations(replace(base, api_key="k")) == WRITES
    assert _keyed_operations(replace(base, api_key="k", protect_reads=True)) == WRITES | READS


def test_create_app_loads_nothing_until_started():
    settings = ServeSettings(model_dir=Path("/no/model"), dataset_dir=Path("/no/data"))
    app = create_app(settings)
    assert app.state.settings is settings
    assert not hasattr(app.state, "service")


@pytest.mark.parametrize("path", ["/v1/users/u0/recommendations", "/v1/items/i3/similar"])
def test_settings_are_swapped_through_dependency_overrides(make_client, svd_dir, path):
    c = make_client(svd_dir)
    small = replace(c.app.state.settings, max_k=3)

    async def fake_settings():
        return small

    c.app.dependency_overrides[get_settings] = fake_settings
    try:
        r = c.get(path, params={"k": 4})
        assert r.status_code == 422 and r.json()["message"] == "k: k must be at most 3; got 4"
        assert c.get(path, params={"k": 3}).status_code == 200
    finally:
        c.app.dependency_overrides.clear()
    assert len(c.get(path, params={"k": 4}).json()["items"]) == 4
