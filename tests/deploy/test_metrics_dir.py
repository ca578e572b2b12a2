"""deploy/with-env empties PROMETHEUS_MULTIPROC_DIR when the first process starts, never while one runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WITH_ENV = Path(__file__).resolve().parents[2] / "deploy" / "with-env"
# Exits at once, leaving a forked child that holds what it inherited (as qcluster's workers do) until stdin ends.
FORKED_HOLDER = "import os, sys\nif os.fork():\n    sys.exit(0)\nprint('holding', flush=True)\nsys.stdin.readline()"


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "paywatch.env"
    path.write_text(f"PROMETHEUS_MULTIPROC_DIR={tmp_path / 'metrics'}\n")
    return path


def run(env_file: Path, *command: str) -> None:
    subprocess.run([str(WITH_ENV), str(env_file), *command], check=True, timeout=30)


def leftover(env_file: Path, name: str) -> Path:
    path = env_file.parent / "metrics" / name
    path.write_bytes(b"")
    return path


def test_the_first_process_creates_the_directory_and_empties_it(env_file: Path) -> None:
    run(env_file, "true")
    stale, other = leftover(env_file, "counter_4242.db"), leftover(env_file, "notes.txt")
    run(env_file, "true")
    assert not stale.exists()
    assert other.exists(), "only the metrics files go"


def test_nothing_is_emptied_while_a_process_or_its_forked_child_runs(env_file: Path) -> None:
    run(env_file, "true")
    holder = subprocess.Popen([str(WITH_ENV), str(env_file), sys.executable, "-c", FORKED_HOLDER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert holder.wait(timeout=30) == 0  # the parent is gone; its child holds the lock
        live = leftover(env_file, "counter_4243.db")
        run(env_file, "true")
        assert live.exists(), "a running process's metrics were deleted"
    finally:
        holder.stdin.close()  # the child reads EOF and exits; its stdout closes with it
        holder.stdout.read()
    run(env_file, "true")
    assert not live.exists()


def test_without_the_variable_nothing_is_touched(tmp_path: Path) -> None:
    env_file = tmp_path / "paywatch.env"
    env_file.write_text("DEBUG=0\n")
    run(env_file, "true")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["paywatch.env"]
