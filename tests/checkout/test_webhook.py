"""The Midtrans webhook: signed payloads shaped like the real ones, and every bad input."""

import json
from decimal import Decimal

import pytest
from django.conf import settings

from checkout import gateway
from checkout.errors import GatewayUnavailable
from checkout.models import Order, Payment, PaymentEvent
from checkout.observations import Observation
from tests.checkout.samples import notification

URL = "/payments/midtrans/notification"


@pytest.fixture
def order(make_order) -> Order:
    return make_order()


def send(client, body, **headers):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data=raw, content_type="application/json", **headers)


def signed(order: Order, ts: str, **kwargs) -> dict:
    return notification(order.number, ts, server_key=settings.MIDTRANS["SERVER_KEY"], **kwargs)


def state(order: Order) -> tuple[str, str, int]:
    payment = Payment.objects.select_related("order").get(pk=order.payment.pk)
    return payment.status, payment.order.status, payment.version


METHODS = ["bca_va", "bni_va", "bri_va", "permata_va", "mandiri_bill", "gopay", "qris", "indomaret", "alfamart"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("ts", "expected"), [
    ("pending", ("pending", "pending", 1)),
    ("settlement", ("success", "processing", 2)),
    ("expire", ("expired", "expired", 2)),
    ("cancel", ("cancelled", "cancelled", 2)),
    ("deny", ("failed", "pending", 2)),
])
def test_each_method_and_status_maps_right(client, order, method, ts, expected) -> None:
    response = send(client, signed(order, ts, method=method))
    assert response.status_code == 200, response.content
    assert state(order) == expected
    event = PaymentEvent.objects.get(order_number=order.number)
    assert (event.source, event.signature_valid, event.transaction_status) == ("webhook", True, ts)


def test_va_details_are_kept_for_the_waiting_page(client, order) -> None:
    send(client, signed(order, "pending", method="bca_va"))
    payment = Payment.objects.get(pk=order.payment.pk)
    assert (payment.payment_type, payment.bank, payment.va_number) == ("bank_transfer", "bca", "12345678901")


@pytest.mark.parametrize("method", METHODS)
def test_refund_after_settlement(client, order, method) -> None:
    send(client, signed(order, "settlement", method=method))
    assert send(client, signed(order, "refund", method=method)).json()["outcome"] == "applied"
    assert state(order) == ("refunded", "refunded", 3)


@pytest.mark.parametrize(("fraud", "expected"), [("accept", ("success", "processing", 2)),
                                                  ("challenge", ("challenge", "pending", 2))])
def test_card_capture(client, order, fraud, expected) -> None:
    status_code = "200" if fraud == "accept" else "201"
    assert send(client, signed(order, "capture", method="card", fraud_status=fraud,
                               status_code=status_code)).status_code == 200
    assert state(order) == expected


def test_forged_signature_is_403_stored_and_changes_nothing(client, order) -> None:
    body = notification(order.number, "settlement", server_key="SB-Mid-server-WRONG")
    response = send(client, body)
    assert response.status_code == 403 and "signature" in response.json()["error"]
    event = PaymentEvent.objects.get(order_number=order.number)
    assert (event.outcome, event.signature_valid, json.loads(event.raw_body)) == ("invalid_signature", False, body)
    assert state(order) == ("pending", "pending", 1)


def test_tampered_amount_breaks_the_signature(client, order) -> None:
    body = signed(order, "settlement")
    body["gross_amount"] = "85000"  # re-formatted: the raw string is what was signed
    assert send(client, body).status_code == 403
    assert state(order) == ("pending", "pending", 1)


