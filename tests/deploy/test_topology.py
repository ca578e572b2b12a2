"""deploy/ as it runs in production: nginx → 2 daphne (supervisor) → PostgreSQL + Redis, 2 qcluster workers.

The tests share one running topology (tests/deploy/topology.py) and run in
file order; the schedule test forces every schedule due, so it comes last.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from paywatch_dev.servers import wait_until
from paywatch_dev.stack import TOKEN_IN_URL
from tests.deploy.topology import Topology, topology_running

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    yield from topology_running(tmp_path_factory.mktemp("topology"))


class Order:
    """An order checked out through nginx, as the customer's browser does it."""

    def __init__(self, topology: Topology) -> None:
        session = requests.Session()
        # verify on each call: a session's verify loses to REQUESTS_CA_BUNDLE from the environment.
        shop = session.get(f"{topology.base}/", timeout=15, verify=str(topology.cert))
        shop.raise_for_status()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shop.text).group(1)
        answer = session.post(f"{topology.base}/checkout/", allow_redirects=False, timeout=20,
                              verify=str(topology.cert),
                              data={"csrfmiddlewaretoken": csrf, "product": "kopi-gayo", "quantity": 1,
                                    "name": "Budi", "email": "budi@example.com"},
                              headers={"Referer": f"{topology.base}/"})
        assert answer.status_code == 302, answer.text[:500]
        redirect = answer.headers["Location"]
        found = [tx for tx in topology.control_orders() if tx["redirect_url"] == redirect]
        assert len(found) == 1, redirect
        self.number = found[0]["order_id"]
        page = urlsplit(found[0]["finish_url"])
        self.token = parse_qs(page.query)["t"][0]
        self.ws_url = topology.base.replace("https", "wss", 1) + f"/ws/orders/{self.number}/?t={self.token}"
        self.events_url = f"{topology.base}/orders/{self.number}/events?t={self.token}"


def settlement_payload(topology: Topology, number: str) -> dict[str, Any]:
    """Settle the order at the simulator without delivering; return the signed notification it made."""
    response = topology.control.act(number, "settle", notify="drop")
    response.raise_for_status()
    return topology.control.order(number)["last_payload"]


def post_from(topology: Topology, source_ip: str, path: str, body: bytes,
              headers: dict[str, str]) -> tuple[int, bytes]:
    """POST over HTTPS to nginx from ``source_ip`` (a loopback alias, so nginx sees a distinct client)."""
    raw = socket.create_connection(("127.0.0.1", topology.https_port), timeout=20, source_address=(source_ip, 0))
    with topology.ssl_context().wrap_socket(raw, server_hostname="localhost") as tls:
        head = "".join(f"{name}: {value}\r\n" for name, value in {
            "Host": f"localhost:{topology.https_port}", "Content-Type": "application/json",
            "Content-Length": str(len(body)), "Connection": "close", **headers}.items())
        tls.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


class LiveReader:
    """A waiting page's live channel through nginx, read until a status shows; reconnects after a cut, as the page does.

    Subclasses say how to connect and read (``read``) and which errors mean
    the connection was cut (``CUT``); what was read is kept in ``seen``.
    """

    KIND = ""
    CUT: tuple[type[BaseException], ...] = ()

    def __init__(self, topology: Topology, url: str) -> None:
        self.url, self.topology, self.seen = url, topology, []
        self.connection: Any = None  # None until connected, and again after a cut

    def read(self, timeout: float) -> dict[str, Any]:
        """Connect if not connected; return the next message."""
        raise NotImplementedError

    def until(self, status: str, timeout: float = 30) -> dict[str, Any]:
        """Read (reconnecting after a cut) until ``payment_status == status``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.read(left)
            except self.CUT:
                # Cut (a daphne died): reconnect once one answers behind nginx; the snapshot or Last-Event-ID resyncs.
                self.connection = None
                wait_until(self.topology.serving, max(deadline - time.monotonic(), 0.1))
                continue
            if message.get("payment_status") == status:
                return message
        raise AssertionError(f"{self.KIND}: no {status!r} within {timeout} s; saw {self.seen}")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class Watcher(LiveReader):
    """The waiting page's websocket."""

    KIND = "websocket"
    CUT = (ConnectionClosed, OSError)  # a TimeoutError (an OSError) too: the deadline then ends the loop

    def __init__(self, topology: Topology, order: Order) -> None:
        super().__init__(topology, order.ws_url)

    def open(self) -> dict[str, Any]:
        """Connect through nginx and return the snapshot."""
        self.connection = connect(self.url, ssl=self.topology.ssl_context(), origin=self.topology.base,
                                  open_timeout=10)
        return self.next(10)

    def next(self, timeout: float) -> dict[str, Any]:
        message = json.loads(self.connection.recv(timeout=timeout))
        self.seen.append(message)
        return message

    def read(self, timeout: float) -> dict[str, Any]:
        return self.next(timeout) if self.connection is not None else self.open()


