"""Midtrans-shaped bodies: notifications, status answers, signatures, times."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.store import Transaction

JAKARTA = timezone(timedelta(hours=7), "WIB")
NOTIFICATION_MESSAGE = "midtrans payment notification"


def now() -> datetime:
    """Return the current time in GMT+7, as Midtrans reports it."""
    return datetime.now(JAKARTA).replace(microsecond=0)


def fmt_time(value: datetime | str | None) -> str:
    """Format a datetime (or ISO string) as Midtrans's "YYYY-MM-DD HH:MM:SS" in GMT+7."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M:%S")


def fmt_amount(amount: int | float) -> str:
    """Format an amount with two decimals, as Midtrans does ("10000.00"); the signature covers this text."""
    return f"{amount:.2f}"


def signature(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """Return Midtrans's signature_key: sha512 hex of the concatenated raw strings."""
    raw = f"{order_id}{status_code}{gross_amount}{server_key}"
    return hashlib.sha512(raw.encode("utf-8")).hexdigest()


def status_code_for(status: str | None, fraud_status: str | None) -> str:
    """Map a transaction_status (and fraud_status) to Midtrans's body status_code."""
    if status == "capture":
        return "201" if fraud_status == "challenge" else "200"
    return {
        "pending": "201",
        "authorize": "201",
        "settlement": "200",
        "cancel": "200",
        "refund": "200",
        "partial_refund": "200",
        "deny": "202",
        "failure": "202",
        "expire": "407",
    }.get(status or "", "200")


def _method_fields(tx: Transaction) -> dict[str, Any]:
    """Return the payment-method-specific fields of a payload, as Midtrans's samples carry them."""
    m = tx.method
    amount = fmt_amount(tx.gross_amount)
    if tx.payment_type == "credit_card":
        fields = {
            "masked_card": m.get("masked_card", "481111-1114"),
            "bank": m.get("bank", "bni"),
            "eci": m.get("eci", "05"),
            "card_type": m.get("card_type", "credit"),
            "channel_response_code": m.get("channel_response_code", "00"),
            "channel_response_message": m.get("channel_response_message", "Approved"),
        }
        if m.get("approval_code"):
            fields["approval_code"] = m["approval_code"]
        return fields
    if tx.payment_type == "bank_transfer" and m.get("bank") == "permata":
        return {"permata_va_number": m.get("va_number", "")}
    if tx.payment_type == "bank_transfer":
        paid = []
        if tx.status == "settlement" and tx.settlement_time:
            paid = [{"paid_at": fmt_time(tx.settlement_time), "amount": amount}]
        return {
            "va_numbers": [{"bank": m.get("bank", "bca"), "va_number": m.get("va_number", "")}],
            "payment_amounts": paid,
        }
    if tx.payment_type == "echannel":
        return {"biller_code": m.get("biller_code", ""), "bill_key": m.get("bill_key", "")}
    if tx.payment_type == "cstore":
        return {"payment_code": m.get("payment_code", ""), "store": m.get("store", "indomaret")}
    return {}


def transaction_body(tx: Transaction, server_key: str, merchant_id: str,
                     status_message: str = NOTIFICATION_MESSAGE, fee: int = 0) -> dict[str, Any]:
    """Build the notification / status body of a transaction; every value a string.

    A buyer ``fee`` (fee imposition) is added to the signed gross_amount and
    explained in ``metadata.extra_info.gross_amount_info``, as Midtrans does.
    """
    gross = fmt_amount(tx.gross_amount + fee)
    code = status_code_for(tx.status, tx.fraud_status)
    body: dict[str, Any] = {
        "transaction_time": fmt_time(tx.transaction_time),
        "transaction_status": tx.status or "",
        "transaction_id": tx.transaction_id or "",
        "status_message": status_message,
        "status_code": code,
        "signature_key": signature(tx.order_id, code, gross, server_key),
        "order_id": tx.order_id,
        "merchant_id": merchant_id,
        "gross_amount": gross,
        "currency": "IDR",
        "payment_type": tx.payment_type or "",
    }
    if fee:
        body["metadata"] = {"extra_info": {"gross_amount_info": {
            "original_amount": fmt_amount(tx.gross_amount), "customer_imposed_payment_fee": fmt_amount(fee),
        }}}
    if tx.fraud_status:
        body["fraud_status"] = tx.fraud_status
    if tx.status == "settlement" and tx.settlement_time:
        body["settlement_time"] = fmt_time(tx.settlement_time)
    if tx.status == "pending" and tx.payment_type != "credit_card":
        body["expiry_time"] = fmt_time(tx.expires_at)
    if tx.status in ("refund", "partial_refund") and tx.refunds:
        body["refund_amount"] = fmt_amount(sum(r["amount"] for r in tx.refunds))
        body["refunds"] = [
            {
                "refund_chargeback_id": str(r["id"]),
                "refund_amount": fmt_amount(r["amount"]),
                "created_at": fmt_time(r["at"]),
                "reason": r.get("reason", ""),
                "refund_key": r.get("refund_key", ""),
            }
            for r in tx.refunds
        ]
    body.update(_method_fields(tx))
    if tx.payment_type == "cstore":
        # Real cstore samples carry neither of these.
        for key in ("merchant_id", "currency", "fraud_status"):
            body.pop(key, None)
    return body


ACTION_MESSAGES = {
    "cancel": "Success, transaction is canceled",
    "expire": "Success, transaction has expired",
    "approve": "Success, transaction is approved",
    "deny": "Success, transaction is denied",
    "refund": "Success, refund request is approved",
}


def action_body(tx: Transaction, action: str, server_key: str, merchant_id: str,
                refund: dict[str, Any] | None = None, fee: int = 0) -> dict[str, Any]:
    """Build the answer of a Core API modification (cancel, expire, refund, ...)."""
    body = transaction_body(tx, server_key, merchant_id, ACTION_MESSAGES[action], fee=fee)
    for key in ("signature_key", "va_numbers", "payment_amounts", "refunds", "refund_amount"):
        body.pop(key, None)
    body["status_code"] = "407" if action == "expire" else "200"
    if refund is not None:
        body["refund_chargeback_id"] = str(refund["id"])
        body["refund_amount"] = fmt_amount(refund["amount"])
        body["refund_key"] = refund.get("refund_key", "")
    return body


def not_found_body() -> dict[str, str]:
    """Return Midtrans's body for an unknown transaction (also before a Snap customer chose a method)."""
    return {
        "status_code": "404",
        "status_message": "Transaction doesn't exist.",
        "id": str(uuid.uuid4()),
    }


def cannot_modify_body() -> dict[str, str]:
    return {
        "status_code": "412",
        "status_message": "Merchant cannot modify the status of the transaction",
        "id": str(uuid.uuid4()),
    }
