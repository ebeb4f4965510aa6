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
