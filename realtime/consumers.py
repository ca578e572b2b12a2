"""The waiting page's websocket: authorize, join the order's group, snapshot, forward."""

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from checkout import selectors
from realtime.groups import order_group

FORBIDDEN = 4403


class OrderStatusConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/orders/<number>/?t=<token>``: the snapshot on connect, then one message per change."""

    group: str | None = None

    async def connect(self) -> None:
        number = self.scope["url_route"]["kwargs"]["number"]
        token = _query_token(self.scope.get("query_string", b""))
        snapshot = await database_sync_to_async(_snapshot_for)(number, token)
        if snapshot is None:
            await self.close(code=FORBIDDEN)
            return
        self.group = order_group(number)
        # Join before reading the snapshot we send, so nothing lands in between.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await database_sync_to_async(_snapshot_for)(number, token) or snapshot
        await self.send_json({"type": "payment.status", **snapshot, "source": "snapshot"})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def payment_status(self, event: dict[str, Any]) -> None:
        await self.send_json(event)


def _snapshot_for(number: str, token: str | None) -> dict[str, Any] | None:
    order = selectors.order_for_customer(number, token)
    return selectors.order_snapshot(order) if order else None


def _query_token(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get("t")
    return values[0] if values else None
