"""checkout.statements: the hot path's statements, compiled once, doing what the ORM does."""

import pytest
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from checkout.models import Order, Payment
from checkout.statements import payment_locked

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_it_returns_what_the_orm_returns_with_the_order_attached(make_order) -> None:
    order = make_order()
    Payment.objects.filter(order=order).update(va_number="8801234", buyer_fee="2500.00")
    Order.objects.filter(pk=order.pk).update(items=[{"sku": "kopi", "quantity": 2}])
    expected = Payment.objects.select_related("order").get(order=order)
    with transaction.atomic():
        by_pk = payment_locked(pk=expected.pk)
        by_number = payment_locked(order_number=order.number)
        with CaptureQueriesContext(connection) as later:
            for payment in (by_pk, by_number):
                assert _fields(payment) == _fields(expected)  # types too: Decimal, aware datetimes, JSON
                assert _fields(payment.order) == _fields(expected.order)
                assert payment.order.payment is payment
                assert payment._state.adding is False and payment._state.db == "default"
    assert len(later) == 0  # the order came with the payment, in the same query


def test_each_lookup_is_compiled_once(make_order, monkeypatch) -> None:
    first, second = make_order(), make_order()
    with transaction.atomic():
        payment_locked(order_number=first.number)
        payment_locked(pk=first.payment.pk)
    compiled = []
    original = SQLCompiler.as_sql
    monkeypatch.setattr(SQLCompiler, "as_sql", lambda self, *a, **kw: compiled.append(1) or original(self, *a, **kw))
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert payment_locked(order_number=second.number).order.number == second.number
        assert payment_locked(pk=second.payment.pk).pk == second.payment.pk
    assert compiled == [] and len(queries) == 2
    if connection.features.has_select_for_update:
        assert all("FOR UPDATE" in q["sql"] for q in queries)


def test_a_missing_payment_is_does_not_exist(make_order) -> None:
    with transaction.atomic():
        with pytest.raises(Payment.DoesNotExist):
            payment_locked(order_number="INV-NOBODY")
        with pytest.raises(Payment.DoesNotExist):
            payment_locked(pk=10**9)


@pytest.mark.django_db(transaction=True)  # the test's own transaction would hide the missing one
def test_outside_a_transaction_it_refuses_as_the_orm_does(make_order) -> None:
    if not connection.features.has_select_for_update:
        pytest.skip("SQLite locks the whole database, not rows: the ORM does not refuse there either")
    with pytest.raises(TransactionManagementError):
        payment_locked(pk=make_order().payment.pk)


def test_an_inserted_event_reads_back_as_the_orm_stores_it(make_order) -> None:
    from checkout.models import PaymentEvent
    from checkout.services.events import payment_event_new
    from checkout.statements import row_insert

    payment = make_order().payment
    via_orm = payment_event_new(source="webhook", payment=payment, raw_body='{"a": 1}', client_ip="10.1.2.3",
                                headers={"Content-Type": "application/json"}, signature_valid=True)
    ours = payment_event_new(source="webhook", payment=payment, raw_body='{"a": 1}', client_ip="10.1.2.3",
                             headers={"Content-Type": "application/json"}, signature_valid=True)
    via_orm.save(force_insert=True)
    assert row_insert(ours) is ours and ours.pk == via_orm.pk + 1 and not ours._state.adding
    stored = {pk: _fields(PaymentEvent.objects.get(pk=pk)) for pk in (via_orm.pk, ours.pk)}
    assert ours.created_at is not None  # auto_now_add, as save() sets it
    for name in ("id", "created_at"):
        stored[via_orm.pk].pop(name), stored[ours.pk].pop(name)
    assert stored[ours.pk] == stored[via_orm.pk]
    assert stored[ours.pk]["headers"] == {"Content-Type": "application/json"}


def test_an_update_writes_only_the_named_columns_and_bumps_auto_now(make_order) -> None:
    from checkout.statements import row_update

    payment = make_order().payment
    before = _fields(Payment.objects.get(pk=payment.pk))
    payment.va_number, payment.bank, payment.status = "8801234", "bca", "success"  # status not named: not written
    payment.next_check_at = None
    row_update(payment, ["va_number", "bank", "next_check_at", "updated_at"])
    after = _fields(Payment.objects.get(pk=payment.pk))
    assert (after["va_number"], after["bank"], after["status"], after["next_check_at"]) == (
        "8801234", "bca", "pending", None)
    assert after["updated_at"] > before["updated_at"] and after["updated_at"] == payment.updated_at
    assert {k: v for k, v in after.items() if k not in ("va_number", "bank", "updated_at", "next_check_at")} == {
        k: v for k, v in before.items() if k not in ("va_number", "bank", "updated_at", "next_check_at")}


def test_writes_are_compiled_once(make_order, monkeypatch) -> None:
    from django.db.models.sql.compiler import SQLInsertCompiler

    from checkout.models import PaymentEvent
    from checkout.statements import row_insert

    payment = make_order().payment
    row_insert(PaymentEvent(source="reconcile", payment=payment))
    compiled = []
    original = SQLInsertCompiler.as_sql
    monkeypatch.setattr(SQLInsertCompiler, "as_sql",
                        lambda self, *a, **kw: compiled.append(1) or original(self, *a, **kw))
    with CaptureQueriesContext(connection) as queries:
        row_insert(PaymentEvent(source="reconcile", payment=payment))
    assert compiled == [] and len(queries) == 1


def test_nothing_listens_to_the_saves_these_statements_skip() -> None:
    """row_insert/row_update send no model signals: a receiver added later would silently miss them."""
    from django.db.models import signals

    from checkout.models import PaymentEvent

    for model in (Payment, Order, PaymentEvent):
        for signal in (signals.pre_save, signals.post_save):
            assert not signal.has_listeners(model), f"{signal} has a receiver for {model.__name__}"
