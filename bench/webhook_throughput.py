"""Webhook throughput: open-loop ramps of signed, real-change Midtrans notifications, with watchers connected.

Starts its own redis-server, its own database (a scratch SQLite file, or with
``--database postgresql`` a throw-away cluster from paywatch_dev/postgres.py),
and ``--processes`` daphne processes that all serve ONE listening socket: the
bench binds and listens, and hands the socket to each daphne with ``--fd`` —
the same mechanism as supervisor's ``fcgi-program`` socket that production
uses, so the kernel's accept() shares the connections and no balancer of ours
is in the way. Daphne runs as the Procfile runs it (``--ping-interval 60
--access-log /dev/null``) with DEBUG off. No simulator: a pending → settlement
notification needs no status-API call, and the bench signs the bodies itself.

Each webhook step fires ``rate × seconds`` notifications on a fixed schedule;
each settles a distinct pending payment (a real change, so a push). Latency
is taken from the *scheduled* send time, so queueing in the client or the
server counts. ``--watchers`` websockets, opened before the step on orders
spread evenly through it, behave like the page (snapshot, then a ping with
their version every 20–40 s); after a short, bounded grace the bench counts
the pushes they got against the changes the database committed.

The **knee** is the highest rate at which webhook p99 < 250 ms, no 5xx (and
no failed request), and every committed change on a watched order reached its
watcher. The **floor** is the same open-loop ramp of a trivial answer through
the same stack and process count: GET ``--floor-path`` (default
/static/checkout/order.js, served by whitenoise inside the Django middleware
stack). A ramp stops after the first step that fails badly (p99 over
``--stop-p99`` or more than 1% failed requests). The last line is exactly::

    knee <N>/s floor <M>/s ratio <N/M> processes <P> database <sqlite|postgresql>

    .venv/bin/python bench/webhook_throughput.py --quick
    .venv/bin/python bench/webhook_throughput.py --processes 2 --database postgresql
    .venv/bin/python bench/webhook_throughput.py --processes 2 --database postgresql --nginx
    .venv/bin/python bench/webhook_throughput.py --database postgresql --rates 50 --floor-rates 200 \\
        --profile --profile-rate 60

``--nginx`` puts production's front in the way: deploy/'s own nginx site
(rendered with deploy/render.py, a throw-away certificate) in front of the
daphnes (``--proxy-headers``, as supervisor runs them); every request and
websocket then goes over HTTPS through nginx, which opens a new upstream
connection per request as the site says. Its floor is a GET on the
notification URL (405 from the view: nginx, the gate and the whole
middleware chain, no database), since nginx serves /static/ itself.

Figures on a shared 2-core machine are noisy: the load client, Redis and the
database share the cores with daphne, so every step also prints the CPU each
daphne process, the client and the whole machine used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from bench.push_latency import AMOUNT, pct, prepare_database, raise_fd_limit  # noqa: E402
from paywatch_dev.postgres import PostgresCluster, scratch_database  # noqa: E402
from paywatch_dev.servers import ServerProcess, free_port, start_redis  # noqa: E402
from paywatch_dev.stack import DAPHNE_OPTIONS  # noqa: E402

SERVER_KEY = "SB-Mid-server-BENCH-KEY"
WEBHOOK_PATH = "/payments/midtrans/notification"
KNEE_P99_MS = 250.0
TICK = os.sysconf("SC_CLK_TCK")

DEFAULT_RATES = "50,100,150,200,300,400,600"
DEFAULT_FLOOR_RATES = "100,200,300,400,600,800,1000,1200,1600"
QUICK = {"rates": "50,100,200,300,400", "seconds": 5.0, "floor_rates": "200,400,600,800,1200",
         "floor_seconds": 3.0, "grace": 2.0, "timeout": 10.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``--quick`` replaces the ramps' defaults with shorter ones."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=1, help="daphne processes sharing one listening socket")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--watchers", type=int, default=100, help="websockets per step, on orders the step changes")
    parser.add_argument("--rates", default=None, help=f"webhooks/s per step (default {DEFAULT_RATES})")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per webhook step (default 10)")
    parser.add_argument("--floor-rates", default=None, help=f"GETs/s per floor step (default {DEFAULT_FLOOR_RATES})")
    parser.add_argument("--floor-seconds", type=float, default=None, help="seconds per floor step (default 5)")
    parser.add_argument("--floor-path", default=None,
                        help="the trivial answer (default /static/checkout/order.js via whitenoise; with --nginx "
                             "a GET on the notification URL, answered 405)")
    parser.add_argument("--nginx", action="store_true", help="through deploy/'s nginx site over HTTPS")
    parser.add_argument("--grace", type=float, default=None, help="seconds to wait for late pushes (default 3)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a request counts as failed (30)")
    parser.add_argument("--stop-p99", type=float, default=1000.0, help="p99 (ms) past which the ramp stops")
    parser.add_argument("--connections", type=int, default=256, help="client connections at most (keep-alive pool)")
    parser.add_argument("--no-keepalive", action="store_true",
                        help="a new connection per request (as Midtrans sends them) instead of a keep-alive pool")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub", help="CHANNEL_LAYER")
    parser.add_argument("--log-level", default="INFO",
                        help="daphne's LOG_LEVEL (INFO, production's default: log lines cost what they do there)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the daphnes' environment (repeatable), for experiments")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps: under 3 minutes")
    parser.add_argument("--profile", action="store_true",
                        help="after the ramps, py-spy one daphne during a fixed-rate webhook step")
    parser.add_argument("--profile-rate", type=float, default=None, help="default: 90%% of this run's knee")
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--profile-out", default=None, help="where to keep py-spy's raw output")
    parser.add_argument("--db-dir", default=None, help="directory for the scratch SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, database)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else {"rates": DEFAULT_RATES, "seconds": 10.0, "floor_rates": DEFAULT_FLOOR_RATES,
                                         "floor_seconds": 5.0, "grace": 3.0, "timeout": 30.0}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.floor_path is None:
        args.floor_path = WEBHOOK_PATH if args.nginx else "/static/checkout/order.js"
    args.floor_status = 405 if args.floor_path == WEBHOOK_PATH else 200
    args.rates = [float(r) for r in str(args.rates).split(",") if r.strip()]
    args.floor_rates = [float(r) for r in str(args.floor_rates).split(",") if r.strip()]
    return args


# --- processes -------------------------------------------------------------------------------
def accepting_on(pid_of: Callable[[], int], inode: int) -> Callable[[], bool]:
    """Return a check that is true once the process polls the listening socket (its event loop runs).

    Every daphne shares one port, so an HTTP probe cannot tell which process
    answered; the socket showing up in the process's epoll set (as a dup,
    hence compared by inode) means Django is loaded and the reactor is running.
    """
    target = f"socket:[{inode}]"

    def check() -> bool:
        pid = pid_of()
        try:
            for info in Path(f"/proc/{pid}/fdinfo").iterdir():
                for tfd in re.findall(r"^tfd:\s+(\d+)", info.read_text(), re.MULTILINE):
                    if os.readlink(f"/proc/{pid}/fd/{tfd}") == target:
                        return True
        except OSError:
            return False
        return False
    return check


def start_daphnes(count: int, env: dict[str, str], workdir: Path,
                  proxied: bool = False) -> tuple[socket.socket, list[ServerProcess]]:
    """Listen on a free port and start ``count`` daphne processes on that one socket (behind nginx: ``proxied``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    inode = os.fstat(sock.fileno()).st_ino
    daphnes = []
    for k in range(count):
        # The Procfile's command, with the shared socket instead of -b/-p.
        args = [sys.executable, "-m", "daphne", *DAPHNE_OPTIONS,
                *(["--proxy-headers"] if proxied else []), "--fd", str(sock.fileno()), "project.asgi:application"]
        proc = ServerProcess(f"daphne-{k}", args, workdir, env=env, cwd=ROOT, timeout=90,
                             pass_fds=(sock.fileno(),))
        proc.ready = accepting_on(lambda proc=proc: proc.proc.pid if proc.proc else 0, inode)
        daphnes.append(proc.start())
    return sock, daphnes


@dataclass
class Front:
    """nginx in front of the daphnes: its process, HTTPS port and certificate."""

    process: ServerProcess
    https_port: int
    cert: Path


def start_front(workdir: Path, web_port: int) -> Front:
    """Start nginx on deploy/'s site (HTTPS on a free port) proxying to the daphnes' socket."""
    from paywatch_dev.nginx import make_certificate, nginx_process, render_site

    logs = workdir / "log"
    logs.mkdir(exist_ok=True)
    cert, key = make_certificate(workdir)
    http_port, https_port = free_port(), free_port()
    site = render_site({
        "WEB_BIND": f"127.0.0.1:{web_port}", "SERVER_NAME": "localhost",
        "HTTP_LISTEN": f"127.0.0.1:{http_port}", "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "PUBLIC_BASE_URL": f"https://localhost:{https_port}", "TLS_CERT": str(cert), "TLS_KEY": str(key),
        "NGINX_LOG_DIR": str(logs), "ACME_ROOT": str(workdir / "acme"), "STATIC_ROOT": str(workdir / "static"),
    }, workdir / "nginx-paywatch.conf")
    process = nginx_process(workdir, site, logs, {"PATH": os.environ["PATH"]},
                            ready_url=f"http://localhost:{http_port}{WEBHOOK_PATH}", worker_connections=8192)
    return Front(process.start(), https_port, cert)


def server_env(database_url: str, redis_url: str, log_level: str, **extra: str) -> dict[str, str]:
    """Return the daphnes' environment: production's settings (DEBUG off) on the bench's database and Redis."""
    return {
        "DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "MIDTRANS_SERVER_KEY": SERVER_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": log_level, "PYTHONPATH": str(ROOT), **extra,
    }


def stop_everything(processes: list[ServerProcess], cluster: PostgresCluster | None, workdir: Path | None) -> None:
    """Close this process's connections, stop the servers in order and the cluster; remove ``workdir`` if given."""
    close_connections()
    for process in processes:
        process.stop()
    if cluster is not None:
        cluster.stop()
    if workdir is not None:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def cpu_ticks(pid: int) -> int:
    """Return a process's user + system CPU time in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def thread_count(pid: int) -> int:
    """Return a process's live threads (Django's ASGI handler starts one per request; do they pile up?)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_busy_ticks() -> tuple[int, int]:
    """Return (busy, total) ticks of all CPUs, to tell our load from other people's."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU used during a step, in % of one core: each daphne, this client, the whole machine (of N×100)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start()

    def start(self) -> None:
        """Take the starting readings."""
        self.t0 = time.perf_counter()
        self.proc0 = [cpu_ticks(p) for p in self.pids]
        self.self0 = cpu_ticks(os.getpid())
        self.mach0 = machine_busy_ticks()

    def read(self) -> dict[str, object]:
        """Return the usage since start()."""
        elapsed = max(time.perf_counter() - self.t0, 1e-6)
        busy, total = machine_busy_ticks()
        cores = len(os.sched_getaffinity(0))
        return {
            "daphne": [round((cpu_ticks(p) - c) / TICK / elapsed * 100) for p, c in zip(self.pids, self.proc0,
                                                                                          strict=True)],
            "client": round((cpu_ticks(os.getpid()) - self.self0) / TICK / elapsed * 100),
            "machine": round((busy - self.mach0[0]) / max(total - self.mach0[1], 1) * 100 * cores),
            "threads": [thread_count(p) for p in self.pids],
        }


async def settle(pids: list[int], limit: float = 60.0) -> None:
    """Wait (bounded) until the daphnes are idle, so a backlog from the last step does not spill into the next."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        meter = CpuMeter(pids)
        await asyncio.sleep(0.5)
        if max(meter.read()["daphne"]) < 15:  # type: ignore[type-var]
            return


