"""A real qcluster while its Redis is down: one error line per process and outage, then one when it is back."""

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from paywatch_dev.servers import ServerProcess, start_redis
from paywatch_dev.stack import ROOT, SERVER_KEY
from project import qoutage
from project.qbroker import heartbeat_key
from tests.conftest import database_url_of

OUTAGE_WINDOW = 10.0  # django-q2 alone logged ~2-10 error lines a second here
RECOVERY_WAIT = 60.0  # the backoff tops out at 30 s between attempts
# The Sentinel (status saves, scheduler) and the pusher each report their outage once.
MAX_ERROR_LINES = 4


def log_records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"level": "RAW", "message": line})  # a traceback printed outside the logger
    return records


def wait_for(check: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for a line in the log (there is no other event to wait on), ending early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if proc.poll() is not None:
            return check()
        threading.Event().wait(0.1)
    return check()


def errors(path: Path) -> list[dict]:
    return [r for r in log_records(path) if r.get("level") in {"ERROR", "CRITICAL", "RAW"}]


def test_the_filter_folds_an_outage_into_one_line_and_its_end_into_another(caplog):
    """Unit view of project.qoutage: django-q's connection errors, however logged, become one line."""
    outage = qoutage.Outage()
    filter_ = qoutage.RedisOutageFilter()
    error = redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    def record(msg: object, exc: BaseException | None = None) -> logging.LogRecord:
        exc_info = (type(exc), exc, None) if exc else None
        return logging.LogRecord("django-q", logging.ERROR, __file__, 1, msg, None, exc_info)

    with caplog.at_level(logging.INFO, logger="paywatch.qcluster"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(qoutage, "outage", outage)
            passed = [filter_.filter(r) for r in [record(error), record("Failed to pull task", error),
                                                  record(error), record("an unrelated error")]]
            outage.failed(error)  # the broker's own attempts during the outage log nothing more
            assert outage.seconds_until_retry() > 0
            outage.succeeded()
            outage.succeeded()
    assert passed == [False, False, False, True]
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "paywatch.qcluster"] == [
        "Redis unreachable from MainProcess", "Redis reachable again from MainProcess after 0 s"]


@pytest.mark.e2e
def test_qcluster_logs_a_redis_outage_once_and_its_end_once(transactional_db, tmp_path):
    from django.db import connection

    broker = start_redis(tmp_path)
    env = {"DATABASE_URL": database_url_of(connection.settings_dict), "REDIS_URL": broker.url,
           "MIDTRANS_SERVER_KEY": SERVER_KEY, "SECRET_KEY": "test-secret-" + "k" * 50,
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), "Q_WORKERS": "1"}
    log = tmp_path / "qcluster.log"
    worker = ServerProcess("qcluster", [sys.executable, "manage.py", "qcluster"], tmp_path, env=env, cwd=ROOT,
                           ready=lambda: log.exists() and "running." in log.read_text(errors="replace"))
    worker.start()
    restarted = None
    try:
        # The guard saves its status (and so the heartbeat /healthz reads) before it logs "running.".
        assert redis.Redis.from_url(broker.url).zcard(heartbeat_key()) == 1
        broker.stop()
        assert wait_for(lambda: errors(log), worker.proc, 30.0), worker.log_tail()
        with pytest.raises(subprocess.TimeoutExpired):
            worker.proc.wait(OUTAGE_WINDOW)  # the outage goes on; the cluster must stay up and quiet
        lines = errors(log)
        assert len(lines) <= MAX_ERROR_LINES, "\n".join(r["message"][:200] for r in lines)
        assert all("Redis unreachable" in r["message"] for r in lines), lines

        restarted = start_redis(tmp_path, port=broker.port)
        assert wait_for(lambda: "Redis reachable again" in log.read_text(errors="replace"), worker.proc,
                        RECOVERY_WAIT), worker.log_tail()
        assert len(errors(log)) == len(lines)
        assert "reincarnated" not in log.read_text(errors="replace")  # the pusher waited instead of dying
    finally:
        worker.stop()
        if restarted is not None:
            restarted.stop()
        broker.stop()
