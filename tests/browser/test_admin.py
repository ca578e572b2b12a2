"""The operator's admin in Chromium at 1280 px: the payments list and the health page fit, within the policy."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.services import orders as order_services

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PASSWORD = "a-long-operator-password"
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + event.blockedURI);
});
"""
# How far the page, or any box in it that scrolls (the changelist's results do), can be scrolled sideways.
OVERFLOW = """
Math.max(...[document.documentElement, ...document.querySelectorAll("#content *")]
  .filter((el) => el === document.documentElement || ["auto", "scroll"].includes(getComputedStyle(el).overflowX))
  .map((el) => el.scrollWidth - el.clientWidth))
"""


@pytest.fixture
def desk(stack, transactional_db):
    """An operator and payments of every kind, with the longest values the columns can hold."""
    get_user_model().objects.create_superuser("operator", "operator@example.com", PASSWORD)
    now = timezone.now()
    kinds = [
        {"status": "partially_refunded", "transaction_status": "partial_refund", "payment_type": "bank_transfer"},
        {"status": "challenge", "transaction_status": "capture", "payment_type": "credit_card"},
        {"transaction_status": "pending", "payment_type": "echannel", "next_check_at": now - timedelta(hours=30)},
        {"status": "expired", "transaction_status": "expire", "payment_type": "cstore", "next_check_at": None},
        {"transaction_status": "pending", "payment_type": "bank_transfer", "expires_at": now - timedelta(days=2)},
    ]
    for fields in kinds * 4:
        order = order_services.order_create(items=[{"sku": "kopi-gayo", "name": "Kopi", "price": 12_345_678,
                                              "quantity": 1}], customer_email="budi@example.com")
        Payment.objects.filter(order=order).update(last_checked_at=now - timedelta(days=3), buyer_fee=Decimal(4_440),
                                                   **fields)
        payment = Payment.objects.get(order=order)
        PaymentEvent.objects.create(payment=payment, order_number=order.number, source=EventSource.WEBHOOK,
                                    signature_valid=True, outcome=EventOutcome.ERROR, transaction_status="settlement",
                                    raw_body="{}", detail="Traceback ...\n" + "OperationalError: " + "x" * 300)
    return stack


@pytest.fixture
def operator_page(browser, desk) -> Iterator:
    """A desktop-sized page logged in as the operator; CSP violations collected in ``page.violations``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.violations = []  # type: ignore[attr-defined]

    def on_console(message) -> None:
        if "CSP violation" in message.text or "Content Security Policy" in message.text:
            page.violations.append(message.text)  # type: ignore[attr-defined]

    page.on("console", on_console)
    page.add_init_script(REPORT_VIOLATIONS)
    page.goto(f"{desk.web_url}/admin/login/?next=/admin/")
    page.locator("#id_username").fill("operator")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{desk.web_url}/admin/")
    yield page
    context.close()


def test_the_payments_list_fits_1280_px(operator_page, desk) -> None:
    page = operator_page
    page.goto(f"{desk.web_url}/admin/checkout/payment/")
    assert page.locator("#result_list tbody tr").count() == 20
    assert page.locator("#changelist-filter").is_visible()  # with the filters beside it
    assert page.evaluate(OVERFLOW) <= 0
    page.goto(f"{desk.web_url}/admin/checkout/payment/?attention=stuck")
    assert page.locator("#result_list tbody tr").count() == 4
    assert page.evaluate(OVERFLOW) <= 0
    assert page.violations == []  # type: ignore[attr-defined]


def test_the_health_page_fits_and_is_linked_from_the_index(operator_page, desk) -> None:
    page = operator_page
    page.locator("#delivery-health-link").click()
    page.wait_for_url(f"{desk.web_url}/admin/checkout/paymentevent/health/")
    assert page.locator("#failed-count").inner_text() == "20"
    assert page.evaluate(OVERFLOW) <= 0
    page.goto(f"{desk.web_url}/admin/checkout/paymentevent/{PaymentEvent.objects.first().pk}/change/")
    assert page.evaluate(OVERFLOW) <= 0  # a long detail and body wrap
    assert page.violations == []  # type: ignore[attr-defined]
