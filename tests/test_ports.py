"""make run's ports: a taken port stops scripts/run with a plain message; the simulator URL follows SIMULATOR_PORT."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import ports  # noqa: E402  (scripts/ports.py is a script, not a package)

from paywatch_dev.servers import free_port  # noqa: E402


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/run --check`` (checks only, starts nothing) with ``env`` over a clean one."""
    base = {key: value for key, value in os.environ.items()
            if key not in {"WEB_PORT", "SIMULATOR_PORT", "REDIS_PORT", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"}}
    defaults = {"WEB_PORT": str(free_port()), "SIMULATOR_PORT": str(free_port()), "REDIS_PORT": str(free_port())}
    return subprocess.run([str(ROOT / "scripts" / "run"), "--check"], env={**base, **defaults, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_held_port_is_taken_and_a_free_one_is_not(held_port: int) -> None:
    assert ports.port_taken(held_port) is True
    assert ports.port_taken(free_port()) is False


def test_problems_name_the_variable_the_port_and_a_free_alternative(held_port: int) -> None:
    [message] = ports.problems({"WEB_PORT": held_port, "SIMULATOR_PORT": free_port()})
    assert message.startswith(f"WEB_PORT={held_port} is taken")
    assert "make run WEB_PORT=" in message


def test_two_processes_on_one_port_is_a_problem() -> None:
    port = free_port()
    assert ports.problems({"WEB_PORT": port, "SIMULATOR_PORT": port}) == [
        f"SIMULATOR_PORT and WEB_PORT are both {port}: give each process its own port."]


@pytest.mark.parametrize("name", ["WEB_PORT", "SIMULATOR_PORT", "REDIS_PORT"])
def test_run_stops_on_a_taken_port_before_starting_anything(held_port: int, name: str) -> None:
    done = run_check(**{name: str(held_port)})
    assert done.returncode == 1
    assert f"{name}={held_port} is taken" in done.stderr
    assert "Traceback" not in done.stderr and "Would start" not in done.stdout


def test_a_taken_redis_port_is_refused_but_redis_url_uses_that_redis_on_purpose(redis_url: str) -> None:
    redis_port = redis_url.rsplit(":", 1)[1].split("/")[0]
    refused = run_check(REDIS_PORT=redis_port)
    assert refused.returncode == 1
    assert f"REDIS_URL=redis://127.0.0.1:{redis_port}/0 make run" in refused.stderr
    reused = run_check(REDIS_URL=redis_url)
    assert reused.returncode == 0, reused.stderr
    assert "Would start: web worker simulator," in reused.stdout


def test_a_redis_url_nobody_answers_at_is_a_plain_error() -> None:
    done = run_check(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1
    assert "no Redis answers there" in done.stderr and "Traceback" not in done.stderr


def test_free_ports_start_everything_with_shared_metrics() -> None:
    web_port = free_port()
    done = run_check(WEB_PORT=str(web_port))
    assert done.returncode == 0, done.stderr
    assert "Would start: redis web worker simulator," in done.stdout
    assert f"var/prometheus-{web_port}" in done.stdout


def test_checkout_sends_customers_to_the_simulator_on_simulator_port() -> None:
    code = "import django; django.setup(); from django.conf import settings; m = settings.MIDTRANS; " \
           "print(m['CORE_API_URL'], m['SNAP_API_URL'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "SIMULATOR_PORT": "18901"}
    for key in ("MIDTRANS_SERVER_KEY", "MIDTRANS_CORE_API_URL", "MIDTRANS_SNAP_API_URL"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["http://127.0.0.1:18901", "http://127.0.0.1:18901/snap/v1"]
