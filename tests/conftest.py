"""Fixtures shared by the whole suite: a real Redis for every test, the full stack on demand."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.conf import settings

from paywatch_dev.servers import start_redis
from paywatch_dev.stack import Stack

# This process runs with DEBUG off on development values; project/checks.py
# forbids that for the servers, which the stack starts with fit values.
settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, "paywatch.E001", "paywatch.E002", "paywatch.E003"]


@pytest.fixture(scope="session", autouse=True)
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a real redis-server on a free port and point the settings at it."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    url = server.url
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = url
    settings.Q_CLUSTER["redis"] = url
    from django_q.conf import Conf

    Conf.REDIS = url  # django-q2 copies its settings at import
    yield url
    server.stop()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None, django_db_blocker, redis_url: str
) -> Iterator[Stack]:
    """Run daphne, the simulator (and workers on demand) as real processes on the test database.

    Tests that use it need ``transactional_db`` so that what they write is
    committed where the other processes can see it.
    """
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_of(connection.settings_dict)
    running = Stack(tmp_path_factory.mktemp("stack"), database_url=database_url, redis_url=redis_url)
    original = dict(settings.MIDTRANS)
    settings.MIDTRANS.update(
        SERVER_KEY=running.env["MIDTRANS_SERVER_KEY"], CORE_API_URL=running.sim_url,
        SNAP_API_URL=f"{running.sim_url}/snap/v1", READ_TIMEOUT=3.0,
    )
    settings.PUBLIC_BASE_URL = running.web_url
    yield running
    settings.MIDTRANS.update(original)
    running.stop()
    leaks = running.token_leaks()
    assert not leaks, "order tokens in the logs:\n" + "\n".join(leaks[:20])


def database_url_of(db: dict) -> str:
    """Return a DATABASE_URL for the test database, for the processes the stack starts."""
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    from urllib.parse import quote

    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def products(db):
    """The demo catalogue."""
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    from checkout.models import Product

    return {p.sku: p for p in Product.objects.all()}


@pytest.fixture
def make_order(db):
    """Create an order with its pending payment (no gateway call)."""
    from checkout.services import orders as order_services

    def make(amount: int = 85_000, quantity: int = 1):
        return order_services.order_create(
            items=[{"sku": "kopi-gayo", "name": "Kopi", "price": amount, "quantity": quantity}],
            customer_email="budi@example.com",
        )

    return make


@pytest.fixture
def amount() -> Decimal:
    return Decimal("85000.00")
