"""The manual refresh: asks Midtrans now through the one service, rate-limited, CSRF-protected."""

import pytest
from django.test import Client

from checkout.models import PaymentEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def settled_silently(stack):
    """An order the simulator has settled without telling us (the webhook was lost)."""
    checkout = stack.checkout()
    stack.sim("settle", checkout.number, notify="drop")
    yield checkout
    stack.sim_config(error_rate=0.0)


def refresh(client: Client, checkout, **headers):
    return client.post(f"/orders/{checkout.number}/refresh?t={checkout.token}", HTTP_ACCEPT="application/json",
                       **headers)


def test_refresh_applies_what_midtrans_says_with_source_refresh(client, settled_silently) -> None:
    response = refresh(client, settled_silently)
    assert response.status_code == 200
    data = response.json()
    assert (data["payment_status"], data["order_status"], data["version"]) == ("success", "processing", 2)
    event = PaymentEvent.objects.filter(order_number=settled_silently.number).latest("id")
    assert (event.source, event.outcome) == ("refresh", "applied")


def test_second_refresh_within_the_interval_is_429_without_asking_midtrans(client, settled_silently) -> None:
    assert refresh(client, settled_silently).status_code == 200
    asked = PaymentEvent.objects.filter(order_number=settled_silently.number).count()
    again = refresh(client, settled_silently)
    assert again.status_code == 429
    assert 1 <= int(again["Retry-After"]) <= 10
    assert "try again" in again.json()["error"]
    assert PaymentEvent.objects.filter(order_number=settled_silently.number).count() == asked


def test_midtrans_outage_is_a_clear_503(client, stack, settled_silently) -> None:
    stack.sim_config(error_rate=1.0, error_mode="html502")
    response = refresh(client, settled_silently)
    assert response.status_code == 503
    assert "payment gateway" in response.json()["error"]
    assert response.json()["payment_status"] == "pending"


def test_refresh_needs_the_csrf_token(settled_silently) -> None:
    assert refresh(Client(enforce_csrf_checks=True), settled_silently).status_code == 403


def test_refresh_with_a_wrong_token_is_404(client, settled_silently) -> None:
    response = client.post(f"/orders/{settled_silently.number}/refresh?t=nope", HTTP_ACCEPT="application/json")
    assert response.status_code == 404


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_plain_form_refresh_comes_back_to_the_page_with_a_message(client, settled_silently) -> None:
    response = client.post(f"/orders/{settled_silently.number}/refresh?t={settled_silently.token}", follow=True,
                           HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.redirect_chain and response.status_code == 200
    page = response.content.decode()
    assert 'data-payment-status="success"' in page and "Checked with the payment gateway" in page


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0.5,application/json",
                                    "application/json,text/html"])
def test_refresh_answers_json_unless_html_is_preferred(client, settled_silently, accept) -> None:
    """A plain API client (curl's */*, no Accept at all) gets JSON, not a 302."""
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = client.post(f"/orders/{settled_silently.number}/refresh?t={settled_silently.token}", **headers)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response.json()["payment_status"] == "success"


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html", "application/json;q=0.5,text/html"])
def test_refresh_redirects_a_client_that_prefers_html(client, settled_silently, accept) -> None:
    response = client.post(f"/orders/{settled_silently.number}/refresh?t={settled_silently.token}",
                           HTTP_ACCEPT=accept)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/orders/{settled_silently.number}/")
