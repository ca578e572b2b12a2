"""``/healthz``: database, Redis and worker heartbeat."""

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database and Redis answer, 503 otherwise; report the worker."""
    checks = {"database": _database(), "redis": _redis(), "worker": _worker()}
    healthy = checks["database"]["ok"] and checks["redis"]["ok"]
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _redis() -> dict:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _worker() -> dict:
    """Report django-q2 clusters that sent a heartbeat to Redis recently."""
    try:
        from django_q.status import Stat

        clusters = Stat.get_all()
        return {"ok": bool(clusters), "clusters": len(clusters)}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
