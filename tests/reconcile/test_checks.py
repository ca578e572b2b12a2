"""One payment's check: nothing written before Midtrans answers, then its answer stored, applied and scheduled."""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checkout import gateway
from checkout.errors import GatewayUnavailable, TransactionNotFound
from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from checkout.observations import Observation, observation_from_payload
from checkout.services import payments as payment_services
from reconcile import conf
from reconcile.runner import Circuit, Run
from reconcile.services import checks

WRITES = ("INSERT", "UPDATE", "DELETE")


def writes(queries: list[dict]) -> list[str]:
    return [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith(WRITES)]


def status_answer(number: str, transaction_status: str) -> Observation:
    return observation_from_payload({
        "order_id": number, "status_code": "201", "gross_amount": "85000.00", "currency": "IDR",
        "transaction_status": transaction_status, "transaction_id": "0c6d8f2a-6fd4-4f15-9b2d-1a8c3e0f4c11",
        "payment_type": "bank_transfer", "va_numbers": [{"bank": "bca", "va_number": "12345678901"}]})


class Midtrans:
    """Midtrans's status API, faked: answers ``answer(number)``; notes what was written before the call, and when."""

    def __init__(self, queries: CaptureQueriesContext) -> None:
        self.queries = queries
        self.answer: Callable[[str], Observation] = lambda number: status_answer(number, "pending")
        self.written_before: list[str] = []
        self.called_at: datetime | None = None

    def __call__(self, number: str) -> Observation:
        self.written_before += writes(self.queries.captured_queries)
        self.called_at = timezone.now()
        return self.answer(number)

    def written_after(self) -> list[str]:
        return writes(self.queries.captured_queries)[len(self.written_before):]


@pytest.fixture
def payment(make_order) -> Payment:
    return Payment.objects.select_related("order").get(order=make_order())


@pytest.fixture
def midtrans(payment, monkeypatch) -> Iterator[Midtrans]:
    """The fake status API, counting the queries made from now on (the payment exists already)."""
    with CaptureQueriesContext(connection) as queries:
        api = Midtrans(queries)
        monkeypatch.setattr(gateway, "transaction_status", api)
        yield api


@pytest.fixture
def run() -> Run:
    """A run with no ceiling and a circuit of its own: its permits need no Redis."""
    return Run(budget_seconds=60, max_calls_per_second=0, concurrency=1, circuit=Circuit())


@pytest.mark.parametrize(("answer", "result", "outcome", "status", "asked_again_after"), [
    # Paid: closed, never asked again.
    ("settlement", "fixed", EventOutcome.APPLIED, "success", None),
    # Still pending, its VA number new: a fresh payment, asked again in a minute.
    ("pending", "ok", EventOutcome.DUPLICATE, "pending", timedelta(minutes=1)),
])
def test_a_check_writes_nothing_before_the_call_then_stores_applies_and_schedules_once(
    payment, run, midtrans, answer, result, outcome, status, asked_again_after
) -> None:
    """The event is inserted once, already holding what it changed; one UPDATE records the check and the next one."""
    midtrans.answer = lambda number: status_answer(number, answer)
    assert checks.payment_reconcile(payment=payment, run=run) == result
    assert midtrans.written_before == []
    after = midtrans.written_after()
    event_writes = [sql for sql in after if "paymentevent" in sql]
    assert len(event_writes) == 1 and event_writes[0].startswith("INSERT")
    check_writes = [sql for sql in after if "next_check_at" in sql]
    assert len(check_writes) == 1 and "last_checked_at" in check_writes[0]
    payment.refresh_from_db()
    assert (payment.status, payment.va_number) == (status, "12345678901")
    assert payment.last_checked_at <= midtrans.called_at  # the call's start
    if asked_again_after is None:
        assert payment.next_check_at is None
    else:
        assert midtrans.called_at + asked_again_after <= payment.next_check_at <= timezone.now() + asked_again_after
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.outcome, event.status_before, event.status_after) == (outcome, "pending", status)


def test_no_method_chosen_is_recorded_and_scheduled_with_nothing_written_before_the_call(payment, run, midtrans):
    def not_found(number: str) -> Observation:
        raise TransactionNotFound("Transaction doesn't exist.", {"response": {"status_code": "404"}})

    midtrans.answer = not_found
    assert checks.payment_reconcile(payment=payment, run=run) == "ok"
    assert midtrans.written_before == []
    assert len(midtrans.written_after()) == 2  # the event, and the check's times
    payment.refresh_from_db()
    assert payment.last_checked_at <= midtrans.called_at < payment.next_check_at
    assert PaymentEvent.objects.get(payment=payment).outcome == EventOutcome.DUPLICATE


def test_an_unanswered_call_still_records_when_it_started_and_backs_off(payment, run, midtrans):
    def down(number: str) -> Observation:
        raise GatewayUnavailable("Midtrans answered 503")

    midtrans.answer = down
    assert checks.payment_reconcile(payment=payment, run=run) == "unavailable"
    payment.refresh_from_db()
    assert payment.last_checked_at <= midtrans.called_at
    backoff = timedelta(seconds=conf.outage_backoff_seconds())
    assert midtrans.called_at + backoff <= payment.next_check_at <= timezone.now() + backoff
    assert not PaymentEvent.objects.filter(payment=payment).exists()


def test_an_answer_whose_check_cannot_be_recorded_is_not_applied_half_way(payment, midtrans):
    """The transaction's last write fails: the status change rolls back with it; the answer is kept as an error."""
    midtrans.answer = lambda number: status_answer(number, "settlement")

    def broken(payment: Payment) -> None:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        payment_services.payment_ask_midtrans(payment=payment, source=EventSource.RECONCILE, next_check=broken)
    payment.refresh_from_db()
    assert (payment.status, payment.version, payment.va_number) == ("pending", 1, "")
    assert payment.last_checked_at <= midtrans.called_at
    event = PaymentEvent.objects.get(payment=payment)
    assert event.outcome == EventOutcome.ERROR and "database went away" in event.detail
    assert event.transaction_status == "settlement"  # Midtrans's answer, stored for whoever looks
