"""Merchant actions (approve, deny, cancel, refund) from ``manage.py payments`` and the admin, against the real
simulator: the gateway call, the result applied through the one writer as an ``admin`` event, pushed live.

The simulator's notifications are off in most of these tests so that what reaches the socket is the action's
own result (source ``admin``), not the webhook racing it; one test leaves them on and sees the change applied once.
"""

import json
from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from websockets.sync.client import connect

from checkout.models import EventOutcome, Payment, PaymentEvent, Refund, RefundStatus
from checkout.states import ACTIONS, PaymentAction, PaymentStatus, actions_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT = 15.0


@pytest.fixture
def sim(stack) -> Iterator:
    """The stack, with the simulator's notifications off (the action itself must push)."""
    stack.sim_config(notifications=False, error_rate=0.0, fee=0)
    yield stack
    stack.sim_config(notifications=True, error_rate=0.0, fee=0)


class Watcher:
    """The customer's page: a websocket opened before the action, read until a status arrives."""

    def __init__(self, checkout) -> None:
        origin = checkout.ws_url.replace("ws://", "http://", 1).split("/ws/")[0]
        self.socket = connect(checkout.ws_url, origin=origin, open_timeout=10)
        self.snapshot = self.next()

    def next(self) -> dict:
        return json.loads(self.socket.recv(timeout=WAIT))

    def wait_for(self, status: str) -> dict:
        seen = []
        while True:
            message = self.next()
            seen.append(message)
            if message.get("type") == "payment.status" and message.get("payment_status") == status:
                return message
            assert len(seen) < 20, seen

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def watch() -> Iterator:
    opened: list[Watcher] = []

    def open_(checkout) -> Watcher:
        opened.append(Watcher(checkout))
        return opened[-1]

    yield open_
    for watcher in opened:
        watcher.close()


def payments(*args: str) -> str:
    out = StringIO()
    call_command("payments", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        payments(*args)
    return info.value


def payment_of(checkout) -> Payment:
    return Payment.objects.select_related("order").get(order__number=checkout.number)


def settled(sim, watch):
    """An order paid by VA (settled), with the customer's page open on it."""
    checkout = sim.checkout()
    sim.sim("settle", checkout.number, notify="drop", payment_type="bank_transfer")
    payments("check-status", checkout.number)
    assert payment_of(checkout).status == "success"
    return checkout, watch(checkout)


def challenged(sim, watch):
    checkout = sim.checkout()
    sim.sim("challenge", checkout.number, notify="drop")
    payments("check-status", checkout.number)
    assert payment_of(checkout).status == "challenge"
    return checkout, watch(checkout)


def last_applied(checkout) -> PaymentEvent:
    return PaymentEvent.objects.filter(order_number=checkout.number, outcome=EventOutcome.APPLIED).latest("id")


# --- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "order_status", "offered"), [
    ("pending", "pending", ["cancel"]),
    ("challenge", "pending", ["approve", "deny", "cancel"]),
    ("success", "processing", ["refund"]),
    ("partially_refunded", "processing", ["refund"]),
    ("failed", "pending", []),
    ("refunded", "refunded", []),
    ("cancelled", "cancelled", []),
    ("expired", "expired", []),
])
def test_actions_offered_by_status_come_from_the_table(status, order_status, offered) -> None:
    assert sorted(actions_for(status, order_status)) == sorted(offered)
    assert set(ACTIONS) == set(PaymentAction) and all(s in PaymentStatus.values for v in ACTIONS.values() for s in v)


# --- the command ----------------------------------------------------------------------------------


def test_approve_makes_a_challenged_card_paid_and_pushes_it(sim, watch) -> None:
    checkout, page = challenged(sim, watch)
    out = payments("approve", checkout.number)
    message = page.wait_for("success")
    assert (message["source"], message["order_status"]) == ("admin", "processing")
    assert "challenge → success (applied)" in out
    assert (sim.sim_order(checkout.number)["status"], sim.sim_order(checkout.number)["fraud_status"]) == (
        "capture", "accept")
    event = last_applied(checkout)
    assert (event.source, event.status_before, event.status_after) == ("admin", "challenge", "success")
    assert json.loads(event.raw_body)["action"] == "approve"


