"""FastAPI dependencies of the routes: the loaded state, the settings, access keys and limits.

Both :func:`get_state` and :func:`get_settings` read ``app.state``; tests may replace either
through ``app.dependency_overrides``. Dependencies are ``async def``: a sync one would cost a
thread hop per request.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from gemrec.serve._settings import ServeSettings
from gemrec.serve._state import ServiceState

__all__ = [
    "READ_SYNC_S",
    "Settings_",
    "State_",
    "check_batch",
    "check_k",
    "get_settings",
    "get_state",
    "read_access",
    "resolve",
    "write_access",
]

#: read paths look for other workers' item changes at most this often
READ_SYNC_S = 0.2

T = TypeVar("T")


async def get_state(request: Request) -> ServiceState:
    """The loaded service (set by the lifespan)."""
    state: ServiceState = request.app.state.service
    return state


async def get_settings(request: Request) -> ServeSettings:
    """The settings the app was created with."""
    settings: ServeSettings = request.app.state.settings
    return settings


State_ = Annotated[ServiceState, Depends(get_state)]
Settings_ = Annotated[ServeSettings, Depends(get_settings)]


async def resolve(request: Request, dependency: Callable[[Request], Awaitable[T]]) -> T:
    """``dependency``'s value for a handler that bypasses FastAPI's dependency solver.

    An override in ``app.dependency_overrides`` is honoured as FastAPI would (it may take the
    request or nothing, and be sync or async).
    """
    provider: Callable[..., Any] | None = request.app.dependency_overrides.get(dependency)
    if provider is None:
        return await dependency(request)
    value = provider(request) if inspect.signature(provider).parameters else provider()
    if inspect.isawaitable(value):
        value = await value
    result: T = value
    return result


def _check_key(settings: ServeSettings, authorization: str | None) -> None:
    key = settings.api_key
    if key is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise HTTPException(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def write_access(
    settings: Settings_, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Writes and admin calls need the API key (when one is set)."""
    _check_key(settings, authorization)


async def read_access(
    settings: Settings_, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Reads need the API key only with ``protect_reads``."""
    if settings.protect_reads:
        _check_key(settings, authorization)


def check_k(settings: ServeSettings, k: int) -> None:
    """A list of more than ``max_k`` items is a validation error on ``k`` (422)."""
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


def check_batch(settings: ServeSettings, n: int, what: str) -> None:
    """A batch of more than ``max_batch`` rows is a validation error on the list (422).

    The published schema bounds the list by ``maxItems``: a longer one is invalid input.
    """
    if n > settings.max_batch:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", what),
                    "msg": f"batch of {n} {what} exceeds the limit of {settings.max_batch}; "
                    "split it",
                    "type": "too_long",
                }
            ]
        )
