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
    # A pending notification names the chosen method: news for the page, so a new version.
    ("pending", ("pending", "pending", 2)),
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


@pytest.fixture
def midtrans_says(monkeypatch, order):
    """Stub the status API: it answers ``transaction_status`` for ``order``; returns the ids asked about."""
    def says(ts: str) -> list[str]:
        asked: list[str] = []
        monkeypatch.setattr(gateway, "transaction_status",
                            lambda order_id: asked.append(order_id) or _status_answer(order, ts))
        return asked

    return says


@pytest.mark.parametrize("method", METHODS)
def test_refund_after_settlement_confirmed_by_midtrans_is_applied(client, order, method, midtrans_says) -> None:
    send(client, signed(order, "settlement", method=method))
    asked = midtrans_says("refund")
    assert send(client, signed(order, "refund", method=method)).json()["outcome"] == "applied"
    assert asked == [order.number]
    assert state(order) == ("refunded", "refunded", 3)


@pytest.mark.parametrize("replayed_as", ["refund", "partial_refund", "chargeback", "partial_chargeback"])
def test_signed_settlement_replayed_as_a_refund_is_not_applied(client, order, midtrans_says, replayed_as) -> None:
    """The signature covers order_id+status_code+gross_amount: only the status API can tell."""
    settlement = signed(order, "settlement")
    send(client, settlement)
    asked = midtrans_says("settlement")
    replay = {**settlement, "transaction_status": replayed_as}  # same status_code 200: the signature holds

    response = send(client, replay)

    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert asked == [order.number]
    assert state(order) == ("success", "processing", 2)
    replayed = PaymentEvent.objects.filter(order_number=order.number, transaction_status=replayed_as).get()
    assert (replayed.signature_valid, replayed.outcome) == (True, "stale")


def test_partially_refunded_to_refunded_is_confirmed_too(client, order, midtrans_says) -> None:
    send(client, signed(order, "settlement"))
    midtrans_says("partial_refund")
    send(client, signed(order, "partial_refund"))
    assert state(order)[0] == "partially_refunded"
    asked = midtrans_says("partial_refund")
    assert send(client, signed(order, "refund")).json()["outcome"] == "duplicate"
    assert asked == [order.number] and state(order)[0] == "partially_refunded"


def test_a_status_answer_about_another_order_is_rejected_not_applied(client, order, make_order,
                                                                     fake_midtrans) -> None:
    other = make_order()
    send(client, signed(order, "settlement"))
    refund = signed(other, "refund")
    fake_midtrans.answer({k: v for k, v in refund.items() if k != "signature_key"})

    response = send(client, signed(order, "refund"))

    assert response.status_code == 503 and other.number in response.json()["error"]
    assert fake_midtrans.calls == [("GET", f"{settings.MIDTRANS['CORE_API_URL']}/v2/{order.number}/status")]
    assert state(order) == ("success", "processing", 2) and state(other) == ("pending", "pending", 1)


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

    from checkout.services import payments as payment_services

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(payment_services, "payment_notification_apply", locked)
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
    body = signed(order, "settlement")
    send(client, body, REMOTE_ADDR="103.208.23.6")
    received = next(r for r in caplog.records if r.getMessage() == "MIDTRANS WEBHOOK RECEIVED")
    assert (received.ip, received.order_id, received.transaction_status) == ("103.208.23.6", order.number,
                                                                             "settlement")
    assert received.size == len(json.dumps(body))
    assert not hasattr(received, "payload") and body["signature_key"] not in str(vars(received))
    updated = next(r for r in caplog.records if r.getMessage() == "Auto-updated payment")
    assert (updated.order, updated.to, updated.source) == (order.number, "success", "webhook")
    assert all(settings.MIDTRANS["SERVER_KEY"] not in r.getMessage() + str(vars(r)) for r in caplog.records)


