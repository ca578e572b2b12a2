"""Create the reconcile and cleanup schedules (idempotent; reversible)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import migrations
from django.utils import timezone

RECONCILE = "paywatch-reconcile"
CLEANUP = "paywatch-cleanup"
JAKARTA = ZoneInfo("Asia/Jakarta")


def next_jakarta_3am(now: datetime) -> datetime:
    """Return the next 03:00 in Asia/Jakarta after ``now``."""
    local = now.astimezone(JAKARTA)
    candidate = datetime.combine(local.date(), time(3, 0), tzinfo=JAKARTA)
    return candidate if candidate > local else candidate + timedelta(days=1)


def _put(Schedule, name: str, **fields) -> None:
    # The name is not unique in django_q's table: keep one row per name.
    extra = Schedule.objects.filter(name=name).order_by("pk").values_list("pk", flat=True)[1:]
    Schedule.objects.filter(pk__in=list(extra)).delete()
    Schedule.objects.update_or_create(name=name, defaults=fields)


def create_schedules(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    now = timezone.now()
    _put(Schedule, RECONCILE, func="reconcile.tasks.reconcile_pending", schedule_type="I",
         minutes=int(settings.RECONCILE_INTERVAL_MINUTES), repeats=-1, next_run=now)
    _put(Schedule, CLEANUP, func="reconcile.tasks.cleanup_expired", schedule_type="D",
         repeats=-1, next_run=next_jakarta_3am(now))


def delete_schedules(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[RECONCILE, CLEANUP]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reconcile", "0001_notificationretry"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