def test_deny_fails_the_card_attempt_and_leaves_the_order_payable(sim, watch) -> None:
    checkout, page = challenged(sim, watch)
    payments("deny", checkout.number)
    message = page.wait_for("failed")
    assert (message["source"], message["order_status"]) == ("admin", "pending")
    assert sim.sim_order(checkout.number)["status"] == "deny"


def test_cancel_a_pending_payment(sim, watch) -> None:
    checkout = sim.checkout()
    sim.sim("pending", checkout.number, notify="drop")
    page = watch(checkout)
    payments("cancel", checkout.number)
    message = page.wait_for("cancelled")
    assert (message["source"], message["order_status"]) == ("admin", "cancelled")
    assert sim.sim_order(checkout.number)["status"] == "cancel"


def test_cancel_with_no_method_chosen_is_refused_clearly(sim) -> None:
    checkout = sim.checkout()
    error = refused("cancel", checkout.number)
    assert error.returncode == 1 and "not chosen a payment method" in str(error)
    assert payment_of(checkout).status == "pending"


def test_actions_the_table_does_not_offer_are_refused_without_calling_midtrans(sim, watch) -> None:
    checkout, _ = settled(sim, watch)
    for action in ("approve", "deny", "cancel"):
        error = refused(action, checkout.number)
        assert error.returncode == 1 and f"cannot {action} a payment that is success" in str(error)
    assert sim.sim_order(checkout.number)["status"] == "settlement"


def test_full_refund_by_default(sim, watch) -> None:
    checkout, page = settled(sim, watch)
    out = payments("refund", checkout.number, "--reason", "out of stock")
    message = page.wait_for("refunded")
    assert (message["source"], message["order_status"]) == ("admin", "refunded")
    assert "0 remains" in out
    transaction = sim.sim_order(checkout.number)
    assert (transaction["status"], transaction["refunded_amount"]) == ("refund", 85_000)
    refund = Refund.objects.get(payment__order__number=checkout.number)
    assert (refund.amount, refund.status, refund.reason) == (85_000, RefundStatus.DONE, "out of stock")
    assert transaction["refunds"][0]["refund_key"] == refund.refund_key


def test_partial_refunds_then_the_rest(sim, watch) -> None:
    checkout, page = settled(sim, watch)
    payments("refund", checkout.number, "--amount", "10000")
    message = page.wait_for("partially_refunded")
    assert (message["source"], message["order_status"]) == ("admin", "processing")
    out = payments("refund", checkout.number, "--amount", "5000")
    assert "70000 remains" in out
    payments("refund", checkout.number)  # what remains
    page.wait_for("refunded")
    assert sim.sim_order(checkout.number)["refunded_amount"] == 85_000
    assert [r.amount for r in Refund.objects.filter(payment__order__number=checkout.number)] == [10_000, 5_000, 70_000]


def test_a_refund_repeated_twice_refunds_once(sim, watch) -> None:
    checkout, page = settled(sim, watch)
    payments("refund", checkout.number, "--amount", "10000")
    page.wait_for("partially_refunded")
    again = payments("refund", checkout.number, "--amount", "10000")
    assert "already made" in again and "nothing sent" in again
    assert sim.sim_order(checkout.number)["refunded_amount"] == 10_000
    assert Refund.objects.filter(payment__order__number=checkout.number).count() == 1
    # --again is how a second refund of the same amount is asked for: a new key.
    payments("refund", checkout.number, "--amount", "10000", "--again")
    assert sim.sim_order(checkout.number)["refunded_amount"] == 20_000


