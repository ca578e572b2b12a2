"""Which reconcile chunks are queued and running, across every worker: two Redis sorted sets.

Bookkeeping only: which payment a chunk checks is decided by its claim in
the database (``services.payments_claim``), never here. Every change sets the
``paywatch_reconcile_chunks_now`` gauges, and the tests and the bench read
which worker runs what. A chunk whose worker was killed leaves its entry
behind; the coordinator drops entries older than the chunk could live (and
counts them as lost).
"""

import logging
import os
import socket
import time

from redis.exceptions import RedisError

from reconcile import budget, metrics

logger = logging.getLogger("paywatch.reconcile")

QUEUED_KEY = "paywatch:reconcile:chunks:queued"    # chunk id -> Unix time it was queued
RUNNING_KEY = "paywatch:reconcile:chunks:running"  # chunk id -> Unix time a worker started it
WORKERS_KEY = "paywatch:reconcile:chunks:workers"  # chunk id -> "host:pid" of the worker running it


def queued(chunk_ids: list[str]) -> None:
    """Record chunks about to be enqueued (before they are, so a fast worker's start comes after)."""
    if not chunk_ids:
        return
    now = time.time()
    with budget.client().pipeline(transaction=True) as pipe:
        pipe.zadd(QUEUED_KEY, dict.fromkeys(chunk_ids, now))
        _counts(pipe)
        _publish(pipe.execute()[-2:])
    metrics.chunks.labels(event="queued").inc(len(chunk_ids))


def started(chunk_id: str) -> None:
    """Move a chunk from queued to running (with the worker that runs it)."""
    metrics.chunks.labels(event="started").inc()
    _change(lambda pipe: (pipe.zrem(QUEUED_KEY, chunk_id), pipe.zadd(RUNNING_KEY, {chunk_id: time.time()}),
                          pipe.hset(WORKERS_KEY, chunk_id, f"{socket.gethostname()}:{os.getpid()}")))


def done(chunk_id: str) -> None:
    """Forget a finished chunk."""
    metrics.chunks.labels(event="done").inc()
    _change(lambda pipe: (pipe.zrem(QUEUED_KEY, chunk_id), pipe.zrem(RUNNING_KEY, chunk_id),
                          pipe.hdel(WORKERS_KEY, chunk_id)))


def outstanding(*, queued_stale_after: float, running_stale_after: float) -> tuple[int, int]:
    """Drop entries of chunks that cannot still be alive; return (queued, running) now.

    A queued entry older than ``queued_stale_after`` was lost with the worker
    that had prefetched it; a running one older than ``running_stale_after``
    outlived its lease (its worker died). Their payments are due again.
    """
    now = time.time()
    client = budget.client()
    lost = client.zrangebyscore(QUEUED_KEY, "-inf", now - queued_stale_after) + client.zrangebyscore(
        RUNNING_KEY, "-inf", now - running_stale_after)
    with client.pipeline(transaction=True) as pipe:
        if lost:
            pipe.zrem(QUEUED_KEY, *lost)
            pipe.zrem(RUNNING_KEY, *lost)
            pipe.hdel(WORKERS_KEY, *lost)
        _counts(pipe)
        counts = pipe.execute()[-2:]
    if lost:
        metrics.chunks.labels(event="lost").inc(len(lost))
        logger.warning("Reconcile chunks lost (their worker died); their payments are due again",
                       extra={"chunks": [c.decode() for c in lost][:20], "count": len(lost)})
    _publish(counts)
    return int(counts[0]), int(counts[1])


def running_on() -> dict[str, str]:
    """Return {chunk id: "host:pid"} of the chunks running now."""
    return {k.decode(): v.decode() for k, v in budget.client().hgetall(WORKERS_KEY).items()}


def _change(ops) -> None:  # noqa: ANN001 - a callable adding commands to a pipeline
    # Bookkeeping must never fail a chunk: its claims in the database are what count.
    try:
        with budget.client().pipeline(transaction=True) as pipe:
            ops(pipe)
            _counts(pipe)
            _publish(pipe.execute()[-2:])
    except (RedisError, OSError) as exc:
        logger.warning("Reconcile chunk bookkeeping skipped (Redis: %s)", type(exc).__name__)


def _counts(pipe) -> None:  # noqa: ANN001 - a redis pipeline
    pipe.zcard(QUEUED_KEY)
    pipe.zcard(RUNNING_KEY)


def _publish(counts: list[int]) -> None:
    metrics.chunks_now.labels(state="queued").set(int(counts[0]))
    metrics.chunks_now.labels(state="running").set(int(counts[1]))
