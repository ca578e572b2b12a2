"""OrderStatusConsumer through the real ASGI stack (origin validator, URL router, Redis layer)."""

import asyncio
import contextlib
import logging
import threading
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db.backends.utils import CursorWrapper

from paywatch_dev.servers import free_port
from realtime import presence
from realtime.consumers import FORBIDDEN, TOO_MANY_SOCKETS
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
    assert message.items() >= {  # plus the page's state and details
        "type": "payment.status", "order": order.number, "order_status": "processing",
        "payment_status": "success", "version": snapshot["version"] + 1, "source": "webhook",
    }.items()
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


async def test_a_handshake_reads_the_database_once(order, communicator, monkeypatch):
    """Authorization and snapshot are one read: a deploy's 10,000 reconnecting pages cost 10,000 queries, not 20,000."""
    statements: list[str] = []
    original = CursorWrapper.execute

    def counting(self, sql, params=None):
        statements.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", counting)  # class-wide: the consumer's thread counts too
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    assert snapshot["source"] == "snapshot" and snapshot["payment_status"] == "pending"
    assert len([sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]) == 1, statements
    await comm.disconnect()


async def test_a_refused_socket_leaves_the_group_and_gets_no_message(order, communicator):
    """A wrong token is checked after joining (one read); the socket must be out before any change goes out."""
    comm = communicator(order.number, "wrong-token")
    await comm.connect(timeout=WAIT)
    assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": FORBIDDEN}
    await database_sync_to_async(apply_status)(order.number, "settlement")
    assert await comm.receive_nothing(timeout=0.3)
    await comm.wait()


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
    snapshot = await _open(comm)
    await comm.send_to(text_data="not json")
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": snapshot["version"]}
    await comm.disconnect()


# --- abuse: frames the page never sends -----------------------------------------------

def _errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "frame",
    [{"bytes": b"\x00\xff" * 64}, {"text": ""}, {"text": "[" * 100_000},
     {"text": "[" * 2000 + "]" * 2000}, {"text": "[" * 10_000 + "]" * 10_000}],
    ids=["binary", "empty", "open-brackets-100k", "nested-arrays-2k", "nested-arrays-10k"],
)
async def test_binary_empty_and_deeply_nested_frames_are_ignored(order, communicator, caplog, frame):
    """Such a frame neither closes the socket nor logs an ERROR; the next ping is answered."""
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    await comm.send_input({"type": "websocket.receive", **frame})  # as a server delivers it
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": snapshot["version"]}
    await comm.disconnect()
    assert _errors(caplog) == []


# --- the cap on sockets per order -------------------------------------------------------

async def _closed_with(comm) -> int | None:
    await comm.connect(timeout=WAIT)
    message = await comm.receive_output(timeout=WAIT)
    return message.get("code") if message["type"] == "websocket.close" else None


async def test_sockets_beyond_the_cap_are_closed_with_4429(order, communicator, settings):
    """The (cap + 1)th socket gets no snapshot and a 4429; once one leaves, a new one is let in."""
    settings.WEBSOCKET_MAX_PER_ORDER = 3
    open_ = [communicator(order.number, order.access_token) for _ in range(3)]
    for comm in open_:
        await _open(comm)
    extra = communicator(order.number, order.access_token)
    assert await _closed_with(extra) == TOO_MANY_SOCKETS
    await extra.wait()
    await open_.pop().disconnect()
    again = communicator(order.number, order.access_token)
    assert (await _open(again))["source"] == "snapshot"
    for comm in [*open_, again]:
        await comm.disconnect()


async def test_a_stopping_server_uncounts_its_sockets(order, communicator, settings):
    """Daphne cancels every consumer when it stops (a deploy), without disconnect(): the cap's entries must go too.

    Left behind, they held an order's reconnecting pages past half the cap at 4429 for STALE_SECONDS.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = presence.KEY_PREFIX + order_group(order.number)
    sockets = [communicator(order.number, order.access_token) for _ in range(3)]
    for comm in sockets:
        await _open(comm)
    assert client.zcard(key) == 3
    for comm in sockets:  # as daphne's kill_all_applications does: all cancelled at once
        comm.future.cancel()
    for comm in sockets:
        with contextlib.suppress(asyncio.CancelledError):
            await comm.future
    assert client.zcard(key) == 0


async def test_the_cap_counts_sockets_of_other_processes_but_not_stale_ones(order, communicator, settings):
    """Live entries written by other web processes count; entries not seen for STALE_SECONDS do not."""
    settings.WEBSOCKET_MAX_PER_ORDER = 2
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = presence.KEY_PREFIX + order_group(order.number)
    now = time.time()
    client.zadd(key, {"other-process.a": now - presence.STALE_SECONDS - 5, "other-process.b": now - 1})
    first = communicator(order.number, order.access_token)
    await _open(first)  # the stale entry was pruned: one live other + this one = the cap
    client.zadd(key, {"other-process.c": time.time()})
    await first.disconnect()
    second = communicator(order.number, order.access_token)
    assert await _closed_with(second) == TOO_MANY_SOCKETS
    await second.wait()
    client.delete(key)


async def test_a_push_does_not_wait_for_the_database_thread(order, communicator):
    """A broadcast reaches the socket while the process's thread-sensitive thread is busy (a slow read).

    Channels' own dispatch hops to that thread before every message, so one
    slow query held up every push of the process behind it.
    """
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    release, started = threading.Event(), threading.Event()

    def slow_read() -> None:
        started.set()
        release.wait(WAIT * 2)

    busy = asyncio.ensure_future(sync_to_async(slow_read, thread_sensitive=True)())
    try:
        assert await asyncio.to_thread(started.wait, WAIT)
        message = {**snapshot, "type": "payment.status", "version": snapshot["version"] + 1, "source": "webhook"}
        await get_channel_layer().group_send(order_group(order.number), message)
        received = await comm.receive_json_from(timeout=WAIT)
        assert not release.is_set() and received["version"] == snapshot["version"] + 1
    finally:
        release.set()
        await busy
    await comm.disconnect()


async def test_a_ping_keeps_the_socket_counted(order, communicator, settings):
    """Each ping refreshes the socket's last-seen time, so a long-open page is never pruned as stale."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = presence.KEY_PREFIX + order_group(order.number)
    comm = communicator(order.number, order.access_token)
    snapshot = await _open(comm)
    (member, _), = client.zrange(key, 0, -1, withscores=True)
    client.zadd(key, {member: 1.0})  # as if connected long ago
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": snapshot["version"]}
    assert client.zscore(key, member) > time.time() - 60
    await comm.disconnect()
    assert client.zcard(key) == 0


async def test_the_cap_is_not_enforced_when_its_redis_is_unreachable(order, communicator, settings, caplog):
    """The count lives in Redis; when that Redis cannot be reached the socket is let in, not held up."""
    settings.WEBSOCKET_MAX_PER_ORDER = 1
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # the layer keeps the session's Redis
    first, second = (communicator(order.number, order.access_token) for _ in range(2))
    assert (await _open(first))["source"] == "snapshot"
    assert (await _open(second))["source"] == "snapshot"
    await first.disconnect()
    await second.disconnect()
    assert _errors(caplog) == []
