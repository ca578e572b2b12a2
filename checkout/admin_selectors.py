"""Reads for the operator's admin: the payments that need a look, delivery health, one payment explained.

The reconcile's own queries (``reconcile.selectors``) and the scrape-time
gauges (``project.state_metrics``) are reused, so the admin and the alerts
agree on what "due", "lag" and "silence" mean.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from checkout import selectors
from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.states import FINAL_ORDER_STATUSES, OPEN_PAYMENT_STATUSES, PaymentStatus
from project.state_metrics import reconcile_lag_seconds, webhook_silence_seconds
from reconcile import conf as reconcile_conf
from reconcile import selectors as reconcile_selectors

RECONCILE_TASK = "reconcile.tasks.reconcile_pending"
# A dispatched run's chunks are django-q2 tasks of the group "reconcile-<run_id>" (reconcile.services).
CHUNK_GROUP_PREFIX = "reconcile-"
# The counts a run's chunks add up (reconcile.services.RunSummary).
RUN_COUNTS = ("checked", "fixed", "errors", "skipped", "unavailable", "expired", "calls", "taken")
# Sources whose events hold an answer of Midtrans's status API (or of an action sent to it).
ASKED_SOURCES = (EventSource.RECONCILE, EventSource.REFRESH, EventSource.ADMIN, EventSource.CLEANUP)
# How many rows a health table lists; the figures above each count them all.
LISTED = 50


def stuck_grace() -> timedelta:
    """Return how late a due check may be before the payment counts as stuck.

    Two reconcile intervals, the threshold of the ReconcileLagging alert
    (deploy/prometheus-alerts.yml): a check due a minute ago is only waiting
    for the next run.
    """
    return timedelta(seconds=2 * reconcile_conf.interval_seconds())


def payment_is_checked(payment: Payment) -> bool:
    """Return whether the reconcile still asks Midtrans about this payment (as ``payments_open``)."""
    return payment.status in OPEN_PAYMENT_STATUSES and payment.order.status not in FINAL_ORDER_STATUSES


def payments_stuck(*, now: datetime) -> QuerySet[Payment]:
    """Return open payments whose reconcile check has been due for longer than ``stuck_grace()``."""
    return Payment.objects.filter(pk__in=reconcile_selectors.payments_due(now=now - stuck_grace()).values("pk"))


def payments_overdue(*, now: datetime) -> QuerySet[Payment]:
    """Return pending payments past their expiry that the reconcile has not ended yet."""
    return Payment.objects.filter(pk__in=reconcile_selectors.payments_overdue(now=now).values("pk"))


def events_failed(*, now: datetime) -> QuerySet[PaymentEvent]:
    """Return verified notifications that failed to apply (or were abandoned mid-way), retries used up included.

    The reconcile re-applies these by itself a few times
    (``reconcile.selectors.events_to_reapply``); those it gave up on wait
    here for a person.
    """
    abandoned = Q(outcome=EventOutcome.RECEIVED,
                  created_at__lt=now - timedelta(seconds=reconcile_conf.ABANDONED_AFTER_SECONDS))
    return (
        PaymentEvent.objects.filter(Q(outcome=EventOutcome.ERROR) | abandoned,
                                    source=EventSource.WEBHOOK, signature_valid=True)
        .annotate(attempts=Coalesce("retry__attempts", 0))
        .order_by("-pk")
    )


def event_reapplicable(event: PaymentEvent, *, now: datetime) -> bool:
    """Return whether a person may re-apply this event now."""
    return events_failed(now=now).filter(pk=event.pk).exists()


@dataclass
class OutcomeRow:
    outcome: str
    label: str
    last_hour: int
    last_day: int


@dataclass
class ReconcileRun:
    """One scheduled reconcile run: its own task and, for a dispatched run, the chunks it enqueued."""

    started: datetime | None
    stopped: datetime | None
    success: bool
    summary: dict[str, Any]
    error: str = ""
    chunks_done: int = 0
    chunks_failed: int = 0

    @property
    def seconds(self) -> float | None:
        return (self.stopped - self.started).total_seconds() if self.started and self.stopped else None

    @property
    def result(self) -> str:
        """Return how the run ended, in the words of ``paywatch_reconcile_runs_total``."""
        total = int(self.summary.get("chunks") or 0)
        if not self.success:
            return "failed"
        if self.summary.get("locked"):
            return "locked (another run held the lock)"
        if self.summary.get("busy"):
            return "busy (the last run's chunks were still queued)"
        if self.summary.get("circuit_open"):
            return "circuit (Midtrans unavailable)"
        if total:
            failed = f", {self.chunks_failed} failed" if self.chunks_failed else ""
            return f"dispatched: {self.chunks_done} of {total} chunks done{failed}"
        if self.summary.get("out_of_time"):
            return "budget (out of time)"
        return "completed"


@dataclass
class DeliveryHealth:
    """What the delivery health page shows, read at ``now``."""

    now: datetime
    by_outcome: list[OutcomeRow]
    total_hour: int
    total_day: int
    signature_failures_hour: int
    signature_failures_day: int
    recent_signature_failures: list[PaymentEvent]
    last_valid_at: datetime | None
    last_valid_age: timedelta | None
    failed_count: int
    failed: list[PaymentEvent]
    runs: list[ReconcileRun]
    next_run: datetime | None
    interval_minutes: int | None
    lag: timedelta
    due_count: int
    stuck_count: int
    paid_after_close_count: int
    paid_after_close: list[PaymentEvent]
    warnings: list[str] = field(default_factory=list)

    @property
    def lag_text(self) -> str:
        return duration_text(self.lag) if self.lag else "none"

    @property
    def last_valid_text(self) -> str:
        return f"{duration_text(self.last_valid_age)} ago" if self.last_valid_age is not None else "never"


def notifications_by_outcome(*, now: datetime) -> list[OutcomeRow]:
    """Return the webhook's notifications of the last hour and day, per outcome (every outcome listed)."""
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    counts = {
        row["outcome"]: row for row in
        PaymentEvent.objects.filter(source=EventSource.WEBHOOK, created_at__gte=day_ago).order_by()
        .values("outcome").annotate(day=Count("pk"), hour=Count("pk", filter=Q(created_at__gte=hour_ago)))
    }
    return [OutcomeRow(outcome.value, outcome.label, counts.get(outcome.value, {}).get("hour", 0),
                       counts.get(outcome.value, {}).get("day", 0)) for outcome in EventOutcome]


