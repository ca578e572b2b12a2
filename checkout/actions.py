"""What a merchant asks Midtrans to do with a payment: approve, deny, cancel, refund.

Each action is allowed by ``states.ACTIONS`` (never by ifs here), sent to
Midtrans through ``checkout.gateway``, and then Midtrans's status answer is
applied through the one writer (``payment_services.payment_apply_observation``,
``confirmed=True`` since it is the status API itself), as an ``admin`` event:
audited, monotonic, pushed live. The webhook Midtrans sends for the same move
races with this and lands as a duplicate.

Refunds carry Midtrans's ``refund_key``. A ``Refund`` row is written before
the call, so the same request always sends the same key: a retry after a lost
answer is answered by Midtrans with the refund it already made, and a repeat
of a refund already made is not sent at all.
"""

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from checkout import gateway
from checkout.errors import ApplicationError, GatewayError, GatewayRejected, TransactionNotFound
from checkout.models import EventOutcome, EventSource, Payment, Refund, RefundStatus
from checkout.services import events as event_services
from checkout.services import payments as payment_services
from checkout.statements import payment_locked
from checkout.states import ACTIONS, PaymentAction, actions_for

logger = logging.getLogger("paywatch.payments")


class ActionRefused(ApplicationError):
    """The action cannot be done (the state table, the refund's arithmetic, or Midtrans said no); nothing changed."""


@dataclass(frozen=True)
class ActionResult:
    """What an action did: Midtrans's answer and the transition its status caused (None if unread)."""

    action: str
    order_number: str
    answer: dict[str, Any]
    transition: payment_services.Transition | None
    refund: Refund | None = None
    sent: bool = True  # False: a repeat of a refund already made; nothing was sent to Midtrans

    @property
    def message(self) -> str:
        """Return one line for a person: what Midtrans said and what changed here."""
        if not self.sent and self.refund is not None:
            return (f"{self.order_number}: refund #{self.refund.number} of {self.refund.amount:.0f} was already made "
                    f"(key {self.refund.refund_key}); nothing sent. Pass --again to refund that amount once more.")
        midtrans = self.answer.get("transaction_status") or "?"
        if self.transition is None:
            return (f"{self.order_number}: {self.action} accepted by Midtrans ({midtrans}), but its status could "
                    f"not be read now; the notification or the next reconcile will apply it")
        t = self.transition
        return f"{self.order_number}: {self.action} → Midtrans {midtrans}; payment {t.status_before} → " \
               f"{t.status_after} ({t.outcome})"


def payment_approve(*, payment_id: int) -> ActionResult:
    """Accept a challenged card payment at Midtrans and apply the result."""
    return _act(payment_id, PaymentAction.APPROVE, gateway.transaction_approve)


def payment_deny(*, payment_id: int) -> ActionResult:
    """Deny a challenged card payment at Midtrans and apply the result (the order stays payable)."""
    return _act(payment_id, PaymentAction.DENY, gateway.transaction_deny)


def payment_cancel(*, payment_id: int) -> ActionResult:
    """Cancel a pending or challenged payment at Midtrans and apply the result."""
    return _act(payment_id, PaymentAction.CANCEL, gateway.transaction_cancel)


def payment_refund(
    *, payment_id: int, amount: Decimal | None = None, reason: str = "", again: bool = False
) -> ActionResult:
    """Refund ``amount`` (default: all that remains) at Midtrans with a refund_key; apply the result.

    Raises ActionRefused, with nothing sent, when the payment is not refundable
    or the amount is more than remains; ActionRefused when Midtrans refuses
    (e.g. 412, not settled yet); GatewayUnavailable when it could not answer
    (the refund stays ``requested`` and the next attempt sends the same key).
    """
    refund = _refund_claim(payment_id=payment_id, amount=amount, reason=reason, again=again)
    payment = Payment.objects.select_related("order").get(pk=payment_id)
    number = payment.order.number
    if refund.status == RefundStatus.DONE:
        return ActionResult(PaymentAction.REFUND, number, {}, None, refund, sent=False)
    try:
        answer = gateway.transaction_refund(number, refund_key=refund.refund_key, amount=int(refund.amount),
                                            reason=refund.reason)
    except (GatewayRejected, TransactionNotFound) as exc:
        Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.REFUSED, detail=exc.message)
        raise ActionRefused(_refused_text(number, PaymentAction.REFUND, exc), {"order": number}) from None
    Refund.objects.filter(pk=refund.pk).update(
        status=RefundStatus.DONE, midtrans_refund_id=str(answer.get("refund_chargeback_id") or "")[:64],
        detail=str(answer.get("status_message") or "")[:500],
    )
    refund.refresh_from_db()
    logger.info("Refund made at Midtrans", extra={"order": number, "refund_key": refund.refund_key,
                                                  "amount": str(refund.amount)})
    return ActionResult(PaymentAction.REFUND, number, answer, _apply_status(payment, PaymentAction.REFUND, answer),
                        refund)


def refund_remaining(payment: Payment) -> Decimal:
    """Return how much of the payment's amount has not been refunded (refunds Midtrans confirmed)."""
    refunded = sum((r.amount for r in payment.refunds.filter(status=RefundStatus.DONE)), Decimal("0"))
    return payment.amount - refunded


