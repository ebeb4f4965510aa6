"""A user's list: ``GET /v1/users/{user_id}/recommendations``, the service's hottest path."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from gemrec.serve._deps import READ_SYNC_S, check_k, get_settings, get_state, resolve
from gemrec.serve._schemas import RecommendationsOut
from gemrec.serve._store import StoreUnavailable

__all__ = ["router"]

router = APIRouter(tags=["recommendations"])

#: the query parameters parsed by hand below, documented as FastAPI would document them
_RECOMMEND_PARAMS = [
    {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 20}},
    {"name": "exclude_seen", "in": "query", "schema": {"type": "boolean", "default": True}},
    {"name": "category", "in": "query", "schema": {"type": "string"}},
    {"name": "reasons", "in": "query", "schema": {"type": "boolean", "default": True}},
]
#: prefix of ``strategy`` on lists made while the store is unreachable
OFFLINE = "offline:"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@router.get(
    "/v1/users/{user_id}/recommendations",
    response_model=RecommendationsOut,
    openapi_extra={"parameters": _RECOMMEND_PARAMS},
)
async def recommendations(user_id: str, request: Request) -> Response:
    """Top-k items for a user, reflecting every acknowledged event of that user.

    Query parameters: ``k`` (1..max_k, default 20), ``exclude_seen`` (default true),
    ``category``, ``reasons`` (default true). While the store is unreachable the list is the
    model's alone (no online events, no trending counts) and ``strategy`` is prefixed
    ``offline:``.
    """
    # the hottest path: query parameters are parsed here rather than by FastAPI's dependency
    # solver (a third of the request's CPU time); errors keep the 422 format naming the field
    q = request.query_params
    k = _int_param(q, "k", 20)
    exclude_seen = _bool_param(q, "exclude_seen", True)
    reasons = _bool_param(q, "reasons", True)
    category = q.get("category")
    state = await resolve(request, get_state)
    check_k(await resolve(request, get_settings), k)
    engine = state.engine
    known = category is None or category in engine.catalogue.category_codes
    try:
        engine.sync_items(state.store, max_age=READ_SYNC_S if known else 0)
        events = engine.online_events(state.store, user_id)
        recs = engine.recommend(
            user_id,
            k,
            events,
            exclude_seen=exclude_seen,
            category=category,
            with_reasons=reasons,
            store=state.store,
        )
    except StoreUnavailable:
        recs = engine.recommend(
            user_id, k, [], exclude_seen=exclude_seen, category=category, with_reasons=reasons
        )
        recs.strategy = f"{OFFLINE}{recs.strategy}"
    state.metrics.strategies.labels(recs.strategy).inc()
    body = {
        "user_id": recs.user_id,
        "items": [{"item_id": r.item_id, "score": r.score, "reason": r.reason} for r in recs.items],
        "strategy": recs.strategy,
    }
    # the hot path: a Response is sent as is (the schema above documents it, unvalidated)
    return Response(json.dumps(body), media_type="application/json")


def _param_error(name: str, msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", name), "msg": msg, "type": kind}])


def _int_param(q: Any, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _param_error(
            name, f"Input should be a valid integer, unable to parse {raw!r}", "int_parsing"
        ) from None
    if value < 1:
        raise _param_error(name, "Input should be greater than or equal to 1", "greater_than_equal")
    return value


def _bool_param(q: Any, name: str, default: bool) -> bool:
    raw = q.get(name)
    if raw is None:
        return default
    low = raw.lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    raise _param_error(name, f"Input should be a valid boolean, got {raw!r}", "bool_parsing")
