"""Event ingestion: ``POST /v1/events``."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._catalogue import NotFound
from gemrec.serve._deps import Settings_, State_, check_batch
from gemrec.serve._ingest import validate_events
from gemrec.serve._schemas import EventBatch, IngestResult

__all__ = ["router"]

router = APIRouter(tags=["events"])


@router.post("/v1/events", response_model=IngestResult)
async def post_events(batch: EventBatch, state: State_, settings: Settings_) -> dict[str, int]:
    """Store events durably (acknowledged only after commit); retries with the same
    ``event_id`` are counted as duplicates. A batch with one invalid event is refused whole."""
    engine, store = state.engine, state.store
    check_batch(settings, len(batch.events), "events")
    if not batch.events:
        return {"accepted": 0, "duplicates": 0}
    accepted, rejected = await run_in_threadpool(
        validate_events, batch.events, engine, store, now=time.time()
    )
    if rejected:
        # the body was validated above, so only unknown items are left: 404 as for an unknown id
        # anywhere else (the request is well formed, the item is missing)
        named = ", ".join(
            f"{batch.events[r.position].item_id!r} (events.{r.position}.item_id)"
            for r in rejected[:20]
        )
        raise NotFound(f"unknown item_id {named}; add it first with POST /v1/items")
    events = [e for _, e in accepted]
    flags = await run_in_threadpool(store.append, events)
    stored = [e for e, ok in zip(events, flags, strict=True) if ok]
    engine.record_ingested(stored)
    state.metrics.events.inc(len(stored))
    state.metrics.duplicates.inc(len(events) - len(stored))
    return {"accepted": len(stored), "duplicates": len(events) - len(stored)}
