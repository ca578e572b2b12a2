"""The reconcile's writes, by what they do: ``runs`` (inline, dispatched, a chunk), ``checks`` (one payment),
``cleanup`` (overdue payments), ``retention`` (old events).

The names other code imports from ``reconcile.services`` are kept here.
"""

from reconcile.services.checks import notification_reapply, payment_reconcile, payment_schedule_next
from reconcile.services.cleanup import CleanupRow, CleanupSummary, payments_expire_overdue
from reconcile.services.retention import PruneSummary, events_prune
from reconcile.services.runs import (
    RunSummary,
    payments_claim,
    payments_release,
    reconcile_chunk,
    reconcile_chunk_check,
    reconcile_dispatch,
    reconcile_run,
)

__all__ = [
    "CleanupRow", "CleanupSummary", "PruneSummary", "RunSummary", "events_prune", "notification_reapply",
    "payment_reconcile", "payment_schedule_next", "payments_claim", "payments_expire_overdue", "payments_release",
    "reconcile_chunk", "reconcile_chunk_check", "reconcile_dispatch", "reconcile_run",
]
