"""The calls-per-second ceiling on Midtrans, shared by every process through Redis.

``runner.RateLimiter`` spaces the calls of one run inside one process; this
counts every call to Midtrans's status API made by the reconcile, the
cleanup, ``check-all`` and the watched fast lane, in whatever process, in a
per-second Redis counter (INCR + EXPIRE on a key named after the second), so
that all of them together stay under ``RECONCILE_MAX_CALLS_PER_SECOND``.

Redis trouble fails open here: the reconcile cannot run without Redis anyway
(its lock), and one process's own limiter still holds.
"""

import logging
import threading
import time

import redis
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger("paywatch.reconcile")

KEY_PREFIX = "paywatch:midtrans:calls:"
SOCKET_TIMEOUT = 1.0

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    url = settings.REDIS_URL
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                                 socket_connect_timeout=SOCKET_TIMEOUT)
        return _clients[url]


def key_for(second: int) -> str:
    """Return the counter's key for one wall-clock second (shared by every host with a synced clock)."""
    return f"{KEY_PREFIX}{second}"


class SharedBudget:
    """Take calls from the per-second budget all processes share."""

    def __init__(self, per_second: float) -> None:
        self.ceiling = max(1, int(per_second)) if per_second > 0 else 0

    def take(self, deadline: float) -> bool:
        """Count one call in the current second, waiting for a later second while this one is full.

        Return False (the call must not be made) when no second before
        ``deadline`` (a ``time.monotonic()`` value) has room.
        """
        if not self.ceiling:
            return True
        while True:
            now = time.time()
            second = int(now)
            try:
                with _client().pipeline(transaction=True) as pipe:
                    pipe.incr(key_for(second))
                    pipe.expire(key_for(second), 5)
                    count, _ = pipe.execute()
            except (RedisError, OSError) as exc:
                logger.warning("Shared Midtrans call budget not counted (Redis: %s)", type(exc).__name__)
                return True
            if count <= self.ceiling:
                return True
            wait = second + 1 - now
            if time.monotonic() + wait >= deadline:
                return False
            time.sleep(wait)  # this second is spent (by any process): the next one starts afresh

    @staticmethod
    def used(second: int | None = None) -> int:
        """Return how many calls were counted in a second (now by default); for tests and dashboards."""
        value = _client().get(key_for(int(time.time()) if second is None else second))
        return int(value or 0)
