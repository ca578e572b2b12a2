"""The statements of every payment change, compiled by Django once per database and shape, not on every call.

Each input that touches a payment (a notification, a reconcile check, a
refresh) runs the same few statements: the locking read of the payment with
its order, the event's INSERT, and an UPDATE of the columns that changed.
Compiling them was most of the ORM's cost on the hot path
(docs/benchmarks.md, "Compiled statements…": Django compiling SQL was a
fifth of a reconcile worker's CPU, the locking read with its join and the
19-column INSERT first). Their SQL
depends only on the model, the columns and the database, so Django's own
compilers produce it on first use and it is reused after; values are still
prepared by each field (``pre_save``, ``get_db_prep_save``: auto_now, JSON,
time zones), and every statement runs through the connection's cursor, so
its wrappers, the query log and ``assertNumQueries`` see it, inside the
caller's transaction. Model signals are not sent: nothing listens to these
models' saves (``test_statements`` checks it stays so).
"""

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, router
from django.db.models import Field, Model
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery
from django.db.transaction import TransactionManagementError

from checkout.models import Order, Payment

M = TypeVar("M", bound=Model)
_LOOKUPS: dict[str, Field] = {"pk": Payment._meta.pk, "order__number": Order._meta.get_field("number")}
_EXAMPLE = {"pk": 1, "order__number": "X"}  # any value of the lookup's type: only the SQL's shape is kept


@dataclass(frozen=True)
class _Read:
    """A compiled locking read and how its one row becomes objects (Django's ModelIterable, worked out once)."""

    sql: str
    columns: int
    converters: dict[int, tuple[list[Callable[..., Any]], Any]]
    init_list: list[str]
    start: int
    end: int
    populators: list[Any]


@dataclass(frozen=True)
class _Write:
    sql: str
    fields: tuple[Field, ...]
    returns_pk: bool = False


_compiled: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def _once(key: tuple[Any, ...], compile_: Callable[[], Any]) -> Any:
    found = _compiled.get(key)
    if found is None:
        with _lock:
            found = _compiled.get(key) or compile_()
            _compiled[key] = found
    return found


def payment_locked(*, pk: int | None = None, order_number: str | None = None) -> Payment:
    """Return the payment (by ``pk`` or its order's number) with its order, locked until the transaction ends.

    Raises ``Payment.DoesNotExist``; outside a transaction on a database that
    locks rows, ``TransactionManagementError``, as the ORM would.
    """
    lookup, value = ("pk", pk) if order_number is None else ("order__number", order_number)
    using = router.db_for_write(Payment)
    connection = connections[using]
    if connection.features.has_select_for_update and connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    read: _Read = _once(("read", using, lookup), lambda: _compile_read(using, lookup))
    with connection.cursor() as cursor:
        cursor.execute(read.sql, [_LOOKUPS[lookup].get_db_prep_value(value, connection)])
        rows = cursor.fetchmany(1)
    if not rows:
        raise Payment.DoesNotExist(f"Payment matching {lookup}={value!r} does not exist.")
    row = list(rows[0][:read.columns])
    for index, (converters, expression) in read.converters.items():
        for convert in converters:
            row[index] = convert(row[index], expression, connection)
    payment = Payment.from_db(using, read.init_list, row[read.start:read.end])
    for populator in read.populators:
        populator.populate(row, payment)
    return payment


def _compile_read(using: str, lookup: str) -> _Read:
    queryset = Payment.objects.using(using).select_for_update().select_related("order").filter(
        **{lookup: _EXAMPLE[lookup]})
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    if len(params) != 1:
        raise RuntimeError(f"the locking read by {lookup} has {len(params)} parameters, not one")
    select, klass_info = compiler.select, compiler.klass_info
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    return _Read(
        sql=sql, columns=compiler.col_count,
        converters=compiler.get_converters([column[0] for column in select[:compiler.col_count]]),
        init_list=[column[0].target.attname for column in select[start:end]], start=start, end=end,
        populators=get_related_populators(klass_info, select, using),
    )


def row_insert(instance: M) -> M:
    """INSERT a new instance with every column (``save(force_insert=True)``); set its pk."""
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    write: _Write = _once(("insert", using, model), lambda: _compile_insert(model, using))
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in write.fields]
    with connection.cursor() as cursor:
        cursor.execute(write.sql, params)
        if write.returns_pk:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    instance.pk = pk
    instance._state.adding, instance._state.db = False, using
    return instance


def _compile_insert(model: type[Model], using: str) -> _Write:
    fields = tuple(f for f in model._meta.local_concrete_fields if not f.generated and f is not model._meta.pk)
    query = InsertQuery(model)
    query.insert_values(fields, [model()])
    compiler = query.get_compiler(using=using)
    returning = connections[using].features.can_return_columns_from_insert
    compiler.returning_fields = [model._meta.pk] if returning else None
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(fields):
        raise RuntimeError(f"the INSERT of {model.__name__} has {len(params)} parameters for {len(fields)} columns")
    return _Write(sql=sql, fields=fields, returns_pk=returning)


def row_update(instance: Model, names: Iterable[str]) -> None:
    """UPDATE the named columns of a stored instance, as ``save(update_fields=...)`` does (auto_now included)."""
    model = type(instance)
    names = tuple(dict.fromkeys(names))  # a column named twice is written once, as save() does
    using = instance._state.db or router.db_for_write(model, instance=instance)
    connection = connections[using]
    write: _Write = _once(("update", using, model, names), lambda: _compile_update(model, using, names))
    params = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in write.fields]
    with connection.cursor() as cursor:
        cursor.execute(write.sql, [*params, model._meta.pk.get_db_prep_value(instance.pk, connection)])


def _compile_update(model: type[Model], using: str, names: tuple[str, ...]) -> _Write:
    # Not Django's UpdateQuery: it writes a None as a literal NULL, so one set of columns would compile to many SQLs.
    quote = connections[using].ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    return _Write(sql=f"UPDATE {quote(model._meta.db_table)} SET {assignments} "
                      f"WHERE {quote(model._meta.pk.column)} = %s", fields=fields)
