"""Catalogue writes: ``POST /v1/items`` (add or update), ``DELETE /v1/items/{item_id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._deps import Settings_, State_, check_batch
from gemrec.serve._schemas import ItemBatch, ItemsResult

__all__ = ["router"]

router = APIRouter(tags=["items"])


@router.post("/v1/items", response_model=ItemsResult)
async def post_items(batch: ItemBatch, state: State_, settings: Settings_) -> dict[str, int]:
    """Add or update items with side information; a new item gets an embedding from it."""
    engine, store = state.engine, state.store
    check_batch(settings, len(batch.items), "items")
    # posting an item (again) makes it live, undoing a DELETE; available=false still hides it
    rows = [
        (i.item_id, {**i.model_dump(exclude_unset=True, exclude={"item_id"}), "deleted": False})
        for i in batch.items
    ]
    await run_in_threadpool(engine.sync_items, store)
    n_new = len({item_id for item_id, _ in rows if item_id not in engine.catalogue.index})
    await run_in_threadpool(store.put_items, rows)
    await run_in_threadpool(engine.sync_items, store)
    state.metrics.items.set(engine.catalogue.n)
    return {"created": n_new, "updated": len(rows) - n_new}


@router.delete("/v1/items/{item_id}")
async def delete_item(item_id: str, state: State_) -> dict[str, Any]:
    """Remove an item from every result (its history is kept)."""
    engine, store = state.engine, state.store
    engine.sync_items(store)
    engine.item(item_id)
    await run_in_threadpool(store.put_items, [(item_id, {"deleted": True})])
    await run_in_threadpool(engine.sync_items, store)
    return {"item_id": item_id, "deleted": True}
