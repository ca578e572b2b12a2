"""The schedules exist once each after migrate, and migrating again does not duplicate them."""

import importlib
from datetime import time
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db(transaction=True)
migration = importlib.import_module("reconcile.migrations.0002_schedules")
NAMES = ("paywatch-reconcile", "paywatch-cleanup")


def migrate_schedules_again() -> None:
    call_command("migrate", "reconcile", "0001", verbosity=0)
    call_command("migrate", "reconcile", verbosity=0)


def test_each_schedule_exists_exactly_once_after_migrate() -> None:
    migrate_schedules_again()
    assert {name: Schedule.objects.filter(name=name).count() for name in NAMES} == dict.fromkeys(NAMES, 1)


def test_running_the_migration_again_keeps_one_row_per_name() -> None:
    migrate_schedules_again()
    Schedule.objects.create(name="paywatch-cleanup", func="reconcile.tasks.cleanup_expired", schedule_type="D")
    migration.create_schedules(apps, None)
    migration.create_schedules(apps, None)
    assert {name: Schedule.objects.filter(name=name).count() for name in NAMES} == dict.fromkeys(NAMES, 1)


def test_reverse_removes_them() -> None:
    migrate_schedules_again()
    call_command("migrate", "reconcile", "0001", verbosity=0)
    assert not Schedule.objects.filter(name__in=NAMES).exists()
    call_command("migrate", "reconcile", verbosity=0)


def test_reconcile_every_interval_and_cleanup_daily_at_3am_jakarta() -> None:
    migrate_schedules_again()
    reconcile = Schedule.objects.get(name="paywatch-reconcile")
    cleanup = Schedule.objects.get(name="paywatch-cleanup")
    assert (reconcile.func, reconcile.schedule_type, reconcile.minutes, reconcile.repeats) == (
        "reconcile.tasks.reconcile_pending", "I", settings.RECONCILE_INTERVAL_MINUTES, -1)
    assert (cleanup.func, cleanup.schedule_type, cleanup.repeats) == ("reconcile.tasks.cleanup_expired", "D", -1)
    assert cleanup.next_run.astimezone(ZoneInfo("Asia/Jakarta")).time() == time(3, 0)