def test_a_bug_while_applying_is_503_with_the_traceback_stored(client, order, monkeypatch) -> None:
    from checkout.services import payments as payment_services

    def broken(**kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(payment_services, "payment_notification_apply", broken)
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


# --- hostile bodies: never a 500, bounded storage ------------------------------------------------

def hostile(name: str, body: bytes, content_type: str = "application/json", status: int = 400):
    """Return one row of HOSTILE: most are JSON that must get a 400."""
    return pytest.param(body, content_type, status, id=name)


HOSTILE = [
    hostile("empty", b""),
    hostile("null", b"null"),
    hostile("list", b"[]"),
    hostile("number", b"1"),
    hostile("string", b'"settlement"'),
    hostile("huge int", b"9" * 5000),
    hostile("huge int field", b'{"order_id": ' + b"9" * 5000 + b"}"),
    hostile("huge float amount", b'{"order_id": "X", "status_code": "200", "gross_amount": 1e999, '
                                 b'"transaction_status": "settlement", "signature_key": "x"}'),
    hostile("open brackets", b"[" * 50000),
    hostile("nested dicts", b'{"a":' * 10000 + b"1" + b"}" * 10000),
    hostile("nested within the recursion limit", b'{"a":' * 300 + b"1" + b"}" * 300),
    hostile("nested list in a field", b'{"order_id": ' + b"[" * 400 + b"]" * 400 + b"}"),
    hostile("invalid utf-8", b'\xff\xfe{"order_id": "\xc3\x28"}'),
    hostile("raw NUL byte", b'{"order_id": "INV\x00", "transaction_status": "settlement"}'),
    hostile("NUL escape", b'{"order_id": "INV\\u0000X", "transaction_status": "settle\\u0000ment"}'),
    hostile("lone surrogate", b'{"order_id": "\\ud800", "status_code": "200", "gross_amount": "1.00", '
                              b'"transaction_status": "settlement", "signature_key": "x"}'),
    hostile("NUL in a key", b'{"order_id\\u0000": "X"}'),
    hostile("form encoded", b"order_id=X&transaction_status=settlement", "application/x-www-form-urlencoded"),
    hostile("wrong content type", b"{not json", "text/plain"),
    hostile("multipart", b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
            "multipart/form-data; boundary=b"),
    hostile("unsigned object", b'{"order_id": "INV-X", "status_code": "200", "gross_amount": "1.00", '
                               b'"transaction_status": "settlement", "signature_key": "00"}', status=403),
    hostile("10 MB", b"x" * (10 * 1024 * 1024), status=413),
    hostile("10 MB of JSON", b'{"a": "' + b"x" * (10 * 1024 * 1024) + b'"}', status=413),
]


@pytest.mark.parametrize(("body", "content_type", "status"), HOSTILE)
def test_hostile_bodies_get_a_clear_4xx_never_a_500(client, db, body, content_type, status) -> None:
    response = client.post(URL, data=body, content_type=content_type)

    assert response.status_code == status and response.status_code in {400, 403, 404, 413}
    assert "error" in response.json()
    events = list(PaymentEvent.objects.all())
    assert len(events) == (0 if status == 413 else 1)  # anything read is kept, bounded, for forensics
    for event in events:
        assert event.raw_size == len(body) and len(event.raw_body) <= 2048
        assert all("\x00" not in str(getattr(event, f.attname)) for f in PaymentEvent._meta.concrete_fields)


def test_a_body_over_the_limit_is_refused_by_its_content_length_before_it_is_read(rf, db) -> None:
    from checkout.webhook import midtrans_notification

    request = rf.post(URL, data=b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = str(10 * 1024 * 1024)

    def never_read(*args, **kwargs):
        raise AssertionError("the body was read")

    request.read = never_read
    assert midtrans_notification(request).status_code == 413


def test_nul_in_a_signed_notification_is_stored_cleaned_and_answered_normally(client, order) -> None:
    body = signed(order, "pending", payment_type="bank\x00transfer", store="indo\x00maret")
    response = send(client, body)
    assert response.status_code == 200
    payment = Payment.objects.get(pk=order.payment.pk)
    assert "\x00" not in payment.payment_type and payment.payment_type.startswith("bank")
    event = PaymentEvent.objects.get(order_number=order.number)
    assert json.loads(event.raw_body)["payment_type"] == "bank\x00transfer"  # the JSON escape is kept as text


def test_nul_in_a_signed_order_id_is_a_404_stored_without_nul(client, db) -> None:
    body = notification("INV\x00209901010000", "settlement", server_key=settings.MIDTRANS["SERVER_KEY"])
    response = send(client, body)
    assert response.status_code == 404
    event = PaymentEvent.objects.get()
    assert event.outcome == "unknown_order" and "\x00" not in event.order_number


PADDING = "A" * 20_000


@pytest.mark.parametrize(("make", "status", "outcome"), [
    (lambda order: notification(order.number, "settlement", server_key="SB-Mid-server-WRONG", note=PADDING),
     403, "invalid_signature"),
    (lambda order: notification("INV209901010000-FFFF", "settlement", server_key=settings.MIDTRANS["SERVER_KEY"],
                                note=PADDING), 404, "unknown_order"),
    (lambda order: "{" + PADDING, 400, "error"),
    (lambda order: {"note": PADDING}, 400, "error"),
], ids=["forged", "unknown order", "not JSON", "fields missing"])
def test_rejected_bodies_are_stored_truncated_with_their_size(client, order, make, status, outcome) -> None:
    body = make(order)
    raw = body if isinstance(body, str) else json.dumps(body)
    assert send(client, raw).status_code == status
    event = PaymentEvent.objects.get()
    assert (event.outcome, event.raw_size, event.raw_truncated) == (outcome, len(raw), True)
    assert len(event.raw_body) <= 2048 and raw.startswith(event.raw_body)


def test_a_verified_notification_is_stored_whole_for_re_applying(client, order) -> None:
    body = signed(order, "settlement", note=PADDING)
    assert send(client, body).status_code == 200
    event = PaymentEvent.objects.get()
    assert (json.loads(event.raw_body), event.raw_truncated, event.raw_size) == (body, False, len(json.dumps(body)))


def test_rejected_posts_never_log_their_body(client, order, caplog) -> None:
    caplog.set_level("DEBUG")
    send(client, notification(order.number, "settlement", server_key="SB-Mid-server-WRONG", note=PADDING))
    send(client, "{" + PADDING)
    assert caplog.records and all(PADDING[:100] not in r.getMessage() + str(vars(r)) for r in caplog.records)


# --- overload: a bounded number in flight, a quick 503 past it ------------------------------------


def test_past_the_in_flight_bound_the_next_notification_is_503_at_once_and_touches_nothing(
    transactional_db, make_order, settings, monkeypatch
) -> None:
    """With the bound at 1 and one notification held in flight, the next gets 503 + Retry-After, unread, unstored."""
    import asyncio
    import threading

    from channels.testing import HttpCommunicator

    from checkout.services import payments as payment_services
    from checkout.services.payments import Transition
    from project.asgi import application

    order = make_order()
    settings.WEBHOOK_MAX_IN_FLIGHT = 1
    settings.ALLOWED_HOSTS = ["unknown"]  # what HttpCommunicator's scope (no Host header) resolves to
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def held(**kwargs):
        calls.append(kwargs["observation"].transaction_status)
        entered.set()
        release.wait(30)
        return Transition(1, "applied", "pending", "success", 2)

    monkeypatch.setattr(payment_services, "payment_notification_apply", held)

    def post(body: dict) -> HttpCommunicator:
        return HttpCommunicator(application, "POST", URL, body=json.dumps(body).encode(),
                                headers=[(b"content-type", b"application/json")])

    async def scenario() -> tuple[dict, dict, dict]:
        first = asyncio.ensure_future(post(signed(order, "settlement")).get_response(timeout=30))
        assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
        try:
            refused = await post(signed(order, "settlement")).get_response(timeout=30)
        finally:
            release.set()
        held_answer = await first
        after = await post(signed(order, "pending")).get_response(timeout=30)  # the slot was given back
        return refused, held_answer, after

    refused, held_answer, after = asyncio.run(scenario())
    assert refused["status"] == 503 and int(dict(refused["headers"])[b"retry-after"]) > 0
    assert "retry" in json.loads(refused["body"])["error"]
    assert (held_answer["status"], after["status"]) == (200, 200)
    assert calls == ["settlement", "pending"]  # the refused one never reached the view
    assert PaymentEvent.objects.count() == 0
