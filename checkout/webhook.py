"""The Midtrans HTTP notification endpoint.

Answers (Midtrans retries anything but 2xx), whatever the body — never a 500:
  200 applied, duplicate, stale or amount_mismatch (recorded, never paid);
  400 not JSON, JSON nesting deeper than a notification ever does or holding
      text that is not Unicode, or a required field missing;
  403 bad signature; 404 unknown order;
  413 body over WEBHOOK_MAX_BODY_BYTES (judged by Content-Length before reading);
  503 with Retry-After: more than WEBHOOK_MAX_IN_FLIGHT notifications are
      being handled in this process (answered at once by checkout.gate, in
      front of Django: nothing read or stored, Midtrans sends it again);
  503 the event could not be stored, the database is busy, a move out of a
      paid state could not be confirmed, or applying it failed (stored as
      ``error`` with the traceback; the reconcile re-applies it).
A verified notification is stored with its raw body in the same transaction
that applies it. Every other body that was read is stored; one nobody vouches
for (malformed, forged, unknown order) only in part, with its size.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from checkout import metrics
from checkout.errors import ApplicationError, GatewayError, InvalidSignature, MalformedNotification, UnknownOrder
from checkout.models import EventOutcome, EventSource
from checkout.observations import Observation, observation_from_payload
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from checkout.signature import signature_is_valid
from checkout.text import clean_text

logger = logging.getLogger("paywatch.webhook")

# A real notification nests four deep (metadata.extra_info.gross_amount_info);
# anything far deeper is not one, and would make str() or the logger recurse.
MAX_JSON_DEPTH = 16

_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key", "x-csrftoken"}
_ERROR_STATUS = {MalformedNotification: 400, InvalidSignature: 403, UnknownOrder: 404}
_ERROR_OUTCOME = {InvalidSignature: EventOutcome.INVALID_SIGNATURE, UnknownOrder: EventOutcome.UNKNOWN_ORDER}


@dataclass
class _Verdict:
    """What can be known about a notification without the database: nothing here reads or writes."""

    observation: Observation | None = None
    signature_valid: bool | None = None
    error: ApplicationError | None = None


@csrf_exempt
@require_POST
def midtrans_notification(request: HttpRequest) -> JsonResponse:
    """Verify the notification, then store and apply it through the state machine (WebhookGate bounds them)."""
    body = _read_body(request)
    if body is None:
        return _answer(413, {"error": f"body larger than {settings.WEBHOOK_MAX_BODY_BYTES} bytes"})
    raw = body.decode("utf-8", errors="replace")
    payload = _parse(raw)
    ip = request.META.get("REMOTE_ADDR")
    logger.info("MIDTRANS WEBHOOK RECEIVED", extra={"ip": ip, "size": len(body), **_summary(payload)})
    verdict = _verify(payload)
    record = {"raw_body": raw, "raw_size": len(body), "headers": safe_headers(request), "client_ip": ip}
    if verdict.error is None:
        assert verdict.observation is not None
        try:
            transition = payment_services.payment_notification_apply(
                observation=verdict.observation, source=EventSource.WEBHOOK, **record)
        except UnknownOrder as exc:
            verdict.error = exc
        except DatabaseError as exc:
            event_id = _store_failed(record, payload, exc)
            return _answer(503, {"error": "database busy; retry later", "event_id": event_id})
        except Exception as exc:
            # A bug, not bad input: the body is stored with the traceback and the
            # reconcile re-applies it; Midtrans is told to retry as well.
            logger.exception("Applying a notification failed")
            event_id = _store_failed(record, payload, exc)
            return _answer(503, {"error": "could not apply the notification; it is stored and will be retried",
                                 "event_id": event_id})
    if verdict.error is not None:
        return _reject(verdict, record, payload)
    if transition.needs_confirmation:
        transition = _confirm(transition)
        if isinstance(transition, JsonResponse):
            return transition
    return _answer(200, {
        "outcome": transition.outcome, "payment_status": transition.status_after,
        "version": transition.version, "event_id": transition.event_id,
    })


def _reject(verdict: _Verdict, record: dict[str, Any], payload: object) -> JsonResponse:
    """Store what nobody vouches for (bounded) and answer its 4xx."""
    error = verdict.error
    assert error is not None
    try:
        event = event_services.payment_event_record(
            source=EventSource.WEBHOOK, trusted=False, signature_valid=verdict.signature_valid,
            outcome=_ERROR_OUTCOME.get(type(error), EventOutcome.ERROR), detail=error.message, payload=payload,
            **record,
        )
    except DatabaseError:
        logger.exception("Could not store notification")
        return _answer(503, {"error": "could not store the notification; retry later"})
    return _answer(_ERROR_STATUS.get(type(error), 400), {"error": error.message, **error.extra,
                                                         "event_id": event.pk})


def _confirm(transition: payment_services.Transition) -> payment_services.Transition | JsonResponse:
    """Confirm a move out of a paid state with Midtrans (stored as stale until then) and apply the answer."""
    assert transition.event_id is not None and transition.payment_id is not None
    try:
        return payment_services.payment_confirm_with_midtrans(
            payment_id=transition.payment_id, source=EventSource.WEBHOOK, event_id=transition.event_id)
    except DatabaseError as exc:
        _fail(transition.event_id, exc)
        return _answer(503, {"error": "database busy; retry later", "event_id": transition.event_id})
    except GatewayError as exc:
        _fail(transition.event_id, exc)
        return _answer(503, {"error": f"could not confirm with Midtrans: {exc.message}",
                             "event_id": transition.event_id})
    except Exception as exc:
        logger.exception("Confirming a notification failed", extra={"event_id": transition.event_id})
        _fail(transition.event_id, exc)
        return _answer(503, {"error": "could not apply the notification; it is stored and will be retried",
                             "event_id": transition.event_id})


def _read_body(request: HttpRequest) -> bytes | None:
    """Return the body, or None when it is over the limit.

    Never ``request.body``: past DATA_UPLOAD_MAX_MEMORY_SIZE it raises (a 400,
    not our 413), and it would hold the whole body in memory. A declared
    length over the limit is refused unread; an undeclared one (chunked) is
    read at most one byte past the limit.
    """
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _parse(raw: str) -> object:
    """Return the decoded JSON, or None when it is not JSON a notification could be."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[" * 50000
        return None
    return payload if _is_plain(payload) else None


