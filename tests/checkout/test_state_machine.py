"""The state machine, table-driven: every Midtrans status × fraud status × current status.

The expectations below are typed out independently of checkout/states.py so
that a wrong entry in the product's table fails here.
"""

import itertools
from decimal import Decimal

import pytest

from checkout.models import EventOutcome, EventSource, Order, Payment, PaymentEvent
from checkout.observations import Observation
from checkout.services import events as event_services
from checkout.services import payments as payment_services

TRANSACTION_STATUSES = [
    "pending", "authorize", "capture", "settlement", "deny", "cancel", "expire", "failure",
    "refund", "partial_refund", "chargeback", "partial_chargeback",
]
FRAUD_STATUSES = [None, "accept", "challenge", "deny"]
CURRENT_STATUSES = ["pending", "challenge", "success", "failed", "cancelled", "expired", "refunded",
                    "partially_refunded"]

TARGET = {
    ("authorize", "challenge"): "challenge", ("authorize", "deny"): "failed",
    ("capture", None): "success", ("capture", "accept"): "success",
    ("capture", "challenge"): "challenge", ("capture", "deny"): "failed",
}
TARGET_BY_STATUS = {
    "pending": "pending", "authorize": "pending", "settlement": "success", "deny": "failed", "cancel": "cancelled",
    "expire": "expired", "failure": "failed", "refund": "refunded", "chargeback": "refunded",
    "partial_refund": "partially_refunded", "partial_chargeback": "partially_refunded",
}
ALLOWED = {
    "pending": {"challenge", "success", "failed", "cancelled", "expired"},
    "challenge": {"success", "failed", "cancelled", "expired"},
    "failed": {"pending", "challenge", "success", "cancelled", "expired"},  # a denied card; Snap stays payable
    "success": {"refunded", "partially_refunded", "failed", "cancelled"},
    "partially_refunded": {"refunded"},
}
REVERSALS = {("success", "failed"), ("success", "cancelled")}
ORDER_OF = {
    "pending": "pending", "challenge": "pending", "failed": "pending", "success": "processing",
    "partially_refunded": "processing", "refunded": "refunded", "cancelled": "cancelled", "expired": "expired",
}


def expected_target(ts: str, fs: str | None) -> str:
    return TARGET.get((ts, fs)) or TARGET.get((ts, None)) or TARGET_BY_STATUS[ts]


def observe(order: Order, ts: str, fs: str | None = None, amount: str = "85000.00") -> Observation:
    return Observation(order_id=order.number, transaction_status=ts, status_code="200",
                       gross_amount=Decimal(amount), fraud_status=fs or "", currency="IDR")


def apply(order: Order, observation: Observation, confirmed: bool = False) -> payment_services.Transition:
    event = event_services.payment_event_record(source=EventSource.RECONCILE, payment=order.payment)
    return payment_services.payment_apply_observation(
        payment_id=order.payment.pk, observation=observation, source=EventSource.RECONCILE,
        event_id=event.pk, confirmed=confirmed,
    )


def put_in(order: Order, status: str) -> None:
    Payment.objects.filter(pk=order.payment.pk).update(status=status, version=5)
    Order.objects.filter(pk=order.pk).update(status=ORDER_OF[status])


CASES = list(itertools.product(CURRENT_STATUSES, TRANSACTION_STATUSES, FRAUD_STATUSES))


@pytest.mark.parametrize(("current", "ts", "fs"), CASES, ids=[f"{c}-{t}-{f}" for c, t, f in CASES])
def test_every_transition(make_order, current: str, ts: str, fs: str | None) -> None:
    order = make_order()
    put_in(order, current)
    target = expected_target(ts, fs)

    result = apply(order, observe(order, ts, fs), confirmed=True)

    payment = Payment.objects.select_related("order").get(pk=order.payment.pk)
    event = PaymentEvent.objects.get(pk=result.event_id)
    if target == current:
        assert (result.outcome, payment.status, payment.version) == ("duplicate", current, 5)
    elif target in ALLOWED.get(current, set()):
        assert (result.outcome, payment.status, payment.version) == ("applied", target, 6)
        reversal = (current, target) in REVERSALS
        assert payment.order.status == ("cancelled" if reversal else ORDER_OF[target])
    else:
        assert (result.outcome, payment.status, payment.version) == ("stale", current, 5)
        assert payment.order.status == ORDER_OF[current]
    assert (event.outcome, event.status_before, event.status_after) == (result.outcome, current, payment.status)