# --- database --------------------------------------------------------------------------------
def create_pending_orders(prefix: str, count: int) -> list[tuple[str, str]]:
    """Create ``count`` pending orders with a pending payment; return (number, token) in order."""
    from django.db import transaction

    from checkout.models import Order, Payment

    with transaction.atomic():
        orders = Order.objects.bulk_create(
            Order(number=f"{prefix}-{i:06d}", gross_amount=AMOUNT, items=[]) for i in range(count)
        )
        Payment.objects.bulk_create(Payment(order=order, amount=AMOUNT) for order in orders)
    tokens = dict(Order.objects.filter(number__startswith=f"{prefix}-").values_list("number", "access_token"))
    return [(f"{prefix}-{i:06d}", tokens[f"{prefix}-{i:06d}"]) for i in range(count)]


def committed_versions(numbers: list[str]) -> dict[str, tuple[str, int]]:
    """Return each order's payment (status, version) as the database has it now."""
    from checkout.models import Payment

    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(numbers), 500):
        rows = Payment.objects.filter(order__number__in=numbers[start:start + 500])
        found.update({n: (s, v) for n, s, v in rows.values_list("order__number", "status", "version")})
    return found


def close_connections() -> None:
    """Close this thread's database connection (the worker threads of asyncio.to_thread keep theirs)."""
    from django.db import connections

    connections.close_all()