def refund_key_for(order_number: str, number: int, amount: Decimal) -> str:
    """Return the refund_key of a payment's ``number``-th refund of ``amount``: the same request, the same key."""
    return f"{order_number}-refund-{number}-{int(amount)}"


def _act(payment_id: int, action: PaymentAction, call: Any) -> ActionResult:
    payment = Payment.objects.select_related("order").get(pk=payment_id)
    _check_allowed(payment, action)
    number = payment.order.number
    try:
        answer = call(number)
    except (GatewayRejected, TransactionNotFound) as exc:
        raise ActionRefused(_refused_text(number, action, exc), {"order": number}) from None
    logger.info("Payment action done at Midtrans", extra={"order": number, "action": str(action)})
    return ActionResult(action, number, answer, _apply_status(payment, action, answer))


def _check_allowed(payment: Payment, action: PaymentAction) -> None:
    if action not in actions_for(payment.status, payment.order.status):
        offered = ", ".join(sorted(ACTIONS[action]))
        raise ActionRefused(f"{payment.order.number}: cannot {action} a payment that is {payment.status} (order "
                            f"{payment.order.status}); {action} is for payments that are {offered}",
                            {"order": payment.order.number})


def _refund_claim(*, payment_id: int, amount: Decimal | None, reason: str, again: bool) -> Refund:
    """Return the Refund row for this request: an unresolved one to retry, a made one (a repeat), or a new one."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                payment = payment_locked(pk=payment_id)
                _check_allowed(payment, PaymentAction.REFUND)
                return _refund_row(payment, amount, reason, again)
        except IntegrityError:
            continue  # a concurrent command took this number: read again and join its request
    raise ActionRefused("could not record the refund; try again")


def _refund_row(payment: Payment, amount: Decimal | None, reason: str, again: bool) -> Refund:
    number = payment.order.number
    refunds = list(payment.refunds.all())
    remaining = refund_remaining(payment)
    wanted = remaining if amount is None else Decimal(amount)
    unresolved = [r for r in refunds if r.status == RefundStatus.REQUESTED]
    if unresolved:
        # Midtrans may have made it: only the same request (the same key) may go out now.
        if unresolved[0].amount == wanted:
            return unresolved[0]
        raise ActionRefused(f"{number}: refund #{unresolved[0].number} of {unresolved[0].amount:.0f} has no answer "
                            f"from Midtrans yet; repeat that refund (--amount {unresolved[0].amount:.0f}) first")
    if wanted != wanted.to_integral_value() or wanted <= 0:
        raise ActionRefused(f"{number}: the refund amount must be a whole number of rupiah above 0")
    if wanted > remaining:
        raise ActionRefused(f"{number}: cannot refund {wanted:.0f}; only {remaining:.0f} of {payment.amount:.0f} "
                            f"remains to refund")
    made = [r for r in refunds if r.status == RefundStatus.DONE and r.amount == wanted]
    if made and not again:
        return made[-1]
    sequence = max((r.number for r in refunds), default=0) + 1
    return Refund.objects.create(payment=payment, number=sequence, amount=wanted, reason=reason[:255],
                                 refund_key=refund_key_for(number, sequence, wanted))


def _apply_status(payment: Payment, action: str, answer: dict[str, Any]) -> payment_services.Transition | None:
    """Ask Midtrans for the status after the action and apply it as an ``admin`` event; None if unreadable."""
    try:
        observation = gateway.transaction_status(payment.order.number)
    except GatewayError as exc:
        # The action is done at Midtrans; its notification (or the reconcile) applies it later.
        event_services.payment_event_record(
            source=EventSource.ADMIN, payment=payment, raw_body=_json({"action": action, "answer": answer}),
            payload=answer, outcome=EventOutcome.ERROR,
            detail=f"{action} accepted by Midtrans; its status could not be read ({exc.message})",
        )
        logger.warning("Status after a payment action could not be read",
                       extra={"order": payment.order.number, "action": action, "error": exc.message})
        return None
    event = event_services.payment_event_record(
        source=EventSource.ADMIN, payment=payment, payload=observation.raw,
        raw_body=_json({"action": action, "answer": answer, "status": observation.raw}),
    )
    try:
        return payment_services.payment_apply_observation(
            payment_id=payment.pk, observation=observation, source=EventSource.ADMIN, event_id=event.pk,
            confirmed=True,
        )
    except Exception as exc:
        event_services.payment_event_fail(event_id=event.pk, error=exc)
        raise


def _refused_text(number: str, action: str, exc: GatewayError) -> str:
    if isinstance(exc, TransactionNotFound):
        return (f"{number}: Midtrans has no transaction yet (the customer has not chosen a payment method); "
                f"nothing to {action}")
    status = exc.extra.get("http_status")
    hint = ""
    if action == PaymentAction.REFUND and status == 412:
        hint = " — only a settled payment can be refunded (cancel one that is captured but not settled)"
    return f"{number}: Midtrans refused to {action} ({status or '?'}: {exc.message}){hint}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)

