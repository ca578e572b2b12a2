"""django-q2's Redis broker with timeouts, backoff during an outage, and a heartbeat for /healthz.

Set as ``Q_CLUSTER["broker_class"]``. Compared with django-q2's own broker:

- its connection has socket timeouts, so a hung (SIGSTOPped) Redis cannot
  freeze the Sentinel's guard loop or the pusher for good;
- while Redis is down the guard's status saves are skipped and the pusher
  waits, both on an exponential backoff (``project.qoutage``), instead of
  failing every 0.5 s; the pusher no longer dies and gets reincarnated;
- an outage is logged once per process, and once more when it ends;
- each status save also scores the cluster in a sorted set, so /healthz can
  tell how long ago the newest worker was seen even after django-q's own
  status key (a 3-second expiry) is gone.
"""

import time
from typing import Any

import redis
from django.conf import settings
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from redis.backoff import NoBackoff
from redis.retry import Retry

from project.qoutage import REDIS_DOWN, outage

# Longer than the pusher's blocking pop (1 s); one retry rides over a pooled
# connection that a Redis restart closed, without calling it an outage.
CONNECTION_OPTIONS: dict[str, Any] = {
    "socket_timeout": 5.0, "socket_connect_timeout": 2.0, "retry": Retry(NoBackoff(), 1),
}
# Clusters not seen for a day drop out of the heartbeat set.
HEARTBEAT_RETENTION_SECONDS = 24 * 3600
# The pusher sleeps in slices this long while backing off, so a shutdown is not held up.
IDLE_SLICE_SECONDS = 1.0


def heartbeat_key() -> str:
    """Return the sorted set of cluster ids scored by their last status save (Unix time)."""
    return f"paywatch:qcluster:{settings.Q_CLUSTER.get('name', 'default')}:heartbeats"


class ResilientRedis(RedisBroker):
    """django-q2's Redis broker, backing off quietly while Redis is unreachable."""

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        """Return a Redis client like django-q2's, with timeouts."""
        if isinstance(Conf.REDIS, str):
            return redis.from_url(Conf.REDIS, **CONNECTION_OPTIONS)
        if isinstance(Conf.REDIS, dict):
            return redis.StrictRedis(**{**CONNECTION_OPTIONS, **Conf.REDIS})
        return RedisBroker.get_connection(list_key)

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        """Save the cluster status and its heartbeat; skipped while backing off, never raises for an outage."""
        if outage.seconds_until_retry() > 0:
            return
        now = time.time()
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.set(key, value, timeout)
                pipe.zadd(heartbeat_key(), {key.rsplit(":", 1)[-1]: now})
                pipe.zremrangebyscore(heartbeat_key(), "-inf", now - HEARTBEAT_RETENTION_SECONDS)
                pipe.expire(heartbeat_key(), HEARTBEAT_RETENTION_SECONDS)
                pipe.execute()
        except REDIS_DOWN as exc:
            outage.failed(exc)
            return
        outage.succeeded()

    def dequeue(self) -> list[tuple[None, bytes]] | None:
        """Pop a task (blocking up to 1 s); while backing off, wait a slice and return nothing."""
        wait = outage.seconds_until_retry()
        if wait > 0:
            time.sleep(min(wait, IDLE_SLICE_SECONDS))
            return None
        try:
            tasks = super().dequeue()
        except REDIS_DOWN as exc:
            outage.failed(exc)
            return None
        outage.succeeded()
        return tasks
