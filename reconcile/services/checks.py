"""One payment at a time: ask Midtrans and apply its answer, schedule the next check, re-apply a notification.

Every status change goes through ``checkout.services`` (the one writer), so
it is audited, monotonic and pushed live like a webhook's.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from checkout import selectors as checkout_selectors
from checkout.errors import ApplicationError, GatewayError, GatewayUnavailable, MalformedNotification, UnknownOrder
from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.observations import observation_from_payload
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from checkout.states import OPEN_PAYMENT_STATUSES
from reconcile import conf, schedule
from reconcile.models import NotificationRetry
from reconcile.runner import Run

logger = logging.getLogger("paywatch.reconcile")


@dataclass
class Counts:
    """How the checks of a run or a cleanup ended, as far as both count them alike."""

    expired: int = 0       # overdue payments Midtrans confirmed unpaid, expired here and there
    errors: int = 0        # checks that failed for another reason (recorded, retried later)
    unavailable: int = 0   # calls that found Midtrans down, slow, rate-limiting or answering garbage
    skipped: int = 0       # payments left for the next run (deadline or open circuit)
    duration: float = 0.0


def payment_reconcile(*, payment: Payment, run: Run, source: str = EventSource.RECONCILE) -> str | None:
    """Ask Midtrans about one payment; apply the answer and schedule the next check in the same transaction.

    Return "fixed", "ok", "unavailable" or "error"; None when the run gave no permit.
    """
    if not run.permit():
        return None
    try:
        transition = payment_services.payment_ask_midtrans(payment=payment, source=source,
                                                           next_check=payment_next_check_at)
    except GatewayUnavailable as exc:
        run.circuit.record(unavailable=True)
        # Never a failure: the payment is left as it is and asked about again later.
        payment_schedule_next(payment=payment, delay=timedelta(seconds=conf.outage_backoff_seconds()))
        logger.info("Midtrans unavailable for a reconcile check", extra={"order": payment.order.number,
                                                                       "error": exc.message})
        return "unavailable"
    except GatewayError as exc:
        # A refusal (a wrong server key's 401) is as systemic as an outage: it opens the circuit too.
        run.circuit.record(unavailable=True)
        logger.warning("Midtrans refused a reconcile check", extra={"order": payment.order.number,
                                                                    "error": exc.message})
        payment_schedule_next(payment=payment, delay=timedelta(seconds=conf.outage_backoff_seconds()))
        return "error"
    except Exception:
        run.circuit.record(unavailable=False)
        logger.exception("Reconcile check failed", extra={"order": payment.order.number})
        payment_schedule_next(payment=payment)
        return "error"
    run.circuit.record(unavailable=False)
    return "fixed" if transition.changed else "ok"


def payment_next_check_at(payment: Payment, *, status: str | None = None,
                          delay: timedelta | None = None) -> datetime | None:
    """Return when the reconcile asks about a payment next: after ``delay``, else by its age; None once closed."""
    now = timezone.now()
    if (status or payment.status) not in OPEN_PAYMENT_STATUSES:
        return None
    if delay is not None:
        return now + delay
    return schedule.next_check_at(created_at=payment.created_at, now=now, expires_at=payment.expires_at)


def payment_schedule_next(*, payment: Payment, status: str | None = None, delay: timedelta | None = None) -> None:
    """Set when the reconcile asks about a payment next (nothing once it is no longer open)."""
    at = payment_next_check_at(payment, status=status, delay=delay)
    Payment.objects.filter(pk=payment.pk).update(next_check_at=at)


def notification_reapply(*, event: PaymentEvent, run: Run) -> str:
    """Apply a stored webhook event again through the one service; record the attempt and outcome."""
    retry, _ = NotificationRetry.objects.get_or_create(event=event)
    retry.attempts += 1
    retry.last_attempt_at = timezone.now()
    try:
        observation = observation_from_payload(json.loads(event.raw_body))
        payment = checkout_selectors.payment_for_order_number(observation.order_id)
        # payment_apply_with_confirmation may confirm a reversal with the status API: that is a call.
        if not run.permit():
            return "no_permit"
        transition = payment_services.payment_apply_with_confirmation(
            payment=payment, observation=observation, source=EventSource.RECONCILE, event_id=event.pk
        )
        retry.last_outcome = transition.outcome
        run.circuit.record(unavailable=False)
    except (ValueError, MalformedNotification, UnknownOrder) as exc:
        # It will not get better: settle the event and stop retrying it.
        outcome = EventOutcome.UNKNOWN_ORDER if isinstance(exc, UnknownOrder) else EventOutcome.ERROR
        event_services.payment_event_close(event_id=event.pk, outcome=outcome,
                                              detail=f"re-apply gave up: {exc}")
        retry.attempts = max(retry.attempts, conf.MAX_REAPPLY_ATTEMPTS)
        retry.last_outcome = outcome
    except Exception as exc:
        run.circuit.record(unavailable=isinstance(exc, GatewayUnavailable))
        logger.warning("Re-applying a stored notification failed", exc_info=not isinstance(exc, ApplicationError),
                       extra={"event_id": event.pk, "attempt": retry.attempts})
        event_services.payment_event_fail(event_id=event.pk, error=exc)
        retry.last_outcome = EventOutcome.ERROR
    finally:
        retry.save()
    logger.info("Re-applied a stored notification",
                extra={"event_id": event.pk, "outcome": retry.last_outcome, "attempt": retry.attempts})
    return retry.last_outcome
