"""Core API ``POST /v2/charge`` per payment type with the unmodified midtransclient, then what follows a charge:
status, expire, cancel, approve/deny, refund, the payment page, the GoPay/QRIS actions, and ``status/b2b``."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests
from midtransclient.error_midtrans import MidtransAPIError

from tests.simulator.conftest import SERVER_KEY, NotifyReceiver, Sim

pytestmark = pytest.mark.timeout(60)

ACCEPT_CARD = "4811111111111114"


def signed(body: dict[str, Any]) -> bool:
    raw = f"{body['order_id']}{body['status_code']}{body['gross_amount']}{SERVER_KEY}"
    return hashlib.sha512(raw.encode()).hexdigest() == body["signature_key"]


def charge(sim: Sim, order_id: str, payment_type: str, amount: int = 15000, **extra: Any) -> dict[str, Any]:
    body = {"payment_type": payment_type, "transaction_details": {"order_id": order_id, "gross_amount": amount},
            **extra}
    return sim.core().charge(body)


def card_token(sim: Sim, number: str = ACCEPT_CARD) -> str:
    answer = sim.core().card_token({"card_number": number, "card_exp_month": "12", "card_exp_year": "2099",
                                    "card_cvv": "123", "client_key": "SB-Mid-client-TEST"})
    assert answer["status_code"] == "200"
    return answer["token_id"]


@pytest.mark.parametrize("extra, check", [
    ({"bank_transfer": {"bank": "bca"}}, lambda a: a["va_numbers"][0]["bank"] == "bca"
     and a["va_numbers"][0]["va_number"].isdigit()),
    ({"bank_transfer": {"bank": "bni"}}, lambda a: a["va_numbers"][0]["bank"] == "bni"),
    ({"bank_transfer": {"bank": "bri"}}, lambda a: a["va_numbers"][0]["bank"] == "bri"),
    ({"bank_transfer": {"bank": "permata"}}, lambda a: a["permata_va_number"].isdigit() and "va_numbers" not in a
     and a["status_message"] == "Success, PERMATA VA transaction is successful"),
])
def test_bank_transfer_charge_answers_pending_with_its_va(sim: Sim, notify_receiver: NotifyReceiver, order_id: str,
                                                          extra: dict, check: Any) -> None:
    answer = charge(sim, order_id, "bank_transfer", **extra)
    assert (answer["status_code"], answer["transaction_status"], answer["fraud_status"]) == ("201", "pending",
                                                                                            "accept")
    assert (answer["payment_type"], answer["gross_amount"], answer["order_id"]) == ("bank_transfer", "15000.00",
                                                                                    order_id)
    assert answer["transaction_id"] and answer["expiry_time"] and "signature_key" not in answer
    assert check(answer), answer
    status = sim.core().transactions.status(order_id)
    assert (status["transaction_status"], status["transaction_id"]) == ("pending", answer["transaction_id"])
    [note] = notify_receiver.wait_for(order_id, 1)
    assert note["transaction_status"] == "pending" and signed(note)


def test_mandiri_bill_charge_answers_bill_key_and_biller_code(sim: Sim, order_id: str) -> None:
    answer = charge(sim, order_id, "echannel", echannel={"bill_info1": "Payment for:", "bill_info2": "Order"})
    assert (answer["status_code"], answer["payment_type"], answer["transaction_status"]) == ("201", "echannel",
                                                                                            "pending")
    assert answer["bill_key"].isdigit() and answer["biller_code"] == "70012"


def test_indomaret_charge_answers_a_payment_code(sim: Sim, order_id: str) -> None:
    answer = charge(sim, order_id, "cstore", cstore={"store": "indomaret", "message": "Order"})
    assert (answer["status_code"], answer["store"], answer["transaction_status"]) == ("201", "indomaret", "pending")
    assert answer["payment_code"].isdigit()


def test_gopay_charge_actions_are_served_by_the_simulator(sim: Sim, order_id: str) -> None:
    answer = charge(sim, order_id, "gopay")
    assert (answer["status_code"], answer["transaction_status"]) == ("201", "pending")
    actions = {a["name"]: a for a in answer["actions"]}
    assert list(actions) == ["generate-qr-code", "deeplink-redirect", "get-status", "cancel"]
    assert all(a["url"].startswith(sim.url) for a in actions.values())
    qr = requests.get(actions["generate-qr-code"]["url"], timeout=10)
    assert (qr.status_code, qr.headers["Content-Type"], qr.content[:4]) == (200, "image/png", b"\x89PNG")
    page = requests.get(actions["deeplink-redirect"]["url"], timeout=10)
    assert page.status_code == 200 and "Pay now (simulate)" in page.text and "Choose another method" not in page.text
    status = requests.get(actions["get-status"]["url"], auth=(SERVER_KEY, ""), timeout=10).json()
    assert (status["order_id"], status["transaction_status"]) == (order_id, "pending")
    assert actions["cancel"]["method"] == "POST"
    cancelled = requests.post(actions["cancel"]["url"], auth=(SERVER_KEY, ""), timeout=10).json()
    assert cancelled["transaction_status"] == "cancel"


def test_qris_charge_has_a_qr_action_and_qr_string(sim: Sim, order_id: str) -> None:
    """Midtrans's QRIS answer carries one action (generate-qr-code) and the QR's content."""
    answer = charge(sim, order_id, "qris")
    assert (answer["status_code"], answer["payment_type"], answer["transaction_status"]) == ("201", "qris",
                                                                                            "pending")
    assert [a["name"] for a in answer["actions"]] == ["generate-qr-code"]
    assert answer["qr_string"] and answer["acquirer"] == "gopay"
    assert requests.get(answer["actions"][0]["url"], timeout=10).headers["Content-Type"] == "image/png"


def test_card_charge_with_a_token_is_captured(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    answer = charge(sim, order_id, "credit_card", credit_card={"token_id": card_token(sim)})
    assert (answer["status_code"], answer["transaction_status"], answer["fraud_status"]) == ("200", "capture",
                                                                                            "accept")
    assert answer["masked_card"] == "481111-1114" and answer["approval_code"]
    [note] = notify_receiver.wait_for(order_id, 1)
    assert (note["transaction_status"], note["status_code"]) == ("capture", "200") and signed(note)
    sim.act(order_id, "settle").raise_for_status()
    assert sim.core().transactions.status(order_id)["transaction_status"] == "settlement"


@pytest.mark.parametrize("number, code, fraud", [("4911111111111113", "202", "accept"),
                                                 ("4611111111111116", "202", "deny")])
def test_denied_cards(sim: Sim, order_id: str, number: str, code: str, fraud: str) -> None:
    """Midtrans's sandbox cards: denied by the bank (4911...) or by fraud detection (4611...)."""
    answer = charge(sim, order_id, "credit_card", credit_card={"token_id": card_token(sim, number)})
    assert (answer["status_code"], answer["transaction_status"], answer["fraud_status"]) == (code, "deny", fraud)


