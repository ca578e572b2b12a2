"""The watched fast lane: while a waiting page is open, ask Midtrans about its payment every WATCHED_CHECK_SECONDS.

A lost webhook otherwise waits for the reconcile (minutes) or a click. Each
open websocket and event stream runs ``watch(number)`` as a task of its own
connection, so it starts and stops with the page, with no registry of who is
watching: that lives in the web process, which is the one that knows. A
django-q2 schedule could not do it: its scheduler ticks about every 30 s and
would need a list of watched payments kept in step with every socket.

Per tick (every 0.4–0.6 × the interval, jittered so tabs opened together do
not tick together) the task reads the payment (one indexed read) and stops
once it is no longer open; a payment Midtrans does not know yet (no method
chosen: it would answer 404) is skipped. Then it claims the payment for one
interval in Redis (``SET NX EX``): whatever the number of tabs, daphnes and
workers, one call per payment per interval. The call itself runs in a worker
thread (the event loop never waits on Midtrans) through the reconcile's own
``payment_reconcile`` with a one-call ``Run``, so it takes its slot from the
shared calls-per-second budget (``reconcile.budget``), makes no call while the
shared outage circuit is open (and counts towards opening it: it is the same
Midtrans), and is recorded with source ``reconcile``; the change reaches the
page through the usual signal and broadcast.
"""

import asyncio
import contextlib
import logging
import random
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings
from redis.exceptions import RedisError

from checkout.models import Payment
from checkout.states import FINAL_ORDER_STATUSES, OPEN_PAYMENT_STATUSES
from reconcile import conf, metrics

logger = logging.getLogger("paywatch.reconcile")

CLAIM_PREFIX = "paywatch:watched:"
SOCKET_TIMEOUT = 0.5
# How long a check may wait for a slot in the shared calls-per-second budget before giving up its turn.
BUDGET_WAIT_SECONDS = 2.0

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class Watched:
    """What a tick needs to know about the watched payment."""

    payment_id: int
    is_open: bool
    known: bool  # Midtrans knows it: a method was chosen (payment_type) or a status was seen


def interval_seconds() -> int:
    """Return WATCHED_CHECK_SECONDS (0 or less: the fast lane is off)."""
    return int(getattr(settings, "WATCHED_CHECK_SECONDS", 30))


def start(number: str) -> "asyncio.Task[None] | None":
    """Start watching an order's payment for the connection calling it; None when the fast lane is off."""
    if interval_seconds() <= 0:
        return None
    return asyncio.get_running_loop().create_task(watch(number), name=f"watched-{number}")


async def stop(task: "asyncio.Task[None] | None") -> None:
    """Stop a watch started by ``start`` (the page closed); a check in flight finishes in its thread."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def watch(number: str) -> None:
    """Ask Midtrans about the order's payment every interval until it is no longer open (or cancelled)."""
    interval = interval_seconds()
    try:
        while True:
            await asyncio.sleep(interval * random.uniform(0.4, 0.6))
            state = await database_sync_to_async(_watched)(number)
            if state is None or not state.is_open:
                return  # the payment ended (or the order is gone): nothing more to watch
            if not state.known or not await _claim(number, interval):
                continue
            result = await database_sync_to_async(check, thread_sensitive=False)(state.payment_id)
            metrics.watched_checks.labels(result=result or "no_permit").inc()
    except asyncio.CancelledError:
        raise
    except Exception:  # a bug here must not take the page's connection down; the reconcile remains
        logger.exception("Watched fast lane stopped", extra={"order": number})


def _watched(number: str) -> Watched | None:
    row = (Payment.objects.filter(order__number=number)
           .values_list("pk", "status", "order__status", "payment_type", "transaction_status").first())
    if row is None:
        return None
    pk, status, order_status, payment_type, transaction_status = row
    return Watched(pk, status in OPEN_PAYMENT_STATUSES and order_status not in FINAL_ORDER_STATUSES,
                   bool(payment_type or transaction_status))


def check(payment_id: int) -> str | None:
    """Ask Midtrans about one payment now, as the reconcile does (source ``reconcile``); return its result."""
    from reconcile.runner import Run
    from reconcile.services import payment_reconcile

    payment = Payment.objects.select_related("order").get(pk=payment_id)
    run = Run(budget_seconds=BUDGET_WAIT_SECONDS, max_calls_per_second=conf.max_calls_per_second(), concurrency=1)
    return payment_reconcile(payment=payment, run=run)


async def _claim(number: str, interval: int) -> bool:
    """Claim the payment's call for this interval across every process; False when taken (or Redis is away)."""
    try:
        return bool(await _client().set(CLAIM_PREFIX + number, "1", nx=True, ex=interval))
    except (RedisError, OSError) as exc:
        # Without the claim the at-most-once promise cannot hold: skip; the reconcile and the button remain.
        logger.warning("Watched check skipped (Redis: %s)", type(exc).__name__, extra={"order": number})
        return False


def _client() -> aioredis.Redis:
    # One client per event loop: a redis.asyncio pool cannot be shared across loops.
    loop = asyncio.get_running_loop()
    url = settings.REDIS_URL
    cached = _clients.get(loop)
    if cached is None or cached[0] != url:
        client = aioredis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                                         retry=None)
        _clients[loop] = cached = (url, client)
    return cached[1]
