"""The expiry cleanup: confirm with Midtrans first, then expire there and here; never expire a paid order."""

import pytest

from checkout.models import EventOutcome, EventSource, PaymentEvent
from reconcile.services import payments_expire_overdue
from tests.reconcile.conftest import payment_of

pytestmark = [pytest.mark.e2e]


def test_paid_but_unnotified_overdue_payment_becomes_success_not_expired(sim, snap_order) -> None:
    order = snap_order("settle", overdue=True)
    summary = payments_expire_overdue()
    assert (summary.paid, summary.expired) == (1, 0)
    payment = payment_of(order)
    assert (payment.status, payment.order.status) == ("success", "processing")
    assert sim.sim_order(order.number)["status"] == "settlement"
    assert not PaymentEvent.objects.filter(payment=payment, transaction_status="expire").exists()


def test_unpaid_overdue_payment_is_expired_at_both_ends(sim, snap_order) -> None:
    order = snap_order("pending", overdue=True)
    summary = payments_expire_overdue()
    assert (summary.paid, summary.expired, summary.errors) == (0, 1, 0)
    payment = payment_of(order)
    assert (payment.status, payment.order.status, payment.next_check_at) == ("expired", "expired", None)
    assert sim.sim_order(order.number)["status"] == "expire"
    # Midtrans's /expire sends its own notification: the webhook and the cleanup race to apply it, once.
    events = PaymentEvent.objects.filter(payment=payment, transaction_status="expire")
    assert events.filter(source=EventSource.CLEANUP).exists()
    assert [(e.status_before, e.status_after) for e in events.filter(outcome=EventOutcome.APPLIED)] == [
        ("pending", "expired")]


def test_overdue_payment_with_no_method_chosen_is_expired(sim, snap_order) -> None:
    """Midtrans answers 404 to both the status and the expire call: normal, and it ends here."""
    order = snap_order(None, overdue=True)
    assert payments_expire_overdue().expired == 1
    assert payment_of(order).status == "expired"
    assert sim.sim_order(order.number)["status"] is None


def test_payment_not_yet_overdue_is_left_alone(sim, snap_order) -> None:
    order = snap_order("pending")
    assert payments_expire_overdue().rows == []
    assert payment_of(order).status == "pending"
    assert sim.sim_order(order.number)["status"] == "pending"


def test_dry_run_changes_nothing_anywhere(sim, snap_order) -> None:
    paid, unpaid = snap_order("settle", overdue=True), snap_order("pending", overdue=True)
    summary = payments_expire_overdue(dry_run=True)
    assert sorted(r.action for r in summary.rows) == ["would expire", "would mark paid"]
    assert (payment_of(paid).status, payment_of(unpaid).status) == ("pending", "pending")
    assert sim.sim_order(unpaid.number)["status"] == "pending"
    assert not PaymentEvent.objects.filter(source=EventSource.CLEANUP).exists()


@pytest.mark.parametrize("mode", ["503", "timeout"])
def test_nothing_is_expired_while_midtrans_cannot_confirm(sim, snap_order, mode: str) -> None:
    orders = [snap_order("settle", overdue=True), snap_order("pending", overdue=True)]
    sim.sim_config(error_rate=1.0, error_mode=mode)
    summary = payments_expire_overdue(concurrency=1)
    assert summary.expired == 0 and summary.unavailable >= 1
    assert {payment_of(o).status for o in orders} == {"pending"}
    sim.sim_config(error_rate=0.0)
    assert [sim.sim_order(o.number)["status"] for o in orders] == ["settlement", "pending"]
