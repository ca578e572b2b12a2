"""The pages pass their Content-Security-Policy in Chromium: no violation on the shop, the waiting page or the admin."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LIVE_MS = 15_000
# Report every violation to the console, where the test collects it across navigations.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + event.blockedURI);
});
"""


@pytest.fixture
def watched(page):
    """The page, with every CSP violation and console error collected in ``page.violations``."""
    page.violations = []  # type: ignore[attr-defined]

    def on_console(message) -> None:
        if message.type == "error" and ("CSP violation" in message.text or "Content Security Policy" in message.text):
            page.violations.append(message.text)  # type: ignore[attr-defined]

    page.on("console", on_console)
    page.add_init_script(REPORT_VIOLATIONS)
    return page


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def test_the_shop_and_its_checkout_redirect_pass_the_policy(shop, watched):
    response = watched.goto(f"{shop.web_url}/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    watched.locator("#id_name").fill("Siti Rahayu")
    watched.locator("#id_email").fill("siti@example.com")
    watched.locator('button[data-sku="kopi-gayo"]').click()
    # form-action also governs the redirect to the payment page (here, the simulator's).
    watched.wait_for_url(f"{shop.sim_url}/**")
    assert watched.violations == [] and watched.errors == []


def test_the_waiting_page_passes_the_policy_live_and_on_refresh(shop, watched):
    checkout = shop.checkout()
    response = watched.goto(checkout.page_url)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(watched.locator("#order-live")).to_have_attribute("data-live", "true", timeout=LIVE_MS)  # the websocket
    shop.sim("settle", checkout.number, notify="drop")
    button = watched.locator("#refresh-button")
    expect(button).to_be_visible(timeout=LIVE_MS)
    button.click()  # the fetch POST
    expect(watched.locator("#payment-status")).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
    assert watched.violations == [] and watched.errors == []


def test_the_admin_login_passes_the_policy(shop, watched):
    response = watched.goto(f"{shop.web_url}/admin/login/")
    assert "content-security-policy" in response.headers
    expect(watched.locator("#id_username")).to_be_visible()
    assert watched.violations == [] and watched.errors == []
