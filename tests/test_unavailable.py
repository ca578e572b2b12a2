"""The database or Redis failing under a view is a clear 503 with Retry-After, never a 500 (project/middleware.py).

JSON for JSON clients (the default), a small page for a browser that prefers HTML.
"""

import re
import sqlite3
from collections.abc import Iterator
from unittest import mock

import pytest
import requests
from django.db import OperationalError, connection
from redis.exceptions import ConnectionError as RedisConnectionError

from paywatch_dev.servers import free_port

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what a browser sends


def assert_json_503(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert "try again" in body["error"].lower() and body["retry_after"] == int(response["Retry-After"])


def assert_html_503(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    assert "Briefly unavailable" in response.content.decode()


@pytest.fixture
def database_down() -> Iterator[None]:
    """Every new query fails the way it does while PostgreSQL is down or SQLite stays locked."""
    with mock.patch.object(connection, "ensure_connection",
                           side_effect=OperationalError("connection to server failed: Connection refused")):
        yield


@pytest.mark.django_db
def test_status_is_a_json_503_while_the_database_is_down(client, make_order, database_down) -> None:
    response = client.get("/orders/INV1/status?t=whatever")
    assert_json_503(response)
    assert response.json()["unavailable"] == "database"


@pytest.mark.django_db
def test_the_waiting_page_is_an_html_503_while_the_database_is_down(client, database_down) -> None:
    response = client.get("/orders/INV1/?t=whatever", HTTP_ACCEPT=HTML)
    assert_html_503(response)
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_shop_is_an_html_503_while_the_database_is_down(client, database_down) -> None:
    assert_html_503(client.get("/", HTTP_ACCEPT=HTML))


@pytest.mark.django_db
def test_checkout_is_an_html_503_when_the_database_is_locked(client, products) -> None:
    with mock.patch("checkout.services.orders.order_create", side_effect=OperationalError("database is locked")):
        response = client.post("/checkout/", {"product": "kopi-gayo", "quantity": 1, "name": "Budi",
                                              "email": "budi@example.com"}, HTTP_ACCEPT=HTML)
    assert_html_503(response)


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError("database is locked"), RedisConnectionError("refused")])
def test_refresh_is_a_json_503_when_a_backing_service_fails(client, make_order, error) -> None:
    order = make_order()
    with mock.patch("checkout.services.payments.payment_ask_midtrans", side_effect=error):
        response = client.post(f"/orders/{order.number}/refresh?t={order.access_token}",
                               HTTP_ACCEPT="application/json")
    assert_json_503(response)


@pytest.mark.django_db
def test_other_exceptions_are_left_to_django(client, make_order) -> None:
    """Only unavailability is a 503; a bug stays a bug (and its 500 page), not hidden as an outage."""
    order = make_order()
    client.raise_request_exception = False
    with mock.patch("checkout.services.payments.payment_ask_midtrans", side_effect=KeyError("bug")):
        response = client.post(f"/orders/{order.number}/refresh?t={order.access_token}",
                               HTTP_ACCEPT="application/json")
    assert response.status_code == 500


# --- real daphnes: PostgreSQL down, Redis down, SQLite locked past its busy timeout ---------------------------


@pytest.mark.e2e
def test_pages_and_status_are_503_while_postgresql_is_down(stack) -> None:
    """Nothing listens on the database's port: the connection is refused on every request."""
    web = stack.extra_web("nopg", DATABASE_URL=f"postgres://paywatch@127.0.0.1:{free_port()}/paywatch")
    try:
        status = requests.get(f"{web.url}/orders/INV1/status?t=whatever", timeout=15)
        assert status.status_code == 503 and int(status.headers["Retry-After"]) > 0
        assert status.json()["unavailable"] == "database"
        page = requests.get(f"{web.url}/orders/INV1/?t=whatever", headers={"Accept": HTML}, timeout=15)
        assert page.status_code == 503 and "Briefly unavailable" in page.text
        assert requests.get(f"{web.url}/", headers={"Accept": HTML}, timeout=15).status_code == 503
    finally:
        web.stop()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_no_page_is_a_500_while_redis_is_down(stack) -> None:
    """Pages do not need Redis (a broadcast that cannot be sent is counted and logged, never raised)."""
    checkout = stack.checkout()
    web = stack.extra_web("noredis", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        base = web.url
        assert requests.get(f"{base}/", timeout=15).status_code == 200
        assert requests.get(f"{base}/orders/{checkout.number}/?t={checkout.token}", timeout=15).status_code == 200
        assert requests.get(f"{base}/orders/{checkout.number}/status?t={checkout.token}", timeout=15).status_code == 200
    finally:
        web.stop()


@pytest.fixture
def impatient_web(stack) -> Iterator[str]:
    """A second daphne on the stack's database with a one-second SQLite busy timeout."""
    if connection.vendor != "sqlite":
        pytest.skip("an exclusive lock held by another connection is SQLite's busy case")
    with stack.extra_web("busy", SQLITE_BUSY_TIMEOUT="1") as web:
        yield web.url


@pytest.fixture
def locked_database() -> Iterator[None]:
    """Hold SQLite's write lock from another connection until the test ends."""
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=5, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_refresh_and_checkout_are_503_while_sqlite_stays_locked(stack, impatient_web, request) -> None:
    checkout = stack.checkout()
    session = requests.Session()
    shop = session.get(f"{impatient_web}/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shop.text).group(1)
    request.getfixturevalue("locked_database")

    refresh = session.post(f"{impatient_web}/orders/{checkout.number}/refresh?t={checkout.token}", timeout=15,
                           headers={"Accept": "application/json", "X-CSRFToken": session.cookies["csrftoken"]})
    assert refresh.status_code == 503, refresh.text[:300]
    assert int(refresh.headers["Retry-After"]) > 0
    assert refresh.json()["unavailable"] == "database"

    bought = session.post(f"{impatient_web}/checkout/", timeout=15, allow_redirects=False, headers={"Accept": HTML},
                          data={"csrfmiddlewaretoken": csrf, "product": "kopi-gayo", "quantity": 1,
                                "name": "Budi", "email": "budi@example.com"})
    assert bought.status_code == 503, bought.text[:300]
    assert bought.headers["Content-Type"].startswith("text/html") and "Briefly unavailable" in bought.text
