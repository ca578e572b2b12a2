"""Midtrans answering 200 with something that is not the object asked for: a clear gateway error, never a 500.

Midtrans is faked at the gateway's HTTP session (see conftest.FakeMidtrans);
tests/checkout/test_gateway.py covers the same module against the simulator.
"""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from checkout import gateway
from checkout.errors import GatewayError, GatewayUnavailable
from checkout.models import Order, Payment, PaymentEvent

NOT_OBJECTS = [[], ["token"], "settlement", 5, None, True]
CALLS = {
    "snap_create": lambda: gateway.snap_create({"transaction_details": {"order_id": "INV-X", "gross_amount": 1}}),
    "status": lambda: gateway.transaction_status("INV-X"),
    "expire": lambda: gateway.transaction_expire("INV-X"),
    "cancel": lambda: gateway.transaction_cancel("INV-X"),
}


def status_body(order_id: str = "INV-X", **fields: str) -> dict[str, str]:
    return {"status_code": "200", "transaction_status": "settlement", "order_id": order_id,
            "gross_amount": "85000.00", "transaction_id": "t-1", **fields}


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=repr)
@pytest.mark.parametrize("op", CALLS)
def test_an_answer_that_is_not_an_object_is_unavailable(fake_midtrans, op, body) -> None:
    fake_midtrans.answer(body)
    with pytest.raises(GatewayUnavailable, match="Midtrans answered"):
        CALLS[op]()
    assert len(fake_midtrans.calls) == 1


@pytest.mark.parametrize(("op", "body"), [
    ("snap_create", {}),
    ("snap_create", {"token": "abc"}),
    ("snap_create", {"token": ["abc"], "redirect_url": "https://x"}),
    ("snap_create", {"token": "abc", "redirect_url": ""}),
    ("status", {"status_code": "200"}),
    ("status", {**status_body(), "gross_amount": "lots"}),
    ("status", {**status_body(), "status_code": "two hundred"}),
    ("expire", {"transaction_status": "expire"}),
    ("cancel", {}),
], ids=lambda v: v if isinstance(v, str) else repr(v)[:40])
def test_an_object_without_what_is_needed_is_unavailable(fake_midtrans, op, body) -> None:
    fake_midtrans.answer(body)
    with pytest.raises(GatewayUnavailable):
        CALLS[op]()


def test_usable_answers_still_work(fake_midtrans) -> None:
    fake_midtrans.answer({"token": "abc", "redirect_url": "https://pay/abc"})
    assert CALLS["snap_create"]() == gateway.SnapTransaction("abc", "https://pay/abc")
    fake_midtrans.answer(status_body())
    assert CALLS["status"]().transaction_status == "settlement"
    fake_midtrans.answer({"status_code": "407", "transaction_status": "expire"})
    assert CALLS["expire"]()["transaction_status"] == "expire"


def test_a_status_answer_about_another_order_is_a_gateway_error(fake_midtrans) -> None:
    fake_midtrans.answer(status_body("INV-OTHER", transaction_status="refund"))
    with pytest.raises(GatewayError, match="INV-OTHER"):
        gateway.transaction_status("INV-X")


# --- each path that asks Midtrans ---------------------------------------------------------------

@pytest.mark.parametrize("body", [[], "ok"], ids=repr)
def test_refresh_answers_a_503_json(client, make_order, fake_midtrans, body) -> None:
    order = make_order()
    fake_midtrans.answer(body)
    response = client.post(f"/orders/{order.number}/refresh?t={order.access_token}", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert "payment gateway" in response.json()["error"] and response.json()["payment_status"] == "pending"


@pytest.mark.parametrize("body", [[], "ok", {"token": "abc"}], ids=repr)
def test_checkout_shows_the_gateway_error_page(client, products, fake_midtrans, body) -> None:
    fake_midtrans.answer(body)
    response = client.post("/checkout/", {"product": "kopi-gayo", "quantity": 1, "name": "Budi",
                                          "email": "budi@example.com"})
    assert response.status_code == 502 and b"could not start the payment" in response.content
    order = Order.objects.get()
    assert (order.status, order.payment.snap_token) == ("pending", "")


@pytest.mark.parametrize("body", [[], "settlement"], ids=repr)
def test_check_status_exits_3_with_a_clear_message(make_order, fake_midtrans, body) -> None:
    order = make_order()
    fake_midtrans.answer(body)
    with pytest.raises(CommandError, match="Midtrans is unavailable: Midtrans answered") as raised:
        call_command("payments", "check-status", order.number)
    assert raised.value.returncode == 3
    assert Payment.objects.get(pk=order.payment.pk).status == "pending"


def test_reversal_confirmation_answered_with_a_list_is_503_and_kept(client, make_order, fake_midtrans) -> None:
    from tests.checkout.samples import notification

    order = make_order()
    Payment.objects.filter(pk=order.payment.pk).update(status="success")
    fake_midtrans.answer([])
    body = notification(order.number, "refund", server_key=settings.MIDTRANS["SERVER_KEY"])
    response = client.post("/payments/midtrans/notification", data=body, content_type="application/json")
    assert response.status_code == 503
    assert PaymentEvent.objects.get(order_number=order.number).outcome == "error"
    assert Payment.objects.get(pk=order.payment.pk).status == "success"
