"""The console's routes: page shells (open), their server-rendered parts and data (reads), and
the side-by-side comparison of two model directories (writes: it loads files of the server).

A page is a shell that asks for its part with the browser's stored API key, so a service with
protected reads asks for the key once and every part then respects it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from gemrec.errors import GemrecError
from gemrec.serve._catalogue import NotFound
from gemrec.serve._engine import Engine, load_engine
from gemrec.serve._settings import ServeSettings
from gemrec.serve._state import ServiceState
from gemrec.serve._store import Event
from gemrec.serve.routes import users as users_routes
from gemrec.serve.ui import _views
from gemrec.serve.ui._graphs import Graph, explanation_graph, item_graph, to_graphml
from gemrec.serve.ui._plots import line_chart
from gemrec.serve.ui._runs import (
    TRAINING_FIGURES,
    model_runs,
    read_runs,
    run_detail,
)
from gemrec.tracking import tracking_uri

__all__ = ["include_console"]

_STATIC = Path(__file__).parent / "static"
#: the files under /ui/static (nothing else of the package is served)
STATIC_FILES = {"console.js": "text/javascript", "console.css": "text/css"}

_env = Environment(
    loader=PackageLoader("gemrec.serve.ui", "templates"),
    autoescape=select_autoescape(["html"]),
)


def _when(ts: float | None) -> str:
    if ts is None or ts != ts:
        return ""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M")


_env.filters["when"] = _when

pages = APIRouter(prefix="/ui", include_in_schema=False)
parts = APIRouter(prefix="/ui", include_in_schema=False)
writes = APIRouter(prefix="/ui", include_in_schema=False)


def _render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


def _service(request: Request) -> ServiceState | None:
    """The loaded service, or None in a console started without a model."""
    state: ServiceState | None = getattr(request.app.state, "service", None)
    return state


def _require(request: Request) -> ServiceState:
    state = _service(request)
    if state is None:
        raise NotFound("no model is loaded: start the console with `gemrec serve MODEL_DIR`")
    return state


def _shell(request: Request, page: str, part: str, **context: Any) -> HTMLResponse:
    settings: ServeSettings | None = getattr(request.app.state, "settings", None)
    return _render(
        "shell.html",
        page=page,
        part=part,
        protect_reads=bool(settings and settings.protect_reads),
        has_model=_service(request) is not None,
        **context,
    )


# ------------------------------------------------------------------ page shells (open)
@pages.get("/")
async def overview_page(request: Request) -> HTMLResponse:
    return _shell(request, "overview", "/ui/part/overview", title="Overview")


@pages.get("/users")
async def user_lookup_page(request: Request, user_id: str | None = None) -> Response:
    if user_id:
        return Response(
            status_code=303, headers={"Location": f"/ui/users/{quote(user_id, safe='')}"}
        )
    return _shell(request, "user", "", title="User", user_id="")


@pages.get("/users/{user_id}")
async def user_page(request: Request, user_id: str) -> HTMLResponse:
    return _shell(request, "user", f"/ui/part/users/{user_id}", title=user_id, user_id=user_id)


@pages.get("/items/{item_id}")
async def item_page(request: Request, item_id: str) -> HTMLResponse:
    return _shell(request, "item", f"/ui/part/items/{item_id}", title=item_id, item_id=item_id)


@pages.get("/live")
async def live_page(request: Request) -> HTMLResponse:
    return _shell(request, "live", "/ui/part/live", title="Live")


@pages.get("/runs")
async def runs_page(request: Request) -> HTMLResponse:
    return _shell(request, "runs", "/ui/part/runs", title="Runs")


@pages.get("/static/{name}")
async def static(name: str) -> FileResponse:
    media = STATIC_FILES.get(name)
    if media is None:
        raise NotFound(f"no console file {name!r}; expected one of {', '.join(STATIC_FILES)}")
    return FileResponse(_STATIC / name, media_type=media)


# ------------------------------------------------------------------ parts (reads)
@parts.get("/part/overview")
async def overview_part(request: Request) -> HTMLResponse:
    state = _service(request)
    if state is None:
        return _render("overview.html", engine=None)
    engine = state.engine
    dataset = engine.dataset
    figures = {
        "users": dataset.n_users,
        "items": dataset.n_items,
        "interactions": len(dataset.edges),
        "events": len(dataset.events) if dataset.has_events else None,
    }
    plots = await run_in_threadpool(_views.dataset_plots, engine)
    report_dir = state.settings.report_dir
    report = None
    if report_dir is not None:
        report = await run_in_threadpool(_views.report_view, report_dir, engine)
    runs = await run_in_threadpool(model_runs, tracking_uri(), engine.model_dir)
    started = float(getattr(request.app.state, "console_started", time.time()))
    stored = await run_in_threadpool(state.store.count_events)
    return _render(
        "overview.html",
        engine=engine,
        dataset_name=dataset.manifest.get("name", dataset.path.name),
        dataset_dir=str(Path(dataset.path).resolve()),
        figures=figures,
        plots=plots,
        report=report,
        runs=runs,
        training_figures=[
            f for f in TRAINING_FIGURES if any(f in r.metrics for r in runs.trainings)
        ],
        info=engine.info(),
        record=_views.model_record(engine),
        service=_views.service_figures(state.metrics, started),
        stored_events=stored,
    )


@parts.get("/part/users/{user_id}")
async def user_part(request: Request, user_id: str) -> HTMLResponse:
    state = _require(request)
    try:
        history = (await users_routes.history(user_id, state))["events"]
    except NotFound:
        history = []
    timeline = sorted(
        (e for e in history if e.get("timestamp") is not None), key=lambda e: e["timestamp"]
    )
    untimed = [e for e in history if e.get("timestamp") is None]
    profile = _views.interest_profile(state.engine, timeline + untimed)
    return _render(
        "user.html",
        user_id=user_id,
        known=bool(history) or user_id in state.engine.user_index,
        timeline=list(reversed(timeline))[:100],
        untimed=untimed[:100],
        n_events=len(history),
        profile=profile,
    )


@parts.get("/part/items/{item_id}")
async def item_part(request: Request, item_id: str) -> HTMLResponse:
    state = _require(request)
    engine = state.engine
    engine.sync_items(state.store)
    i = engine.catalogue.item(item_id)
    cat = engine.catalogue
    similar = engine.similar(item_id, 10, state.store)
    return _render(
        "item.html",
        item_id=item_id,
        category=cat.category_names[cat.category[i]] if cat.category[i] >= 0 else None,
        title=cat.titles[i] if i < len(cat.titles) else "",
        similar=similar,
        users=_views.item_users(engine, item_id),
    )


@parts.get("/part/live")
async def live_part(request: Request) -> HTMLResponse:
    _require(request)
    return _render("live.html")


@parts.get("/part/runs")
async def runs_part(order_by: str | None = None) -> HTMLResponse:
    view = await run_in_threadpool(read_runs, tracking_uri(), order_by)
    params = sorted({p for r in view.runs for p in r.params})[:6]
    return _render("runs.html", view=view, order_by=order_by, params=params)


@parts.get("/part/runs/{run_id}")
async def run_curves_part(run_id: str) -> HTMLResponse:
    try:
        history, finals = await run_in_threadpool(run_detail, tracking_uri(), run_id)
    except GemrecError as exc:
        raise HTTPException(404, str(exc)) from None
    curves = [line_chart(key, {key: pts}) for key, pts in history.items() if len(pts) > 1]
    return _render("curves.html", run_id=run_id, curves=curves, finals=finals)


def _graph_response(graph: Graph, fmt: str, name: str) -> Response:
    if fmt == "graphml":
        return Response(
            to_graphml(graph),
            media_type="application/graphml+xml",
            headers={"Content-Disposition": f'attachment; filename="{name}.graphml"'},
        )
    if fmt != "json":
        raise HTTPException(422, f"format must be 'json' or 'graphml'; got {fmt!r}")
    return Response(json.dumps(graph), media_type="application/json")


_Format = Annotated[str, Query(pattern="^(json|graphml)$")]


@parts.get("/graph/explain")
async def explain_graph(
    request: Request,
    user_id: Annotated[str, Query(min_length=1)],
    item_id: Annotated[str, Query(min_length=1)],
    format: _Format = "json",
) -> Response:
    """``GET /v1/explain`` as a graph (node-link JSON or GraphML)."""
    state = _require(request)
    engine = state.engine
    engine.sync_items(state.store)
    explanation = engine.explain(user_id, item_id, engine.online_events(state.store, user_id))
    return _graph_response(explanation_graph(explanation), format, f"explain-{user_id}-{item_id}")


@parts.get("/graph/items/{item_id}")
async def item_neighbourhood(request: Request, item_id: str, format: _Format = "json") -> Response:
    """An item's users and similar items as a graph (node-link JSON or GraphML)."""
    state = _require(request)
    engine = state.engine
    engine.sync_items(state.store)
    similar = [(r.item_id, r.score) for r in engine.similar(item_id, 10, state.store)]
    graph = item_graph(item_id, similar, _views.item_users(engine, item_id, 12))
    return _graph_response(graph, format, f"item-{item_id}")


