"""``GET /orders/<number>/events?t=<token>``: the websocket's messages as Server-Sent Events.

The waiting page falls back to this stream when websockets cannot connect (a
proxy that blocks the upgrade). It follows the consumer's rules: join the
order's group before reading the snapshot, and send only versions newer than
what this stream (or, after ``Last-Event-ID``, the previous one) already
carried. Every ``WEBSOCKET_HEARTBEAT_SECONDS`` (with jitter, so that streams
opened together do not read together) it re-reads the version and sends the
current state when it is newer: that covers a lost broadcast, and keeps the
stream useful while the channel layer is unreachable.
"""

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from checkout import selectors
from realtime import versions
from realtime.groups import order_group
from reconcile import watched

logger = logging.getLogger("paywatch.realtime")

# What a read returns when there is nothing to send: not newer, or the database failed (the next tick tries again).
_NOTHING_NEW: Any = object()
# Bound on each channel-layer call, so that a hung Redis delays the snapshot
# by at most this much and never holds a closing stream.
LAYER_TIMEOUT = 2.0
# After a failed join, the next try waits this long, doubling up to the cap: each
# try that fails may strand a queue in the pub/sub layer (new_channel registers
# it before subscribing), so a long outage must not cost one per tick.
REJOIN_BASE_SECONDS = 5.0
REJOIN_CAP_SECONDS = 300.0
# EventSource's reconnection delay, spread so that a restart's reconnects do not arrive together.
RETRY_MS = (2000, 6000)


@require_GET
async def order_events(request: HttpRequest, number: str) -> StreamingHttpResponse:
    """Stream the order's status: 404 for a wrong token, otherwise snapshot, changes and resyncs."""
    token = request.GET.get("t")
    if await database_sync_to_async(selectors.order_for_customer)(number, token) is None:
        raise Http404("No such order.")
    response = StreamingHttpResponse(_stream(number, after=_last_event_id(request)), content_type="text/event-stream")
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events in its buffer
    return response


async def _stream(number: str, after: int) -> AsyncIterator[str]:
    """Yield the event stream of an order the view has authorized."""
    layer = get_channel_layer()
    group = order_group(number)
    subscription = _Subscription(layer, group)
    interval = float(settings.WEBSOCKET_HEARTBEAT_SECONDS)
    sent = after
    loop = asyncio.get_running_loop()
    watcher = watched.start(number)  # the watched fast lane, for as long as this stream is open
    try:
        # Also sends the headers at once: EventSource reports the stream open only then.
        yield f"retry: {random.randint(*RETRY_MS)}\n\n"
        await subscription.open()
        current = await _read(selectors.order_snapshot_by_number, number)
        source = "snapshot"
        while True:
            if current is None:
                return  # the order is gone: the reconnect gets its 404
            if current is not _NOTHING_NEW and current["version"] > sent:
                sent = current["version"]
                yield _event({"type": "payment.status", **current, "source": source})
            elif source != "snapshot":
                yield ": keepalive\n\n"
            source = "resync"
            deadline = loop.time() + interval * random.uniform(0.75, 1.25)
            while (message := await subscription.next_message(deadline - loop.time())) is not None:
                version = message.get("version")
                if message.get("type") == "payment.status" and isinstance(version, int) and version > sent:
                    sent = version
                    yield _event(message)
            await subscription.open()  # again, if Redis was unreachable: the read below covers the gap
            current = await _status_newer_than(number, sent)
    finally:
        await watched.stop(watcher)
        await subscription.close()


class _Subscription:
    """This stream's own channel in the order's group; every layer call bounded, none raises."""

    def __init__(self, layer: BaseChannelLayer | None, group: str) -> None:
        self.layer = layer
        self.group = group
        self.channel: str | None = None
        self.joined = False
        self.receiving: asyncio.Future | None = None
        self.failures = 0
        self.retry_at = 0.0

    async def open(self) -> None:
        """Create the channel and join the group, unless done already; after a failure, back off."""
        loop = asyncio.get_running_loop()
        if self.layer is None or self.joined or loop.time() < self.retry_at:
            return
        try:
            if self.channel is None:
                self.channel = await asyncio.wait_for(self.layer.new_channel(), LAYER_TIMEOUT)
            if self.receiving is None:
                # Receive from the start: cancelling a receive is how the pub/sub layer
                # lets go of a channel, so close() can always clean up through it.
                self.receiving = asyncio.ensure_future(self.layer.receive(self.channel))
            await asyncio.wait_for(self.layer.group_add(self.group, self.channel), LAYER_TIMEOUT)
        except Exception as exc:
            self.failures += 1
            self.retry_at = loop.time() + min(REJOIN_CAP_SECONDS, REJOIN_BASE_SECONDS * 2 ** (self.failures - 1))
            logger.warning("Event stream without live updates (channel layer: %s); resyncing only",
                           type(exc).__name__, extra={"group": self.group})
            return
        self.joined, self.failures = True, 0

    async def next_message(self, timeout: float) -> dict[str, Any] | None:
        """Return the next message from the group, or None once ``timeout`` seconds have passed."""
        if self.receiving is None:
            await asyncio.sleep(max(timeout, 0))
            return None
        done, _ = await asyncio.wait({self.receiving}, timeout=max(timeout, 0))
        if not done:
            return None
        receiving, self.receiving = self.receiving, None
        try:
            message = receiving.result()
        except Exception as exc:
            # The core layer's receive fails while Redis is down: wait for the tick, then rejoin.
            logger.warning("Event stream lost its channel (%s)", type(exc).__name__, extra={"group": self.group})
            self.joined = False
            await asyncio.sleep(max(timeout, 0))
            return None
        assert self.layer is not None and self.channel is not None
        self.receiving = asyncio.ensure_future(self.layer.receive(self.channel))
        return message if isinstance(message, dict) else {}

    async def close(self) -> None:
        """Leave the group and let go of the channel; best effort, bounded."""
        if self.layer is None or self.channel is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.layer.group_discard(self.group, self.channel), LAYER_TIMEOUT)
        if self.receiving is not None:
            self.receiving.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.receiving, LAYER_TIMEOUT)


async def _status_newer_than(number: str, sent: int) -> Any:
    """Return the order's status if newer than ``sent``, else ``_NOTHING_NEW``; None when the order is gone.

    One indexed read of the version, as the websocket's heartbeat does; the
    whole status only when there is something to send.
    """
    try:
        version = await versions.current_version(number)
    except Exception:  # the database failed: the next tick asks again
        logger.warning("Event stream could not read the version", exc_info=True)
        return _NOTHING_NEW
    if version is not None and version <= sent:
        return _NOTHING_NEW
    return None if version is None else await _read(selectors.order_snapshot_by_number, number)


async def _read(selector: Callable[[str], Any], number: str) -> Any:
    """Run a selector off the event loop; ``_NOTHING_NEW`` when the database fails."""
    try:
        # Any pooled thread will do (with a connection closed after each read, as
        # everywhere): queueing on the request's single thread would gain nothing.
        return await database_sync_to_async(selector, thread_sensitive=False)(number)
    except DatabaseError as exc:
        logger.warning("Event stream could not read the order (%s)", type(exc).__name__, extra={"order": number})
        return _NOTHING_NEW


def _event(message: dict[str, Any]) -> str:
    return f"event: payment.status\nid: {message['version']}\ndata: {json.dumps(message, separators=(',', ':'))}\n\n"


def _last_event_id(request: HttpRequest) -> int:
    """Return the version the client already has (EventSource sends it when it reconnects), or 0."""
    value = request.headers.get("Last-Event-ID", "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else 0
