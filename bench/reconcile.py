"""Benchmark: one reconcile run shared by 1, then 2, real qcluster workers, on PostgreSQL, against the simulator.

Starts a throw-away PostgreSQL (paywatch_dev/postgres.py; durable: every
commit flushed, as production runs it), redis-server and simulator (status
API latency 50 ms by default), creates N pending payments and their Midtrans
transactions, then for each worker count: makes every payment due, starts
that many ``manage.py qcluster`` processes (``--q-workers`` worker processes
each, one by default; ``--concurrency`` threads per chunk), dispatches one
run from this process (the coordinator) and times it until every chunk is
done. Prints the wall time, the speed-up of the last count over the first,
and — in a last pass under a ceiling low enough to bind — the busiest
second's calls, counted three ways: the slots the shared budget granted
(Redis), the calls' own start times (``last_checked_at``), and the requests
the simulator logged.

    .venv/bin/python bench/reconcile.py [--workers 1,2] [--q-workers 1] [--count 10000] [--latency-ms 50]
        [--concurrency 16] [--chunk-size 100] [--max-calls-per-second 2000] [--binding-ceiling 100]
        [--binding-count 2000] [--profile PATH]   # py-spy (raw) of one worker during the last speed run
"""

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from paywatch_dev.postgres import PostgresCluster  # noqa: E402
from paywatch_dev.servers import ServerProcess, start_redis, start_simulator  # noqa: E402

