"""The coordinator and the claim, without workers: what a dispatched run queues, and when it queues nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf

from checkout.models import Payment
from reconcile import runner
from reconcile.services import payments_claim, payments_release, reconcile_dispatch
from tests.reconcile.conftest import payment_of

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def broker(sim, monkeypatch):
    """The task queue, empty before and after (no worker runs in these tests)."""
    monkeypatch.setattr(Conf, "SECRET_KEY", sim.env["SECRET_KEY"])
    queue = get_broker()
    queue.purge_queue()
    yield queue
    queue.purge_queue()


def test_a_run_queues_its_due_payments_in_chunks(snap_order, broker) -> None:
    orders = [snap_order("settle") for _ in range(5)]
    later = snap_order("settle")
    Payment.objects.filter(order=later).update(next_check_at=timezone.now() + timedelta(minutes=10))
    summary = reconcile_dispatch(chunk_size=2)
    assert (summary.queued, summary.chunks, summary.busy, summary.circuit_open) == (5, 3, False, False)
    assert broker.queue_size() == 3
    # Queuing claims nothing: the chunk claims when it starts, so a queued payment still counts in the lag.
    assert all(payment_of(o).next_check_at <= timezone.now() for o in orders)


def test_nothing_is_queued_while_the_last_runs_chunks_wait(snap_order, broker) -> None:
    snap_order("settle")
    assert reconcile_dispatch(chunk_size=10).chunks == 1
    again = reconcile_dispatch(chunk_size=10)
    assert again.busy and again.chunks == 0 and broker.queue_size() == 1


def test_nothing_is_queued_while_the_shared_circuit_is_open(snap_order, broker, redis_client) -> None:
    snap_order("settle")
    seconds, micros = redis_client.time()
    redis_client.set(runner.CIRCUIT_KEY, seconds * 1_000_000 + micros + 30_000_000, px=30_000)
    summary = reconcile_dispatch()
    assert summary.circuit_open and summary.chunks == 0 and broker.queue_size() == 0


def test_a_payment_is_claimed_once_and_released_first_in_line(snap_order) -> None:
    payment = payment_of(snap_order("settle"))
    cutoff = timezone.now()
    lease = cutoff + timedelta(seconds=90)
    assert [p.pk for p in payments_claim(payment_ids=[payment.pk], cutoff=cutoff, lease_until=lease)] == [payment.pk]
    # A second chunk (a retried one, or another run's) finds it claimed: not due, not checked twice.
    other = lease + timedelta(microseconds=1)
    assert payments_claim(payment_ids=[payment.pk], cutoff=cutoff, lease_until=other) == []
    assert payments_release(payment_ids=[payment.pk], lease_until=lease, due_at=cutoff) == 1
    assert payment_of(payment.order).next_check_at == cutoff
    # Released (due at the cutoff again): the next run claims it.
    assert payments_claim(payment_ids=[payment.pk], cutoff=cutoff, lease_until=other) != []
