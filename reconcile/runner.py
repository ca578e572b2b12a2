"""Run Midtrans calls for many payments: a small pool, a calls-per-second ceiling, a circuit, a deadline."""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db import connections

from reconcile import conf, metrics
from reconcile.budget import SharedBudget

logger = logging.getLogger("paywatch.reconcile")
T = TypeVar("T")
R = TypeVar("R")


class RateLimiter:
    """Space calls evenly so that no second holds more than ``per_second`` of them (shared by threads)."""

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


class Circuit:
    """Opens after ``threshold`` consecutive outage answers and stays open for the rest of the run."""

    def __init__(self, threshold: int = conf.CIRCUIT_THRESHOLD) -> None:
        self.threshold = threshold
        self.failures = 0
        self.is_open = False
        self._lock = threading.Lock()

    def record(self, *, unavailable: bool) -> None:
        """Count one answer (or the lack of one)."""
        with self._lock:
            if not unavailable:
                self.failures = 0
                return
            self.failures += 1
            if self.failures >= self.threshold and not self.is_open:
                self.is_open = True
                metrics.circuit_trips.inc()
                logger.warning("Midtrans unavailable: reconcile stops calling it for this run",
                               extra={"consecutive_failures": self.failures})


class Run:
    """What every call of one run shares: its deadline, its rate ceiling and its circuit.

    The ceiling holds twice: spaced within the run (``RateLimiter``), and
    counted with every other caller of Midtrans in any process (``SharedBudget``:
    other runs, the cleanup, the watched fast lane).
    """

    def __init__(self, *, budget_seconds: float, max_calls_per_second: float, concurrency: int) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + budget_seconds
        self.limiter = RateLimiter(max_calls_per_second)
        self.budget = SharedBudget(max_calls_per_second)
        self.circuit = Circuit()
        self.concurrency = max(1, concurrency)
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
        if self.circuit.is_open or not self.limiter.wait(self.deadline) or not self.budget.take(self.deadline):
            return False
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
