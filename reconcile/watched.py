"""The watched fast lane: while a waiting page is open, ask Midtrans about its payment every WATCHED_CHECK_SECONDS.

A lost webhook otherwise waits for the reconcile (minutes) or a click. Each
open websocket and event stream registers its order with ``start`` and
unregisters it with ``stop``; that registry lives in the web process, which is
the one that knows who is watching (a django-q2 schedule would need a list of
watched payments kept in step with every socket).

One task per process (per event loop) does the checking, however many pages
are open: every 0.4–0.6 × the interval it reads all watched payments in one
query (a per-socket read was measured saturating daphne at 5,000 sockets),
skips those no longer open and those Midtrans does not know yet (no method
chosen: it would answer 404), and claims each remaining one for one interval
in Redis (``SET NX EX``): whatever the number of tabs, daphnes and workers,
one call per payment per interval. A tick takes at most what the shared
ceiling could grant in it, least recently checked first: at 5,000 open pages
and 50 calls/s, claiming them all made thousands of hopeless budget waits,
thread hops and reads per tick on the same cores as the pushes; the rest
waits for the next tick. The calls run in worker threads (the event
loop never waits on Midtrans) through the reconcile's own
``payment_reconcile`` with a one-call ``Run``, so each takes its slot from the
shared calls-per-second budget (``reconcile.budget``), makes no call while the
shared outage circuit is open (and counts towards opening it: it is the same
Midtrans), and is recorded with source ``reconcile``; the change reaches the
page through the usual signal and broadcast.
"""

import asyncio
import contextlib
import logging
import math
import random
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

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
# Status calls of one tick in flight at once (each in a worker thread).
CONCURRENT_CHECKS = 8
_NEVER = datetime.min.replace(tzinfo=UTC)  # never checked: first in line

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class Watched:
    """What a tick needs to know about the watched payment."""

    payment_id: int
    is_open: bool
    known: bool  # Midtrans knows it: a method was chosen (payment_type) or a status was seen
    last_checked_at: datetime | None = None


def interval_seconds() -> int:
    """Return WATCHED_CHECK_SECONDS (0 or less: the fast lane is off)."""
    return int(getattr(settings, "WATCHED_CHECK_SECONDS", 30))


class _Registry:
    """The orders this event loop's open pages watch (with how many pages each), and the task checking them."""

    def __init__(self) -> None:
        self.watchers: Counter[str] = Counter()
        self.task: asyncio.Task[None] | None = None


_registries: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry]" = weakref.WeakKeyDictionary()


def start(number: str) -> str | None:
    """Watch an order's payment while the calling connection is open; return the handle for ``stop``."""
    if interval_seconds() <= 0:
        return None
    loop = asyncio.get_running_loop()
    registry = _registries.setdefault(loop, _Registry())
    registry.watchers[number] += 1
    if registry.task is None or registry.task.done():
        registry.task = loop.create_task(_check_forever(registry), name="watched-fast-lane")
    return number


async def stop(handle: str | None) -> None:
    """Stop watching for one connection (the page closed); the last one out stops the task."""
    registry = _registries.get(asyncio.get_running_loop())
    if handle is None or registry is None:
        return
    registry.watchers[handle] -= 1
    if registry.watchers[handle] <= 0:
        del registry.watchers[handle]
    if not registry.watchers and registry.task is not None:
        task, registry.task = registry.task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _check_forever(registry: _Registry) -> None:
    interval = interval_seconds()
    while registry.watchers:
        pause = interval * random.uniform(0.4, 0.6)
        await asyncio.sleep(pause)
        try:
            await check_watched(list(registry.watchers), interval, tick_seconds=pause)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not stop the lane for every page; the reconcile remains
            logger.exception("Watched fast lane tick failed")


async def check_watched(numbers: list[str], interval: int, tick_seconds: float | None = None) -> list[str]:
    """Check the watched payments that are open, known to Midtrans and not claimed elsewhere; return their numbers.

    With ``tick_seconds``, at most the calls the shared ceiling allows in that
    time are claimed, least recently checked first.
    """
    states = await database_sync_to_async(_watched)(numbers)
    due = sorted(((number, state) for number, state in states.items() if state.is_open and state.known),
                 key=lambda item: item[1].last_checked_at or _NEVER)
    ceiling = conf.max_calls_per_second()
    if tick_seconds is not None and ceiling > 0:
        due = due[:max(1, math.ceil(ceiling * tick_seconds))]
    claimed = [(number, state) for number, state in due if await _claim(number, interval)]
    slots = asyncio.Semaphore(CONCURRENT_CHECKS)

    async def one(payment_id: int) -> None:
        async with slots:
            result = await database_sync_to_async(check, thread_sensitive=False)(payment_id)
        metrics.watched_checks.labels(result=result or "no_permit").inc()

    await asyncio.gather(*(one(state.payment_id) for _, state in claimed))
    return [number for number, _ in claimed]


def _watched(numbers: list[str]) -> dict[str, Watched]:
    """Read the watched payments, a few hundred order numbers per indexed query."""
    found: dict[str, Watched] = {}
    for first in range(0, len(numbers), 500):
        rows = (Payment.objects.filter(order__number__in=numbers[first:first + 500])
                .values_list("order__number", "pk", "status", "order__status", "payment_type", "transaction_status",
                             "last_checked_at"))
        for number, pk, status, order_status, payment_type, transaction_status, checked_at in rows:
            found[number] = Watched(pk, status in OPEN_PAYMENT_STATUSES and order_status not in FINAL_ORDER_STATUSES,
                                    bool(payment_type or transaction_status), checked_at)
    return found


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
