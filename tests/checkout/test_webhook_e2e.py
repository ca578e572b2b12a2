"""The webhook over real HTTP (daphne) with the simulator as Midtrans: replays and hostile bodies."""

import pytest
import requests

from checkout.models import Order, PaymentEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def delivered(stack, number: str, count: int) -> list[dict]:
    """Long-poll the simulator until it has made ``count`` delivery attempts; return them."""
    data = requests.get(f"{stack.sim_url}/sim/orders/{number}", timeout=40,
                        params={"wait_attempts": count, "timeout": 30}).json()
    return data["notifications"]


def payment_status(number: str) -> str:
    return Order.objects.select_related("payment").get(number=number).payment.status


@pytest.fixture
def settled(stack, products):
    """An order paid at the simulator, whose settlement notification was delivered and applied."""
    checkout = stack.checkout()
    stack.sim("settle", checkout.number)
    (attempt,) = delivered(stack, checkout.number, 1)
    assert attempt["http_status"] == 200 and payment_status(checkout.number) == "success"
    checkout.settlement = attempt["payload"]
    return checkout


def test_captured_settlement_replayed_as_refund_leaves_the_payment_paid(stack, settled) -> None:
    replay = {**settled.settlement, "transaction_status": "refund"}  # status_code 200 either way: still signed

    response = requests.post(stack.notify_url, json=replay, timeout=15)

    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert payment_status(settled.number) == "success"
    assert stack.sim_order(settled.number)["status"] == "settlement"
    assert PaymentEvent.objects.filter(order_number=settled.number, transaction_status="refund",
                                       signature_valid=True, outcome="stale").count() == 1


def test_a_real_refund_confirmed_by_the_status_api_is_applied(stack, settled) -> None:
    stack.sim("refund", settled.number)
    attempts = delivered(stack, settled.number, 2)
    assert (attempts[-1]["transaction_status"], attempts[-1]["http_status"]) == ("refund", 200)
    order = Order.objects.select_related("payment").get(number=settled.number)
    assert (order.payment.status, order.status) == ("refunded", "refunded")


def test_a_chunked_10_mb_body_is_413_and_nothing_is_stored(stack, transactional_db) -> None:
    def chunks():
        for _ in range(160):
            yield b"x" * 65536

    response = requests.post(stack.notify_url, data=chunks(), headers={"Content-Type": "application/json"},
                             timeout=60)
    assert response.status_code == 413
    assert not PaymentEvent.objects.exists()


@pytest.mark.parametrize("body", [b"[" * 50000, b'{"order_id": "INV\\u0000", "transaction_status": "x"}',
                                  b'{"order_id": "\x00"}', b"\xff\xfe", b'{"a":' * 10000 + b"}" * 10000],
                         ids=["brackets", "NUL escape", "NUL byte", "invalid utf-8", "nested"])
def test_hostile_bodies_over_http_are_400_and_stored(stack, transactional_db, body) -> None:
    response = requests.post(stack.notify_url, data=body, headers={"Content-Type": "application/json"}, timeout=15)
    assert response.status_code == 400
    event = PaymentEvent.objects.get()
    assert event.raw_size == len(body) and "\x00" not in event.raw_body + event.order_number


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=paywatch", "multipart/form-data",
                                          "application/x-www-form-urlencoded"])
def test_a_body_labelled_as_a_form_upload_is_answered_by_paywatch_and_stored(stack, transactional_db,
                                                                            content_type) -> None:
    """Twisted under daphne used to parse such bodies itself: a broken multipart got its bare 400, nothing kept."""
    body = b"--paywatch\r\nnot a part at all"
    response = requests.post(stack.notify_url, data=body, headers={"Content-Type": content_type}, timeout=15)
    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not valid JSON")
    event = PaymentEvent.objects.get()
    assert event.raw_size == len(body) and event.raw_body == body.decode()
