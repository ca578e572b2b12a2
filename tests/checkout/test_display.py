"""checkout.display: amounts, the view state and the method's details, and the details reaching the page live."""

from decimal import Decimal

import pytest

from checkout import display
from checkout.models import EventSource, Payment
from checkout.observations import observation_from_payload
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from checkout.signals import payment_status_changed


@pytest.mark.parametrize(("value", "shown"), [
    (85000, "Rp 85.000"), ("1250000.00", "Rp 1.250.000"), (0, "Rp 0"), (Decimal("999.99"), "Rp 999"),
    (-5000, "-Rp 5.000"), ("n/a", "n/a"),
])
def test_rupiah_writes_amounts_the_indonesian_way(value, shown) -> None:
    assert display.rupiah(value) == shown


@pytest.mark.parametrize(("payment_status", "order_status", "state"), [
    ("pending", "pending", "pending"), ("challenge", "pending", "challenge"), ("failed", "pending", "failed"),
    ("success", "processing", "paid"), ("partially_refunded", "processing", "paid"),
    ("expired", "expired", "expired"), ("cancelled", "cancelled", "cancelled"), ("failed", "cancelled", "cancelled"),
    ("refunded", "refunded", "refunded"),
])
def test_view_state_is_decided_by_the_order_once_it_has_ended(payment_status, order_status, state) -> None:
    assert display.view_state(payment_status, order_status) == state


@pytest.mark.django_db
@pytest.mark.parametrize(("columns", "expected"), [
    ({}, {"method": "", "bank": "", "va_number": ""}),
    ({"payment_type": "bank_transfer", "bank": "bca", "va_number": "12345678901"},
     {"method": "bank_transfer", "bank": "BCA", "va_number": "12345678901"}),
    ({"payment_type": "echannel", "biller_code": "70012", "bill_key": "990011223344"},
     {"method": "echannel", "bank": "Mandiri", "biller_code": "70012", "bill_key": "990011223344"}),
    ({"payment_type": "cstore", "store": "indomaret", "payment_code": "25261234567890"},
     {"method": "cstore", "store": "Indomaret", "payment_code": "25261234567890", "bank": ""}),
    ({"payment_type": "qris"}, {"method": "qris"}),
    ({"payment_type": "gopay"}, {"method": "gopay"}),
    ({"payment_type": "shopeepay"}, {"method": "other"}),
])
def test_payment_details_name_the_method_and_what_to_pay(make_order, columns, expected) -> None:
    order = make_order()
    Payment.objects.filter(pk=order.payment.pk).update(**columns)
    details = display.payment_details(Payment.objects.get(pk=order.payment.pk))
    assert details.items() >= expected.items()
    assert details["amount"] == "Rp 85.000" and details["expires_at"]


@pytest.fixture
def received():
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    payment_status_changed.connect(receiver, dispatch_uid="test-display-received")
    yield calls
    payment_status_changed.disconnect(dispatch_uid="test-display-received")


def _apply_status_answer(order, **fields: object) -> payment_services.Transition:
    body = {"order_id": order.number, "status_code": "201", "gross_amount": "85000.00", "currency": "IDR",
            "transaction_status": "pending", "transaction_id": "tx-1", **fields}
    event = event_services.payment_event_record(source=EventSource.RECONCILE, payment=order.payment, payload=body)
    return payment_services.payment_apply_observation(
        payment_id=order.payment.pk, observation=observation_from_payload(body), source=EventSource.RECONCILE,
        event_id=event.pk, confirmed=True)


@pytest.mark.django_db(transaction=True)
def test_a_va_chosen_while_pending_is_a_new_version_sent_with_its_details(make_order, received) -> None:
    """The page drops what is not newer, so the VA appearing must carry a version of its own."""
    order = make_order()
    va = {"payment_type": "bank_transfer", "va_numbers": [{"bank": "bni", "va_number": "988001234567"}]}
    first = _apply_status_answer(order, **va)
    assert (first.outcome, first.status_after, first.version) == ("duplicate", "pending", 2)
    assert len(received) == 1
    assert received[0]["version"] == 2 and received[0]["payment_status"] == "pending"
    assert received[0]["details"] | {"expires_at": None} == {
        "method": "bank_transfer", "bank": "BNI", "va_number": "988001234567", "biller_code": "", "bill_key": "",
        "payment_code": "", "store": "", "amount": "Rp 85.000", "expires_at": None}
    again = _apply_status_answer(order, **va)  # the watched check asking again: nothing new, nothing sent
    assert (again.outcome, again.version) == ("duplicate", 2)
    assert len(received) == 1


@pytest.mark.django_db(transaction=True)
def test_a_pending_answer_without_method_details_changes_no_version(make_order, received) -> None:
    order = make_order()
    assert _apply_status_answer(order).version == 1
    assert received == []
