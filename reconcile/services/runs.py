"""Reconcile runs: select the due payments, hand them out in chunks, claim and check each chunk.

A run is done inline (``reconcile_run``) or dispatched (``reconcile_dispatch``
enqueues chunks that ``reconcile_chunk`` checks on any worker); either way a
payment is checked by ``checks.payment_reconcile`` (overdue ones by
``cleanup.payment_cleanup``) under the shared ceiling and circuit.
"""

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task
from redis.exceptions import LockError

from checkout.models import EventOutcome, Payment
from checkout.states import OPEN_PAYMENT_STATUSES
from reconcile import chunks, conf, metrics, selectors
from reconcile.runner import Run, circuit_open_for, run_pool
from reconcile.services.checks import Counts, notification_reapply, payment_reconcile
from reconcile.services.cleanup import payment_cleanup

logger = logging.getLogger("paywatch.reconcile")


@dataclass
class RunSummary(Counts):
    """What one reconcile run (or one of its chunks) did; ``skipped``: claimed payments it left unchecked."""

    checked: int = 0       # payments Midtrans answered about (a 404 for "no method chosen" included)
    fixed: int = 0         # of those, payments whose status changed
    reapplied: int = 0     # stored notifications re-applied
    calls: int = 0
    circuit_open: bool = False
    out_of_time: bool = False
    locked: bool = False   # another run held the lock: this one did nothing
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


def _reapply_notifications(run: Run, summary: RunSummary) -> None:
    """Re-apply verified notifications whose application failed, each a bounded number of times."""
    for event in selectors.events_to_reapply(now=timezone.now())[:1000]:
        if run.circuit.is_open or run.out_of_time:
            return
        outcome = notification_reapply(event=event, run=run)
        metrics.reapplied.labels(outcome=outcome).inc()
        summary.reapplied += outcome not in (EventOutcome.ERROR, "no_permit")
