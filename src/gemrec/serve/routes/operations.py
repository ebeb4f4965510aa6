"""Probes for operators: ``GET /healthz`` and Prometheus ``GET /metrics`` (always open)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from gemrec.serve._deps import State_

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(state: State_) -> dict[str, Any]:
    return {
        "status": "ok",
        **state.engine.info(),
        "store": state.store.url.split(":", 1)[0],
        "pid": os.getpid(),
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics_endpoint(state: State_) -> Response:
    state.metrics.items.set(state.engine.catalogue.n)
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
