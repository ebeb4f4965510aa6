"""Pure ASGI middleware: request body size limit (413) and latency metrics per route template."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect

from gemrec.serve._metrics import Metrics
from gemrec.serve._settings import ServeSettings

__all__ = ["RequestGuard"]

_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})


class RequestGuard:
    """Answer 413 to bodies over ``max_body_bytes``; time every response by route template.

    Pure ASGI (not ``BaseHTTPMiddleware``): the body is counted as it streams in, and nothing is
    buffered or copied on the way.
    """

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
