"""A change whose broadcast was lost still reaches an open page: by its heartbeat, or when it comes back into view."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_waiting_page import LIVE_MS, open_waiting_page, same_document
from tests.realtime.conftest import apply_status
from tests.realtime.test_heartbeat import broadcasts_lost


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def _heartbeat_script(seconds: str) -> str:
    """Set this page's heartbeat: deferred scripts run after readyState turns "interactive"."""
    return f"""document.addEventListener("readystatechange", () => {{
        const root = document.getElementById("order-live");
        if (document.readyState === "interactive" && root) root.dataset.heartbeatSeconds = "{seconds}";
    }});"""


def _watch_traffic(page) -> tuple[list[str], list[str]]:
    """Record the page's HTTP requests to the order and the websocket frames it receives."""
    requests: list[str] = []
    frames: list[str] = []
    page.on("request", lambda request: requests.append(request.url) if "/orders/" in request.url else None)
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    return requests, frames


def test_a_lost_broadcast_reaches_the_page_by_its_next_heartbeat_without_a_click(shop, page):
    checkout = shop.checkout()
    page.add_init_script(_heartbeat_script("1.5"))
    requests, frames = _watch_traffic(page)
    open_waiting_page(page, checkout)
    requests.clear()
    with broadcasts_lost():
        apply_status(checkout.number, "settlement")
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    assert same_document(page)
    assert not [url for url in requests if "/refresh" in url or "/status" in url]  # no click, no HTTP resync
    assert any('"source": "resync"' in frame for frame in frames)


def test_coming_back_into_view_resyncs_at_once_even_with_the_socket_still_open(shop, page):
    """iOS Safari may kill a background page's socket silently; on return the page checks at once."""
    checkout = shop.checkout()
    page.add_init_script(_heartbeat_script("3600"))  # no ping will come in this test's time
    open_waiting_page(page, checkout)
    with broadcasts_lost():
        apply_status(checkout.number, "settlement")
    page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "success", timeout=10_000)
    assert same_document(page)
