"""One log line per Redis outage for django-q2's processes, and the backoff their broker follows.

While Redis is down, django-q2 1.11.1 logs on every attempt: the Sentinel's
guard saves the cluster status every 0.5 s (``Stat.save`` logs each failure
as an ERROR), the pusher logs a traceback, sleeps 10 s, dies and is
reincarnated (a CRITICAL), and the scheduler logs a traceback every 30 s.
``project.qbroker.ResilientRedis`` stops most of those at the source; this
module holds what it shares with ``RedisOutageFilter``: each process's outage
state (django-q's processes are forked, so each reports its own outage once).
Kept free of django-q imports: the filter is built while logging is set up.
"""

import logging
import threading
import time
from multiprocessing import current_process

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("paywatch.qcluster")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0


class Outage:
    """A process's view of Redis: up, or down since when, and when to try again (exponential backoff)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self._failures = 0
        self._next_try = 0.0

    @property
    def active(self) -> bool:
        """Return whether this process currently considers Redis down."""
        return self.since is not None

    def seconds_until_retry(self) -> float:
        """Return how long to wait before the next attempt (0 when Redis is up or the wait is over)."""
        return max(0.0, self._next_try - time.monotonic()) if self.active else 0.0

    def failed(self, exc: BaseException) -> None:
        """Record a failed attempt; log once, when the outage starts."""
        now = time.monotonic()
        with self._lock:
            first = self.since is None
            if first:
                self.since, self._failures = now, 0
            self._failures += 1
            self._next_try = now + min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (self._failures - 1))
        if first:
            logger.error("Redis unreachable from %s (%s: %s); backing off, logged again when it is back",
                         current_process().name, type(exc).__name__, exc)

    def succeeded(self) -> None:
        """Record a successful call; log once, when it ends an outage."""
        if self.since is None:
            return
        with self._lock:
            if self.since is None:
                return
            lasted, self.since, self._failures = time.monotonic() - self.since, None, 0
        logger.info("Redis reachable again from %s after %.0f s", current_process().name, lasted)


outage = Outage()


def redis_error_of(record: logging.LogRecord) -> BaseException | None:
    """Return the Redis connection error a django-q record reports, if it reports one.

    ``Stat.save`` logs the exception object itself as the message; the pusher
    and the scheduler log with ``exc_info``.
    """
    if isinstance(record.msg, REDIS_DOWN):
        return record.msg
    if record.exc_info and isinstance(record.exc_info[1], REDIS_DOWN):
        return record.exc_info[1]
    return None


class RedisOutageFilter(logging.Filter):
    """On the ``django-q`` logger: fold its Redis connection errors into one line per outage."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop a Redis connection error; the first of an outage is reported by ``outage`` instead."""
        exc = redis_error_of(record)
        if exc is None:
            return True
        if not outage.active:
            outage.failed(exc)
        return False
