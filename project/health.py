"""``/healthz``: database, Redis and worker heartbeat, answered within 3 s whatever hangs.

Every check is bounded by its client's own timeouts (a PostgreSQL
``connect_timeout``, Redis socket and connect timeouts with no retries), so
no thread ever waits on a hung dependency: a probe's threads all end with it.
The database and Redis checks run side by side, so the slowest bound (2 s,
libpq's minimum ``connect_timeout``) is the answer's bound.

Status: 503 when the database or Redis is down, named in ``down``. A missing
worker heartbeat shows as ``worker.ok: false`` with ``worker.age`` (seconds
since the newest cluster heartbeat, null if none was ever seen) and is named
in ``degraded``, but the answer stays 200: the web processes still take
webhooks and serve pages without a worker, and a load balancer that took
every web process out of rotation because the worker stopped would turn late
reconciles into a full outage. Alert on ``degraded`` instead.
"""

import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from redis.backoff import NoBackoff
from redis.retry import Retry

from project.qbroker import heartbeat_key

REDIS_TIMEOUT = 0.5  # connect, then each read: a local Redis answers in well under a millisecond
DATABASE_CONNECT_TIMEOUT = 2  # libpq and psycopg raise anything lower to 2 s
# The guard loop saves the cluster's status every 0.5 s; allow for a busy or restarting worker.
WORKER_MAX_AGE_SECONDS = 15.0
# A safety margin only: the Redis thread ends on its own socket timeouts well before.
REDIS_JOIN_SECONDS = 2.5


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database and Redis answer, 503 naming what is down; report the worker."""
    redis_result: dict[str, Any] = {}
    redis_thread = threading.Thread(target=lambda: redis_result.update(_redis_and_worker()),
                                    name="healthz-redis", daemon=True)
    redis_thread.start()
    database = _database()
    redis_thread.join(REDIS_JOIN_SECONDS)
    redis_check = redis_result.get("redis", {"ok": False, "error": "timeout"})
    worker = redis_result.get("worker", {"ok": False, "error": "redis unavailable", "age": None})
    checks = {"database": database, "redis": redis_check, "worker": worker}
    down = [name for name in ("database", "redis") if not checks[name]["ok"]]
    degraded = [] if worker["ok"] else ["worker"]
    return JsonResponse({"ok": not down, "down": down, "degraded": degraded, **checks},
                        status=503 if down else 200)


def _database() -> dict[str, Any]:
    try:
        if connection.vendor == "postgresql":
            # A connection of its own with a connect timeout: Django's would wait
            # for a stopped server as long as the kernel keeps the socket open.
            # (Not get_new_connection: with a pool configured it would wait on the pool instead.)
            params = {**connection.get_connection_params(), "connect_timeout": DATABASE_CONNECT_TIMEOUT}
            conn = connection.Database.connect(**params)
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
            finally:
                conn.close()
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _redis_and_worker() -> dict[str, dict[str, Any]]:
    """Ping Redis and read the worker heartbeats in one round trip (django-q's own client has no timeouts)."""
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT,
                                  socket_connect_timeout=REDIS_TIMEOUT, retry=Retry(NoBackoff(), 0))
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.ping()
            pipe.zrevrange(heartbeat_key(), 0, 0, withscores=True)
            pipe.zcount(heartbeat_key(), time.time() - WORKER_MAX_AGE_SECONDS, "+inf")
            _, newest, live = pipe.execute()
    except Exception as exc:
        return {"redis": {"ok": False, "error": type(exc).__name__}}
    finally:
        client.close()
    age = round(max(0.0, time.time() - newest[0][1]), 1) if newest else None
    worker = {"ok": bool(live), "clusters": live, "age": age}
    return {"redis": {"ok": True}, "worker": worker}
