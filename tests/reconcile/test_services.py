"""The reconcile run against the real simulator and Redis: fixes, backoff, outages, lock, re-applied notifications."""

import json
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from checkout import metrics as checkout_metrics
from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from paywatch_dev.servers import wait_until
from paywatch_dev.stack import ROOT
from reconcile import conf
from reconcile.models import NotificationRetry
from reconcile.runner import CIRCUIT_KEY, circuit_open_for
from reconcile.services import reconcile_run
from tests.reconcile.conftest import WAIT, payment_of

pytestmark = [pytest.mark.e2e]
NOT_TO_BE_MARKED = {"failed", "expired", "cancelled"}


def status_calls() -> float:
    return sum(checkout_metrics.gateway_calls.labels(op="status", result=r)._value.get()
               for r in ("ok", "not_found", "unavailable", "timeout", "rejected"))


def reconcile_events(order) -> list[PaymentEvent]:
    return list(PaymentEvent.objects.filter(payment__order=order, source=EventSource.RECONCILE).order_by("pk"))


def test_lost_webhook_is_fixed_and_the_next_check_backs_off(snap_order) -> None:
    paid = snap_order("settle")
    waiting = snap_order("pending")
    summary = reconcile_run(budget_seconds=60)
    assert (summary.checked, summary.fixed, summary.errors, summary.unavailable) == (2, 1, 0, 0)
    assert payment_of(paid).status == "success" and payment_of(paid).order.status == "processing"
    assert payment_of(paid).next_check_at is None  # no longer open: never asked again
    assert [e.outcome for e in reconcile_events(paid)] == [EventOutcome.APPLIED]
    still = payment_of(waiting)
    assert still.status == "pending" and still.va_number  # details copied from the status answer
    assert timezone.now() < still.next_check_at <= timezone.now() + timedelta(minutes=1)


def test_only_due_payments_are_checked(snap_order) -> None:
    due, later = snap_order("settle"), snap_order("settle")
    Payment.objects.filter(order=later).update(next_check_at=timezone.now() + timedelta(minutes=10))
    summary = reconcile_run(budget_seconds=60)
    assert summary.checked == 1
    assert (payment_of(due).status, payment_of(later).status) == ("success", "pending")
    assert reconcile_events(later) == []


def test_old_payment_is_scheduled_further_out(snap_order) -> None:
    old = snap_order("pending", age=timedelta(hours=5))
    reconcile_run(budget_seconds=60)
    delay = payment_of(old).next_check_at - timezone.now()
    assert timedelta(minutes=29) < delay <= timedelta(minutes=30)


def test_no_method_chosen_is_normal(snap_order) -> None:
    """Midtrans answers 404 until the customer picks a method: checked, unchanged, no error."""
    order = snap_order(None)
    summary = reconcile_run(budget_seconds=60)
    assert (summary.checked, summary.fixed, summary.errors) == (1, 0, 0)
    assert payment_of(order).status == "pending"
    assert [e.outcome for e in reconcile_events(order)] == [EventOutcome.DUPLICATE]


def test_a_denied_card_attempt_leaves_the_order_payable(snap_order) -> None:
    order = snap_order("deny")
    reconcile_run(budget_seconds=60)
    payment = payment_of(order)
    assert (payment.status, payment.order.status) == ("failed", "pending")
    assert payment.next_check_at is not None  # still open: the customer may pay another way


@pytest.mark.parametrize("mode", ["500", "503", "429", "html502", "timeout"])
def test_outage_opens_the_circuit_and_marks_nothing(sim, snap_order, redis_client, mode: str) -> None:
    """Midtrans down: a few calls, then none for the rest of the run; nothing changes; checks pushed out."""
    orders = [snap_order("settle") for _ in range(12)]
    sim.sim_config(error_rate=1.0, error_mode=mode)
    before = status_calls()
    started = timezone.now()
    summary = reconcile_run(budget_seconds=60, concurrency=2)
    calls = status_calls() - before
    assert summary.circuit_open and summary.unavailable >= conf.CIRCUIT_THRESHOLD
    assert calls <= conf.CIRCUIT_THRESHOLD + 2 - 1  # the threshold, plus what the other thread had in flight
    assert summary.checked == 0 and summary.skipped == len(orders) - summary.unavailable
    payments = [payment_of(o) for o in orders]
    assert {p.status for p in payments} == {"pending"}
    assert not PaymentEvent.objects.filter(outcome=EventOutcome.ERROR).exists()
    pushed = [p for p in payments if p.next_check_at > started + timedelta(seconds=59)]
    assert len(pushed) == summary.unavailable  # the ones that met the outage wait; the rest stay first in line
    # The circuit is open for every worker until T: a run meanwhile makes no call at all.
    assert 0 < circuit_open_for() <= conf.circuit_open_seconds()
    before = status_calls()
    assert reconcile_run(budget_seconds=60).circuit_open and status_calls() == before
    # Midtrans back and T passed (the key expires then): the next run takes the rest.
    sim.sim_config(error_rate=0.0)
    redis_client.delete(CIRCUIT_KEY)
    assert reconcile_run(budget_seconds=60).fixed == len(orders) - summary.unavailable


