"""Midtrans notification signatures."""

import hashlib
import hmac
from typing import Any


def notification_signature(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """Return sha512(order_id + status_code + gross_amount + server_key) as hex."""
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


def signature_is_valid(payload: dict[str, Any], server_key: str) -> bool:
    """Check a notification's signature over its raw strings, in constant time."""
    given = payload.get("signature_key")
    parts = [payload.get(name) for name in ("order_id", "status_code", "gross_amount")]
    if not isinstance(given, str) or not all(isinstance(p, str) for p in parts):
        return False
    expected = notification_signature(*parts, server_key)
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())
