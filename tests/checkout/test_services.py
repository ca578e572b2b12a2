"""checkout.services: payment details and event columns always fit (no NUL, no overflow), so storing never fails."""

import pytest
from django.db import models

from checkout.models import EventSource, Payment, PaymentEvent
from checkout.observations import observation_from_payload
from checkout.services import events as event_services
from checkout.services import payments as payment_services

REAL_PAYMENT_TYPES = ["bank_transfer", "credit_card", "cstore", "echannel", "gopay", "qris", "shopeepay",
                      "akulaku", "kredivo", "other_qris", "other_va", "bca_klikpay", "cimb_clicks",
                      "danamon_online", "uob_ezpay", "bri_epay"]
HOSTILE = "Z" * 500


def char_columns(model: type[models.Model]) -> list[models.CharField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, models.CharField) and f.max_length]


def assert_everything_fits(instance: models.Model) -> None:
    for field in char_columns(type(instance)):
        value = getattr(instance, field.attname)
        assert len(value) <= field.max_length, f"{field.name}: {len(value)} > {field.max_length}"
        assert "\x00" not in value, field.name


def status_answer(order, ts: str = "pending", **fields: object) -> dict:
    return {"order_id": order.number, "status_code": "201", "gross_amount": "85000.00", "transaction_status": ts,
            "transaction_id": "0c6d8f2a-6fd4-4f15-9b2d-1a8c3e0f4c11", "currency": "IDR", **fields}


def apply(order, body: dict) -> payment_services.Transition:
    event = event_services.payment_event_record(source=EventSource.RECONCILE, payment=order.payment, payload=body,
                                                raw_body=str(body))
    return payment_services.payment_apply_observation(
        payment_id=order.payment.pk, observation=observation_from_payload(body), source=EventSource.RECONCILE,
        event_id=event.pk, confirmed=True)


@pytest.mark.parametrize("payment_type", [*REAL_PAYMENT_TYPES, HOSTILE], ids=[*REAL_PAYMENT_TYPES, "500 chars"])
def test_every_payment_type_is_stored_within_its_column(make_order, payment_type) -> None:
    order = make_order()
    result = apply(order, status_answer(order, payment_type=payment_type))
    payment = Payment.objects.get(pk=order.payment.pk)
    assert result.outcome == "duplicate"
    assert payment.payment_type == payment_type[:Payment._meta.get_field("payment_type").max_length]
    assert_everything_fits(payment)


LONG_DETAILS = {
    "bank_transfer": {"payment_type": "bank_transfer",
                      "va_numbers": [{"bank": "bca" * 200, "va_number": "1" * 500}]},
    "permata": {"payment_type": "bank_transfer", "permata_va_number": "8" * 500},
    "echannel": {"payment_type": "echannel", "bill_key": "9" * 500, "biller_code": "7" * 500},
    "cstore": {"payment_type": "cstore", "payment_code": "A" * 500, "store": "indomaret" * 60},
    "credit_card": {"payment_type": "credit_card", "bank": "b" * 500},
    "nul": {"payment_type": "q\x00ris", "store": "\x00" * 40},
}


@pytest.mark.parametrize("details", LONG_DETAILS.values(), ids=LONG_DETAILS)
def test_long_details_are_cut_to_each_column_and_re_applying_works(make_order, details) -> None:
    order = make_order()
    body = status_answer(order, "pending", transaction_id="T" * 500, fraud_status="accept" * 100, **details)
    apply(order, body)
    again = apply(order, body)  # today's failure repeated on every retry: it must not
    assert again.outcome == "duplicate"
    payment = Payment.objects.get(pk=order.payment.pk)
    assert_everything_fits(payment)
    assert payment.midtrans_transaction_id == "T" * Payment._meta.get_field("midtrans_transaction_id").max_length
    for event in PaymentEvent.objects.filter(payment=payment):
        assert_everything_fits(event)


def test_a_long_transaction_status_is_recorded_within_its_column(make_order) -> None:
    order = make_order()
    result = apply(order, status_answer(order, "settlement" * 50))
    assert result.outcome == "error"  # an unknown status: recorded, changes nothing
    event = PaymentEvent.objects.get(pk=result.event_id)
    assert_everything_fits(event)
    assert event.transaction_status == ("settlement" * 50)[:PaymentEvent._meta.get_field("transaction_status")
                                                            .max_length]


@pytest.mark.parametrize("value", ["INV" + "9" * 500, "INV\x00X", "\ud800"], ids=["long", "nul", "surrogate"])
def test_event_record_fits_any_order_number_and_status(db, value) -> None:
    event = event_services.payment_event_record(source=EventSource.WEBHOOK, raw_body=f"{value}\x00",
                                                payload={"order_id": value, "transaction_status": value,
                                                   "fraud_status": value},
                                                headers={"X-Weird": value}, detail=value)
    event.refresh_from_db()
    assert_everything_fits(event)
    assert "\x00" not in event.raw_body + event.detail + str(event.headers)


def test_untrusted_bodies_keep_their_start_and_size(db) -> None:
    raw = "x" * 100_000
    event = event_services.payment_event_record(source=EventSource.WEBHOOK, raw_body=raw, trusted=False,
                                                headers={f"h{i}": "v" * 10_000 for i in range(200)})
    event.refresh_from_db()
    assert (len(event.raw_body), event.raw_size, event.raw_truncated) == (event_services.UNTRUSTED_BODY_CHARS, 100_000,
                                                                          True)
    assert len(event.headers) <= 50 and max(map(len, event.headers.values())) <= 256

