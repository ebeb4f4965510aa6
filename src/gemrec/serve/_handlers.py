"""Exception handlers: every error answers JSON with a ``detail`` that names the problem.

422 for invalid requests (each error with its field, plus one readable ``message``), 404 for
unknown ids, 503 (with ``Retry-After``) while the store's server is unreachable, 400 for any other
:class:`~gemrec.errors.GemrecError`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from gemrec.errors import GemrecError
from gemrec.serve._catalogue import NotFound
from gemrec.serve._store import StoreUnavailable

__all__ = ["EXCEPTION_HANDLERS"]


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


async def _bad(request: Request, exc: GemrecError) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=400)


def _field(loc: Any) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path"))


#: exception type -> handler, for ``FastAPI(exception_handlers=...)``
EXCEPTION_HANDLERS: dict[
    int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]
] = {
    RequestValidationError: _invalid,
    NotFound: _not_found,
    StoreUnavailable: _unavailable,
    GemrecError: _bad,
}
