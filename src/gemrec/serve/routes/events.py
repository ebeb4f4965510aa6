"""Event ingestion: ``POST /v1/events``."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._catalogue import NotFound
from gemrec.serve._deps import Settings_, State_, check_batch
from gemrec.serve._schemas import EventBatch, IngestResult
from gemrec.serve._store import Event

__all__ = ["router"]

router = APIRouter(tags=["events"])


@router.post("/v1/events", response_model=IngestResult)
async def post_events(batch: EventBatch, state: State_, settings: Settings_) -> dict[str, int]:
    """Store events durably (acknowledged only after commit); retries with the same
    ``event_id`` are counted as duplicates."""
    engine, store = state.engine, state.store
    check_batch(settings, len(batch.events), "events")
    if not batch.events:
        return {"accepted": 0, "duplicates": 0}
    index = engine.catalogue.index
    if any(e.item_id not in index for e in batch.events):
        await run_in_threadpool(engine.sync_items, store)
    bad = [(n, e.item_id) for n, e in enumerate(batch.events) if e.item_id not in index]
    if bad:
        # 404 as for an unknown id anywhere else: the request is well formed, the item is missing
        named = ", ".join(f"{item!r} (events.{n}.item_id)" for n, item in bad[:20])
        raise NotFound(f"unknown item_id {named}; add it first with POST /v1/items")
    now = time.time()
    events = [
        Event(
            e.user_id,
            e.item_id,
            e.event_type,
            now if e.timestamp is None else e.timestamp,
            e.value,
            e.event_id or "",
        ).with_id()
        for e in batch.events
    ]
    flags = await run_in_threadpool(store.append, events)
    accepted = [e for e, ok in zip(events, flags, strict=True) if ok]
    engine.record_ingested(accepted)
    state.metrics.events.inc(len(accepted))
    state.metrics.duplicates.inc(len(events) - len(accepted))
    return {"accepted": len(accepted), "duplicates": len(events) - len(accepted)}
