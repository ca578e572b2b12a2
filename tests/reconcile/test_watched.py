"""The watched fast lane: an open page on a payment Midtrans knows gets a silently settled payment with no click and
no scheduled run; one call per payment per interval; within the shared calls-per-second budget; stops at the end."""

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings
from websockets.sync.client import connect

from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from reconcile import budget, conf, watched
from tests.realtime.test_sse import EventStream, events_url, start_daphne
from tests.reconcile.conftest import wait_until

pytestmark = [pytest.mark.e2e]

WAIT = 15.0  # several ticks of the fast daphne's 1 s interval, or one webhook round trip


@pytest.fixture(scope="module")
def watched_web(stack) -> Iterator[str]:
    """A daphne whose open pages ask Midtrans every second."""
    web = start_daphne(stack, "watched", WATCHED_CHECK_SECONDS="1")
    yield web.url
    web.stop()


@pytest.fixture
def no_scheduled_run(redis_client: redis.Redis) -> Iterator[None]:
    """Hold the reconcile's lock: no scheduled (or manual) reconcile run can happen meanwhile."""
    redis_client.set(conf.LOCK_KEY, "held by the test", ex=120)
    yield
    redis_client.delete(conf.LOCK_KEY)


def method_chosen(stack, sim) -> object:
    """A checkout whose customer chose a VA (the pending webhook arrived: Midtrans knows the payment)."""
    checkout = stack.checkout()
    sim.sim("pending", checkout.number, notify="send")
    assert wait_until(lambda: Payment.objects.filter(order__number=checkout.number).exclude(payment_type="").exists())
    return checkout


def ws_url(web_url: str, checkout) -> str:
    return web_url.replace("http", "ws", 1) + f"/ws/orders/{checkout.number}/?t={checkout.token}"


def test_an_open_page_flips_with_no_click_and_no_scheduled_run(stack, sim, watched_web, no_scheduled_run) -> None:
    checkout = method_chosen(stack, sim)
    with connect(ws_url(watched_web, checkout), origin=watched_web, open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=WAIT))["payment_status"] == "pending"
        sim.sim("settle", checkout.number, notify="drop")  # the webhook is lost
        message = json.loads(socket.recv(timeout=WAIT))
    assert (message["payment_status"], message["order_status"], message["source"]) == (
        "success", "processing", "reconcile")
    applied = PaymentEvent.objects.get(order_number=checkout.number, outcome=EventOutcome.APPLIED,
                                       status_after="success")
    assert applied.source == EventSource.RECONCILE
    assert not PaymentEvent.objects.filter(order_number=checkout.number, source=EventSource.REFRESH).exists()


def test_an_open_event_stream_flips_too(stack, sim, watched_web, no_scheduled_run) -> None:
    checkout = method_chosen(stack, sim)
    with EventStream(events_url(watched_web, checkout.number, checkout.token)) as stream:
        assert stream.next_event()["data"]["payment_status"] == "pending"
        sim.sim("settle", checkout.number, notify="drop")
        event = stream.next_event(WAIT)
    assert (event["data"]["payment_status"], event["data"]["source"]) == ("success", "reconcile")


@pytest.mark.django_db(transaction=True)
def test_the_watch_stops_when_the_payment_ends_and_claims_once_per_interval(stack, sim, no_scheduled_run) -> None:
    """In-process: the task asks Midtrans, applies the settlement, and returns at its next tick."""
    checkout = method_chosen(stack, sim)
    sim.sim("settle", checkout.number, notify="drop")

    async def run() -> tuple[bool, bool]:
        await asyncio.wait_for(watched.watch(checkout.number), WAIT)  # returns only once the payment ended
        # The claim of this interval is held: a second tab, process or worker would not call now.
        return await watched._claim(checkout.number, 1), await watched._claim("another-order-" + checkout.number, 1)

    with override_settings(WATCHED_CHECK_SECONDS=1):
        again, other = asyncio.run(run())
    assert Payment.objects.get(order__number=checkout.number).status == "success"
    assert other is True
    calls = PaymentEvent.objects.filter(order_number=checkout.number, source=EventSource.RECONCILE)
    assert calls.count() == 1  # one status call did it; the next tick saw the end and stopped
    del again  # the claim may have expired by now (1 s); at-most-once is pinned by the next test


@pytest.mark.django_db(transaction=True)
def test_one_claim_per_payment_per_interval_whatever_the_number_of_tabs(stack) -> None:
    async def claims() -> list[bool]:
        return list(await asyncio.gather(*(watched._claim("CLAIM-TEST-1", 30) for _ in range(20))))

    redis.Redis.from_url(stack.redis_url).delete(watched.CLAIM_PREFIX + "CLAIM-TEST-1")
    assert sorted(asyncio.run(claims())) == [False] * 19 + [True]


@pytest.mark.django_db(transaction=True)
def test_a_watched_check_counts_against_the_shared_budget(stack, sim, redis_client, settings) -> None:
    """When every second is spent (by the reconcile elsewhere), the fast lane makes no call."""
    settings.RECONCILE_MAX_CALLS_PER_SECOND = 5
    checkout = method_chosen(stack, sim)
    sim.sim("settle", checkout.number, notify="drop")
    payment = Payment.objects.get(order__number=checkout.number)
    now = int(time.time())
    for second in range(now - 1, now + int(watched.BUDGET_WAIT_SECONDS) + 3):
        redis_client.set(budget.key_for(second), 5, ex=30)
    before = PaymentEvent.objects.filter(payment=payment).count()
    assert watched.check(payment.pk) is None  # no permit
    assert PaymentEvent.objects.filter(payment=payment).count() == before
    assert Payment.objects.get(pk=payment.pk).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_shared_budget_counts_every_process_per_second(redis_client) -> None:
    shared = budget.SharedBudget(3)
    now = int(time.time())
    for second in range(now, now + 3):
        redis_client.set(budget.key_for(second), 2, ex=30)
    assert shared.take(deadline=time.monotonic() + 5) is True  # the 3rd call of this second
    for second in range(now - 1, now + 3):
        redis_client.set(budget.key_for(second), 3, ex=30)
    assert shared.take(deadline=time.monotonic() + 0.01) is False
    assert budget.SharedBudget(0).take(deadline=0) is True  # no ceiling configured
