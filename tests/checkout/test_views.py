"""The customer's pages and JSON, through Django's test client."""

import pytest

from checkout.models import Order

pytestmark = pytest.mark.django_db


def test_shop_lists_the_demo_products(client, products) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert all(p.name.encode() in page.content for p in products.values())


def test_status_json_has_the_spec_fields_and_what_the_page_shows(client, make_order) -> None:
    order = make_order()
    data = client.get(f"/orders/{order.number}/status", {"t": order.access_token}).json()
    assert set(data) == {"order", "order_status", "payment_status", "version", "gross_amount", "currency",
                         "updated_at", "state", "details"}
    assert (data["order"], data["payment_status"], data["version"], data["gross_amount"]) == (
        order.number, "pending", 1, "85000.00")
    assert (data["state"], data["details"]["method"], data["details"]["amount"]) == ("pending", "", "Rp 85.000")


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
    from paywatch_dev.servers import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["redis"]["ok"] is False


def test_metrics_exposes_the_payment_counters(client, make_order) -> None:
    client.post("/payments/midtrans/notification", data="{", content_type="application/json")
    text = client.get("/metrics").content.decode()
    assert 'paywatch_webhooks_total{status="400"}' in text


@pytest.mark.parametrize(("value", "shown"), [(85000, "Rp 85.000"), ("1250000.00", "Rp 1.250.000"), (0, "Rp 0")])
def test_rupiah_filter_is_the_one_formatter(value, shown) -> None:
    from django.template import Context, Template

    from checkout.display import rupiah

    assert Template("{% load money %}{{ v|rupiah }}").render(Context({"v": value})) == shown == rupiah(value)


@pytest.mark.parametrize("path", ["/orders/{n}%00/", "/orders/{n}%00/status", "/orders/%00/", "/orders/{n}%ED%A0%80/"])
def test_a_nul_or_surrogate_in_the_order_number_is_a_404_not_a_database_error(client, make_order, path) -> None:
    """PostgreSQL refuses to compare text with a NUL; the lookup must not reach it."""
    order = make_order()
    response = client.get(path.format(n=order.number), {"t": order.access_token})
    assert response.status_code == 404


# --- language, money and what to pay -----------------------------------------------


def _waiting_page(client, order, language: str | None = None) -> str:
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = client.get(f"/orders/{order.number}/", {"t": order.access_token}, **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_waiting_page_speaks_indonesian_when_the_browser_prefers_it(client, make_order) -> None:
    order = make_order()
    page = _waiting_page(client, order, "id-ID,id;q=0.9,en;q=0.5")
    assert '<html lang="id">' in page
    for words in ("Menunggu pembayaran", "Cek status pembayaran", "Cara membayar", "Bayar sebelum", "Rp 85.000"):
        assert words in page, words
    assert "Waiting for your payment" not in page
    assert 'data-payment-status="pending"' in page and 'id="refresh-button"' in page


@pytest.mark.parametrize("language", [None, "en-US,en;q=0.9", "fr-FR,fr;q=0.9", "nl"])
def test_waiting_page_speaks_english_otherwise(client, make_order, language) -> None:
    page = _waiting_page(client, make_order(), language)
    assert '<html lang="en">' in page
    assert "Waiting for your payment" in page and "Check payment status" in page
    assert "Menunggu pembayaran" not in page


def test_amounts_are_written_one_way(client, make_order) -> None:
    page = _waiting_page(client, make_order())
    assert "Rp 85.000" in page
    assert "IDR" not in page and "85000" not in page.replace('"85000.00"', "")


@pytest.mark.parametrize(("columns", "shown"), [
    ({"payment_type": "bank_transfer", "bank": "bca", "va_number": "12345678901"}, ["BCA", "12345678901"]),
    ({"payment_type": "echannel", "bank": "mandiri", "biller_code": "70012", "bill_key": "990011223344"},
     ["70012", "990011223344", "Multipayment"]),
    ({"payment_type": "cstore", "store": "alfamart", "payment_code": "25261234567890"},
     ["Alfamart", "25261234567890"]),
])
def test_waiting_page_shows_what_to_pay_for_the_chosen_method(client, make_order, columns, shown) -> None:
    from checkout.models import Payment

    order = make_order()
    Payment.objects.filter(pk=order.payment.pk).update(**columns)
    page = _waiting_page(client, order)
    assert f'data-method="{columns["payment_type"]}"' in page
    assert all(text in page for text in shown)


def test_refresh_message_follows_the_language(client, make_order, fake_midtrans) -> None:
    order = make_order()
    fake_midtrans.answer({"status_code": "404", "status_message": "Transaction doesn't exist."}, 404)
    response = client.post(f"/orders/{order.number}/refresh?t={order.access_token}",
                           HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE="id")
    assert response.status_code == 200
    assert response.json()["message"] == "Baru saja dicek ke payment gateway."


def test_shop_asks_who_is_buying_and_says_it_is_a_demo(client, products) -> None:
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="id").content.decode()
    assert "Budi" not in page
    assert 'name="name"' in page and 'name="email"' in page and 'type="email"' in page
    assert "Ini hanya demo." in page and "Rp 85.000" in page


def test_checkout_stores_the_buyer_the_form_names(client, products, fake_midtrans) -> None:
    fake_midtrans.answer({"token": "snap-token", "redirect_url": "http://127.0.0.1:8900/snap/v4/redirection/x"}, 201)
    response = client.post("/checkout/", {"product": "kopi-gayo", "quantity": 2, "name": "Siti Rahayu",
                                          "email": "siti@example.com"})
    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.customer_name, order.customer_email, order.gross_amount) == ("Siti Rahayu", "siti@example.com",
                                                                             170000)


def test_checkout_without_name_or_email_is_refused_with_the_reason(client, products) -> None:
    response = client.post("/checkout/", {"product": "kopi-gayo", "quantity": 1, "name": "", "email": "nope"},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and Order.objects.count() == 0
    assert 'id="form-errors"' in response.content.decode()