def _is_plain(payload: object) -> bool:
    """Check, without recursing, that the JSON nests at most MAX_JSON_DEPTH and all its text is Unicode."""
    stack: list[tuple[object, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            # A lone surrogate ("\ud800") cannot be what Midtrans signed, nor be stored.
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return False
            continue
        if depth > MAX_JSON_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _verify(payload: object) -> _Verdict:
    """Validate the fields and the signature; the first failure is the verdict (the order is looked up later)."""
    verdict = _Verdict()
    try:
        if payload is None:
            raise MalformedNotification("body is not valid JSON (or nests too deep, or is not Unicode)")
        observation = observation_from_payload(payload, require_signature=True)
        verdict.signature_valid = signature_is_valid(payload, settings.MIDTRANS["SERVER_KEY"])
        if not verdict.signature_valid:
            raise InvalidSignature("signature_key does not match")
        if clean_text(observation.order_id) != observation.order_id:
            # No order number holds a NUL; PostgreSQL would refuse even to look it up.
            raise UnknownOrder(f"unknown order {observation.order_id[:64]!r}")
        verdict.observation = observation
    except ApplicationError as exc:
        verdict.error = exc
    return verdict


def _summary(payload: object) -> dict[str, str]:
    """Return what the log may say about a body: never the body itself, which anyone can make huge."""
    if not isinstance(payload, dict):
        return {}
    return {name: clean_text(payload.get(name))[:64] for name in ("order_id", "transaction_status")}


def _store_failed(record: dict[str, Any], payload: object, exc: Exception) -> int | None:
    """Store a verified notification whose transaction failed (nothing of it was kept) as ``error``."""
    logger.warning("Notification not applied", extra={"error": str(exc)[:200]})
    try:
        event = event_services.payment_event_record(source=EventSource.WEBHOOK, signature_valid=True, payload=payload,
                                                    **record)
        event_services.payment_event_fail(event_id=event.pk, error=exc)
    except DatabaseError:
        logger.exception("Could not store notification")
        return None
    return event.pk


def _fail(event_id: int, exc: Exception) -> None:
    logger.warning("Notification stored but not applied", extra={"event_id": event_id, "error": str(exc)})
    try:
        event_services.payment_event_fail(event_id=event_id, error=exc)
    except DatabaseError:
        logger.exception("Could not mark event %s as failed", event_id)


def _answer(status: int, data: dict[str, Any]) -> JsonResponse:
    metrics.webhooks.labels(status=str(status)).inc()
    return JsonResponse(data, status=status)


def safe_headers(request: HttpRequest) -> dict[str, str]:
    """Return the request's headers without credentials."""
    return {k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}
