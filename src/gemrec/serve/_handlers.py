"""Exception handlers: every error answers JSON with a ``detail`` that names the problem.

422 for invalid requests (each error with its field, plus one readable ``message``), 404 for
unknown ids, 503 (with ``Retry-After``) while the store's server is unreachable, 400 for any other
:class:`~gemrec.errors.GemrecError`, 405 with ``Allow`` naming every method the path has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from gemrec.errors import GemrecError
from gemrec.serve._catalogue import NotFound
from gemrec.serve._store import StoreUnavailable

__all__ = ["EXCEPTION_HANDLERS"]

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    message = "; ".join(f"{_field(e['loc']) or 'body'}: {e['msg']}" for e in errors[:10])
    detail = [
        {"loc": list(e["loc"]), "field": _field(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in errors[:50]
    ]
    return JSONResponse({"detail": detail, "message": message}, status_code=422)


async def _not_found(request: Request, exc: NotFound) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _unavailable(request: Request, exc: StoreUnavailable) -> Response:
    return JSONResponse(
        {"detail": f"{exc}; nothing was stored, retry later"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _method_not_allowed(request: Request, exc: HTTPException) -> Response:
    # the router's Allow names the methods of the first route matching the path only; a path
    # served by one route per method (GET and POST /v1/admin/blocklist) has them all, as the
    # published document says
    allow = _allowed(request.app, request.url.path) or (exc.headers or {}).get("Allow", "")
    return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": allow})


def _allowed(app: Any, path: str) -> str:
    """The methods the OpenAPI document lists for ``path`` (empty for an undocumented path).

    A path the document names literally (``/v1/users/batch``) is that path alone, not also an
    instance of a template beside it (``/v1/users/{user_id}``).
    """
    table: dict[str, tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "allowed", None)
    if table is None:
        table = {
            template: (compile_path(template)[0], {m.upper() for m in item if m in _HTTP_METHODS})
            for template, item in app.openapi()["paths"].items()
        }
        app.state.allowed = table
    if path in table:
        return ", ".join(sorted(table[path][1]))
    methods: set[str] = set()
    for pattern, listed in table.values():
        if pattern.match(path):
            methods |= listed
    return ", ".join(sorted(methods))


async def _bad(request: Request, exc: GemrecError) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=400)


def _field(loc: Any) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


#: exception type -> handler, for ``FastAPI(exception_handlers=...)``
EXCEPTION_HANDLERS: dict[
    int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]
] = {
    RequestValidationError: _invalid,
    405: _method_not_allowed,
    NotFound: _not_found,
    StoreUnavailable: _unavailable,
    GemrecError: _bad,
}