def test_malformed_json_is_400_and_the_raw_body_is_kept(client, db) -> None:
    response = send(client, "{not json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    event = PaymentEvent.objects.get()
    assert (event.raw_body, event.outcome) == ("{not json", "error")


@pytest.mark.parametrize("missing", ["signature_key", "order_id", "gross_amount", "transaction_status", "status_code"])
def test_missing_field_is_400_naming_it(client, order, missing) -> None:
    body = signed(order, "settlement")
    del body[missing]
    response = send(client, body)
    assert response.status_code == 400
    assert missing in response.json()["missing"]
    assert state(order) == ("pending", "pending", 1)
    assert PaymentEvent.objects.count() == 1


def test_unknown_order_is_404_and_recorded(client, db) -> None:
    body = notification("INV209901010000-FFFF", "settlement", server_key=settings.MIDTRANS["SERVER_KEY"])
    response = send(client, body)
    assert response.status_code == 404
    event = PaymentEvent.objects.get()
    assert (event.outcome, event.order_number, event.payment) == ("unknown_order", "INV209901010000-FFFF", None)


def test_amount_mismatch_is_200_recorded_never_paid(client, order) -> None:
    response = send(client, signed(order, "settlement", gross_amount="1000.00"))
    assert response.status_code == 200 and response.json()["outcome"] == "amount_mismatch"
    assert state(order) == ("pending", "pending", 1)


def test_settlement_before_pending_keeps_success(client, order) -> None:
    assert send(client, signed(order, "settlement")).json()["outcome"] == "applied"
    late = send(client, signed(order, "pending"))
    assert (late.status_code, late.json()["outcome"]) == (200, "stale")
    assert state(order) == ("success", "processing", 2)


def test_duplicate_is_200_and_changes_nothing(client, order) -> None:
    body = signed(order, "settlement")
    send(client, body)
    again = send(client, body)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert state(order) == ("success", "processing", 2)
    assert PaymentEvent.objects.filter(order_number=order.number).count() == 2


def _status_answer(order: Order, ts: str) -> Observation:
    return Observation(order_id=order.number, transaction_status=ts, status_code="200",
                       gross_amount=Decimal("85000.00"), currency="IDR", raw={"transaction_status": ts})


def test_reversal_is_confirmed_with_midtrans_then_applied(client, order, monkeypatch) -> None:
    send(client, signed(order, "settlement", method="permata_va"))
    asked: list[str] = []
    monkeypatch.setattr(gateway, "transaction_status", lambda oid: asked.append(oid) or _status_answer(order, "deny"))
    response = send(client, signed(order, "deny", method="permata_va"))
    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    assert asked == [order.number]
    assert state(order) == ("failed", "cancelled", 3)


def test_reversal_not_confirmed_by_midtrans_changes_nothing(client, order, monkeypatch) -> None:
    send(client, signed(order, "settlement", method="permata_va"))
    monkeypatch.setattr(gateway, "transaction_status", lambda oid: _status_answer(order, "settlement"))
    response = send(client, signed(order, "deny", method="permata_va"))
    assert (response.status_code, response.json()["outcome"]) == (200, "duplicate")
    assert state(order) == ("success", "processing", 2)


def test_reversal_when_midtrans_is_down_is_503_and_kept(client, order, monkeypatch) -> None:
    send(client, signed(order, "settlement", method="permata_va"))

    def down(order_id):
        raise GatewayUnavailable("Midtrans did not answer in time")

    monkeypatch.setattr(gateway, "transaction_status", down)
    response = send(client, signed(order, "deny", method="permata_va"))
    assert response.status_code == 503
    event = PaymentEvent.objects.filter(order_number=order.number).order_by("-id").first()
    assert (event.outcome, event.signature_valid) == ("error", True)
    assert json.loads(event.raw_body)["transaction_status"] == "deny"
    assert state(order) == ("success", "processing", 2)


def test_database_busy_is_503_not_500(client, order, monkeypatch) -> None:
    from django.db import OperationalError

    from checkout import services

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "payment_observe", locked)
    response = send(client, signed(order, "settlement"))
    assert response.status_code == 503
    assert PaymentEvent.objects.get(order_number=order.number).outcome == "error"


def test_no_redirect_no_csrf_and_post_only(db) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    body = notification("INV209901010000-AAAA", "settlement", server_key=settings.MIDTRANS["SERVER_KEY"])
    assert send(strict, body).status_code == 404  # reached the view: not 403 CSRF, not 301
    assert strict.get(URL).status_code == 405


def test_oversized_body_is_refused(client, db, settings) -> None:
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    assert send(client, "x" * 2000).status_code == 413


def test_headers_are_stored_without_secrets(client, order) -> None:
    send(client, signed(order, "pending"), HTTP_AUTHORIZATION="Basic c2VjcmV0Og==", HTTP_COOKIE="sessionid=abc",
         HTTP_USER_AGENT="Veritrans")
    headers = {k.lower(): v for k, v in PaymentEvent.objects.get().headers.items()}
    assert headers["user-agent"] == "Veritrans"
    assert "authorization" not in headers and "cookie" not in headers


def test_logs_carry_the_seed_markers_with_fields(client, order, caplog) -> None:
    caplog.set_level("INFO")
    send(client, signed(order, "settlement"), REMOTE_ADDR="103.208.23.6")
    received = next(r for r in caplog.records if r.getMessage() == "MIDTRANS WEBHOOK RECEIVED")
    assert received.ip == "103.208.23.6" and received.payload["order_id"] == order.number
    updated = next(r for r in caplog.records if r.getMessage() == "Auto-updated payment")
    assert (updated.order, updated.to, updated.source) == (order.number, "success", "webhook")
    assert all(settings.MIDTRANS["SERVER_KEY"] not in r.getMessage() + str(vars(r)) for r in caplog.records)


def test_a_bug_while_applying_is_503_with_the_traceback_stored(client, order, monkeypatch) -> None:
    from checkout import services

    def broken(**kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(services, "payment_observe", broken)
    response = send(client, signed(order, "settlement"))
    assert response.status_code == 503 and "stored" in response.json()["error"]
    event = PaymentEvent.objects.get(order_number=order.number)
    assert event.outcome == "error" and "KeyError" in event.detail and event.signature_valid
    assert state(order) == ("pending", "pending", 1)


def test_reversal_that_midtrans_does_not_know_is_503_not_500(client, order, monkeypatch) -> None:
    from checkout.errors import TransactionNotFound

    send(client, signed(order, "settlement", method="permata_va"))

    def unknown(order_id):
        raise TransactionNotFound("Midtrans has no transaction")

    monkeypatch.setattr(gateway, "transaction_status", unknown)
    assert send(client, signed(order, "deny", method="permata_va")).status_code == 503
    assert state(order) == ("success", "processing", 2)
