"""Reads for the reconcile: what is due, what is overdue, what would change."""

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from checkout import amounts
from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.observations import Observation
from checkout.states import FINAL_ORDER_STATUSES, OPEN_PAYMENT_STATUSES, PaymentStatus, decide, payment_status_for
from reconcile import conf

# Open payments past their expiry that the cleanup ends (a challenged card waits for the merchant).
EXPIRABLE_PAYMENT_STATUSES = frozenset({PaymentStatus.PENDING, PaymentStatus.FAILED})


def payments_open() -> QuerySet[Payment]:
    """Return payments the reconcile still asks Midtrans about, oldest check first."""
    return (
        Payment.objects.select_related("order")
        .filter(status__in=OPEN_PAYMENT_STATUSES)
        .exclude(order__status__in=FINAL_ORDER_STATUSES)
        .order_by("created_at", "pk")
    )


def payments_due(*, now: datetime) -> QuerySet[Payment]:
    """Return open payments whose next check is due (never scheduled counts as due)."""
    return (
        payments_open()
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .order_by("next_check_at", "pk")
    )


def payments_overdue(*, now: datetime) -> QuerySet[Payment]:
    """Return pending payments past their expiry."""
    return payments_open().filter(status__in=EXPIRABLE_PAYMENT_STATUSES, expires_at__lt=now)


def events_to_reapply(*, now: datetime) -> QuerySet[PaymentEvent]:
    """Return verified notifications that failed (or were abandoned) and may be re-applied."""
    abandoned = Q(outcome=EventOutcome.RECEIVED, created_at__lt=now - timedelta(seconds=conf.ABANDONED_AFTER_SECONDS))
    return (
        PaymentEvent.objects.filter(Q(outcome=EventOutcome.ERROR) | abandoned,
                                    source=EventSource.WEBHOOK, signature_valid=True)
        .exclude(retry__attempts__gte=conf.MAX_REAPPLY_ATTEMPTS)
        .order_by("pk")
    )


def payment_would_become(payment: Payment, observation: Observation) -> PaymentStatus | None:
    """Return the status the state machine would give ``payment`` for ``observation``; None if unchanged.

    A read-only preview of ``payment_apply_observation`` (with the status API
    as confirmation): the same table, the same amount check, nothing written.
    """
    if amounts.buyer_fee(observation, payment.amount) is None or (
        observation.currency and observation.currency != payment.currency
    ):
        return None
    target = payment_status_for(observation.transaction_status, observation.fraud_status)
    if target is None or target == payment.status:
        return None
    return target if decide(payment.status, target, payment.order.status).allowed else None
