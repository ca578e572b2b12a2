"""Event retention: ``events_prune`` and ``payments prune-events`` remove old events of closed payments only."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from checkout.models import EventSource, Order, Payment, PaymentEvent
from checkout.services import events as event_services
from reconcile import services, tasks
from reconcile.models import NotificationRetry

pytestmark = pytest.mark.django_db
DAYS = 90


@pytest.fixture(autouse=True)
def retention(settings) -> int:
    settings.EVENT_RETENTION_DAYS = DAYS
    return DAYS


def aged(days: float, *, payment: Payment | None = None, order_number: str = "") -> PaymentEvent:
    """Record an event and make it ``days`` old."""
    event = event_services.payment_event_record(source=EventSource.WEBHOOK, payment=payment,
                                                   order_number=order_number, raw_body="{}")
    PaymentEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(days=days))
    return event


def payment_in(make_order, status: str, *, closed_days_ago: float, order_status: str | None = None) -> Payment:
    order = make_order()
    Payment.objects.filter(pk=order.payment.pk).update(
        status=status, updated_at=timezone.now() - timedelta(days=closed_days_ago))
    if order_status:
        Order.objects.filter(pk=order.pk).update(status=order_status)
    return Payment.objects.get(pk=order.payment.pk)


@pytest.fixture
def events(make_order) -> dict[str, list[PaymentEvent]]:
    """Events that must go and events that must stay, by why."""
    gone = {
        "expired long ago": payment_in(make_order, "expired", closed_days_ago=120),
        "refunded long ago": payment_in(make_order, "refunded", closed_days_ago=DAYS + 1),
        "cancelled long ago": payment_in(make_order, "cancelled", closed_days_ago=400),
        "reversed long ago": payment_in(make_order, "failed", closed_days_ago=200, order_status="cancelled"),
    }
    kept = {
        "pending": payment_in(make_order, "pending", closed_days_ago=200),
        "challenge": payment_in(make_order, "challenge", closed_days_ago=200),
        "denied attempt, still payable": payment_in(make_order, "failed", closed_days_ago=200),
        "paid (may be refunded)": payment_in(make_order, "success", closed_days_ago=200),
        "partially refunded": payment_in(make_order, "partially_refunded", closed_days_ago=200),
        "expired recently": payment_in(make_order, "expired", closed_days_ago=DAYS - 1),
    }
    remove = [aged(days, payment=p) for p in gone.values() for days in (DAYS + 30, DAYS + 1)]
    remove += [aged(DAYS + 1, order_number="INV-FORGED"), aged(365, order_number="")]
    keep = [aged(days, payment=p) for p in kept.values() for days in (DAYS + 30, 5)]
    keep += [aged(DAYS - 1, order_number="INV-FORGED-RECENT"), aged(0)]
    keep += [aged(5, payment=gone["expired long ago"])]  # a late notification after closing: still recent
    return {"remove": remove, "keep": keep}


def remaining() -> set[int]:
    return set(PaymentEvent.objects.values_list("pk", flat=True))


def test_prune_removes_old_events_of_closed_payments_and_old_orphans_only(events) -> None:
    NotificationRetry.objects.create(event=events["remove"][0], attempts=5)

    summary = services.events_prune()

    assert summary.removed == len(events["remove"]) and not summary.dry_run
    assert remaining() == {e.pk for e in events["keep"]}
    assert not NotificationRetry.objects.exists()


def test_dry_run_counts_and_removes_nothing(events) -> None:
    before = remaining()
    assert services.events_prune(dry_run=True).removed == len(events["remove"])
    assert remaining() == before


def test_prune_in_small_batches_removes_the_same(events) -> None:
    assert services.events_prune(batch_size=3).removed == len(events["remove"])
    assert remaining() == {e.pk for e in events["keep"]}


def test_retention_days_come_from_the_setting(events, settings) -> None:
    settings.EVENT_RETENTION_DAYS = 1000
    assert services.events_prune().removed == 0


def test_the_command_prints_what_it_would_remove_then_removes_it(events) -> None:
    out = StringIO()
    call_command("payments", "prune-events", "--dry-run", stdout=out)
    assert f"{len(events['remove'])} event(s) would be removed (dry run: nothing changed)" in out.getvalue()
    assert len(remaining()) == len(events["remove"]) + len(events["keep"])
    out = StringIO()
    call_command("payments", "prune-events", stdout=out)
    assert f"{len(events['remove'])} event(s) removed" in out.getvalue()
    assert remaining() == {e.pk for e in events["keep"]}


def test_the_task_prunes(events) -> None:
    assert tasks.prune_events()["removed"] == len(events["remove"])
    assert remaining() == {e.pk for e in events["keep"]}
