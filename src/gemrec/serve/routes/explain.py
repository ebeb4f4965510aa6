"""Why an item is recommended: ``GET /v1/explain``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gemrec.serve._deps import State_

__all__ = ["router"]

router = APIRouter(tags=["recommendations"])


@router.get("/v1/explain")
async def explain(
    state: State_,
    user_id: Annotated[str, Query(min_length=1)],
    item_id: Annotated[str, Query(min_length=1)],
) -> dict[str, Any]:
    """Why ``item_id`` for ``user_id``: paths user -> item they touched -> co-users -> item."""
    engine, store = state.engine, state.store
    engine.sync_items(store)
    return engine.explain(user_id, item_id, engine.online_events(store, user_id))
