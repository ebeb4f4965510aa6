"""User reads: ``GET /v1/users/{user_id}/history``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gemrec.serve._catalogue import NotFound
from gemrec.serve._deps import State_
from gemrec.serve._schemas import HistoryOut

__all__ = ["router"]

router = APIRouter(tags=["users"])


@router.get("/v1/users/{user_id}/history", response_model=HistoryOut)
async def history(user_id: str, state: State_) -> dict[str, Any]:
    """The user's offline history (the dataset's events on their train and valid pairs, with types
    and times) and online events."""
    engine, store = state.engine, state.store
    stored = store.user_events(user_id, 10_000)
    # events a retrain folded into the model appear once, as offline history
    folded = [e for e in stored if e.seq <= engine.folded_through_seq]
    offline = engine.offline_history(user_id, folded)
    online = [
        {**e.as_dict(), "source": "online"} for e in stored if e.seq > engine.folded_through_seq
    ]
    if not offline and not online and user_id not in engine.user_index:
        raise NotFound(f"unknown user_id {user_id!r} (no offline history and no events)")
    return {"user_id": user_id, "events": offline + online}
