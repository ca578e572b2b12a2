"""The calls-per-second ceiling on Midtrans, shared by every process on every host through Redis.

Every call to Midtrans's status API made by the reconcile's chunks, the
cleanup, ``check-all`` and the watched fast lane takes a slot here first, so
that all of them together, in whatever process, stay under
``RECONCILE_MAX_CALLS_PER_SECOND``: Midtrans sees one polite client.

The algorithm is GCRA (a leaky bucket with no burst): one Lua script, run
atomically by Redis on Redis's own clock (``TIME``, so the hosts' clocks do
not matter), hands out slots ``(1 + GUARD) / ceiling`` seconds apart and says
how long until this caller's slot; the caller sleeps that long, then calls.
Slots are spread evenly, so no one-second window holds more than the ceiling
even when the wake-ups jitter by up to ``GUARD`` seconds. A reservation past
the caller's deadline is refused without being taken. The same script
refuses every slot while the shared circuit (``reconcile.runner.SharedCircuit``)
is open, so a tripped circuit stops every worker at its next call. Each slot
granted is also counted under its second (``used()``: dashboards, the bench and
the tests read it).

Considered ``limits`` (its Redis moving window): it answers yes or no, not
"when", so a waiting caller would poll Redis in a loop (16 threads per worker,
all at once), and it lets a whole second's calls out in one burst.

Redis trouble: each process falls back to spacing its own calls at the full
ceiling (``RateLimiter``) until Redis answers again — the chunks, the lock and
the queue live in Redis, so a reconcile without it ends soon anyway.
"""

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import RedisError

logger = logging.getLogger("paywatch.reconcile")

SLOT_KEY = "paywatch:midtrans:next-slot"
KEY_PREFIX = "paywatch:midtrans:calls:"  # + Unix second (Redis's clock): slots granted in it
SOCKET_TIMEOUT = 1.0
# Slack between consecutive slots, as a share of a second per ceiling's worth of calls: a call that wakes up to
# this late cannot make a one-second window hold ceiling + 1 (the cost: 5 % under the ceiling at full speed).
GUARD = 0.05
# No caller waits longer than this for one slot, whatever its deadline (check-all has none): a day.
LONGEST_WAIT = 86_400.0

# KEYS: slot key, circuit key, per-second counter prefix, circuit failures key. ARGV: interval µs, longest wait µs.
# Reply: {0, wait µs, failures} granted; {-1, wait µs, failures} no slot before the deadline (nothing taken);
# {-2, µs until the circuit closes, failures} circuit open (nothing taken). "failures": outages in a row so far,
# so that a success resets the shared count only when there is one (no extra round trip otherwise).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local failures = tonumber(redis.call('GET', KEYS[4]) or '0')
local open_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if open_until > now then return {-2, open_until - now, failures} end
local interval = tonumber(ARGV[1])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if slot - now > tonumber(ARGV[2]) then return {-1, slot - now, failures} end
redis.call('SET', KEYS[1], slot + interval, 'PX', math.floor((slot + interval - now) / 1000) + 1000)
local counter = KEYS[3] .. math.floor(slot / 1000000)
redis.call('INCR', counter)
redis.call('EXPIRE', counter, 120)
return {0, slot - now, failures}
"""

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_fallbacks: dict[float, "RateLimiter"] = {}


def client() -> redis.Redis:
    """Return this process's Redis client for the budget and the circuit (short timeouts)."""
    url = settings.REDIS_URL
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                                 socket_connect_timeout=SOCKET_TIMEOUT)
        return _clients[url]


def key_for(second: int) -> str:
    """Return the key counting the slots granted in one Unix second (Redis's clock)."""
    return f"{KEY_PREFIX}{second}"