# The signature does not cover transaction_status, and settlement, refund,
# partial_refund and chargeback share status_code 200: a signed settlement can
# be replayed as any of them. So every way out of a paid state waits for the
# status API.
LEAVING_PAID = [(current, ts) for current in ("success", "partially_refunded") for ts in TRANSACTION_STATUSES
                if expected_target(ts, None) in ALLOWED[current]]


@pytest.mark.parametrize(("current", "ts"), LEAVING_PAID, ids=[f"{c}-{t}" for c, t in LEAVING_PAID])
def test_every_move_out_of_a_paid_state_waits_for_confirmation(make_order, current: str, ts: str) -> None:
    order = make_order()
    put_in(order, current)

    result = apply(order, observe(order, ts))

    assert result.needs_confirmation and result.outcome == "stale"
    assert Payment.objects.get(pk=order.payment.pk).status == current


def test_the_paid_exits_cover_refunds_chargebacks_and_reversals() -> None:
    assert {ts for current, ts in LEAVING_PAID if current == "success"} == {
        "refund", "partial_refund", "chargeback", "partial_chargeback", "deny", "failure", "cancel"}
    assert {ts for current, ts in LEAVING_PAID if current == "partially_refunded"} == {"refund", "chargeback"}


@pytest.mark.parametrize("current", ["pending", "challenge", "failed"])
def test_moves_into_success_need_no_confirmation(make_order, current: str) -> None:
    order = make_order()
    put_in(order, current)
    result = apply(order, observe(order, "settlement"))
    assert (result.needs_confirmation, result.outcome) == (False, "applied")


def test_reversal_after_settlement_ends_the_order(make_order) -> None:
    order = make_order()
    apply(order, observe(order, "settlement"))
    apply(order, observe(order, "deny"), confirmed=True)
    order.refresh_from_db()
    assert (order.payment.status, order.status) == ("failed", "cancelled")
    # a cancelled order is terminal, even for a later settlement
    assert apply(order, observe(order, "settlement"), confirmed=True).outcome == "stale"


def test_denied_card_leaves_order_payable_by_another_method(make_order) -> None:
    order = make_order()
    apply(order, observe(order, "deny"))
    order.refresh_from_db()
    assert (order.payment.status, order.status) == ("failed", "pending")
    apply(order, observe(order, "settlement"))
    order.refresh_from_db()
    assert (order.payment.status, order.status) == ("success", "processing")


def test_same_observation_twice_bumps_version_once(make_order) -> None:
    order = make_order()
    first = apply(order, observe(order, "settlement"))
    second = apply(order, observe(order, "settlement"))
    assert (first.outcome, second.outcome) == ("applied", "duplicate")
    assert first.version == second.version == Payment.objects.get(pk=order.payment.pk).version == 2


@pytest.mark.parametrize(("amount", "currency"), [("84999.00", "IDR"), ("850000.00", "IDR"), ("85000.00", "USD")])
def test_amount_or_currency_mismatch_is_recorded_never_paid(make_order, amount: str, currency: str) -> None:
    order = make_order()
    observation = Observation(order_id=order.number, transaction_status="settlement", status_code="200",
                              gross_amount=Decimal(amount), currency=currency)
    result = apply(order, observation)
    assert result.outcome == EventOutcome.AMOUNT_MISMATCH
    assert Payment.objects.get(pk=order.payment.pk).status == "pending"
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_settlement_for_an_expired_order_is_kept_out_and_flagged(make_order, caplog) -> None:
    order = make_order()
    apply(order, observe(order, "expire"))
    caplog.set_level("ERROR")
    result = apply(order, observe(order, "settlement"), confirmed=True)
    order.refresh_from_db()
    assert (result.outcome, order.payment.status, order.status) == ("stale", "expired", "expired")
    flagged = [r for r in caplog.records if r.getMessage() == "Payment received for a closed order"]
    assert len(flagged) == 1 and flagged[0].order == order.number


def test_a_late_settlement_after_a_refund_is_stale_but_not_money_for_a_closed_order(make_order, caplog) -> None:
    """Only a payment that ended unpaid is "paid after close"; a refunded one was paid, then given back."""
    order = make_order()
    apply(order, observe(order, "settlement"))
    apply(order, observe(order, "refund"), confirmed=True)
    caplog.set_level("ERROR")
    result = apply(order, observe(order, "settlement"), confirmed=True)
    order.refresh_from_db()
    assert (result.outcome, order.payment.status) == ("stale", "refunded")
    assert not [r for r in caplog.records if r.getMessage() == "Payment received for a closed order"]
