"""django-q2 task functions (named by the schedules in migrations/0002_schedules.py)."""

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
