"""/healthz: bounded whatever hangs, 503 naming what is down, the worker's heartbeat with its age."""

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from paywatch_dev.servers import ServerProcess, start_redis
from project.qbroker import heartbeat_key

CLIENT_TIMEOUT = 5.0  # the failure signal: /healthz must answer within 3 s whatever hangs
PROBES = 10


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


@pytest.fixture
def hung_redis(tmp_path) -> Iterator[ServerProcess]:
    """A redis-server of this test's own, stopped with SIGSTOP: it accepts connections and never answers."""
    server = start_redis(tmp_path)
    os.kill(server.proc.pid, signal.SIGSTOP)
    yield server
    os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


@pytest.mark.e2e
def test_healthz_answers_503_naming_a_hung_redis_without_holding_threads(transactional_db, stack, hung_redis):
    """Each probe answers (within the client's timeout) 503 naming redis; daphne's thread count stays put."""
    web = stack.extra_web("hung-redis", REDIS_URL=hung_redis.url)
    try:
        first = requests.get(f"{web.url}/healthz", timeout=CLIENT_TIMEOUT)  # warms daphne's executors up
        assert first.status_code == 503
        assert first.json()["down"] == ["redis"] and first.json()["database"]["ok"] is True
        before = thread_count(web.proc.pid)
        for _ in range(PROBES):
            response = requests.get(f"{web.url}/healthz", timeout=CLIENT_TIMEOUT)
            assert response.status_code == 503 and "redis" in response.json()["down"]
        assert thread_count(web.proc.pid) <= before + 2  # one leaked per probe would be +10
    finally:
        web.stop()


def test_healthz_names_an_unreachable_redis(db, client, settings, tmp_path):
    server = start_redis(tmp_path)
    server.stop()
    settings.REDIS_URL = server.url
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis"] and response.json()["redis"]["ok"] is False


@pytest.fixture
def heartbeats(db, settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(heartbeat_key())
    yield client
    client.delete(heartbeat_key())


def test_no_worker_heartbeat_is_reported_but_keeps_200(client, heartbeats):
    """No worker ever seen: worker.ok is false, age null, named in degraded; the web itself is healthy."""
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["worker"] == {"ok": False, "clusters": 0, "age": None}
    assert data["degraded"] == ["worker"] and data["down"] == []


def test_a_stale_worker_heartbeat_shows_its_age(client, heartbeats):
    heartbeats.zadd(heartbeat_key(), {"cluster-a": time.time() - 120, "cluster-b": time.time() - 300})
    data = client.get("/healthz").json()
    assert data["worker"]["ok"] is False and data["worker"]["clusters"] == 0
    assert 119 <= data["worker"]["age"] < 200  # the newest of the two
    assert data["degraded"] == ["worker"]


def test_a_fresh_worker_heartbeat_is_healthy(client, heartbeats):
    heartbeats.zadd(heartbeat_key(), {"cluster-a": time.time(), "cluster-b": time.time() - 300})
    data = client.get("/healthz").json()
    assert data["worker"]["ok"] is True and data["worker"]["clusters"] == 1 and data["worker"]["age"] < 15
    assert data["degraded"] == [] and data["ok"] is True
