"""django-q2 task functions (named by the schedules in migrations/0002_schedules.py and 0003_prune_schedule.py,
and by the chunks the reconcile's coordinator enqueues)."""

from dataclasses import asdict
from typing import Any

from reconcile import services


def reconcile_pending() -> dict[str, Any]:
    """Coordinate a reconcile run: re-apply failed notifications, enqueue the due payments in chunks."""
    return asdict(services.reconcile_dispatch())


def reconcile_chunk(spec: dict[str, Any]) -> dict[str, Any]:
    """Check one chunk of due payments (any worker, any host)."""
    return asdict(services.reconcile_chunk(spec=spec))


def cleanup_expired() -> dict[str, Any]:
    """Run ``payments_expire_overdue`` for the daily schedule (which names this function: keep the name)."""
    summary = services.payments_expire_overdue(dry_run=False)
    return {k: v for k, v in asdict(summary).items() if k != "rows"}


def prune_events() -> dict[str, Any]:
    """Delete events of payments closed longer than EVENT_RETENTION_DAYS, and old events with no payment."""
    return asdict(services.events_prune())