@pytest.mark.parametrize("decision, status, fraud", [("approve", "capture", "accept"), ("deny", "deny", "deny")])
def test_challenged_card_is_approved_or_denied(sim: Sim, order_id: str, decision: str, status: str,
                                               fraud: str) -> None:
    answer = charge(sim, order_id, "credit_card", credit_card={"token_id": card_token(sim, "4511111111111117")})
    assert (answer["status_code"], answer["transaction_status"], answer["fraud_status"]) == ("201", "capture",
                                                                                            "challenge")
    result = getattr(sim.core().transactions, decision)(order_id)
    assert (result["status_code"], result["transaction_status"], result["fraud_status"]) == ("200", status, fraud)
    assert sim.core().transactions.status(order_id)["transaction_status"] == status


def test_card_with_3ds_is_pending_until_the_page(sim: Sim, order_id: str) -> None:
    answer = charge(sim, order_id, "credit_card", credit_card={"token_id": card_token(sim), "authentication": True})
    assert (answer["status_code"], answer["transaction_status"]) == ("201", "pending")
    page = requests.get(answer["redirect_url"], timeout=10)
    assert "3-D Secure" in page.text
    requests.post(f"{answer['redirect_url']}/card", data={"result": "accept"}, timeout=10).raise_for_status()
    assert sim.core().transactions.status(order_id)["transaction_status"] == "capture"


