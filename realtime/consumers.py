"""The waiting page's websocket: authorize, join the order's group, snapshot, forward."""

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from checkout import selectors
from realtime.groups import order_group

# Sent after accepting, so that a browser sees the code (a refused handshake
# reaches scripts only as 1006) and stops reconnecting.
FORBIDDEN = 4403


class OrderStatusConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/orders/<number>/?t=<token>``: the snapshot on connect, then one message per change.

    Only messages newer than what this socket has already carried are sent:
    the snapshot is read after joining the group, so a change can arrive both
    in it and as a message, and broadcasts from different processes may cross.
    """

    group: str | None = None
    version: int = 0

    async def connect(self) -> None:
        number = self.scope["url_route"]["kwargs"]["number"]
        token = _query_token(self.scope.get("query_string", b""))
        if await database_sync_to_async(_snapshot_for)(number, token) is None:
            await self.accept()
            await self.close(code=FORBIDDEN)
            return
        self.group = order_group(number)
        # Join first, then read the snapshot: a change committed in between is
        # then in the snapshot or in a message, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        snapshot = await database_sync_to_async(_snapshot_for)(number, token)
        await self.accept()
        if snapshot is not None:
            await self.payment_status({"type": "payment.status", **snapshot, "source": "snapshot"})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except ValueError:
            return None  # a client's garbage is ignored, not a reason to crash the socket

    async def payment_status(self, event: dict[str, Any]) -> None:
        """Forward a change (or the snapshot) unless this socket already carried that version."""
        version = event.get("version")
        if not isinstance(version, int) or version <= self.version:
            return
        self.version = version
        await self.send_json(event)


def _snapshot_for(number: str, token: str | None) -> dict[str, Any] | None:
    order = selectors.order_for_customer(number, token)
    return selectors.order_snapshot(order) if order else None


def _query_token(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get("t")
    return values[0] if values else None
