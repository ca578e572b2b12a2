"""The current version of watched orders, read for many pages at once.

Every open page pings every 20–40 s with the version it shows, and the answer
needs the order's current version: at 5,000 pages that is ~170 reads a second.
One read each (a thread hop and a query per ping) was measured to saturate
daphne; here the pings of a short window share one query. The answer is still
read from the database, never from a cache that a Redis outage could leave stale.
"""

import asyncio
import weakref

from channels.db import database_sync_to_async

from checkout import selectors

# How long a ping waits for others to share its query. A page pings every 20-40 s and waits seconds
# for the pong (order.js: a third of its interval, at most 10 s), so 0.2 s is nothing to it; at 2,500
# pages a process a 20 ms window shared a query (and a thread hop) between two pings, 0.2 s between
# ~17, halving the ping's cost (docs/benchmarks.md).
WINDOW_SECONDS = 0.2


class _Batch:
    def __init__(self) -> None:
        self.waiting: dict[str, list[asyncio.Future[int | None]]] = {}
        self.flush: asyncio.TimerHandle | None = None


_batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch]" = weakref.WeakKeyDictionary()


async def current_version(number: str) -> int | None:
    """Return the order's payment version (None for no such order), sharing a query with other pings."""
    loop = asyncio.get_running_loop()
    batch = _batches.setdefault(loop, _Batch())
    answer: asyncio.Future[int | None] = loop.create_future()
    batch.waiting.setdefault(number, []).append(answer)
    if batch.flush is None:
        batch.flush = loop.call_later(WINDOW_SECONDS, lambda: loop.create_task(_read(batch)))
    return await answer


async def _read(batch: _Batch) -> None:
    waiting, batch.waiting, batch.flush = batch.waiting, {}, None
    try:
        versions = await database_sync_to_async(selectors.payment_versions_for_orders)(list(waiting))
    except Exception as exc:  # the database is down: every ping of the window hears it
        for answers in waiting.values():
            for answer in answers:
                if not answer.done():
                    answer.set_exception(exc)
        return
    for number, answers in waiting.items():
        for answer in answers:
            if not answer.done():
                answer.set_result(versions.get(number))
