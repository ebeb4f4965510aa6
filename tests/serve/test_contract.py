"""The published OpenAPI document is the service's contract: Schemathesis holds the app to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans

from gemrec.serve import ServeSettings, create_app

API_KEY = "contract-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
#: small limits, so that the fuzzer reaches them; model and data come from the fixtures
LIMITS = ServeSettings(
    model_dir=Path("model"), dataset_dir=Path("data"), api_key=API_KEY, max_k=50, max_batch=20
)


class _Forward:
    """The ASGI app Schemathesis calls: it forwards to the service the ``service`` fixture built.

    The schema is loaded at import (pytest's collection), before fixtures make the model the
    service loads; Schemathesis starts the service's lifespan through this on its first request.
    """

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if self.app is None:
            raise RuntimeError("no service to forward to: use the `service` fixture")
        await self.app(scope, receive, send)


forward = _Forward()
schema = schemathesis.openapi.from_dict(create_app(LIMITS).openapi())
schema.app = forward


@pytest.fixture(scope="module")
def service(
    svd_dir: Path, shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """The service of :data:`LIMITS` on a PureSVD model of the shop, reached through ``forward``."""
    store = tmp_path_factory.mktemp("contract") / "events.sqlite3"
    settings_ = replace(LIMITS, model_dir=svd_dir, dataset_dir=shop, store=f"sqlite:///{store}")
    forward.app = create_app(settings_)
    yield forward.app
    shutdown_lifespans()
    forward.app = None


@schema.parametrize()
@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_service_keeps_its_contract(case: Any, service: FastAPI) -> None:
    case.call_and_validate(headers=AUTH)


# --------------------------------------------------------------------------- the document itself
DOC = create_app(LIMITS).openapi()


def _op(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = DOC["paths"][path][method]
    return op


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("post", "/v1/events", {"200", "400", "401", "404", "413", "422"}),
        ("post", "/v1/items", {"200", "400", "401", "413", "422"}),
        ("delete", "/v1/items/{item_id}", {"200", "401", "404", "422"}),
        ("post", "/v1/admin/reload", {"200", "400", "401", "404", "413", "422"}),
        ("get", "/v1/admin/blocklist", {"200", "401"}),
        ("post", "/v1/admin/blocklist", {"200", "400", "401", "413", "422"}),
        ("get", "/v1/users/{user_id}/recommendations", {"200", "404", "422"}),
        ("get", "/v1/items/{item_id}/similar", {"200", "404", "422"}),
        ("get", "/v1/users/{user_id}/history", {"200", "404", "422"}),
        ("get", "/v1/explain", {"200", "404", "422"}),
        ("get", "/healthz", {"200"}),
        ("get", "/metrics", {"200"}),
    ],
)
def test_every_answer_a_route_gives_is_listed(method: str, path: str, codes: set[str]) -> None:
    responses = _op(method, path)["responses"]
    assert set(responses) == codes
    for code in codes - {"200"}:
        ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ValidationErrorOut" if code == "422" else "/ErrorOut")


def test_bounds_checked_by_the_service_are_declared() -> None:
    for path in ("/v1/users/{user_id}/recommendations", "/v1/items/{item_id}/similar"):
        (k,) = [p for p in _op("get", path)["parameters"] if p["name"] == "k"]
        assert (k["schema"]["minimum"], k["schema"]["maximum"]) == (1, 50)
    schemas = DOC["components"]["schemas"]
    assert schemas["EventBatch"]["properties"]["events"]["maxItems"] == 20
    assert schemas["ItemBatch"]["properties"]["items"]["maxItems"] == 20
    blocklist = schemas["BlocklistUpdate"]["properties"]
    assert blocklist["add"]["maxItems"] == blocklist["remove"]["maxItems"] == 20
    assert "HTTPValidationError" not in schemas


def test_metrics_are_documented_as_prometheus_text() -> None:
    assert set(_op("get", "/metrics")["responses"]["200"]["content"]) == {"text/plain"}


def test_the_key_is_a_bearer_scheme_not_a_header_parameter() -> None:
    assert DOC["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "the service's API key: `Authorization: Bearer <key>`",
        }
    }
    assert _op("post", "/v1/events")["security"] == [{"bearer": []}]
    assert "security" not in _op("get", "/v1/explain")
    for item in DOC["paths"].values():
        for op in item.values():
            assert all(p["name"] != "authorization" for p in op.get("parameters", []))
    assert (
        "securitySchemes" not in create_app(replace(LIMITS, api_key=None)).openapi()["components"]
    )


@pytest.mark.parametrize(
    ("field", "value"), [("item_id", 0), ("available", 0), ("price", "3"), ("colour", "red")]
)
def test_bodies_are_strict(make_client: Any, svd_dir: Path, field: str, value: Any) -> None:
    c = make_client(svd_dir)
    r = c.post("/v1/items", json={"items": [{"item_id": "new", field: value}]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == f"items.0.{field}"
    r = c.post("/v1/events", json={"events": [{"user_id": 7, "item_id": "i1", "event_type": "v"}]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "events.0.user_id"


def test_answers_match_the_documented_bounds(make_client: Any, svd_dir: Path) -> None:
    c = make_client(svd_dir, max_k=50)
    assert len(c.get("/v1/users/u0/recommendations", params={"k": 50}).json()["items"]) == 50
    assert c.get("/v1/users/u0/recommendations", params={"k": 51}).status_code == 422
    assert c.get("/v1/items/i1/similar", params={"k": 51}).status_code == 422
    assert c.get("/metrics").headers["content-type"].startswith("text/plain")
