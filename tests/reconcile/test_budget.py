"""The shared calls-per-second budget and the shared circuit: what every worker takes from Redis before a call."""

import threading
from collections import Counter

import pytest
import redis

from reconcile import budget, runner
from reconcile.budget import SharedBudget
from reconcile.runner import Run, SharedCircuit


def redis_now_us(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1_000_000 + micros


def test_every_second_gets_at_most_the_ceiling_whatever_the_number_of_takers(redis_client) -> None:
    """Three "workers" (each its own budget object) take 45 slots at 20/s: no second is granted more than 20."""
    first = int(redis_client.time()[0])
    granted = Counter()

    def worker(name: str) -> None:
        mine = SharedBudget(20)
        for _ in range(15):
            assert mine.take(deadline=budget.time.monotonic() + 30)
            granted[name] += 1

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    last = int(redis_client.time()[0])
    per_second = [SharedBudget.used(second) for second in range(first, last + 1)]
    assert sum(granted.values()) == 45
    assert sum(per_second) >= 45  # the stack's processes, if any are running, may take slots of these seconds too
    assert max(per_second) <= 20
    assert SharedBudget.busiest(first, last)[1] == max(per_second)


def test_slots_are_spread_evenly_not_in_bursts(redis_client) -> None:
    """Each slot taken moves the next free one on by (1 + GUARD) / ceiling seconds, on Redis's clock."""
    shared = SharedBudget(2)
    assert shared.take(deadline=budget.time.monotonic() + 5)  # the first: now
    first = int(redis_client.get(budget.SLOT_KEY))
    assert shared.take(deadline=budget.time.monotonic() + 5)  # the second: one interval later, however soon asked
    assert int(redis_client.get(budget.SLOT_KEY)) - first == shared.interval_us
    assert shared.interval_us == int((1 + budget.GUARD) * 1_000_000 / 2) + 1


def test_no_slot_before_the_deadline_is_refused_without_taking_one(redis_client) -> None:
    spent_until = redis_now_us(redis_client) + 5_000_000
    redis_client.set(budget.SLOT_KEY, spent_until, ex=60)
    assert SharedBudget(10).take(deadline=budget.time.monotonic() + 0.2) is False
    assert int(redis_client.get(budget.SLOT_KEY)) == spent_until


def test_no_ceiling_means_no_wait_and_a_passed_deadline_no_call() -> None:
    assert SharedBudget(0).take(deadline=budget.time.monotonic() + 1) is True
    assert SharedBudget(10).take(deadline=budget.time.monotonic() - 1) is False


def test_without_redis_each_process_spaces_its_own_calls(settings) -> None:
    """Redis unreachable: the call is not refused; this process's RateLimiter spaces the calls instead."""
    from paywatch_dev.servers import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    shared = SharedBudget(50)
    assert shared.take(deadline=budget.time.monotonic() + 5) is True
    assert shared._fallback().interval == pytest.approx(1 / 50)


def test_the_circuit_is_shared_a_success_anywhere_resets_and_an_open_one_stops_every_worker(redis_client) -> None:
    one, two = SharedCircuit(threshold=3, open_seconds=30), SharedCircuit(threshold=3, open_seconds=30)
    one.record(unavailable=True)
    two.record(unavailable=True)
    one.record(unavailable=False)  # Midtrans answered one worker: the count starts again
    assert not redis_client.exists(runner.CIRCUIT_KEY)
    for circuit in (one, two, one):  # three outages in a row, whichever worker met them
        circuit.record(unavailable=True)
    assert one.is_open and redis_client.pttl(runner.CIRCUIT_KEY) > 0
    assert 0 < runner.circuit_open_for() <= 30
    # A third worker that saw nothing learns it from the budget, before any call.
    third = Run(budget_seconds=5, max_calls_per_second=10, concurrency=1)
    assert third.permit() is False and third.circuit.is_open and third.calls == 0
    # No ceiling configured: the circuit is still asked.
    assert Run(budget_seconds=5, max_calls_per_second=0, concurrency=1).permit() is False


def test_a_local_circuit_ignores_the_shared_one(redis_client) -> None:
    """check-all at a terminal reports what Midtrans tells it, not what a worker met earlier."""
    redis_client.set(runner.CIRCUIT_KEY, redis_now_us(redis_client) + 30_000_000, px=30_000)
    run = Run(budget_seconds=5, max_calls_per_second=10, concurrency=1, circuit=runner.Circuit())
    assert run.permit() is True
