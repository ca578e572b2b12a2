"""Heartbeat and resync: a ping carries the page's version; a stale one is answered with the status."""

import asyncio
import threading
from contextlib import contextmanager

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError

from checkout import selectors
from checkout.signals import payment_status_changed
from realtime import receivers
from realtime.unavailable import TRY_AGAIN_LATER
from tests.realtime.conftest import apply_status

WAIT = 5.0
BROADCAST_UID = "realtime.broadcast_payment_status"


@contextmanager
def broadcasts_lost():
    """Commit changes whose broadcast never leaves this process (as when Redis restarts)."""
    payment_status_changed.disconnect(dispatch_uid=BROADCAST_UID)
    try:
        yield
    finally:
        payment_status_changed.connect(receivers.broadcast_payment_status, dispatch_uid=BROADCAST_UID)


async def _open(communicator, order):
    comm = communicator(order.number, order.access_token)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    snapshot = await comm.receive_json_from(timeout=WAIT)
    return comm, snapshot


async def test_a_change_whose_broadcast_was_lost_arrives_with_the_next_pong(order, communicator):
    comm, snapshot = await _open(communicator, order)
    with broadcasts_lost():
        version = await database_sync_to_async(apply_status)(order.number, "settlement")
    assert await comm.receive_nothing(timeout=0.5)  # the broadcast really was lost

    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": version}
    resync = await comm.receive_json_from(timeout=WAIT)
    assert resync["type"] == "payment.status" and resync["source"] == "resync"
    assert (resync["payment_status"], resync["order_status"], resync["version"]) == ("success", "processing", version)
    await comm.disconnect()


async def test_an_up_to_date_page_gets_only_the_pong(order, communicator):
    comm, snapshot = await _open(communicator, order)
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": snapshot["version"]}
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


@pytest.mark.parametrize("ping", [{"type": "ping"}, {"type": "ping", "version": "7"}, {"type": "ping", "version": True},
                                  {"type": "ping", "version": -3}], ids=["no-version", "string", "bool", "negative"])
async def test_a_ping_without_a_usable_version_is_treated_as_behind(order, communicator, ping):
    """Old pages (a cached script) send a bare ping: they get the status too, never an error."""
    comm, snapshot = await _open(communicator, order)
    await comm.send_json_to(ping)
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": snapshot["version"]}
    resync = await comm.receive_json_from(timeout=WAIT)
    assert resync["source"] == "resync" and resync["version"] == snapshot["version"]
    await comm.disconnect()


async def test_after_a_resync_the_late_broadcast_of_the_same_version_is_not_sent_twice(order, communicator):
    comm, snapshot = await _open(communicator, order)
    with broadcasts_lost():
        version = await database_sync_to_async(apply_status)(order.number, "settlement")
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    await comm.receive_json_from(timeout=WAIT)  # pong
    await comm.receive_json_from(timeout=WAIT)  # the resync
    await comm.send_input({"type": "payment.status", "order": order.number, "order_status": "processing",
                           "payment_status": "success", "version": version, "source": "webhook"})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_a_push_is_not_held_behind_a_ping_being_answered(order, communicator, monkeypatch):
    """While a ping's version read is pending, a broadcast still reaches the socket; the pong follows.

    A consumer handles one message at a time: answered inline, the ping held
    every push to its socket for the read window and the read.
    """
    comm, snapshot = await _open(communicator, order)
    reading, release = threading.Event(), threading.Event()
    read = selectors.payment_versions_for_orders

    def slow(numbers: list[str]) -> dict[str, int]:
        reading.set()
        release.wait(WAIT * 2)
        return read(numbers)

    monkeypatch.setattr(selectors, "payment_versions_for_orders", slow)
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    try:
        assert await asyncio.to_thread(reading.wait, WAIT)
        version = await database_sync_to_async(apply_status, thread_sensitive=False)(order.number, "settlement")
        pushed = await comm.receive_json_from(timeout=WAIT)
        assert not release.is_set() and (pushed["type"], pushed["version"]) == ("payment.status", version)
    finally:
        release.set()
    assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong", "version": version}
    await comm.disconnect()


async def test_a_ping_whose_read_fails_closes_the_socket_with_1013(order, communicator, monkeypatch):
    """The database is down: the page is told to come back later (its backoff), not left without a pong."""
    comm, snapshot = await _open(communicator, order)

    def down(numbers: list[str]) -> dict[str, int]:
        raise OperationalError("the database is down")

    monkeypatch.setattr(selectors, "payment_versions_for_orders", down)
    await comm.send_json_to({"type": "ping", "version": snapshot["version"]})
    assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": TRY_AGAIN_LATER}
