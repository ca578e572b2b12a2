"""Writes to orders: creating one with its pending payment, and its Snap transaction."""

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from checkout import gateway
from checkout.errors import GatewayRejected
from checkout.models import Order, Payment

logger = logging.getLogger("paywatch.payments")


def order_number_new(now: datetime | None = None) -> str:
    """Return a number like INV202507180407-3C2A: prefix, Jakarta minute, random suffix."""
    local = timezone.localtime(now or timezone.now())
    return f"INV{local:%Y%m%d%H%M}-{secrets.token_hex(2).upper()}"


def order_create(
    *, items: list[dict[str, Any]], customer_name: str = "", customer_email: str = "", currency: str = "IDR"
) -> Order:
    """Create an order and its pending payment; retry the number on a collision."""
    total = sum(Decimal(item["price"]) * int(item["quantity"]) for item in items)
    expiry = timezone.now() + timedelta(minutes=settings.MIDTRANS["SNAP_EXPIRY_MINUTES"])
    for _attempt in range(8):
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    number=order_number_new(), gross_amount=total, currency=currency, items=items,
                    customer_name=customer_name, customer_email=customer_email,
                )
                Payment.objects.create(
                    order=order, amount=total, currency=currency, expires_at=expiry, next_check_at=timezone.now()
                )
                return order
        except IntegrityError:
            continue  # two orders in one minute drew the same suffix
    raise RuntimeError("could not allocate a unique order number")


def payment_snap_attach(*, payment_id: int, token: str, redirect_url: str) -> None:
    """Store the Snap token and redirect URL returned by Midtrans."""
    Payment.objects.filter(pk=payment_id).update(snap_token=token, redirect_url=redirect_url)


def order_checkout_snap(*, order: Order) -> Payment:
    """Create the Snap transaction for an order and store its token and redirect URL.

    An order number Midtrans already knows (a reset database, two environments
    on one Midtrans account) gets a new number and another try. Raises
    GatewayError; the order then stays pending without a token, which the
    reconcile and the expiry cleanup know how to end.
    """
    for attempt in range(3):
        try:
            snap = gateway.snap_create(_snap_parameters(order))
            break
        except GatewayRejected as exc:
            if not exc.extra.get("order_id_taken") or attempt == 2:
                raise
            logger.warning("Order number already used at Midtrans; renumbering", extra={"order": order.number})
            order_renumber(order=order)
    payment = order.payment
    payment_snap_attach(payment_id=payment.pk, token=snap.token, redirect_url=snap.redirect_url)
    payment.snap_token, payment.redirect_url = snap.token, snap.redirect_url
    return payment


def order_renumber(*, order: Order) -> None:
    """Give a not-yet-paid order a fresh number (before the customer has seen it)."""
    for _attempt in range(8):
        number = order_number_new()
        try:
            with transaction.atomic():
                Order.objects.filter(pk=order.pk).update(number=number)
        except IntegrityError:
            continue
        order.number = number
        return
    raise RuntimeError("could not allocate a unique order number")


def _snap_parameters(order: Order) -> dict[str, Any]:
    from checkout.selectors import order_waiting_page_url

    expires_at = order.payment.expires_at
    minutes = max(1, int((expires_at - timezone.now()).total_seconds() // 60)) if expires_at else 60
    start = timezone.localtime(timezone.now())
    return {
        "transaction_details": {"order_id": order.number, "gross_amount": int(order.gross_amount)},
        "item_details": [
            {"id": i["sku"], "name": i["name"][:50], "price": int(i["price"]), "quantity": int(i["quantity"])}
            for i in order.items
        ],
        "customer_details": {"first_name": order.customer_name or "Customer", "email": order.customer_email},
        "expiry": {"start_time": start.strftime("%Y-%m-%d %H:%M:%S %z"), "unit": "minute", "duration": minutes},
        "callbacks": {"finish": order_waiting_page_url(order)},
    }
