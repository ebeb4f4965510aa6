"""Users: ``GET /v1/users/{user_id}/history`` (a read) and the writes ``POST /v1/users``,
``POST /v1/users/batch`` (register or update attributes and social ties) and
``DELETE /v1/users/{user_id}`` (forget a user)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._catalogue import NotFound
from gemrec.serve._deps import Settings_, State_, check_batch
from gemrec.serve._schemas import HistoryOut, UserBatch, UserDeleted, UserIn, UsersResult
from gemrec.serve._store import UserUpdate

__all__ = ["router", "write_router"]

router = APIRouter(tags=["users"])
#: the user writes (the app puts them behind the write key)
write_router = APIRouter(tags=["users"])


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
    if (
        not offline
        and not online
        and user_id not in engine.user_index
        and store.get_user(user_id) is None
    ):
        raise NotFound(
            f"unknown user_id {user_id!r} (no offline history, events or registered profile)"
        )
    return {"user_id": user_id, "events": offline + online}


def _update(user: UserIn) -> UserUpdate:
    return (user.user_id, dict(user.attributes), user.friends)


@write_router.post("/v1/users", response_model=UsersResult)
async def post_user(user: UserIn, state: State_) -> dict[str, int]:
    """Register a user or update their attributes (merged) and the people they follow (replaced
    when given). Durable and idempotent: the same body twice leaves the same profile."""
    created = await run_in_threadpool(state.store.put_users, [_update(user)])
    return {"created": sum(created), "updated": len(created) - sum(created)}


@write_router.post("/v1/users/batch", response_model=UsersResult)
async def post_users(batch: UserBatch, state: State_, settings: Settings_) -> dict[str, int]:
    """:func:`post_user` for many users in one atomic write."""
    check_batch(settings, len(batch.users), "users")
    created = await run_in_threadpool(state.store.put_users, [_update(u) for u in batch.users])
    return {"created": sum(created), "updated": len(created) - sum(created)}


@write_router.delete("/v1/users/{user_id}", response_model=UserDeleted)
async def delete_user(user_id: str, state: State_) -> dict[str, Any]:
    """Forget a user: their online events, profile and ties (both ways) leave the store at once,
    and ``gemrec retrain`` leaves their offline history out of the next model."""
    engine, store = state.engine, state.store
    known = (
        user_id in engine.user_index
        or store.get_user(user_id) is not None
        or bool(store.user_events(user_id, 1))
        or user_id in store.forgotten_users()
    )
    if not known:
        raise NotFound(f"unknown user_id {user_id!r} (no offline history, profile or events)")
    removed = await run_in_threadpool(store.forget_user, user_id)
    return {"user_id": user_id, "deleted": True, "events_removed": removed}
