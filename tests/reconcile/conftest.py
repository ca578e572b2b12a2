"""Fixtures for the reconcile: orders with real Snap transactions at the stack's simulator."""

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from checkout.models import Order, Payment
from checkout.services import orders as order_services
from reconcile import budget, chunks, conf, runner

WAIT = 15.0


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


SHARED_KEYS = (conf.LOCK_KEY, runner.CIRCUIT_KEY, runner.FAILURES_KEY, budget.SLOT_KEY, chunks.QUEUED_KEY,
               chunks.RUNNING_KEY, chunks.WORKERS_KEY)


@pytest.fixture(autouse=True)
def no_reconcile_lock(redis_url: str) -> Iterator[None]:
    """Start and end every test without a reconcile lock, an open circuit, a reserved slot or chunks in flight."""
    client = redis.Redis.from_url(redis_url)
    client.delete(*SHARED_KEYS)
    yield
    client.delete(*SHARED_KEYS)
    client.close()


@pytest.fixture
def sim(stack, transactional_db):
    """The stack's simulator, restored to its start-up behaviour after the test."""
    stack.sim_config(status_latency_ms=0, error_rate=0.0, error_mode="500", notifications=True)
    yield stack
    stack.sim_config(status_latency_ms=0, error_rate=0.0, error_mode="500", notifications=True)


@pytest.fixture
def snap_order(sim) -> Callable[..., Order]:
    """Create an order with its Snap transaction at the simulator, optionally moved there without a webhook.

    ``at_midtrans``: None (no method chosen), or a control action (pending, settle, deny…)
    applied with ``notify=drop`` — the webhook is lost.
    """

    def make(at_midtrans: str | None = None, *, amount: int = 85_000, age: timedelta | None = None,
             overdue: bool = False) -> Order:
        order = order_services.order_create(
            items=[{"sku": "kopi-gayo", "name": "Kopi", "price": amount, "quantity": 1}],
            customer_email="budi@example.com",
        )
        order_services.order_checkout_snap(order=order)
        if at_midtrans:
            sim.sim(at_midtrans, order.number, notify="drop")
        fields = {}
        if age is not None:
            fields["created_at"] = timezone.now() - age
        if overdue:
            fields["expires_at"] = timezone.now() - timedelta(minutes=1)
        if fields:
            Payment.objects.filter(order=order).update(**fields)
        return Order.objects.select_related("payment").get(pk=order.pk)

    return make


def payment_of(order: Order) -> Payment:
    return Payment.objects.select_related("order").get(order=order)