@pytest.mark.parametrize("body, status, message", [
    ({"payment_type": "bank_transfer", "transaction_details": {"order_id": "C-1", "gross_amount": 1000}}, "400",
     "bank_transfer.bank is required"),
    ({"transaction_details": {"order_id": "C-2", "gross_amount": 1000}}, "400", "payment_type is required"),
    ({"payment_type": "bank_transfer", "bank_transfer": {"bank": "bca"},
      "transaction_details": {"order_id": "C-3", "gross_amount": 0}}, "400",
     "transaction_details.gross_amount must be greater than or equal to 1"),
    ({"payment_type": "gopay", "transaction_details": {"order_id": "C-4", "gross_amount": 1000},
      "item_details": [{"price": 300, "quantity": 3}]}, "400",
     "transaction_details.gross_amount is not equal to the sum of item_details"),
    ({"payment_type": "credit_card", "transaction_details": {"order_id": "C-5", "gross_amount": 1000},
      "credit_card": {"token_id": "nonsense"}}, "411", "Token id is missing, invalid, or timed out"),
    ({"payment_type": "gopay", "transaction_details": {"order_id": "C-6", "gross_amount": 1000},
      "custom_expiry": {"expiry_duration": 0, "unit": "minute"}}, "400",
     "custom_expiry.expiry_duration must be greater than 0"),
])
def test_charge_validation_errors(sim: Sim, body: dict, status: str, message: str) -> None:
    with pytest.raises(MidtransAPIError) as info:
        sim.core().charge(body)
    answer = info.value.api_response_dict
    assert (info.value.http_status_code, answer["status_code"]) == (int(status), status)
    assert message in [answer["status_message"], *answer.get("validation_messages", [])], answer


def test_charge_of_a_taken_order_id_is_406(sim: Sim, order_id: str) -> None:
    charge(sim, order_id, "gopay")
    with pytest.raises(MidtransAPIError) as info:
        charge(sim, order_id, "qris")
    assert (info.value.http_status_code, info.value.api_response_dict["status_code"]) == (406, "406")
    assert sim.order(order_id)["payment_type"] == "gopay"


def test_charge_takes_an_unpaid_snap_order_id_but_not_a_tried_one(sim: Sim, order_id: str) -> None:
    sim.create(order_id)
    assert charge(sim, order_id, "qris")["transaction_status"] == "pending"
    with pytest.raises(MidtransAPIError) as info:
        sim.create(order_id)
    assert info.value.http_status_code == 400


def test_charged_va_paid_on_the_page_then_refunded(sim: Sim, notify_receiver: NotifyReceiver,
                                                   order_id: str) -> None:
    charge(sim, order_id, "bank_transfer", 20000, bank_transfer={"bank": "bni"})
    order = sim.order(order_id)
    assert order["channel"] == "core"
    page = requests.get(order["redirect_url"], timeout=10).text
    assert order["va_number"] in page and "Choose another method" not in page
    requests.post(f"{order['redirect_url']}/pay", timeout=10).raise_for_status()
    notes = notify_receiver.wait_for(order_id, 2)
    assert [n["transaction_status"] for n in notes] == ["pending", "settlement"] and all(map(signed, notes))
    refund = sim.core().transactions.refund(order_id, {"refund_key": "r-1", "amount": 5000, "reason": "x"})
    assert (refund["transaction_status"], refund["refund_amount"]) == ("partial_refund", "5000.00")
    assert sim.core().transactions.status(order_id)["transaction_status"] == "partial_refund"


def test_charged_va_expires_and_a_charged_gopay_cancels(sim: Sim, order_id: str) -> None:
    charge(sim, order_id, "bank_transfer", bank_transfer={"bank": "bri"})
    expired = sim.core().transactions.expire(order_id)
    assert (expired["status_code"], expired["transaction_status"]) == ("407", "expire")
    other = f"{order_id}-g"
    charge(sim, other, "gopay")
    assert sim.core().transactions.cancel(other)["transaction_status"] == "cancel"
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.refund(other, {"refund_key": "r", "amount": 100})
    assert info.value.http_status_code == 412


