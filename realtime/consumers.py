"""The waiting page's websocket: authorize, join the order's group, snapshot, forward."""

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from checkout import selectors
from realtime import presence, versions
from realtime.groups import order_group
from realtime.unavailable import TRY_AGAIN_LATER, UNAVAILABLE
from reconcile import watched

logger = logging.getLogger("paywatch.realtime")

# Close codes are sent after accepting: a refused handshake reaches scripts
# only as 1006, and the page must tell these apart to stop reconnecting.
FORBIDDEN = 4403
TOO_MANY_SOCKETS = 4429
INTERNAL_ERROR = 1011  # a bug answering a ping: the page reconnects with its backoff
# A client's frames are pings of a few dozen bytes; anything much larger is not
# parsed at all (deep nesting costs recursion, size costs CPU).
MAX_FRAME_CHARS = 4096


class OrderStatusConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/orders/<number>/?t=<token>``: the snapshot on connect, then one message per change.

    Only messages newer than what this socket has already carried are sent:
    the snapshot is read after joining the group, so a change can arrive both
    in it and as a message, and broadcasts from different processes may cross.
    An order holds at most ``WEBSOCKET_MAX_PER_ORDER`` sockets (all web
    processes together); one more is closed with 4429. Channel layer failures
    are turned into a 1013 close by ``realtime.unavailable``.
    """

    group: str | None = None
    number: str | None = None
    joined: bool = False
    version: int = 0
    watcher: Any = None  # the watched fast lane's task while this page is open
    beat: "asyncio.Task[None] | None" = None  # the ping being answered

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # A stopping daphne (every deploy) cancels its consumers without
            # disconnect(): uncount the socket, or the order's reconnecting pages
            # find its entry for STALE_SECONDS and the excess is refused with 4429.
            self._stop_beat()
            await watched.stop(self.watcher)
            if self.group is not None:
                await presence.leave_together(self.group, self.channel_name)
            raise

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the message's handler at once, without Channels' hop to close old database connections first.

        Channels makes that hop (``aclose_old_connections``, a ``sync_to_async``
        call on the process's one thread-sensitive thread) before every
        message: each ping, each broadcast. So a push waited behind whatever
        ran on that thread (the version read of a window, a snapshot), a fan-out
        to N sockets queued N hops there, and at 5,000 pinging pages the hops
        were a tenth of daphne's CPU (docs/benchmarks.md). Every database read
        here goes through ``database_sync_to_async``, which closes old
        connections around the read itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        number = self.scope["url_route"]["kwargs"]["number"]
        token = _query_token(self.scope.get("query_string", b""))
        group = order_group(number)
        # Join first, then read: one read both authorizes and snapshots (a deploy's
        # reconnect storm costs one query per socket), and a change committed in
        # between is then in the snapshot or in a message, never lost. Messages
        # wait until connect() returns, and an unauthorized socket has left by then.
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            snapshot = await database_sync_to_async(_snapshot_for)(number, token)
        except BaseException:
            await self._leave_group(group)  # disconnect() will not run
            raise
        if snapshot is None:
            await self._leave_group(group)
            await self._refuse(FORBIDDEN)
            return
        if not await presence.admit(group, self.channel_name):
            logger.warning("Websocket refused: order has too many open sockets", extra={"order": number})
            await self._leave_group(group)
            await self._refuse(TOO_MANY_SOCKETS)
            return
        self.group, self.joined, self.number = group, True, number
        await self.accept()
        await self.payment_status({"type": "payment.status", **snapshot, "source": "snapshot"})
        self.watcher = watched.start(number)

    async def _leave_group(self, group: str) -> None:
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:  # Redis gone: the layer forgets the member on its own expiry
            logger.warning("Websocket left its group uncleanly (%s)", type(exc).__name__)

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        self._stop_beat()
        await watched.stop(self.watcher)
        if self.group is None:
            return
        await presence.leave(self.group, self.channel_name)
        if self.joined:
            await self._leave_group(self.group)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Decode a text frame; ignore binary, empty and oversized frames (the page sends none)."""
        if not text_data or len(text_data) > MAX_FRAME_CHARS:
            return
        content = await self.decode_json(text_data)
        if content is not None:
            await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not (isinstance(content, dict) and content.get("type") == "ping") or self.number is None:
            return
        if self.beat is None or self.beat.done():
            # Answered beside this socket's messages, not before them: a consumer handles one message at
            # a time, and a push waited out the ping's read window. A ping arriving while one is being
            # answered is answered by that pong (any message tells the page the socket is alive).
            self.beat = asyncio.ensure_future(self._answer_ping(_shown_version(content.get("version"))))

    async def _answer_ping(self, shown: int) -> None:
        try:
            await self.heartbeat(shown)
        except UNAVAILABLE as exc:  # as realtime.unavailable does for the consumer's own failures
            logger.warning("Websocket closed with 1013: %s", type(exc).__name__, extra={"order": self.number})
            await self.close(code=TRY_AGAIN_LATER)
        except Exception:
            logger.exception("Answering a ping failed", extra={"order": self.number})
            await self.close(code=INTERNAL_ERROR)

    def _stop_beat(self) -> None:
        if self.beat is not None:
            self.beat.cancel()

    async def heartbeat(self, shown: int) -> None:
        """Answer a ping with the order's version, and the status itself when the page is behind.

        This is what makes a lost broadcast (Redis restarted, a message
        dropped under load) reach an open page by its next ping: the page says
        which version it shows, and one indexed read says whether that is old.
        """
        refreshed = presence.refresh(self.group, self.channel_name)  # the socket is seen: it still counts
        current = await versions.current_version(self.number)
        await refreshed
        if current is None:
            return
        await self.send_json({"type": "pong", "version": current})
        if current > shown:
            snapshot = await database_sync_to_async(selectors.order_snapshot_by_number)(self.number)
            if snapshot is not None:
                self.version = max(self.version, snapshot["version"])
                await self.send_json({"type": "payment.status", **snapshot, "source": "resync"})

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except (ValueError, RecursionError):
            return None  # a client's garbage is ignored, not a reason to crash the socket

    async def payment_status(self, event: dict[str, Any]) -> None:
        """Forward a change (or the snapshot) unless this socket already carried that version.

        Nothing reaches a refused socket (it was in the group while its token was checked).
        """
        version = event.get("version")
        if self.number is None or not isinstance(version, int) or version <= self.version:
            return
        self.version = version
        await self.send_json(event)


def _snapshot_for(number: str, token: str | None) -> dict[str, Any] | None:
    order = selectors.order_for_customer(number, token)
    return selectors.order_snapshot(order) if order else None


def _shown_version(value: Any) -> int:
    """Return the version a ping says the page shows; 0 (behind everything) when absent or odd."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _query_token(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get("t")
    return values[0] if values else None