class RateLimiter:
    """Space one process's calls evenly under ``per_second`` (its threads share it); the fallback without Redis."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, deadline: float) -> bool:
        """Wait for this caller's slot; return False (without waiting) if it falls after ``deadline``."""
        if not self.interval:
            return time.monotonic() < deadline
        # The lock is held through the sleep and the next slot counts from when this one really
        # began: a thread that woke late cannot let the next one in early.
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            if slot >= deadline:
                return False
            if slot > now:
                time.sleep(slot - now)
            self._next = time.monotonic() + self.interval
        return True


@dataclass(frozen=True)
class Verdict:
    """The budget's answer: granted (after waiting), or why not."""

    granted: bool
    circuit_open_for: float = 0.0  # seconds the shared circuit stays open; 0 when it is not the reason
    failures: int = 0              # outages in a row counted so far by every worker (shared circuit)


class SharedBudget:
    """Take slots from the calls-per-second ceiling every process shares."""

    def __init__(self, per_second: float, *, circuit_key: str = "", failures_key: str = "") -> None:
        self.per_second = per_second if per_second > 0 else 0.0
        # Microseconds between slots; the guard spreads a ceiling's worth of calls over 1 + GUARD seconds.
        self.interval_us = int((1.0 + GUARD) * 1_000_000 / per_second) + 1 if per_second > 0 else 0
        self.circuit_key = circuit_key
        self.failures_key = failures_key

    def take(self, deadline: float) -> bool:
        """Wait for a slot; return False (the call must not be made) when none comes before ``deadline``."""
        return self.ask(deadline).granted

    def ask(self, deadline: float) -> Verdict:
        """Wait for a slot before ``deadline`` (a ``time.monotonic()`` value) and say whether it came.

        With no ceiling configured only the shared circuit is asked (when a key is given).
        """
        longest = deadline - time.monotonic()
        if longest <= 0:
            return Verdict(False)
        if not self.interval_us and not self.circuit_key:
            return Verdict(True)
        try:
            code, wait_us, failures = _script()(
                keys=[SLOT_KEY, self.circuit_key or f"{SLOT_KEY}:no-circuit", KEY_PREFIX,
                      self.failures_key or f"{SLOT_KEY}:no-circuit"],
                args=[self.interval_us, int(min(longest, LONGEST_WAIT) * 1_000_000)])
        except (RedisError, OSError) as exc:
            logger.warning("Shared Midtrans call budget unreachable (Redis: %s); spacing this process's calls",
                           type(exc).__name__)
            return Verdict(self._fallback().wait(deadline))
        if code == -2:
            return Verdict(False, circuit_open_for=wait_us / 1_000_000, failures=failures)
        if code != 0:
            return Verdict(False, failures=failures)
        if wait_us > 0:
            time.sleep(wait_us / 1_000_000)
        return Verdict(True, failures=failures)

    def _fallback(self) -> RateLimiter:
        with _lock:
            return _fallbacks.setdefault(self.per_second, RateLimiter(self.per_second))

    @staticmethod
    def used(second: int | None = None) -> int:
        """Return how many slots were granted in a Unix second (Redis's clock; now by default)."""
        if second is None:
            second = int(client().time()[0])
        return int(client().get(key_for(second)) or 0)

    @staticmethod
    def busiest(first: int, last: int) -> tuple[int, int]:
        """Return (second, slots) of the busiest second from ``first`` to ``last`` (Unix seconds, Redis's clock)."""
        seconds = list(range(first, last + 1))
        counts = client().mget([key_for(s) for s in seconds]) if seconds else []
        return max(((s, int(c or 0)) for s, c in zip(seconds, counts, strict=True)), key=lambda p: p[1],
                   default=(first, 0))


_scripts: dict[str, Script] = {}


def _script() -> Script:
    """Return the take script on this process's client (sent once, then run by its SHA)."""
    redis_client = client()
    with _lock:
        if settings.REDIS_URL not in _scripts:
            _scripts[settings.REDIS_URL] = redis_client.register_script(_TAKE)
        return _scripts[settings.REDIS_URL]
