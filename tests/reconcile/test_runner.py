"""The run's guards: a calls-per-second ceiling, a circuit, a deadline, and a pool that keeps order of results."""

import threading

import pytest

from reconcile import runner
from reconcile.runner import Circuit, RateLimiter, Run, run_pool


class FakeClock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now = max(self.now, self.now + seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(runner.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(runner.time, "sleep", fake.sleep)
    return fake


def test_rate_limiter_spaces_calls_to_the_ceiling(clock: FakeClock) -> None:
    """Twenty calls at 10/s: each slot is 0.1 s after the previous, so no second holds more than ten."""
    limiter = RateLimiter(10)
    starts = []
    for _ in range(20):
        assert limiter.wait(deadline=clock.now + 100)
        starts.append(clock.now)
    gaps = [round(b - a, 9) for a, b in zip(starts, starts[1:], strict=False)]
    assert gaps == [0.1] * 19
    assert max(sum(1 for s in starts if t <= s < t + 1) for t in starts) == 10


def test_rate_limiter_refuses_a_slot_after_the_deadline(clock: FakeClock) -> None:
    limiter = RateLimiter(2)
    deadline = clock.now + 1.0
    assert [limiter.wait(deadline) for _ in range(3)] == [True, True, False]


def test_circuit_opens_after_consecutive_outages_only() -> None:
    circuit = Circuit(threshold=3)
    for unavailable in (True, True, False, True, True):
        circuit.record(unavailable=unavailable)
    assert not circuit.is_open
    circuit.record(unavailable=True)
    assert circuit.is_open
    circuit.record(unavailable=False)
    assert circuit.is_open  # for the rest of the run


def test_pool_returns_every_result_once_with_its_index() -> None:
    run = Run(budget_seconds=60, max_calls_per_second=0, concurrency=4)
    seen = sorted((done.index, done.result) for done in run_pool(list(range(50)), lambda n: n * n, run))
    assert seen == [(n, n * n) for n in range(50)]


def test_pool_bounds_concurrency() -> None:
    run = Run(budget_seconds=60, max_calls_per_second=0, concurrency=3)
    lock, active, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    def work(n: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            if active[0] == 3:
                release.set()
        release.wait(5)
        with lock:
            active[0] -= 1
        return n

    assert len(list(run_pool(list(range(12)), work, run))) == 12
    assert peak[0] == 3


def test_pool_stops_taking_items_once_the_circuit_opens() -> None:
    run = Run(budget_seconds=60, max_calls_per_second=0, concurrency=1)

    def work(n: int) -> str:
        run.circuit.record(unavailable=True)
        return "unavailable"

    assert len(list(run_pool(list(range(10)), work, run))) == run.circuit.threshold


def test_pool_with_no_time_left_does_nothing() -> None:
    run = Run(budget_seconds=0, max_calls_per_second=0, concurrency=2)
    assert list(run_pool(list(range(10)), lambda n: n, run)) == []
