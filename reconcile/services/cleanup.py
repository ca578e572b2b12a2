"""The expiry cleanup: pending payments past their expiry are confirmed with Midtrans first, then expired.

A payment Midtrans reports paid becomes ``success``, never ``expired``.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from checkout import gateway
from checkout.errors import GatewayError, GatewayUnavailable, TransactionNotFound
from checkout.models import EventSource, Payment
from checkout.observations import Observation
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from reconcile import conf, metrics, selectors
from reconcile.runner import Run, run_pool
from reconcile.services.checks import Counts, payment_schedule_next

logger = logging.getLogger("paywatch.reconcile")


@dataclass
class CleanupRow:
    """What the cleanup did (or would do) with one overdue payment."""

    order_number: str
    payment_status: str
    midtrans_status: str
    action: str  # paid, expired, updated, unavailable, error; dry run: would mark paid, would expire, would update
    payment_status_after: str
    detail: str = ""


@dataclass
class CleanupSummary(Counts):
    """What one cleanup did (or would do: ``dry_run``), a row per overdue payment it reached."""

    rows: list[CleanupRow] = field(default_factory=list)
    paid: int = 0
    updated: int = 0
    dry_run: bool = False


def payments_expire_overdue(
    *, dry_run: bool = False, budget_seconds: float | None = None, concurrency: int | None = None,
    on_row: Callable[[int, int], None] | None = None,
) -> CleanupSummary:
    """End pending payments past their expiry: confirm with Midtrans first, then expire there and here.

    A payment Midtrans reports paid becomes ``success``, never ``expired``;
    when Midtrans cannot answer nothing is expired.
    """
    started = time.monotonic()
    run = Run(budget_seconds=conf.time_budget_seconds() if budget_seconds is None else budget_seconds,
              max_calls_per_second=conf.max_calls_per_second(), concurrency=concurrency or conf.concurrency())
    overdue = list(selectors.payments_overdue(now=timezone.now()))
    work = payment_cleanup_preview if dry_run else payment_cleanup
    summary = CleanupSummary(dry_run=dry_run)
    rows: list[tuple[int, CleanupRow]] = []
    for done in run_pool(overdue, lambda payment: work(payment=payment, run=run), run):
        rows.append((done.index, done.result))
        metrics.cleanups.labels(result=done.result.action).inc()
        if on_row is not None:
            on_row(len(rows), len(overdue))
    summary.rows = [row for _, row in sorted(rows, key=lambda pair: pair[0])]
    for row in summary.rows:
        if row.action in ("paid", "would mark paid"):
            summary.paid += 1
        elif row.action in ("expired", "would expire"):
            summary.expired += 1
        elif row.action == "unavailable":
            summary.unavailable += 1
        elif row.action == "error":
            summary.errors += 1
        else:
            summary.updated += 1
    summary.skipped = len(overdue) - len(summary.rows)
    summary.duration = time.monotonic() - started
    logger.info("Expiry cleanup finished", extra={k: v for k, v in summary.__dict__.items() if k != "rows"})
    return summary


def payment_cleanup(*, payment: Payment, run: Run) -> CleanupRow | None:
    """Confirm one overdue payment with Midtrans, then expire it there and here unless it was paid."""
    number, before = payment.order.number, payment.status

    def row(action: str, detail: str = "") -> CleanupRow:
        fresh = Payment.objects.get(pk=payment.pk)
        return CleanupRow(number, before, fresh.transaction_status or "not found", action, fresh.status, detail)

    if not run.permit():
        return None
    try:
        transition = payment_services.payment_ask_midtrans(payment=payment, source=EventSource.CLEANUP)
        run.circuit.record(unavailable=False)
        if transition.status_after not in selectors.EXPIRABLE_PAYMENT_STATUSES:
            action = "paid" if transition.status_after == "success" else "updated"
            return row(action, f"Midtrans says {transition.status_before} → {transition.status_after}")
        if not run.permit():
            return None
        try:
            answer = gateway.transaction_expire(number)
        except TransactionNotFound as exc:
            answer = {"status_code": "404", "note": "no payment method chosen", **exc.extra.get("response", {})}
        payment.refresh_from_db()
        _expire_here(payment=payment, answer=answer)
        return row("expired")
    except GatewayUnavailable as exc:
        run.circuit.record(unavailable=True)
        return row("unavailable", exc.message)
    except GatewayError as exc:
        # e.g. 412: Midtrans will not expire it (paid or settled meanwhile); the next run looks again.
        logger.warning("Cleanup could not expire a payment", extra={"order": number, "error": exc.message})
        return row("error", exc.message)
    except Exception as exc:
        logger.exception("Cleanup failed for a payment", extra={"order": number})
        return row("error", str(exc))


def _expire_here(*, payment: Payment, answer: dict) -> None:
    """Apply "expired" through the one writer, as an audited cleanup event (watchers see it live)."""
    observation = Observation(
        order_id=payment.order.number, transaction_status="expire", status_code="407",
        gross_amount=Decimal(payment.amount), currency=payment.currency,
        raw={"source": "cleanup", "midtrans_answer": answer},
    )
    event = event_services.payment_event_record(
        source=EventSource.CLEANUP, payment=payment, raw_body=json.dumps(answer, default=str),
        payload={"order_id": payment.order.number, "transaction_status": "expire"},
        detail="expired by the cleanup after Midtrans confirmed it unpaid",
    )
    transition = payment_services.payment_apply_observation(
        payment_id=payment.pk, observation=observation, source=EventSource.CLEANUP, event_id=event.pk
    )
    payment_schedule_next(payment=payment, status=transition.status_after)


def payment_cleanup_preview(*, payment: Payment, run: Run) -> CleanupRow | None:
    """Say what the cleanup would do with one payment; only reads Midtrans's status."""
    number, before = payment.order.number, payment.status
    if not run.permit():
        return None
    try:
        observation = gateway.transaction_status(number)
    except TransactionNotFound:
        return CleanupRow(number, before, "not found", "would expire", before)
    except GatewayUnavailable as exc:
        run.circuit.record(unavailable=True)
        return CleanupRow(number, before, "?", "unavailable", before, exc.message)
    except GatewayError as exc:
        return CleanupRow(number, before, "?", "error", before, exc.message)
    run.circuit.record(unavailable=False)
    target = selectors.payment_would_become(payment, observation)
    now_status = target or before
    if now_status in selectors.EXPIRABLE_PAYMENT_STATUSES:
        return CleanupRow(number, before, observation.transaction_status, "would expire", before)
    action = "would mark paid" if now_status == "success" else "would update"
    return CleanupRow(number, before, observation.transaction_status, action, before, f"would become {now_status}")
