"""The unmodified midtransclient against the simulator's Snap and Core API."""

from __future__ import annotations

import hashlib

import pytest
import requests
from midtransclient.error_midtrans import MidtransAPIError

from tests.simulator.conftest import SERVER_KEY, Sim

pytestmark = pytest.mark.timeout(60)


def test_snap_create_returns_token_and_redirect_url(sim: Sim, order_id: str) -> None:
    """A valid Snap request answers a token and a redirect_url on the simulator."""
    result = sim.create(order_id, 25000)
    assert result["token"]
    assert result["redirect_url"] == f"{sim.url}/snap/v2/vtweb/{result['token']}"
    order = sim.order(order_id)
    assert order["gross_amount"] == 25000
    assert order["status"] is None
    assert order["finish_url"] == "http://shop.test/orders/finish"


def test_snap_stores_request_details(sim: Sim, order_id: str) -> None:
    """customer_details, item_details, expiry and enabled_payments are kept."""
    sim.create(order_id, 30000, customer_details={"first_name": "Ani"},
               item_details=[{"id": "a", "price": 10000, "quantity": 3, "name": "Tea"}],
               expiry={"start_time": "2030-01-01 10:00:00 +0700", "unit": "minutes", "duration": 15},
               enabled_payments=["bca_va", "gopay"])
    order = sim.order(order_id)
    assert order["customer_details"] == {"first_name": "Ani"}
    assert order["item_details"][0]["quantity"] == 3
    assert order["expires_at"].startswith("2030-01-01T10:15:00")
    assert order["enabled_payments"] == ["bca_va", "gopay"]


@pytest.mark.parametrize("body, message", [
    ({"transaction_details": {"order_id": "X-1", "gross_amount": 10000},
      "item_details": [{"price": 3000, "quantity": 3}]},
     "transaction_details.gross_amount is not equal to the sum of item_details"),
    ({"transaction_details": {"gross_amount": 10000}}, "transaction_details.order_id is required"),
    ({"transaction_details": {"order_id": "bad id!", "gross_amount": 10000}}, "order_id may only contain"),
    ({"transaction_details": {"order_id": "X" * 51, "gross_amount": 10000}}, "Max 50"),
    ({"transaction_details": {"order_id": "X-2", "gross_amount": 100.5}}, "must be an integer"),
    ({"transaction_details": {"order_id": "X-3", "gross_amount": 0}},
     "transaction_details.gross_amount must be greater than or equal to 0.01"),
    ({"transaction_details": {"order_id": "X-4", "gross_amount": -5000}},
     "transaction_details.gross_amount must be greater than or equal to 0.01"),
    ({}, "transaction_details is required"),
    ("null", "transaction_details is required"),
    ({"transaction_details": {"order_id": "X-5", "gross_amount": 1000},
      "expiry": {"start_time": "tomorrow", "unit": "minute", "duration": 5}}, "expiry.start_time must be formatted"),
    ({"transaction_details": {"order_id": "X-6", "gross_amount": 1000},
      "expiry": {"unit": "fortnight", "duration": 5}}, "expiry.unit must be one of"),
    ({"transaction_details": {"order_id": "X-7", "gross_amount": 1000},
      "expiry": {"unit": "minute", "duration": 0}}, "expiry.duration must be greater than 0"),
])
def test_snap_validation_errors(sim: Sim, body: dict | str, message: str) -> None:
    """Invalid Snap requests raise MidtransAPIError: HTTP 400 with Midtrans's error_messages."""
    with pytest.raises(MidtransAPIError) as info:
        sim.snap().create_transaction(body)
    assert info.value.http_status_code == 400
    assert any(message in m for m in info.value.api_response_dict["error_messages"]), info.value.api_response_dict


def test_snap_without_a_body_names_what_is_required(sim: Sim) -> None:
    """No body at all is not a JSON error: Midtrans answers what is required."""
    response = requests.post(f"{sim.url}/snap/v1/transactions", auth=(sim.server_key, ""), timeout=10)
    assert response.status_code == 400
    assert response.json() == {"error_messages": ["transaction_details is required"]}