# --- HTTP client -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where the client sends: daphne's socket directly, or nginx over HTTPS (``tls`` trusts its certificate)."""

    port: int
    tls: ssl.SSLContext | None = None

    @property
    def host(self) -> str:
        return "localhost" if self.tls else "127.0.0.1"

    def ws_url(self, path: str) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port, ssl=self.tls)


class HttpClient:
    """A minimal asyncio HTTP/1.1 client: a bounded pool of keep-alive connections to 127.0.0.1:port.

    aiohttp and httpx are not in .venv and a raw client costs the shared cores
    the least. A request waits for a free slot when all ``size`` are busy;
    that wait counts in its latency (measured from the scheduled time).
    """

    def __init__(self, target: Target, size: int, keepalive: bool) -> None:
        self.target = target
        self.keepalive = keepalive
        self.slots = asyncio.Semaphore(size)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return (status, body). A dropped idle keep-alive connection is retried once."""
        async with self.slots:
            for attempt in range(2):
                reused = bool(self.idle)
                reader, writer = self.idle.pop() if reused else await self.target.connect()
                try:
                    writer.write(head + body)
                    status, payload, reusable = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    writer.close()
                    if reused and attempt == 0:
                        continue
                    raise
                except BaseException:  # cancelled (timeout): the connection is mid-answer, useless
                    writer.close()
                    raise
                if reusable and self.keepalive:
                    self.idle.append((reader, writer))
                else:
                    writer.close()
                return status, payload
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the idle connections (between steps, so each step spreads fresh connections over the processes)."""
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response; return (status, body, whether the connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    else:
        return status, await reader.read(), False
    return status, body, headers.get("connection", "").lower() != "close"


def request_head(method: str, path: str, keepalive: bool, length: int | None = None) -> bytes:
    """Return a request's head (the bench's requests differ only in their bodies)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: paywatch-bench",
             "Accept: application/json", f"Connection: {'keep-alive' if keepalive else 'close'}"]
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def settlement_body(number: str, k: int) -> bytes:
    """Return a signed settlement notification for a VA payment, shaped like Midtrans's."""
    from checkout.signature import notification_signature

    payload = {
        "va_numbers": [{"va_number": f"8{k:011d}", "bank": "bca"}],
        "transaction_time": "2025-12-12 00:00:05", "transaction_status": "settlement",
        "transaction_id": f"bench-{number}", "status_message": "midtrans payment notification",
        "status_code": "200", "signature_key": notification_signature(number, "200", AMOUNT, SERVER_KEY),
        "settlement_time": "2025-12-12 00:01:05", "payment_type": "bank_transfer", "order_id": number,
        "merchant_id": "G000000000", "gross_amount": AMOUNT, "fraud_status": "accept", "currency": "IDR",
        "expiry_time": "2025-12-13 00:00:05",
    }
    return json.dumps(payload).encode()


# --- watchers --------------------------------------------------------------------------------
class Watcher:
    """One waiting page's websocket: snapshot, then changes; pings with its version every 20–40 s."""

    def __init__(self, number: str, token: str) -> None:
        self.number = number
        self.token = token
        self.version = 0
        self.snapshot_version = 0
        self.pushes: list[tuple[float, int, str]] = []  # (received at, version, source)
        self.error = ""
        self.opened = False
        self.socket = None
        self.tasks: list[asyncio.Task] = []

    async def open(self, target: Target) -> None:
        """Connect and read the snapshot; then listen and ping in the background."""
        import websockets

        try:
            self.socket = await websockets.connect(
                target.ws_url(f"/ws/orders/{self.number}/?t={self.token}"), origin=target.origin, ssl=target.tls,
                open_timeout=30, ping_interval=None, max_queue=None)
            first = json.loads(await asyncio.wait_for(self.socket.recv(), 30))
        except Exception as exc:  # counted and shown: a watcher that never opened cannot be delivered to
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.version = self.snapshot_version = int(first.get("version") or 0)
        self.opened = True
        self.tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._heartbeat())]

    async def _listen(self) -> None:
        import websockets

        try:
            async for raw in self.socket:
                message = json.loads(raw)
                version = message.get("version")
                if message.get("type") == "payment.status" and isinstance(version, int) and version > self.version:
                    self.version = version
                    self.pushes.append((time.perf_counter(), version, str(message.get("source"))))
        except websockets.ConnectionClosed as exc:
            self.error = f"closed {exc.code}"

    async def _heartbeat(self) -> None:
        """Ping like the page: the first at a random point, then every 20–40 s, carrying the version shown."""
        await asyncio.sleep(random.uniform(0, 30))
        while True:
            await self.socket.send(json.dumps({"type": "ping", "version": self.version}))
            await asyncio.sleep(random.uniform(20, 40))

    async def close(self) -> None:
        """Stop pinging and close the socket."""
        for task in self.tasks[1:]:
            task.cancel()
        if self.socket is not None:
            try:
                await asyncio.wait_for(self.socket.close(), 5)
            except Exception:  # noqa: S110 - a socket the server already dropped has nothing to close
                pass
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def open_watchers(target: Target, orders: list[tuple[str, str]], concurrency: int = 100) -> list[Watcher]:
    """Open one watcher per order, ``concurrency`` handshakes at a time."""
    gate = asyncio.Semaphore(concurrency)
    watchers = [Watcher(n, t) for n, t in orders]

    async def one(w: Watcher) -> None:
        async with gate:
            await w.open(target)
    await asyncio.gather(*(one(w) for w in watchers))
    return watchers