def test_a_retried_refund_whose_answer_was_lost_is_deduplicated_by_midtrans(sim, watch) -> None:
    """The command died after Midtrans refunded: the row is still "requested"; the retry sends the same key."""
    from checkout import actions, gateway

    checkout, page = settled(sim, watch)
    payment = payment_of(checkout)
    key = actions.refund_key_for(checkout.number, 1, 10_000)
    Refund.objects.create(payment=payment, number=1, refund_key=key, amount=10_000)
    gateway.transaction_refund(checkout.number, refund_key=key, amount=10_000)  # made; the answer "lost"
    payments("refund", checkout.number, "--amount", "10000")
    page.wait_for("partially_refunded")
    transaction = sim.sim_order(checkout.number)
    assert (transaction["refunded_amount"], len(transaction["refunds"])) == (10_000, 1)
    assert Refund.objects.get(payment=payment).status == RefundStatus.DONE


def test_full_refund_repeated_is_refused_once_nothing_remains(sim, watch) -> None:
    checkout, page = settled(sim, watch)
    payments("refund", checkout.number)
    page.wait_for("refunded")
    error = refused("refund", checkout.number)
    assert error.returncode == 1 and "cannot refund a payment that is refunded" in str(error)
    assert sim.sim_order(checkout.number)["refunded_amount"] == 85_000


def test_refund_larger_than_what_remains_is_refused_and_nothing_changes(sim, watch) -> None:
    checkout, _ = settled(sim, watch)
    payments("refund", checkout.number, "--amount", "80000")
    error = refused("refund", checkout.number, "--amount", "10000")
    assert error.returncode == 1 and "only 5000 of 85000 remains" in str(error)
    assert sim.sim_order(checkout.number)["refunded_amount"] == 80_000
    assert Refund.objects.filter(payment__order__number=checkout.number).count() == 1


def test_refund_before_settlement_is_refused(sim, watch) -> None:
    """Pending: the table refuses. A card captured but not settled: Midtrans answers 412; nothing changes."""
    pending = sim.checkout()
    sim.sim("pending", pending.number, notify="drop")
    error = refused("refund", pending.number)
    assert error.returncode == 1 and "cannot refund a payment that is pending" in str(error)

    captured = sim.checkout()
    sim.sim("settle", captured.number, notify="drop", payment_type="credit_card")
    payments("check-status", captured.number)
    assert (payment_of(captured).status, sim.sim_order(captured.number)["status"]) == ("success", "capture")
    version = payment_of(captured).version
    error = refused("refund", captured.number)
    assert error.returncode == 1 and "412" in str(error) and "only a settled payment can be refunded" in str(error)
    after = payment_of(captured)
    assert (after.status, after.version) == ("success", version)
    assert Refund.objects.get(payment=after).status == RefundStatus.REFUSED
    assert sim.sim_order(captured.number)["refunded_amount"] == 0


def test_unknown_order_exits_1_and_a_bad_amount_is_refused_before_midtrans(sim) -> None:
    """A bad amount is a usage error: exit 2 from the command line (tests/reconcile/test_command.py)."""
    error = refused("approve", "NOPE-1")
    assert error.returncode == 1 and "Unknown order 'NOPE-1'" in str(error)
    checkout = sim.checkout()
    assert "argument --amount" in str(refused("refund", checkout.number, "--amount", "12.5"))
    assert not Refund.objects.filter(payment__order__number=checkout.number).exists()


def test_midtrans_unavailable_exits_3_and_the_retry_uses_the_same_key(sim, watch) -> None:
    checkout, page = settled(sim, watch)
    sim.sim_config(error_rate=1.0, error_mode="503")
    try:
        error = refused("refund", checkout.number, "--amount", "10000")
    finally:
        sim.sim_config(error_rate=0.0)
    assert error.returncode == 3
    first = Refund.objects.get(payment__order__number=checkout.number)
    assert first.status == RefundStatus.REQUESTED
    payments("refund", checkout.number, "--amount", "10000")
    page.wait_for("partially_refunded")
    assert Refund.objects.get(pk=first.pk).status == RefundStatus.DONE
    assert sim.sim_order(checkout.number)["refunds"][0]["refund_key"] == first.refund_key


