"""Reads of orders and payments."""

import secrets
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from checkout import display
from checkout.errors import UnknownOrder
from checkout.models import EventOutcome, Order, Payment, PaymentEvent
from checkout.states import CLOSED_UNPAID_STATUSES
from checkout.text import clean_text

# Midtrans statuses that mean the money arrived (a card's capture, every other method's settlement).
PAID_TRANSACTION_STATUSES = ("settlement", "capture")
# Fraud verdicts under which a capture is not money received (it maps to challenge or failed).
UNPAID_FRAUD_STATUSES = ("challenge", "deny")
# A payment that ended unpaid; "failed" is one only when its order had closed (else success is allowed).
def payment_for_order_number(number: str) -> Payment:
    """Return the payment of the order with that number, or raise UnknownOrder."""
    try:
        return Payment.objects.select_related("order").get(order__number=number)
    except Payment.DoesNotExist:
        raise UnknownOrder(f"unknown order {number}", {"order_id": number}) from None


def order_for_customer(number: str, token: str | None) -> Order | None:
    """Return the order if ``token`` is its access token, else None (never say which failed)."""
    if clean_text(number) != number:
        number = ""  # PostgreSQL refuses even to look up a NUL: no order has one
    order = Order.objects.select_related("payment").filter(number=number).first() if number else None
    expected = order.access_token if order else secrets.token_urlsafe(24)
    if not secrets.compare_digest(expected.encode(), (token or "").encode()) or order is None:
        return None
    return order


def order_snapshot(order: Order) -> dict[str, Any]:
    """Return the status JSON for an order, with what the waiting page shows (``state``, ``details``)."""
    payment = order.payment
    return {
        "order": order.number,
        "order_status": order.status,
        "payment_status": payment.status,
        "version": payment.version,
        "gross_amount": str(payment.amount),
        "currency": payment.currency,
        "updated_at": max(order.updated_at, payment.updated_at).isoformat(),
        "state": display.view_state(payment.status, order.status),
        "details": display.payment_details(payment),
    }


def payment_versions_for_orders(numbers: list[str]) -> dict[str, int]:
    """Return {order number: its payment's version} for the numbers that exist (one indexed read)."""
    return dict(Payment.objects.filter(order__number__in=numbers).values_list("order__number", "version"))


def order_snapshot_by_number(number: str) -> dict[str, Any] | None:
    """Return the status JSON of the order with that number, or None (the caller already authorized it)."""
    order = Order.objects.select_related("payment").filter(number=number).first()
    return order_snapshot(order) if order else None


def order_waiting_page_url(order: Order, absolute: bool = True) -> str:
    """Return the customer's link to the waiting page, token included."""
    path = reverse("checkout:order", args=[order.number]) + f"?t={order.access_token}"
    return settings.PUBLIC_BASE_URL + path if absolute else path


def events_paid_after_close() -> QuerySet[PaymentEvent]:
    """Return the events that reported money received for a payment that had already ended unpaid.

    They are what ``services`` logs as "Payment received for a closed order"
    and counts in ``paywatch_paid_after_close_total``: the state machine
    refused them (stale), and a late settlement after a refund is not one.
    """
    return (
        PaymentEvent.objects.filter(outcome=EventOutcome.STALE, transaction_status__in=PAID_TRANSACTION_STATUSES,
                                    status_before__in=CLOSED_UNPAID_STATUSES, payment__isnull=False)
        .exclude(fraud_status__in=UNPAID_FRAUD_STATUSES)
    )


def payments_paid_after_close() -> QuerySet[Payment]:
    """Return payments Midtrans reported paid after their order closed: a person must refund or honour them."""
    return Payment.objects.filter(pk__in=events_paid_after_close().values("payment_id"))


def payments_amount_mismatch() -> QuerySet[Payment]:
    """Return payments that were sent an amount that does not pay their order (recorded, never applied)."""
    return Payment.objects.filter(
        pk__in=PaymentEvent.objects.filter(outcome=EventOutcome.AMOUNT_MISMATCH).values("payment_id"))
