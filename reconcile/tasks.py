"""django-q2 task functions (named by the schedules in migrations/0002_schedules.py and 0003_prune_schedule.py)."""

from dataclasses import asdict
from typing import Any

from reconcile import services


def reconcile_pending() -> dict[str, Any]:
    """Check due open payments with Midtrans and re-apply failed notifications."""
    return asdict(services.reconcile_run())


def cleanup_expired() -> dict[str, Any]:
    """Confirm overdue pending payments with Midtrans, then expire them there and here."""
    summary = services.cleanup_expired(dry_run=False)
    return {k: v for k, v in asdict(summary).items() if k != "rows"}


def prune_events() -> dict[str, Any]:
    """Delete events of payments closed longer than EVENT_RETENTION_DAYS, and old events with no payment."""
    return asdict(services.events_prune())
