"""RECONCILE_INTERVAL_MINUTES takes effect at every migrate and qcluster start, not only when 0002 first ran."""

import importlib
from datetime import timedelta
from unittest import mock

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone
from django_q.models import Schedule
from django_q.signals import post_spawn

from paywatch_dev.servers import wait_until
from reconcile import schedules

pytestmark = pytest.mark.django_db(transaction=True)
migration = importlib.import_module("reconcile.migrations.0002_schedules")


def reconcile_schedule() -> Schedule:
    return Schedule.objects.get(name=schedules.RECONCILE_SCHEDULE)


@pytest.fixture
def created(settings) -> Schedule:
    """The schedules as migrate created them with a 5-minute interval (a transactional test flushes them)."""
    settings.RECONCILE_INTERVAL_MINUTES = 5
    migration.create_schedules(apps, None)
    return reconcile_schedule()


def test_the_name_is_the_migrations() -> None:
    assert schedules.RECONCILE_SCHEDULE == migration.RECONCILE


def test_migrate_applies_a_changed_interval(created, settings) -> None:
    settings.RECONCILE_INTERVAL_MINUTES = 12
    call_command("migrate", verbosity=0)  # nothing to migrate: post_migrate still runs
    assert reconcile_schedule().minutes == 12
    assert Schedule.objects.filter(name=schedules.RECONCILE_SCHEDULE).count() == 1


def test_a_worker_start_applies_a_changed_interval(created, settings) -> None:
    settings.RECONCILE_INTERVAL_MINUTES = 2
    post_spawn.send(sender="django_q", proc_name="Process-1")
    assert reconcile_schedule().minutes == 2


def test_the_same_interval_writes_nothing(created) -> None:
    assert schedules.reconcile_schedule_sync(minutes=5) is False
    assert schedules.reconcile_schedule_sync(minutes=7) is True
    assert schedules.reconcile_schedule_sync(minutes=7) is False


def test_a_shorter_interval_pulls_the_next_run_in_and_a_longer_one_leaves_it(created) -> None:
    now = timezone.now()
    Schedule.objects.filter(pk=created.pk).update(next_run=now + timedelta(minutes=60))
    schedules.reconcile_schedule_sync(minutes=3, now=now)
    assert reconcile_schedule().next_run == now + timedelta(minutes=3)
    schedules.reconcile_schedule_sync(minutes=30, now=now)
    assert (reconcile_schedule().minutes, reconcile_schedule().next_run) == (30, now + timedelta(minutes=3))


def test_it_never_creates_the_schedule(created) -> None:
    Schedule.objects.filter(name=schedules.RECONCILE_SCHEDULE).delete()
    assert schedules.reconcile_schedule_sync(minutes=9) is False
    assert not Schedule.objects.filter(name=schedules.RECONCILE_SCHEDULE).exists()


def test_migrating_back_before_the_schedule_and_forward_again_keeps_one_row(created, settings) -> None:
    settings.RECONCILE_INTERVAL_MINUTES = 4
    call_command("migrate", "reconcile", "0001", verbosity=0)
    assert not Schedule.objects.filter(name=schedules.RECONCILE_SCHEDULE).exists()
    call_command("migrate", "reconcile", verbosity=0)
    assert list(Schedule.objects.filter(name=schedules.RECONCILE_SCHEDULE).values_list("minutes", flat=True)) == [4]


def test_a_database_error_never_stops_a_worker_from_starting(created, settings) -> None:
    settings.RECONCILE_INTERVAL_MINUTES = 2
    with mock.patch.object(schedules, "reconcile_schedule_sync", side_effect=DatabaseError("locked")):
        post_spawn.send(sender="django_q", proc_name="Process-1")
    assert reconcile_schedule().minutes == 5


@pytest.mark.e2e
def test_a_real_qcluster_applies_the_interval_of_its_environment(stack, created) -> None:
    worker = stack.start_worker(RECONCILE_INTERVAL_MINUTES="3")
    try:
        assert wait_until(lambda: reconcile_schedule().minutes == 3, timeout=60)
    finally:
        worker.stop()
