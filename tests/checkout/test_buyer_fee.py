"""Buyer fees (Midtrans's fee imposition): paid when the original amount is the order's and the sum adds up; the fee
is recorded and shown in the admin; any other amount is a mismatch, recorded and never paid."""

import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from checkout.amounts import buyer_fee
from checkout.models import EventOutcome, Payment, PaymentEvent
from checkout.observations import observation_from_payload
from tests.checkout.samples import notification

URL = "/payments/midtrans/notification"
ORDER = Decimal("85000.00")


def info(original: object, fee: object) -> dict:
    return {"metadata": {"extra_info": {"gross_amount_info": {"original_amount": original,
                                                              "customer_imposed_payment_fee": fee}}}}


def observed(gross: str, **extra: object) -> object:
    return observation_from_payload({"order_id": "X", "status_code": "200", "gross_amount": gross,
                                     "transaction_status": "settlement", **extra})


@pytest.mark.parametrize(("gross", "extra", "fee"), [
    ("85000.00", {}, Decimal("0")),                                             # no fee: the amount itself
    ("87500.00", info("85000.00", "2500.00"), Decimal("2500.00")),              # adds up
    ("87500.00", info("85000", "2500"), Decimal("2500")),                       # without decimals, still numbers
    ("87500.00", {}, None),                                                     # more, with no explanation
    ("87500.00", info("84000.00", "3500.00"), None),                            # the original is not the order's
    ("87500.00", info("85000.00", "2000.00"), None),                            # gross − fee ≠ original
    ("85000.00", info("85000.00", "0.00"), Decimal("0")),                       # equal amount wins
    ("80000.00", info("85000.00", "-5000.00"), None),                           # a negative "fee"
    ("87500.00", info("85000.00", "NaN"), None),
    ("87500.00", info(None, "2500.00"), None),
    ("87500.00", {"metadata": "x"}, None),
    ("87500.00", {"metadata": {"extra_info": {"gross_amount_info": ["85000.00"]}}}, None),
])
def test_the_fee_rule(gross: str, extra: dict, fee: Decimal | None) -> None:
    assert buyer_fee(observed(gross, **extra), ORDER) == fee


pytestmark_db = pytest.mark.django_db(transaction=True)


def send(client, body: dict):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def signed(order, gross: str, **extra) -> dict:
    return notification(order.number, "settlement", gross_amount=gross, server_key=settings.MIDTRANS["SERVER_KEY"],
                        **extra)


@pytestmark_db
def test_a_notification_with_a_fee_that_adds_up_is_paid_and_the_fee_recorded(client, make_order) -> None:
    order = make_order()
    response = send(client, signed(order, "87500.00", **info("85000.00", "2500.00")))
    assert response.status_code == 200 and response.json()["outcome"] == "applied"
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.buyer_fee) == ("success", Decimal("2500.00"))


@pytestmark_db
@pytest.mark.parametrize("extra", [info("84000.00", "3500.00"), info("85000.00", "2000.00"), {}])
def test_a_fee_that_does_not_add_up_is_a_mismatch_never_paid(client, make_order, extra) -> None:
    order = make_order()
    response = send(client, signed(order, "87500.00", **extra))
    assert response.status_code == 200 and response.json()["outcome"] == "amount_mismatch"
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.buyer_fee, payment.version) == ("pending", 0, 1)
    assert PaymentEvent.objects.get(payment=payment).outcome == EventOutcome.AMOUNT_MISMATCH


@pytest.mark.e2e
@pytestmark_db
def test_simulator_buyer_fee_end_to_end_pays_and_shows_in_the_admin(stack, client) -> None:
    """The simulator imposes a fee: the signed webhook's gross includes it, the page flips, the admin shows it."""
    from tests.support.watch import wait_for_ws_status

    stack.sim_config(fee=2500)
    try:
        checkout = stack.checkout()
        stack.sim("settle", checkout.number, notify="send")
        wait_for_ws_status(checkout.ws_url, "success")
    finally:
        stack.sim_config(fee=0)
    payment = Payment.objects.get(order__number=checkout.number)
    assert (payment.amount, payment.buyer_fee) == (ORDER, Decimal("2500.00"))
    event = PaymentEvent.objects.get(payment=payment, outcome=EventOutcome.APPLIED)
    assert (event.source, json.loads(event.raw_body)["gross_amount"]) == ("webhook", "87500.00")
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    change = client.get(f"/admin/checkout/payment/{payment.pk}/change/").content.decode()
    assert "Buyer fee" in change and "2500" in change
    listing = client.get("/admin/checkout/payment/").content.decode()
    assert "column-buyer_fee" in listing


@pytest.mark.e2e
@pytestmark_db
def test_reconcile_preview_accepts_a_fee_that_adds_up(stack) -> None:
    """check-all's preview uses the same rule (reconcile.selectors.payment_would_become)."""
    from checkout import gateway
    from reconcile.selectors import payment_would_become

    stack.sim_config(fee=2500)
    try:
        checkout = stack.checkout()
        stack.sim("settle", checkout.number, notify="drop")
        observation = gateway.transaction_status(checkout.number)
    finally:
        stack.sim_config(fee=0)
    payment = Payment.objects.select_related("order").get(order__number=checkout.number)
    assert payment_would_become(payment, observation) == "success"
