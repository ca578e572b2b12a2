"""Snap ``POST /snap/v1/transactions``: what Midtrans refuses in a request, with its messages, and the finish redirect.

The order and amount checks (``details_errors``) are the Core API charge's
too (``charge.py`` adds the rest of its rules).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from simulator.payloads import status_code_for

if TYPE_CHECKING:
    from simulator.store import Transaction

ORDER_ID_RE = re.compile(r"^[A-Za-z0-9\-_~.]+$")
EXPIRY_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEFAULT_EXPIRY = timedelta(hours=24)
INVALID_JSON = object()  # a request body that is not JSON (a missing or ``null`` body is None)


class SnapError(Exception):
    """A Snap request Midtrans would refuse: HTTP status and error_messages."""

    def __init__(self, status: int, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = messages


def _amount(value: Any) -> int | None:
    """Return an integral amount (int, integral float or digit string; negative allowed), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.0+)?", value.strip()):
        return int(float(value))
    return None


def details_errors(body: Any, min_amount: str = "0.01") -> tuple[str, int, list[str]]:
    """Check transaction_details and item_details as Midtrans does; return (order_id, gross_amount, messages).

    A missing or null body, or one without transaction_details, gets only
    "transaction_details is required": Midtrans names what is required, not
    a JSON parse error. Zero and negative amounts get Midtrans's
    "must be greater than or equal to <min_amount>".
    """
    if body is INVALID_JSON:
        return "", 0, ["Request body is not valid JSON"]
    details = body.get("transaction_details") if isinstance(body, dict) else None
    if not isinstance(details, dict):
        return "", 0, ["transaction_details is required"]
    errors: list[str] = []
    order_id = details.get("order_id")
    if order_id in (None, ""):
        errors.append("transaction_details.order_id is required")
    elif not isinstance(order_id, str) or not ORDER_ID_RE.match(order_id):
        errors.append("transaction_details.order_id may only contain alpha-numeric, dash(-), "
                      "underscore(_), tilde (~), and dot (.)")
    elif len(order_id) > 50:
        errors.append("transaction_details.order_id too long. Max 50 characters.")
    raw_gross = details.get("gross_amount")
    gross = _amount(raw_gross)
    if raw_gross is None:
        errors.append("transaction_details.gross_amount is required")
    elif gross is None:
        errors.append("transaction_details.gross_amount must be an integer")
    elif gross <= 0:
        errors.append(f"transaction_details.gross_amount must be greater than or equal to {min_amount}")
    items = body.get("item_details")
    if items is not None:
        if not isinstance(items, list):
            errors.append("item_details must be an array")
        else:
            total = 0
            for i, item in enumerate(items):
                price = _amount(item.get("price")) if isinstance(item, dict) else None
                qty = _amount(item.get("quantity")) if isinstance(item, dict) else None
                if price is None or qty is None:
                    errors.append(f"item_details[{i}] needs an integer price and quantity")
                else:
                    total += price * qty
            if gross is not None and not errors and total != gross:
                errors.append("transaction_details.gross_amount is not equal to the sum of item_details")
    return str(order_id or ""), int(gross or 0), errors


def validate_snap(body: Any) -> tuple[str, int]:
    """Validate a Snap request like Midtrans; return (order_id, gross_amount) or raise SnapError(400)."""
    order_id, gross, errors = details_errors(body)
    if errors:
        raise SnapError(400, errors)
    return order_id, gross


def expiry_deadline(expiry: Any, created: datetime) -> datetime:
    """Return when the Snap transaction expires, from Snap's ``expiry`` object (SnapError when it is malformed)."""
    if not isinstance(expiry, dict):
        return created + DEFAULT_EXPIRY
    start = created
    if expiry.get("start_time"):
        try:
            start = datetime.strptime(str(expiry["start_time"]), "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            raise SnapError(400, ["expiry.start_time must be formatted as yyyy-MM-dd HH:mm:ss Z"]) from None
    unit = str(expiry.get("unit", "minute")).lower().rstrip("s")
    if unit not in EXPIRY_UNITS:
        raise SnapError(400, ["expiry.unit must be one of second, minute, hour, day"])
    try:
        duration = int(expiry.get("duration", 0))
    except (TypeError, ValueError):
        raise SnapError(400, ["expiry.duration must be an integer"]) from None
    if duration <= 0:
        raise SnapError(400, ["expiry.duration must be greater than 0"])
    return start + timedelta(seconds=duration * EXPIRY_UNITS[unit])


def finish_redirect(tx: Transaction) -> str | None:
    """Return callbacks.finish with Snap's query (order_id, status_code, transaction_status)."""
    if not tx.finish_url or tx.status is None:
        return None
    query = urlencode({
        "order_id": tx.order_id,
        "status_code": status_code_for(tx.status, tx.fraud_status),
        "transaction_status": tx.status,
    })
    return tx.finish_url + ("&" if "?" in tx.finish_url else "?") + query
