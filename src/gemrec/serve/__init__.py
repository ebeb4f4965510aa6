"""Real-time recommendation service: event ingestion, online fold-in, cold start, ANN retrieval.

Start it with ``gemrec serve MODEL_DIR --dataset DATASET_DIR``; build it in code with
:func:`create_app`. See ``docs/serving.md`` for the HTTP API.

Names are resolved on first use (PEP 562) so that ``gemrec --help`` does not import FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gemrec.serve._app import ServiceState, create_app, get_state
    from gemrec.serve._engine import Engine, load_engine
    from gemrec.serve._replay import demo_session, format_replay, replay_session
    from gemrec.serve._settings import ServeSettings
    from gemrec.serve._store import Event, EventStore, RedisStore, SQLiteStore, open_store

_EXPORTS = {
    "Engine": "_engine",
    "Event": "_store",
    "EventStore": "_store",
    "RedisStore": "_store",
    "SQLiteStore": "_store",
    "ServeSettings": "_settings",
    "ServiceState": "_app",
    "create_app": "_app",
    "demo_session": "_replay",
    "format_replay": "_replay",
    "get_state": "_app",
    "load_engine": "_engine",
    "open_store": "_store",
    "replay_session": "_replay",
}
__all__ = [
    "Engine",
    "Event",
    "EventStore",
    "RedisStore",
    "SQLiteStore",
    "ServeSettings",
    "ServiceState",
    "create_app",
    "demo_session",
    "format_replay",
    "get_state",
    "load_engine",
    "open_store",
    "replay_session",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gemrec.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gemrec.serve.{module}"), name)
