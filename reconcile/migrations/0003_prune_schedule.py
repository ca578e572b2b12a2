"""Create the daily event-retention schedule (idempotent; reversible)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import migrations
from django.utils import timezone

PRUNE = "paywatch-prune-events"
JAKARTA = ZoneInfo("Asia/Jakarta")
AT = time(4, 0)  # after the 03:00 cleanup, in the quiet hours


def next_run_after(now: datetime) -> datetime:
    """Return the next 04:00 in Asia/Jakarta after ``now``."""
    local = now.astimezone(JAKARTA)
    candidate = datetime.combine(local.date(), AT, tzinfo=JAKARTA)
    return candidate if candidate > local else candidate + timedelta(days=1)


def create_schedule(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    # The name is not unique in django_q's table: keep one row for it.
    extra = Schedule.objects.filter(name=PRUNE).order_by("pk").values_list("pk", flat=True)[1:]
    Schedule.objects.filter(pk__in=list(extra)).delete()
    Schedule.objects.update_or_create(name=PRUNE, defaults={
        "func": "reconcile.tasks.prune_events", "schedule_type": "D", "repeats": -1,
        "next_run": next_run_after(timezone.now()),
    })


def delete_schedule(apps, schema_editor) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name=PRUNE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reconcile", "0002_schedules"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
