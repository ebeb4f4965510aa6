"""The FastAPI application: ``create_app(settings)`` wires routers, middleware and lifespan.

Artifacts (model, catalogue, store) are loaded in the lifespan (:mod:`gemrec.serve._state`) into a
:class:`ServiceState`; route handlers (:mod:`gemrec.serve.routes`) reach it through the dependency
:func:`get_state`, which tests may override (``app.dependency_overrides[get_state] = ...``).
"""

from __future__ import annotations

import json
import os

from fastapi import Depends, FastAPI

from gemrec import __version__
from gemrec.errors import GemrecError
from gemrec.serve._deps import get_state, read_access, write_access
from gemrec.serve._guard import RequestGuard
from gemrec.serve._handlers import EXCEPTION_HANDLERS
from gemrec.serve._metrics import Metrics
from gemrec.serve._openapi import install_openapi
from gemrec.serve._settings import ServeSettings
from gemrec.serve._state import ServiceState, lifespan
from gemrec.serve.routes import (
    admin,
    blocklist,
    catalogue,
    events,
    explain,
    items,
    operations,
    recommendations,
    users,
)
from gemrec.serve.ui import include_console

__all__ = ["SETTINGS_ENV", "ServiceState", "app_from_env", "create_app", "get_state"]

SETTINGS_ENV = "GEMREC_SERVE_SETTINGS"


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the service. Nothing is loaded until the app starts (lifespan).

    Examples
    --------
    >>> from fastapi.testclient import TestClient                      # doctest: +SKIP
    >>> app = create_app(ServeSettings(model_dir="m", dataset_dir="d"))  # doctest: +SKIP
    >>> with TestClient(app) as client:                                  # doctest: +SKIP
    ...     client.get("/v1/users/u1/recommendations", params={"k": 5}).json()
    """
    app = FastAPI(
        title="gemrec",
        version=__version__,
        summary="Real-time graph-embedding product recommendations",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.add_middleware(RequestGuard, settings=settings, metrics=app.state.metrics)

    writes = [Depends(write_access)]
    # no dependency at all on open reads: each one costs time on the hottest path
    reads = [Depends(read_access)] if settings.protect_reads else []
    app.include_router(events.router, dependencies=writes)
    app.include_router(recommendations.router, dependencies=reads)
    app.include_router(items.router, dependencies=reads)
    app.include_router(users.router, dependencies=reads)
    app.include_router(users.write_router, dependencies=writes)
    app.include_router(explain.router, dependencies=reads)
    app.include_router(catalogue.router, dependencies=writes)
    app.include_router(operations.router)
    app.include_router(admin.router, dependencies=writes)
    app.include_router(blocklist.router, dependencies=writes)
    include_console(app, reads=reads, write=writes)
    install_openapi(app, settings)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings come as JSON in an env var."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise GemrecError(f"{SETTINGS_ENV} is not set; start the service with `gemrec serve`")
    return create_app(ServeSettings.from_dict(json.loads(raw)))
