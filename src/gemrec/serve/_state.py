"""The loaded service: a :class:`ServiceState` built in the lifespan and swapped on reload.

``create_app`` puts the settings and metrics on ``app.state``; :func:`lifespan` opens the event
store, loads the engine and publishes ``app.state.service``, which route handlers reach through
the dependency :func:`gemrec.serve._deps.get_state`. A reload (``POST /v1/admin/reload`` here or in
another worker, announced through the store) builds a new engine and swaps one reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from gemrec.serve._engine import Engine, load_engine
from gemrec.serve._metrics import Metrics
from gemrec.serve._settings import ServeSettings
from gemrec.serve._store import EventStore, open_store

__all__ = [
    "GENERATION",
    "ServiceState",
    "lifespan",
    "poll_reloads",
    "start_consumer",
    "swap_model",
]

#: store meta key of the model generation: ``"<ns time>:<model_dir>"`` of the latest reload
GENERATION = "model_generation"


@dataclass
class ServiceState:
    """What the lifespan loads: swapped atomically (one reference) on reload."""

    settings: ServeSettings
    store: EventStore
    engine: Engine
    metrics: Metrics
    generation: str = "0"
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the artifacts named by ``app.state.settings``, serve, then close the store."""
    from threadpoolctl import threadpool_limits

    from gemrec.graph.kernels import set_kernel_threads

    settings: ServeSettings = app.state.settings
    metrics: Metrics = app.state.metrics
    threadpool_limits(settings.blas_threads)  # for this worker process's lifetime
    set_kernel_threads(settings.blas_threads)  # the compiled sparse kernels' pool, likewise
    store = await run_in_threadpool(open_store, settings.store_url)
    try:
        if settings.blocklist:
            # each worker seeds at start: ids already known to the store (an id unblocked through
            # the API included) are left as they are
            await run_in_threadpool(store.update_blocklist, settings.blocklist, seed=True)
        engine = await run_in_threadpool(load_engine, settings)
        await run_in_threadpool(engine.sync_items, store)
        state = ServiceState(settings, store, engine, metrics, store.get_meta(GENERATION) or "0")
        metrics.set_model(engine.model.name, engine.version)
        metrics.items.set(engine.catalogue.n)
        app.state.service = state
        # the loaded artifacts live as long as the worker: keep them out of the cyclic GC's
        # scans, whose full collections would otherwise add pauses to request tails
        gc.freeze()
        poller = asyncio.create_task(poll_reloads(state))
        stop = threading.Event()
        consumer = (
            await run_in_threadpool(start_consumer, state, stop) if settings.consume else None
        )
        try:
            yield
        finally:
            stop.set()
            if consumer is not None:
                await run_in_threadpool(consumer.join)
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    finally:
        store.close()


def start_consumer(state: ServiceState, stop: threading.Event) -> threading.Thread:
    """Run a :class:`gemrec.stream.StreamConsumer` on ``settings.consume`` in a thread until
    ``stop`` is set; it validates against the current engine (it follows reloads)."""
    from gemrec.stream import RedisStreamBroker, StreamConsumer

    s = state.settings
    assert s.consume is not None
    broker = RedisStreamBroker(s.consume, s.consume_stream, s.consume_group, s.consume_consumer)
    consumer = StreamConsumer(
        broker,
        state.store,
        lambda: state.engine,
        batch=s.consume_batch,
        claim_idle_ms=s.consume_claim_idle_ms,
    )

    def run() -> None:
        try:
            consumer.run(stop)
        finally:
            broker.close()

    thread = threading.Thread(target=run, name="gemrec-consume", daemon=True)
    thread.start()
    return thread


async def swap_model(state: ServiceState, model_dir: Path) -> None:
    """Load ``model_dir`` and switch ``state`` to it; requests in flight keep the old engine."""
    engine = await run_in_threadpool(load_engine, state.settings, model_dir)
    await run_in_threadpool(engine.sync_items, state.store)
    old, state.engine = state.engine, engine  # in-flight requests keep the old engine
    old.close()
    gc.freeze()
    state.metrics.set_model(engine.model.name, engine.version)
    state.metrics.reloads.inc()


async def poll_reloads(state: ServiceState) -> None:
    """Follow reloads announced by other workers through the store."""
    while True:
        await asyncio.sleep(state.settings.reload_poll_seconds)
        try:
            generation = await run_in_threadpool(state.store.get_meta, GENERATION)
            if generation and generation != state.generation:
                async with state.reload_lock:
                    if generation != state.generation:
                        await swap_model(state, Path(generation.split(":", 1)[1]))
                        state.generation = generation
        except asyncio.CancelledError:
            raise
        except Exception:
            await asyncio.sleep(state.settings.reload_poll_seconds)