def reconcile_runs(*, limit: int = 10) -> list[ReconcileRun]:
    """Return the reconcile's last runs as django-q2 stored them (task results, successes and failures).

    A run done inline carries its counts; a dispatched run's counts are the
    sum of its chunks' results (django-q2 tasks of the group
    ``reconcile-<run_id>``). Read from what django-q2 keeps anyway
    (``save_limit``), so nothing in the reconcile records runs for this page.
    """
    from django_q.models import Task

    tasks = list(Task.objects.filter(func=RECONCILE_TASK).order_by("-started")[:limit])
    groups = {f"{CHUNK_GROUP_PREFIX}{task.result['run_id']}" for task in tasks
              if isinstance(task.result, dict) and task.result.get("run_id")}
    chunks: dict[str, list[Any]] = {}
    for chunk in Task.objects.filter(group__in=groups).order_by("started") if groups else []:
        chunks.setdefault(chunk.group, []).append(chunk)
    runs = []
    for task in tasks:
        summary = dict(task.result) if isinstance(task.result, dict) else {}
        run = ReconcileRun(task.started, task.stopped, bool(task.success), summary,
                           error="" if task.success or summary else str(task.result or "")[-500:])
        for chunk in chunks.get(f"{CHUNK_GROUP_PREFIX}{summary.get('run_id')}", []):
            if not chunk.success or not isinstance(chunk.result, dict):
                run.chunks_failed += 1
                continue
            run.chunks_done += 1
            for name in RUN_COUNTS:
                summary[name] = int(summary.get(name) or 0) + int(chunk.result.get(name) or 0)
            run.stopped = max(run.stopped, chunk.stopped) if run.stopped and chunk.stopped else run.stopped
        runs.append(run)
    return runs


