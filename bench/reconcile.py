"""Benchmark: one full reconcile run vs the same checks done one by one (the seed's way).

Creates N pending payments in a scratch SQLite database, the matching
transactions at a real simulator (status API latency 50 ms by default) and a
throw-away redis-server, then times both. Prints wall time and Midtrans calls
per second, and the busiest one-second window, which must stay under the
configured ceiling.

    .venv/bin/python bench/reconcile.py [--count 10000] [--baseline-count N] [--latency-ms 50]
                                         [--concurrency 16] [--max-calls-per-second 250]
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from tests.support.servers import start_redis, start_simulator  # noqa: E402

SERVER_KEY = "SB-Mid-server-BENCH"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="pending payments (default 10000)")
    parser.add_argument("--baseline-count", type=int, default=None,
                        help="payments checked one by one (default: all of them)")
    parser.add_argument("--latency-ms", type=int, default=50, help="simulator status API latency")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-calls-per-second", type=float, default=250.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="paywatch-bench-") as tmp:
        redis = start_redis(tmp)
        sim = start_simulator(tmp, notify_url="http://127.0.0.1:9/unused", server_key=SERVER_KEY)
        try:
            run(args, Path(tmp), redis_url=str(redis.url), sim_url=str(sim.url))
        finally:
            sim.stop()
            redis.stop()


def run(args: argparse.Namespace, tmp: Path, *, redis_url: str, sim_url: str) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "MIDTRANS_SERVER_KEY": SERVER_KEY,
        "MIDTRANS_CORE_API_URL": sim_url,
        "MIDTRANS_SNAP_API_URL": f"{sim_url}/snap/v1",
        "LOG_LEVEL": "WARNING",
        "RECONCILE_CONCURRENCY": str(args.concurrency),
        "RECONCILE_MAX_CALLS_PER_SECOND": str(args.max_calls_per_second),
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    requests.post(f"{sim_url}/sim/config", json={"notifications": False}, timeout=10).raise_for_status()

    started = time.monotonic()
    numbers = create_payments(args.count)
    create_transactions(sim_url, numbers)
    print(f"set-up: {args.count} pending payments and Midtrans transactions in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    requests.post(f"{sim_url}/sim/config", json={"status_latency_ms": args.latency_ms},
                  timeout=10).raise_for_status()

    calls = CallLog()
    calls.install()
    print(f"machine: {machine()}")
    print(f"{args.count} pending payments, status latency {args.latency_ms} ms, concurrency {args.concurrency}, "
          f"ceiling {args.max_calls_per_second:g} calls/s")
    print(f"{'mode':<14} {'payments':>8} {'wall s':>8} {'calls':>7} {'calls/s':>8} {'max in 1 s':>10}")

    make_all_due()
    calls.reset()
    t0 = time.monotonic()
    from reconcile.services import reconcile_run

    summary = reconcile_run(budget_seconds=24 * 3600)
    pooled = time.monotonic() - t0
    assert summary.checked == args.count and not summary.errors, summary
    report("reconcile run", args.count, pooled, calls)

    baseline_count = args.baseline_count or args.count
    make_all_due()
    calls.reset()
    t0 = time.monotonic()
    one_by_one(baseline_count)
    serial = time.monotonic() - t0
    report("one by one", baseline_count, serial, calls)
    per_payment_serial = serial / baseline_count
    per_payment_pooled = pooled / args.count
    print(f"speed-up: {per_payment_serial / per_payment_pooled:.1f}x per payment "
          f"({per_payment_serial * 1000:.1f} ms vs {per_payment_pooled * 1000:.2f} ms)")


def create_payments(count: int) -> list[str]:
    """Insert ``count`` pending orders and payments, due now."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from checkout.models import Order, Payment

    now = timezone.now()
    numbers = [f"BENCH-{n:06d}" for n in range(count)]
    items = [{"sku": "kopi-gayo", "name": "Kopi", "price": 85000, "quantity": 1}]
    orders = Order.objects.bulk_create(
        [Order(number=number, gross_amount=Decimal(85000), items=items) for number in numbers], batch_size=1000)
    Payment.objects.bulk_create(
        [Payment(order=order, amount=Decimal(85000), expires_at=now + timedelta(days=1), next_check_at=now)
         for order in orders], batch_size=1000)
    return numbers


def create_transactions(sim_url: str, numbers: list[str]) -> None:
    """Create each Snap transaction and choose a VA at the simulator, through its public API."""
    local = threading.local()

    def one(number: str) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        session.post(f"{sim_url}/snap/v1/transactions", auth=(SERVER_KEY, ""), timeout=30,
                     json={"transaction_details": {"order_id": number, "gross_amount": 85000}}).raise_for_status()
        session.post(f"{sim_url}/sim/orders/{number}/pending", params={"notify": "drop"},
                     timeout=30).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, numbers))


def make_all_due() -> None:
    from django.utils import timezone

    from checkout.models import Payment

    Payment.objects.update(next_check_at=timezone.now())


def one_by_one(count: int) -> None:
    """The seed's loop: every pending payment, one status call after the other."""
    from checkout import services
    from checkout.models import Payment
    from reconcile.services import payment_schedule_next

    for payment in Payment.objects.select_related("order").filter(status="pending").order_by("pk")[:count]:
        transition = services.payment_check_now(payment=payment, source="reconcile")
        payment_schedule_next(payment=payment, status=transition.status_after)


class CallLog:
    """Record when each status call was made (wrapping the gateway, for this process only)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()

    def install(self) -> None:
        from checkout import gateway

        original = gateway.transaction_status

        def logged(order_id: str):
            with self.lock:
                self.times.append(time.monotonic())
            return original(order_id)

        gateway.transaction_status = logged

    def reset(self) -> None:
        with self.lock:
            self.times.clear()

    def busiest_second(self) -> int:
        times, best, start = sorted(self.times), 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


def report(mode: str, count: int, wall: float, calls: CallLog) -> None:
    n = len(calls.times)
    print(f"{mode:<14} {count:>8} {wall:>8.1f} {n:>7} {n / wall:>8.1f} {calls.busiest_second():>10}")


if __name__ == "__main__":
    main()
