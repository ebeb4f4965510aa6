"""The FastAPI application: ``create_app(settings)``.

Artifacts (model, catalogue, store) are loaded in the lifespan into a :class:`ServiceState`; route
handlers reach them through the dependency :func:`get_state`, which tests may override
(``app.dependency_overrides[get_state] = ...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from gemrec import __version__
from gemrec.errors import GemrecError
from gemrec.serve._engine import Engine, NotFound, load_engine
from gemrec.serve._metrics import Metrics
from gemrec.serve._schemas import (
    EventBatch,
    HistoryOut,
    IngestResult,
    ItemBatch,
    ItemsResult,
    RecommendationsOut,
    ReloadIn,
    SimilarOut,
)
from gemrec.serve._settings import ServeSettings
from gemrec.serve._store import Event, EventStore, open_store

__all__ = ["ServiceState", "app_from_env", "create_app", "get_state"]

SETTINGS_ENV = "GEMREC_SERVE_SETTINGS"
_GENERATION = "model_generation"
_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
#: read paths look for other workers' item changes at most this often
_READ_SYNC_S = 0.2


@dataclass
class ServiceState:
    """What the lifespan loads: swapped atomically (one reference) on reload."""

    settings: ServeSettings
    store: EventStore
    engine: Engine
    metrics: Metrics
    generation: str = "0"
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def get_state(request: Request) -> ServiceState:
    """The loaded service (dependencies are ``async def``: a sync one would cost a thread hop)."""
    state: ServiceState = request.app.state.service
    return state


State_ = Annotated[ServiceState, Depends(get_state)]


class _Guard:
    """Pure ASGI middleware: body size limit (413) and latency metrics per route template."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, settings.max_body_bytes, metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        limit = self.limit
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_json(send, 413, _too_large(declared, limit))
                    self._observe(scope, 413, start)
                    return
        seen = 0
        answered = False

        async def limited_receive() -> Any:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                seen += len(message.get("body", b""))
                if seen > limit:
                    # answer now and tell the app the client went away; its own reply is dropped
                    answered = True
                    status[0] = 413
                    await _send_json(send, 413, _too_large(seen, limit))
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Any) -> None:
            if answered:
                return
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, limited_receive, tracking_send)
        self._observe(scope, status[0], start)

    def _observe(self, scope: MutableMapping[str, Any], status: int, start: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        key = (method if method in _METHODS else "OTHER", template, status // 100)
        children = self._children.get(key)
        if children is None:  # labels() is a locked dict lookup: resolve each label set once
            children = (
                self.metrics.latency.labels(key[0], template),
                self.metrics.responses.labels(template, f"{key[2]}xx"),
            )
            self._children[key] = children
        children[0].observe(time.perf_counter() - start)
        children[1].inc()


_RECOMMEND_PARAMS = [
    {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 20}},
    {"name": "exclude_seen", "in": "query", "schema": {"type": "boolean", "default": True}},
    {"name": "category", "in": "query", "schema": {"type": "string"}},
    {"name": "reasons", "in": "query", "schema": {"type": "boolean", "default": True}},
]
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


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


def _too_large(size: int, limit: int) -> dict[str, str]:
    return {
        "detail": f"request body of {size} bytes exceeds the limit of {limit} bytes; "
        "send smaller batches"
    }


async def _send_json(
    send: Callable[[Any], Awaitable[None]], status: int, body: dict[str, Any]
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _field(loc: Any) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the service. Nothing is loaded until the app starts (lifespan).

    Examples
    --------
    >>> from fastapi.testclient import TestClient                      # doctest: +SKIP
    >>> app = create_app(ServeSettings(model_dir="m", dataset_dir="d"))  # doctest: +SKIP
    >>> with TestClient(app) as client:                                  # doctest: +SKIP
    ...     client.get("/v1/users/u1/recommendations", params={"k": 5}).json()
    """
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits

        threadpool_limits(settings.blas_threads)  # for this worker process's lifetime
        store = await run_in_threadpool(open_store, settings.store_url)
        try:
            engine = await run_in_threadpool(load_engine, settings)
            await run_in_threadpool(engine.sync_items, store)
            await run_in_threadpool(_warm_trending, engine, store)
            state = ServiceState(
                settings, store, engine, metrics, store.get_meta(_GENERATION) or "0"
            )
            metrics.set_model(engine.model.name, engine.version)
            metrics.items.set(engine.catalogue.n)
            app.state.service = state
            # the loaded artifacts live as long as the worker: keep them out of the cyclic GC's
            # scans, whose full collections would otherwise add pauses to request tails
            gc.freeze()
            poller = asyncio.create_task(_poll_reloads(state))
            try:
                yield
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
        finally:
            store.close()

    app = FastAPI(
        title="gemrec",
        version=__version__,
        summary="Real-time graph-embedding product recommendations",
        lifespan=lifespan,
    )
    app.add_middleware(_Guard, settings=settings, metrics=metrics)

    def check_key(authorization: str | None) -> None:
        key = settings.api_key
        if key is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), key.encode()
        ):
            raise HTTPException(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def write_access(authorization: Annotated[str | None, Header()] = None) -> None:
        check_key(authorization)

    async def read_access(authorization: Annotated[str | None, Header()] = None) -> None:
        if settings.protect_reads:
            check_key(authorization)

    writes = [Depends(write_access)]
    # no dependency at all on open reads: each one costs time on the hottest path
    reads = [Depends(read_access)] if settings.protect_reads else []

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = "; ".join(f"{_field(e['loc']) or 'body'}: {e['msg']}" for e in errors[:10])
        detail = [
            {"loc": list(e["loc"]), "field": _field(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in errors[:50]
        ]
        return JSONResponse({"detail": detail, "message": message}, status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(GemrecError)
    async def _bad(request: Request, exc: GemrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    def check_k(k: int) -> None:
        if k > settings.max_k:
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "k"),
                        "msg": f"k must be at most {settings.max_k}; got {k}",
                        "type": "less_than_equal",
                    }
                ]
            )

    def check_batch(n: int, what: str) -> None:
        if n > settings.max_batch:
            raise HTTPException(
                413, f"batch of {n} {what} exceeds the limit of {settings.max_batch}; split it"
            )

    # ------------------------------------------------------------------ events
    @app.post("/v1/events", response_model=IngestResult, dependencies=writes, tags=["events"])
    async def post_events(batch: EventBatch, state: State_) -> dict[str, int]:
        """Store events durably (acknowledged only after commit); retries with the same
        ``event_id`` are counted as duplicates."""
        engine, store = state.engine, state.store
        check_batch(len(batch.events), "events")
        if not batch.events:
            return {"accepted": 0, "duplicates": 0}
        index = engine.catalogue.index
        if any(e.item_id not in index for e in batch.events):
            await run_in_threadpool(engine.sync_items, store)
        bad = [(n, e.item_id) for n, e in enumerate(batch.events) if e.item_id not in index]
        if bad:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "events", n, "item_id"),
                        "msg": f"unknown item_id {item!r}; add it first with POST /v1/items",
                        "type": "unknown_id",
                    }
                    for n, item in bad[:20]
                ]
            )
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

    # ------------------------------------------------------------------ reads
    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=RecommendationsOut,
        dependencies=reads,
        tags=["recommendations"],
        openapi_extra={"parameters": _RECOMMEND_PARAMS},
    )
    async def recommendations(user_id: str, request: Request) -> Response:
        """Top-k items for a user, reflecting every acknowledged event of that user.

        Query parameters: ``k`` (1..max_k, default 20), ``exclude_seen`` (default true),
        ``category``, ``reasons`` (default true).
        """
        # the hottest path: query parameters are parsed here rather than by FastAPI's dependency
        # solver (a third of the request's CPU time); errors keep the 422 format naming the field
        q = request.query_params
        k = _int_param(q, "k", 20)
        exclude_seen = _bool_param(q, "exclude_seen", True)
        reasons = _bool_param(q, "reasons", True)
        category = q.get("category")
        provider = request.app.dependency_overrides.get(get_state)
        if provider is None:
            state = request.app.state.service
        else:  # honour an override as FastAPI would (it may take the request or nothing)
            state = provider(request) if inspect.signature(provider).parameters else provider()
            if inspect.isawaitable(state):
                state = await state
        engine, store = state.engine, state.store
        check_k(k)
        known = category is None or category in engine.catalogue.category_codes
        engine.sync_items(store, max_age=_READ_SYNC_S if known else 0)
        events = engine.online_events(store, user_id)
        recs = engine.recommend(
            user_id, k, events, exclude_seen=exclude_seen, category=category, with_reasons=reasons
        )
        state.metrics.strategies.labels(recs.strategy).inc()
        body = {
            "user_id": recs.user_id,
            "items": [
                {"item_id": r.item_id, "score": r.score, "reason": r.reason} for r in recs.items
            ],
            "strategy": recs.strategy,
        }
        # the hot path: a Response is sent as is (the schema above documents it, unvalidated)
        return Response(json.dumps(body), media_type="application/json")

    @app.get(
        "/v1/items/{item_id}/similar", response_model=SimilarOut, dependencies=reads, tags=["items"]
    )
    async def similar(
        item_id: str, state: State_, k: Annotated[int, Query(ge=1)] = 10
    ) -> dict[str, Any]:
        engine, store = state.engine, state.store
        check_k(k)
        # an id this worker does not know yet may have been added through another one: look now
        engine.sync_items(store, max_age=_READ_SYNC_S if item_id in engine.catalogue.index else 0)
        items = engine.similar(item_id, k)
        return {
            "item_id": item_id,
            "items": [{"item_id": r.item_id, "score": r.score} for r in items],
        }

    @app.get(
        "/v1/users/{user_id}/history", response_model=HistoryOut, dependencies=reads, tags=["users"]
    )
    async def history(user_id: str, state: State_) -> dict[str, Any]:
        """The user's offline interactions (from the training data) and online events."""
        engine, store = state.engine, state.store
        offline = engine.offline_history(user_id)
        # events a retrain folded into the model appear once, as offline history
        online = [
            {**e.as_dict(), "source": "online"}
            for e in store.user_events(user_id, 10_000)
            if e.seq > engine.folded_through_seq
        ]
        if not offline and not online and user_id not in engine.user_index:
            raise NotFound(f"unknown user_id {user_id!r} (no offline history and no events)")
        return {"user_id": user_id, "events": offline + online}

    @app.get("/v1/explain", dependencies=reads, tags=["recommendations"])
    async def explain(
        state: State_,
        user_id: Annotated[str, Query(min_length=1)],
        item_id: Annotated[str, Query(min_length=1)],
    ) -> dict[str, Any]:
        """Why ``item_id`` for ``user_id``: paths user -> item they touched -> co-users -> item."""
        engine, store = state.engine, state.store
        engine.sync_items(store)
        return engine.explain(user_id, item_id, engine.online_events(store, user_id))

    # ------------------------------------------------------------------ items
    @app.post("/v1/items", response_model=ItemsResult, dependencies=writes, tags=["items"])
    async def post_items(batch: ItemBatch, state: State_) -> dict[str, int]:
        """Add or update items with side information; a new item gets an embedding from it."""
        engine, store = state.engine, state.store
        check_batch(len(batch.items), "items")
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

    @app.delete("/v1/items/{item_id}", dependencies=writes, tags=["items"])
    async def delete_item(item_id: str, state: State_) -> dict[str, Any]:
        """Remove an item from every result (its history is kept)."""
        engine, store = state.engine, state.store
        engine.sync_items(store)
        engine.item(item_id)
        await run_in_threadpool(store.put_items, [(item_id, {"deleted": True})])
        await run_in_threadpool(engine.sync_items, store)
        return {"item_id": item_id, "deleted": True}

    # ------------------------------------------------------------------ operations
    @app.get("/healthz", tags=["operations"])
    async def healthz(state: State_) -> dict[str, Any]:
        return {
            "status": "ok",
            **state.engine.info(),
            "store": state.store.url.split(":", 1)[0],
            "pid": os.getpid(),
        }

    @app.get("/metrics", tags=["operations"])
    async def metrics_endpoint(state: State_) -> Response:
        state.metrics.items.set(state.engine.catalogue.n)
        return Response(
            state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.post("/v1/admin/reload", dependencies=writes, tags=["operations"])
    async def reload(state: State_, body: ReloadIn | None = None) -> dict[str, Any]:
        """Load a model directory and switch to it; requests in flight finish on the old model.
        Other workers sharing the store follow within ``reload_poll_seconds``."""
        model_dir = Path(body.model_dir) if body and body.model_dir else state.engine.model_dir
        if not (model_dir / "manifest.json").is_file():
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "model_dir"),
                        "msg": f"{model_dir} is not a gemrec model directory (no manifest.json)",
                        "type": "value_error",
                    }
                ]
            )
        async with state.reload_lock:
            await _swap(state, model_dir)
            generation = f"{time.time_ns()}:{model_dir}"
            state.generation = generation
            await run_in_threadpool(state.store.set_meta, _GENERATION, generation)
        return {"status": "reloaded", **state.engine.info()}

    return app


