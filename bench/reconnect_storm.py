"""Reconnect storm: a deploy restarts every daphne, and every open waiting page reconnects at once.

Starts its own redis-server, its own database (by default a throw-away
PostgreSQL cluster from paywatch_dev/postgres.py; ``--database sqlite`` a
scratch file) and ``--processes`` daphne processes on ONE listening socket
that the bench holds and hands to each with ``--fd``, as supervisor's
``fcgi-program`` socket is held across restarts (deploy/supervisor). Daphne
runs as there (``--ping-interval 60 --access-log /dev/null``, DEBUG off).

Then, with ``--sockets`` websockets open (``--per-order`` on each order, at
most WEBSOCKET_MAX_PER_ORDER), each behaving like the page (keep the version
shown; a ping ``{"type": "ping", "version": N}`` 0–30 s after opening, then
every 20–40 s; a new socket when no answer comes within 10 s), the deploy:

1. SIGTERM to every daphne at once (supervisor's ``stopsignal``; SIGKILL
   after its ``stopwaitsecs``, 20 s), and wait until every page saw its
   socket close;
2. real changes (pending -> settlement) to ``--changed`` of the orders while
   no web process runs: a signed notification cannot be sent then, so each
   is signed here, checked, and applied in this process by the service the
   webhook view calls after its signature check (``payment_notification_apply``),
   stored and audited as a webhook; its broadcast reaches nobody, as in a deploy;
3. new daphnes on the same socket, and at that moment every page reconnects,
   at most ``--in-flight`` handshakes at a time from this client (a bounded
   client, so that its own limits are not what is measured). Connections made
   while Django loads wait in the socket's backlog, so the boot time counts.

A page is resynced when, after the restart, it has a socket open again and
shows the version the database committed (its snapshot says so). Measured:
the time from the restart until every page is, each page's time (p50, p95,
p99, max), failed handshakes by reason and retries, and the database reads per
handshake as PostgreSQL saw them: ``log_statement = all`` is switched on
(ALTER SYSTEM, reload) for the storm and the statements the cluster logged
are classified by shape (the handshake's one read of order + payment by
number; the heartbeat's batched version read; the fast lane's watched read);
the handshake-shaped reads, less the resyncs the heartbeat answered with the
same read, are divided by the handshakes daphne received (every attempt but a
refused connect: one daphne dropped unanswered after its 5 s
``--websocket_connect_timeout`` may have made its read). With SQLite nothing
counts them (``n/a``). Also: each daphne's CPU (boot included)
and RSS, this client's CPU, and the whole machine's.

The last line is exactly::

    storm <N> sockets resynced <all|K missing> in <S> s p99 <X> ms reads/handshake <R> processes <P> database <db>

The exit status is 1 when a page is missing: not resynced by ``--deadline``,
or given up on a 4403/4429 close as the page gives up.

    .venv/bin/python bench/reconnect_storm.py --quick
    .venv/bin/python bench/reconnect_storm.py                      # 10,000 sockets, 2 processes, PostgreSQL
    .venv/bin/python bench/reconnect_storm.py --sockets 300 --per-order 15 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from paywatch_dev.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from bench.push_latency import pct, prepare_database, raise_fd_limit, rss_kib  # noqa: E402
from bench.webhook_throughput import (  # noqa: E402
    SERVER_KEY,
    TICK,
    accepting_on,
    close_connections,
    committed_versions,
    cpu_ticks,
    create_pending_orders,
    machine_busy_ticks,
    server_env,
    settlement_body,
    stop_everything,
)
from paywatch_dev.postgres import scratch_database  # noqa: E402
from paywatch_dev.servers import ServerProcess, start_redis  # noqa: E402
from paywatch_dev.stack import DAPHNE_OPTIONS  # noqa: E402

MAX_PER_ORDER = 20  # WEBSOCKET_MAX_PER_ORDER's default
STOP_WAIT_SECONDS = 20.0  # deploy/supervisor: stopwaitsecs of the web processes
# The page (static/checkout/order.js): first ping at a random point of HEARTBEAT, then every 2/3-4/3 of it.
HEARTBEAT_SECONDS = 30.0
PONG_TIMEOUT_SECONDS = 10.0
GIVE_UP_CODES = {4403, 4429}  # the page stops reconnecting on these


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``--quick`` is 1,000 sockets and a 60 s deadline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=None, help="open websockets (default 10000; --quick 1000)")
    parser.add_argument("--per-order", type=int, default=1, help=f"sockets on each order (at most {MAX_PER_ORDER})")
    parser.add_argument("--processes", type=int, default=2, help="daphne processes sharing one listening socket")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--changed", type=float, default=0.5, help="share of orders settled while daphne is down")
    parser.add_argument("--in-flight", type=int, default=500, help="handshakes in flight at once from this client")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for one handshake and its snapshot")
    parser.add_argument("--retry", type=float, default=1.0,
                        help="a failed handshake is retried after a uniform wait in [0, this) s")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after the restart before missing pages are given up (default 120; --quick 60)")
    parser.add_argument("--apply-threads", type=int, default=4, help="threads applying the changes (PostgreSQL)")
    parser.add_argument("--log-level", default="INFO", help="daphne's LOG_LEVEL (production's INFO by default)")
    parser.add_argument("--quick", action="store_true", help="1,000 sockets: under 2 minutes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, database)")
    args = parser.parse_args(argv)
    if args.sockets is None:
        args.sockets = 1000 if args.quick else 10000
    if args.deadline is None:
        args.deadline = 60.0 if args.quick else 120.0
    if not 1 <= args.per_order <= MAX_PER_ORDER:
        parser.error(f"--per-order must be 1..{MAX_PER_ORDER} (WEBSOCKET_MAX_PER_ORDER)")
    return args


# --- the pages -------------------------------------------------------------------------------
class Storm:
    """What every page shares: the handshake gate, whether the web is up, and the tallies."""

    def __init__(self, args: argparse.Namespace, port: int, pages: int) -> None:
        self.args = args
        self.port = port
        self.pages = pages
        self.gate = asyncio.Semaphore(args.in_flight)
        self.up = asyncio.Event()
        self.up.set()
        self.restarted_at: float | None = None
        self.open = 0  # sockets open now
        self.opened = asyncio.Event()  # every page has had a socket open (before the deploy)
        self.first_opens = 0
        self.resynced = 0
        self.gave_up = 0
        self.settled = asyncio.Event()  # every page has resynced or given up
        self.attempts = 0  # handshakes started
        self.refused = 0  # handshakes whose TCP connect was refused: daphne never saw them
        self.upgraded = 0  # handshakes daphne answered with 101
        self.failures: Counter = Counter()  # why a handshake failed
        self.closes: Counter = Counter()  # close codes of open sockets
        self.pongs = 0
        self.pong_timeouts = 0
        self.resyncs = 0  # payment.status with source "resync" (the heartbeat's read)
        self.handshake_ms: list[float] = []
        self.down_closed = asyncio.Event()

    def reset_tallies(self) -> None:
        """Start counting afresh (at the restart)."""
        self.attempts = self.refused = self.upgraded = self.pongs = self.pong_timeouts = self.resyncs = 0
        self.failures, self.closes, self.handshake_ms = Counter(), Counter(), []

    def page_settled(self) -> None:
        if self.resynced + self.gave_up == self.pages:
            self.settled.set()

    def socket_closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.up.is_set():
            self.down_closed.set()


class Page:
    """One waiting page: its socket, the version it shows, and when it caught up after the restart."""

    def __init__(self, storm: Storm, number: str, token: str) -> None:
        self.storm = storm
        self.number = number
        self.url = f"ws://127.0.0.1:{storm.port}/ws/orders/{number}/?t={token}"
        self.version = 0
        self.target: int | None = None  # the version committed before the restart
        self.resynced_at: float | None = None
        self.ever_opened = False
        self.attempts = 0  # handshakes since the restart
        self.gave_up = ""
        self.heard = asyncio.Event()

    async def life(self) -> None:
        """Connect, listen, and reconnect when the socket closes, like the page (without its backoff)."""
        storm = self.storm
        while True:
            await storm.up.wait()  # during a deploy: the page's retry lands on the new processes
            ws = await self.handshake()
            if ws is not None:
                await self.listen(ws)
            elif self.gave_up:
                return
            else:
                await asyncio.sleep(random.uniform(0, storm.args.retry))

    async def handshake(self) -> ClientConnection | None:
        """Open a socket and read its snapshot, holding one of the client's in-flight slots; None on failure."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        storm = self.storm
        async with storm.gate:
            started = time.perf_counter()
            storm.attempts += 1
            self.attempts += 1
            try:
                ws = await connect(self.url, origin=f"http://127.0.0.1:{storm.port}",
                                   open_timeout=storm.args.timeout, ping_interval=None, max_queue=None,
                                   close_timeout=2)
            except InvalidStatus as exc:
                storm.failures[f"HTTP {exc.response.status_code}"] += 1
                return None
            except Exception as exc:  # refused, reset, timed out: counted by kind (and cause), then retried
                storm.refused += isinstance(exc, ConnectionRefusedError)
                cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ else ""
                storm.failures[f"{type(exc).__name__}{cause}"[:100]] += 1
                return None
            storm.upgraded += 1
            try:
                first = json.loads(await asyncio.wait_for(ws.recv(), storm.args.timeout))
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                storm.failures[f"closed {code}"] += 1
                if code in GIVE_UP_CODES:
                    self.gave_up = f"closed {code}"
                    storm.gave_up += 1
                    storm.page_settled()
                return None
            except TimeoutError:
                storm.failures["snapshot timeout"] += 1
                await ws.close()
                return None
            now = time.perf_counter()
            storm.handshake_ms.append((now - started) * 1000)
        storm.open += 1
        if not self.ever_opened:
            self.ever_opened = True
            storm.first_opens += 1
            if storm.first_opens == storm.pages:
                storm.opened.set()
        self.show(first, now)
        return ws

    async def listen(self, ws: ClientConnection) -> None:
        """Show newer versions until the socket closes; ping like the page meanwhile."""
        from websockets.exceptions import ConnectionClosed

        beat = asyncio.create_task(self.heartbeat(ws))
        try:
            async for raw in ws:
                self.heard.set()
                message = json.loads(raw)
                if message.get("type") == "payment.status":
                    self.storm.resyncs += message.get("source") == "resync"
                    self.show(message, time.perf_counter())
                elif message.get("type") == "pong":
                    self.storm.pongs += 1
        except ConnectionClosed:
            pass
        finally:
            beat.cancel()
            self.storm.closes[int(ws.close_code if ws.close_code is not None else 1006)] += 1
            self.storm.socket_closed()

    async def heartbeat(self, ws: ClientConnection) -> None:
        """Ping with the version shown; no answer within PONG_TIMEOUT_SECONDS and the socket is dropped."""
        await asyncio.sleep(random.uniform(0, HEARTBEAT_SECONDS))
        while True:
            self.heard.clear()
            await ws.send(json.dumps({"type": "ping", "version": self.version}))
            try:
                await asyncio.wait_for(self.heard.wait(), PONG_TIMEOUT_SECONDS)
            except TimeoutError:
                self.storm.pong_timeouts += 1
                ws.transport.abort()  # the page drops it and opens a new one
                return
            await asyncio.sleep(random.uniform(HEARTBEAT_SECONDS * 2 / 3, HEARTBEAT_SECONDS * 4 / 3))

    def show(self, message: dict, now: float) -> None:
        """Keep the newest version; note the first moment after the restart that it is the committed one."""
        version = message.get("version")
        if message.get("type") != "payment.status" or not isinstance(version, int):
            return
        self.version = max(self.version, version)
        storm = self.storm
        if (self.target is not None and self.resynced_at is None and storm.restarted_at is not None
                and self.version >= self.target):
            self.resynced_at = now
            storm.resynced += 1
            storm.page_settled()