# --- steps -----------------------------------------------------------------------------------
@dataclass
class Step:
    """One open-loop step's figures."""

    kind: str
    rate: float
    seconds: float
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # why requests got no answer (status 0)
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    committed: int = 0
    watched_committed: int = 0
    delivered: int = 0
    resynced: int = 0
    watch_errors: int = 0
    push_ms: list[float] = field(default_factory=list)
    cpu: dict = field(default_factory=dict)
    loadavg: str = ""
    ok_status: int = 200  # what a passing answer is (the floor through nginx: 405)

    @property
    def failed(self) -> int:
        """Requests answered 5xx, or not answered at all (status 0)."""
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)

    @property
    def p99(self) -> float:
        return pct(self.latencies, 99)

    def passes(self) -> bool:
        """The knee's (and floor's) criteria."""
        ok = self.sent > 0 and self.p99 < KNEE_P99_MS and self.failed == 0 and set(self.statuses) == {self.ok_status}
        if self.kind == "webhook":
            ok = ok and self.delivered == self.watched_committed and self.watch_errors == 0 \
                and self.committed == self.sent
        return ok

    def bad(self, stop_p99: float) -> bool:
        """Bad enough to stop the ramp: latency past stop_p99 or more than 1% failed."""
        return self.p99 > stop_p99 or self.failed > 0.01 * max(self.sent, 1)


