"""The operator's admin: the payments list's filters, read-only records, delivery health, a stuck payment explained."""

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from checkout.admin_selectors import stuck_grace
from checkout.models import EventOutcome, EventSource, Order, Payment, PaymentEvent
from reconcile.models import NotificationRetry
from tests.checkout.samples import notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client: Client) -> Callable[..., Client]:
    """Log in a staff user holding exactly the given permissions (codenames of the checkout app)."""

    def make(*codenames: str) -> Client:
        user = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="checkout",
                                                            codename__in=codenames))
        client.force_login(user)
        return client

    return make


@pytest.fixture
def payment(make_order) -> Callable[..., Payment]:
    """Create an order and its payment, then set the payment's (and order's) columns as given."""

    def make(order_status: str | None = None, **fields: Any) -> Payment:
        order = make_order()
        Payment.objects.filter(order=order).update(**fields)
        if order_status:
            Order.objects.filter(pk=order.pk).update(status=order_status)
        return Payment.objects.select_related("order").get(order=order)

    return make


def event(payment: Payment | None, *, ago: timedelta = timedelta(0), **fields: Any) -> PaymentEvent:
    """Store an event as if it had arrived ``ago`` before now."""
    fields.setdefault("source", EventSource.WEBHOOK)
    made = PaymentEvent.objects.create(payment=payment, order_number=payment.order.number if payment else "",
                                       **fields)
    PaymentEvent.objects.filter(pk=made.pk).update(created_at=timezone.now() - ago)
    made.refresh_from_db()
    return made


def listed(client: Client, query: str) -> set[str]:
    response = client.get(f"/admin/checkout/payment/?{query}")
    assert response.status_code == 200
    return {p.order.number for p in response.context["cl"].result_list}


# --- the payments list ----------------------------------------------------------------------------------


def test_each_filter_returns_the_right_payments(admin_client, payment) -> None:
    now = timezone.now()
    later = now + timedelta(hours=1)
    stuck = payment(next_check_at=now - 2 * stuck_grace(), expires_at=later)
    just_due = payment(next_check_at=now - timedelta(seconds=30), expires_at=later)  # waiting for the next run
    overdue = payment(next_check_at=now + timedelta(minutes=1), expires_at=now - timedelta(minutes=1))
    challenge = payment(status="challenge", next_check_at=later, expires_at=later)
    mismatch = payment(next_check_at=later, expires_at=later)
    event(mismatch, outcome=EventOutcome.AMOUNT_MISMATCH, transaction_status="settlement", signature_valid=True)
    paid_late = payment(status="expired", order_status="expired", next_check_at=None)
    event(paid_late, outcome=EventOutcome.STALE, transaction_status="settlement", status_before="expired",
          status_after="expired", signature_valid=True)
    # Not money after close: a late settlement after a refund, and a challenged capture on an expired order.
    refunded = payment(status="refunded", order_status="refunded", next_check_at=None)
    event(refunded, outcome=EventOutcome.STALE, transaction_status="settlement", status_before="refunded")
    challenged_late = payment(status="expired", order_status="expired", next_check_at=None)
    event(challenged_late, outcome=EventOutcome.STALE, transaction_status="capture", fraud_status="challenge",
          status_before="expired")
    # A closed order whose check was long due is not stuck: the reconcile no longer asks about it.
    payment(status="expired", order_status="expired", next_check_at=now - 2 * stuck_grace())

    assert listed(admin_client, "attention=stuck") == {stuck.order.number}
    assert listed(admin_client, "attention=overdue") == {overdue.order.number}
    assert listed(admin_client, "attention=challenge") == {challenge.order.number}
    assert listed(admin_client, "attention=mismatch") == {mismatch.order.number}
    assert listed(admin_client, "attention=paid_after_close") == {paid_late.order.number}
    assert just_due.order.number in listed(admin_client, "")


