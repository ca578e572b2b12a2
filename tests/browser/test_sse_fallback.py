"""The waiting page in headless Chromium when its websocket can never connect: it goes live over the event stream."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Websocket attempts back off (at most 1 + 2 + 4 s) before the page gives up on them.
FALLBACK_MS = 20_000
LIVE_MS = 15_000

# A proxy that refuses the upgrade: every socket closes with 1006 without ever opening.
BLOCKED_WEBSOCKETS = """
window.__wsAttempts = 0;
window.WebSocket = function () {
  window.__wsAttempts += 1;
  var fake = { readyState: 0, send: function () {}, close: function () {} };
  setTimeout(function () {
    fake.readyState = 3;
    if (fake.onerror) fake.onerror(new Event("error"));
    if (fake.onclose) fake.onclose({ code: 1006, reason: "", wasClean: false });
  }, 20);
  return fake;
};
"""


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def test_page_whose_websocket_cannot_connect_flips_to_processing_over_the_event_stream(shop, page):
    """Websockets blocked: the page opens /events and shows the settlement live, without a reload or a click."""
    checkout = shop.checkout()
    streams = []
    page.on("request", lambda request: streams.append(request.url) if "/events?" in request.url else None)
    page.add_init_script(BLOCKED_WEBSOCKETS)
    page.goto(checkout.page_url)
    status = page.locator("#payment-status")
    expect(status).to_have_attribute("data-payment-status", "pending")
    expect(page.locator("#order-live")).to_have_attribute("data-live", "true", timeout=FALLBACK_MS)
    page.evaluate("window.__sameDocument = true")
    assert page.evaluate("window.__wsAttempts") >= 1  # websockets were tried first
    assert streams and streams[0].startswith(f"{shop.web_url}/orders/{checkout.number}/events?t=")

    shop.sim("settle", checkout.number)
    expect(status).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    expect(status).to_have_attribute("data-order-status", "processing")
    expect(status).to_have_attribute("data-version", "2")
    expect(page.locator('.state-panel[data-state="paid"]')).to_be_visible()
    expect(page.locator("#refresh-button")).to_be_hidden()
    assert page.evaluate("window.__sameDocument === true")
    assert len(streams) == 1  # one stream carried it: no reload, no reconnect
    assert page.errors == []
