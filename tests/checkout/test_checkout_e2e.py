"""Checkout end to end over real HTTP: daphne, the simulator and redis as real processes."""

import re
import time
from html import unescape

import pytest
import requests

from checkout.models import Order, PaymentEvent
from tests.support.watch import wait_for_ws_status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(stack, products):
    return stack


def attempts(stack, number: str, count: int) -> list[dict]:
    """Long-poll the simulator until it has made ``count`` delivery attempts; return them."""
    data = requests.get(f"{stack.sim_url}/sim/orders/{number}", timeout=40,
                        params={"wait_attempts": count, "timeout": 30}).json()
    return data["notifications"]


def outcomes(number: str) -> list[tuple[str, str]]:
    return list(PaymentEvent.objects.filter(order_number=number, source="webhook")
                .order_by("id").values_list("transaction_status", "outcome"))


def form_action(html: str, name: str) -> str:
    match = re.search(rf'<form method=post action="([^"]+)">(?:(?!</form>).)*name="{name}"', html, re.S)
    assert match, f"no form with a {name!r} button"
    return unescape(match.group(1))


def test_checkout_pay_on_the_simulator_page_and_the_webhook_settles_it(shop) -> None:
    checkout = shop.checkout("batik-tulis", quantity=2)
    page = requests.get(checkout.redirect_url, timeout=10)
    assert page.status_code == 200 and "Rp" in page.text and checkout.number in page.text
    sim = checkout.redirect_url.split("/snap/")[0]

    chosen = requests.post(sim + form_action(page.text, "method-bca_va"), data={"method": "bca_va"}, timeout=10)
    pay = requests.post(sim + form_action(chosen.text, "pay"), timeout=10)
    assert pay.status_code == 200

    message = wait_for_ws_status(checkout.ws_url, "success")
    assert (message["order_status"], message["source"]) in {("processing", "webhook"), ("processing", "snapshot")}
    order = Order.objects.select_related("payment").get(number=checkout.number)
    assert (order.status, order.payment.status, order.payment.amount) == ("processing", "success", 900_000)
    assert (order.payment.payment_type, order.payment.bank) == ("bank_transfer", "bca")
    assert ("settlement", "applied") in outcomes(checkout.number)
    finish = re.search(r'id="finish-link" href="([^"]+)"', pay.text)
    assert finish and unescape(finish.group(1)).startswith(checkout.page_url)
    waiting = requests.get(unescape(finish.group(1)), timeout=10)
    assert waiting.status_code == 200 and 'data-payment-status="success"' in waiting.text


def test_notification_that_fails_twice_is_applied_on_retry(shop) -> None:
    checkout = shop.checkout()
    shop.web.stop()  # a deploy: Midtrans cannot reach us
    try:
        shop.sim("settle", checkout.number)
        failed = attempts(shop, checkout.number, 2)
        assert all(a.get("http_status") is None or a["http_status"] >= 500 for a in failed[:2])
    finally:
        shop.start_web()
    wait_for_ws_status(checkout.ws_url, "success", timeout=40)
    # The simulator records an attempt once it has its answer, which may be after the push: wait for it.
    delivered = attempts(shop, checkout.number, 3)
    deadline = time.monotonic() + 30
    while not any(a.get("http_status") == 200 for a in delivered) and time.monotonic() < deadline:
        delivered = attempts(shop, checkout.number, len(delivered) + 1)
    assert delivered[-1]["http_status"] == 200
    assert outcomes(checkout.number) == [("settlement", "applied")]


def test_duplicate_notification_is_applied_once(shop) -> None:
    checkout = shop.checkout()
    shop.sim("settle", checkout.number, notify="duplicate")
    sent = attempts(shop, checkout.number, 2)
    assert [a["http_status"] for a in sent] == [200, 200]
    assert outcomes(checkout.number) == [("settlement", "applied"), ("settlement", "duplicate")]
    assert Order.objects.get(number=checkout.number).payment.version == 2


def test_reordered_notifications_never_move_backwards(shop) -> None:
    checkout = shop.checkout()
    shop.sim("pending", checkout.number, notify="drop")
    shop.sim("settle", checkout.number, notify="reorder")
    attempts(shop, checkout.number, 2)
    assert outcomes(checkout.number) == [("settlement", "applied"), ("pending", "stale")]
    order = Order.objects.select_related("payment").get(number=checkout.number)
    assert (order.status, order.payment.status) == ("processing", "success")


def test_gateway_failure_at_checkout_shows_an_error_and_leaves_a_clean_pending_order(shop) -> None:
    before = set(Order.objects.values_list("number", flat=True))
    shop.sim_config(error_rate=1.0, error_mode="503")
    try:
        session = requests.Session()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(shop.web_url).text).group(1)
        response = session.post(f"{shop.web_url}/checkout/", allow_redirects=False, timeout=15,
                                data={"csrfmiddlewaretoken": csrf, "product": "kopi-gayo", "quantity": 1,
                                      "name": "Budi", "email": "budi@example.com"})
    finally:
        shop.sim_config(error_rate=0.0)
    assert response.status_code == 502 and "could not start the payment" in response.text
    (order,) = Order.objects.exclude(number__in=before).select_related("payment")
    assert (order.status, order.payment.status, order.payment.snap_token) == ("pending", "pending", "")
    assert order.payment.expires_at is not None  # so the expiry cleanup can end it


@pytest.mark.parametrize("path", ["/", "/status"])
def test_wrong_missing_or_tampered_token_is_404(shop, path) -> None:
    mine, other = shop.checkout(), shop.checkout()
    base = f"{shop.web_url}/orders/{mine.number}{path if path != '/' else '/'}"
    good = requests.get(f"{base}?t={mine.token}", timeout=10)
    assert good.status_code == 200
    for query in (f"?t={other.token}", f"?t={mine.token[:-1]}{'A' if mine.token[-1] != 'A' else 'B'}", "", "?t="):
        response = requests.get(base + query, timeout=10)
        assert response.status_code == 404, query
        assert mine.number not in response.text


def test_concurrent_notifications_never_500_and_apply_once(shop) -> None:
    """Twenty copies of one settlement, in parallel, against daphne and the worker's database."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from tests.checkout.samples import notification

    checkout = shop.checkout()
    body = json.dumps(notification(checkout.number, "settlement", server_key=shop.env["MIDTRANS_SERVER_KEY"]))

    def post(_: int) -> requests.Response:
        return requests.post(shop.notify_url, data=body, headers={"Content-Type": "application/json"}, timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    assert {a.status_code for a in answers} <= {200, 503}
    applied = [a for a in answers if a.status_code == 200 and a.json()["outcome"] == "applied"]
    assert len(applied) == 1
    order = Order.objects.select_related("payment").get(number=checkout.number)
    assert (order.payment.status, order.payment.version) == ("success", 2)