class EventStream(LiveReader):
    """``GET /orders/<n>/events``, resuming after ``Last-Event-ID``."""

    KIND = "event stream"
    CUT = (requests.RequestException, ConnectionError, AssertionError, OSError)

    def __init__(self, topology: Topology, order: Order) -> None:
        super().__init__(topology, order.events_url)
        self.last_id: str | None = None
        self.lines: Iterator[str] = iter(())

    def open(self) -> None:
        headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": self.last_id} if self.last_id else {})
        self.connection = requests.get(self.url, stream=True, headers=headers, verify=str(self.topology.cert),
                                       timeout=(10, 15))
        assert self.connection.status_code == 200, self.connection.status_code
        assert self.connection.headers["Content-Type"].startswith("text/event-stream")
        self.lines = self.connection.iter_lines(decode_unicode=True)

    def read(self, timeout: float) -> dict[str, Any]:
        """Return the next event's JSON data (comments and retry lines skipped); requests bounds the wait."""
        if self.connection is None:
            self.open()
        data = []
        for line in self.lines:
            if line.startswith("id:"):
                self.last_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                message = json.loads("\n".join(data))
                self.seen.append(message)
                return message
        raise ConnectionError("stream ended")


@contextmanager
def watching_on_daphne_0(topology: Topology, order: Order) -> Iterator[tuple[Watcher, EventStream]]:
    """Yield a websocket and an event stream on the pending order, both held by daphne 0, with daphne 1 running."""
    # Only daphne 0 accepts while they connect, so they are all its own.
    topology.ctl("stop", topology.web(1))
    watcher, stream = Watcher(topology, order), EventStream(topology, order)
    try:
        assert watcher.open()["payment_status"] == "pending"
        assert stream.until("pending")["version"] >= 1
        topology.ctl("start", topology.web(1))
        wait_until(lambda: topology.web(1) in topology.running(), 60, "daphne 1 running again")
        yield watcher, stream
    finally:
        watcher.close()
        stream.close()


def _tls_handshake(topology: Topology, version: ssl.TLSVersion) -> str:
    """Connect with exactly ``version``; return the negotiated protocol name."""
    context = topology.ssl_context()
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", topology.https_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version()


