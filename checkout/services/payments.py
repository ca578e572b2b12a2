"""Writes to payments: ``_apply_locked`` is the only status writer.

Everything that learns what Midtrans says about a payment ends here:
- ``payment_apply_observation``: apply what Midtrans said (locked, monotonic,
  idempotent, audited); a move out of a paid state comes back needing confirmation;
- ``payment_notification_apply``: the same for a verified notification, stored
  and applied in one transaction;
- ``payment_apply_with_confirmation``: apply, and confirm a move out of a paid
  state with Midtrans first;
- ``payment_confirm_with_midtrans`` / ``payment_ask_midtrans``: ask the status
  API now and apply its answer (which is its own confirmation).

A committed change is announced by ``_announce_change`` on commit: that is
where the live push to the customer's page starts.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from checkout import amounts, display, gateway, metrics
from checkout.errors import TransactionNotFound, UnknownOrder
from checkout.models import EventOutcome, Order, Payment, PaymentEvent
from checkout.observations import Observation
from checkout.services import events
from checkout.services.events import raw_json, stored_headers
from checkout.signals import payment_status_changed
from checkout.statements import payment_locked, row_insert, row_update
from checkout.states import CLOSED_UNPAID_STATUSES, PaymentStatus, decide, payment_status_for
from checkout.text import clean_text, fit

logger = logging.getLogger("paywatch.payments")

_DETAIL_COLUMNS = ("payment_type", "bank", "va_number", "bill_key", "biller_code", "payment_code", "store")
# When to ask Midtrans about a payment next, given the payment as it now stands (None: never again).
NextCheck = Callable[[Payment], datetime | None]


@dataclass(frozen=True)
class Transition:
    """The result of applying one observation to one payment."""

    event_id: int | None
    outcome: str
    status_before: str
    status_after: str
    version: int
    needs_confirmation: bool = False
    payment_id: int | None = None

    @property
    def changed(self) -> bool:
        return self.outcome == EventOutcome.APPLIED


@transaction.atomic
def payment_apply_observation(
    *, payment_id: int, observation: Observation, source: str, event_id: int, confirmed: bool = False
) -> Transition:
    """Apply what Midtrans said to a payment: locked, monotonic, idempotent, audited.

    A reversal out of a paid state is only applied when ``confirmed`` (the
    caller asked Midtrans's status API); otherwise the transition comes back
    with ``needs_confirmation`` and nothing changes.
    """
    payment = payment_locked(pk=payment_id)
    return _apply_locked(payment, observation, source=source, event=PaymentEvent(pk=event_id), confirmed=confirmed)


def payment_notification_apply(
    *,
    observation: Observation,
    source: str,
    raw_body: str,
    raw_size: int,
    headers: dict[str, str],
    client_ip: str | None,
) -> Transition:
    """Store a verified notification with its raw body and apply it, in one transaction.

    One locking query fetches the payment and its order by the order number;
    the event is inserted once, already holding what it changed; so the
    notification is stored if and only if it was applied. Raises UnknownOrder
    (nothing stored) when no order has that number; any other exception
    leaves nothing stored either, and the caller records the body as an
    error. A move out of a paid state comes back with ``needs_confirmation``
    (stored as stale): the caller confirms it with ``payment_confirm_with_midtrans``,
    outside this transaction, since it is a call to Midtrans.
    """
    with transaction.atomic():
        try:
            payment = payment_locked(order_number=observation.order_id)
        except Payment.DoesNotExist:
            raise UnknownOrder(f"unknown order {observation.order_id}", {"order_id": observation.order_id}) from None
        event = PaymentEvent(
            source=source, raw_body=clean_text(raw_body), raw_size=raw_size,
            headers=stored_headers(headers, trusted=True), client_ip=client_ip, signature_valid=True,
        )
        return _apply_locked(payment, observation, source=source, event=event, confirmed=False)


def _apply_locked(
    payment: Payment, observation: Observation, *, source: str, event: PaymentEvent, confirmed: bool
) -> Transition:
    """Apply an observation to a payment locked (with its order) by the caller's transaction.

    ``event`` is either stored already (only its pk is set: it is updated) or
    new (it is inserted once, with the outcome). Writes only what changed.
    """
    order = payment.order
    before = payment.status
    target = payment_status_for(observation.transaction_status, observation.fraud_status)

    def finish(outcome: str, detail: str = "", needs_confirmation: bool = False) -> Transition:
        fields = {
            "payment": payment, "order_number": fit(PaymentEvent, "order_number", order.number),
            "status_before": before, "status_after": payment.status, "version_after": payment.version,
            "outcome": outcome, "detail": clean_text(detail), "processed_at": timezone.now(),
            "transaction_status": fit(PaymentEvent, "transaction_status", observation.transaction_status),
            "fraud_status": fit(PaymentEvent, "fraud_status", observation.fraud_status),
        }
        for name, value in fields.items():
            setattr(event, name, value)
        if event.pk is None:
            row_insert(event)
        else:
            row_update(event, fields)
        metrics.observations.labels(source=source, outcome=outcome).inc()
        return Transition(event.pk, outcome, before, payment.status, payment.version, needs_confirmation,
                          payment.pk)

    fee = amounts.buyer_fee(observation, payment.amount)  # None: the amount does not pay this order
    if fee is None or (observation.currency and observation.currency != payment.currency):
        logger.warning(
            "Amount mismatch", extra={"order": order.number, "expected": str(payment.amount),
                                      "got": str(observation.gross_amount), "currency": observation.currency},
        )
        return finish(EventOutcome.AMOUNT_MISMATCH, f"expected {payment.amount} {payment.currency}, "
                      f"got {observation.gross_amount} {observation.currency or '?'}")
    if target is None:
        return finish(EventOutcome.ERROR, f"unknown Midtrans status {observation.transaction_status!r}")

    details_changed = _copy_details(payment, observation)
    if fee and payment.buyer_fee != fee:
        payment.buyer_fee = fee
        details_changed.append("buyer_fee")
    if target == before:
        if set(details_changed) & set(_DETAIL_COLUMNS):
            # A method chosen (a VA number, a payment code): the open waiting page must show it, and
            # pages drop anything not newer, so it is a change with a version of its own.
            payment.version += 1
            details_changed.append("version")
            transaction.on_commit(lambda: _announce_change(payment, order, source, event.pk))
        if details_changed:  # a duplicate that only repeats what is stored writes nothing but its event
            row_update(payment, [*details_changed, "updated_at"])
        return finish(EventOutcome.DUPLICATE, "status unchanged")
    decision = decide(before, target, order.status)
    if not decision.allowed:
        if target == PaymentStatus.SUCCESS and before in CLOSED_UNPAID_STATUSES:
            # Money arrived for an order that had already ended unpaid: never
            # reopened automatically, but someone must refund or honour it.
            logger.error("Payment received for a closed order", extra={
                "order": order.number, "order_status": order.status, "payment_status": before,
                "transaction_status": observation.transaction_status, "source": source, "event_id": event.pk})
            metrics.paid_after_close.inc()
        return finish(EventOutcome.STALE, f"{before} → {target} is not allowed (order {order.status})")
    if decision.needs_confirmation and not confirmed:
        return finish(EventOutcome.STALE, f"{before} → {target} needs confirmation with Midtrans",
                      needs_confirmation=True)

    payment.status = target
    payment.version += 1
    changed = [*details_changed, "status", "version", "updated_at"]
    if target == PaymentStatus.SUCCESS and payment.paid_at is None:
        payment.paid_at = timezone.now()
        changed.append("paid_at")
    row_update(payment, changed)
    if order.status != decision.order_status:
        order.status = decision.order_status
        row_update(order, ["status", "updated_at"])
    transition = finish(EventOutcome.APPLIED, f"{before} → {target}")
    event_id = transition.event_id
    logger.info(
        "Auto-updated payment",
        extra={"order": order.number, "from": before, "to": target, "order_status": order.status,
               "version": payment.version, "source": source, "event_id": event_id},
    )
    metrics.transitions.labels(source=source, to=target).inc()
    transaction.on_commit(lambda: _announce_change(payment, order, source, event_id))
    return transition


def payment_apply_with_confirmation(
    *, payment: Payment, observation: Observation, source: str, event_id: int
) -> Transition:
    """Apply an observation; confirm a move out of a paid state with the status API before applying it."""
    transition = payment_apply_observation(
        payment_id=payment.pk, observation=observation, source=source, event_id=event_id
    )
    if not transition.needs_confirmation:
        return transition
    return payment_confirm_with_midtrans(payment_id=payment.pk, source=source, event_id=event_id)


def payment_confirm_with_midtrans(*, payment_id: int, source: str, event_id: int) -> Transition:
    """Ask Midtrans's status API about a move out of a paid state (event ``event_id``) and apply its answer."""
    payment = Payment.objects.select_related("order").get(pk=payment_id)
    confirmed = gateway.transaction_status(payment.order.number)
    confirm_event = events.payment_event_record(
        source=source, payment=payment, raw_body=raw_json(confirmed.raw), payload=confirmed.raw,
        detail=f"confirmation of event #{event_id}",
    )
    return payment_apply_observation(
        payment_id=payment_id, observation=confirmed, source=source, event_id=confirm_event.pk, confirmed=True
    )


def payment_ask_midtrans(*, payment: Payment, source: str, next_check: NextCheck | None = None) -> Transition:
    """Ask Midtrans for the transaction's status now and apply the answer.

    The call is made outside any transaction; then one transaction locks the
    payment, stores the answer as an event, applies it and records the check
    (``last_checked_at``: when the call started; ``next_check_at``, when
    ``next_check`` is given, from the payment as applied). Raises
    GatewayUnavailable when Midtrans cannot answer; a transaction Midtrans
    does not know yet (no method chosen) is recorded and changes nothing; an
    answer that fails to apply is stored with the error, and the error raised.
    """
    asked_at = timezone.now()
    try:
        observation = gateway.transaction_status(payment.order.number)
    except TransactionNotFound as exc:
        event = events.payment_event_record(
            source=source, payment=payment, raw_body=raw_json(exc.extra.get("response", {})),
            outcome=EventOutcome.DUPLICATE, detail="Midtrans has no transaction yet (no payment method chosen)",
        )
        _record_check(payment, asked_at=asked_at, next_check=next_check)
        return Transition(event.pk, EventOutcome.DUPLICATE, payment.status, payment.status, payment.version)
    except Exception:
        _record_check(payment, asked_at=asked_at)  # when to ask again after a failure is the caller's call
        raise
    answer = {"source": source, "raw_body": raw_json(observation.raw), "payload": observation.raw}
    try:
        with transaction.atomic():
            locked = payment_locked(pk=payment.pk)
            event = events.payment_event_new(payment=locked, **answer)
            # The status API is the confirmation itself: no second call for a reversal.
            transition = _apply_locked(locked, observation, source=source, event=event, confirmed=True)
            _record_check(locked, asked_at=asked_at, next_check=next_check)
            return transition
    except Exception as exc:
        events.payment_event_fail(event_id=events.payment_event_record(payment=payment, **answer).pk, error=exc)
        _record_check(payment, asked_at=asked_at)
        raise


def _record_check(payment: Payment, *, asked_at: datetime, next_check: NextCheck | None = None) -> None:
    """Record that Midtrans was asked about ``payment`` at ``asked_at``, and when to ask next (``next_check``)."""
    payment.last_checked_at = asked_at
    fields = ["last_checked_at"]
    if next_check is not None:
        payment.next_check_at = next_check(payment)
        fields.append("next_check_at")
    row_update(payment, fields)


def _copy_details(payment: Payment, observation: Observation) -> list[str]:
    """Copy what Midtrans said about the method onto the payment; return the columns that changed."""
    values = {name: observation.details.get(name) for name in _DETAIL_COLUMNS}
    values = {name: fit(Payment, name, value) for name, value in values.items() if value}
    values["transaction_status"] = fit(Payment, "transaction_status", observation.transaction_status)
    values["fraud_status"] = fit(Payment, "fraud_status", observation.fraud_status)
    if observation.transaction_id:
        values["midtrans_transaction_id"] = fit(Payment, "midtrans_transaction_id", observation.transaction_id)
    changed = [name for name, value in values.items() if getattr(payment, name) != value]
    for name in changed:
        setattr(payment, name, values[name])
    return changed


def _announce_change(payment: Payment, order: Order, source: str, event_id: int) -> None:
    """Tell whoever listens that a committed change happened (run by ``transaction.on_commit``).

    The live push hangs off this: ``payment_status_changed`` is received by
    ``realtime.receivers.broadcast_payment_status``, which sends the
    ``payment.status`` message to the order's channel group, where the
    waiting page's websocket (``realtime.consumers``) and event stream
    (``realtime.sse``) pick it up. A push lost on the way is caught up by the
    page's heartbeat, which carries the version it shows.
    """
    results = payment_status_changed.send_robust(
        sender=Payment, payment_id=payment.pk, order_number=order.number, order_status=order.status,
        payment_status=payment.status, version=payment.version, source=source, event_id=event_id,
        details=display.payment_details(payment),
    )
    for receiver, result in results:
        if isinstance(result, Exception):
            logger.error("payment_status_changed receiver failed", exc_info=result,
                         extra={"receiver": repr(receiver), "order": order.number})


def payment_refresh_claim(*, payment_id: int) -> float:
    """Claim the right to ask Midtrans for this payment now; return 0 or seconds to wait.

    One conditional UPDATE, so concurrent clicks in several processes get one call.
    """
    now = timezone.now()
    interval = timedelta(seconds=settings.REFRESH_MIN_INTERVAL_SECONDS)
    claimed = Payment.objects.filter(
        Q(last_refresh_at__isnull=True) | Q(last_refresh_at__lte=now - interval), pk=payment_id
    ).update(last_refresh_at=now)
    if claimed:
        return 0.0
    last = Payment.objects.values_list("last_refresh_at", flat=True).get(pk=payment_id)
    return max(1.0, (last + interval - now).total_seconds())
