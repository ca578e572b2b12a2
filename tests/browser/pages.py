"""Helpers for the customer-page browser tests: contexts per language and viewport, states set in the database, axe."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from checkout.models import Order, Payment

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
LOCALES = {"id": "id-ID", "en": "en-US"}

# Each state of the waiting page as (payment status, order status, payment columns).
STATES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "pending": ("pending", "pending", {}),
    "pending-va": ("pending", "pending", {"payment_type": "bank_transfer", "bank": "bca",
                                         "va_number": "12345678901234"}),
    "pending-mandiri": ("pending", "pending", {"payment_type": "echannel", "bank": "mandiri", "biller_code": "70012",
                                              "bill_key": "990011223344"}),
    "pending-store": ("pending", "pending", {"payment_type": "cstore", "store": "indomaret",
                                            "payment_code": "25261234567890"}),
    "pending-qris": ("pending", "pending", {"payment_type": "qris"}),
    "challenge": ("challenge", "pending", {"payment_type": "credit_card", "bank": "bni"}),
    "paid": ("success", "processing", {"payment_type": "bank_transfer", "bank": "bca", "va_number": "12345678901234"}),
    "expired": ("expired", "expired", {}),
    "cancelled": ("cancelled", "cancelled", {}),
    "refunded": ("refunded", "refunded", {"payment_type": "gopay"}),
    "failed": ("failed", "pending", {"payment_type": "credit_card", "bank": "bni"}),
}


def put_in_state(number: str, state: str) -> None:
    """Give the order the statuses and method of a waiting-page state (version 2: newer than the checkout's)."""
    payment_status, order_status, columns = STATES[state]
    Payment.objects.filter(order__number=number).update(status=payment_status, version=2, **columns)
    Order.objects.filter(number=number).update(status=order_status)


@contextmanager
def customer_page(browser, *, language: str = "en", viewport: str = "phone", **options: Any) -> Iterator:
    """A fresh context whose browser prefers ``language`` (Accept-Language and navigator.language)."""
    context = browser.new_context(locale=LOCALES[language], **VIEWPORTS[viewport], **options)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; return the violations of those impacts, with where they are.

    The page's CSP forbids inline scripts, so the context must be opened with bypass_csp=True.
    """
    assert AXE.exists(), f"{AXE} is missing: run `make setup-test` (npm ci installs axe-core)"
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)}));
    }""")
    return [violation for violation in found if violation["impact"] in impacts]
