"""Notifications: Midtrans's shape per method, signatures, retries and notify modes."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.simulator.conftest import SERVER_KEY, NotifyReceiver, Sim

pytestmark = pytest.mark.timeout(90)

BASE_FIELDS = ("transaction_time", "transaction_status", "transaction_id", "status_message", "status_code",
               "signature_key", "order_id", "payment_type", "gross_amount")


def leaves(value: Any) -> list[Any]:
    """Return every scalar inside nested dicts/lists."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value]


def assert_midtrans_shape(body: dict[str, Any]) -> None:
    """Check the fields every notification carries, string values and the signature."""
    for name in BASE_FIELDS:
        assert name in body, name
    assert all(isinstance(v, str) for v in leaves(body)), body
    assert re.fullmatch(r"\d+\.\d\d", body["gross_amount"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["transaction_time"])
    raw = body["order_id"] + body["status_code"] + body["gross_amount"] + SERVER_KEY
    assert body["signature_key"] == hashlib.sha512(raw.encode()).hexdigest()


@pytest.mark.parametrize("params, check", [
    ({"payment_type": "bank_transfer", "bank": "bca"},
     lambda b: b["va_numbers"][0]["bank"] == "bca" and b["va_numbers"][0]["va_number"].isdigit()
     and b["payment_amounts"] == [] and b["currency"] == "IDR" and b["fraud_status"] == "accept"),
    ({"payment_type": "permata"},
     lambda b: b["payment_type"] == "bank_transfer" and b["permata_va_number"].isdigit() and "va_numbers" not in b),
    ({"payment_type": "echannel"}, lambda b: b["biller_code"] and b["bill_key"].isdigit()),
    ({"payment_type": "cstore"},
     lambda b: b["store"] == "indomaret" and b["payment_code"]
     and not {"fraud_status", "currency", "merchant_id"} & set(b)),
    ({"payment_type": "qris"}, lambda b: b["payment_type"] == "qris" and b["merchant_id"]),
    ({"payment_type": "gopay"}, lambda b: b["payment_type"] == "gopay" and b["currency"] == "IDR"),
])
def test_pending_notification_shape_per_method(sim: Sim, notify_receiver: NotifyReceiver, order_id: str,
                                               params: dict[str, str], check: Any) -> None:
    """A pending notification has Midtrans's fields for its method, all strings, signed."""
    sim.create(order_id, 12345)
    sim.act(order_id, "pending", **params).raise_for_status()
    (body,) = notify_receiver.wait_for(order_id, 1)
    assert_midtrans_shape(body)
    assert body["transaction_status"] == "pending"
    assert body["status_code"] == "201"
    assert body["gross_amount"] == "12345.00"
    assert check(body), body


def test_bank_transfer_settlement_has_payment_amounts(sim: Sim, notify_receiver: NotifyReceiver,
                                                      order_id: str) -> None:
    """A VA settlement carries settlement_time and payment_amounts."""
    sim.create(order_id, 20000)
    sim.act(order_id, "pending", payment_type="bank_transfer", bank="bri")
    sim.act(order_id, "settle")
    bodies = notify_receiver.wait_for(order_id, 2)
    settled = next(b for b in bodies if b["transaction_status"] == "settlement")
    assert_midtrans_shape(settled)
    assert settled["status_code"] == "200"
    assert settled["settlement_time"]
    assert settled["payment_amounts"][0]["amount"] == "20000.00"


def test_card_capture_accept_shape(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """A settled card is a capture with fraud_status accept and card details."""
    sim.create(order_id)
    sim.act(order_id, "settle", payment_type="credit_card").raise_for_status()
    (body,) = notify_receiver.wait_for(order_id, 1)
    assert_midtrans_shape(body)
    assert (body["transaction_status"], body["fraud_status"], body["status_code"]) == ("capture", "accept", "200")
    for name in ("masked_card", "bank", "eci", "card_type", "approval_code", "channel_response_code",
                 "channel_response_message"):
        assert body[name], name


@pytest.mark.parametrize("setup, action, params, status, code", [
    ([], "challenge", {}, "capture", "201"),
    ([], "deny", {}, "deny", "202"),
    ([("pending", {})], "expire", {}, "expire", "407"),
    ([("pending", {})], "cancel", {}, "cancel", "200"),
    ([("settle", {})], "refund", {}, "refund", "200"),
    ([("settle", {})], "refund", {"amount": "100"}, "partial_refund", "200"),
    ([("pending", {"payment_type": "permata"}), ("settle", {})], "deny", {}, "deny", "202"),
])
def test_status_codes_per_status(sim: Sim, notify_receiver: NotifyReceiver, order_id: str,
                                 setup: list, action: str, params: dict, status: str, code: str) -> None:
    """Each move sends a signed notification with Midtrans's status_code for its status."""
    sim.create(order_id)
    for step, step_params in setup:
        sim.act(order_id, step, notify="drop", **step_params).raise_for_status()
    sim.act(order_id, action, **params).raise_for_status()
    (body,) = notify_receiver.wait_for(order_id, 1)
    assert_midtrans_shape(body)
    assert (body["transaction_status"], body["status_code"]) == (status, code)


def test_retries_until_2xx_and_records_attempts(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """503, 503, then 200 makes three attempts, each recorded."""
    notify_receiver.answer_with(503, 503)
    sim.create(order_id)
    sim.act(order_id, "pending")
    notify_receiver.wait_for(order_id, 3)
    attempts = sim.order(order_id, wait_attempts=3)["notifications"]
    assert [a["http_status"] for a in attempts] == [503, 503, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert attempts[-1]["delivered"] is True
    assert attempts[0]["response_body"] == '{"error": "scripted"}'
    assert attempts[0]["payload"]["order_id"] == order_id
    assert attempts[0]["transaction_status"] == "pending"


def test_500_is_retried_once(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """A 500 answer gets exactly one retry; then delivery gives up."""
    notify_receiver.answer_with(500, 500)
    sim.create(order_id)
    sim.act(order_id, "pending")
    notify_receiver.wait_for(order_id, 2)
    # A later, separate notification proves the first delivery chain is over.
    sim.act(order_id, "settle")
    bodies = notify_receiver.wait_for(order_id, 3)
    assert [b["transaction_status"] for b in bodies] == ["pending", "pending", "settlement"]
    attempts = sim.order(order_id, wait_attempts=3)["notifications"]
    first = [a for a in attempts if a["delivery"] == 1]
    assert [a["http_status"] for a in first] == [500, 500]
    assert first[-1]["next_retry_in"] is None


def test_redirect_is_not_followed_or_retried(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """A 302 answer ends delivery (Midtrans does not retry 301/302/303)."""
    notify_receiver.answer_with(302)
    sim.create(order_id)
    sim.act(order_id, "pending")
    notify_receiver.wait_for(order_id, 1)
    sim.act(order_id, "settle")
    bodies = notify_receiver.wait_for(order_id, 2)
    assert [b["transaction_status"] for b in bodies] == ["pending", "settlement"]
    assert [a["http_status"] for a in sim.order(order_id, wait_attempts=2)["notifications"]] == [302, 200]


def test_drop_sends_nothing(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """notify=drop changes the state without any notification."""
    sim.create(order_id)
    assert sim.act(order_id, "pending", notify="drop").json()["status"] == "pending"
    sim.act(order_id, "settle")
    bodies = notify_receiver.wait_for(order_id, 1)
    assert [b["transaction_status"] for b in bodies] == ["settlement"]
    attempts = sim.order(order_id, wait_attempts=1)["notifications"]
    assert [a["transaction_status"] for a in attempts] == ["settlement"]


def test_duplicate_sends_identical_twice(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """notify=duplicate delivers the same notification twice."""
    sim.create(order_id)
    sim.act(order_id, "settle", notify="duplicate")
    first, second = notify_receiver.wait_for(order_id, 2)
    assert first == second
    assert first["transaction_status"] == "settlement"


def test_reorder_delivers_newer_first(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """notify=reorder delivers the new status, then the stale earlier one."""
    sim.create(order_id)
    sim.act(order_id, "pending", notify="drop")
    sim.act(order_id, "settle", notify="reorder")
    bodies = notify_receiver.wait_for(order_id, 2)
    assert [b["transaction_status"] for b in bodies] == ["settlement", "pending"]


def test_delay_sends_later(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """notify=delay:S still delivers the notification."""
    sim.create(order_id)
    sim.act(order_id, "settle", notify="delay:0.2").raise_for_status()
    (body,) = notify_receiver.wait_for(order_id, 1)
    assert body["transaction_status"] == "settlement"


def test_notifications_off(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """With notifications off nothing is sent; turning them on again sends the next change."""
    sim.create(order_id)
    sim.config(notifications=False)
    sim.act(order_id, "pending")
    sim.config(notifications=True)
    sim.act(order_id, "settle")
    bodies = notify_receiver.wait_for(order_id, 1)
    assert [b["transaction_status"] for b in bodies] == ["settlement"]


def test_snap_expiry_sweeper_expires_pending(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """A pending transaction past its Snap expiry is expired with a notification."""
    sim.create(order_id, expiry={"unit": "second", "duration": 1})
    sim.act(order_id, "pending", notify="drop")
    (body,) = notify_receiver.wait_for(order_id, 1)
    assert (body["transaction_status"], body["status_code"]) == ("expire", "407")
