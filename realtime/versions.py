"""The current version of watched orders, read for many pages at once.

Every open page pings every 20–40 s with the version it shows, and the answer
needs the order's current version: at 5,000 pages that is ~170 reads a second.
One read each (a thread hop and a query per ping) was measured to saturate
daphne; here the pings of a short window share one query. The answer is still
read from the database, never from a cache that a Redis outage could leave stale.
"""

from channels.db import database_sync_to_async

from checkout import selectors
from realtime.batching import LoopBatch

# How long a ping waits for others to share its query. A page pings every 20-40 s and waits seconds
# for the pong (order.js: a third of its interval, at most 10 s), so 0.2 s is nothing to it; at 2,500
# pages a process a 20 ms window shared a query (and a thread hop) between two pings, 0.2 s between
# ~17, halving the ping's cost (docs/benchmarks.md).
WINDOW_SECONDS = 0.2


async def _read(waiting: dict[str, list[None]]) -> dict[str, int]:
    # The database being down raises here: every ping of the window hears it.
    return await database_sync_to_async(selectors.payment_versions_for_orders)(list(waiting))


_batch: LoopBatch[str, None, int] = LoopBatch(_read, WINDOW_SECONDS)


async def current_version(number: str) -> int | None:
    """Return the order's payment version (None for no such order), sharing a query with other pings."""
    return await _batch.submit(number, None)
