"""Fixtures: a running simulator process pointed at an in-test notification receiver."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import midtransclient
import pytest
import requests

from paywatch_dev.servers import ServerProcess, start_simulator
from paywatch_dev.simcontrol import SimulatorControl

SERVER_KEY = "SB-Mid-server-TEST-SIMULATOR"
# Retry intervals become 0.06, 0.3, 0.9, 2.7, 6.3 s.
RETRY_SCALE = 0.0005
WAIT = 15.0


class NotifyReceiver:
    """A real HTTP server in a thread that records notifications and answers as scripted."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.received: list[dict[str, Any]] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    status = receiver.script.pop(0) if receiver.script else 200
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = None
                    receiver.received.append({"path": self.path, "raw": raw, "json": body,
                                              "headers": dict(self.headers), "answered": status})
                    receiver.cond.notify_all()
                payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"

    def answer_with(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP statuses (then 200)."""
        with self.cond:
            self.script = list(statuses)

    def reset(self) -> None:
        """Forget what was received and the script."""
        with self.cond:
            self.received.clear()
            self.script.clear()

    def for_order(self, order_id: str) -> list[dict[str, Any]]:
        """Return the notifications received so far for an order."""
        with self.cond:
            return [r for r in self.received if (r["json"] or {}).get("order_id") == order_id]

    def wait_for(self, order_id: str, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Wait (bounded) until count notifications for order_id arrived; return them (JSON bodies)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.for_order(order_id)) >= count, timeout)
            got = self.for_order(order_id)
        assert ok, f"expected {count} notifications for {order_id}, got {len(got)}: {got}"
        return [r["json"] for r in got]

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()


class Sim(SimulatorControl):
    """Helpers around the running simulator: midtransclient clients and the control API."""

    def __init__(self, process: ServerProcess) -> None:
        super().__init__(str(process.url), wait=WAIT)
        self.process = process
        self.server_key = SERVER_KEY

    def snap(self, server_key: str = SERVER_KEY) -> midtransclient.Snap:
        """Return an unmodified midtransclient Snap pointed at the simulator."""
        snap = midtransclient.Snap(is_production=False, server_key=server_key)
        snap.api_config.SNAP_SANDBOX_BASE_URL = f"{self.url}/snap/v1"
        snap.api_config.CORE_SANDBOX_BASE_URL = self.url
        return snap

    def core(self, server_key: str = SERVER_KEY) -> midtransclient.CoreApi:
        """Return an unmodified midtransclient CoreApi pointed at the simulator."""
        core = midtransclient.CoreApi(is_production=False, server_key=server_key)
        core.api_config.CORE_SANDBOX_BASE_URL = self.url
        return core

    def create(self, order_id: str, amount: int = 10000, **extra: Any) -> dict[str, Any]:
        """Create a Snap transaction; return {token, redirect_url}."""
        body = {"transaction_details": {"order_id": order_id, "gross_amount": amount},
                "callbacks": {"finish": "http://shop.test/orders/finish"}, **extra}
        return self.snap().create_transaction(body)


@pytest.fixture(scope="session")
def notify_server() -> Iterator[NotifyReceiver]:
    """The session's notification receiver."""
    receiver = NotifyReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory, notify_server: NotifyReceiver) -> Iterator[ServerProcess]:
    """A running simulator process (fast retries) that notifies ``notify_server``."""
    process = start_simulator(tmp_path_factory.mktemp("simulator"), notify_server.url, SERVER_KEY,
                              retry_scale=RETRY_SCALE)
    yield process
    process.stop()


@pytest.fixture
def notify_receiver(notify_server: NotifyReceiver) -> NotifyReceiver:
    """The notification receiver, emptied and answering 200 by default."""
    notify_server.reset()
    return notify_server


@pytest.fixture
def sim(simulator: ServerProcess, notify_receiver: NotifyReceiver) -> Sim:
    """The simulator, reset (no transactions, start-up config), with helpers."""
    requests.post(f"{simulator.url}/sim/reset", timeout=10).raise_for_status()
    notify_receiver.reset()
    return Sim(simulator)


@pytest.fixture
def order_id() -> str:
    """A fresh, unique order id."""
    return f"T-{uuid.uuid4().hex[:16]}"
