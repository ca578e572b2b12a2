"""With DEBUG off, the web and the worker refuse to start on development values (project/checks.py)."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from paywatch_dev.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
FIT = {
    "MIDTRANS_SERVER_KEY": "SB-Mid-server-a-real-looking-key",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "shop.example.com",
}
UNFIT = [
    pytest.param({"MIDTRANS_SERVER_KEY": None}, "paywatch.E001", id="server-key-unset"),
    pytest.param({"MIDTRANS_SERVER_KEY": "SB-Mid-server-LOCAL-SIMULATOR"}, "paywatch.E001",
                 id="server-key-development"),
    pytest.param({"SECRET_KEY": None}, "paywatch.E002", id="secret-key-unset"),
    pytest.param({"SECRET_KEY": "paywatch-insecure-development-key-change-me"}, "paywatch.E002",
                 id="secret-key-development"),
    pytest.param({"ALLOWED_HOSTS": None}, "paywatch.E003", id="allowed-hosts-unset"),
    pytest.param({"ALLOWED_HOSTS": ""}, "paywatch.E003", id="allowed-hosts-empty"),
    pytest.param({"ALLOWED_HOSTS": "shop.example.com,*"}, "paywatch.E003", id="allowed-hosts-star"),
]


def environment(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A clean environment (DEBUG off, nothing from this process) with the fit values, then the overrides."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "project.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}", "REDIS_URL": "redis://127.0.0.1:9/0", **FIT}
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("overrides", "check_id"), UNFIT)
def test_check_deploy_names_each_development_value(tmp_path, overrides, check_id) -> None:
    result = run(["manage.py", "check", "--deploy"], environment(tmp_path, **overrides))
    assert result.returncode != 0
    assert check_id in result.stderr
    assert "SystemCheckError" in result.stderr


@pytest.mark.parametrize(("overrides", "check_id"), UNFIT)
def test_worker_refuses_to_start(tmp_path, overrides, check_id) -> None:
    """qcluster runs the system checks before it starts the cluster (no Redis is needed to refuse)."""
    result = run(["manage.py", "qcluster"], environment(tmp_path, **overrides))
    assert result.returncode != 0
    assert check_id in result.stderr


@pytest.mark.parametrize(("overrides", "check_id"), UNFIT)
def test_web_refuses_to_start(tmp_path, overrides, check_id) -> None:
    """daphne imports project.asgi, which runs the checks: a SystemCheckError there ends daphne."""
    result = run(["-m", "daphne", "-b", "127.0.0.1", "-p", str(free_port()), "project.asgi:application"],
                 environment(tmp_path, **overrides))
    assert result.returncode != 0
    assert check_id in result.stderr
    assert "SystemCheckError" in result.stderr


def test_check_deploy_passes_with_production_values(tmp_path) -> None:
    result = run(["manage.py", "check", "--deploy"], environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "paywatch." not in result.stdout + result.stderr


def test_development_defaults_are_fine_with_debug_on(tmp_path) -> None:
    env = environment(tmp_path, MIDTRANS_SERVER_KEY=None, SECRET_KEY=None, ALLOWED_HOSTS=None, DEBUG="1")
    result = run(["manage.py", "check"], env)
    assert result.returncode == 0, result.stderr


def test_the_stack_starts_its_servers_with_fit_values(stack) -> None:
    """The test stack and the benchmarks run daphne with DEBUG off: they pass the checks, so daphne is up."""
    assert stack.web is not None and stack.web.alive()
