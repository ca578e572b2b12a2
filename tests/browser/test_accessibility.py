"""axe-core on the customer's pages: no serious or critical finding on the shop, each state of the waiting page,
or the fallback, in Indonesian and English, on a phone and a desktop.

axe-core is npm's (package-lock.json pins it; `make setup-test` runs npm ci). A new finding fails here, with
what and where.
"""

import pytest
from playwright.sync_api import expect

from tests.browser.pages import STATES, axe_violations, customer_page, put_in_state

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LIVE_MS = 15_000


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def assert_no_serious_findings(page) -> None:
    found = axe_violations(page)
    assert found == [], "\n".join(f"{v['impact']} {v['id']}: {v['help']}\n  " + "\n  ".join(v["nodes"])
                                  for v in found)


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("language", ["id", "en"])
def test_the_shop(shop, browser, language, viewport):
    with customer_page(browser, language=language, viewport=viewport, bypass_csp=True) as page:
        page.goto(f"{shop.web_url}/")
        assert_no_serious_findings(page)
        page.locator('button[data-sku="kopi-gayo"]').click()  # empty name and email: the browser says so
        expect(page.locator("#id_name")).to_be_focused()
        assert_no_serious_findings(page)


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("language", ["id", "en"])
def test_each_state_of_the_waiting_page(shop, browser, state, language):
    checkout = shop.checkout()
    put_in_state(checkout.number, state)
    for viewport in ("phone", "desktop"):
        with customer_page(browser, language=language, viewport=viewport, bypass_csp=True) as page:
            page.goto(checkout.page_url)
            expect(page.locator("#order-live")).to_have_attribute("data-live", "true", timeout=LIVE_MS)
            status = page.locator("#payment-status")
            expect(status).to_have_attribute("aria-live", "polite")
            expect(page.locator(f'.state-panel[data-state="{status.get_attribute("data-state")}"]')).to_be_visible()
            assert_no_serious_findings(page)


@pytest.mark.parametrize("language", ["id", "en"])
def test_the_fallback_with_the_refresh_button_and_its_answer(shop, browser, language):
    checkout = shop.checkout()
    with customer_page(browser, language=language, viewport="phone", bypass_csp=True) as page:
        page.goto(checkout.page_url)
        button = page.locator("#refresh-button")
        expect(button).to_be_visible(timeout=LIVE_MS)
        assert_no_serious_findings(page)
        with page.expect_response(lambda r: "/refresh" in r.url):
            button.click()
        expect(page.locator("#status-note")).not_to_be_empty()
        assert_no_serious_findings(page)


def test_the_axe_check_itself_catches_a_serious_finding(shop, browser):
    """Guard against a check that passes by finding nothing: an unlabeled button must be reported."""
    with customer_page(browser, bypass_csp=True) as page:
        page.goto(f"{shop.web_url}/")
        page.evaluate("document.querySelector('main').append(document.createElement('button'))")
        assert "button-name" in {v["id"] for v in axe_violations(page)}
