"""The whole layer over real processes: a lost webhook is fixed by the scheduled reconcile in a qcluster
worker, and the customer's websocket sees it with source "reconcile"."""

import importlib
import json

import pytest
from django.apps import apps
from django.utils import timezone
from django_q.models import Schedule
from websockets.sync.client import connect

from checkout.models import EventSource, PaymentEvent
from paywatch_dev.servers import wait_until
from tests.reconcile.conftest import WAIT

pytestmark = [pytest.mark.e2e]
schedules = importlib.import_module("reconcile.migrations.0002_schedules")
# qcluster's guard loop first looks at the schedules ~30 s after it starts.
WAIT_FOR_SCHEDULER = 90.0


def test_lost_webhook_is_fixed_by_the_scheduled_reconcile_and_pushed_live(sim, products) -> None:
    schedules.create_schedules(apps, None)  # what migrate created (a transactional test flushes it)
    Schedule.objects.filter(name="paywatch-reconcile").update(minutes=1, next_run=timezone.now())
    order = sim.checkout("kopi-gayo")
    sim.sim("settle", order.number, notify="drop")
    assert sim.sim_order(order.number)["status"] == "settlement"

    with connect(order.ws_url, origin=sim.web_url, open_timeout=10) as socket:
        snapshot = json.loads(socket.recv(timeout=10))
        assert (snapshot["payment_status"], snapshot["order_status"]) == ("pending", "pending")
        worker = sim.start_worker(RECONCILE_INTERVAL_MINUTES="1")
        try:
            message = json.loads(socket.recv(timeout=WAIT_FOR_SCHEDULER))
        finally:
            worker.stop()
    assert message.items() >= {  # plus the page's state and details
        "type": "payment.status", "order": order.number, "order_status": "processing",
        "payment_status": "success", "version": snapshot["version"] + 1, "source": "reconcile",
    }.items()
    assert PaymentEvent.objects.filter(payment__order__number=order.number, source=EventSource.RECONCILE,
                                       outcome="applied").count() == 1
    # It was the schedule that ran: django-q2 moved it to its next run.
    assert wait_until(lambda: Schedule.objects.get(name="paywatch-reconcile").next_run > timezone.now(), WAIT)