def test_with_notifications_on_the_change_is_applied_once(stack, watch) -> None:
    stack.sim_config(notifications=True, error_rate=0.0, fee=0)
    checkout = stack.checkout()
    stack.sim("settle", checkout.number, notify="drop", payment_type="bank_transfer")
    payments("check-status", checkout.number)
    page = watch(checkout)
    payments("refund", checkout.number)
    page.wait_for("refunded")
    stack.control.order(checkout.number, wait_attempts=1)  # the refund's notification reached the webhook
    applied = PaymentEvent.objects.filter(order_number=checkout.number, outcome=EventOutcome.APPLIED,
                                          status_after="refunded")
    assert applied.count() == 1


# --- the admin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def action_url(payment: Payment, action: str) -> str:
    return f"/admin/checkout/payment/{payment.pk}/actions/{action}/"


def test_admin_offers_only_the_actions_the_table_allows(admin_client, sim, watch) -> None:
    checkout, _ = challenged(sim, watch)
    page = admin_client.get(f"/admin/checkout/payment/{payment_of(checkout).pk}/change/").content.decode()
    assert all(f'data-action="{a}"' in page for a in ("approve", "deny", "cancel"))
    assert 'data-action="refund"' not in page
    # Asking for one it does not offer: an error, nothing sent.
    response = admin_client.post(action_url(payment_of(checkout), "refund"), {"confirm": "yes"}, follow=True)
    assert b"refund is not possible" in response.content
    assert sim.sim_order(checkout.number)["status"] == "capture"


@pytest.mark.parametrize(("action", "status", "midtrans"), [
    ("approve", "success", "capture"), ("deny", "failed", "deny"), ("cancel", "cancelled", "cancel")])
def test_admin_challenge_actions_need_confirmation_then_push(admin_client, sim, watch, action, status,
                                                             midtrans) -> None:
    checkout, page = challenged(sim, watch)
    payment = payment_of(checkout)
    confirm = admin_client.get(action_url(payment, action))
    assert confirm.status_code == 200 and f"Yes, {action} at Midtrans".encode() in confirm.content
    assert payment_of(checkout).status == "challenge"  # the confirmation page changed nothing
    response = admin_client.post(action_url(payment, action), {"confirm": "yes"}, follow=True)
    assert response.status_code == 200 and b"(applied)" in response.content
    assert page.wait_for(status)["source"] == "admin"
    assert sim.sim_order(checkout.number)["status"] == midtrans


def test_admin_partial_then_full_refund(admin_client, sim, watch) -> None:
    checkout, page = settled(sim, watch)
    payment = payment_of(checkout)
    confirm = admin_client.get(action_url(payment, "refund"))
    assert b"Not refunded yet: 85000" in confirm.content and b'name="amount"' in confirm.content
    admin_client.post(action_url(payment, "refund"), {"confirm": "yes", "amount": "25000", "reason": "one"})
    assert page.wait_for("partially_refunded")["source"] == "admin"
    admin_client.post(action_url(payment, "refund"), {"confirm": "yes", "amount": "", "reason": ""})
    assert page.wait_for("refunded")["source"] == "admin"
    assert sim.sim_order(checkout.number)["refunded_amount"] == 85_000
    change = admin_client.get(f"/admin/checkout/payment/{payment.pk}/change/").content.decode()
    assert "25000" in change and "60000" in change and 'data-action="refund"' not in change


def test_admin_refund_refused_shows_an_error_and_changes_nothing(admin_client, sim, watch) -> None:
    checkout, _ = settled(sim, watch)
    payment = payment_of(checkout)
    response = admin_client.post(action_url(payment, "refund"), {"confirm": "yes", "amount": "90000"}, follow=True)
    assert b"cannot refund 90000; only 85000 of 85000 remains" in response.content
    assert payment_of(checkout).status == "success" and not Refund.objects.filter(payment=payment).exists()
    assert sim.sim_order(checkout.number)["refunded_amount"] == 0