# --- the servers -----------------------------------------------------------------------------
def listen_socket() -> socket.socket:
    """Bind and listen on a free port: the socket every daphne generation serves."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


def daphne(name: str, sock: socket.socket, env: dict[str, str], workdir: Path) -> ServerProcess:
    """Return (unstarted) one daphne on the shared socket, ready once it polls that socket."""
    args = [sys.executable, "-m", "daphne", *DAPHNE_OPTIONS,
            "--fd", str(sock.fileno()), "project.asgi:application"]
    proc = ServerProcess(name, args, workdir, env=env, cwd=ROOT, timeout=90, pass_fds=(sock.fileno(),))
    proc.ready = accepting_on(lambda: proc.proc.pid if proc.proc else 0, os.fstat(sock.fileno()).st_ino)
    return proc


def start_generation(gen: int, count: int, sock: socket.socket, env: dict[str, str], workdir: Path,
                     started: list[ServerProcess]) -> list[ServerProcess]:
    """Start ``count`` daphnes at once (added to ``started`` first, to be stopped) and wait until each accepts."""
    procs = [daphne(f"daphne-g{gen}-{k}", sock, env, workdir) for k in range(count)]
    started.extend(procs)
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(ServerProcess.start, procs))
    return procs


def terminate(procs: list[ServerProcess]) -> list[str]:
    """SIGTERM every process at once, as supervisor stops a group; SIGKILL after stopwaitsecs. Say how each ended."""
    for proc in procs:
        if proc.alive():
            proc.proc.send_signal(signal.SIGTERM)
    began = time.perf_counter()
    ends = []
    for proc in procs:
        try:
            code = proc.proc.wait(max(0.0, STOP_WAIT_SECONDS - (time.perf_counter() - began)))
            ends.append(f"exit {code} after {time.perf_counter() - began:.1f} s")
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.proc.wait()
            ends.append(f"SIGKILL after {STOP_WAIT_SECONDS:g} s")
    return ends


def log_problems(procs: list[ServerProcess]) -> Counter:
    """Count the daphne log lines that say something went wrong (errors, tracebacks, warnings), by gist."""
    found: Counter = Counter()
    for proc in procs:
        for line in proc.log_path.read_text(errors="replace").splitlines():
            if re.search(r'"level": "(ERROR|WARNING|CRITICAL)"|Traceback|\bERROR\b|\bWARNING\b', line):
                gist = re.sub(r'"(time|timestamp|asctime)": "[^"]*",?\s*', "", line)
                found[re.sub(r"\d+", "N", gist)[:160]] += 1
    return found


# --- the database ----------------------------------------------------------------------------
def apply_changes(orders: list[tuple[str, str]], threads: int) -> int:
    """Settle these orders' payments as the webhook would, in ``threads`` threads; return how many were applied."""
    from django.db import connections

    from checkout.models import EventSource
    from checkout.observations import observation_from_payload
    from checkout.services.payments import payment_notification_apply
    from checkout.signature import signature_is_valid

    def one(chunk: list[tuple[int, str]]) -> int:
        applied = 0
        try:
            for k, number in chunk:
                body = settlement_body(number, k)
                payload = json.loads(body)
                assert signature_is_valid(payload, SERVER_KEY)
                transition = payment_notification_apply(
                    observation=observation_from_payload(payload, require_signature=True),
                    source=EventSource.WEBHOOK, raw_body=body.decode(), raw_size=len(body), headers={},
                    client_ip="127.0.0.1")
                applied += transition.outcome == "applied"
        finally:
            connections.close_all()
        return applied

    numbered = [(k, number) for k, (number, _) in enumerate(orders)]
    chunks = [numbered[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(one, chunks))


def statement_logging(on: bool) -> None:
    """Switch PostgreSQL's log_statement = all on or off for the whole cluster (no restart needed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if on:
            cursor.execute("ALTER SYSTEM SET log_statement = 'all'")
            cursor.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
        else:
            cursor.execute("ALTER SYSTEM RESET log_statement")
        cursor.execute("SELECT pg_reload_conf()")
    close_connections()


STATEMENT = re.compile(r"LOG:\s+(?:statement|execute [^:]*):\s+(.*)$")
SHAPES = [  # (name, pattern): the first that matches names a logged statement
    ("handshake/resync: order + payment by number",
     re.compile(r'^SELECT .*FROM "checkout_order" .*JOIN "checkout_payment".* WHERE "checkout_order"\."number" = ',
                re.S)),
    ("heartbeat: versions of a window's pings (one query per window, realtime/versions.py)",
     re.compile(r'"checkout_payment"\."version" AS "version" FROM .* IN \(')),
    ("fast lane: watched payments (one query per process per tick)",
     re.compile(r'"checkout_payment"\."transaction_status" AS "transaction_status" FROM .* IN \(')),
    ("connection setup (a new pooled connection's time zone)", re.compile(r"^SELECT set_config\('TimeZone'")),
    ("other SELECT", re.compile(r"^\s*SELECT", re.I)),
    ("other statement", re.compile(r".")),
]


def classify_statements(log: Path, start: int, end: int) -> tuple[Counter, dict[str, str]]:
    """Count the statements logged between two offsets of the cluster's log, by shape; one example of each."""
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read(max(0, end - start)).decode(errors="replace")
    shapes: Counter = Counter()
    examples: dict[str, str] = {}
    for line in text.splitlines():
        match = STATEMENT.search(line)
        if match:
            shape = next(name for name, pattern in SHAPES if pattern.search(match[1]))
            shapes[shape] += 1
            examples.setdefault(shape, match[1])
    return shapes, examples


# --- the run ---------------------------------------------------------------------------------
async def run(args: argparse.Namespace, sock: socket.socket, env: dict[str, str], workdir: Path,
              cluster: PostgresCluster | None, procs: list[ServerProcess]) -> int:
    """Open the pages, deploy, measure the storm; print the figures; return the exit status."""
    port = sock.getsockname()[1]
    count = math.ceil(args.sockets / args.per_order)
    orders = await asyncio.to_thread(create_pending_orders, "RS", count)
    storm = Storm(args, port, args.sockets)
    pages = [Page(storm, *orders[k % count]) for k in range(args.sockets)]
    daphnes = await asyncio.to_thread(start_generation, 1, args.processes, sock, env, workdir, procs)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"machine   {machine()}; load average {' '.join(load)}")
    print(f"servers   {args.processes} daphne on one socket (--fd), port {port}; database {args.database}; "
          f"{args.sockets} sockets on {count} orders ({args.per_order} each); client: one process, "
          f"at most {args.in_flight} handshakes in flight, retry after U(0, {args.retry:g}) s", flush=True)

    tasks = [asyncio.create_task(page.life()) for page in pages]
    began = time.perf_counter()
    try:
        await asyncio.wait_for(storm.opened.wait(), max(120.0, args.sockets / 50))
    except TimeoutError:
        print(f"FAILED: only {storm.first_opens}/{args.sockets} sockets opened; failures {dict(storm.failures)}")
        return 1
    opened_s = time.perf_counter() - began
    open_ms = list(storm.handshake_ms)
    print(f"opened    {args.sockets} sockets in {opened_s:.1f} s (handshake p50 {pct(open_ms, 50):.0f} ms, "
          f"p99 {pct(open_ms, 99):.0f} ms; failures {dict(storm.failures) or 'none'})", flush=True)
    await asyncio.sleep(2.0)  # let the last handshakes' work finish before reading memory
    rss_before = [rss_kib(d.proc.pid) for d in daphnes]

    # The deploy: stop every web process; the pages wait, as their retries find nobody.
    storm.up.clear()
    stopped = await asyncio.to_thread(terminate, daphnes)
    try:
        await asyncio.wait_for(storm.down_closed.wait(), 30)
    except TimeoutError:
        pass
    print(f"stopped   SIGTERM to {len(daphnes)} daphne: {'; '.join(stopped)}; pages saw closes "
          f"{dict(storm.closes)}; {storm.open} still open", flush=True)

    changed = [orders[k] for k in sorted(random.sample(range(count), round(count * args.changed)))]
    t0 = time.perf_counter()
    threads = args.apply_threads if args.database == "postgresql" else 1
    applied = await asyncio.to_thread(apply_changes, changed, threads)
    truth = await asyncio.to_thread(committed_versions, [number for number, _ in orders])
    for page in pages:
        page.target = truth[page.number][1]
    print(f"changed   {applied}/{len(changed)} orders settled while no daphne ran ({time.perf_counter() - t0:.1f} s, "
          f"{threads} threads, the webhook's service in this process)", flush=True)

    log_start = 0
    if cluster is not None:
        await asyncio.to_thread(statement_logging, True)
        await asyncio.sleep(0.5)  # the postmaster reloads on its own time
        log_start = cluster.log_path.stat().st_size
    close_connections()

    # The restart: new daphnes on the same socket; every page reconnects now.
    load = Path("/proc/loadavg").read_text().split()[:3]
    storm.reset_tallies()
    for page in pages:
        page.attempts = 0
    client0, machine0 = cpu_ticks(os.getpid()), machine_busy_ticks()
    storm.restarted_at = time.perf_counter()
    storm.up.set()

    def boot() -> tuple[list[ServerProcess], float, list[int]]:
        started = start_generation(2, args.processes, sock, env, workdir, procs)
        return started, time.perf_counter(), [cpu_ticks(p.proc.pid) for p in started]

    booting = asyncio.create_task(asyncio.to_thread(boot))
    try:
        await asyncio.wait_for(storm.settled.wait(), args.deadline)
    except TimeoutError:
        pass
    ended = time.perf_counter()
    log_end = cluster.log_path.stat().st_size if cluster is not None else 0
    client1, machine1 = cpu_ticks(os.getpid()), machine_busy_ticks()
    try:
        boot, ready_at, boot_ticks = await booting
    except RuntimeError as exc:
        print(f"FAILED: the new daphnes did not start: {exc}")
        return 1
    daphne_cpu = [cpu_ticks(p.proc.pid) / TICK for p in boot]
    await asyncio.sleep(2.0)
    rss_after = [rss_kib(p.proc.pid) for p in boot]
    died = [p.name for p in boot if not p.alive()]

    storm_s = ended - storm.restarted_at
    times = [(p.resynced_at - storm.restarted_at) * 1000 for p in pages if p.resynced_at is not None]
    missing = args.sockets - len(times)
    gave_up = Counter(p.gave_up for p in pages if p.gave_up)
    last_s = max(times, default=storm_s * 1000) / 1000 if not missing else storm_s
    cores = len(os.sched_getaffinity(0))
    machine_pct = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1) * 100 * cores
    retries = sum(max(0, p.attempts - 1) for p in pages)

    print(f"restart   load average {' '.join(load)} at the restart; the new daphnes accepted after "
          f"{ready_at - storm.restarted_at:.1f} s (boot CPU {' / '.join(f'{t / TICK:.1f}' for t in boot_ticks)} s); "
          f"{storm.attempts} handshakes started "
          f"({storm.upgraded} answered 101), {retries} retries; failures "
          f"{', '.join(f'{k} ×{n}' for k, n in storm.failures.most_common()) or 'none'}"
          + (f"; gave up (as the page does) {dict(gave_up)}" if gave_up else ""))
    print(f"resync    {len(times)}/{args.sockets} pages show the committed version; last at {last_s:.1f} s after "
          f"the restart; per page p50 {pct(times, 50):.0f} ms, p95 {pct(times, 95):.0f} ms, "
          f"p99 {pct(times, 99):.0f} ms, max {max(times, default=float('nan')):.0f} ms")
    print(f"handshake p50 {pct(storm.handshake_ms, 50):.0f} ms, p99 {pct(storm.handshake_ms, 99):.0f} ms from the "
          f"client's connect to the snapshot (a slot of {args.in_flight} held meanwhile); pongs {storm.pongs}, "
          f"pong timeouts {storm.pong_timeouts}, resyncs by heartbeat {storm.resyncs}")
    print(f"cpu       over the {storm_s:.1f} s storm: daphne {' / '.join(f'{c:.1f}' for c in daphne_cpu)} s "
          f"(boot included), client {(client1 - client0) / TICK:.1f} s "
          f"({(client1 - client0) / TICK / storm_s * 100:.0f}% of a core), machine {machine_pct:.0f}% of "
          f"{cores * 100}%")
    print(f"rss       daphne with {args.sockets} sockets: before the deploy "
          f"{' / '.join(f'{r / 1024:.0f}' for r in rss_before)} MiB, after "
          f"{' / '.join(f'{r / 1024:.0f}' for r in rss_after)} MiB")

    reads = "n/a"
    if cluster is not None:
        await asyncio.to_thread(statement_logging, False)
        shapes, examples = classify_statements(cluster.log_path, log_start, log_end)
        handshake_reads = shapes[SHAPES[0][0]] - storm.resyncs
        total = sum(shapes.values())
        received = storm.attempts - storm.refused  # handshakes daphne received, answered or dropped
        reads = f"{handshake_reads / max(received, 1):.2f}"
        print(f"database  statements PostgreSQL logged from the restart to the last resync: {total} "
              f"({total / max(received, 1):.2f} per handshake, every kind)")
        for name, n in shapes.most_common():
            print(f"          {n:>7}  {name}" + (f" (e.g. {examples[name][:110]})" if name.startswith("other") else ""))
        print(f"          handshake reads {shapes[SHAPES[0][0]]} - {storm.resyncs} resyncs = {handshake_reads} "
              f"over {received} handshakes daphne received = {reads} per handshake "
              f"({handshake_reads / max(storm.upgraded, 1):.2f} per handshake answered 101)")
    problems = log_problems(procs)
    if problems:
        print(f"daphne log: {sum(problems.values())} error/warning lines; most common:")
        for gist, n in problems.most_common(5):
            print(f"          {n:>7}  {gist}")
    if died:
        print(f"warning: {', '.join(died)} died")

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    state = "all" if not missing else f"{missing} missing"
    print(f"storm {args.sockets} sockets resynced {state} in {last_s:.1f} s p99 {pct(times, 99):.0f} ms "
          f"reads/handshake {reads} processes {args.processes} database {args.database}")
    return 0 if not missing and not died else 1


def main(argv: list[str] | None = None) -> int:
    """Start Redis and the database; run; stop everything."""
    args = parse_args(argv)
    raise_fd_limit(args.sockets * 2 + 4096)
    workdir = Path(tempfile.mkdtemp(prefix="reconnect-storm-"))
    random.seed(1)
    cluster = None
    procs: list[ServerProcess] = []
    redis = start_redis(workdir)
    try:
        database_url, cluster = scratch_database(args.database, workdir)
        env = server_env(database_url, redis.url or "", args.log_level)
        # Migrate, and set Django up in this process against the same database (its own log lines are not wanted).
        prepare_database({**env, "LOG_LEVEL": "WARNING"}, 0)
        sock = listen_socket()
        return asyncio.run(run(args, sock, env, workdir, cluster, procs))
    finally:
        stop_everything([*procs, redis], cluster, None if args.keep else workdir)


if __name__ == "__main__":
    sys.exit(main())
