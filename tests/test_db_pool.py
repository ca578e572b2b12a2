"""PostgreSQL's connection pool: on by default, sized from the environment, never shared with a forked child."""

import os

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's")


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_pool_is_configured(settings):
    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    assert pool["max_size"] >= pool["min_size"] >= 1 and pool["timeout"] > 0
    assert connection.pool is not None


def test_a_forked_worker_gets_its_own_pool_and_the_parent_keeps_its_session(transactional_db):
    """A django-q2 worker is forked: the parent's pooled sockets must not serve it (one session, two processes)."""
    parent_pool, parent_pid = connection.pool, backend_pid()
    connection.close()  # back to the pool, open, as django-q2 leaves it before it forks
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(read)
            own = connection.pool is not parent_pool and backend_pid() != parent_pid
            connection.close()
            code = 0 if own else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    verdict = os.read(read, 1)
    os.close(read)
    os.waitpid(child, 0)
    assert verdict == b"\x00"
    assert connection.pool is parent_pool
    assert backend_pid() > 0  # the parent's pooled session still answers
