"""The whole product as real processes: redis, the simulator, daphne and a qcluster worker."""

import re
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from paywatch_dev.servers import ServerProcess, free_port, http_ready, start_simulator, tcp_ready
from paywatch_dev.simcontrol import SimulatorControl

ROOT = Path(__file__).resolve().parents[1]
SERVER_KEY = "SB-Mid-server-TEST-KEY"
# An order token (secrets.token_urlsafe(24)) as a query value, plain or percent-encoded.
TOKEN_IN_URL = re.compile(r"(?:(?<![\w.%-])|%3F|%26)t(?:=|%3D)[A-Za-z0-9_-]{32}", re.IGNORECASE)


# Daphne's options as the Procfile and deploy/supervisor run it (tests/deploy/test_layout.py keeps them equal).
# --websocket_connect_timeout: daphne's 5 s dropped handshakes queued behind a burst (a deploy's
# reconnects) after their database read; the page then reconnected, and read again.
DAPHNE_OPTIONS = ("--ping-interval", "60", "--websocket_connect_timeout", "30", "--access-log", "/dev/null")


class Stack:
    """Real web (daphne), simulator and worker processes sharing the test database."""

    def __init__(self, workdir: Path, database_url: str, redis_url: str, **settings: str) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.notify_url = f"{self.web_url}/payments/midtrans/notification"
        self.simulator = start_simulator(workdir, notify_url=self.notify_url, server_key=SERVER_KEY)
        self.sim_url = self.simulator.url
        self.control = SimulatorControl(self.sim_url)
        # One scrape of any web process shows every process's metrics, as in production
        # (project/metrics.py); a directory of its own, so it starts empty.
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=workdir))
        self.env = {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            # DEBUG is off as in production, so the values must pass project/checks.py.
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MIDTRANS_SERVER_KEY": SERVER_KEY,
            "MIDTRANS_CORE_API_URL": self.sim_url,
            "MIDTRANS_SNAP_API_URL": f"{self.sim_url}/snap/v1",
            "MIDTRANS_READ_TIMEOUT": "3",
            "PUBLIC_BASE_URL": self.web_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PAYMENT_FALLBACK_SECONDS": "3",
            "REFRESH_MIN_INTERVAL_SECONDS": "2",
            "PYTHONPATH": str(ROOT),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            **settings,
        }
        self.web: ServerProcess | None = None
        self.workers: list[ServerProcess] = []
        self.start_web()

    def start_web(self) -> None:
        """Start daphne on the stack's fixed port and wait until /healthz answers."""
        self.web = ServerProcess(
            "daphne",
            [sys.executable, "-m", "daphne", *DAPHNE_OPTIONS, "-b", "127.0.0.1", "-p", str(self.web_port),
             "project.asgi:application"],
            self.workdir, url=self.web_url, ready=http_ready(f"{self.web_url}/healthz"), env=self.env, cwd=ROOT,
            port=self.web_port,
        ).start()

    def restart_web(self) -> None:
        """Stop daphne (cutting every websocket) and start it again on the same port."""
        assert self.web is not None
        self.web.stop()
        self.start_web()

    def extra_web(self, name: str, **env: str) -> ServerProcess:
        """Start one more daphne on the stack's database and Redis with some settings changed.

        Ready once it listens (its /healthz may be 503 on purpose); the caller stops it.
        """
        port = free_port()
        return ServerProcess(
            f"daphne-{name}-{port}",
            [sys.executable, "-m", "daphne", *DAPHNE_OPTIONS, "-b", "127.0.0.1", "-p", str(port),
             "project.asgi:application"],
            self.workdir, url=f"http://127.0.0.1:{port}", ready=tcp_ready("127.0.0.1", port),
            env={**self.env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **env}, cwd=ROOT, port=port,
        ).start()

    def start_worker(self, **env: str) -> ServerProcess:
        """Start a django-q2 qcluster against the stack's database and Redis."""
        worker = ServerProcess(
            f"qcluster-{len(self.workers)}", [sys.executable, "manage.py", "qcluster"], self.workdir,
            env={**self.env, **env}, cwd=ROOT,
        ).start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for proc in [*self.workers, self.web, self.simulator]:
            if proc is not None:
                proc.stop()

    def paywatch_logs(self) -> list[Path]:
        """Return the log files of every Paywatch process started in the workdir (daphnes and workers)."""
        return sorted(path for pattern in ("daphne*.log", "qcluster*.log") for path in self.workdir.rglob(pattern))

    def token_leaks(self) -> list[str]:
        """Return every line of the Paywatch processes' logs that carries an order token."""
        return [f"{path.name}: {line}" for path in self.paywatch_logs()
                for line in path.read_text(errors="replace").splitlines() if TOKEN_IN_URL.search(line)]

    # --- the simulator's control API -------------------------------------------------
    def sim(self, action: str, order_id: str, **params: Any) -> dict[str, Any]:
        """POST /sim/orders/<id>/<action>; raise on a non-2xx answer."""
        response = self.control.act(order_id, action, **params)
        response.raise_for_status()
        return response.json()

    def sim_order(self, order_id: str) -> dict[str, Any]:
        return self.control.order(order_id)

    def sim_config(self, **config: Any) -> dict[str, Any]:
        return self.control.config(**config)

    # --- the shop, as a customer ---------------------------------------------------------
    def checkout(self, sku: str = "kopi-gayo", quantity: int = 1) -> "Checkout":
        """Check out through the shop over HTTP; return the order and the Snap redirect."""
        from django.core.management import call_command

        call_command("seed_demo", verbosity=0)  # idempotent; the test database is flushed between tests
        session = requests.Session()
        shop = session.get(f"{self.web_url}/", timeout=10)
        shop.raise_for_status()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shop.text).group(1)
        response = session.post(
            f"{self.web_url}/checkout/", allow_redirects=False, timeout=15,
            data={"csrfmiddlewaretoken": csrf, "product": sku, "quantity": quantity,
                  "name": "Budi", "email": "budi@example.com"},
            headers={"Referer": f"{self.web_url}/"},
        )
        assert response.status_code == 302, response.text[:500]
        return Checkout(self, response.headers["Location"])


class Checkout:
    """One order checked out through the shop, identified the way the customer sees it."""

    def __init__(self, stack: Stack, redirect_url: str) -> None:
        from checkout.models import Payment

        self.redirect_url = redirect_url
        payment = Payment.objects.select_related("order").get(redirect_url=redirect_url)
        self.number = payment.order.number
        self.token = payment.order.access_token
        self.page_url = f"{stack.web_url}/orders/{self.number}/?t={self.token}"
        self.status_url = f"{stack.web_url}/orders/{self.number}/status?t={self.token}"
        self.ws_url = stack.web_url.replace("http", "ws", 1) + f"/ws/orders/{self.number}/?t={self.token}"