def delivery_health(*, now: datetime) -> DeliveryHealth:
    """Read everything the delivery health page shows."""
    from django_q.models import Schedule

    from reconcile.schedules import RECONCILE_SCHEDULE

    by_outcome = notifications_by_outcome(now=now)
    webhook = PaymentEvent.objects.filter(source=EventSource.WEBHOOK)
    forged = webhook.filter(signature_valid=False)
    silence = webhook_silence_seconds(now=now)
    last_valid_age = None if silence == float("inf") else timedelta(seconds=silence)
    failed = events_failed(now=now).select_related("retry")
    paid_late = selectors.events_paid_after_close().select_related("payment__order").order_by("-pk")
    schedule = Schedule.objects.filter(name=RECONCILE_SCHEDULE).order_by("pk").first()
    health = DeliveryHealth(
        now=now,
        by_outcome=by_outcome,
        total_hour=sum(row.last_hour for row in by_outcome),
        total_day=sum(row.last_day for row in by_outcome),
        signature_failures_hour=forged.filter(created_at__gte=now - timedelta(hours=1)).count(),
        signature_failures_day=forged.filter(created_at__gte=now - timedelta(days=1)).count(),
        recent_signature_failures=list(forged.order_by("-pk")[:5]),
        last_valid_at=now - last_valid_age if last_valid_age is not None else None,
        last_valid_age=last_valid_age,
        failed_count=failed.count(),
        failed=[_with_reason(event) for event in failed[:LISTED]],
        runs=reconcile_runs(),
        next_run=schedule.next_run if schedule else None,
        interval_minutes=schedule.minutes if schedule else None,
        lag=timedelta(seconds=reconcile_lag_seconds(now=now)),
        due_count=reconcile_selectors.payments_due(now=now).count(),
        stuck_count=payments_stuck(now=now).count(),
        paid_after_close_count=selectors.payments_paid_after_close().count(),
        paid_after_close=_newest_per_payment(paid_late),
    )
    health.warnings = _warnings(health)
    return health


def _newest_per_payment(events: QuerySet[PaymentEvent]) -> list[PaymentEvent]:
    # One row per payment (a webhook and a check now may both have reported the same money).
    newest: dict[int, PaymentEvent] = {}
    for event in events[:LISTED * 4]:
        newest.setdefault(event.payment_id, event)
    return list(newest.values())[:LISTED]


def _with_reason(event: PaymentEvent) -> PaymentEvent:
    # A traceback's last line says what went wrong; the event's page has the rest.
    lines = event.detail.strip().splitlines()
    fallback = "abandoned mid-way (still received)" if event.outcome == EventOutcome.RECEIVED else "no detail"
    event.reason = lines[-1] if lines else fallback  # type: ignore[attr-defined]
    return event


def _warnings(health: DeliveryHealth) -> list[str]:
    """Say in words what the page's figures mean for a person (the alert rules' thresholds)."""
    found = []
    pending = reconcile_selectors.payments_open().filter(status=PaymentStatus.PENDING).exists()
    if pending and (health.last_valid_age is None or health.last_valid_age > timedelta(hours=1)):
        found.append("No valid notification for over an hour while payments are pending: "
                     "is the notification URL set in Midtrans's dashboard, and reachable?")
    if health.signature_failures_hour:
        found.append(f"{health.signature_failures_hour} notification(s) with a bad signature in the last hour: "
                     "a wrong server key, or someone forging them.")
    if health.lag > stuck_grace():
        found.append("The reconcile is behind: the oldest due check has waited more than two intervals. "
                     "Is the worker (qcluster) running?")
    if health.failed_count:
        found.append(f"{health.failed_count} notification(s) failed to apply and wait to be re-applied.")
    if health.paid_after_close_count:
        found.append(f"{health.paid_after_close_count} payment(s) received for closed orders need a person: "
                     "refund the customer or honour the order.")
    return found


@dataclass
class Explanation:
    """One payment explained: why it is in its state, Midtrans's last word, when it is next checked."""

    reasons: list[str]
    next_check: str
    stuck: bool
    overdue: bool
    last_answer: PaymentEvent | None
    last_notification: PaymentEvent | None
    timeline: list[PaymentEvent]
    earlier: int