SERVER_KEY = "SB-Mid-server-BENCH"
SIM_LINE = re.compile(r"^(\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d) GET /v2/[^/]+/status ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="qcluster counts to run, in order (default 1,2)")
    parser.add_argument("--count", type=int, default=10_000, help="due payments per run (default 10000)")
    parser.add_argument("--latency-ms", type=int, default=50, help="simulator status API latency")
    parser.add_argument("--q-workers", type=int, default=1, help="worker processes per qcluster (Q_WORKERS)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per chunk (RECONCILE_CONCURRENCY)")
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--max-calls-per-second", type=float, default=2000.0,
                        help="ceiling for the speed runs (high: not the bound)")
    parser.add_argument("--binding-ceiling", type=float, default=100.0, help="ceiling for the last pass")
    parser.add_argument("--binding-count", type=int, default=2000, help="payments in the last pass")
    parser.add_argument("--profile", default=None, help="write a py-spy raw profile of one worker here")
    parser.add_argument("--profile-gil", action="store_true",
                        help="profile only the samples that hold the GIL (the worker's own CPU)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="paywatch-bench-") as tmp, PostgresCluster(durable=True) as pg:
        redis = start_redis(tmp)
        sim = start_simulator(tmp, notify_url="http://127.0.0.1:9/unused", server_key=SERVER_KEY)
        try:
            pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
            Bench(args, Path(tmp), database_url=pg.url, redis_url=str(redis.url), sim=sim, pg_pid=pg_pid).run(counts)
        finally:
            sim.stop()
            redis.stop()


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, *, database_url: str, redis_url: str,
                 sim: ServerProcess, pg_pid: int) -> None:
        self.args, self.tmp, self.sim, self.sim_url, self.pg_pid = args, tmp, sim, str(sim.url), pg_pid
        self.env = {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MIDTRANS_SERVER_KEY": SERVER_KEY,
            "MIDTRANS_CORE_API_URL": self.sim_url,
            "MIDTRANS_SNAP_API_URL": f"{self.sim_url}/snap/v1",
            "LOG_LEVEL": "WARNING",
            "RECONCILE_CONCURRENCY": str(args.concurrency),
            "Q_WORKERS": str(args.q_workers),
            "PYTHONPATH": str(ROOT),
        }
        os.environ.update(self.env)

    def run(self, counts: list[int]) -> None:
        import django

        django.setup()
        from django.core.management import call_command
        from django_q.models import Schedule

        call_command("migrate", verbosity=0)
        # migrate schedules a reconcile, due at once: run by the workers, its coordinator raced the one timed
        # here for the run lock and left tasks queued (a later pass then found the queue "busy" and queued
        # nothing). This database is the bench's own: no schedules.
        Schedule.objects.all().delete()
        self.sim_config(notifications=False)
        started = time.monotonic()
        total = max(self.args.count, self.args.binding_count)
        self.numbers = create_payments(total)
        create_transactions(self.sim_url, self.numbers)
        print(f"set-up: {total} pending payments and Midtrans transactions in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
        self.sim_config(status_latency_ms=self.args.latency_ms)

        print(f"machine: {machine()} (shared with other test runs while measured)")
        print(f"PostgreSQL (durable); status latency {self.args.latency_ms} ms; {self.args.concurrency} threads per "
              f"chunk; chunks of {self.args.chunk_size}; {self.args.q_workers} worker process(es) per qcluster")
        print(f"{'workers':>7} {'ceiling':>8} {'payments':>8} {'wall s':>7} {'payments/s':>10} "
              f"{'busiest s (slots)':>17} {'(call starts)':>13} {'(at simulator)':>14}   "
              "CPU ms per payment: workers postgres simulator")
        walls = {}
        for n, workers in enumerate(counts):
            profile = self.args.profile if n == len(counts) - 1 else None
            walls[workers] = self.one(workers, self.args.count, self.args.max_calls_per_second, profile=profile)
        if len(counts) > 1:
            first, last = counts[0], counts[-1]
            print(f"speed-up of {last} workers over {first}: {walls[first] / walls[last]:.2f}x")
        self.one(counts[-1], self.args.binding_count, self.args.binding_ceiling)

    def one(self, workers: int, count: int, ceiling: float, profile: str | None = None) -> float:
        """Run one dispatched reconcile of ``count`` due payments over ``workers`` qclusters; return its wall time."""
        from datetime import timedelta

        from django.utils import timezone

        from checkout.models import Payment
        from reconcile import chunks
        from reconcile.budget import SharedBudget, client
        from reconcile.services import reconcile_dispatch

        Payment.objects.update(next_check_at=timezone.now() + timedelta(days=1), last_checked_at=None)
        due = list(Payment.objects.order_by("pk").values_list("pk", flat=True)[:count])
        Payment.objects.filter(pk__in=due).update(next_check_at=timezone.now())
        env = {**self.env, "RECONCILE_MAX_CALLS_PER_SECOND": str(ceiling)}
        procs = [ServerProcess(f"qcluster-{workers}w-{ceiling:g}-{i}", [sys.executable, "manage.py", "qcluster"],
                               self.tmp, env=env, cwd=ROOT).start() for i in range(workers)]
        spy = None
        try:
            wait_for_clusters({proc.proc.pid for proc in procs})
            os.environ["RECONCILE_MAX_CALLS_PER_SECOND"] = str(ceiling)
            if profile:
                py_spy = str(Path(sys.executable).with_name("py-spy"))
                gil = ["--gil"] if self.args.profile_gil else []
                spy = subprocess.Popen([py_spy, "record", "--nonblocking", "--format", "raw", "--subprocesses", *gil,
                                        "--rate", "50", "-o", profile, "--pid", str(procs[0].proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)  # py-spy attaches
            sim_lines = self.sim.log_path.stat().st_size
            parts = {"workers": [proc.proc.pid for proc in procs], "postgres": [self.pg_pid],
                     "simulator": [self.sim.proc.pid]}
            cpu_before = cpu_seconds_by_part(parts)
            first_second = int(client().time()[0])
            t0 = time.monotonic()
            summary = reconcile_dispatch(budget_seconds=3600, max_calls_per_second=ceiling,
                                         chunk_size=self.args.chunk_size)
            assert summary.queued == count, summary
            poll = threading.Event()
            while True:
                queued = client().zcard(chunks.QUEUED_KEY)
                running = client().zcard(chunks.RUNNING_KEY)
                if not queued and not running:
                    break
                poll.wait(0.05)
            wall = time.monotonic() - t0
            cpu = {part: (used - cpu_before[part]) * 1000 / count for part, used in cpu_seconds_by_part(parts).items()}
            last_second = int(client().time()[0])
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            for proc in procs:
                proc.stop()
        unchecked = Payment.objects.filter(pk__in=due, last_checked_at__isnull=True).count()
        assert not unchecked, f"{unchecked} payments unchecked"
        slots = SharedBudget.busiest(first_second, last_second)[1]
        starts = Counter(int(at.timestamp()) for at in
                         Payment.objects.filter(pk__in=due).values_list("last_checked_at", flat=True))
        at_sim = self.sim_busiest_second(sim_lines)
        print(f"{workers:>7} {ceiling:>8g} {count:>8} {wall:>7.1f} {count / wall:>10.0f} {slots:>17} "
              f"{max(starts.values()):>13} {at_sim:>14}   " + " ".join(f"{ms:.2f}" for ms in cpu.values()), flush=True)
        return wall

    def sim_busiest_second(self, offset: int) -> int:
        with self.sim.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        seconds = Counter(m.group(1) for m in map(SIM_LINE.match, text.splitlines()) if m)
        return max(seconds.values(), default=0)

    def sim_config(self, **config: object) -> None:
        requests.post(f"{self.sim_url}/sim/config", json=config, timeout=10).raise_for_status()


def cpu_seconds_by_part(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each part: the processes in ``roots`` and all their descendants.

    Wall times on these shared cores vary by half from run to run; the CPU a
    check costs each part is the steadier figure (docs/benchmarks.md).
    """
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    hz = os.sysconf("SC_CLK_TCK")
    totals = {}
    for part, pids in roots.items():
        members, frontier = set(pids), set(pids)
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - members
            members |= frontier
        totals[part] = sum(ticks.get(pid, 0) for pid in members) / hz
    return totals


def wait_for_clusters(pids: set[int], timeout: float = 60.0) -> None:
    """Wait until every qcluster started (by its sentinel's pid) reports to Redis with its worker up."""
    from django_q.status import Stat

    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not pids <= {stat.pid for stat in Stat.get_all() if stat.workers}:
        if time.monotonic() > deadline:
            raise TimeoutError(f"qclusters {sorted(pids)} did not report within {timeout} s")
        pause.wait(0.2)


def create_payments(count: int) -> list[str]:
    """Insert ``count`` pending orders and payments (not yet due)."""
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
        [Payment(order=order, amount=Decimal(85000), expires_at=now + timedelta(days=1), next_check_at=None)
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


if __name__ == "__main__":
    main()