def test_control_api_settles_and_expires_a_charge(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    charge(sim, order_id, "qris")
    assert sim.act(order_id, "settle", notify="drop").json()["status"] == "settlement"
    other = f"{order_id}-e"
    charge(sim, other, "echannel")
    assert sim.act(other, "expire").json()["status"] == "expire"
    assert [n["transaction_status"] for n in notify_receiver.wait_for(other, 2)] == ["pending", "expire"]
    # A Core API charge keeps its method: the control API cannot switch it.
    third = f"{order_id}-p"
    charge(sim, third, "gopay")
    assert sim.act(third, "pending", payment_type="qris").status_code == 412


def test_charge_expires_by_its_custom_expiry(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    charge(sim, order_id, "gopay", custom_expiry={"expiry_duration": 1, "unit": "second"})
    notes = notify_receiver.wait_for(order_id, 2)
    assert [n["transaction_status"] for n in notes] == ["pending", "expire"]


def test_card_token_refuses_a_bad_card_number(sim: Sim) -> None:
    with pytest.raises(MidtransAPIError) as info:
        sim.core().card_token({"card_number": "4811111111111115", "card_exp_month": "12",
                               "card_exp_year": "2099", "card_cvv": "123", "client_key": "x"})
    assert info.value.api_response_dict["validation_messages"] == ["card_number does not match with luhn algorithm"]


# -- a VA paid more than once: GET /v2/<id>/status/b2b ------------------------------------------------
def test_b2b_status_lists_every_payment_into_a_va(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    charge(sim, order_id, "bank_transfer", 10000, bank_transfer={"bank": "bca"})
    sim.act(order_id, "settle").raise_for_status()
    again = sim.act(order_id, "settle", again=1)
    assert again.status_code == 200, again.text
    b2b = sim.core().transactions.statusb2b(order_id)
    assert (b2b["status_code"], b2b["status_message"]) == ("200", "Success, transactions are retrieved")
    bodies = b2b["transactions"]
    assert [b["transaction_status"] for b in bodies] == ["settlement", "settlement"]
    assert len({b["transaction_id"] for b in bodies}) == 2 and all(map(signed, bodies))
    assert all(b["order_id"] == order_id and b["va_numbers"][0]["bank"] == "bca" for b in bodies)
    status = sim.core().transactions.status(order_id)
    assert status["transaction_id"] == bodies[0]["transaction_id"]  # GET status answers the newest
    notes = notify_receiver.wait_for(order_id, 3)
    assert [n["transaction_status"] for n in notes] == ["pending", "settlement", "settlement"]
    # Each payment is notified on its own delivery thread, so the two settlements may arrive in either order.
    assert {n["transaction_id"] for n in notes[1:]} == {b["transaction_id"] for b in bodies}
    assert sim.order(order_id)["transactions"] == [
        {"transaction_id": b["transaction_id"], "transaction_status": "settlement",
         "settlement_time": b["settlement_time"]} for b in bodies]
    # The earlier transaction's id still finds the order; paging works as Midtrans documents it.
    assert sim.core().transactions.statusb2b(bodies[1]["transaction_id"])["transactions"][0]["order_id"] == order_id
    paged = requests.get(f"{sim.url}/v2/{order_id}/status/b2b", params={"page": 1, "per_page": 1},
                         auth=(SERVER_KEY, ""), timeout=10).json()
    assert [b["transaction_id"] for b in paged["transactions"]] == [bodies[1]["transaction_id"]]
    dashboard = requests.get(f"{sim.url}/", timeout=10)
    assert dashboard.status_code == 200 and order_id in dashboard.text


def test_b2b_of_a_single_payment_and_of_an_unknown_order(sim: Sim, order_id: str) -> None:
    sim.create(order_id)
    sim.act(order_id, "pending", payment_type="gopay", notify="drop")
    assert [b["transaction_status"] for b in sim.core().transactions.statusb2b(order_id)["transactions"]] == [
        "pending"]
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.statusb2b("nope-1")
    assert info.value.http_status_code == 404


def test_only_a_paid_va_can_be_paid_again(sim: Sim, order_id: str) -> None:
    charge(sim, order_id, "bank_transfer", bank_transfer={"bank": "bni"})
    assert sim.act(order_id, "settle", again=1).status_code == 412  # not paid yet
    other = f"{order_id}-q"
    charge(sim, other, "qris")
    sim.act(other, "settle", notify="drop")
    assert sim.act(other, "settle", again=1).status_code == 412  # not a VA
