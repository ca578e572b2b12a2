"""The customer's pages and JSON, through Django's test client."""

import pytest

from checkout.models import Order

pytestmark = pytest.mark.django_db


def test_shop_lists_the_demo_products(client, products) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert all(p.name.encode() in page.content for p in products.values())


def test_status_json_has_the_spec_fields(client, make_order) -> None:
    order = make_order()
    data = client.get(f"/orders/{order.number}/status", {"t": order.access_token}).json()
    assert set(data) == {"order", "order_status", "payment_status", "version", "gross_amount", "currency",
                         "updated_at"}
    assert (data["order"], data["payment_status"], data["version"], data["gross_amount"]) == (
        order.number, "pending", 1, "85000.00")


def test_waiting_page_marks_its_state_for_machines(client, make_order) -> None:
    order = make_order()
    page = client.get(f"/orders/{order.number}/", {"t": order.access_token}).content.decode()
    assert 'id="payment-status"' in page and 'data-payment-status="pending"' in page
    assert 'data-order-status="pending"' in page and 'id="refresh-button"' in page


def test_checkout_rejects_an_unknown_product_and_creates_nothing(client, products) -> None:
    response = client.post("/checkout/", {"product": "nope", "quantity": 1, "name": "B", "email": "b@example.com"})
    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_order_numbers_look_like_the_seed_and_are_unique(make_order) -> None:
    import re

    numbers = {make_order().number for _ in range(50)}
    assert len(numbers) == 50
    assert all(re.fullmatch(r"INV\d{12}-[0-9A-F]{4}", n) for n in numbers)


def test_access_tokens_are_long_and_distinct(make_order) -> None:
    tokens = {make_order().access_token for _ in range(20)}
    assert len(tokens) == 20 and min(map(len, tokens)) >= 32


def test_healthz_reports_database_and_redis(client) -> None:
    data = client.get("/healthz").json()
    assert data["database"]["ok"] and data["redis"]["ok"] and "worker" in data


def test_healthz_is_503_when_redis_is_down(client, settings) -> None:
    from tests.support.servers import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["redis"]["ok"] is False


def test_metrics_exposes_the_payment_counters(client, make_order) -> None:
    client.post("/payments/midtrans/notification", data="{", content_type="application/json")
    text = client.get("/metrics").content.decode()
    assert 'paywatch_webhooks_total{status="400"}' in text


@pytest.mark.parametrize(("value", "shown"), [(85000, "Rp 85.000"), ("1250000.00", "Rp 1.250.000"), (0, "Rp 0")])
def test_rupiah_formatting(value, shown) -> None:
    from checkout.templatetags.money import rupiah

    assert rupiah(value) == shown


@pytest.mark.parametrize("path", ["/orders/{n}%00/", "/orders/{n}%00/status", "/orders/%00/", "/orders/{n}%ED%A0%80/"])
def test_a_nul_or_surrogate_in_the_order_number_is_a_404_not_a_database_error(client, make_order, path) -> None:
    """PostgreSQL refuses to compare text with a NUL; the lookup must not reach it."""
    order = make_order()
    response = client.get(path.format(n=order.number), {"t": order.access_token})
    assert response.status_code == 404
