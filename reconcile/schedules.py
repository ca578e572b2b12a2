"""Keep the reconcile schedule's interval equal to RECONCILE_INTERVAL_MINUTES.

The data migration (migrations/0002_schedules.py) creates the schedule with
the interval of the day it ran; an interval changed in the environment later
must take effect when the processes start again, not only on a fresh
database. So this runs after every ``migrate`` and when a qcluster spawns its
workers (reconcile/apps.py). It only updates (creating is the migration's
job), and it writes nothing when the row already agrees.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

logger = logging.getLogger("paywatch.reconcile")

RECONCILE_SCHEDULE = "paywatch-reconcile"


def interval_minutes() -> int:
    """Return the configured reconcile interval in minutes (at least 1)."""
    return max(1, int(settings.RECONCILE_INTERVAL_MINUTES))


def reconcile_schedule_sync(*, minutes: int, now: datetime | None = None, schedule_model: Any = None,
                            using: str = "default") -> bool:
    """Set the reconcile schedule's interval to ``minutes``; return whether anything was written.

    A shorter interval also pulls a next run that lies further away than one
    new interval in to that point, so it takes effect now rather than after
    the old interval's wait.
    """
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    now = now or timezone.now()
    rows = schedule_model.objects.using(using).filter(name=RECONCILE_SCHEDULE)
    with transaction.atomic(using=using):
        changed = rows.exclude(minutes=minutes).update(minutes=minutes)
        soonest = now + timedelta(minutes=minutes)
        changed += rows.filter(next_run__gt=soonest).update(next_run=soonest)
    if changed:
        logger.info("Reconcile schedule set to every %d minutes", minutes)
    return bool(changed)


def sync_after_migrate(sender: Any, apps: Any = None, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: apply the interval with the migration state's model (if its table exists)."""
    try:
        schedule_model = apps.get_model("django_q", "Schedule") if apps is not None else None
    except LookupError:  # migrated back to before django_q's tables
        return
    reconcile_schedule_sync(minutes=interval_minutes(), schedule_model=schedule_model, using=using)


def sync_at_worker_start(sender: Any, **kwargs: Any) -> None:
    """django-q2 post_spawn receiver: apply the interval when a qcluster starts (or replaces) a worker."""
    try:
        reconcile_schedule_sync(minutes=interval_minutes())
    except DatabaseError:
        # Never stop a worker from starting: the next spawn or migrate tries again.
        logger.warning("Could not update the reconcile schedule's interval", exc_info=True)
