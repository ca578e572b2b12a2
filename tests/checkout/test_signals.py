"""payment_status_changed fires once per real change, only after commit."""

from decimal import Decimal

import pytest
from django.db import transaction

from checkout.models import EventSource, Payment
from checkout.observations import Observation
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from checkout.signals import payment_status_changed


@pytest.fixture
def received():
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append({k: v for k, v in kwargs.items() if k != "signal"})

    payment_status_changed.connect(receiver, dispatch_uid="test-received")
    yield calls
    payment_status_changed.disconnect(dispatch_uid="test-received")


def settle(order, ts: str = "settlement") -> None:
    event = event_services.payment_event_record(source=EventSource.WEBHOOK, payment=order.payment)
    observation = Observation(order_id=order.number, transaction_status=ts, status_code="200",
                              gross_amount=Decimal("85000.00"))
    payment_services.payment_apply_observation(payment_id=order.payment.pk, observation=observation,
                                               source=EventSource.WEBHOOK, event_id=event.pk, confirmed=True)


@pytest.mark.django_db(transaction=True)
def test_fires_after_commit_not_inside_the_transaction(make_order, received) -> None:
    order = make_order()
    with transaction.atomic():
        settle(order)
        assert received == []
    assert len(received) == 1
    assert received[0] | {"event_id": None, "details": None} == {
        "payment_id": order.payment.pk, "order_number": order.number, "order_status": "processing",
        "payment_status": "success", "version": 2, "source": "webhook", "event_id": None, "details": None,
    }
    assert received[0]["details"]["amount"] == "Rp 85.000"  # what the waiting page shows travels with it


@pytest.mark.django_db(transaction=True)
def test_does_not_fire_when_the_transaction_rolls_back(make_order, received) -> None:
    order = make_order()
    with pytest.raises(RuntimeError), transaction.atomic():
        settle(order)
        raise RuntimeError("boom")
    assert received == []
    assert Payment.objects.get(pk=order.payment.pk).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_fires_once_per_change_and_never_for_duplicates(make_order, received) -> None:
    order = make_order()
    settle(order)
    settle(order)
    settle(order, "pending")  # stale: must not fire either
    assert [c["version"] for c in received] == [2]
    settle(order, "refund")
    assert [(c["payment_status"], c["version"]) for c in received] == [("success", 2), ("refunded", 3)]


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_does_not_undo_the_change(make_order) -> None:
    def broken(sender, **kwargs):
        raise ConnectionError("redis down")

    payment_status_changed.connect(broken, dispatch_uid="test-broken")
    try:
        order = make_order()
        settle(order)
    finally:
        payment_status_changed.disconnect(dispatch_uid="test-broken")
    assert Payment.objects.get(pk=order.payment.pk).status == "success"
