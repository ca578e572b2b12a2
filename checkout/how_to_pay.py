"""What the waiting page's "How to pay" block says for each method: the facts to pay with, then the steps.

One table, so that every method's block is written the same way; the page
shows the one named by ``details.method`` (see ``display.payment_details``)
and each live message only swaps in the facts' values. The words are
translated when the page is rendered, in the customer's language.
"""

from dataclasses import dataclass, replace
from typing import Any

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Fact:
    field: str  # a key of display.payment_details
    label: str
    copy_label: str = ""  # a code typed in elsewhere gets a Copy button with this accessible name
    value: str = ""

    @property
    def element_id(self) -> str:
        return self.field.replace("_", "-")


@dataclass(frozen=True)
class Method:
    name: str  # a payment type of display.METHODS, "other", or "" before the customer has chosen
    facts: tuple[Fact, ...] = ()
    steps: tuple[str, ...] = ()
    note: str = ""


BANK = Fact("bank", _("Bank"))
STORE = Fact("store", _("Store"))
AMOUNT = Fact("amount", _("Amount"))
VA_NUMBER = Fact("va_number", _("Virtual account number"), _("Copy the virtual account number"))
BILLER_CODE = Fact("biller_code", _("Biller code"), _("Copy the biller code"))
BILL_KEY = Fact("bill_key", _("Bill key"), _("Copy the bill key"))
PAYMENT_CODE = Fact("payment_code", _("Payment code"), _("Copy the payment code"))

METHODS = (
    Method("", note=_("Choose a payment method on the payment page. This page then shows what to pay, and updates "
                      "by itself as soon as the payment arrives.")),
    Method("bank_transfer", (BANK, VA_NUMBER, AMOUNT), steps=(
        _("Open your bank's app, internet banking or an ATM and choose a transfer to a virtual account."),
        _("Enter the virtual account number above."),
        _("Check that the amount matches exactly, then confirm."),
    )),
    Method("echannel", (BANK, BILLER_CODE, BILL_KEY, AMOUNT), steps=(
        _("In Livin' by Mandiri or at a Mandiri ATM, choose Pay, then Multipayment."),
        _("Enter the biller code, then the bill key."),
        _("Check that the amount matches exactly, then confirm."),
    )),
    Method("cstore", (STORE, PAYMENT_CODE, AMOUNT), steps=(
        _("Go to the cashier of the store named above."),
        _("Show the payment code, or read it out."),
        _("Pay the amount in cash and keep the receipt."),
    )),
    Method("qris", (AMOUNT,), steps=(
        _("Open the payment page: it shows the QRIS code."),
        _("Scan it with any QRIS app: GoPay, OVO, DANA, ShopeePay or your bank's app."),
        _("Check the amount and confirm in the app."),
    )),
    Method("gopay", (AMOUNT,), steps=(
        _("On this phone, open the payment page and continue in the GoPay app; on a computer, scan its QR code "
          "with GoPay."),
        _("Check the amount and confirm with your PIN."),
    )),
    Method("credit_card", (AMOUNT,), note=_(
        "Finish the card check (3-D Secure) on the payment page; your bank may send you a code.")),
    Method("other", (AMOUNT,), note=_("Finish the payment as the payment page shows.")),
)


def methods_with_values(details: dict[str, Any]) -> list[Method]:
    """Return every method's block with its facts' values as ``details`` has them now."""
    return [replace(method, facts=tuple(replace(fact, value=details.get(fact.field) or "") for fact in method.facts))
            for method in METHODS]
