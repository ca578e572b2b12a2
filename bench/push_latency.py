"""Push latency: from a Midtrans webhook's request to every websocket watcher of that order.

Starts its own redis-server, daphne on a scratch SQLite database (or
``--database postgresql``) and the Midtrans simulator (the webhooks are
signed here; the simulator answers the status calls of the watched fast
lane, which checks every open page's payment as in production), creates the orders, opens
``--watchers`` websockets on distinct orders plus ``--shared`` on one order,
then fires signed notifications at a fixed (open-loop) rate. Every webhook is
a real change (payments alternate pending -> failed -> pending, which the state
machine allows for a Snap order), and every 10th goes to the shared order.

Prints p50/p95/p99 from the webhook request's start to each watcher's receipt
(also split: distinct orders, one socket each, and the shared order's fan-out),
the webhook requests' own latency, delivered/sent, each daphne's CPU while the
webhooks fire (``--rate 1`` makes that the cost of the open pages' pings), and
daphne's RSS. Run it
long enough to cross daphne's 20 s keepalive ping (the default duration does).

    .venv/bin/python bench/push_latency.py --watchers 1000 --layer pubsub
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from paywatch_dev.postgres import scratch_database  # noqa: E402
from paywatch_dev.servers import ServerProcess, free_port, http_ready, start_redis, start_simulator  # noqa: E402
from paywatch_dev.stack import DAPHNE_OPTIONS  # noqa: E402

SERVER_KEY = "SB-Mid-server-BENCH"
AMOUNT = "10000.00"
SHARED_EVERY = 10
# (transaction_status, status_code) alternating; each one is a real change.
MOVES = [("deny", "202"), ("pending", "201")]
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=1000, help="websockets on distinct orders")
    parser.add_argument("--shared", type=int, default=50, help="extra websockets all on one order")
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks per second (open loop)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of webhooks (> 20 s crosses a ping)")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub")
    parser.add_argument("--processes", type=int, default=1,
                        help="daphne processes on one shared socket (WEB_CONCURRENCY, as supervisor runs them); "
                             "above 1 they run production's options exactly, --ping-interval aside")
    parser.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight at once")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late deliveries")
    parser.add_argument("--gc-thresholds", default="",
                        help="daphne's GC_THRESHOLDS: empty = project/gctune.py's, 'default' = CPython's")
    parser.add_argument("--client-gc", choices=["default", "off"], default="off",
                        help="off (default): no cyclic GC in this load client, so its own pauses do not count")
    parser.add_argument("--heartbeat", type=float, default=30.0,
                        help="seconds between a watcher's pings, ±1/3 jitter, as the page sends (0: none)")
    parser.add_argument("--ping-interval", type=int, default=60, help="daphne --ping-interval (the Procfile's)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="postgresql: a throw-away cluster (paywatch_dev/postgres.py), as production runs")
    parser.add_argument("--db-dir", default=None,
                        help="directory for the scratch SQLite file (e.g. /dev/shm to take disk syncs out)")
    parser.add_argument("--watched-check-seconds", type=int, default=30,
                        help="daphne's WATCHED_CHECK_SECONDS (production's 30; 0 turns the fast lane off)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument("--profile", default=None,
                        help="write a py-spy raw profile (GIL holder) of daphne while the webhooks fire, and sum it up")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, database)")
    return parser.parse_args(argv)


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(needed, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- setup -------------------------------------------------------------------------------
def prepare_database(env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """Migrate the scratch database and create ``count`` pending orders; return (number, token)."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import transaction

    from checkout.models import Order, Payment

    with transaction.atomic():
        orders = Order.objects.bulk_create(
            Order(number=f"BENCH-{i:06d}", gross_amount=AMOUNT, items=[]) for i in range(count)
        )
        Payment.objects.bulk_create(Payment(order=order, amount=AMOUNT) for order in orders)
    return list(Order.objects.order_by("number").values_list("number", "access_token"))


# --- the load ------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.sent: dict[tuple[str, int], float] = {}
        self.expected: dict[tuple[str, int], int] = {}
        self.received: dict[tuple[str, int], list[float]] = defaultdict(list)
        self.webhook_ms: list[float] = []
        self.webhook_status: dict[int, int] = defaultdict(int)
        self.closed: list[str] = []
        self.all_in = asyncio.Event()
        self.outstanding = 0

    def receipt(self, number: str, version: int) -> None:
        key = (number, version)
        self.received[key].append(time.perf_counter())
        if key in self.expected and len(self.received[key]) <= self.expected[key]:
            self.outstanding -= 1
            if self.outstanding == 0 and self.firing_done:
                self.all_in.set()

    firing_done = False


