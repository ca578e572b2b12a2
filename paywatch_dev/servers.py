"""Start real server processes (simulator, redis) for tests and benchmarks, and wait for them properly.

Usage::

    sim = start_simulator(tmp_path, notify_url="http://127.0.0.1:8000/...", server_key="SB-Mid-server-x")
    try:
        requests.get(sim.url + "/healthz")
    finally:
        sim.stop()

or as context managers (``with start_redis(tmp_path) as redis: ...``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
POLL_INTERVAL = 0.05
T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poll(check: Callable[[], bool], timeout: float, exited: Callable[[float], bool] | None = None) -> bool:
    """Call check until it is true, the deadline passes, or the process exits.

    Between checks it waits on the process's exit for POLL_INTERVAL (a crash
    ends the wait at once); a readiness probe itself has no event to wait on.
    """
    exited = exited or _PAUSE.wait
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if exited(POLL_INTERVAL):
            return False
    return check()


def wait_until(check: Callable[[], T], timeout: float, what: str | None = None,
               interval: float = POLL_INTERVAL) -> T:
    """Poll ``check`` until it returns something truthy (returned), for a state another process brings about.

    Such a state (a subscriber count in Redis, a server behind nginx accepting
    again) has no event this process can wait on, so it is polled every
    ``interval`` s up to ``timeout``. At the deadline: raise AssertionError
    naming ``what``, or return the last (falsy) result when ``what`` is None.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            if what is None:
                return result
            raise AssertionError(f"{what}: not within {timeout} s")
        _PAUSE.wait(interval)


_PAUSE = threading.Event()  # never set: only its timed wait is used, between two polls


def http_ready(url: str) -> Callable[[], bool]:
    """Return a check that is true once url answers below HTTP 500."""
    def check() -> bool:
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False
    return check


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """Return a check that is true once host:port accepts connections."""
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return check


def redis_ready(host: str, port: int) -> Callable[[], bool]:
    """Return a check that is true once Redis answers PING with +PONG."""
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
    return check


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    """Wait (bounded) until url answers below HTTP 500; raise TimeoutError otherwise."""
    if not _poll(http_ready(url), timeout):
        raise TimeoutError(f"{url} did not answer within {timeout} s")


class ManagedProcess:
    """A process started for tests or benchmarks: ``start()`` returns it running, ``stop()`` ends it; it logs to a file.

    As a context manager it starts unless already running (``start_redis``
    returns it running) and always stops.
    """

    log_path: Path

    @property
    def started(self) -> bool:
        """Return whether ``start()`` has run (``with`` does not start it twice)."""
        raise NotImplementedError

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        return self if self.started else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ServerProcess(ManagedProcess):
    """A subprocess with a log file, started and checked for readiness."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path | str, *,
                 ready: Callable[[], bool] | None = None, url: str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | str | None = None,
                 timeout: float = 20.0, port: int | None = None, pass_fds: Sequence[int] = ()) -> None:
        self.name = name
        self.port = port
        self.args = list(args)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.url = url
        self.ready = ready or (http_ready(url) if url else None)
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd or REPO_ROOT)
        self.timeout = timeout
        # Popen closes every other descriptor; these stay open in the child (a listening socket to share).
        self.pass_fds = tuple(pass_fds)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def started(self) -> bool:
        return self.proc is not None

    def start(self) -> ServerProcess:
        """Start the process and wait until it is ready; raise with the log's tail if not."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=self.pass_fds)
        finally:
            log.close()
        if self.ready is not None and not _poll(self.ready, self.timeout, self._exited_within):
            code = self.proc.poll()
            self.stop()
            state = f"exited with {code}" if code is not None else f"not ready after {self.timeout} s"
            raise RuntimeError(f"{self.name} {state}: {' '.join(self.args)}\n--- log tail ---\n{self.log_tail()}")
        return self

    def _exited_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the process to exit; return whether it did."""
        assert self.proc is not None
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def alive(self) -> bool:
        """Return whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (SIGTERM), then kill if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


def start_simulator(tmp_path: Path | str, notify_url: str, server_key: str, retry_scale: float = 0.001,
                    port: int | None = None, extra_args: Sequence[str] = (),
                    env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``python -m simulator`` on a free port; ``.url`` is its base URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port),
            "--notify-url", notify_url, "--retry-scale", str(retry_scale), *extra_args]
    proc_env = {"MIDTRANS_SERVER_KEY": server_key, "PYTHONUNBUFFERED": "1", **(env or {})}
    return ServerProcess(f"simulator-{port}", args, tmp_path, url=url, ready=http_ready(f"{url}/healthz"),
                         env=proc_env, port=port).start()


def start_redis(tmp_path: Path | str, port: int | None = None) -> ServerProcess:
    """Start a throw-away ``redis-server`` on a free port; ``.url`` is ``redis://127.0.0.1:P/0``."""
    port = port or free_port()
    data_dir = Path(tmp_path) / f"redis-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else "redis-server"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(data_dir)]
    return ServerProcess(f"redis-{port}", args, tmp_path, ready=redis_ready("127.0.0.1", port),
                         url=f"redis://127.0.0.1:{port}/0", port=port).start()
