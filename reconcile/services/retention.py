"""Event retention: the events of payments closed for EVENT_RETENTION_DAYS are pruned (a daily schedule)."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from checkout.models import PaymentEvent
from checkout.states import FINAL_ORDER_STATUSES, FINAL_PAYMENT_STATUSES

logger = logging.getLogger("paywatch.reconcile")


@dataclass
class PruneSummary:
    """What one retention run removed (or would remove)."""

    removed: int
    retention_days: int
    cutoff: str  # ISO time: events and closings before it are gone
    dry_run: bool = False


def events_prune(*, dry_run: bool = False, now: datetime | None = None, batch_size: int = 1000) -> PruneSummary:
    """Delete the events of payments closed for EVENT_RETENTION_DAYS, and older events that had no payment.

    A closed payment (a final status, or its order ended) loses its whole
    trail at once, never its first half; open and paid payments keep theirs
    (a paid one may still be refunded or charged back). Events with no
    payment are forged, unknown-order or malformed posts. Deleted in batches
    so that no run holds a long lock.
    """
    days = settings.EVENT_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    prunable = _events_prunable(cutoff=cutoff)
    if dry_run:
        return PruneSummary(removed=prunable.count(), retention_days=days, cutoff=cutoff.isoformat(), dry_run=True)
    removed = 0
    while batch := list(prunable.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        _, by_model = PaymentEvent.objects.filter(pk__in=batch).delete()
        removed += by_model.get(PaymentEvent._meta.label, 0)
    logger.info("Pruned payment events", extra={"removed": removed, "retention_days": days,
                                                "cutoff": cutoff.isoformat()})
    return PruneSummary(removed=removed, retention_days=days, cutoff=cutoff.isoformat())


def _events_prunable(*, cutoff: datetime) -> QuerySet[PaymentEvent]:
    closed_long_ago = (
        Q(payment__status__in=FINAL_PAYMENT_STATUSES) | Q(payment__order__status__in=FINAL_ORDER_STATUSES)
    ) & Q(payment__updated_at__lt=cutoff)
    return PaymentEvent.objects.filter(Q(payment__isnull=True) | closed_long_ago, created_at__lt=cutoff)
