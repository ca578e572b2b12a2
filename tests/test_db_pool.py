"""PostgreSQL's connection pool: on by default, sized from the environment, never shared with a forked child."""

import os
import subprocess
import sys

import pytest
from django.db import connection, transaction

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


POOL_REPORT = """
import sys
if sys.argv[1] == "web":
    import project.asgi  # noqa: F401  (what daphne imports)
else:
    import django
    django.setup()
from django.db import connection, transaction
connection.ensure_connection()
connection.close()  # back to the pool
connection.pool.wait(timeout=20)  # until the pool holds its floor
print(connection.pool.get_stats()["pool_available"])
"""


def pool_size_after_first_use(role: str) -> int:
    from tests.conftest import database_url_of

    env = {**os.environ, "DATABASE_URL": database_url_of(connection.settings_dict),
           "DJANGO_SETTINGS_MODULE": "project.settings", "DEBUG": "1",
           "DATABASE_POOL_MIN_SIZE": "2", "WEB_DATABASE_POOL_MIN_SIZE": "12"}
    done = subprocess.run([sys.executable, "-c", POOL_REPORT, role], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def test_a_web_process_keeps_a_full_gate_of_connections_and_a_worker_its_small_floor(transactional_db):
    """A sale's first second must not wait for new sessions; several workers must not hold 12 each."""
    assert pool_size_after_first_use("web") >= 12
    assert pool_size_after_first_use("worker") <= 3  # its floor of 2; the first request may have grown it by one


def test_a_statement_a_session_runs_again_and_again_is_prepared_once(db):
    """Server-side binding with psycopg's prepare threshold: the hot path's locking read is planned once a session."""
    from checkout.services.orders import order_create
    from checkout.statements import payment_locked

    order = order_create(items=[{"name": "Kopi", "price": "15000", "quantity": 1}])
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg sees it and forgets what this session had prepared
    for _ in range(6):
        with transaction.atomic():
            assert payment_locked(order_number=order.number).order.number == order.number
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["%FOR UPDATE%"])
        prepared = [row[0] for row in cursor.fetchall()]
    assert len(prepared) == 1 and "$1" in prepared[0], prepared