def payment_explanation(payment: Payment, *, now: datetime, timeline_size: int = 50) -> Explanation:
    """Explain a payment for the operator (its change page)."""
    events = PaymentEvent.objects.filter(payment=payment)
    last_answer = events.filter(source__in=ASKED_SOURCES).exclude(raw_body="").order_by("-pk").first()
    last_notification = events.filter(source=EventSource.WEBHOOK).order_by("-pk").first()
    total = events.count()
    timeline = list(events.order_by("-pk")[:timeline_size])[::-1]  # the newest, oldest first
    is_open = payment_is_checked(payment)
    # As payments_due: a payment with no check scheduled counts as due.
    stuck = is_open and (payment.next_check_at is None or payment.next_check_at < now - stuck_grace())
    overdue = (is_open and payment.status in reconcile_selectors.EXPIRABLE_PAYMENT_STATUSES
               and payment.expires_at is not None and payment.expires_at < now)
    return Explanation(
        reasons=_reasons(payment, events, stuck=stuck, overdue=overdue, now=now),
        next_check=_next_check(payment, is_open=is_open, now=now),
        stuck=stuck, overdue=overdue, last_answer=last_answer, last_notification=last_notification,
        timeline=timeline, earlier=max(0, total - len(timeline)),
    )


def _reasons(payment: Payment, events: QuerySet[PaymentEvent], *, stuck: bool, overdue: bool,
             now: datetime) -> list[str]:
    order_status = payment.order.status
    reasons = [_status_reason(payment)]
    changed = events.filter(outcome=EventOutcome.APPLIED).order_by("-pk").first()
    if changed is not None:
        reasons.append(f"It became {changed.status_after} on {_when(changed.created_at)} from a {changed.source} "
                       f"event (#{changed.pk}, Midtrans {changed.transaction_status or '—'}).")
    if order_status in FINAL_ORDER_STATUSES:
        reasons.append(f"The order is {order_status}: nothing moves it any more, and no action is offered.")
    late = selectors.events_paid_after_close().filter(payment=payment).order_by("-pk").first()
    if late is not None:
        reasons.append(f"Midtrans reported it paid ({late.transaction_status}) on {_when(late.created_at)}, after "
                       f"the order had closed: a person must refund the customer or honour the order.")
    mismatched = events.filter(outcome=EventOutcome.AMOUNT_MISMATCH).count()
    if mismatched:
        reasons.append(f"{mismatched} report(s) carried an amount that does not pay this order: recorded, never "
                       f"applied.")
    if overdue:
        reasons.append(f"It is past its expiry ({_when(payment.expires_at)}): the reconcile confirms with Midtrans "
                       f"that it is unpaid, then expires it.")
    if stuck:
        due = payment.next_check_at or payment.created_at
        reasons.append(f"Its check has been due since {_when(due)} ({duration_text(now - due)} ago), more than two "
                       f"reconcile intervals: the reconcile is behind or not running (see Delivery health).")
    return reasons


def _status_reason(payment: Payment) -> str:
    s = PaymentStatus
    method = f"{payment.payment_type} ({payment.bank})" if payment.bank else payment.payment_type
    by_status = {
        s.PENDING: (f"The customer chose {method} and Midtrans has not seen the money yet."
                    if payment.transaction_status else
                    "The customer has not chosen a payment method yet: Midtrans has no transaction for it."),
        s.CHALLENGE: "Midtrans's fraud detection challenged this card payment: approve or deny it.",
        s.SUCCESS: f"Paid{f' on {_when(payment.paid_at)}' if payment.paid_at else ''} (Midtrans "
                   f"{payment.transaction_status or '—'}).",
        s.FAILED: "The last attempt was denied or failed; the order stays payable by another method."
                  if payment.order.status not in FINAL_ORDER_STATUSES else
                  "The payment was reversed after it was paid, and the order cancelled.",
        s.CANCELLED: "The payment was cancelled at Midtrans.",
        s.EXPIRED: "The payment expired unpaid (Midtrans confirmed it before it was ended here).",
        s.REFUNDED: "All of the money was refunded (or charged back).",
        s.PARTIALLY_REFUNDED: "Part of the money was refunded; the order goes on.",
    }
    return by_status.get(payment.status, f"Status {payment.status}.")


def _next_check(payment: Payment, *, is_open: bool, now: datetime) -> str:
    if not is_open:
        return "Never: the reconcile only asks Midtrans about open payments of open orders."
    due = payment.next_check_at
    if due is None:
        return "At the next reconcile run (no check scheduled)."
    if due > now:
        return f"In {duration_text(due - now)} ({_when(due)}), by the reconcile."
    return f"Due since {_when(due)} ({duration_text(now - due)} ago): at the next reconcile run."


def _when(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}" if moment else "—"


def duration_text(delta: timedelta) -> str:
    """Return a short duration for people: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