def test_the_list_shows_age_last_midtrans_answer_and_next_check(admin_client, payment) -> None:
    now = timezone.now()
    payment(transaction_status="pending", last_checked_at=now - timedelta(minutes=3),
            next_check_at=now + timedelta(minutes=4, seconds=30))
    payment(next_check_at=now - 2 * stuck_grace())
    paid = payment(status="success", order_status="processing", next_check_at=now - timedelta(minutes=7))
    page = admin_client.get("/admin/checkout/payment/").content.decode()
    row = page.split(paid.order.number)[-1].split("</tr>")[0]
    assert "due" not in row  # a paid payment is not checked again, whatever its old next_check_at
    for header in ("Age", "Midtrans", "Next check"):
        assert f">{header}</a>" in page
    assert "asked 3 min ago" in page and "in 4 min" in page
    assert 'class="pw-late"' in page  # the stuck one's late check stands out
    assert "checkout/admin.css" in page


# --- read-only records ------------------------------------------------------------------------------------


@pytest.fixture
def records(payment) -> dict[str, int]:
    paid = payment(status="success", order_status="processing")
    stored = event(paid, outcome=EventOutcome.APPLIED, transaction_status="settlement", signature_valid=True)
    retry = NotificationRetry.objects.create(event=stored, attempts=1, last_outcome="applied")
    return {"checkout/order": paid.order_id, "checkout/payment": paid.pk, "checkout/paymentevent": stored.pk,
            "reconcile/notificationretry": retry.pk}


@pytest.mark.parametrize("model", ["checkout/order", "checkout/payment", "checkout/paymentevent",
                                   "reconcile/notificationretry"])
