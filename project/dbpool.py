"""PostgreSQL connection pools across ``fork()``."""

import sys

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
