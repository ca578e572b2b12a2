"""Helpers for the live-status tests: orders, status changes, websocket communicators."""

from collections.abc import Callable

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection

from checkout.models import Order
from checkout.observations import Observation
from checkout.services import events as event_services
from checkout.services import payments as payment_services

ORIGIN = (b"origin", b"http://127.0.0.1")


def apply_status(order_number: str, transaction_status: str = "settlement", source: str = "webhook") -> int:
    """Apply a Midtrans status to an order's payment through the one service; return the new version.

    Runs in whatever thread calls it and closes that thread's connection, so it
    can be handed to a thread or another loop's executor.
    """
    try:
        order = Order.objects.select_related("payment").get(number=order_number)
        payment = order.payment
        event = event_services.payment_event_record(source=source, payment=payment)
        observation = Observation(order_id=order.number, transaction_status=transaction_status,
                                  status_code="200", gross_amount=payment.amount, currency=payment.currency)
        return payment_services.payment_apply_observation(
            payment_id=payment.pk, observation=observation, source=source, event_id=event.pk, confirmed=True
        ).version
    finally:
        connection.close()


@pytest.fixture
def order(transactional_db, make_order) -> Order:
    """A committed pending order, visible to other threads and processes."""
    return make_order()


@pytest.fixture
def communicator() -> Callable[..., WebsocketCommunicator]:
    """Build communicators on the real ASGI application (origin check included)."""
    from project.asgi import application

    def build(number: str, token: str | None, origin: tuple[bytes, bytes] | None = ORIGIN) -> WebsocketCommunicator:
        path = f"/ws/orders/{number}/" + (f"?t={token}" if token is not None else "")
        return WebsocketCommunicator(application, path, headers=[origin] if origin else [])

    return build
