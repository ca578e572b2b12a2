"""The web process's access log: one JSON line per request or socket, never the query string.

Daphne's own access log writes the full request target, and the customer's
links carry the per-order token in ``?t=``; so daphne runs with
``--access-log /dev/null`` and this ASGI middleware logs instead.
"""

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger("paywatch.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AccessLogMiddleware:
    """Log method, path, status, size and duration of every HTTP request and websocket."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        seen: dict[str, Any] = {"status": None, "bytes": 0}

        async def watching_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                seen["status"] = message["status"]
            elif kind == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            elif kind == "websocket.accept":
                seen["status"] = 101
            elif kind == "websocket.close":
                seen["close_code"] = message.get("code")
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            method = scope.get("method", "WS")
            logger.info(
                "%s %s %s", method, scope["path"], seen["status"],
                extra={"method": method, "path": scope["path"], "client": (scope.get("client") or [None])[0],
                       "duration_ms": round((time.monotonic() - started) * 1000, 1), **seen},
            )
