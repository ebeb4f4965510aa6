"""Model management: ``POST /v1/admin/reload``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._catalogue import NotFound
from gemrec.serve._deps import State_
from gemrec.serve._schemas import ReloadIn
from gemrec.serve._state import GENERATION, swap_model

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.post("/v1/admin/reload")
async def reload(state: State_, body: ReloadIn | None = None) -> dict[str, Any]:
    """Load a model directory and switch to it; requests in flight finish on the old model.
    Other workers sharing the store follow within ``reload_poll_seconds``."""
    model_dir = Path(body.model_dir) if body and body.model_dir else state.engine.model_dir
    if not (model_dir / "manifest.json").is_file():
        raise NotFound(
            f"model_dir {str(model_dir)!r} is not a gemrec model directory (no manifest.json)"
        )
    async with state.reload_lock:
        await swap_model(state, model_dir)
        generation = f"{time.time_ns()}:{model_dir}"
        state.generation = generation
        await run_in_threadpool(state.store.set_meta, GENERATION, generation)
    return {"status": "reloaded", **state.engine.info()}