def test_flaky_midtrans_the_run_finishes_and_nothing_is_marked_wrongly(sim, snap_order) -> None:
    orders = [snap_order("settle") for _ in range(6)] + [snap_order("pending") for _ in range(6)]
    sim.sim_config(error_rate=0.3, error_mode="503")
    summary = reconcile_run(budget_seconds=60)
    assert summary.checked + summary.unavailable + summary.skipped == len(orders)
    statuses = {o.number: payment_of(o).status for o in orders}
    assert set(statuses.values()) <= {"pending", "success"}
    assert all(statuses[o.number] == "pending" for o in orders[6:])
    assert sum(s == "success" for s in statuses.values()) == summary.fixed


def test_no_time_left_leaves_everything_for_the_next_run(snap_order) -> None:
    orders = [snap_order("settle") for _ in range(3)]
    summary = reconcile_run(budget_seconds=0)
    assert (summary.checked, summary.skipped, summary.out_of_time) == (0, 3, True)
    assert {payment_of(o).status for o in orders} == {"pending"}


def test_a_held_lock_keeps_a_second_run_out(snap_order, redis_client) -> None:
    order = snap_order("settle")
    assert redis_client.set(conf.LOCK_KEY, "another-run", px=60_000)
    summary = reconcile_run(budget_seconds=60)
    assert summary.locked and summary.checked == 0
    assert payment_of(order).status == "pending" and reconcile_events(order) == []
    assert redis_client.get(conf.LOCK_KEY) == b"another-run"  # not released by the run that did not own it


def test_two_runs_started_together_only_one_checks(sim, snap_order) -> None:
    orders = [snap_order("settle") for _ in range(4)]
    sim.sim_config(status_latency_ms=300)
    barrier = threading.Barrier(2)
    summaries = []

    def run() -> None:
        barrier.wait()
        summaries.append(reconcile_run(budget_seconds=60))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(s.locked for s in summaries) == [False, True]
    assert sum(s.checked for s in summaries) == len(orders)
    assert [len(reconcile_events(o)) for o in orders] == [1] * len(orders)


KILLED_WORKER = """
import django
django.setup()
from reconcile.services import reconcile_run
reconcile_run(budget_seconds=1, lock_timeout=2)
"""


def test_a_killed_workers_lock_and_claim_expire_and_the_next_run_proceeds(sim, snap_order, redis_client) -> None:
    """The lock ends at its timeout; the payment the dead run claimed is due again when its claim's lease ends."""
    order = snap_order("settle")
    sim.sim_config(status_latency_ms=60_000)  # the worker hangs in its first call
    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER], cwd=ROOT,
                              env={**sim.env, "MIDTRANS_READ_TIMEOUT": "5"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: redis_client.exists(conf.LOCK_KEY) or worker.poll() is not None, 30)
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        # Its claim (a lease, set just before the call) shows it reached the payment; the call's start is
        # recorded only once the call ends.
        claimed = timezone.now() + timedelta(seconds=5)
        assert wait_until(lambda: Payment.objects.get(order=order).next_check_at > claimed, WAIT)
    finally:
        worker.kill()
        worker.wait(10)
    sim.sim_config(status_latency_ms=0)
    assert reconcile_run(budget_seconds=60).locked  # the dead worker's lock still stands…
    assert wait_until(lambda: not redis_client.exists(conf.LOCK_KEY), 10)  # …until its timeout
    lease_until = payment_of(order).next_check_at
    assert lease_until > timezone.now()  # claimed by the dead run: not checked twice meanwhile
    summary = reconcile_run(budget_seconds=60)
    assert not summary.locked and summary.checked == 0
    # The lease (its budget, two call timeouts and a margin: about 22 s here) ends; the next run takes it.
    summaries = []
    assert wait_until(lambda: summaries.append(reconcile_run(budget_seconds=60)) or summaries[-1].fixed,
                      timeout=60, interval=0.5)
    assert payment_of(order).status == "success"
    assert timezone.now() >= lease_until - timedelta(seconds=1)


