"""What the customer's pages show, as language-neutral data: amounts, the view state, the method's details.

The server decides all of it, once: the waiting page renders it at first and
then swaps in what each live message carries (``state``, ``details``), with
the words already in the page in the customer's language. Nothing here is
translated, because one broadcast reaches every watcher of an order,
whatever language each of them reads.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from checkout.models import Payment

# Which panel of the waiting page a payment shows; the order decides once it has ended.
VIEW_STATES = ("pending", "challenge", "failed", "paid", "expired", "cancelled", "refunded")

# Midtrans payment types the page has instructions for; any other one gets the generic block.
METHODS = ("bank_transfer", "echannel", "cstore", "qris", "gopay", "credit_card")

# Bank codes as Midtrans sends them -> the name a customer knows.
BANK_NAMES = {"bca": "BCA", "bni": "BNI", "bri": "BRI", "permata": "Permata", "mandiri": "Mandiri",
              "cimb": "CIMB Niaga"}
STORE_NAMES = {"indomaret": "Indomaret", "alfamart": "Alfamart"}


def rupiah(value: Any) -> str:
    """Format an amount the Indonesian way, ``Rp 85.000`` (whole rupiah; anything unreadable as it is)."""
    try:
        amount = int(Decimal(str(value)))
    except (ArithmeticError, InvalidOperation, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp {abs(amount):,}".replace(",", ".")


def view_state(payment_status: str, order_status: str) -> str:
    """Return the waiting page's view state (one of VIEW_STATES) for a payment and its order."""
    if order_status == "processing":
        return "paid"
    if order_status in ("expired", "cancelled", "refunded"):
        return order_status
    if payment_status in ("challenge", "failed"):
        return payment_status
    return "pending"


def payment_details(payment: Payment) -> dict[str, Any]:
    """Return what the customer needs to pay: the method, its codes, the amount and the deadline.

    ``method`` is empty until the customer has chosen one on the payment page.
    """
    method = payment.payment_type if payment.payment_type in METHODS else ("other" if payment.payment_type else "")
    bank = payment.bank.lower()
    if method == "echannel":
        bank = bank or "mandiri"
    return {
        "method": method,
        "bank": BANK_NAMES.get(bank, bank.upper()) if method in ("bank_transfer", "echannel") else "",
        "va_number": payment.va_number,
        "biller_code": payment.biller_code,
        "bill_key": payment.bill_key,
        "payment_code": payment.payment_code,
        "store": STORE_NAMES.get(payment.store.lower(), payment.store.title()) if method == "cstore" else "",
        "amount": rupiah(payment.amount),
        "expires_at": payment.expires_at.isoformat() if payment.expires_at else None,
    }
