"""The web console at ``/ui/``: server-rendered pages over the running service and the tracking
store (overview, users, items, live events, runs), with graphs downloadable as GraphML or
node-link JSON.

``create_app`` serves it beside the API (:func:`include_console`); :func:`create_console_app`
serves it alone, without a model, to browse runs.
"""

from __future__ import annotations

from fastapi import FastAPI

from gemrec import __version__
from gemrec.serve._handlers import EXCEPTION_HANDLERS
from gemrec.serve.ui._routes import include_console

__all__ = ["create_console_app", "include_console"]


def create_console_app() -> FastAPI:
    """The console alone, with no model loaded: the Runs page and the model comparison work; the
    pages that need a served model say so.

    It has no API key: serve it on a loopback address only.
    """
    app = FastAPI(
        title="gemrec console", version=__version__, exception_handlers=EXCEPTION_HANDLERS
    )
    include_console(app)
    return app