def test_a_notification_that_failed_to_apply_is_reapplied(snap_order, stack) -> None:
    order = snap_order(None)
    Payment.objects.filter(order=order).update(next_check_at=timezone.now() + timedelta(hours=1))
    body = stack.sim("settle", order.number, notify="drop")
    payload = body["last_payload"]  # the signed notification the simulator dropped
    assert payload["transaction_status"] == "settlement" and payload["signature_key"]
    event = event_services.payment_event_record(
        source=EventSource.WEBHOOK, raw_body=json.dumps(payload), payload=payload, signature_valid=True)
    event_services.payment_event_fail(event_id=event.pk, error=RuntimeError("database is locked"))
    summary = reconcile_run(budget_seconds=60)
    assert summary.reapplied == 1 and summary.checked == 0  # not due: the stored notification did it
    event.refresh_from_db()
    assert event.outcome == EventOutcome.APPLIED
    assert payment_of(order).status == "success"
    assert NotificationRetry.objects.get(event=event).attempts == 1
    assert reconcile_run(budget_seconds=60).reapplied == 0  # once applied, never again


def test_a_notification_that_keeps_failing_is_retried_a_bounded_number_of_times(snap_order, monkeypatch) -> None:
    order = snap_order(None)
    Payment.objects.filter(order=order).update(next_check_at=timezone.now() + timedelta(hours=1))
    payload = {"order_id": order.number, "status_code": "200", "gross_amount": "85000.00",
               "transaction_status": "settlement", "currency": "IDR", "signature_key": "x"}
    event = event_services.payment_event_record(
        source=EventSource.WEBHOOK, raw_body=json.dumps(payload), payload=payload, signature_valid=True)
    event_services.payment_event_fail(event_id=event.pk, error=RuntimeError("boom"))

    def broken(**kwargs):
        raise RuntimeError("still broken")

    monkeypatch.setattr(payment_services, "payment_apply_with_confirmation", broken)
    for _ in range(conf.MAX_REAPPLY_ATTEMPTS + 2):
        reconcile_run(budget_seconds=60)
    assert NotificationRetry.objects.get(event=event).attempts == conf.MAX_REAPPLY_ATTEMPTS
    event.refresh_from_db()
    assert event.outcome == EventOutcome.ERROR and "still broken" in event.detail
    assert payment_of(order).status == "pending"


def test_an_unverified_notification_is_never_reapplied(snap_order) -> None:
    order = snap_order(None)
    Payment.objects.filter(order=order).update(next_check_at=timezone.now() + timedelta(hours=1))
    payload = {"order_id": order.number, "status_code": "200", "gross_amount": "85000.00",
               "transaction_status": "settlement", "signature_key": "forged"}
    event = event_services.payment_event_record(
        source=EventSource.WEBHOOK, raw_body=json.dumps(payload), payload=payload, signature_valid=False)
    event_services.payment_event_fail(event_id=event.pk, error=RuntimeError("boom"))
    assert reconcile_run(budget_seconds=60).reapplied == 0
    assert payment_of(order).status == "pending"


def test_a_wrong_server_key_stops_the_run_instead_of_hammering(snap_order, monkeypatch) -> None:
    from django.conf import settings

    orders = [snap_order("settle") for _ in range(8)]
    monkeypatch.setitem(settings.MIDTRANS, "SERVER_KEY", "SB-Mid-server-WRONG")
    before = status_calls()
    summary = reconcile_run(budget_seconds=60, concurrency=1)
    assert status_calls() - before == conf.CIRCUIT_THRESHOLD and summary.circuit_open
    assert {payment_of(o).status for o in orders} == {"pending"}
