"""The Midtrans HTTP notification endpoint.

Answers (Midtrans retries anything but 2xx):
  200 applied, duplicate, stale or amount_mismatch (recorded, never paid);
  400 not JSON, or a required field missing; 403 bad signature;
  404 unknown order; 413 body too large;
  503 the event could not be stored, the database is busy, a reversal could
      not be confirmed, or applying it failed (stored as ``error`` with the
      traceback; the reconcile re-applies it).
"""

import json
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from checkout import metrics, selectors, services
from checkout.errors import ApplicationError, GatewayError, InvalidSignature, MalformedNotification, UnknownOrder
from checkout.models import EventOutcome, EventSource, PaymentEvent
from checkout.observations import observation_from_payload
from checkout.signature import signature_is_valid

logger = logging.getLogger("paywatch.webhook")

_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key", "x-csrftoken"}
_ERROR_STATUS = {MalformedNotification: 400, InvalidSignature: 403, UnknownOrder: 404}
_ERROR_OUTCOME = {InvalidSignature: EventOutcome.INVALID_SIGNATURE, UnknownOrder: EventOutcome.UNKNOWN_ORDER}


@csrf_exempt
@require_POST
def midtrans_notification(request: HttpRequest) -> JsonResponse:
    """Store the notification, verify it, then apply it through the state machine."""
    body = request.body  # read before anything touches request.POST
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return _answer(413, {"error": f"body larger than {settings.WEBHOOK_MAX_BODY_BYTES} bytes"})
    raw = body.decode("utf-8", errors="replace")
    headers = safe_headers(request)
    ip = request.META.get("REMOTE_ADDR")
    payload = _parse(raw)
    logged = raw[:2000] if payload is None else payload
    logger.info("MIDTRANS WEBHOOK RECEIVED", extra={"ip": ip, "headers": headers, "payload": logged})
    try:
        event = services.payment_event_record(
            source=EventSource.WEBHOOK, raw_body=raw, headers=headers, client_ip=ip, payload=payload
        )
    except DatabaseError:
        logger.exception("Could not store notification")
        return _answer(503, {"error": "could not store the notification; retry later"})
    try:
        return _process(event, payload)
    except DatabaseError as exc:
        _fail(event, exc)
        return _answer(503, {"error": "database busy; retry later", "event_id": event.pk})
    except GatewayError as exc:
        _fail(event, exc)
        return _answer(503, {"error": f"could not confirm with Midtrans: {exc.message}", "event_id": event.pk})
    except Exception as exc:
        # A bug, not bad input: the body is stored with the traceback and the
        # reconcile re-applies it; Midtrans is told to retry as well.
        logger.exception("Applying a notification failed", extra={"event_id": event.pk})
        _fail(event, exc)
        return _answer(503, {"error": "could not apply the notification; it is stored and will be retried",
                             "event_id": event.pk})


def _process(event: PaymentEvent, payload: object) -> JsonResponse:
    try:
        if payload is None:
            raise MalformedNotification("body is not valid JSON")
        observation = observation_from_payload(payload, require_signature=True)
        valid = signature_is_valid(payload, settings.MIDTRANS["SERVER_KEY"])
        PaymentEvent.objects.filter(pk=event.pk).update(signature_valid=valid)
        if not valid:
            raise InvalidSignature("signature_key does not match")
        payment = selectors.payment_for_order_number(observation.order_id)
    except ApplicationError as exc:
        outcome = _ERROR_OUTCOME.get(type(exc), EventOutcome.ERROR)
        services.payment_event_close(event_id=event.pk, outcome=outcome, detail=exc.message)
        return _answer(_ERROR_STATUS.get(type(exc), 400), {"error": exc.message, **exc.extra, "event_id": event.pk})
    transition = services.payment_observe(
        payment=payment, observation=observation, source=EventSource.WEBHOOK, event_id=event.pk
    )
    return _answer(200, {
        "outcome": transition.outcome, "payment_status": transition.status_after,
        "version": transition.version, "event_id": event.pk,
    })


def _fail(event: PaymentEvent, exc: Exception) -> None:
    logger.warning("Notification stored but not applied", extra={"event_id": event.pk, "error": str(exc)})
    try:
        services.payment_event_fail(event_id=event.pk, error=exc)
    except DatabaseError:
        logger.exception("Could not mark event %s as failed", event.pk)


def _parse(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _answer(status: int, data: dict) -> JsonResponse:
    metrics.webhooks.labels(status=str(status)).inc()
    return JsonResponse(data, status=status)


def safe_headers(request: HttpRequest) -> dict[str, str]:
    """Return the request's headers without credentials."""
    return {k: v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}
