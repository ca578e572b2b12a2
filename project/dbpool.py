"""PostgreSQL connection pools across ``fork()``."""

import sys

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

# Pools inherited from a parent process: kept referenced so that they are never
# garbage-collected (which would close the parent's sessions from the child).
_INHERITED: list[dict] = []


def forget_inherited_pools() -> None:
    """In a forked child (a django-q2 worker), start a pool of its own instead of the parent's.

    The parent's pool came along with its open sockets but not its threads:
    handing them out here would interleave two processes on one PostgreSQL
    session. They are set aside, never closed (closing would send the server
    a Terminate for the parent's sessions), and never freed.
    """
    backend = sys.modules.get("django.db.backends.postgresql.base")
    if backend is not None and backend.DatabaseWrapper._connection_pools:
        _INHERITED.append(dict(backend.DatabaseWrapper._connection_pools))
        backend.DatabaseWrapper._connection_pools.clear()


def keep_web_floor(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Make this process's pool keep WEB_DATABASE_POOL_MIN_SIZE connections open: call it in a web process.

    psycopg's pool grows one connection at a time when requests wait, and
    each is a new PostgreSQL session whose first statements still fill its
    caches. From the idle floor of DATABASE_POOL_MIN_SIZE (2) to a full
    webhook gate (16 in flight) that took 200-300 ms in which every
    notification waited: at the start of a sale after a quiet spell, the p99
    went past 250 ms and the gate answered 503 at 250/s (docs/benchmarks.md,
    "The pool's floor"). Workers and commands keep the small floor: each runs
    one thing at a time, and there are several of them (a floor of 16 in each
    would pass Debian's max_connections of 100).

    A pool reads its sizes once, when it is made: this only acts before
    this process has one. project/asgi.py calls it at import, before any
    request: a process that imports the ASGI application (daphne, or a test
    run driving it in-process) is a web process.
    """
    backend = sys.modules.get("django.db.backends.postgresql.base")
    if backend is not None and alias in backend.DatabaseWrapper._connection_pools:
        return
    pool = settings.DATABASES[alias].get("OPTIONS", {}).get("pool")
    if not isinstance(pool, dict):
        return
    pool["min_size"] = max(pool.get("min_size", 0), settings.WEB_DATABASE_POOL_MIN_SIZE)
    pool["max_size"] = max(pool.get("max_size", pool["min_size"]), pool["min_size"])