async def fire(client: HttpClient, requests: list[bytes], rate: float, timeout: float,
               step: Step) -> list[tuple[float, int, bytes]]:
    """Send the requests open-loop at ``rate``; return (scheduled time, status, body) per request."""
    results: list[tuple[float, int, bytes]] = [(0.0, 0, b"")] * len(requests)

    async def one(k: int, scheduled: float, raw: bytes) -> None:
        step.lags.append((time.perf_counter() - scheduled) * 1000)
        try:
            status, body = await asyncio.wait_for(client.request(raw), timeout)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            status, body = 0, b""
            step.errors[type(exc).__name__] += 1
        step.latencies.append((time.perf_counter() - scheduled) * 1000)
        step.statuses[status] += 1
        results[k] = (scheduled, status, body)

    begin = time.perf_counter() + 0.05
    tasks = []
    for k, raw in enumerate(requests):
        scheduled = begin + k / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, scheduled, raw)))
    await asyncio.gather(*tasks)
    step.sent = len(requests)
    return results


class Bench:
    """The servers' coordinates and the steps run so far."""

    def __init__(self, args: argparse.Namespace, target: Target, pids: list[int]) -> None:
        self.args = args
        self.target = target
        self.pids = pids
        self.batches = 0

    async def webhook_step(self, rate: float, seconds: float, watchers: int | None = None,
                           on_fire: Callable[[], None] | None = None) -> Step:
        """Settle ``rate × seconds`` distinct pending payments open-loop, with watchers on some of them."""
        args = self.args
        step = Step("webhook", rate, seconds)
        self.batches += 1
        orders = await asyncio.to_thread(create_pending_orders, f"WT{self.batches:03d}", round(rate * seconds))
        count = len(orders)
        n = min(args.watchers if watchers is None else watchers, count)
        watched_idx = sorted({k * count // n for k in range(n)}) if n else []
        watched = await open_watchers(self.target, [orders[k] for k in watched_idx])
        keepalive = not args.no_keepalive
        requests = []
        for k, (number, _) in enumerate(orders):
            body = settlement_body(number, k)
            requests.append(request_head("POST", WEBHOOK_PATH, keepalive, len(body)) + body)
        client = HttpClient(self.target, args.connections, keepalive)
        await settle(self.pids)
        step.loadavg = Path("/proc/loadavg").read_text().split()[0]
        meter = CpuMeter(self.pids)
        side = asyncio.create_task(asyncio.to_thread(on_fire)) if on_fire else None
        results = await fire(client, requests, rate, args.timeout, step)
        step.cpu = meter.read()
        client.close()

        # Wait (bounded) for the pushes of changes the webhook reported applied.
        expected = {}
        for k in watched_idx:
            scheduled, status, body = results[k]
            if status == 200:
                try:
                    answer = json.loads(body)
                except ValueError:
                    continue
                if answer.get("outcome") == "applied":
                    expected[k] = int(answer["version"])
        by_idx = dict(zip(watched_idx, watched, strict=True))
        deadline = time.perf_counter() + args.grace
        while time.perf_counter() < deadline and any(by_idx[k].version < v for k, v in expected.items()):
            await asyncio.sleep(0.05)

        # The database is the judge of what was committed (a 503 or a timeout may still have committed).
        numbers = [number for number, _ in orders]
        truth = await asyncio.to_thread(committed_versions, numbers)
        step.committed = sum(1 for status, _ in truth.values() if status == "success")
        for k, w in by_idx.items():
            status, version = truth[orders[k][0]]
            if status != "success" or not w.opened:
                continue  # a watcher that never opened is counted in watch_errors
            step.watched_committed += 1
            got = [p for p in w.pushes if p[1] >= version]
            if got:
                step.delivered += 1
                step.resynced += got[0][2] == "resync"
                step.push_ms.append((got[0][0] - results[k][0]) * 1000)
        step.watch_errors = sum(1 for w in watched if w.error)  # never opened, or closed by the server
        await asyncio.gather(*(w.close() for w in watched))
        if side is not None:
            await side
        return step

    async def floor_step(self, rate: float, seconds: float) -> Step:
        """GET the trivial answer open-loop."""
        step = Step("floor", rate, seconds, ok_status=self.args.floor_status)
        keepalive = not self.args.no_keepalive
        head = request_head("GET", self.args.floor_path, keepalive)
        client = HttpClient(self.target, self.args.connections, keepalive)
        await settle(self.pids)
        step.loadavg = Path("/proc/loadavg").read_text().split()[0]
        meter = CpuMeter(self.pids)
        await fire(client, [head] * round(rate * seconds), rate, self.args.timeout, step)
        step.cpu = meter.read()
        client.close()
        return step

    async def ramp(self, kind: str) -> tuple[list[Step], float, bool]:
        """Run a ramp; return its steps, the highest passing rate, and whether it stopped on a bad step."""
        args = self.args
        rates, seconds = (args.rates, args.seconds) if kind == "webhook" else (args.floor_rates, args.floor_seconds)
        steps: list[Step] = []
        for rate in rates:
            step = await (self.webhook_step(rate, seconds) if kind == "webhook" else self.floor_step(rate, seconds))
            steps.append(step)
            print(format_step(step), flush=True)
            if step.bad(args.stop_p99):
                return steps, best(steps), True
        return steps, best(steps), False


def best(steps: list[Step]) -> float:
    """The highest rate whose step passed (0 when none did)."""
    return max((s.rate for s in steps if s.passes()), default=0.0)


HEADER = (f"{'step':7} {'rate/s':>6} {'sent':>6} {'answers':<22} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
          f"{'lag99':>6} {'commit':>6} {'pushes':>9} {'push99':>7} {'cpu% daphne':>12} {'cli':>4} {'mach':>5} "
          f"{'load':>5} {'threads':>9} verdict")


def format_step(s: Step) -> str:
    """One table row; latencies in ms from the scheduled send time."""
    answers = ",".join(f"{'err' if code == 0 else code}×{n}" for code, n in sorted(s.statuses.items()))
    pushes = f"{s.delivered}/{s.watched_committed}" if s.kind == "webhook" else "-"
    if s.watch_errors:
        pushes += f" ({s.watch_errors} w.err)"
    push99 = f"{pct(s.push_ms, 99):.0f}" if s.push_ms else "-"
    commit = str(s.committed) if s.kind == "webhook" else "-"
    verdict = "pass" if s.passes() else "FAIL"
    if s.resynced:
        verdict += f" ({s.resynced} by resync)"
    if s.errors:
        verdict += " errors: " + ", ".join(f"{name}×{n}" for name, n in s.errors.most_common())
    cpu = "/".join(str(c) for c in s.cpu.get("daphne", []))
    threads = "/".join(str(c) for c in s.cpu.get("threads", []))
    return (f"{s.kind:7} {s.rate:>6g} {s.sent:>6} {answers[:22]:<22} {pct(s.latencies, 50):>7.0f} "
            f"{pct(s.latencies, 95):>7.0f} {pct(s.latencies, 99):>7.0f} {max(s.latencies, default=0):>7.0f} "
            f"{pct(s.lags, 99):>6.0f} {commit:>6} {pushes:>9} {push99:>7} {cpu:>12} {s.cpu.get('client', 0):>4} "
            f"{s.cpu.get('machine', 0):>5} {s.loadavg:>5} {threads:>9} {verdict}")


# --- profile ---------------------------------------------------------------------------------
def pyspy_record(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """Start py-spy sampling one daphne into py-spy's raw format: the GIL holder, 100 Hz, without pausing it.

    --gil: the process is CPU-bound at the knee, so what holds the GIL is what to
    cut (threads blocked in C calls would otherwise count as busy). --nonblocking:
    pausing every thread per sample stalled daphne (a thread per request piled
    up: 280 threads, 8% CPU, 30 s timeouts) and measured py-spy, not daphne.
    """
    binary = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(binary), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
                             "--gil", "--nonblocking", "--format", "raw", "--threads", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
AREAS = [  # (label, pattern on the file path): the first that matches names a leaf frame's area
    ("database driver (sqlite3/psycopg)", re.compile(r"sqlite3|psycopg")),
    ("Django ORM / db", re.compile(r"django/db/")),
    ("logging / JSON log lines", re.compile(r"logging|project/logging")),
    ("channel layer / redis", re.compile(r"channels_redis|redis/|realtime/")),
    ("asgiref sync<->async bridge", re.compile(r"asgiref|concurrent/futures|threading")),
    ("daphne / twisted / asyncio (HTTP server)", re.compile(r"daphne|twisted|autobahn|asyncio")),
    ("Django request handling / middleware", re.compile(r"django/|whitenoise|csp/|django_prometheus|project/")),
    ("prometheus client", re.compile(r"prometheus_client")),
    ("app code (checkout)", re.compile(r"checkout/")),
]


def frame_key(frame: str) -> str:
    """``func (path:line)`` → ``func (short path)``: functions, not lines, are what one cuts."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def summarize_profile(raw: str, top: int = 15) -> str:
    """Top entries by own (leaf) and by total (anywhere on the stack) samples, plus own time by area."""
    own: Counter = Counter()
    total: Counter = Counter()
    threads: Counter = Counter()
    areas: Counter = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread (", "process ")):
            # "thread (0x7f..): ThreadPoolExecutor-3420_0" → "ThreadPoolExecutor-N_N": Django's ASGI handler
            # runs each request's sync code on a fresh single-thread executor, so ids and numbers never repeat.
            threads[re.sub(r"\d+", "N", frames[0].split("): ", 1)[-1])] += n
            frames = [f for f in frames[1:] if not f.startswith(("thread (", "process "))]
        keys = [frame_key(f) for f in frames]
        if not keys:
            continue
        samples += n
        own[keys[-1]] += n
        for key in set(keys):
            total[key] += n
        areas[next((label for label, pattern in AREAS if pattern.search(keys[-1])), "other")] += n
    if not samples:
        return "(no samples)"
    out = [f"{samples} samples of the GIL holder; by thread: "
           + ", ".join(f"{t} {n / samples:.0%}" for t, n in threads.most_common(6))]
    out.append(f"top {top} by own time (leaf frame):")
    out += [f"  {n / samples:6.1%}  {k}" for k, n in own.most_common(top)]
    out.append(f"top {top} by total time (on the stack):")
    out += [f"  {n / samples:6.1%}  {k}" for k, n in total.most_common(top)]
    out.append("own time by area:")
    out += [f"  {n / samples:6.1%}  {label}" for label, n in areas.most_common()]
    return "\n".join(out)


# --- main ------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, target: Target, pids: list[int], workdir: Path) -> int:
    """Warm up, run the webhook ramp, the floor ramp, and the profile if asked; print everything."""
    bench = Bench(args, target, pids)
    # Warm-up, not counted: every process imports lazily and opens its database connection on first use.
    await bench.webhook_step(20 * len(pids), 2, watchers=10)
    await bench.floor_step(50 * len(pids), 2)

    print(HEADER, flush=True)
    hooks, knee, knee_stopped = await bench.ramp("webhook")
    floors, floor, floor_stopped = await bench.ramp("floor")
    if not knee_stopped and knee == max(args.rates):
        print(f"note: the webhook ramp never failed; the knee is at least {knee:g}/s")
    if not floor_stopped and floor == max(args.floor_rates):
        print(f"note: the floor ramp never failed; the floor is at least {floor:g}/s")

    if args.profile:
        rate = args.profile_rate or max(10.0, round(0.9 * (knee or min(args.rates)) / 10) * 10)
        out = Path(args.profile_out or workdir / "profile.raw.txt")
        print(f"\nprofile: py-spy record (raw, 100 Hz, GIL holder, nonblocking) of daphne pid {pids[0]} "
              f"during a {args.profile_seconds:g} s webhook step at {rate:g}/s")
        spy: list[subprocess.Popen] = []

        def start_spy() -> None:
            spy.append(pyspy_record(pids[0], args.profile_seconds, out))

        step = await bench.webhook_step(rate, args.profile_seconds, on_fire=start_spy)
        print(HEADER)
        print(format_step(step))
        spy_out = (await asyncio.to_thread(spy[0].communicate))[0].decode(errors="replace")
        if spy[0].returncode != 0 or not out.exists():
            print(f"py-spy failed ({spy[0].returncode}): {spy_out[-2000:]}")
        else:
            print(summarize_profile(out.read_text()))
            print(f"raw profile: {out}")
        print()

    ratio = knee / floor if floor else 0.0
    print(f"knee {knee:g}/s floor {floor:g}/s ratio {ratio:.2f} processes {args.processes} database {args.database}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Start Redis, the database and the daphnes; run; stop everything."""
    args = parse_args(argv)
    raise_fd_limit(args.connections + args.watchers + 4096)
    workdir = Path(tempfile.mkdtemp(prefix="webhook-throughput-"))
    random.seed(1)
    cluster = None
    redis = start_redis(workdir)
    daphnes: list[ServerProcess] = []
    front: Front | None = None
    try:
        database_url, cluster = scratch_database(args.database, Path(args.db_dir or workdir))
        env = server_env(database_url, redis.url or "", args.log_level, CHANNEL_LAYER=args.layer,
                         **dict(item.split("=", 1) for item in args.server_env))
        # Migrates (manage.py migrate) and sets Django up in this process, against the same database.
        prepare_database(env, 0)
        sock, daphnes = start_daphnes(args.processes, env, workdir, proxied=args.nginx)
        port = sock.getsockname()[1]
        target = Target(port)
        if args.nginx:
            front = start_front(workdir, port)
            target = Target(front.https_port, ssl.create_default_context(cafile=str(front.cert)))
        print(f"machine   {machine()}; load average {Path('/proc/loadavg').read_text().split()[0]}")
        print(f"servers   {'nginx (deploy/, HTTPS) → ' if args.nginx else ''}{args.processes} daphne on one socket "
              f"(--fd), port {port}; database {args.database}; "
              f"layer {args.layer}; {args.watchers} watchers per step; client "
              f"{'new connection per request' if args.no_keepalive else f'keep-alive pool of {args.connections}'}")
        print(f"ramps     webhook {','.join(f'{r:g}' for r in args.rates)}/s × {args.seconds:g} s; floor "
              f"GET {args.floor_path} {','.join(f'{r:g}' for r in args.floor_rates)}/s × {args.floor_seconds:g} s; "
              f"latency in ms from the scheduled send; cpu in % of one core", flush=True)
        code = asyncio.run(run(args, target, [d.proc.pid for d in daphnes if d.proc], workdir))
        for d in daphnes:
            if not d.alive():
                print(f"warning: {d.name} died:\n{d.log_tail()}", file=sys.stderr)
        return code
    finally:
        stop_everything([*([front.process] if front else []), *daphnes, redis], cluster, None if args.keep else workdir)


if __name__ == "__main__":
    sys.exit(main())