def test_records_cannot_be_added_changed_or_deleted(admin_client, records, model) -> None:
    pk = records[model]
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403
    assert admin_client.get(f"/admin/{model}/{pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin_client.get(f"/admin/{model}/{pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b'name="_continue"' not in page.content
    assert b"deletelink" not in page.content
    assert admin_client.post(f"/admin/{model}/{pk}/change/", {"status": "cancelled"}).status_code == 403
    listing = admin_client.get(f"/admin/{model}/")
    assert f'href="/admin/{model}/add/"'.encode() not in listing.content
    assert b"delete_selected" not in listing.content


def test_a_post_to_change_a_payment_changes_nothing(admin_client, records) -> None:
    pk = records["checkout/payment"]
    admin_client.post(f"/admin/checkout/payment/{pk}/change/", {"status": "refunded", "amount": "1"})
    assert Payment.objects.filter(pk=pk).values_list("status", "amount").get() == ("success", Decimal("85000.00"))


def test_actions_need_the_change_permission(staff_client, payment) -> None:
    challenged = payment(status="challenge")
    viewer = staff_client("view_payment", "view_order", "view_paymentevent")
    page = viewer.get(f"/admin/checkout/payment/{challenged.pk}/change/").content.decode()
    assert "data-action=" not in page
    assert viewer.post(f"/admin/checkout/payment/{challenged.pk}/actions/approve/", {"confirm": "yes"}
                       ).status_code == 403
    assert b"check_with_midtrans" not in viewer.get("/admin/checkout/payment/").content


def test_the_change_permission_offers_actions_but_never_save(staff_client, payment) -> None:
    challenged = payment(status="challenge")
    actor = staff_client("view_payment", "change_payment")
    page = actor.get(f"/admin/checkout/payment/{challenged.pk}/change/").content.decode()
    assert 'data-action="approve"' in page and 'name="_save"' not in page
    assert b"check_with_midtrans" in actor.get("/admin/checkout/payment/").content
    assert actor.post(f"/admin/checkout/payment/{challenged.pk}/change/", {"status": "success"}).status_code == 403


def test_an_events_raw_body_is_pretty_printed_and_wraps(admin_client, payment) -> None:
    paid = payment()
    body = json.dumps({"order_id": paid.order.number, "transaction_status": "settlement", "va_numbers": [
        {"bank": "bca", "va_number": "1" * 300}]})
    stored = event(paid, raw_body=body, outcome=EventOutcome.APPLIED)
    garbage = event(paid, raw_body="<not json> & " + "x" * 500, outcome=EventOutcome.ERROR)
    page = admin_client.get(f"/admin/checkout/paymentevent/{stored.pk}/change/").content.decode()
    assert '<pre class="pw-raw">{\n  &quot;order_id&quot;' in page
    assert "checkout/admin.css" in page
    assert 'style="' not in page.split('id="content"')[1]  # the policy allows no inline style
    raw = admin_client.get(f"/admin/checkout/paymentevent/{garbage.pk}/change/").content.decode()
    assert "&lt;not json&gt; &amp; xxx" in raw


def test_the_admin_says_retries(admin_client) -> None:
    page = admin_client.get("/admin/").content.decode()
    assert "Notification retries" in page and "retrys" not in page.lower()


# --- delivery health ---------------------------------------------------------------------------------------


@pytest.fixture
def seeded(payment) -> dict[str, Any]:
    """A day of notifications, a failed one, a reconcile history and money for a closed order."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    target = payment()
    for ago in (timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=50)):
        event(target, ago=ago, outcome=EventOutcome.APPLIED, signature_valid=True)
    event(target, ago=timedelta(minutes=30), outcome=EventOutcome.DUPLICATE, signature_valid=True)
    for ago in (timedelta(minutes=5), hour + timedelta(minutes=5)):
        event(None, ago=ago, outcome=EventOutcome.INVALID_SIGNATURE, signature_valid=False, client_ip="203.0.113.9")
    for ago in (hour * 2, hour * 5):
        event(target, ago=ago, outcome=EventOutcome.APPLIED, signature_valid=True)
    for _ in range(4):
        event(target, ago=day + hour, outcome=EventOutcome.APPLIED, signature_valid=True)  # older than a day
    event(target, ago=timedelta(minutes=1), source=EventSource.RECONCILE, outcome=EventOutcome.DUPLICATE)

    pending = payment(next_check_at=timezone.now() - timedelta(minutes=12))
    body = notification(pending.order.number, "settlement", server_key=settings.MIDTRANS["SERVER_KEY"])
    failed = event(pending, ago=hour * 3, outcome=EventOutcome.ERROR, signature_valid=True,
                   raw_body=json.dumps(body), detail="Traceback ...\nOperationalError: database is locked")

    closed = payment(status="expired", order_status="expired", next_check_at=None)
    for source in (EventSource.WEBHOOK, EventSource.ADMIN):  # two reports of the same money: one payment
        event(closed, ago=hour * 2, outcome=EventOutcome.STALE, transaction_status="settlement",
              status_before="expired", status_after="expired",
              signature_valid=True if source == EventSource.WEBHOOK else None, source=source)

    from django_q.models import Task

    started = timezone.now() - timedelta(minutes=4)
    Task.objects.create(id=uuid.uuid4().hex, name="run-1", func="reconcile.tasks.reconcile_pending",
                        started=started, stopped=started + timedelta(seconds=2), success=True,
                        result={"checked": 7, "fixed": 2, "errors": 1, "skipped": 0, "expired": 1, "reapplied": 0,
                                "locked": False, "circuit_open": False, "out_of_time": False})
    Task.objects.create(id=uuid.uuid4().hex, name="run-0", func="reconcile.tasks.reconcile_pending",
                        started=started - timedelta(minutes=5), stopped=started - timedelta(minutes=5),
                        success=False, result="Traceback ...\nRedisError: boom")
    return {"failed": failed, "pending": pending, "closed": closed}


def test_the_health_page_shows_the_right_figures(admin_client, seeded) -> None:
    response = admin_client.get("/admin/checkout/paymentevent/health/")
    assert response.status_code == 200
    health = response.context["health"]
    counts = {row.outcome: (row.last_hour, row.last_day) for row in health.by_outcome}
    assert counts["applied"] == (3, 5)
    assert counts["duplicate"] == (1, 1)
    assert counts["invalid_signature"] == (1, 2)
    assert counts["error"] == (0, 1) and counts["stale"] == (0, 1)
    assert (health.total_hour, health.total_day) == (5, 10)  # only the webhook's; none older than a day
    assert (health.signature_failures_hour, health.signature_failures_day) == (1, 2)
    assert timedelta(minutes=9) < health.last_valid_age < timedelta(minutes=11)
    assert [e.pk for e in health.failed] == [seeded["failed"].pk] and health.failed_count == 1
    assert health.failed[0].reason == "OperationalError: database is locked"
    assert [run.result for run in health.runs] == ["completed", "failed"]
    assert health.runs[0].summary["checked"] == 7 and health.runs[0].seconds == 2.0
    assert timedelta(minutes=11) < health.lag < timedelta(minutes=13)
    assert health.paid_after_close_count == 1
    assert [e.payment_id for e in health.paid_after_close] == [seeded["closed"].pk]
    page = response.content.decode()
    assert 'id="last-valid">10 min ago' in page
    assert seeded["closed"].order.number in page and "RedisError: boom" in page
    assert f'action="/admin/checkout/paymentevent/{seeded["failed"].pk}/reapply/"' in page


def test_a_dispatched_runs_counts_are_its_chunks(admin_client) -> None:
    from django_q.models import Task

    started = timezone.now() - timedelta(minutes=2)

    def task(func: str, result: Any, *, success: bool = True, group: str | None = None, after: int = 0) -> None:
        at = started + timedelta(seconds=after)
        Task.objects.create(id=uuid.uuid4().hex, name=uuid.uuid4().hex, func=func, started=at, stopped=at,
                            success=success, result=result, group=group)

    task("reconcile.tasks.reconcile_pending", {"run_id": "r1", "queued": 5, "chunks": 3, "reapplied": 1})
    task("reconcile.tasks.reconcile_chunk", {"checked": 3, "fixed": 1}, group="reconcile-r1", after=4)
    task("reconcile.tasks.reconcile_chunk", {"checked": 1, "errors": 1}, group="reconcile-r1", after=6)
    task("reconcile.tasks.reconcile_chunk", "Traceback ...", success=False, group="reconcile-r1", after=5)
    task("reconcile.tasks.reconcile_chunk", {"checked": 99}, group="reconcile-other", after=5)
    [run] = admin_client.get("/admin/checkout/paymentevent/health/").context["health"].runs
    assert run.result == "dispatched: 2 of 3 chunks done, 1 failed"
    assert (run.summary["checked"], run.summary["fixed"], run.summary["errors"], run.summary["reapplied"]) == (
        4, 1, 1, 1)
    assert run.seconds == 6.0  # until its last chunk ended


def test_the_index_links_the_health_page(admin_client) -> None:
    page = admin_client.get("/admin/").content.decode()
    assert 'href="/admin/checkout/paymentevent/health/"' in page
    assert "?attention=paid_after_close" in page


def test_reapply_applies_a_failed_notification(admin_client, seeded) -> None:
    failed, pending = seeded["failed"], seeded["pending"]
    response = admin_client.post(f"/admin/checkout/paymentevent/{failed.pk}/reapply/",
                                 {"next": "/admin/checkout/paymentevent/health/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/checkout/paymentevent/health/"
    assert f"Event #{failed.pk} re-applied: applied (pending → success)" in response.content.decode()
    pending.refresh_from_db()
    assert (pending.status, pending.order.status) == ("success", "processing")
    failed.refresh_from_db()
    assert (failed.outcome, failed.source, failed.status_after) == ("applied", "webhook", "success")
    assert NotificationRetry.objects.get(event=failed).attempts == 1
    assert response.context["health"].failed_count == 0


def test_reapply_refuses_what_is_not_a_failed_notification(admin_client, seeded) -> None:
    applied = PaymentEvent.objects.filter(outcome=EventOutcome.APPLIED).first()
    response = admin_client.post(f"/admin/checkout/paymentevent/{applied.pk}/reapply/", follow=True)
    assert b"only a verified notification that failed to apply can be re-applied" in response.content
    assert admin_client.get(f"/admin/checkout/paymentevent/{seeded['failed'].pk}/reapply/").status_code == 405
    assert not NotificationRetry.objects.exists()


def test_reapply_needs_csrf_and_the_change_permission(seeded, staff_client) -> None:
    failed = seeded["failed"]
    viewer = staff_client("view_paymentevent")
    assert viewer.post(f"/admin/checkout/paymentevent/{failed.pk}/reapply/").status_code == 403
    page = viewer.get("/admin/checkout/paymentevent/health/").content.decode()
    assert "/reapply/" not in page
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    assert strict.post(f"/admin/checkout/paymentevent/{failed.pk}/reapply/").status_code == 403
    failed.refresh_from_db()
    assert failed.outcome == "error"


def test_a_failed_events_page_offers_reapply(admin_client, seeded) -> None:
    page = admin_client.get(f"/admin/checkout/paymentevent/{seeded['failed'].pk}/change/").content.decode()
    assert 'id="reapply-form"' in page and "csrfmiddlewaretoken" in page


# --- a stuck payment explained --------------------------------------------------------------------------------


def test_a_stuck_payment_is_explained_on_its_page(admin_client, payment) -> None:
    now = timezone.now()
    stuck = payment(payment_type="bank_transfer", bank="bca", transaction_status="pending",
                    next_check_at=now - timedelta(minutes=40), last_checked_at=now - timedelta(minutes=45),
                    expires_at=now + timedelta(hours=20))
    event(stuck, ago=timedelta(minutes=50), source=EventSource.WEBHOOK, transaction_status="pending",
          outcome=EventOutcome.DUPLICATE, signature_valid=True, raw_body="{}")
    answer = {"order_id": stuck.order.number, "transaction_status": "pending", "status_code": "201"}
    event(stuck, ago=timedelta(minutes=45), source=EventSource.RECONCILE, transaction_status="pending",
          outcome=EventOutcome.DUPLICATE, raw_body=json.dumps(answer), detail="status unchanged")
    page = admin_client.get(f"/admin/checkout/payment/{stuck.pk}/change/").content.decode()
    assert "Why it is pending — stuck" in page
    assert "The customer chose bank_transfer (bca) and Midtrans has not seen the money yet." in page
    assert "Its check has been due since" in page and "40 min ago" in page
    assert 'id="next-check">Due since' in page
    assert "asked by reconcile" in page and '{\n  &quot;order_id&quot;' in page  # the last answer, indented
    timeline = page.split('id="timeline"')[1]
    assert timeline.index("webhook") < timeline.index("reconcile")  # oldest first


def test_an_open_payment_says_when_it_is_checked_next(admin_client, payment) -> None:
    fresh = payment(next_check_at=timezone.now() + timedelta(minutes=3, seconds=30))
    page = admin_client.get(f"/admin/checkout/payment/{fresh.pk}/change/").content.decode()
    assert 'id="next-check">In 3 min' in page and "stuck" not in page
    assert "has not chosen a payment method yet" in page and "Midtrans has not been asked about it yet." in page


def test_a_closed_payment_paid_late_says_it_needs_a_person(admin_client, payment) -> None:
    closed = payment(status="expired", order_status="expired", next_check_at=None)
    event(closed, outcome=EventOutcome.STALE, transaction_status="settlement", status_before="expired",
          status_after="expired", signature_valid=True)
    page = admin_client.get(f"/admin/checkout/payment/{closed.pk}/change/").content.decode()
    assert "after the order had closed: a person must refund the customer or honour the order" in page
    assert 'id="next-check">Never' in page and "data-action=" not in page
