"""Security headers: private answers for token-bearing URLs, a CSP, and frame/nosniff everywhere."""

from unittest import mock

import pytest

pytestmark = pytest.mark.django_db

SHARED = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}


def assert_private(response) -> None:
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] in ("no-referrer", "same-origin")


def assert_shared(response) -> None:
    for name, value in SHARED.items():
        assert response[name] == value, name


@pytest.mark.parametrize("page", ["", "status"], ids=["waiting page", "status json"])
def test_the_waiting_page_and_its_json_are_private_and_framed_by_nobody(client, make_order, page) -> None:
    order = make_order()
    response = client.get(f"/orders/{order.number}/{page}?t={order.access_token}")
    assert response.status_code == 200
    assert_private(response)
    assert_shared(response)


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_the_refresh_answer_and_its_redirect_are_private(client, make_order, accept) -> None:
    order = make_order()
    with mock.patch("checkout.services.payments.payment_ask_midtrans"):
        response = client.post(f"/orders/{order.number}/refresh?t={order.access_token}", HTTP_ACCEPT=accept)
    assert response.status_code == (200 if accept == "application/json" else 302)
    assert_private(response)


def test_a_wrong_token_answer_is_private_too(client, make_order) -> None:
    order = make_order()
    response = client.get(f"/orders/{order.number}/?t=wrong")
    assert response.status_code == 404
    assert_private(response)


def test_pages_have_a_content_security_policy_without_inline_code(client, products) -> None:
    policy = client.get("/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in directives[directive]
    assert directives["frame-ancestors"] == "'none'"
    # The shop's form redirects to Snap's payment page, which form-action must allow.
    from django.conf import settings

    snap = settings.MIDTRANS["SNAP_API_URL"].split("/snap")[0]
    assert snap in directives["form-action"]


@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics", "/admin/login/", "/static/checkout/site.css"])
def test_frame_and_nosniff_headers_everywhere(client, products, path) -> None:
    response = client.get(path)
    assert response.status_code in (200, 503), path
    assert_shared(response)


def test_the_shop_is_not_private(client, products) -> None:
    """Only token-bearing answers are kept out of caches; the shop may be cached as Django decides."""
    assert "no-store" not in client.get("/").get("Cache-Control", "")
