"""Item reads: ``GET /v1/items/{item_id}/similar``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gemrec.serve._deps import READ_SYNC_S, Settings_, State_, check_k
from gemrec.serve._schemas import SimilarOut
from gemrec.serve._store import StoreUnavailable

__all__ = ["router"]

router = APIRouter(tags=["items"])


@router.get("/v1/items/{item_id}/similar", response_model=SimilarOut)
async def similar(
    item_id: str, state: State_, settings: Settings_, k: Annotated[int, Query(ge=1)] = 10
) -> dict[str, Any]:
    engine, store = state.engine, state.store
    check_k(settings, k)
    # an id this worker does not know yet may have been added through another one: look now
    try:
        engine.sync_items(store, max_age=READ_SYNC_S if item_id in engine.catalogue.index else 0)
    except StoreUnavailable:
        pass  # the store is down: answer from the catalogue and blocklist as last synced
    items = engine.similar(item_id, k, store)
    return {
        "item_id": item_id,
        "items": [{"item_id": r.item_id, "score": r.score} for r in items],
    }
