"""Run Midtrans calls for many payments: a small pool, the shared calls-per-second ceiling and circuit, a deadline."""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db import connections
from redis.exceptions import RedisError

from reconcile import budget, conf, metrics
from reconcile.budget import RateLimiter, SharedBudget

__all__ = ["Circuit", "Done", "RateLimiter", "Run", "SharedCircuit", "run_pool"]

logger = logging.getLogger("paywatch.reconcile")
T = TypeVar("T")
CIRCUIT_KEY = "paywatch:midtrans:circuit:open-until"  # Redis-clock µs, expiring then
FAILURES_KEY = "paywatch:midtrans:circuit:failures"
R = TypeVar("R")


class Circuit:
    """Opens after ``threshold`` consecutive outage answers and stays open for the rest of the run (one process)."""

    def __init__(self, threshold: int = conf.CIRCUIT_THRESHOLD) -> None:
        self.threshold = threshold
        self.failures = 0
        self._open = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._open

    # The budget refuses slots while a shared circuit is open, and reports its failure count; a local one has no keys.
    redis_key = ""
    failures_key = ""

    def learn_failures(self, failures: int) -> None:
        """Take note of the outages in a row every worker counted (seen by the shared budget)."""

    def learn_open(self, seconds: float) -> None:
        """Take note that the circuit is open (seen by the shared budget)."""
        self._open = True

    def record(self, *, unavailable: bool) -> None:
        """Count one answer (or the lack of one)."""
        with self._lock:
            if not unavailable:
                self.failures = 0
                return
            self.failures += 1
            if self.failures >= self.threshold and not self._open:
                self._open = True
                self._tripped()

    def _tripped(self) -> None:
        metrics.circuit_trips.inc()
        logger.warning("Midtrans unavailable: reconcile stops calling it for this run",
                       extra={"consecutive_failures": self.failures})