@parts.get("/events/stream")
async def event_stream(request: Request, after: int | None = None) -> StreamingResponse:
    """Server-sent events: every event the store receives from now (or after seq ``after``)."""
    state = _require(request)
    store = state.store

    # seqs count appends from 1 (SQLite may skip one where a duplicate was refused): the count
    # is the last seq or just under it, so a new stream starts at the latest events
    start = after if after is not None else await run_in_threadpool(store.count_events)

    def _batch(after_seq: int) -> list[Event]:
        return list(store.events(after_seq, 500))

    async def stream() -> AsyncIterator[bytes]:
        last = start
        yield f"event: ready\ndata: {json.dumps({'after': last})}\n\n".encode()
        idle = 0.0
        while not await request.is_disconnected():
            fresh = await run_in_threadpool(_batch, last)
            for e in fresh:
                last = max(last, e.seq)
                yield f"id: {e.seq}\ndata: {json.dumps(e.as_dict())}\n\n".encode()
            if fresh:
                idle = 0.0
                continue
            idle += 0.25
            if idle >= 15:  # a comment keeps proxies from closing a quiet stream
                idle = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(0.25)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


# ------------------------------------------------------------------ comparison (writes)


@writes.get("/compare")
async def compare(
    request: Request,
    user_id: Annotated[str, Query(min_length=1)],
    model_a: Annotated[str, Query(min_length=1)],
    model_b: Annotated[str, Query(min_length=1)],
    dataset: str | None = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Two model directories' lists for one user, side by side (offline history only)."""
    state = _service(request)
    dataset_dir = Path(dataset) if dataset else (state.settings.dataset_dir if state else None)
    if dataset_dir is None:
        raise HTTPException(422, "no model is loaded: pass dataset=DATASET_DIR to compare models")
    # engines loaded for comparisons, per app (the last four model directories)
    engines: dict[tuple[str, str], Engine] = request.app.state.console_engines
    out: dict[str, Any] = {"user_id": user_id, "lists": []}
    for model_dir in (model_a, model_b):
        if not (Path(model_dir) / "manifest.json").is_file():
            raise HTTPException(
                422, f"{model_dir}: not a gemrec model directory (no manifest.json)"
            )
        key = (str(Path(model_dir).resolve()), str(dataset_dir.resolve()))
        engine = engines.get(key)
        if engine is None:
            # one list per model: nothing to precompute
            settings = ServeSettings(
                model_dir=Path(key[0]), dataset_dir=Path(key[1]), precompute_lists="off"
            )
            engine = await run_in_threadpool(load_engine, settings)
            if len(engines) >= 4:
                engines.pop(next(iter(engines)))
            engines[key] = engine
        recs = await run_in_threadpool(engine.recommend, user_id, k, [])
        out["lists"].append(
            {
                "model_dir": model_dir,
                "model": engine.model.name,
                "strategy": recs.strategy,
                "items": [
                    {"item_id": r.item_id, "score": r.score, "reason": r.reason} for r in recs.items
                ],
            }
        )
    return out


def include_console(
    app: FastAPI, reads: Sequence[Depends] = (), write: Sequence[Depends] = ()
) -> None:
    """Serve the console at ``/ui/`` on ``app``: shells open, parts with ``reads``' rule and the
    comparison of model directories with ``write``'s."""
    app.state.console_started = time.time()
    app.state.console_engines = {}
    app.include_router(pages)
    app.include_router(parts, dependencies=list(reads))
    app.include_router(writes, dependencies=list(write))
