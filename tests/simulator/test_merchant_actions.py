"""The simulator's /approve, /deny, /cancel and /refund as Midtrans answers them, their notifications, refund_key
deduplication, and the buyer fee (``POST /sim/config {"fee": N}``)."""

from __future__ import annotations

import hashlib

import pytest
import requests
from midtransclient.error_midtrans import MidtransAPIError

from tests.simulator.conftest import SERVER_KEY, NotifyReceiver, Sim


def signed(body: dict) -> bool:
    raw = f"{body['order_id']}{body['status_code']}{body['gross_amount']}{SERVER_KEY}"
    return hashlib.sha512(raw.encode()).hexdigest() == body["signature_key"]


@pytest.mark.parametrize(("action", "status", "fraud", "code"), [
    ("approve", "capture", "accept", "200"), ("deny", "deny", "deny", "202"), ("cancel", "cancel", "deny", "200")])
def test_challenge_decisions_answer_and_notify(sim: Sim, notify_receiver: NotifyReceiver, order_id: str,
                                               action: str, status: str, fraud: str, code: str) -> None:
    sim.create(order_id)
    sim.act(order_id, "challenge", notify="drop")
    answer = getattr(sim.core().transactions, action)(order_id)
    assert (answer["status_code"], answer["transaction_status"]) == ("200", status)
    [note] = notify_receiver.wait_for(order_id, 1)
    assert (note["transaction_status"], note["status_code"]) == (status, code) and signed(note)
    if action != "cancel":
        assert note["fraud_status"] == fraud


@pytest.mark.parametrize("action", ["approve", "deny"])
def test_approve_and_deny_of_a_pending_va_are_412(sim: Sim, order_id: str, action: str) -> None:
    sim.create(order_id)
    sim.act(order_id, "pending")
    with pytest.raises(MidtransAPIError) as info:
        getattr(sim.core().transactions, action)(order_id)
    assert info.value.http_status_code == 412
    assert info.value.api_response_dict["status_code"] == "412"


def test_refund_notifications_are_refund_and_partial_refund_with_status_200(
        sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    sim.create(order_id, 10000)
    sim.act(order_id, "settle", notify="drop")
    sim.core().transactions.refund(order_id, {"refund_key": "k1", "amount": 3000})
    sim.core().transactions.refund(order_id, {"refund_key": "k2"})  # the rest
    notes = notify_receiver.wait_for(order_id, 2)
    assert [(n["transaction_status"], n["status_code"]) for n in notes] == [("partial_refund", "200"),
                                                                            ("refund", "200")]
    assert all(signed(n) and n["gross_amount"] == "10000.00" for n in notes)
    assert notes[-1]["refund_amount"] == "10000.00"


def test_the_same_refund_key_twice_refunds_once(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """Midtrans: retry a refund with the same refund_key; it answers that refund and makes no other."""
    sim.create(order_id, 10000)
    sim.act(order_id, "settle", notify="drop")
    first = sim.core().transactions.refund(order_id, {"refund_key": "same", "amount": 4000, "reason": "r"})
    again = sim.core().transactions.refund(order_id, {"refund_key": "same", "amount": 4000, "reason": "r"})
    assert again["refund_chargeback_id"] == first["refund_chargeback_id"]
    assert (again["refund_amount"], again["refund_key"], again["status_code"]) == ("4000.00", "same", "200")
    transaction = sim.order(order_id)
    assert (transaction["refunded_amount"], len(transaction["refunds"]), transaction["status"]) == (
        4000, 1, "partial_refund")
    assert len(notify_receiver.wait_for(order_id, 1)) == 1
    assert [h["notify"] for h in transaction["history"]][-1] == "none (refund_key seen before)"


def test_refund_over_what_remains_is_412_and_changes_nothing(sim: Sim, order_id: str) -> None:
    sim.create(order_id, 10000)
    sim.act(order_id, "settle", notify="drop")
    sim.core().transactions.refund(order_id, {"refund_key": "a", "amount": 8000})
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.refund(order_id, {"refund_key": "b", "amount": 3000})
    assert info.value.http_status_code == 412 and "2000" in info.value.api_response_dict["status_message"]
    assert sim.order(order_id)["refunded_amount"] == 8000


def test_refund_of_a_captured_card_is_412(sim: Sim, order_id: str) -> None:
    """Captured but not settled: Midtrans says cancel, not refund."""
    sim.create(order_id)
    sim.act(order_id, "settle", notify="drop", payment_type="credit_card")
    assert sim.order(order_id)["status"] == "capture"
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.refund(order_id, {"refund_key": "c", "amount": 1000})
    assert info.value.http_status_code == 412


def test_buyer_fee_in_notifications_and_status(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    sim.config(fee=2500)
    sim.create(order_id, 10000)
    sim.act(order_id, "settle")
    [note] = notify_receiver.wait_for(order_id, 1)
    status = sim.core().transactions.status(order_id)
    for body in (note, status):
        assert body["gross_amount"] == "12500.00" and signed(body)
        assert body["metadata"]["extra_info"]["gross_amount_info"] == {
            "original_amount": "10000.00", "customer_imposed_payment_fee": "2500.00"}
    sim.config(fee=0)
    assert "metadata" not in sim.core().transactions.status(order_id)


def test_fee_config_is_validated_and_reset(sim: Sim) -> None:
    assert sim.config(fee=1000)["fee"] == 1000
    assert requests.post(f"{sim.url}/sim/config", json={"fee": -1}, timeout=10).status_code == 400
    requests.post(f"{sim.url}/sim/reset", timeout=10).raise_for_status()
    assert requests.get(f"{sim.url}/sim/config", timeout=10).json()["fee"] == 0