def test_tls_1_2_and_1_3_are_accepted(topology: Topology) -> None:
    """Midtrans negotiates TLS 1.2: a server offering only 1.3 would receive no notification."""
    assert _tls_handshake(topology, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _tls_handshake(topology, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


def test_pages_redirect_to_https_but_the_notification_never_does(topology: Topology) -> None:
    """Midtrans turns a redirect into a body-less GET: on port 80 the notification is proxied, not moved."""
    page = requests.get(f"{topology.http_base}/orders/1/?t=x", allow_redirects=False, timeout=10)
    assert page.status_code == 301
    assert page.headers["Location"] == f"{topology.base}/orders/1/?t=x"
    notification = requests.post(f"{topology.http_base}/payments/midtrans/notification", data=b"{}",
                                 headers={"Content-Type": "application/json"}, allow_redirects=False, timeout=10)
    assert notification.status_code == 400  # the app's answer to a body missing every field
    for base in (topology.base, topology.http_base):
        slash = requests.post(f"{base}/payments/midtrans/notification", data=b"{}", verify=str(topology.cert),
                              headers={"Content-Type": "application/json"}, allow_redirects=False, timeout=10)
        assert slash.status_code == 400, base


def test_an_oversized_notification_is_refused_by_nginx(topology: Topology) -> None:
    """The webhook's limit is 64 KiB; nginx refuses more before a daphne reads a byte."""
    answer = requests.post(f"{topology.base}/payments/midtrans/notification", data=b"x" * (65 * 1024),
                           verify=str(topology.cert), timeout=10)
    assert answer.status_code == 413


def test_static_files_are_served_by_nginx_from_static_root(topology: Topology) -> None:
    """A file written into STATIC_ROOT after the daphnes started is served: nginx reads the directory itself."""
    (topology.static_root / "nginx-probe.txt").write_text("served by nginx\n")
    answer = topology.get("/static/nginx-probe.txt")
    assert answer.status_code == 200
    assert answer.text == "served by nginx\n"
    assert "max-age=3600" in answer.headers["Cache-Control"]


def test_a_webhook_through_nginx_reaches_watchers_on_the_other_daphne(topology: Topology) -> None:
    """Watchers held by daphne 0, the webhook served by daphne 1: both streams move, the stored IP is the client's."""
    order = Order(topology)
    with watching_on_daphne_0(topology, order) as (watcher, stream):
        web0 = topology.running()[topology.web(0)]
        payload = settlement_payload(topology, order.number)
        # Daphne 0 frozen: the shared socket's connections all go to daphne 1.
        os.kill(web0, signal.SIGSTOP)
        try:
            status, body = post_from(topology, "127.0.0.2", "/payments/midtrans/notification",
                                     json.dumps(payload).encode(), {"X-Forwarded-For": "203.0.113.9"})
        finally:
            os.kill(web0, signal.SIGCONT)
        assert status == 200, body
        assert watcher.until("success")["version"] > 1
        assert stream.until("success")["order_status"] == "processing"
    rows = topology.sql("SELECT host(client_ip), outcome FROM checkout_paymentevent "
                        "WHERE source = 'webhook' AND order_number = %s", order.number)
    # nginx overwrote the forged X-Forwarded-For with the address it saw.
    assert rows == [("127.0.0.2", "applied")]
    served = [line for line in topology.web_log_lines(1)
              if line.get("path") == "/payments/midtrans/notification" and line.get("status") == 200]
    assert [line["client"] for line in served] == ["127.0.0.2"]


def test_killing_a_daphne_mid_stream_loses_nothing(topology: Topology) -> None:
    """Daphne 0 killed with watchers on it; a webhook meanwhile; they reconnect, resync, and supervisor restarts it."""
    order = Order(topology)
    with watching_on_daphne_0(topology, order) as (watcher, stream):
        killed = topology.running()[topology.web(0)]
        os.kill(killed, signal.SIGKILL)
        payload = settlement_payload(topology, order.number)
        answer = requests.post(topology.notify_url, json=payload, verify=str(topology.cert), timeout=20)
        assert answer.status_code == 200, answer.text
        assert watcher.until("success")["payment_status"] == "success"
        assert stream.until("success")["order_status"] == "processing"
    restarted = wait_until(lambda: topology.running().get(topology.web(0)), 60, "supervisor restarts daphne 0")
    assert restarted != killed
    assert topology.get("/healthz").status_code == 200


def test_no_order_token_in_any_log(topology: Topology) -> None:
    """nginx's access log writes $uri (no query string); the app's lines carry no token either."""
    leaks = [f"{path.name}: {line}" for path in topology.logs.glob("*.log")
             for line in path.read_text(errors="replace").splitlines() if TOKEN_IN_URL.search(line)]
    assert not leaks, "\n".join(leaks[:20])


def test_each_schedule_runs_once_per_tick_with_two_clusters(topology: Topology) -> None:
    """Every schedule forced due at once; after both qclusters' schedulers have looked, each ran exactly once."""
    assert len([name for name in topology.running() if name.startswith("paywatch-worker:")]) == 2
    # Each scheduler pass is one SELECT ... FOR UPDATE on the schedules: logged, so the test
    # can wait until both clusters have looked instead of sleeping a guessed time.
    topology.sql("ALTER SYSTEM SET log_statement = 'all'")
    topology.sql("SELECT pg_reload_conf()")
    forced_at = topology.sql("SELECT now()")[0][0]
    marker = f"topology-marker-{time.monotonic_ns()}"
    topology.sql(f"SELECT '{marker}'")
    forced = [name for (name,) in topology.sql(
        "UPDATE django_q_schedule SET next_run = now() - interval '1 minute' RETURNING name")]
    assert len(forced) >= 3, forced  # reconcile, cleanup, prune

    def passes() -> int:
        log = topology.postgres.log_path.read_text(errors="replace")
        after = log[log.rfind(marker):]
        return len(re.findall(r'FROM "django_q_schedule".*FOR UPDATE', after))

    def tasks() -> dict[str, int]:
        rows = topology.sql('SELECT "group", count(*) FROM django_q_task WHERE started >= %s GROUP BY "group"',
                            forced_at)
        return {group: count for group, count in rows if group in forced}

    try:
        # The clusters' schedulers each look every 30 s: two passes after the forcing are one from each.
        wait_until(lambda: passes() >= 2, 90, "both clusters' schedulers passed")
        wait_until(lambda: len(tasks()) == len(forced), 120, f"every schedule ran ({forced})")
    finally:
        topology.sql("ALTER SYSTEM RESET log_statement")
        topology.sql("SELECT pg_reload_conf()")
    assert tasks() == {name: 1 for name in forced}
