"""The waiting page in headless Chromium against real daphne, the simulator and Redis.

The stack runs with PAYMENT_FALLBACK_SECONDS=3 and REFRESH_MIN_INTERVAL_SECONDS=2.
"""

import pytest
import requests
from playwright.sync_api import expect

from checkout.models import Payment
from checkout.services import payments as payment_services
from tests.browser.conftest import for_children

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LIVE_MS = 15_000
RECONNECT_MS = 40_000  # backoff is capped at 15 s; a reconnect can take up to that after daphne is back


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def open_waiting_page(page, checkout):
    """Open the page, wait until its socket is live, and plant a marker that a reload would wipe."""
    page.goto(checkout.page_url)
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "pending")
    expect(page.locator("#order-live")).to_have_attribute("data-live", "true", timeout=LIVE_MS)
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def wait_for_delivery(stack, number: str) -> None:
    """Long-poll the simulator until its notification for ``number`` was answered."""
    data = requests.get(f"{stack.sim_url}/sim/orders/{number}", params={"wait_attempts": 1, "timeout": 30},
                        timeout=40).json()
    assert data["notifications"] and data["notifications"][-1]["http_status"] == 200, data["notifications"]


def test_pending_page_flips_to_processing_when_the_payment_settles(shop, page):
    """(a) The simulator settles; the webhook's broadcast moves the open page, with no navigation."""
    checkout = shop.checkout()
    open_waiting_page(page, checkout)
    status = page.locator("#payment-status")
    shop.sim("settle", checkout.number)
    expect(status).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    expect(status).to_have_attribute("data-order-status", "processing")
    expect(status).to_have_attribute("data-version", "2")
    expect(status).to_contain_text("Paid")
    expect(page.locator('.state-panel[data-state="paid"]')).to_be_visible()
    expect(page.locator('.state-panel[data-state="pending"]')).to_be_hidden()
    expect(page.locator("#refresh-button")).to_be_hidden()
    assert same_document(page)
    assert page.errors == []


def test_dropped_notification_shows_the_button_after_the_fallback_and_one_click_fixes_it(shop, page):
    """(b) No webhook arrives: the button appears only after the fallback time; a click refreshes."""
    checkout = shop.checkout()
    open_waiting_page(page, checkout)
    button = page.locator("#refresh-button")
    expect(button).to_be_hidden()
    shop.sim("settle", checkout.number, notify="drop")
    expect(button).to_be_visible(timeout=LIVE_MS)
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "pending")
    button.click()
    status = page.locator("#payment-status")
    expect(status).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    expect(status).to_have_attribute("data-order-status", "processing")
    expect(page.locator("#status-note")).to_contain_text("Checked")
    expect(button).to_be_hidden()
    assert same_document(page)
    assert page.errors == []


def test_page_catches_up_after_its_websocket_was_cut_while_the_payment_settled(shop, page):
    """(c) daphne goes away, the payment settles meanwhile (its broadcast reaches nobody), daphne comes back:
    the page reconnects and the snapshot brings it to processing."""
    checkout = shop.checkout()
    open_waiting_page(page, checkout)
    live = page.locator("#order-live")
    shop.web.stop()
    try:
        expect(live).to_have_attribute("data-live", "false", timeout=LIVE_MS)
        shop.sim("settle", checkout.number, notify="drop")
        payment = Payment.objects.select_related("order").get(order__number=checkout.number)
        assert payment_services.payment_ask_midtrans(payment=payment, source="reconcile").status_after == "success"
    finally:
        with for_children():
            shop.start_web()
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "success",
                                                              timeout=RECONNECT_MS)
    expect(live).to_have_attribute("data-live", "true", timeout=RECONNECT_MS)
    assert same_document(page)


def test_hidden_tab_drops_its_socket_and_resyncs_when_shown(shop, page):
    """While hidden the page holds no socket; a change made then shows up as soon as it is visible again."""
    checkout = shop.checkout()
    open_waiting_page(page, checkout)
    set_visibility = """state => {
        Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
        Object.defineProperty(document, "hidden", {value: state === "hidden", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    page.evaluate(set_visibility, "hidden")
    expect(page.locator("#order-live")).to_have_attribute("data-live", "false")
    shop.sim("settle", checkout.number)
    wait_for_delivery(shop, checkout.number)
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "pending")
    page.evaluate(set_visibility, "visible")
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    expect(page.locator("#order-live")).to_have_attribute("data-live", "true", timeout=LIVE_MS)
    assert same_document(page)


def test_refresh_shows_the_rate_limit_and_gateway_outage_messages(shop, page):
    """A second click within the interval shows the 429 message; a Midtrans outage shows the 503 one."""
    checkout = shop.checkout()
    open_waiting_page(page, checkout)
    button, note = page.locator("#refresh-button"), page.locator("#status-note")
    expect(button).to_be_visible(timeout=LIVE_MS)
    with page.expect_response(lambda r: "/refresh" in r.url) as first:
        button.click()
    assert first.value.status == 200
    expect(button).to_be_enabled()
    with page.expect_response(lambda r: "/refresh" in r.url) as second:
        button.click()
    assert second.value.status == 429
    expect(note).to_contain_text("try again in")
    expect(button).to_be_enabled(timeout=LIVE_MS)  # disabled for Retry-After, then offered again
    shop.sim_config(error_rate=1.0, error_mode="503")
    try:
        with page.expect_response(lambda r: "/refresh" in r.url, timeout=LIVE_MS) as third:
            button.click()
    finally:
        shop.sim_config(error_rate=0.0)
    assert third.value.status == 503
    expect(note).to_contain_text("Could not reach the payment gateway")
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "pending")


def test_without_javascript_the_button_is_a_plain_form_that_comes_back(shop, browser):
    """No script: the button is visible from the start; posting it returns to the page with the result."""
    checkout = shop.checkout()
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(checkout.page_url)
        shop.sim("settle", checkout.number, notify="drop")
        expect(page.locator("#refresh-button")).to_be_visible()
        page.locator("#refresh-button").click()
        page.wait_for_url("**refreshed=*")
        expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "success")
        expect(page.locator("#status-note")).to_contain_text("Checked")
        expect(page.locator('.state-panel[data-state="paid"]')).to_be_visible()
    finally:
        context.close()


def test_page_notices_a_frozen_server_by_its_heartbeat_and_reconnects(shop, page):
    """A server that stops answering (SIGSTOP: the TCP connection stays open, no close ever comes)
    is noticed only by the page's own ping going unanswered; once it runs again the page is live."""
    import os
    import signal

    checkout = shop.checkout()

    # A fast heartbeat for this page only: deferred scripts run after readyState turns "interactive".
    page.add_init_script("""document.addEventListener("readystatechange", () => {
        const root = document.getElementById("order-live");
        if (document.readyState === "interactive" && root) root.dataset.heartbeatSeconds = "1.5";
    });""")
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(str(payload))))
    open_waiting_page(page, checkout)
    live = page.locator("#order-live")
    os.kill(shop.web.proc.pid, signal.SIGSTOP)
    try:
        expect(live).to_have_attribute("data-live", "false", timeout=LIVE_MS)
    finally:
        os.kill(shop.web.proc.pid, signal.SIGCONT)
    assert any('"ping"' in frame for frame in frames)
    expect(live).to_have_attribute("data-live", "true", timeout=RECONNECT_MS)
    shop.sim("settle", checkout.number)
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    assert same_document(page)