async def _swap(state: ServiceState, model_dir: Path) -> None:
    engine = await run_in_threadpool(load_engine, state.settings, model_dir)
    await run_in_threadpool(engine.sync_items, state.store)
    await run_in_threadpool(_warm_trending, engine, state.store)
    state.engine = engine  # one reference assignment: in-flight requests keep the old engine
    gc.freeze()
    state.metrics.set_model(engine.model.name, engine.version)
    state.metrics.reloads.inc()


async def _poll_reloads(state: ServiceState) -> None:
    """Follow reloads announced by other workers through the store."""
    while True:
        await asyncio.sleep(state.settings.reload_poll_seconds)
        try:
            generation = await run_in_threadpool(state.store.get_meta, _GENERATION)
            if generation and generation != state.generation:
                async with state.reload_lock:
                    if generation != state.generation:
                        await _swap(state, Path(generation.split(":", 1)[1]))
                        state.generation = generation
        except asyncio.CancelledError:
            raise
        except Exception:
            await asyncio.sleep(state.settings.reload_poll_seconds)


def _warm_trending(engine: Engine, store: EventStore, limit: int = 1_000_000) -> None:
    """Count the most recent stored events towards "trending now" at start-up (bounded)."""
    total = store.count_events()
    after = max(0, total - limit)
    batch: list[Event] = []
    for e in store.events(after_seq=after):
        batch.append(e)
        if len(batch) >= 10_000:
            engine.record_ingested(batch)
            batch = []
    engine.record_ingested(batch)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings come as JSON in an env var."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise GemrecError(f"{SETTINGS_ENV} is not set; start the service with `gemrec serve`")
    return create_app(ServeSettings.from_dict(json.loads(raw)))
