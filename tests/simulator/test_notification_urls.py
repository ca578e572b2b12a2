"""Per-request notification URLs: ``X-Override-Notification`` (replace) and ``X-Append-Notification`` (add),
on Snap and Core API requests, up to Midtrans's three URLs per header."""

from __future__ import annotations

from collections.abc import Iterator

import midtransclient
import pytest
import requests

from tests.simulator.conftest import NotifyReceiver, Sim

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def other_receiver() -> Iterator[NotifyReceiver]:
    """A second notification receiver, standing for another environment's URL."""
    receiver = NotifyReceiver()
    yield receiver
    receiver.close()


def snap_with(sim: Sim, headers: dict[str, str]) -> midtransclient.Snap:
    snap = sim.snap()
    snap.api_config.custom_headers = headers
    return snap


def test_override_on_snap_delivers_to_the_overriding_url_only(sim: Sim, notify_receiver: NotifyReceiver,
                                                              other_receiver: NotifyReceiver, order_id: str) -> None:
    snap_with(sim, {"X-Override-Notification": other_receiver.url}).create_transaction(
        {"transaction_details": {"order_id": order_id, "gross_amount": 10000}})
    assert sim.order(order_id)["notification_urls"] == [other_receiver.url]
    sim.act(order_id, "settle").raise_for_status()
    [note] = other_receiver.wait_for(order_id, 1)
    assert note["transaction_status"] == "settlement"
    attempts = sim.order(order_id, wait_attempts=1)["notifications"]
    assert [a["requested_url"] for a in attempts] == [other_receiver.url]
    assert notify_receiver.for_order(order_id) == []
    assert other_receiver.url in requests.get(f"{sim.url}/", timeout=10).text  # the dashboard shows where


def test_append_on_a_core_charge_delivers_to_both(sim: Sim, notify_receiver: NotifyReceiver,
                                                  other_receiver: NotifyReceiver, order_id: str) -> None:
    core = sim.core()
    core.api_config.custom_headers = {"X-Append-Notification": other_receiver.url}
    core.charge({"payment_type": "gopay", "transaction_details": {"order_id": order_id, "gross_amount": 5000}})
    assert sim.order(order_id)["notification_urls"] == [notify_receiver.url, other_receiver.url]
    for receiver in (notify_receiver, other_receiver):
        [note] = receiver.wait_for(order_id, 1)
        assert note["transaction_status"] == "pending"


def test_override_wins_over_append_and_takes_at_most_three(sim: Sim, other_receiver: NotifyReceiver,
                                                           order_id: str) -> None:
    urls = [f"{other_receiver.url}/{n}" for n in range(4)]
    snap_with(sim, {"X-Override-Notification": " , ".join(urls),
                    "X-Append-Notification": "https://elsewhere.test/n"}).create_transaction(
        {"transaction_details": {"order_id": order_id, "gross_amount": 10000}})
    assert sim.order(order_id)["notification_urls"] == urls[:3]
    sim.act(order_id, "pending").raise_for_status()
    notes = other_receiver.wait_for(order_id, 3)
    with other_receiver.cond:
        paths = sorted(r["path"] for r in other_receiver.received if (r["json"] or {}).get("order_id") == order_id)
    assert paths == ["/notify/0", "/notify/1", "/notify/2"]
    assert {n["transaction_status"] for n in notes} == {"pending"}


def test_each_url_is_retried_on_its_own(sim: Sim, notify_receiver: NotifyReceiver, other_receiver: NotifyReceiver,
                                        order_id: str) -> None:
    """A URL that fails is retried on Midtrans's schedule; the one that answered 200 gets no second copy."""
    other_receiver.answer_with(503)
    snap_with(sim, {"X-Append-Notification": other_receiver.url}).create_transaction(
        {"transaction_details": {"order_id": order_id, "gross_amount": 10000}})
    sim.act(order_id, "settle").raise_for_status()
    assert len(other_receiver.wait_for(order_id, 2)) == 2
    attempts = sim.order(order_id, wait_attempts=3)["notifications"]
    by_url = {url: [a["http_status"] for a in attempts if a["requested_url"] == url]
              for url in (notify_receiver.url, other_receiver.url)}
    assert by_url == {notify_receiver.url: [200], other_receiver.url: [503, 200]}
