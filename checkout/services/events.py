"""Writes to the audit trail: every input that touches a payment is stored as a ``PaymentEvent``.

An event is stored before (or, for a verified notification, in the same
transaction as) anything is done with it, so a failure can be re-applied
and every status a payment had can be explained.
"""

import json
import traceback
from typing import Any

from django.utils import timezone

from checkout.models import EventOutcome, Payment, PaymentEvent
from checkout.statements import row_insert
from checkout.text import clean_text, fit

# What is kept of a body nobody vouches for (forged, unknown order, malformed):
# a whole real notification is about 1 KiB, so this shows what was sent while
# keeping a flood of them bounded.
UNTRUSTED_BODY_CHARS = 2048


_UNTRUSTED_HEADERS = 50


_UNTRUSTED_HEADER_CHARS = 256


def payment_event_record(**fields: Any) -> PaymentEvent:
    """Store an input before anything is done with it (its own commit); ``fields`` are ``payment_event_new``'s."""
    return row_insert(payment_event_new(**fields))


def payment_event_new(
    *,
    source: str,
    payment: Payment | None = None,
    order_number: str = "",
    raw_body: str = "",
    raw_size: int | None = None,
    trusted: bool = True,
    headers: dict[str, str] | None = None,
    client_ip: str | None = None,
    signature_valid: bool | None = None,
    payload: Any = None,
    outcome: str = EventOutcome.RECEIVED,
    detail: str = "",
) -> PaymentEvent:
    """Return an input as an event not yet stored (the caller inserts it, in its own transaction or not).

    Everything is cleaned and cut to its column (a NUL or an overlong value
    must not make the insert fail, on every retry). An untrusted body keeps
    only its first UNTRUSTED_BODY_CHARS characters; ``raw_size`` (bytes
    received) says how much there was.
    """
    payload = payload if isinstance(payload, dict) else {}
    body = clean_text(raw_body)
    truncated = not trusted and len(body) > UNTRUSTED_BODY_CHARS
    return PaymentEvent(
        payment=payment,
        order_number=fit(PaymentEvent, "order_number", order_number or payload.get("order_id") or ""),
        source=source,
        raw_body=body[:UNTRUSTED_BODY_CHARS] if truncated else body,
        raw_size=len(raw_body.encode("utf-8", "replace")) if raw_size is None else raw_size,
        raw_truncated=truncated,
        headers=stored_headers(headers or {}, trusted=trusted),
        client_ip=client_ip,
        signature_valid=signature_valid,
        transaction_status=fit(PaymentEvent, "transaction_status", payload.get("transaction_status") or ""),
        fraud_status=fit(PaymentEvent, "fraud_status", payload.get("fraud_status") or ""),
        status_before=payment.status if payment else "",
        outcome=outcome,
        detail=clean_text(detail),
        processed_at=None if outcome == EventOutcome.RECEIVED else timezone.now(),
    )


def stored_headers(headers: dict[str, str], *, trusted: bool) -> dict[str, str]:
    """Return headers fit to store: cleaned, and for an untrusted request, bounded."""
    if trusted:
        return {clean_text(k): clean_text(v) for k, v in headers.items()}
    kept = list(headers.items())[:_UNTRUSTED_HEADERS]
    return {clean_text(k)[:_UNTRUSTED_HEADER_CHARS]: clean_text(v)[:_UNTRUSTED_HEADER_CHARS] for k, v in kept}


def payment_event_close(*, event_id: int, outcome: str, detail: str = "", payment: Payment | None = None) -> None:
    """Mark a stored event as settled without applying it (rejected, unknown, failed)."""
    fields: dict[str, Any] = {"outcome": outcome, "detail": clean_text(detail), "processed_at": timezone.now()}
    if payment is not None:
        fields.update(payment=payment, status_before=payment.status, status_after=payment.status)
    PaymentEvent.objects.filter(pk=event_id).update(**fields)


def payment_event_fail(*, event_id: int, error: BaseException) -> None:
    """Record that applying an event raised, with its traceback, so it can be retried."""
    detail = "".join(traceback.format_exception(error))[-4000:]
    payment_event_close(event_id=event_id, outcome=EventOutcome.ERROR, detail=detail)


def raw_json(value: Any) -> str:
    """Return a Midtrans answer as the raw body of the event that records it."""
    return json.dumps(value, ensure_ascii=False, default=str)
