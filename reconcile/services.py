"""The reconcile and the expiry cleanup: ask Midtrans about open payments, apply what it says.

Every status change goes through ``checkout.services`` (the one writer), so
it is audited, monotonic and pushed live like a webhook's.
"""

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task
from redis.exceptions import LockError

from checkout import gateway
from checkout import selectors as checkout_selectors
from checkout.errors import (
    ApplicationError,
    GatewayError,
    GatewayUnavailable,
    MalformedNotification,
    TransactionNotFound,
    UnknownOrder,
)
from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.observations import Observation, observation_from_payload
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from checkout.states import FINAL_ORDER_STATUSES, FINAL_PAYMENT_STATUSES, OPEN_PAYMENT_STATUSES
from reconcile import chunks, conf, metrics, schedule, selectors
from reconcile.models import NotificationRetry
from reconcile.runner import Run, circuit_open_for, run_pool

logger = logging.getLogger("paywatch.reconcile")


@dataclass
class RunSummary:
    """What one reconcile run (or one of its chunks) did."""

    checked: int = 0       # payments Midtrans answered about (a 404 for "no method chosen" included)
    fixed: int = 0         # of those, payments whose status changed
    errors: int = 0        # checks that failed for another reason (recorded, retried later)
    skipped: int = 0       # claimed payments left for the next run (deadline or open circuit)
    unavailable: int = 0   # calls that found Midtrans down, slow, rate-limiting or answering garbage
    reapplied: int = 0     # stored notifications re-applied
    expired: int = 0       # overdue payments Midtrans confirmed unpaid, expired here and there
    calls: int = 0
    circuit_open: bool = False
    out_of_time: bool = False
    locked: bool = False   # another run held the lock: this one did nothing
    duration: float = 0.0
    queued: int = 0        # payments handed to chunks (a dispatched run)
    chunks: int = 0        # chunks enqueued (a dispatched run)
    taken: int = 0         # payments a chunk found claimed by someone else or no longer due
    busy: bool = False     # the last run's chunks were still queued: this one queued nothing
    run_id: str = ""
    worker: str = ""       # "host:pid" of the process that ran a chunk

    def add(self, other: "RunSummary") -> None:
        """Add a chunk's counts to this run's."""
        for name in ("checked", "fixed", "errors", "skipped", "unavailable", "expired", "calls", "taken"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.circuit_open = self.circuit_open or other.circuit_open


@dataclass(frozen=True)
class Plan:
    """The due payments a run hands out, selected at ``cutoff``."""

    cutoff: datetime
    overdue: list[int]
    due: list[int]


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def _run_lock(budget: float, lock_timeout: float | None) -> Any:
    """Take the run lock (it expires should this process die); None, counted, when another run holds it."""
    lock = _redis().lock(conf.LOCK_KEY, timeout=lock_timeout or conf.lock_timeout_seconds(budget), blocking=False)
    if lock.acquire(blocking=False):
        return lock
    logger.info("Reconcile already running elsewhere; skipping this run")
    metrics.runs.labels(result="locked").inc()
    return None


def reconcile_run(
    *,
    budget_seconds: float | None = None,
    lock_timeout: float | None = None,
    concurrency: int | None = None,
    max_calls_per_second: float | None = None,
) -> RunSummary:
    """Do one whole reconcile run in this process; one run at a time (the bench's baseline, the tests).

    The same work as a dispatched run (``reconcile_dispatch``) and its chunks,
    done inline: re-apply failed notifications, then claim and check every
    due payment. A Redis lock (which expires should this process die) keeps a
    second run out; calls stop at the time budget or when the shared circuit
    opens, and what remains is released for the next run.
    """
    started = time.monotonic()
    budget = conf.time_budget_seconds() if budget_seconds is None else budget_seconds
    lock = _run_lock(budget, lock_timeout)
    if lock is None:
        return RunSummary(locked=True, duration=time.monotonic() - started)
    try:
        run = Run(budget_seconds=budget, concurrency=concurrency or conf.concurrency(),
                  max_calls_per_second=conf.max_calls_per_second() if max_calls_per_second is None
                  else max_calls_per_second)
        summary = RunSummary()
        _reapply_notifications(run, summary)
        plan = _plan(limit=None)
        lease, size = conf.chunk_lease_seconds(budget), conf.chunk_size()
        for kind, ids in (("overdue", plan.overdue), ("due", plan.due)):
            for i in range(0, len(ids), size):  # claimed a chunk at a time, as the workers do
                summary.add(reconcile_chunk_check(run=run, kind=kind, payment_ids=ids[i:i + size],
                                                  cutoff=plan.cutoff, lease_seconds=lease))
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("Reconcile lock expired before the run ended")
    summary.calls, summary.circuit_open = run.calls, run.circuit.is_open
    summary.out_of_time = summary.skipped > 0 and not summary.circuit_open
    summary.duration = time.monotonic() - started
    result = "circuit" if summary.circuit_open else "budget" if summary.out_of_time else "completed"
    metrics.runs.labels(result=result).inc()
    logger.info("Reconcile run finished", extra={"result": result, **summary.__dict__})
    return summary


def reconcile_dispatch(
    *,
    budget_seconds: float | None = None,
    lock_timeout: float | None = None,
    max_calls_per_second: float | None = None,
    chunk_size: int | None = None,
    chunk_budget_seconds: float | None = None,
) -> RunSummary:
    """Coordinate one reconcile run: select the due payments and enqueue them in chunks for every worker.

    Holds the run lock only while it selects and enqueues (never two
    coordinators at once); the calls happen in the chunks, on any worker of
    any host, under the shared ceiling and circuit. Queues nothing while the
    shared circuit is open, or while the task queue still holds work (the
    last run's chunks: the same payments would be queued twice). At most what the
    ceiling lets through in one time budget is queued; the rest stays due.
    """
    started = time.monotonic()
    budget = conf.time_budget_seconds() if budget_seconds is None else budget_seconds
    ceiling = conf.max_calls_per_second() if max_calls_per_second is None else max_calls_per_second
    size = chunk_size or conf.chunk_size()
    chunk_budget = conf.chunk_budget_seconds() if chunk_budget_seconds is None else chunk_budget_seconds
    summary = RunSummary(run_id=uuid.uuid4().hex[:12])
    lock = _run_lock(budget, lock_timeout)
    if lock is None:
        return RunSummary(locked=True, duration=time.monotonic() - started)
    try:
        metrics.ceiling.set(ceiling)
        chunks.outstanding(queued_stale_after=conf.interval_seconds(),
                           running_stale_after=conf.chunk_lease_seconds(chunk_budget) + 30)
        if circuit_open_for() > 0:
            summary.circuit_open = True
        elif get_broker().queue_size():
            # The last run's chunks still wait in the queue: queuing the same payments again would only add
            # chunks that find them claimed. Chunks a killed worker had prefetched are no longer in the queue,
            # so they hold nothing up; their payments are still due and this run takes them.
            summary.busy = True
        else:
            run = Run(budget_seconds=min(budget, chunk_budget), max_calls_per_second=ceiling, concurrency=1)
            _reapply_notifications(run, summary)
            summary.calls = run.calls
            plan = _plan(limit=conf.max_payments_per_run(budget, ceiling))
            specs = [{"id": f"{summary.run_id}-{kind}-{n}", "run": summary.run_id, "kind": kind,
                      "payment_ids": ids[i:i + size], "cutoff": plan.cutoff.isoformat(),
                      "budget_seconds": chunk_budget}
                     for kind, ids in (("overdue", plan.overdue), ("due", plan.due))
                     for n, i in enumerate(range(0, len(ids), size))]
            chunks.queued([spec["id"] for spec in specs])
            for spec in specs:
                async_task("reconcile.tasks.reconcile_chunk", spec, task_name=f"reconcile-chunk-{spec['id']}",
                           group=f"reconcile-{summary.run_id}")
            summary.queued, summary.chunks = len(plan.overdue) + len(plan.due), len(specs)
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("Reconcile lock expired before the coordinator ended")
    summary.duration = time.monotonic() - started
    result = "circuit" if summary.circuit_open else "busy" if summary.busy else "dispatched"
    metrics.runs.labels(result=result).inc()
    logger.info("Reconcile run dispatched", extra={"result": result, **summary.__dict__})
    return summary


def reconcile_chunk(*, spec: dict[str, Any]) -> RunSummary:
    """Check one chunk of a dispatched run (a django-q2 task, on any worker); release what it could not check."""
    chunks.started(spec["id"])
    try:
        run = Run(budget_seconds=float(spec["budget_seconds"]), max_calls_per_second=conf.max_calls_per_second(),
                  concurrency=conf.concurrency())
        summary = reconcile_chunk_check(
            run=run, kind=spec["kind"], payment_ids=list(spec["payment_ids"]),
            cutoff=datetime.fromisoformat(spec["cutoff"]),
            lease_seconds=conf.chunk_lease_seconds(float(spec["budget_seconds"])))
    finally:
        chunks.done(spec["id"])
    summary.run_id, summary.calls, summary.circuit_open = spec["run"], run.calls, run.circuit.is_open
    summary.worker = f"{socket.gethostname()}:{os.getpid()}"
    summary.out_of_time = summary.skipped > 0 and not summary.circuit_open
    summary.duration = run.elapsed()
    return summary


def _plan(*, limit: int | None) -> Plan:
    """Select what is due now: overdue payments (confirmed, then expired) and the rest (checked)."""
    cutoff = timezone.now()
    due_now = Q(next_check_at__isnull=True) | Q(next_check_at__lte=cutoff)
    overdue = list(selectors.payments_overdue(now=cutoff).filter(due_now).values_list("pk", flat=True)[:limit])
    overdue_now = Q(status__in=selectors.EXPIRABLE_PAYMENT_STATUSES, expires_at__lt=cutoff)
    due = selectors.payments_due(now=cutoff).exclude(overdue_now).values_list("pk", flat=True)
    rest = None if limit is None else max(0, limit - len(overdue))
    return Plan(cutoff, overdue, list(due[:rest]) if rest is None or rest > 0 else [])


def payments_claim(*, payment_ids: list[int], cutoff: datetime, lease_until: datetime) -> list[Payment]:
    """Claim the payments still due at ``cutoff`` for one chunk; return them (oldest check first).

    One conditional UPDATE moves their next check to ``lease_until`` (a value
    unique to this claim): a payment another chunk or run claimed (or checked)
    meanwhile is no longer due and is left out, so none is checked twice; and
    should this worker die, the payments it claimed are due again when the lease
    ends. Done in the database, so it holds even if Redis is lost.
    """
    if not payment_ids:
        return []
    Payment.objects.filter(pk__in=payment_ids, status__in=OPEN_PAYMENT_STATUSES).filter(
        Q(next_check_at__isnull=True) | Q(next_check_at__lte=cutoff)).update(next_check_at=lease_until)
    return list(selectors.payments_open().filter(pk__in=payment_ids, next_check_at=lease_until)
                .order_by("pk"))


def payments_release(*, payment_ids: list[int], lease_until: datetime, due_at: datetime) -> int:
    """Hand claimed payments that were not checked back to the next run, first in line (due at ``due_at``)."""
    if not payment_ids:
        return 0
    return Payment.objects.filter(pk__in=payment_ids, next_check_at=lease_until).update(next_check_at=due_at)


def reconcile_chunk_check(*, run: Run, kind: str, payment_ids: list[int], cutoff: datetime,
                          lease_seconds: float) -> RunSummary:
    """Claim a chunk's payments and check them: ``due`` ones are reconciled, ``overdue`` ones confirmed and expired."""
    summary = RunSummary()
    lease_until = timezone.now() + timedelta(seconds=lease_seconds)
    claimed = payments_claim(payment_ids=payment_ids, cutoff=cutoff, lease_until=lease_until)
    summary.taken = len(payment_ids) - len(claimed)
    finished: set[int] = set()
    if kind == "overdue":
        for done in run_pool(claimed, lambda payment: payment_cleanup(payment=payment, run=run), run):
            finished.add(claimed[done.index].pk)
            metrics.cleanups.labels(result=done.result.action).inc()
            summary.expired += done.result.action == "expired"
            summary.fixed += done.result.action in ("paid", "updated")
    else:
        for done in run_pool(claimed, lambda payment: payment_reconcile(payment=payment, run=run), run):
            finished.add(claimed[done.index].pk)
            kind_of = done.result
            metrics.checks.labels(result=kind_of).inc()
            if kind_of in ("fixed", "ok"):
                summary.checked += 1
                summary.fixed += kind_of == "fixed"
            elif kind_of == "unavailable":
                summary.unavailable += 1
            else:
                summary.errors += 1
    unchecked = [payment.pk for payment in claimed if payment.pk not in finished]
    payments_release(payment_ids=unchecked, lease_until=lease_until, due_at=cutoff)
    if kind != "overdue":
        summary.skipped = len(unchecked)
    return summary


def payment_reconcile(*, payment: Payment, run: Run, source: str = EventSource.RECONCILE) -> str | None:
    """Ask Midtrans about one payment, apply the answer, schedule the next check.

    Return "fixed", "ok", "unavailable" or "error"; None when the run gave no permit.
    """
    if not run.permit():
        return None
    try:
        transition = payment_services.payment_ask_midtrans(payment=payment, source=source)
    except GatewayUnavailable as exc:
        run.circuit.record(unavailable=True)
        # Never a failure: the payment is left as it is and asked about again later.
        payment_schedule_next(payment=payment, delay=timedelta(seconds=conf.outage_backoff_seconds()))
        logger.info("Midtrans unavailable for a reconcile check", extra={"order": payment.order.number,
                                                                       "error": exc.message})
        return "unavailable"
    except GatewayError as exc:
        # A refusal (a wrong server key's 401) is as systemic as an outage: it opens the circuit too.
        run.circuit.record(unavailable=True)
        logger.warning("Midtrans refused a reconcile check", extra={"order": payment.order.number,
                                                                    "error": exc.message})
        payment_schedule_next(payment=payment, delay=timedelta(seconds=conf.outage_backoff_seconds()))
        return "error"
    except Exception:
        run.circuit.record(unavailable=False)
        logger.exception("Reconcile check failed", extra={"order": payment.order.number})
        payment_schedule_next(payment=payment)
        return "error"
    run.circuit.record(unavailable=False)
    payment_schedule_next(payment=payment, status=transition.status_after)
    return "fixed" if transition.changed else "ok"


def payment_schedule_next(*, payment: Payment, status: str | None = None, delay: timedelta | None = None) -> None:
    """Set when the reconcile asks about a payment next (nothing once it is no longer open)."""
    now = timezone.now()
    if (status or payment.status) not in OPEN_PAYMENT_STATUSES:
        at = None
    elif delay is not None:
        at = now + delay
    else:
        at = schedule.next_check_at(created_at=payment.created_at, now=now, expires_at=payment.expires_at)
    Payment.objects.filter(pk=payment.pk).update(next_check_at=at)


def _reapply_notifications(run: Run, summary: RunSummary) -> None:
    """Re-apply verified notifications whose application failed, each a bounded number of times."""
    for event in selectors.events_to_reapply(now=timezone.now())[:1000]:
        if run.circuit.is_open or run.out_of_time:
            return
        outcome = notification_reapply(event=event, run=run)
        metrics.reapplied.labels(outcome=outcome).inc()
        summary.reapplied += outcome not in (EventOutcome.ERROR, "no_permit")


def notification_reapply(*, event: PaymentEvent, run: Run) -> str:
    """Apply a stored webhook event again through the one service; record the attempt and outcome."""
    retry, _ = NotificationRetry.objects.get_or_create(event=event)
    retry.attempts += 1
    retry.last_attempt_at = timezone.now()
    try:
        observation = observation_from_payload(json.loads(event.raw_body))
        payment = checkout_selectors.payment_for_order_number(observation.order_id)
        # payment_observe may confirm a reversal with the status API: that is a call.
        if not run.permit():
            return "no_permit"
        transition = payment_services.payment_apply_with_confirmation(
            payment=payment, observation=observation, source=EventSource.RECONCILE, event_id=event.pk
        )
        retry.last_outcome = transition.outcome
        run.circuit.record(unavailable=False)
    except (ValueError, MalformedNotification, UnknownOrder) as exc:
        # It will not get better: settle the event and stop retrying it.
        outcome = EventOutcome.UNKNOWN_ORDER if isinstance(exc, UnknownOrder) else EventOutcome.ERROR
        event_services.payment_event_close(event_id=event.pk, outcome=outcome,
                                              detail=f"re-apply gave up: {exc}")
        retry.attempts = max(retry.attempts, conf.MAX_REAPPLY_ATTEMPTS)
        retry.last_outcome = outcome
    except Exception as exc:
        run.circuit.record(unavailable=isinstance(exc, GatewayUnavailable))
        logger.warning("Re-applying a stored notification failed", exc_info=not isinstance(exc, ApplicationError),
                       extra={"event_id": event.pk, "attempt": retry.attempts})
        event_services.payment_event_fail(event_id=event.pk, error=exc)
        retry.last_outcome = EventOutcome.ERROR
    finally:
        retry.save()
    logger.info("Re-applied a stored notification",
                extra={"event_id": event.pk, "outcome": retry.last_outcome, "attempt": retry.attempts})
    return retry.last_outcome


# --- expiry cleanup ---------------------------------------------------------------------------------


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
class CleanupSummary:
    """What one cleanup did."""

    rows: list[CleanupRow] = field(default_factory=list)
    paid: int = 0
    expired: int = 0
    updated: int = 0
    errors: int = 0
    unavailable: int = 0
    skipped: int = 0
    dry_run: bool = False
    duration: float = 0.0


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


# --- event retention --------------------------------------------------------------------------------


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
