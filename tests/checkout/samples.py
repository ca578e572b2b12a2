"""Notification bodies shaped like Midtrans's real ones, signed with a given key."""

import uuid
from typing import Any

from checkout.signature import notification_signature

STATUS_CODES = {
    "pending": "201", "settlement": "200", "capture": "200", "deny": "202", "cancel": "200",
    "expire": "407", "refund": "200", "partial_refund": "200", "failure": "202",
}

METHOD_EXTRAS: dict[str, dict[str, Any]] = {
    "card": {"payment_type": "credit_card", "masked_card": "481111-1114", "bank": "bni", "eci": "05",
             "card_type": "credit", "approval_code": "1578569243927", "channel_response_code": "00",
             "channel_response_message": "Approved"},
    "bca_va": {"payment_type": "bank_transfer", "va_numbers": [{"bank": "bca", "va_number": "12345678901"}],
               "payment_amounts": []},
    "bni_va": {"payment_type": "bank_transfer", "va_numbers": [{"bank": "bni", "va_number": "9881234567"}],
               "payment_amounts": []},
    "bri_va": {"payment_type": "bank_transfer", "va_numbers": [{"bank": "bri", "va_number": "123456789012345"}],
               "payment_amounts": []},
    "permata_va": {"payment_type": "bank_transfer", "permata_va_number": "8562000087926752"},
    "mandiri_bill": {"payment_type": "echannel", "bill_key": "990000000260", "biller_code": "70012"},
    "gopay": {"payment_type": "gopay"},
    "qris": {"payment_type": "qris", "acquirer": "gopay"},
    "indomaret": {"payment_type": "cstore", "payment_code": "25709650945026", "store": "indomaret"},
    "alfamart": {"payment_type": "cstore", "payment_code": "ALFA25709650945", "store": "alfamart"},
}


def notification(
    order_id: str, transaction_status: str, *, gross_amount: str = "85000.00", method: str = "bca_va",
    fraud_status: str | None = "accept", server_key: str, status_code: str | None = None, **overrides: Any,
) -> dict[str, Any]:
    """Return a signed notification body, all values strings, like Midtrans sends."""
    status_code = status_code or STATUS_CODES.get(transaction_status, "200")
    body: dict[str, Any] = {
        "transaction_time": "2025-07-18 04:07:33",
        "transaction_status": transaction_status,
        "transaction_id": str(uuid.uuid4()),
        "status_message": "midtrans payment notification",
        "status_code": status_code,
        "order_id": order_id,
        "gross_amount": gross_amount,
        "merchant_id": "G141532850",
        "currency": "IDR",
        **METHOD_EXTRAS[method],
    }
    if fraud_status is not None:
        body["fraud_status"] = fraud_status
    if method in ("indomaret", "alfamart"):
        for absent in ("fraud_status", "currency", "merchant_id"):
            body.pop(absent, None)
    if transaction_status == "settlement":
        body["settlement_time"] = "2025-07-18 04:09:01"
    body.update(overrides)
    body["signature_key"] = notification_signature(order_id, status_code, body["gross_amount"], server_key)
    return body