def test_snap_twice_with_one_unpaid_order_id(sim: Sim, order_id: str) -> None:
    """Midtrans issues another token for an order_id with no payment yet; the newer request's details apply."""
    first = sim.create(order_id, 10000)
    second = sim.create(order_id, 12000)
    assert first["token"] != second["token"]
    order = sim.order(order_id)
    assert (order["token"], order["gross_amount"], order["status"]) == (second["token"], 12000, None)
    for created in (first, second):  # both links open the order, which now asks for the newer amount
        assert "Rp 12.000" in requests.get(created["redirect_url"], timeout=10).text


def test_snap_reused_after_the_page_expired_without_a_method(sim: Sim, order_id: str) -> None:
    """A Snap page that expired before any method was chosen saw no payment: the order_id is still free."""
    sim.create(order_id)
    sim.act(order_id, "expire").raise_for_status()
    assert sim.create(order_id)["token"]
    assert sim.order(order_id)["page_expired"] is False


@pytest.mark.parametrize("attempt", [{"action": "pending", "payment_type": "gopay"},
                                     {"action": "deny"},  # a declined card is an attempt too
                                     {"action": "settle"}])
def test_snap_order_id_taken_after_a_payment_attempt(sim: Sim, order_id: str, attempt: dict) -> None:
    """Once a payment was attempted, Snap refuses the order_id as Midtrans does (400, "has already been taken")."""
    sim.create(order_id)
    params = dict(attempt)
    sim.act(order_id, params.pop("action"), notify="drop", **params).raise_for_status()
    with pytest.raises(MidtransAPIError) as info:
        sim.create(order_id)
    assert info.value.http_status_code == 400
    assert info.value.api_response_dict == {"error_messages": ["transaction_details.order_id has already been taken"]}


def test_bad_server_key_is_401(sim: Sim, order_id: str) -> None:
    """A wrong server key gets 401 on Snap and Core calls."""
    with pytest.raises(MidtransAPIError) as info:
        sim.snap(server_key="SB-Mid-server-WRONG").create_transaction(
            {"transaction_details": {"order_id": order_id, "gross_amount": 1000}})
    assert info.value.http_status_code == 401
    with pytest.raises(MidtransAPIError) as info:
        sim.core(server_key="SB-Mid-server-WRONG").transactions.status(order_id)
    assert info.value.http_status_code == 401
    assert info.value.api_response_dict["status_code"] == "401"


def test_status_of_unknown_order_is_404(sim: Sim) -> None:
    """GET status of an unknown id raises MidtransAPIError with http_status_code 404."""
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.status("nope-123")
    assert info.value.http_status_code == 404
    assert info.value.api_response_dict["status_message"] == "Transaction doesn't exist."


def test_status_before_method_chosen_is_404(sim: Sim, order_id: str) -> None:
    """A Snap transaction without a chosen payment method does not exist for the status API."""
    sim.create(order_id)
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.status(order_id)
    assert info.value.http_status_code == 404


def test_status_after_pending_and_settle(sim: Sim, order_id: str) -> None:
    """The status body follows the control API's moves, with a valid signature."""
    sim.create(order_id, 15000)
    sim.act(order_id, "pending", payment_type="bank_transfer", bank="bni").raise_for_status()
    status = sim.core().transactions.status(order_id)
    assert status["transaction_status"] == "pending"
    assert status["status_code"] == "201"
    assert status["payment_type"] == "bank_transfer"
    assert status["va_numbers"][0]["bank"] == "bni"
    assert status["gross_amount"] == "15000.00"
    sim.act(order_id, "settle").raise_for_status()
    status = sim.snap().transactions.status(order_id)
    assert status["transaction_status"] == "settlement"
    assert status["status_code"] == "200"
    assert status["settlement_time"]
    expected = hashlib.sha512(f"{order_id}200{status['gross_amount']}{SERVER_KEY}".encode()).hexdigest()
    assert status["signature_key"] == expected