async def watcher(url: str, number: str, rec: Recorder, ready: asyncio.Queue, gate: asyncio.Semaphore,
                  stop: asyncio.Event, heartbeat_s: float) -> None:
    import websockets

    origin = url.split("/ws/")[0].replace("ws://", "http://", 1)
    async with gate:
        socket = await websockets.connect(url, origin=origin, open_timeout=60, ping_interval=None,
                                          max_queue=None)
        first = json.loads(await socket.recv())
    await ready.put(first.get("version"))
    shown = {"version": first.get("version") or 0}
    beats = asyncio.create_task(heartbeat(socket, heartbeat_s, shown)) if heartbeat_s else None
    try:
        async for raw in socket:
            message = json.loads(raw)
            if message.get("type") == "payment.status":
                shown["version"] = max(shown["version"], message["version"])
                rec.receipt(number, message["version"])
    except websockets.ConnectionClosed as exc:
        if not stop.is_set():
            rec.closed.append(f"{number}: {exc}")
    finally:
        if beats:
            beats.cancel()


async def heartbeat(socket, every: float, shown: dict[str, int]) -> None:
    """Ping like static/checkout/order.js (with the version shown): first at a random point, then every ± a third."""
    await asyncio.sleep(random.uniform(0, every))
    while True:
        await socket.send(json.dumps({"type": "ping", "version": shown["version"]}))
        await asyncio.sleep(random.uniform(every * 2 / 3, every * 4 / 3))


async def post_webhook(port: int, body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /payments/midtrans/notification HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


async def fire(port: int, plan: list[tuple[str, int, bytes]], rate: float, rec: Recorder) -> None:
    async def one(number: str, version: int, body: bytes) -> None:
        start = time.perf_counter()
        rec.sent[(number, version)] = start
        try:
            status, _ = await post_webhook(port, body)
        except OSError:
            status = 0
        rec.webhook_ms.append((time.perf_counter() - start) * 1000)
        rec.webhook_status[status] += 1

    begin = time.perf_counter()
    tasks = []
    for k, (number, version, body) in enumerate(plan):
        delay = begin + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number, version, body)))
    await asyncio.gather(*tasks)


def build_plan(distinct: list[str], shared: str, count: int, watchers_per: dict[str, int],
               rec: Recorder) -> list[tuple[str, int, bytes]]:
    from checkout.signature import notification_signature

    versions: dict[str, int] = defaultdict(lambda: 1)
    plan = []
    for k in range(count):
        number = shared if k % SHARED_EVERY == SHARED_EVERY - 1 else distinct[k % len(distinct)]
        status, code = MOVES[(versions[number] - 1) % len(MOVES)]
        versions[number] += 1
        payload = {
            "order_id": number, "status_code": code, "gross_amount": AMOUNT, "currency": "IDR",
            "transaction_status": status, "fraud_status": "accept", "payment_type": "bank_transfer",
            "transaction_id": f"bench-{k}", "transaction_time": "2025-07-18 04:07:00",
            "signature_key": notification_signature(number, code, AMOUNT, SERVER_KEY),
        }
        plan.append((number, versions[number], json.dumps(payload).encode()))
        rec.expected[(number, versions[number])] = watchers_per[number]
    rec.outstanding = sum(rec.expected.values())
    return plan


