"""The payment page at each redirect_url, used as a person would (plain form posts)."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.simulator.conftest import NotifyReceiver, Sim

pytestmark = pytest.mark.timeout(60)


def form_action(html: str, button_name: str) -> str:
    """Return the action of the form whose button has this name."""
    for form in re.findall(r"<form[^>]*>.*?</form>", html, re.S):
        if f'name="{button_name}"' in form:
            return unescape(re.search(r'action="([^"]+)"', form).group(1))
    raise AssertionError(f"no form with button {button_name!r}")


def finish_link(html: str) -> dict[str, list[str]]:
    """Return the query of the finish link."""
    match = re.search(r'id="finish-link" href="([^"]+)"', html)
    assert match, "no finish link"
    url = urlsplit(unescape(match.group(1)))
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://shop.test/orders/finish"
    return parse_qs(url.query)


def test_page_shows_order_amount_and_methods(sim: Sim, order_id: str) -> None:
    """The page shows the order id, the amount and every payment method."""
    html = requests.get(sim.create(order_id, 125000)["redirect_url"], timeout=5).text
    assert order_id in html
    assert "Rp 125.000" in html
    for label in ("BCA Virtual Account", "BNI Virtual Account", "BRI Virtual Account", "Permata Virtual Account",
                  "Mandiri Bill Payment", "QRIS", "GoPay", "Indomaret", "Pay by card: accept"):
        assert label in html, label


def test_enabled_payments_limit_methods(sim: Sim, order_id: str) -> None:
    """enabled_payments restricts the methods shown."""
    html = requests.get(sim.create(order_id, enabled_payments=["gopay"])["redirect_url"], timeout=5).text
    assert "GoPay" in html
    assert "BCA Virtual Account" not in html


def test_unknown_token_is_404(sim: Sim) -> None:
    """An unknown token has no page."""
    assert requests.get(f"{sim.url}/snap/v2/vtweb/nope", timeout=5).status_code == 404


def test_choose_va_then_pay_settles(sim: Sim, notify_receiver: NotifyReceiver, order_id: str) -> None:
    """Choosing BCA VA makes it pending with a VA number; paying settles it; the finish link carries the id."""
    url = sim.create(order_id)["redirect_url"]
    session = requests.Session()
    html = session.get(url, timeout=5).text
    page = session.post(requests.compat.urljoin(url, form_action(html, "method-bca_va")),
                        data={"method": "bca_va"}, timeout=5)
    assert page.status_code == 200
    order = sim.order(order_id)
    assert (order["status"], order["payment_type"], order["bank"]) == ("pending", "bank_transfer", "bca")
    assert order["va_number"] in page.text
    (pending,) = notify_receiver.wait_for(order_id, 1)
    assert pending["transaction_status"] == "pending"
    assert finish_link(page.text)["transaction_status"] == ["pending"]

    page = session.post(requests.compat.urljoin(url, form_action(page.text, "pay")), timeout=5)
    assert "Payment successful" in page.text
    assert sim.order(order_id)["status"] == "settlement"
    query = finish_link(page.text)
    assert query["order_id"] == [order_id]
    assert query["transaction_status"] == ["settlement"]
    assert query["status_code"] == ["200"]
    bodies = notify_receiver.wait_for(order_id, 2)
    assert bodies[-1]["transaction_status"] == "settlement"


@pytest.mark.parametrize("result, status, fraud, text", [
    ("accept", "capture", "accept", "Payment successful"),
    ("challenge", "capture", "challenge", "under review"),
    ("deny", "deny", "accept", "declined"),
])
def test_card_outcomes(sim: Sim, order_id: str, result: str, status: str, fraud: str, text: str) -> None:
    """The card buttons capture+accept, capture+challenge or deny."""
    url = sim.create(order_id)["redirect_url"]
    page = requests.post(f"{url}/card", data={"result": result}, timeout=5)
    assert text in page.text
    order = sim.order(order_id)
    assert (order["status"], order["payment_type"], order["fraud_status"]) == (status, "credit_card", fraud)


def test_after_denied_card_customer_can_pick_another_method(sim: Sim, order_id: str) -> None:
    """A declined card leaves the method picker on the page."""
    url = sim.create(order_id)["redirect_url"]
    page = requests.post(f"{url}/card", data={"result": "deny"}, timeout=5)
    assert "method-gopay" in page.text
    page = requests.post(f"{url}/choose", data={"method": "gopay"}, timeout=5)
    assert sim.order(order_id)["payment_type"] == "gopay"
    assert "Pay now (simulate)" in page.text


def test_dashboard_lists_transactions(sim: Sim, order_id: str) -> None:
    """The dashboard lists orders with their actions."""
    sim.create(order_id)
    html = requests.get(f"{sim.url}/", timeout=5).text
    assert order_id in html
    assert f"/sim/orders/{order_id}/settle" in html
    response = requests.post(f"{sim.url}/sim/orders/{order_id}/settle?redirect=1", timeout=5)
    assert response.url == f"{sim.url}/"
    assert sim.order(order_id)["status"] == "settlement"
