"""/metrics carries gauges read from the database at scrape time: reconcile lag, webhook silence, open payments."""

import math
from datetime import timedelta
from unittest import mock

import pytest
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from checkout.models import EventSource, Order, Payment, PaymentEvent
from checkout.states import OrderStatus, PaymentStatus
from project import state_metrics

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Return {(sample name, sorted labels): value} of one /metrics answer."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def test_nothing_due_is_no_lag_and_no_webhook_ever_is_infinite_silence(client, settings) -> None:
    settings.RECONCILE_INTERVAL_MINUTES = 5
    samples = scrape(client)
    assert samples[("paywatch_reconcile_lag_seconds", ())] == 0
    assert samples[("paywatch_reconcile_interval_seconds", ())] == 300
    assert math.isinf(samples[("paywatch_webhook_silence_seconds", ())])
    assert samples[("paywatch_payments_open", (("status", "pending"),))] == 0
    assert samples[("paywatch_state_up", ())] == 1


def test_the_lag_is_the_age_of_the_oldest_due_check(make_order) -> None:
    now = timezone.now()
    for minutes_ago in (3, 11, -4):  # -4: not due yet
        payment = make_order().payment
        Payment.objects.filter(pk=payment.pk).update(next_check_at=now - timedelta(minutes=minutes_ago))
    assert state_metrics.reconcile_lag_seconds(now=now) == 11 * 60


def test_closed_payments_and_closed_orders_are_not_lag(make_order) -> None:
    now = timezone.now()
    paid, expired_order = make_order().payment, make_order().payment
    Payment.objects.filter(pk=paid.pk).update(status=PaymentStatus.SUCCESS, next_check_at=now - timedelta(hours=1))
    Payment.objects.filter(pk=expired_order.pk).update(next_check_at=now - timedelta(hours=1))
    Order.objects.filter(pk=expired_order.order_id).update(status=OrderStatus.EXPIRED)
    assert state_metrics.reconcile_lag_seconds(now=now) == 0
    assert state_metrics.open_payments_by_status()["pending"] == 0


def test_silence_counts_from_the_newest_validly_signed_notification(make_order) -> None:
    payment = make_order().payment
    now = timezone.now()
    for source, valid, minutes_ago in [(EventSource.WEBHOOK, True, 30), (EventSource.WEBHOOK, True, 20),
                                       (EventSource.WEBHOOK, False, 1), (EventSource.RECONCILE, None, 2)]:
        event = PaymentEvent.objects.create(payment=payment, source=source, signature_valid=valid)
        PaymentEvent.objects.filter(pk=event.pk).update(created_at=now - timedelta(minutes=minutes_ago))
    assert state_metrics.webhook_silence_seconds(now=now) == 20 * 60


def test_open_payments_by_status(client, make_order) -> None:
    challenged = make_order().payment
    make_order(), make_order()
    Payment.objects.filter(pk=challenged.pk).update(status=PaymentStatus.CHALLENGE)
    samples = scrape(client)
    assert samples[("paywatch_payments_open", (("status", "pending"),))] == 2
    assert samples[("paywatch_payments_open", (("status", "challenge"),))] == 1


def test_a_database_error_keeps_the_scrape_and_says_state_down(client) -> None:
    with mock.patch.object(state_metrics, "reconcile_lag_seconds", side_effect=DatabaseError("gone")):
        samples = scrape(client)
    assert samples[("paywatch_state_up", ())] == 0
    assert ("paywatch_reconcile_lag_seconds", ()) not in samples
    assert any(name.startswith("django_http_requests") for name, _ in samples)
