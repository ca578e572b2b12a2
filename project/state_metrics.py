"""Gauges read from the database at scrape time: the same from every process, and never stale.

A gauge kept in process memory would be per process (which worker ran the
last reconcile?) and lost at each restart; the database already knows, in a
few indexed queries. deploy/prometheus-alerts.yml alerts on these.
"""

import logging
import math
from collections.abc import Iterator
from datetime import datetime

from django.db import DatabaseError
from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from checkout.models import EventSource, PaymentEvent
from checkout.states import OPEN_PAYMENT_STATUSES
from reconcile import conf
from reconcile.selectors import payments_due, payments_open

logger = logging.getLogger("paywatch.metrics")


class StateCollector(Collector):
    """Yield the reconcile lag, the webhook silence and the open payments, read now."""

    def collect(self) -> Iterator[Metric]:
        try:
            now = timezone.now()
            lag = reconcile_lag_seconds(now=now)
            silence = webhook_silence_seconds(now=now)
            open_by_status = open_payments_by_status()
        except DatabaseError:
            # The scrape still shows every process's counters; the alert rules see state_up 0.
            logger.warning("Metrics: the database did not answer", exc_info=True)
            yield GaugeMetricFamily("paywatch_state_up", "1 when the database-read gauges below could be read", 0)
            return
        yield GaugeMetricFamily("paywatch_state_up", "1 when the database-read gauges below could be read", 1)
        yield GaugeMetricFamily(
            "paywatch_reconcile_lag_seconds",
            "Age of the oldest open payment whose reconcile check is due (0: none waiting)", lag)
        yield GaugeMetricFamily(
            "paywatch_reconcile_interval_seconds", "The reconcile schedule's interval (RECONCILE_INTERVAL_MINUTES)",
            conf.interval_seconds())
        yield GaugeMetricFamily(
            "paywatch_webhook_silence_seconds",
            "Seconds since the newest notification with a valid signature was received (+Inf: none stored)",
            silence)
        family = GaugeMetricFamily(
            "paywatch_payments_open", "Payments the reconcile still asks Midtrans about, by status", labels=["status"])
        for status, count in sorted(open_by_status.items()):
            family.add_metric([status], count)
        yield family


def reconcile_lag_seconds(*, now: datetime) -> float:
    """Return how long the most overdue reconcile check has been waiting (0 when none is due)."""
    # next_check_at is set when a payment is created; created_at covers a row that has none.
    oldest = payments_due(now=now).aggregate(oldest=Min(Coalesce("next_check_at", "created_at")))["oldest"]
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def webhook_silence_seconds(*, now: datetime) -> float:
    """Return the seconds since the newest validly signed notification; +Inf when there is none."""
    newest = (
        PaymentEvent.objects.filter(source=EventSource.WEBHOOK, signature_valid=True)
        .order_by("-created_at").values_list("created_at", flat=True).first()
    )
    return max(0.0, (now - newest).total_seconds()) if newest is not None else math.inf


def open_payments_by_status() -> dict[str, int]:
    """Return {status: count} of the open payments (every open status present, 0 included)."""
    counts = dict.fromkeys((str(status) for status in OPEN_PAYMENT_STATUSES), 0)
    rows = payments_open().order_by().values_list("status").annotate(count=Count("pk"))
    counts.update({status: count for status, count in rows})
    return counts
