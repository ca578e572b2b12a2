"""The payment state machine: the one table of what Midtrans says and what may follow.

Everything that decides a payment's or an order's status reads this module;
views, tasks and commands never compare statuses themselves.
"""

from dataclasses import dataclass

from django.db import models


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    CHALLENGE = "challenge"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


P = PaymentStatus

# (transaction_status, fraud_status) -> our payment status. ``None`` as the
# fraud status matches an absent or unlisted one.
MIDTRANS_TO_PAYMENT: dict[tuple[str, str | None], PaymentStatus] = {
    ("pending", None): P.PENDING,
    ("authorize", None): P.PENDING,
    ("authorize", "challenge"): P.CHALLENGE,
    ("authorize", "deny"): P.FAILED,
    ("capture", None): P.SUCCESS,
    ("capture", "accept"): P.SUCCESS,
    ("capture", "challenge"): P.CHALLENGE,
    ("capture", "deny"): P.FAILED,
    ("settlement", None): P.SUCCESS,
    ("settlement", "accept"): P.SUCCESS,
    ("deny", None): P.FAILED,
    ("failure", None): P.FAILED,
    ("cancel", None): P.CANCELLED,
    ("expire", None): P.EXPIRED,
    ("refund", None): P.REFUNDED,
    ("chargeback", None): P.REFUNDED,
    ("partial_refund", None): P.PARTIALLY_REFUNDED,
    ("partial_chargeback", None): P.PARTIALLY_REFUNDED,
}

# current -> statuses it may move to. Missing means terminal.
#  - failed is a denied attempt: a Snap order stays payable by another method;
#  - success leaves only for a refund/chargeback or a reversal (see REVERSALS).
ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: frozenset({P.CHALLENGE, P.SUCCESS, P.FAILED, P.CANCELLED, P.EXPIRED}),
    P.CHALLENGE: frozenset({P.SUCCESS, P.FAILED, P.CANCELLED, P.EXPIRED}),
    P.FAILED: frozenset({P.PENDING, P.CHALLENGE, P.SUCCESS, P.CANCELLED, P.EXPIRED}),
    P.SUCCESS: frozenset({P.REFUNDED, P.PARTIALLY_REFUNDED, P.FAILED, P.CANCELLED}),
    P.PARTIALLY_REFUNDED: frozenset({P.REFUNDED}),
}

# Paid states: every move out of them is applied only once Midtrans's status
# API confirms it. A notification's signature covers order_id, status_code
# and gross_amount, not transaction_status, and settlement, refund,
# partial_refund and chargeback all carry status_code 200: a captured signed
# settlement re-sent as "refund" verifies. Only the status API can tell.
CONFIRM_TO_LEAVE: frozenset[PaymentStatus] = frozenset({P.SUCCESS, P.PARTIALLY_REFUNDED})

# Moves out of a paid state that undo the sale: a settlement turned into deny
# (Permata, Mandiri bill, Indomaret) or a capture cancelled. They end the order.
REVERSALS: frozenset[tuple[PaymentStatus, PaymentStatus]] = frozenset(
    {(P.SUCCESS, P.FAILED), (P.SUCCESS, P.CANCELLED)}
)

# Payment statuses nothing moves on from (no entry in ALLOWED).
FINAL_PAYMENT_STATUSES = frozenset(status for status in PaymentStatus if status not in ALLOWED)

# Order status that follows a payment status.
ORDER_FOR_PAYMENT: dict[PaymentStatus, OrderStatus] = {
    P.PENDING: OrderStatus.PENDING,
    P.CHALLENGE: OrderStatus.PENDING,
    P.FAILED: OrderStatus.PENDING,
    P.SUCCESS: OrderStatus.PROCESSING,
    P.PARTIALLY_REFUNDED: OrderStatus.PROCESSING,
    P.REFUNDED: OrderStatus.REFUNDED,
    P.CANCELLED: OrderStatus.CANCELLED,
    P.EXPIRED: OrderStatus.EXPIRED,
}
FINAL_ORDER_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REFUNDED})

# A payment in one of these, refused a move to success, means money arrived
# for an order that had already ended unpaid: a person must refund or honour it.
CLOSED_UNPAID_STATUSES = frozenset({P.EXPIRED, P.CANCELLED, P.FAILED})

# Payment statuses the reconcile keeps asking Midtrans about.
OPEN_PAYMENT_STATUSES = frozenset({P.PENDING, P.CHALLENGE, P.FAILED})


class PaymentAction(models.TextChoices):
    """What a merchant may ask Midtrans to do with a payment (admin, ``payments`` command)."""

    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    REFUND = "refund"


# action -> the payment statuses it is offered for. Midtrans has the last word
# (a captured card that has not settled refuses a refund with 412); this table
# keeps the admin from offering, and the command from sending, what cannot work.
#  - approve/deny decide a challenged card (capture + fraud challenge);
#  - cancel ends what is not paid yet (a pending VA, a challenged card);
#  - refund gives back money of a paid payment, again after a partial refund.
ACTIONS: dict[PaymentAction, frozenset[PaymentStatus]] = {
    PaymentAction.APPROVE: frozenset({P.CHALLENGE}),
    PaymentAction.DENY: frozenset({P.CHALLENGE}),
    PaymentAction.CANCEL: frozenset({P.PENDING, P.CHALLENGE}),
    PaymentAction.REFUND: frozenset({P.SUCCESS, P.PARTIALLY_REFUNDED}),
}


def actions_for(status: str, order_status: str) -> list[PaymentAction]:
    """Return the actions the table offers for a payment in ``status`` (none once its order has ended)."""
    if order_status in FINAL_ORDER_STATUSES:
        return []
    return [action for action, statuses in ACTIONS.items() if status in statuses]


def payment_status_for(transaction_status: str, fraud_status: str | None) -> PaymentStatus | None:
    """Map a Midtrans (transaction_status, fraud_status) pair; ``None`` if unknown."""
    ts = (transaction_status or "").strip().lower()
    fs = (fraud_status or "").strip().lower() or None
    return MIDTRANS_TO_PAYMENT.get((ts, fs)) or MIDTRANS_TO_PAYMENT.get((ts, None))


@dataclass(frozen=True)
class Decision:
    """What the table says about moving ``current`` to ``target``."""

    allowed: bool
    needs_confirmation: bool
    order_status: OrderStatus | None


def decide(current: str, target: str, order_status: str) -> Decision:
    """Decide whether a payment may move from ``current`` to ``target``."""
    current, target = PaymentStatus(current), PaymentStatus(target)
    if order_status in FINAL_ORDER_STATUSES or target not in ALLOWED.get(current, frozenset()):
        return Decision(allowed=False, needs_confirmation=False, order_status=None)
    order_after = OrderStatus.CANCELLED if (current, target) in REVERSALS else ORDER_FOR_PAYMENT[target]
    return Decision(allowed=True, needs_confirmation=current in CONFIRM_TO_LEAVE, order_status=order_after)
