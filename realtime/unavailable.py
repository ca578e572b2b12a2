"""Close a websocket with 1013 (try again later) when a backing service fails, never an HTTP 500.

Without this, a channel layer that cannot reach Redis raises inside the
consumer (``new_channel`` for the pub/sub layer, ``group_add`` for the core
one) before the handshake is answered, and daphne turns that into an HTTP 500
that the page cannot tell from a bug. A 1013 after accepting tells it to come
back with its backoff.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

logger = logging.getLogger("paywatch.realtime")

TRY_AGAIN_LATER = 1013
# Failures of Redis (the layer, the socket count) or of the database: not the
# client's fault, and likely over soon.
UNAVAILABLE = (RedisError, OSError, TimeoutError, OperationalError, InterfaceError)

Scope = dict[str, Any]
Message = dict[str, Any]


class CloseWhenUnavailable:
    """ASGI middleware for a websocket app: an ``UNAVAILABLE`` error closes the socket with 1013."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        seen: set[str] = set()

        async def tracked_receive() -> Message:
            message = await receive()
            seen.add(message["type"])
            return message

        async def tracked_send(message: Message) -> None:
            seen.add(message["type"])
            await send(message)

        try:
            await self.app(scope, tracked_receive, tracked_send)
        except UNAVAILABLE as exc:
            logger.warning("Websocket closed with 1013: %s", type(exc).__name__, extra={"path": scope.get("path")})
            if "websocket.close" in seen or "websocket.disconnect" in seen:
                return
            if "websocket.accept" not in seen:
                if "websocket.connect" not in seen:
                    await receive()  # the handshake the app never got to read
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
