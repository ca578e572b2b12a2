"""The watched fast lane: an open page on a payment Midtrans knows gets a silently settled payment with no click and
no scheduled run; one call per payment per interval; within the shared calls-per-second budget; stops at the end."""

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from channels.db import database_sync_to_async
from django.test import override_settings
from django.utils import timezone
from websockets.sync.client import connect

from checkout.models import EventOutcome, EventSource, Payment, PaymentEvent
from paywatch_dev.servers import wait_until
from reconcile import budget, conf, watched
from tests.realtime.test_sse import EventStream, events_url

pytestmark = [pytest.mark.e2e]

WAIT = 15.0  # several ticks of the fast daphne's 1 s interval, or one webhook round trip


@pytest.fixture(scope="module")
def watched_web(stack) -> Iterator[str]:
    """A daphne whose open pages ask Midtrans every second."""
    with stack.extra_web("watched", WATCHED_CHECK_SECONDS="1") as web:
        yield web.url


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
    chosen = Payment.objects.filter(order__number=checkout.number).exclude(payment_type="")
    assert wait_until(chosen.exists, WAIT)
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
    """In-process: the lane asks Midtrans, applies the settlement, and asks nothing more once it ended."""
    checkout = method_chosen(stack, sim)
    sim.sim("settle", checkout.number, notify="drop")

    def status() -> str:
        return Payment.objects.get(order__number=checkout.number).status

    async def run() -> tuple[bool, bool]:
        handle = watched.start(checkout.number)
        try:
            async with asyncio.timeout(WAIT):
                while await database_sync_to_async(status)() != "success":
                    await asyncio.sleep(0.1)  # the lane's own tick is the event; this only looks at its result
            # Ticks after the end see a closed payment and ask nothing more.
            assert await watched.check_watched([checkout.number], 1) == []
        finally:
            await watched.stop(handle)
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
    """When the next free slot is further away than the fast lane waits (spent elsewhere), it makes no call."""
    settings.RECONCILE_MAX_CALLS_PER_SECOND = 5
    checkout = method_chosen(stack, sim)
    sim.sim("settle", checkout.number, notify="drop")
    payment = Payment.objects.get(order__number=checkout.number)
    seconds, micros = redis_client.time()
    spent_until = seconds * 1_000_000 + micros + int((watched.BUDGET_WAIT_SECONDS + 10) * 1_000_000)
    redis_client.set(budget.SLOT_KEY, spent_until, ex=60)
    before = PaymentEvent.objects.filter(payment=payment).count()
    assert watched.check(payment.pk) is None  # no permit
    assert PaymentEvent.objects.filter(payment=payment).count() == before
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    assert int(redis_client.get(budget.SLOT_KEY)) == spent_until  # refused without taking a slot


@pytest.mark.django_db
def test_one_query_reads_every_watched_payment_however_many_pages_are_open(make_order) -> None:
    """Per-page reads saturated daphne at 5,000 sockets: a tick reads them all at once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    numbers = [make_order().number for _ in range(5)]
    with CaptureQueriesContext(connection) as queries:
        states = watched._watched([*numbers, "NO-SUCH-ORDER"])
    assert len(queries) == 1
    assert set(states) == set(numbers) and all(s.is_open and not s.known for s in states.values())


def test_one_task_checks_for_every_page_of_a_process() -> None:
    async def run() -> tuple[int, int]:
        handles = [watched.start(f"ORDER-{n % 3}") for n in range(10)]
        registry = watched._registries[asyncio.get_running_loop()]
        tasks = {task for task in asyncio.all_tasks() if task.get_name() == "watched-fast-lane"}
        for handle in handles:
            await watched.stop(handle)
        return len(tasks), len(registry.watchers)

    with override_settings(WATCHED_CHECK_SECONDS=30):
        assert asyncio.run(run()) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_a_tick_claims_no_more_than_the_ceiling_allows_least_recently_checked_first(
        make_order, settings, monkeypatch) -> None:
    """5 calls/s over a 1 s tick: of 8 watched payments only the 5 checked longest ago are claimed and asked about."""
    settings.RECONCILE_MAX_CALLS_PER_SECOND = 5
    now = timezone.now()
    numbers = []
    for k in range(8):
        order = make_order()
        Payment.objects.filter(order=order).update(
            payment_type="bank_transfer", last_checked_at=None if k == 7 else now - timedelta(minutes=k))
        numbers.append(order.number)
    claimed: list[str] = []
    checked: list[int] = []

    async def claim(number: str, interval: int) -> bool:
        claimed.append(number)
        return True

    monkeypatch.setattr(watched, "_claim", claim)
    monkeypatch.setattr(watched, "check", lambda payment_id: checked.append(payment_id) or "ok")
    asked = asyncio.run(watched.check_watched(numbers, 30, tick_seconds=1.0))
    oldest_first = [numbers[7], numbers[6], numbers[5], numbers[4], numbers[3]]
    assert asked == claimed == oldest_first
    expected = Payment.objects.filter(order__number__in=oldest_first).values_list("pk", flat=True)
    assert sorted(checked) == sorted(expected)
