"""A Snap page that expires before a method was chosen sends no notification: the reconcile ends it at its expiry
(Midtrans asked first), not the daily cleanup a day later, and an open page sees it."""

import json

import pytest
from websockets.sync.client import connect

from checkout.models import EventOutcome, EventSource, PaymentEvent
from reconcile.services import reconcile_run
from tests.reconcile.conftest import payment_of

pytestmark = [pytest.mark.e2e]


def test_the_reconcile_expires_an_overdue_snap_order_with_no_method_chosen(sim, snap_order) -> None:
    order = snap_order(None, overdue=True)
    fresh = snap_order(None)
    ws_url = sim.web_url.replace("http", "ws", 1) + f"/ws/orders/{order.number}/?t={order.access_token}"
    with connect(ws_url, origin=sim.web_url, open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=15))["payment_status"] == "pending"
        summary = reconcile_run(budget_seconds=20)
        message = json.loads(socket.recv(timeout=15))
    assert (message["payment_status"], message["order_status"], message["source"]) == ("expired", "expired",
                                                                                     "cleanup")
    assert summary.expired == 1
    assert (payment_of(order).status, payment_of(fresh).status) == ("expired", "pending")
    # Checked with Midtrans first (its 404: no method chosen), then expired.
    events = list(PaymentEvent.objects.filter(payment=payment_of(order)).order_by("id"))
    assert [(e.source, e.outcome) for e in events] == [
        (EventSource.CLEANUP, EventOutcome.DUPLICATE), (EventSource.CLEANUP, EventOutcome.APPLIED)]
    assert "no payment method chosen" in events[0].detail
    assert sim.sim_order(order.number)["status"] is None


def test_the_reconcile_marks_an_overdue_but_paid_order_paid_not_expired(sim, snap_order) -> None:
    order = snap_order("settle", overdue=True)
    assert reconcile_run(budget_seconds=20).expired == 0
    assert payment_of(order).status == "success"
