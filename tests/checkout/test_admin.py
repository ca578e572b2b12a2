"""Admin: pages render with the event timeline, and "Check with Midtrans now" uses the one service."""

import pytest
from django.contrib.auth import get_user_model

from checkout.models import Payment, PaymentEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_order_and_payment_pages_show_the_timeline(admin_client, stack) -> None:
    checkout = stack.checkout()
    stack.sim("settle", checkout.number, notify="send")
    from tests.support.watch import wait_for_ws_status

    wait_for_ws_status(checkout.ws_url, "success")
    payment = Payment.objects.get(order__number=checkout.number)
    page = admin_client.get(f"/admin/checkout/payment/{payment.pk}/change/")
    assert page.status_code == 200
    assert b"settlement" in page.content and b"applied" in page.content
    listing = admin_client.get("/admin/checkout/payment/?status__exact=success&events__source__exact=webhook")
    assert listing.status_code == 200 and checkout.number.encode() in listing.content
    assert admin_client.get("/admin/checkout/paymentevent/?outcome__exact=applied").status_code == 200
    assert admin_client.get(f"/admin/checkout/order/{payment.order_id}/change/").status_code == 200


def test_check_with_midtrans_now_applies_through_the_service(admin_client, stack) -> None:
    checkout = stack.checkout()
    stack.sim("settle", checkout.number, notify="drop")
    payment = Payment.objects.get(order__number=checkout.number)
    response = admin_client.post("/admin/checkout/payment/", {
        "action": "check_with_midtrans", "_selected_action": [payment.pk]}, follow=True)
    assert response.status_code == 200 and b"applied" in response.content
    payment.refresh_from_db()
    assert (payment.status, payment.order.status) == ("success", "processing")
    event = PaymentEvent.objects.filter(payment=payment).latest("id")
    assert (event.source, event.outcome, event.status_before, event.status_after) == (
        "admin", "applied", "pending", "success")


def test_check_with_midtrans_now_reports_an_outage(admin_client, stack) -> None:
    checkout = stack.checkout()
    payment = Payment.objects.get(order__number=checkout.number)
    stack.sim_config(error_rate=1.0, error_mode="503")
    try:
        response = admin_client.post("/admin/checkout/order/", {
            "action": "check_with_midtrans", "_selected_action": [payment.order_id]}, follow=True)
    finally:
        stack.sim_config(error_rate=0.0)
    assert b"Midtrans answered 503" in response.content
    payment.refresh_from_db()
    assert payment.status == "pending"
