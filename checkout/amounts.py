"""Whether the amount Midtrans reports pays the order: the one rule, buyer fees included.

With Midtrans's fee imposition the signed ``gross_amount`` is the order's
amount plus a fee the buyer paid, and ``metadata.extra_info.gross_amount_info``
says so (``original_amount``, ``customer_imposed_payment_fee``, strings). Such
an answer pays the order when the original amount is the order's and the sum
adds up; anything else is a mismatch, which is recorded and never paid.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from checkout.observations import Observation

ZERO = Decimal("0")


def buyer_fee(observation: Observation, expected: Decimal) -> Decimal | None:
    """Return the buyer fee in ``observation`` (0 when none); None when its amount does not pay ``expected``."""
    if observation.gross_amount == expected:
        return ZERO
    info = _gross_amount_info(observation.raw)
    original = _decimal(info.get("original_amount"))
    fee = _decimal(info.get("customer_imposed_payment_fee"))
    if original is None or fee is None or fee <= ZERO:
        return None
    if original != expected or observation.gross_amount - fee != original:
        return None
    return fee


def _gross_amount_info(raw: Any) -> dict[str, Any]:
    metadata = raw.get("metadata") if isinstance(raw, dict) else None
    extra = metadata.get("extra_info") if isinstance(metadata, dict) else None
    info = extra.get("gross_amount_info") if isinstance(extra, dict) else None
    return info if isinstance(info, dict) else {}


def _decimal(value: Any) -> Decimal | None:
    # Midtrans sends strings; a number (or anything else) is read leniently but must be finite.
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
