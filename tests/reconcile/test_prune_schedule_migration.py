"""The daily event-retention schedule: exactly one after migrate, idempotent, reversible."""

import importlib
from datetime import time
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db(transaction=True)
migration = importlib.import_module("reconcile.migrations.0003_prune_schedule")
NAME = "paywatch-prune-events"


def migrate_again() -> None:
    # From before every schedule: the test database's tables are emptied between tests.
    call_command("migrate", "reconcile", "0001", verbosity=0)
    call_command("migrate", "reconcile", verbosity=0)


def test_the_prune_schedule_exists_exactly_once_daily() -> None:
    migrate_again()
    (schedule,) = Schedule.objects.filter(name=NAME)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == ("reconcile.tasks.prune_events", "D", -1)
    assert schedule.next_run.astimezone(ZoneInfo("Asia/Jakarta")).time() == time(4, 0)


def test_running_it_again_keeps_one_row() -> None:
    migrate_again()
    Schedule.objects.create(name=NAME, func="reconcile.tasks.prune_events", schedule_type="D")
    migration.create_schedule(apps, None)
    migration.create_schedule(apps, None)
    assert Schedule.objects.filter(name=NAME).count() == 1


def test_reverse_removes_it_and_leaves_the_others() -> None:
    migrate_again()
    call_command("migrate", "reconcile", "0002", verbosity=0)
    assert not Schedule.objects.filter(name=NAME).exists()
    assert Schedule.objects.filter(name="paywatch-reconcile").count() == 1
    call_command("migrate", "reconcile", verbosity=0)