# KEYS: open-until key, failures key. ARGV: open µs. Reply: 1 if this call opened the circuit.
_TRIP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local opened = redis.call('SET', KEYS[1], now + tonumber(ARGV[1]), 'PX', math.floor(tonumber(ARGV[1]) / 1000), 'NX')
redis.call('DEL', KEYS[2])
if opened then return 1 else return 0 end
"""


class SharedCircuit(Circuit):
    """The outage circuit every worker shares through Redis: open until T after ``threshold`` outages in a row.

    "In a row" counts every worker's answers (a success anywhere resets it);
    once open, the shared budget refuses every slot until T, so each worker
    stops at its next call and the coordinator enqueues nothing. Without
    Redis it counts this process's answers only, as a local ``Circuit``.
    """

    redis_key = CIRCUIT_KEY
    failures_key = FAILURES_KEY

    def __init__(self, threshold: int = conf.CIRCUIT_THRESHOLD, open_seconds: float | None = None) -> None:
        super().__init__(threshold)
        self.open_seconds = conf.circuit_open_seconds() if open_seconds is None else open_seconds
        self._open_until = 0.0  # time.monotonic() until which this process knows the circuit is open
        self._failures_counted = False  # whether a count may stand that a success must reset

    @property
    def is_open(self) -> bool:
        return self._open or time.monotonic() < self._open_until

    def learn_open(self, seconds: float) -> None:
        self._open_until = max(self._open_until, time.monotonic() + seconds)

    def learn_failures(self, failures: int) -> None:
        # Another worker's outages count too: the next success here resets them.
        if failures:
            self._failures_counted = True

    def record(self, *, unavailable: bool) -> None:
        """Count one answer in Redis (a success resets the count only when one stands: no round trip otherwise)."""
        try:
            if not unavailable:
                if self._failures_counted:
                    self._failures_counted = False
                    budget.client().delete(FAILURES_KEY)
                return
            self._failures_counted = True
            with budget.client().pipeline(transaction=True) as pipe:
                pipe.incr(FAILURES_KEY)
                pipe.expire(FAILURES_KEY, max(1, int(self.open_seconds)))
                failures, _ = pipe.execute()
            if failures >= self.threshold:
                opened = budget.client().register_script(_TRIP)(
                    keys=[CIRCUIT_KEY, FAILURES_KEY], args=[int(self.open_seconds * 1_000_000)])
                self.learn_open(self.open_seconds)
                if opened:
                    self.failures = failures
                    self._tripped()
        except (RedisError, OSError) as exc:
            logger.warning("Shared circuit unreachable (Redis: %s); counting this process's answers",
                           type(exc).__name__)
            super().record(unavailable=unavailable)

    def _tripped(self) -> None:
        metrics.circuit_trips.inc()
        logger.warning("Midtrans unavailable: every worker stops calling it for %.0f s", self.open_seconds,
                       extra={"consecutive_failures": self.failures})


def circuit_open_for() -> float:
    """Return how many seconds the shared circuit stays open (0: closed); for the coordinator and dashboards."""
    try:
        remaining_ms = budget.client().pttl(CIRCUIT_KEY)
    except (RedisError, OSError):
        return 0.0
    return max(0.0, remaining_ms / 1000)


class Run:
    """What every call of one run (or chunk) shares: its deadline, the rate ceiling and the circuit.

    The ceiling is ``SharedBudget``'s, counted with every other caller of
    Midtrans in any process (other chunks, the cleanup, the watched fast
    lane); the circuit is shared too unless a local one is given
    (``check-all`` at a terminal reports an outage for itself).
    """

    def __init__(self, *, budget_seconds: float, max_calls_per_second: float, concurrency: int,
                 circuit: Circuit | None = None) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + budget_seconds
        self.circuit = SharedCircuit() if circuit is None else circuit
        self.budget = SharedBudget(max_calls_per_second, circuit_key=self.circuit.redis_key,
                                   failures_key=self.circuit.failures_key)
        self.concurrency = max(1, concurrency)
        metrics.ceiling.set(max_calls_per_second)
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    @property
    def calls(self) -> int:
        return self._calls

    def permit(self) -> bool:
        """Return whether one more Midtrans call may be made now (waiting for the rate ceiling)."""
        if self.circuit.is_open:
            metrics.permits.labels(result="circuit").inc()
            return False
        verdict = self.budget.ask(self.deadline)
        self.circuit.learn_failures(verdict.failures)
        if verdict.circuit_open_for:
            self.circuit.learn_open(verdict.circuit_open_for)
            metrics.permits.labels(result="circuit").inc()
            return False
        if not verdict.granted:
            metrics.permits.labels(result="no_slot").inc()
            return False
        metrics.permits.labels(result="granted").inc()
        with self._lock:
            self._calls += 1
        return True

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class Done(Generic[R]):
    """One item's result, with its position in the input."""

    index: int
    result: R


def run_pool(items: Sequence[T], work: Callable[[T], R | None], run: Run) -> Iterator[Done[R]]:
    """Call ``work`` on items from ``run.concurrency`` threads; yield results as they finish.

    ``work`` returns None for an item it did not do (no permit). Threads stop
    taking items once the circuit opens or the deadline passes; each closes
    its own database connections.
    """
    todo: queue.SimpleQueue[tuple[int, T]] = queue.SimpleQueue()
    for pair in enumerate(items):
        todo.put(pair)
    done: queue.SimpleQueue[Done[R] | None] = queue.SimpleQueue()

    def worker() -> None:
        try:
            while not run.circuit.is_open and not run.out_of_time:
                try:
                    index, item = todo.get_nowait()
                except queue.Empty:
                    return
                result = work(item)
                if result is None:
                    return
                done.put(Done(index, result))
        except Exception:  # work() records its own failures; this is a bug, keep the run alive
            logger.exception("Reconcile worker thread failed")
        finally:
            connections.close_all()
            done.put(None)

    threads = [threading.Thread(target=worker, name=f"reconcile-{n}", daemon=True)
               for n in range(min(run.concurrency, max(1, len(items))))]
    for thread in threads:
        thread.start()
    running = len(threads)
    while running:
        finished = done.get()
        if finished is None:
            running -= 1
        else:
            yield finished
    for thread in threads:
        thread.join()
