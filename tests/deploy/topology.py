"""The production layout of deploy/, started for real: nginx → 2 daphne (supervisor) → PostgreSQL + Redis.

Everything is rendered from deploy/'s own templates with deploy/render.py and
an environment file written here, the way docs/deploy.md does it, but on free
ports under a temporary directory: nginx (``-p <dir> -c <conf> -g 'daemon
off;'``), ``supervisord -n`` running deploy/supervisor's two programs (2 daphne
processes sharing one socket, 2 qcluster processes), a PostgreSQL cluster of
its own (migrated here, independent of the suite's database), Redis, and the
simulator as Midtrans.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import requests

from paywatch_dev.nginx import make_certificate, nginx_process
from paywatch_dev.postgres import PostgresCluster
from paywatch_dev.servers import (
    ServerProcess,
    free_port,
    start_redis,
    start_simulator,
    wait_until,
)
from paywatch_dev.simcontrol import SimulatorControl

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVER_KEY = "SB-Mid-server-TEST-KEY"
SUPERVISORD = shutil.which("supervisord") or "/usr/bin/supervisord"
SUPERVISORCTL = shutil.which("supervisorctl") or "/usr/bin/supervisorctl"
WEB = "paywatch-web"
WORKER = "paywatch-worker"


class Topology:
    """The running layout; ``base`` is its public HTTPS address (nginx)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.logs = workdir / "log"
        self.logs.mkdir()
        self.static_root = workdir / "static"
        self.http_port, self.https_port, self.web_port = free_port(), free_port(), free_port()
        self.base = f"https://localhost:{self.https_port}"
        self.http_base = f"http://localhost:{self.http_port}"
        self.notify_url = f"{self.base}/payments/midtrans/notification"
        self.cert, self.key = make_certificate(workdir)
        self.processes: list[ServerProcess] = []
        self.supervisor: ServerProcess | None = None
        self.postgres: PostgresCluster | None = None

    # --- start-up, in docs/deploy.md's order ----------------------------------------
    def start(self) -> Topology:
        """Start PostgreSQL, Redis, the simulator; migrate; then supervisor and nginx."""
        self.postgres = PostgresCluster().start()
        redis = start_redis(self.dir)
        self.processes.append(redis)
        # The simulator delivers to nginx over HTTPS, trusting the test certificate.
        self.simulator = start_simulator(self.dir, notify_url=self.notify_url, server_key=SERVER_KEY,
                                         env={"REQUESTS_CA_BUNDLE": str(self.cert)})
        self.processes.append(self.simulator)
        self.control = SimulatorControl(self.simulator.url)
        self.env_file = self.dir / "paywatch.env"
        self.env_file.write_text(self._env_text(redis.url))
        self.env_file.chmod(0o640)
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v0"], ["seed_demo"]):
            self.manage(*command)
        self.start_supervisor()
        self.start_nginx()
        return self

    def _env_text(self, redis_url: str) -> str:
        """Return the environment file: the app's production variables plus the layout's."""
        user = pwd.getpwuid(os.geteuid()).pw_name
        values = {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "PUBLIC_BASE_URL": self.base,
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": redis_url,
            "MIDTRANS_SERVER_KEY": SERVER_KEY,
            "MIDTRANS_CLIENT_KEY": "SB-Mid-client-TEST-KEY",
            "MIDTRANS_CORE_API_URL": self.simulator.url,
            "MIDTRANS_SNAP_API_URL": f"{self.simulator.url}/snap/v1",
            "MIDTRANS_READ_TIMEOUT": "3",
            "METRICS_TOKEN": secrets.token_urlsafe(24),
            # Resyncs every few seconds, so a reconnect's catch-up is observed quickly.
            "WEBSOCKET_HEARTBEAT_SECONDS": "5",
            "STATIC_ROOT": str(self.static_root),
            "PYTHONUNBUFFERED": "1",
            # Layout (deploy/render.py).
            "APP_DIR": str(ROOT),
            "RUN_USER": user,
            "LOG_DIR": str(self.logs),
            "WEB_CONCURRENCY": "2",
            "WORKER_PROCESSES": "2",
            "WEB_BIND": f"127.0.0.1:{self.web_port}",
            "SERVER_NAME": "localhost",
            "HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "TLS_CERT": str(self.cert),
            "TLS_KEY": str(self.key),
            "NGINX_LOG_DIR": str(self.logs),
            "ACME_ROOT": str(self.dir / "acme"),
        }
        return "".join(f"{key}={value}\n" for key, value in values.items())

    def clean_env(self) -> dict[str, str]:
        """Return a bare environment, as init gives supervisord: the env file must carry the rest."""
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8", "HOME": str(self.dir)}

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` through deploy/with-env (as an operator would); return its stdout."""
        done = subprocess.run([str(DEPLOY / "with-env"), str(self.env_file), sys.executable, "manage.py", *args],
                              cwd=ROOT, env=self.clean_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def render(self, template: Path, output: Path) -> Path:
        """Render a deploy/ template from the env file with deploy/render.py."""
        subprocess.run([sys.executable, str(DEPLOY / "render.py"), str(template), "--env-file", str(self.env_file),
                        "-o", str(output)], check=True, cwd=ROOT)
        return output

    def start_supervisor(self) -> None:
        """Run supervisord in the foreground with deploy/supervisor's programs; wait for all four."""
        programs = self.render(DEPLOY / "supervisor" / "paywatch.conf.template", self.dir / "supervisor-paywatch.conf")
        self.supervisor_conf = self.dir / "supervisord.conf"
        self.supervisor_conf.write_text(f"""\
[supervisord]
logfile={self.logs}/supervisord.log
pidfile={self.dir}/supervisord.pid
childlogdir={self.logs}

[unix_http_server]
file={self.dir}/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{self.dir}/supervisor.sock

[include]
files={programs}
""")
        supervisor = ServerProcess("supervisord", [SUPERVISORD, "-n", "-c", str(self.supervisor_conf)], self.dir,
                                   env=self.clean_env(), timeout=90,
                                   ready=lambda: len(self.running()) == 4)
        # Replace, not extend, the inherited environment: only the env file configures the app.
        supervisor.env = self.clean_env()
        self.processes.append(supervisor.start())
        self.supervisor = supervisor

    def start_nginx(self) -> None:
        """Run nginx in the foreground with the rendered site inside a minimal main config."""
        site = self.render(DEPLOY / "nginx" / "paywatch.conf.template", self.dir / "nginx-paywatch.conf")
        (self.dir / "acme").mkdir()
        nginx = nginx_process(self.dir, site, self.logs, self.clean_env(),
                              ready_url=f"{self.http_base}/payments/midtrans/notification")
        self.processes.append(nginx.start())
        wait_until(lambda: self.get("/healthz").status_code == 200, 60, "/healthz through nginx answers 200")

    def stop(self) -> None:
        """Stop everything started, in reverse order, and the PostgreSQL cluster.

        supervisord is given 30 s to stop its programs; whatever of them is
        still alive then (a worker finishing a task) is killed, so that no
        process outlives the test.
        """
        children = list(self.running().values()) if self.supervisor is not None else []
        for process in reversed(self.processes):
            process.stop(timeout=30)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # stopasgroup: each program leads its own group
        if self.postgres is not None:
            self.postgres.stop()

    # --- supervisor ---------------------------------------------------------------------
    def ctl(self, *args: str) -> str:
        """Run supervisorctl against this supervisord; return its output."""
        done = subprocess.run([SUPERVISORCTL, "-c", str(self.supervisor_conf), *args], capture_output=True,
                              text=True, timeout=60, env=self.clean_env())
        return done.stdout

    def running(self) -> dict[str, int]:
        """Return {process name: pid} of the RUNNING processes."""
        found = {}
        for line in self.ctl("status").splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
                found[parts[0]] = int(parts[3].rstrip(","))
        return found

    def web(self, number: int) -> str:
        return f"{WEB}:{WEB}-{number}"

    # --- HTTP through nginx ---------------------------------------------------------------
    def serving(self) -> bool:
        """Return whether nginx reaches a daphne (after one was killed, until supervisor restarts it)."""
        try:
            return self.get("/healthz").status_code == 200
        except requests.RequestException:
            return False

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.base + path, verify=str(self.cert), timeout=15, **kwargs)

    def control_orders(self) -> list[dict[str, Any]]:
        """Return every transaction the simulator (Midtrans) knows."""
        response = requests.get(f"{self.simulator.url}/sim/orders", timeout=10)
        response.raise_for_status()
        return response.json()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def web_log_lines(self, number: int) -> list[dict[str, Any]]:
        """Return the JSON log lines of web process ``number``."""
        lines = []
        for raw in (self.logs / f"web-{number}.log").read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the topology's own database; return its rows (if any)."""
        assert self.postgres is not None
        with psycopg.connect(self.postgres.url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


def topology_running(workdir: Path) -> Iterator[Topology]:
    """Start the topology; yield it; stop it (also when start-up fails half-way)."""
    topology = Topology(workdir)
    try:
        yield topology.start()
    finally:
        topology.stop()
