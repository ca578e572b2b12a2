"""One reconcile run shared by two real qcluster workers: chunks on both, each due payment checked once, one shared
calls-per-second ceiling, and a worker killed with ``kill -9`` mid-chunk loses no payment."""

import os
import signal
from collections import Counter
from collections.abc import Iterator

import pytest
from django_q.conf import Conf
from django_q.models import Task
from django_q.status import Stat

from checkout.models import EventSource, Payment, PaymentEvent
from paywatch_dev.servers import wait_until
from reconcile import chunks
from reconcile.budget import SharedBudget
from reconcile.services import reconcile_dispatch

pytestmark = [pytest.mark.e2e]

CEILING = 10           # calls per second, shared: the two workers could do ~160/s at 50 ms without it
CONCURRENCY = 4        # threads per worker
PAYMENTS = 40
CHUNK = 4


@pytest.fixture
def two_workers(sim, monkeypatch) -> Iterator[list]:
    """Two qcluster processes (one worker process each) with the same shared ceiling, both up."""
    # django-q2 signs tasks with the SECRET_KEY it read at import; the stack's processes have their own.
    monkeypatch.setattr(Conf, "SECRET_KEY", sim.env["SECRET_KEY"])
    env = {"Q_WORKERS": "1", "RECONCILE_CONCURRENCY": str(CONCURRENCY),
           "RECONCILE_MAX_CALLS_PER_SECOND": str(CEILING)}
    workers = [sim.start_worker(**env), sim.start_worker(**env)]
    try:
        assert wait_until(lambda: len(Stat.get_all()) >= 2, timeout=60), "the two clusters never reported"
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def reconcile_events() -> Counter:
    """Return {payment id: reconcile events}."""
    return Counter(PaymentEvent.objects.filter(source=EventSource.RECONCILE).values_list("payment_id", flat=True))


def all_checked(payment_ids: set[int]) -> bool:
    return set(reconcile_events()) >= payment_ids and not Payment.objects.filter(
        pk__in=payment_ids, status="pending").exists()


def test_two_workers_share_one_run_each_due_payment_once_under_one_ceiling(sim, snap_order, two_workers,
                                                                          redis_client) -> None:
    orders = [snap_order("settle") for _ in range(PAYMENTS)]  # every webhook lost
    payment_ids = set(Payment.objects.filter(order__in=orders).values_list("pk", flat=True))
    sim.sim_config(status_latency_ms=50)
    first_second = int(redis_client.time()[0])

    summary = reconcile_dispatch(chunk_size=CHUNK)

    assert (summary.queued, summary.chunks) == (PAYMENTS, PAYMENTS // CHUNK)
    assert wait_until(lambda: all_checked(payment_ids), timeout=120)
    # Exactly once: one reconcile event per payment, all of them applied.
    assert set(reconcile_events().values()) == {1}
    assert set(Payment.objects.filter(pk__in=payment_ids).values_list("status", flat=True)) == {"success"}
    # Both workers took chunks of the one run.
    group = f"reconcile-{summary.run_id}"
    assert wait_until(lambda: Task.objects.filter(group=group).count() == summary.chunks, timeout=30)
    results = [task.result for task in Task.objects.filter(group=group)]
    assert len({result["worker"] for result in results}) == 2
    assert sum(result["checked"] for result in results) == PAYMENTS
    # The ceiling held across both: by the calls' own times (each set just before its call)…
    per_second = Counter(int(at.timestamp()) for at in
                         Payment.objects.filter(pk__in=payment_ids).values_list("last_checked_at", flat=True))
    assert max(per_second.values()) <= CEILING, sorted(per_second.items())
    # …and by the slots the shared budget granted, whichever worker asked.
    assert SharedBudget.busiest(first_second, int(redis_client.time()[0]))[1] <= CEILING


def test_a_worker_killed_mid_chunk_loses_no_payment(sim, snap_order, two_workers) -> None:
    orders = [snap_order("settle") for _ in range(PAYMENTS)]
    payment_ids = set(Payment.objects.filter(order__in=orders).values_list("pk", flat=True))
    sim.sim_config(status_latency_ms=1000)  # each chunk's calls take a second: there is a "mid-chunk"
    # Short chunks, so that the killed one's claim (its lease) ends within the test.
    dispatch = {"chunk_size": CHUNK, "chunk_budget_seconds": 4}
    reconcile_dispatch(**dispatch)

    def busy_worker() -> int | None:
        running = chunks.running_on()
        return int(next(iter(running.values())).rsplit(":", 1)[1]) if running and reconcile_events() else None

    pid = wait_until(busy_worker, timeout=60)
    assert pid, "no chunk was seen running"
    os.kill(pid, signal.SIGKILL)  # the worker process running the chunk, as the OOM killer would
    sim.sim_config(status_latency_ms=50)

    def covered() -> bool:
        # The scheduler's job, done here every second: a run takes whatever is due again (the killed chunk's
        # payments once its lease ends); it queues nothing while the queue still holds the first run's chunks.
        if all_checked(payment_ids):
            return True
        reconcile_dispatch(**dispatch)
        return False

    assert wait_until(covered, timeout=120)
    assert set(Payment.objects.filter(pk__in=payment_ids).values_list("status", flat=True)) == {"success"}
    # A payment is asked twice only if its call was in flight when the worker died (at most its threads).
    asked_twice = [pk for pk, count in reconcile_events().items() if count > 1]
    assert len(asked_twice) <= CONCURRENCY and max(reconcile_events().values()) <= 2
    assert all(worker.alive() for worker in two_workers)  # django-q2 replaced the killed worker process
