"""What Midtrans told us about a transaction, from a notification or the status API."""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from checkout.errors import MalformedNotification

REQUIRED_FIELDS = ("order_id", "status_code", "gross_amount", "transaction_status")

# Payment details worth keeping on the payment row, by Midtrans field.
_DETAIL_FIELDS = ("payment_type", "bill_key", "biller_code", "payment_code", "store")


@dataclass(frozen=True)
class Observation:
    """One Midtrans answer about one transaction, with the raw strings kept."""

    order_id: str
    transaction_status: str
    status_code: str
    gross_amount: Decimal
    fraud_status: str = ""
    currency: str = ""
    transaction_id: str = ""
    details: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def observation_from_payload(payload: Any, *, require_signature: bool = False) -> Observation:
    """Build an observation from a notification or status body; raise MalformedNotification."""
    if not isinstance(payload, dict):
        raise MalformedNotification("body must be a JSON object")
    required = REQUIRED_FIELDS + (("signature_key",) if require_signature else ())
    missing = [name for name in required if not _text(payload.get(name))]
    if missing:
        raise MalformedNotification(f"missing required field(s): {', '.join(missing)}", {"missing": missing})
    try:
        amount = Decimal(_text(payload["gross_amount"]))
    except InvalidOperation:
        raise MalformedNotification("gross_amount is not a number") from None
    if not amount.is_finite():
        raise MalformedNotification("gross_amount is not a number")
    return Observation(
        order_id=_text(payload["order_id"]),
        transaction_status=_text(payload["transaction_status"]).lower(),
        status_code=_text(payload["status_code"]),
        gross_amount=amount,
        fraud_status=_text(payload.get("fraud_status")).lower(),
        currency=_text(payload.get("currency")).upper(),
        transaction_id=_text(payload.get("transaction_id")),
        details=_details(payload),
        raw=payload,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _details(payload: dict[str, Any]) -> dict[str, str]:
    details = {name: _text(payload.get(name)) for name in _DETAIL_FIELDS if _text(payload.get(name))}
    va_numbers = payload.get("va_numbers")
    if isinstance(va_numbers, list) and va_numbers and isinstance(va_numbers[0], dict):
        details["bank"] = _text(va_numbers[0].get("bank"))
        details["va_number"] = _text(va_numbers[0].get("va_number"))
    if _text(payload.get("permata_va_number")):
        details["bank"] = "permata"
        details["va_number"] = _text(payload["permata_va_number"])
    if payload.get("payment_type") == "credit_card" and _text(payload.get("bank")):
        details["bank"] = _text(payload["bank"])
    return details