def test_status_with_url_encoded_odd_id(sim: Sim) -> None:
    """Ids with Midtrans's allowed odd characters work, encoded or not."""
    odd = "Ord~1.a_b-c"
    sim.create(odd)
    sim.act("Ord%7E1.a_b-c", "pending").raise_for_status()
    assert sim.core().transactions.status(odd)["order_id"] == odd


def test_cancel_pending(sim: Sim, order_id: str) -> None:
    """Core cancel moves a pending transaction to cancel."""
    sim.create(order_id)
    sim.act(order_id, "pending")
    result = sim.core().transactions.cancel(order_id)
    assert result["transaction_status"] == "cancel"
    assert result["status_code"] == "200"
    assert sim.order(order_id)["status"] == "cancel"


def test_cancel_settled_is_412(sim: Sim, order_id: str) -> None:
    """A settled transaction cannot be cancelled."""
    sim.create(order_id)
    sim.act(order_id, "settle")
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.cancel(order_id)
    assert info.value.http_status_code == 412
    assert info.value.api_response_dict["status_code"] == "412"


def test_expire_pending_answers_407_body(sim: Sim, order_id: str) -> None:
    """Core expire on a pending transaction answers body status_code 407 (not raised)."""
    sim.create(order_id)
    sim.act(order_id, "pending", payment_type="gopay")
    result = sim.core().transactions.expire(order_id)
    assert result["status_code"] == "407"
    assert result["transaction_status"] == "expire"


def test_expire_non_pending_is_412(sim: Sim, order_id: str) -> None:
    """Only pending transactions can be expired."""
    sim.create(order_id)
    sim.act(order_id, "settle")
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.expire(order_id)
    assert info.value.http_status_code == 412


def test_core_action_on_unknown_or_unchosen_is_404(sim: Sim, order_id: str) -> None:
    """Core actions on unknown ids, or before a method, answer 404."""
    sim.create(order_id)
    for call in (lambda: sim.core().transactions.cancel(order_id),
                 lambda: sim.core().transactions.expire("unknown-1")):
        with pytest.raises(MidtransAPIError) as info:
            call()
        assert info.value.http_status_code == 404


def test_refund_unsettled_is_412(sim: Sim, order_id: str) -> None:
    """A pending transaction cannot be refunded."""
    sim.create(order_id)
    sim.act(order_id, "pending")
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.refund(order_id, {"refund_key": "r1", "amount": 10000, "reason": "x"})
    assert info.value.http_status_code == 412


def test_partial_then_full_refund(sim: Sim, order_id: str) -> None:
    """A partial refund gives partial_refund; refunding the rest gives refund."""
    sim.create(order_id, 10000)
    sim.act(order_id, "settle")
    result = sim.core().transactions.refund(order_id, {"refund_key": "r1", "amount": 4000, "reason": "one"})
    assert result["transaction_status"] == "partial_refund"
    assert result["refund_amount"] == "4000.00"
    assert sim.core().transactions.status(order_id)["transaction_status"] == "partial_refund"
    result = sim.core().transactions.refund(order_id, {"refund_key": "r2", "amount": 6000, "reason": "two"})
    assert result["transaction_status"] == "refund"
    assert sim.order(order_id)["refunded_amount"] == 10000


def test_approve_and_deny_challenged_card(sim: Sim, order_id: str) -> None:
    """approve/deny act on a challenged card capture only."""
    sim.create(order_id)
    sim.act(order_id, "challenge")
    status = sim.core().transactions.status(order_id)
    assert (status["transaction_status"], status["fraud_status"], status["status_code"]) == \
        ("capture", "challenge", "201")
    assert sim.core().transactions.approve(order_id)["fraud_status"] == "accept"
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.deny(order_id)
    assert info.value.http_status_code == 412


def test_core_deny_challenged_card(sim: Sim, order_id: str) -> None:
    """Core deny turns a challenged capture into deny."""
    sim.create(order_id)
    sim.act(order_id, "challenge")
    result = sim.core().transactions.deny(order_id)
    assert result["transaction_status"] == "deny"
