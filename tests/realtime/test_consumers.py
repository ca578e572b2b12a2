"""OrderStatusConsumer through the real ASGI stack (origin validator, URL router, Redis layer)."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from realtime.consumers import FORBIDDEN
from realtime.groups import order_group
from tests.realtime.conftest import apply_status

WAIT = 5.0


async def _open(communicator):
    connected, _ = await communicator.connect(timeout=WAIT)
    assert connected
    return await communicator.receive_json_from(timeout=WAIT)


@pytest.mark.parametrize("token", ["wrong-token", "", None], ids=["wrong", "empty", "missing"])
async def test_bad_token_is_closed_with_4403(order, communicator, token):
    """A socket without the order's token gets no snapshot and is closed with 4403."""
    comm = communicator(order.number, token)
    await comm.connect(timeout=WAIT)
    closed = await comm.receive_output(timeout=WAIT)
    assert closed == {"type": "websocket.close", "code": FORBIDDEN}
    await comm.wait()


async def test_unknown_order_is_closed_with_4403(order, communicator):
    comm = communicator("INV000000000000-FFFF", order.access_token)
    await comm.connect(timeout=WAIT)
    assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": FORBIDDEN}
    await comm.wait()


@pytest.mark.parametrize("origin", [(b"origin", b"http://evil.example"), None], ids=["foreign", "none"])
async def test_foreign_or_missing_origin_is_refused_at_handshake(order, communicator, origin):
    """AllowedHostsOriginValidator refuses the handshake before the consumer runs."""
    comm = communicator(order.number, order.access_token, origin=origin)
    connected, _ = await comm.connect(timeout=WAIT)
    assert not connected
    await comm.disconnect()


async def test_snapshot_on_connect(order, communicator):
    """The first message is the current state, marked as the snapshot."""
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    assert snapshot["type"] == "payment.status"
    assert snapshot["order"] == order.number
    assert snapshot["payment_status"] == "pending"
    assert snapshot["order_status"] == "pending"
    assert snapshot["version"] == order.payment.version
    assert snapshot["source"] == "snapshot"
    await comm.disconnect()


async def test_change_committed_in_another_thread_reaches_the_socket(order, communicator):
    """A service call in a plain thread (no event loop) broadcasts after commit; the socket gets it."""
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(apply_status(order.number, "settlement")))
    thread.start()
    message = await comm.receive_json_from(timeout=WAIT)
    await asyncio.to_thread(thread.join, WAIT)
    assert message == {
        "type": "payment.status", "order": order.number, "order_status": "processing",
        "payment_status": "success", "version": snapshot["version"] + 1, "source": "webhook",
    }
    assert results == [snapshot["version"] + 1]
    await comm.disconnect()


async def test_versions_not_newer_than_sent_are_not_forwarded(order, communicator):
    """The server drops group messages whose version this socket already carried (or older)."""
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    layer = get_channel_layer()
    base = {"type": "payment.status", "order": order.number, "order_status": "pending",
            "payment_status": "pending", "source": "webhook"}
    group = order_group(order.number)
    await layer.group_send(group, {**base, "version": snapshot["version"]})
    await layer.group_send(group, {**base, "version": snapshot["version"] - 1})
    assert await comm.receive_nothing(timeout=0.5)
    newer = {**base, "payment_status": "success", "order_status": "processing", "version": snapshot["version"] + 2}
    await layer.group_send(group, newer)
    assert await comm.receive_json_from(timeout=WAIT) == newer
    await layer.group_send(group, {**base, "version": snapshot["version"] + 1})  # crossed in flight
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_snapshot_is_read_after_joining_the_group(order, communicator, monkeypatch):
    """A change that commits while the consumer joins is not lost (the subscribe race).

    The change lands inside ``group_add``, after the token check: a consumer
    that read its snapshot before joining would show the old version and miss
    the broadcast, which went out before it was subscribed.
    """
    layer = get_channel_layer()
    original = layer.group_add
    changed: list[int] = []

    async def group_add_with_a_change_in_flight(group, channel):
        changed.append(await database_sync_to_async(apply_status)(order.number, "settlement"))
        await original(group, channel)

    monkeypatch.setattr(layer, "group_add", group_add_with_a_change_in_flight)
    comm = communicator(order.number, order.access_token)
    seen = [await _open(comm)]
    while seen[-1]["version"] < changed[0]:
        seen.append(await comm.receive_json_from(timeout=WAIT))
    assert seen[-1]["payment_status"] == "success"
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_disconnect_leaves_the_group(order, communicator, monkeypatch):
    layer = get_channel_layer()
    left: list[tuple[str, str]] = []
    original = layer.group_discard

    async def record(group, channel):
        left.append((group, channel))
        await original(group, channel)

    monkeypatch.setattr(layer, "group_discard", record)
    comm = communicator(order.number, order.access_token)
    await _open(comm)
    await comm.disconnect()
    assert [group for group, _ in left] == [order_group(order.number)]


async def test_garbage_from_the_client_is_ignored(order, communicator):
    comm = communicator(order.number, order.access_token)
    await _open(comm)
    await comm.send_to(text_data="not json")
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}
    await comm.disconnect()
