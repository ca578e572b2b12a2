"""Heartbeat and resync: a ping carries the page's version; a stale one is answered with the status."""

from contextlib import contextmanager

import pytest
from channels.db import database_sync_to_async

from checkout.signals import payment_status_changed
from realtime import receivers
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
