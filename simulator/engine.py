"""Midtrans's transaction state machine, applied to a Transaction in place."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from simulator.payloads import now
from simulator.store import Transaction

# Payment page choices: key (Snap's enabled_payments name) -> (label, payment_type, bank/store).
METHODS: dict[str, tuple[str, str, str | None]] = {
    "credit_card": ("Credit/debit card", "credit_card", None),
    "bca_va": ("BCA Virtual Account", "bank_transfer", "bca"),
    "bni_va": ("BNI Virtual Account", "bank_transfer", "bni"),
    "bri_va": ("BRI Virtual Account", "bank_transfer", "bri"),
    "permata_va": ("Permata Virtual Account", "bank_transfer", "permata"),
    "echannel": ("Mandiri Bill Payment", "echannel", None),
    "qris": ("QRIS", "qris", None),
    "gopay": ("GoPay", "gopay", None),
    "indomaret": ("Indomaret", "cstore", "indomaret"),
}
PAYMENT_TYPES = ("bank_transfer", "permata", "echannel", "cstore", "qris", "gopay", "credit_card")
BANKS = ("bca", "bni", "bri", "permata")


class NotAllowed(Exception):
    """The transaction's status does not allow this move (Midtrans's 412)."""


class NotFound(Exception):
    """Midtrans would not know this transaction yet (no payment method chosen)."""


class BadRequest(Exception):
    pass


def resolve_method(payment_type: str | None, bank: str | None = None) -> tuple[str, str | None]:
    """Normalise a control-API/page method choice (a Snap name or a payment_type) to (payment_type, bank/store)."""
    payment_type = (payment_type or "bank_transfer").lower()
    if payment_type in METHODS:
        _, ptype, extra = METHODS[payment_type]
        return ptype, extra
    if payment_type == "permata":
        return "bank_transfer", "permata"
    if payment_type not in PAYMENT_TYPES:
        raise BadRequest(f"unknown payment_type {payment_type!r}; use one of {', '.join(PAYMENT_TYPES)}")
    if payment_type == "bank_transfer":
        bank = (bank or "bca").lower()
        if bank not in BANKS:
            raise BadRequest(f"unknown bank {bank!r}; use one of {', '.join(BANKS)}")
        return payment_type, bank
    if payment_type == "cstore":
        return payment_type, "indomaret"
    return payment_type, None


def _digits(seed: str, length: int) -> str:
    # Deterministic, so a VA number is the same after a restart with --state-file.
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(number)[:length].rjust(length, "0")


def _method_details(tx: Transaction, payment_type: str, extra: str | None) -> dict[str, Any]:
    seed = f"{tx.order_id}:{payment_type}:{extra}"
    if payment_type == "bank_transfer":
        prefix = {"bca": "12345", "bni": "9880", "bri": "8888", "permata": "8562"}[extra or "bca"]
        return {"bank": extra, "va_number": prefix + _digits(seed, 11 if extra == "bca" else 12)}
    if payment_type == "echannel":
        return {"biller_code": "70012", "bill_key": _digits(seed, 12)}
    if payment_type == "cstore":
        return {"store": extra or "indomaret", "payment_code": "2526" + _digits(seed, 10)}
    if payment_type == "credit_card":
        return {"masked_card": "481111-1114", "bank": "bni", "eci": "05", "card_type": "credit"}
    return {}


def choose_method(tx: Transaction, payment_type: str | None, bank: str | None = None) -> None:
    """Start a new payment attempt with a method: the transaction becomes pending."""
    if tx.page_expired:
        raise NotAllowed("the Snap payment page has expired")
    if tx.status not in (None, "pending", "deny"):
        raise NotAllowed(f"cannot choose a payment method in status {tx.status}")
    ptype, extra = resolve_method(payment_type, bank)
    if tx.channel == "core" and tx.payment_type is not None and (
            ptype != tx.payment_type or (ptype == "bank_transfer" and extra != tx.method.get("bank"))):
        raise NotAllowed(f"a Core API charge keeps its payment method ({tx.payment_type})")
    tx.payment_type = ptype
    tx.method = _method_details(tx, ptype, extra)
    tx.transaction_id = str(uuid.uuid4())
    tx.transaction_time = now().isoformat()
    tx.settlement_time = None
    tx.status = "pending"
    tx.fraud_status = None if ptype in ("credit_card", "cstore") else "accept"


def _card_result(tx: Transaction, status: str, fraud: str, approved: bool) -> None:
    tx.status = status
    tx.fraud_status = fraud
    if approved:
        tx.method["approval_code"] = _digits(f"{tx.transaction_id}:approval", 13)
        tx.method["channel_response_code"] = "00"
        tx.method["channel_response_message"] = "Approved"
    else:
        tx.method.pop("approval_code", None)
        tx.method["channel_response_code"] = "05"
        tx.method["channel_response_message"] = "Do not honour"


def _ensure_card_attempt(tx: Transaction) -> None:
    if tx.payment_type != "credit_card" or tx.status != "pending":
        choose_method(tx, "credit_card")


def apply(tx: Transaction, action: str, *, strict: bool = False, payment_type: str | None = None,
          bank: str | None = None, amount: int | None = None, reason: str = "",
          refund_key: str = "", again: bool = False) -> dict[str, Any] | None:
    """Apply one move; raise NotAllowed/NotFound/BadRequest; return refund data for refunds.

    ``strict`` applies the Core API's stricter rules (a transaction without a
    payment method does not exist; deny only acts on a challenged card);
    the control API and payment page may do more (reversals, card attempts).
    ``again`` (settle) records another payment into a paid VA (see ``pay_again``).
    """
    if strict and tx.status is None:
        raise NotFound(tx.order_id)
    status, card = tx.status, tx.payment_type == "credit_card"
    if action == "pending":
        choose_method(tx, payment_type, bank)
    elif action == "settle" and again:
        pay_again(tx)
    elif action == "settle":
        if status is None:
            if payment_type:
                choose_method(tx, payment_type, bank)
            else:
                choose_method(tx, "bank_transfer", "bca")
            card = tx.payment_type == "credit_card"
        elif status == "deny" and card:
            choose_method(tx, "credit_card")
        elif status not in ("pending", "capture") or (status == "capture" and tx.fraud_status == "challenge"):
            raise NotAllowed(f"cannot settle a transaction in status {status}/{tx.fraud_status}")
        if card and tx.status == "pending":
            _card_result(tx, "capture", "accept", approved=True)
        else:
            tx.status = "settlement"
            tx.settlement_time = now().isoformat()
    elif action == "challenge":
        if status not in (None, "pending", "deny"):
            raise NotAllowed(f"cannot challenge a transaction in status {status}")
        _ensure_card_attempt(tx)
        _card_result(tx, "capture", "challenge", approved=True)
    elif action == "approve":
        if not (status == "capture" and tx.fraud_status == "challenge"):
            raise NotAllowed("only a challenged card capture can be approved")
        tx.fraud_status = "accept"
    elif action == "deny":
        if status == "capture" and tx.fraud_status == "challenge":
            tx.status, tx.fraud_status = "deny", "deny"
        elif strict:
            raise NotAllowed("only a challenged card capture can be denied")
        elif status is None:
            _ensure_card_attempt(tx)
            _card_result(tx, "deny", "accept", approved=False)
        elif status in ("pending", "capture", "settlement"):
            if card and status == "pending":
                _card_result(tx, "deny", "accept", approved=False)
            else:
                tx.status = "deny"
        else:
            raise NotAllowed(f"cannot deny a transaction in status {status}")
    elif action == "expire":
        if status is None:
            tx.page_expired = True  # Snap page expired before a method: no notification
            return None
        if status != "pending":
            raise NotAllowed(f"only a pending transaction can expire (status {status})")
        tx.status = "expire"
    elif action == "cancel":
        if status is None:
            raise NotAllowed("no payment method chosen yet")
        if status not in ("pending", "capture", "authorize"):
            raise NotAllowed(f"cannot cancel a transaction in status {status}")
        tx.status = "cancel"
    elif action == "refund":
        return _refund(tx, amount, reason, refund_key)
    else:
        raise BadRequest(f"unknown action {action!r}")
    return None


def pay_again(tx: Transaction) -> None:
    """Record another payment into an already paid VA or Mandiri bill: a new transaction under the same order_id.

    Midtrans gives each payment into a VA its own transaction_id; GET status
    answers the newest, GET status/b2b lists them all. The earlier payment
    (with its refunds) is kept in ``earlier_payments``.
    """
    if tx.payment_type not in ("bank_transfer", "echannel"):
        raise NotAllowed(f"only a VA or Mandiri bill can be paid again (payment_type {tx.payment_type})")
    if tx.status not in ("settlement", "partial_refund", "refund"):
        raise NotAllowed(f"only a paid VA can be paid again (status {tx.status})")
    tx.earlier_payments.append({
        "transaction_id": tx.transaction_id, "transaction_time": tx.transaction_time,
        "settlement_time": tx.settlement_time, "status": tx.status, "fraud_status": tx.fraud_status,
        "payment_type": tx.payment_type, "method": dict(tx.method), "refunds": list(tx.refunds),
    })
    tx.transaction_id = str(uuid.uuid4())
    tx.transaction_time = tx.settlement_time = now().isoformat()
    tx.status = "settlement"
    tx.refunds = []


def _refund(tx: Transaction, amount: int | None, reason: str, refund_key: str) -> dict[str, Any]:
    """Refund all or part of a settled transaction; a refund_key seen before answers that refund again.

    Midtrans: "If you want to retry the same refund request please use the
    same refund_key". The repeat refunds nothing, changes nothing and sends no
    notification (the caller sees ``duplicate``), whatever its amount.
    """
    for earlier in tx.refunds:
        if refund_key and earlier.get("refund_key") == refund_key:
            return {**earlier, "duplicate": True}
    if tx.status not in ("settlement", "partial_refund"):
        raise NotAllowed(f"only a settled transaction can be refunded (status {tx.status})")
    remaining = tx.gross_amount - sum(r["amount"] for r in tx.refunds)
    amount = remaining if amount is None else amount
    if amount <= 0 or amount > remaining:
        raise NotAllowed(f"refund amount must be between 1 and {remaining}")
    refund = {
        "id": len(tx.refunds) + 1,
        "amount": amount,
        "reason": reason,
        "refund_key": refund_key or str(uuid.uuid4()),
        "at": now().isoformat(),
    }
    tx.refunds.append(refund)
    tx.status = "refund" if amount == remaining else "partial_refund"
    return refund
