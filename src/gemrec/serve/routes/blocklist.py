"""The shared blocklist: ``GET /v1/admin/blocklist``, ``POST /v1/admin/blocklist``.

The list lives in the event store, so every worker and replica on it applies a change to its next
request (:meth:`gemrec.serve._engine.Engine.sync_blocklist`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._deps import Settings_, State_, check_batch
from gemrec.serve._schemas import BlocklistOut, BlocklistResult, BlocklistUpdate

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/v1/admin/blocklist", response_model=BlocklistOut)
async def get_blocklist(state: State_) -> dict[str, Any]:
    """The blocked item ids, sorted."""
    return {"item_ids": await run_in_threadpool(state.store.blocklist)}


@router.post("/v1/admin/blocklist", response_model=BlocklistResult)
async def update_blocklist(
    body: BlocklistUpdate, state: State_, settings: Settings_
) -> dict[str, Any]:
    """Block and unblock items in one atomic write. When this answers, no worker or replica
    sharing the store recommends a blocked item or returns it as similar."""
    check_batch(settings, len(body.add), "add")
    check_batch(settings, len(body.remove), "remove")
    engine, store = state.engine, state.store
    blocked, unblocked = await run_in_threadpool(store.update_blocklist, body.add, body.remove)
    # items another worker added count as known; this also applies the change here
    await run_in_threadpool(engine.sync_items, store)
    known = engine.catalogue.index
    return {
        "blocked": blocked,
        "unblocked": unblocked,
        "not_in_catalogue": sorted({i for i in body.add if i not in known}),
    }