async def run(args: argparse.Namespace, port: int, orders: list[tuple[str, str]], daphne_pids: list[int]) -> dict:
    rec = Recorder()
    stop = asyncio.Event()
    ready: asyncio.Queue = asyncio.Queue()
    gate = asyncio.Semaphore(args.connect_concurrency)
    base = f"ws://127.0.0.1:{port}/ws/orders"
    distinct, (shared_number, shared_token) = orders[:-1], orders[-1]
    targets = [(n, t) for n, t in distinct] + [(shared_number, shared_token)] * args.shared
    watchers_per = {n: 1 for n, _ in distinct}
    watchers_per[shared_number] = args.shared

    daphne_pid = daphne_pids[0]
    rss_before = rss_kib(daphne_pid)
    connect_start = time.perf_counter()
    tasks = [asyncio.create_task(watcher(f"{base}/{n}/?t={t}", n, rec, ready, gate, stop, args.heartbeat))
             for n, t in targets]
    for _ in targets:
        await ready.get()
    connect_s = time.perf_counter() - connect_start
    await asyncio.sleep(1.0)  # let daphne settle before reading its memory
    rss_idle = rss_kib(daphne_pid)

    count = int(args.rate * args.duration)
    plan = build_plan([n for n, _ in distinct], shared_number, count, watchers_per, rec)
    from bench.webhook_throughput import cpu_ticks, pyspy_record, summarize_profile  # it imports this module

    spy = pyspy_record(daphne_pid, args.duration, Path(args.profile)) if args.profile else None
    ticks = [cpu_ticks(pid) for pid in daphne_pids]
    fire_start = time.perf_counter()
    await fire(port, plan, args.rate, rec)
    fire_s = time.perf_counter() - fire_start
    cpu = [round((cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK") / fire_s * 100, 1)
           for pid, before in zip(daphne_pids, ticks, strict=True)]
    if spy is not None:
        spy.wait(30)
        print(summarize_profile(Path(args.profile).read_text()), file=sys.stderr)
    rec.firing_done = True
    if rec.outstanding > 0:
        try:
            await asyncio.wait_for(rec.all_in.wait(), args.drain)
        except TimeoutError:
            pass
    rss_end = rss_kib(daphne_pid)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    by_kind: dict[str, list[float]] = {"distinct": [], "shared": []}
    for key, times in rec.received.items():
        if key in rec.sent:
            kind = "shared" if key[0] == shared_number else "distinct"
            by_kind[kind].extend((t - rec.sent[key]) * 1000 for t in times[: rec.expected.get(key, 0)])
    latencies = by_kind["distinct"] + by_kind["shared"]
    expected = sum(rec.expected.values())
    # A socket skips a version it never showed when a later one reached it first (a resync, a faster
    # broadcast): missing here, though the page shows the newer state.
    newest: dict[str, int] = defaultdict(int)
    for number, version in rec.received:
        newest[number] = max(newest[number], version)
    superseded = sum(count - len(rec.received.get(key, [])) for key, count in rec.expected.items()
                     if len(rec.received.get(key, [])) < count and newest[key[0]] > key[1])
    # Worst seconds of the run (by p99 of the webhooks sent in that second), to see
    # whether tails line up with daphne's keepalive pings (20 s after each connect).
    buckets: dict[int, list[float]] = defaultdict(list)
    for key, times in rec.received.items():
        if key in rec.sent:
            for t in times[: rec.expected.get(key, 0)]:
                buckets[int(rec.sent[key] - fire_start)].append((t - rec.sent[key]) * 1000)
    worst = sorted(((round(pct(v, 99), 1), second) for second, v in buckets.items()), reverse=True)[:5]
    ping_at = round(args.ping_interval - (fire_start - connect_start), 1)
    return {
        "layer": args.layer, "database": args.database, "watchers": args.watchers, "shared": args.shared,
        "rate": args.rate,
        "duration_s": round(fire_s, 1), "webhooks": count, "webhook_status": dict(rec.webhook_status),
        "deliveries_expected": expected, "deliveries": len(latencies),
        "push_ms": {q: round(pct(latencies, q), 1) for q in (50, 95, 99)} | {"max": round(max(latencies), 1)}
        if latencies else {},
        "push_ms_by_order": {kind: {q: round(pct(values, q), 1) for q in (50, 99)} for kind, values in by_kind.items()},
        "missing_superseded": superseded,
        "daphne_cpu_pct": cpu,
        "webhook_ms": {q: round(pct(rec.webhook_ms, q), 1) for q in (50, 95, 99)}
        | {"mean": round(statistics.fmean(rec.webhook_ms), 1)},
        "connect_s": round(connect_s, 1),
        "rss_kib": {"before": rss_before, "idle": rss_idle, "end": rss_end},
        "kib_per_idle_socket": round((rss_idle - rss_before) / len(targets), 1),
        "unexpected_closes": len(rec.closed),
        "worst_seconds": [{"second": s, "p99_ms": v} for v, s in worst],
        "first_pings_at_s": [ping_at, round(ping_at + connect_s, 1)],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fds = raise_fd_limit(args.watchers + args.shared + 2000)
    workdir = Path(tempfile.mkdtemp(prefix="push-latency-"))
    redis = start_redis(workdir)
    port = free_port()
    database_url, cluster = scratch_database(args.database, Path(args.db_dir or workdir))
    env = {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "CHANNEL_LAYER": args.layer,
        "MIDTRANS_SERVER_KEY": SERVER_KEY,
        # DEBUG is off, so daphne and migrate need values that pass project/checks.py.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The shared order's watchers stand for many customers: lift the per-order socket cap for them.
        "WEBSOCKET_MAX_PER_ORDER": str(args.shared + 1),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "WATCHED_CHECK_SECONDS": str(args.watched_check_seconds),
        "PYTHONPATH": str(ROOT),
    }
    web, webs = None, []
    simulator = start_simulator(workdir, notify_url=f"http://127.0.0.1:{port}/payments/midtrans/notification",
                                server_key=SERVER_KEY)
    env["MIDTRANS_CORE_API_URL"] = simulator.url or ""
    try:
        orders = prepare_database(env, args.watchers + 1)
        if args.gc_thresholds:
            env["GC_THRESHOLDS"] = args.gc_thresholds
        # Production's options; a later --ping-interval wins (daphne's argparse keeps the last).
        daphne = [sys.executable, "-m", "daphne", *DAPHNE_OPTIONS, "--ping-interval", str(args.ping_interval)]
        if args.processes > 1:
            from bench.webhook_throughput import start_daphnes  # it imports this module

            listening, webs = start_daphnes(args.processes, env, workdir)
            port = listening.getsockname()[1]
            listening.close()  # the daphnes hold their own copies
            web = webs[0]
        else:
            web = ServerProcess(
                "daphne", [*daphne, "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
                workdir, url=f"http://127.0.0.1:{port}", ready=http_ready(f"http://127.0.0.1:{port}/healthz"),
                env=env, cwd=ROOT, port=port, timeout=60,
            ).start()
            webs = [web]
        assert web.proc is not None
        random.seed(1)
        if args.client_gc == "off":
            import gc

            gc.disable()
        result = asyncio.run(run(args, port, orders, [w.proc.pid for w in webs if w.proc is not None]))
    finally:
        for process in webs:
            process.stop()
        simulator.stop()
        redis.stop()
        if cluster is not None:
            from django.db import connections

            connections.close_all()
            cluster.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
    result["machine"] = machine()
    result["fd_limit"] = fds
    print_report(result)
    if args.json:
        print(json.dumps(result))
    ok = result["deliveries"] == result["deliveries_expected"] and not result["unexpected_closes"]
    return 0 if ok else 1


def print_report(r: dict) -> None:
    push, hook, rss = r["push_ms"], r["webhook_ms"], r["rss_kib"]
    print(f"machine         {r['machine']}")
    print(f"layer           {r['layer']}; database {r['database']}; {r['watchers']} watchers on distinct orders "
          f"+ {r['shared']} on one order")
    print(f"webhooks        {r['webhooks']} at {r['rate']:g}/s over {r['duration_s']} s; answers {r['webhook_status']}")
    print(f"delivered       {r['deliveries']}/{r['deliveries_expected']} ({r['missing_superseded']} of the missing "
          f"superseded: a later version reached the socket first); unexpected closes {r['unexpected_closes']}")
    if push:
        print(f"push latency    p50 {push[50]} ms  p95 {push[95]} ms  p99 {push[99]} ms  max {push['max']} ms")
        split = r["push_ms_by_order"]
        print(f"  by order      distinct orders p50 {split['distinct'][50]} / p99 {split['distinct'][99]} ms; "
              f"the shared order's fan-out p50 {split['shared'][50]} / p99 {split['shared'][99]} ms")
    print(f"webhook latency p50 {hook[50]} ms  p95 {hook[95]} ms  p99 {hook[99]} ms  mean {hook['mean']} ms")
    print(f"connect         {r['connect_s']} s for all sockets")
    print(f"daphne CPU      {' + '.join(f'{c:g}' for c in r['daphne_cpu_pct'])} % of a core while firing")
    worst = ", ".join(f"{w['second']} s: {w['p99_ms']} ms" for w in r["worst_seconds"])
    print(f"worst seconds   {worst} (p99 by second of the run; daphne's first pings "
          f"{r['first_pings_at_s'][0]}-{r['first_pings_at_s'][1]} s)")
    print(f"daphne RSS      {rss['before'] / 1024:.0f} MiB before, {rss['idle'] / 1024:.0f} MiB with sockets idle, "
          f"{rss['end'] / 1024:.0f} MiB at the end; {r['kib_per_idle_socket']} KiB per idle socket")


if __name__ == "__main__":
    sys.exit(main())
