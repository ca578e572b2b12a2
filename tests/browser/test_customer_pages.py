"""The shop and the waiting page as a customer sees them, in Chromium: language, what to pay arriving live, time.

Against the stack's daphne, simulator and Redis (PAYMENT_FALLBACK_SECONDS=3); on a phone and a desktop viewport.
"""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from checkout.models import Payment
from tests.browser.pages import customer_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LIVE_MS = 15_000
WORDS = {
    "id": {"pending": "Menunggu pembayaran", "paid": "Pembayaran berhasil", "button": "Cek status pembayaran",
           "copy": "Salin", "expired": "Batas waktu pembayaran sudah lewat", "demo": "Ini hanya demo."},
    "en": {"pending": "Waiting for your payment", "paid": "Paid", "button": "Check payment status",
           "copy": "Copy", "expired": "The time to pay has passed", "demo": "This is a demo."},
}


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def open_live(page, checkout) -> None:
    page.goto(checkout.page_url)
    expect(page.locator("#order-live")).to_have_attribute("data-live", "true", timeout=LIVE_MS)
    page.evaluate("window.__sameDocument = true")


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("language", ["id", "en"])
def test_the_shop_speaks_the_browsers_language_and_asks_who_is_buying(shop, browser, language, viewport):
    with customer_page(browser, language=language, viewport=viewport) as page:
        page.goto(f"{shop.web_url}/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.locator("#demo-notice")).to_contain_text(WORDS[language]["demo"])
        expect(page.locator(".product .price").first).to_have_text(re.compile(r"^Rp \d{1,3}(\.\d{3})+$"))
        page.locator("#id_name").fill("Siti Rahayu")
        page.locator("#id_email").fill("siti@example.com")
        page.locator('button[data-sku="kopi-gayo"]').click()
        page.wait_for_url(f"{shop.sim_url}/**")
        order = Payment.objects.select_related("order").get(redirect_url=page.url).order
        assert (order.customer_name, order.customer_email) == ("Siti Rahayu", "siti@example.com")
        assert page.errors == []


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("language", ["id", "en"])
def test_the_waiting_page_speaks_the_browsers_language_live(shop, browser, language, viewport):
    """Every word, the ones the script swaps in included, comes from the server in the page's language."""
    words = WORDS[language]
    checkout = shop.checkout()
    with customer_page(browser, language=language, viewport=viewport) as page:
        open_live(page, checkout)
        status = page.locator("#payment-status")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(status).to_contain_text(words["pending"])
        expect(page.locator("#total")).to_have_text("Rp 85.000")
        expect(page.locator("#refresh-button")).to_have_text(words["button"])
        shop.sim("settle", checkout.number)
        expect(status).to_have_attribute("data-payment-status", "success", timeout=LIVE_MS)
        expect(status).to_have_attribute("data-state", "paid")
        expect(status).to_contain_text(words["paid"])
        assert page.evaluate("window.__sameDocument === true")
        assert page.errors == []


@pytest.mark.parametrize(("language", "viewport"), [("id", "phone"), ("en", "desktop")])
def test_a_va_chosen_after_the_page_opened_appears_live_with_its_bank_amount_and_copy_button(
    shop, browser, language, viewport
):
    checkout = shop.checkout()
    with customer_page(browser, language=language, viewport=viewport) as page:
        open_live(page, checkout)
        va = page.locator("#va-number")
        expect(va).to_be_hidden()
        chosen = shop.sim("pending", checkout.number, payment_type="bank_transfer", bank="bni")
        number = Payment.objects.get(order__number=checkout.number)
        expect(page.locator("#pay-details")).to_have_attribute("data-method", "bank_transfer", timeout=LIVE_MS)
        number.refresh_from_db()
        assert number.va_number and number.va_number in str(chosen)
        expect(va).to_be_visible()
        expect(va).to_have_text(number.va_number)
        block = page.locator('.pay[data-for="bank_transfer"]')
        expect(block.locator('[data-field="bank"]')).to_have_text("BNI")
        expect(block.locator('[data-field="amount"]')).to_have_text("Rp 85.000")
        expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "pending")
        copy = block.locator("button.copy")
        expect(copy).to_have_text(WORDS[language]["copy"])
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        copy.click()
        expect(copy).to_have_attribute("data-copied", "true")
        assert page.evaluate("navigator.clipboard.readText()") == number.va_number
        assert page.evaluate("window.__sameDocument === true")  # no reload brought it
        assert page.errors == []


@pytest.mark.parametrize(("language", "viewport"), [("id", "phone"), ("en", "desktop")])
def test_the_countdown_runs_to_expiry_and_the_page_says_so_before_the_server_does(shop, browser, language, viewport):
    """The browser's clock is Playwright's: 90 minutes before the expiry, then moved past it."""
    checkout = shop.checkout()
    expires = (timezone.now() + dt.timedelta(hours=3)).replace(microsecond=0)
    Payment.objects.filter(order__number=checkout.number).update(expires_at=expires)
    with customer_page(browser, language=language, viewport=viewport) as page:
        page.clock.install(time=expires - dt.timedelta(minutes=100))
        page.clock.pause_at(expires - dt.timedelta(minutes=90))
        open_live(page, checkout)
        countdown = page.locator("#countdown")
        expect(countdown).to_have_text("1:30:00")
        expect(countdown).to_have_attribute("role", "timer")
        wib = timezone.localtime(expires, dt.timezone(dt.timedelta(hours=7)))
        expect(page.locator("#expiry time")).to_contain_text(f"{wib:%H:%M} WIB")
        page.clock.run_for("01:00")
        expect(countdown).to_have_text("1:29:00")
        page.clock.fast_forward("01:30:00")
        expect(page.locator("#expired-note")).to_contain_text(WORDS[language]["expired"])
        expect(page.locator("#countdown-wrap")).to_be_hidden()
        expect(page.locator("#order-live")).to_have_attribute("data-expired", "true")
        expect(page.locator("#status-note")).to_contain_text(WORDS[language]["expired"])  # inside the aria-live box
        expect(page.locator("#pay-details")).to_be_hidden()
        # The server has not expired it yet: the machine-readable state stays what the server said.
        expect(page.locator("#payment-status")).to_have_attribute("data-payment-status", "pending")
        assert page.errors == []
