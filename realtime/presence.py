"""Count the open websockets of each order across every web process (a Redis sorted set per order).

Each member is a socket's channel name, scored by when it was last seen (its
connect or its latest ping). Members older than ``STALE_SECONDS`` belong to
sockets whose process died without saying goodbye and are pruned on every
admission, so a crashed daphne cannot lock an order's watchers out for good.

Redis trouble never blocks a customer: every call is bounded by short socket
timeouts and no retries, and an unanswered admission lets the socket in.
"""

import asyncio
import logging
import time
import weakref

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from realtime.batching import LoopBatch
from realtime.versions import WINDOW_SECONDS

logger = logging.getLogger("paywatch.realtime")

DEFAULT_MAX_PER_ORDER = 20
# The page pings every 20-40 s: three missed pings and the socket no longer counts.
STALE_SECONDS = 120
SOCKET_TIMEOUT = 0.5
KEY_PREFIX = "paywatch:ws:"

# One client per event loop: a redis.asyncio pool cannot be shared across loops
# (daphne has one; each async test has its own).
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


def max_per_order() -> int:
    """Return the cap on open sockets per order (``WEBSOCKET_MAX_PER_ORDER``)."""
    return int(getattr(settings, "WEBSOCKET_MAX_PER_ORDER", DEFAULT_MAX_PER_ORDER))


def _client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    url = settings.REDIS_URL
    cached = _clients.get(loop)
    if cached is None or cached[0] != url:
        client = aioredis.Redis.from_url(
            url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT, retry=None,
        )
        _clients[loop] = cached = (url, client)
    return cached[1]


async def admit(group: str, channel: str) -> bool:
    """Register a socket on an order; return False when the order already has its cap of live sockets.

    Atomic (MULTI): among sockets arriving together, the earliest ones by
    score are admitted, so a burst never rejects more than the excess.
    """
    now = time.time()
    key = KEY_PREFIX + group
    try:
        async with _client().pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - STALE_SECONDS)
            pipe.zadd(key, {channel: now})
            pipe.zrank(key, channel)
            pipe.expire(key, STALE_SECONDS * 2)
            _, _, rank, _ = await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning("Websocket cap not checked (Redis: %s); socket admitted", type(exc).__name__)
        return True
    if rank is not None and rank >= max_per_order():
        await leave(group, channel)
        return False
    return True


# How long a ping's refresh waits for others to share its Redis round trip. The pong waits for it and for
# the version read's window, which opens at the same moment: the two are one.
REFRESH_WINDOW_SECONDS = WINDOW_SECONDS


async def _write_refreshes(seen: dict[str, list[tuple[str, float]]]) -> dict:
    try:
        async with _client().pipeline(transaction=False) as pipe:
            for key, members in seen.items():
                pipe.zadd(key, dict(members), xx=True)  # xx: a socket already pruned or gone is not brought back
            await pipe.execute()
    except (RedisError, OSError):
        pass  # a missed refresh only ages the entries; the next ping tries again
    return {}


_refreshes: LoopBatch[str, tuple[str, float], None] = LoopBatch(_write_refreshes, REFRESH_WINDOW_SECONDS)


def refresh(group: str, channel: str) -> "asyncio.Future[None]":
    """Mark a socket as seen now (on each client ping); best effort, shared with the window's other pings.

    At 5,000 open pages a round trip per ping was a fifth of the pings'
    cost (docs/benchmarks.md); the window's pings share one pipeline. The
    returned future is done when the window has been written (or failed).
    """
    return _refreshes.submit(KEY_PREFIX + group, (channel, time.time()))


async def _remove_departed(leaving: dict[str, list[str]]) -> dict:
    try:
        async with _client().pipeline(transaction=False) as pipe:
            for key, channels in leaving.items():
                pipe.zrem(key, *channels)
            await pipe.execute()
    except (RedisError, OSError) as exc:  # the entries age out after STALE_SECONDS
        logger.warning("Open sockets not uncounted on shutdown (Redis: %s)", type(exc).__name__,
                       extra={"sockets": sum(map(len, leaving.values()))})
    return {}


# A stopping daphne cancels all its consumers at once: one command each would open as many Redis
# connections as it had sockets. The batch is every socket leaving before the loop's next turn.
_departures: LoopBatch[str, str, None] = LoopBatch(_remove_departed, 0)


async def leave_together(group: str, channel: str) -> None:
    """Remove a socket from its order's count along with every other socket leaving now; best effort."""
    await _departures.submit(KEY_PREFIX + group, channel)


async def leave(group: str, channel: str) -> None:
    """Remove a socket from its order's count; best effort (stale entries are pruned anyway)."""
    try:
        await _client().zrem(KEY_PREFIX + group, channel)
    except (RedisError, OSError):
        pass
