"""``manage.py payments``: check pending payments with Midtrans, fix them, expire overdue ones, prune old events,
and the merchant's actions (approve, deny, cancel, refund).

Exit codes: ``ExitCode`` below, stated in the command's help and in README.md ("Commands").
"""

import json
import time
from argparse import ArgumentTypeError
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from checkout import actions, gateway
from checkout import selectors as checkout_selectors
from checkout.errors import GatewayError, GatewayUnavailable, TransactionNotFound, UnknownOrder
from checkout.models import EventSource, Payment
from checkout.services import payments as payment_services
from reconcile import conf, selectors, services
from reconcile.runner import Circuit, Run, run_pool

COLUMNS = ("Order Number", "Order Status", "Payment Status", "Midtrans Status", "Action")


class ExitCode(IntEnum):
    """What the process's exit status means; a script can tell "fix the input" from "try again later"."""

    OK = 0
    REFUSED = 1      # unknown order, an action the state does not allow, Midtrans refused, a refund over what remains
    USAGE = 2        # bad arguments (argparse's own exit status)
    UNAVAILABLE = 3  # Midtrans down, slow or answering garbage: what it could not check is left; run it again


EXIT_CODES_HELP = (
    f"Exit codes: {ExitCode.OK} done; {ExitCode.REFUSED} refused or unknown (unknown order, an action the "
    f"payment's state does not allow, Midtrans refused, a refund over what remains); {ExitCode.USAGE} bad "
    f"arguments; {ExitCode.UNAVAILABLE} Midtrans unavailable (down, slow or an unusable answer: try again later)."
)


@dataclass
class Row:
    """One line of check-all."""

    order_number: str
    order_status: str
    payment_status: str
    midtrans_status: str
    action: str                  # Fixed, Would fix, OK, Error: …
    target: str | None = None    # the payment status it moved (or would move) to
    unavailable: bool = False

    def cells(self) -> tuple[str, ...]:
        action = f"{self.action} (→ {self.target})" if self.target else self.action
        return (self.order_number, self.order_status, self.payment_status, self.midtrans_status, action)


class Command(BaseCommand):
    help = ("Check pending payments against Midtrans, fix them, expire overdue ones, prune old events, and "
            "approve, deny, cancel or refund a payment. " + EXIT_CODES_HELP)

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        check_all = sub.add_parser("check-all", help="table of open payments and what Midtrans says")
        check_all.add_argument("--fix", action="store_true", help="apply what Midtrans says (else change nothing)")
        check_all.add_argument("--json", action="store_true", help="print one JSON array of rows and nothing else")
        check_all.add_argument("--older-than", type=_non_negative_int, default=0, metavar="MINUTES",
                               help="only payments created at least MINUTES ago")
        check_all.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="at most N payments")
        status = sub.add_parser("check-status", help="ask Midtrans about one order now and apply it")
        status.add_argument("order", metavar="ORDER")
        status.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        cleanup = sub.add_parser("cleanup-expired", help="confirm, then expire, pending payments past expiry")
        cleanup.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
        prune = sub.add_parser("prune-events", help="delete events of payments closed longer than "
                                                    "EVENT_RETENTION_DAYS, and old events with no payment")
        prune.add_argument("--dry-run", action="store_true", help="count what would be removed; remove nothing")
        for name, text in (("approve", "accept a challenged card payment at Midtrans"),
                           ("deny", "deny a challenged card payment at Midtrans"),
                           ("cancel", "cancel a pending or challenged payment at Midtrans")):
            sub.add_parser(name, help=text).add_argument("order", metavar="ORDER")
        refund = sub.add_parser("refund", help="refund a settled payment at Midtrans (all that remains by default)")
        refund.add_argument("order", metavar="ORDER")
        refund.add_argument("--amount", type=_amount, default=None, metavar="N", help="refund N rupiah (partial)")
        refund.add_argument("--reason", default="", metavar="TEXT", help="the reason Midtrans records")
        refund.add_argument("--again", action="store_true",
                            help="refund an amount that was already refunded once more (a new refund_key)")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "check-all":
            self.check_all(fix=options["fix"], as_json=options["json"], older_than=options["older_than"],
                           limit=options["limit"])
        elif action == "check-status":
            self.check_status(options["order"], dry_run=options["dry_run"])
        elif action == "prune-events":
            self.prune_events(dry_run=options["dry_run"])
        elif action in ("approve", "deny", "cancel", "refund"):
            self.payment_action(action, options["order"], options)
        else:
            self.cleanup_expired(dry_run=options["dry_run"])

    # --- check-all ---------------------------------------------------------------------------------
    def check_all(self, *, fix: bool, as_json: bool, older_than: int, limit: int | None) -> None:
        from datetime import timedelta

        from django.utils import timezone

        payments = selectors.payments_open().filter(
            created_at__lte=timezone.now() - timedelta(minutes=older_than)
        )
        payments = list(payments[:limit] if limit else payments)
        # In this one process, under the shared ceiling; its own circuit, so that an outage is reported for
        # these rows rather than a worker's earlier one.
        run = Run(budget_seconds=float("inf"), max_calls_per_second=conf.max_calls_per_second(),
                  concurrency=conf.concurrency(), circuit=Circuit())
        work = _fix_row if fix else _preview_row
        rows: list[Row | None] = [None] * len(payments)
        progress = _Progress(self.stderr, len(payments), "checked")
        for done in run_pool(payments, lambda payment: work(payment, run), run):
            rows[done.index] = done.result
            progress.tick()
        progress.finish()
        for index, payment in enumerate(payments):
            if rows[index] is None:  # never asked: the circuit opened
                rows[index] = Row(payment.order.number, payment.order.status, payment.status, "?",
                                  "Error: not checked (Midtrans unavailable)", unavailable=True)
        done_rows = [row for row in rows if row is not None]
        if as_json:
            self.stdout.write(json.dumps([_json_row(row) for row in done_rows], ensure_ascii=False))
        else:
            self._table(done_rows)
            counts = {word: sum(1 for r in done_rows if r.action == word) for word in ("Fixed", "Would fix", "OK")}
            errors = sum(1 for r in done_rows if r.action.startswith("Error"))
            self.stdout.write(
                f"{len(done_rows)} payment(s) checked: {counts['Fixed']} fixed, {counts['Would fix']} would fix, "
                f"{counts['OK']} OK, {errors} error(s)" + ("" if fix or not counts["Would fix"]
                                                            else " — run with --fix to apply")
            )
        if any(row.unavailable for row in done_rows):
            raise CommandError("Midtrans is unavailable; some payments were not checked",
                               returncode=ExitCode.UNAVAILABLE)

    def _table(self, rows: list[Row]) -> None:
        lines = [COLUMNS, *(row.cells() for row in rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        self.stdout.write(rule)
        for n, line in enumerate(lines):
            self.stdout.write("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |")
            if n == 0:
                self.stdout.write(rule)
        self.stdout.write(rule)

    # --- check-status ------------------------------------------------------------------------------
    def check_status(self, number: str, *, dry_run: bool) -> None:
        try:
            payment = checkout_selectors.payment_for_order_number(number)
        except UnknownOrder:
            message = f"Unknown order {number!r}: no order has that number"
            raise CommandError(message, returncode=ExitCode.REFUSED) from None
        self.stdout.write(f"Order {number}")
        self.stdout.write(f"  before: order {payment.order.status}, payment {payment.status} (version "
                          f"{payment.version})")
        try:
            if dry_run:
                observation = gateway.transaction_status(number)
                target = selectors.payment_would_become(payment, observation)
                midtrans = _midtrans_text(observation.transaction_status, observation.fraud_status)
                self.stdout.write(f"  Midtrans: {midtrans}")
                self.stdout.write(f"  would become: payment {target}" if target else "  nothing would change")
                self.stdout.write("  (dry run: nothing changed)")
                return
            transition = payment_services.payment_ask_midtrans(payment=payment, source=EventSource.ADMIN)
        except TransactionNotFound:
            self.stdout.write("  Midtrans: no transaction yet (the customer has not chosen a payment method)")
            return
        except GatewayUnavailable as exc:
            raise CommandError(f"Midtrans is unavailable: {exc.message}", returncode=ExitCode.UNAVAILABLE) from None
        except GatewayError as exc:
            raise CommandError(f"Midtrans refused the request: {exc.message}", returncode=ExitCode.REFUSED) from None
        services.payment_schedule_next(payment=payment, status=transition.status_after)
        after = Payment.objects.select_related("order").get(pk=payment.pk)
        self.stdout.write(f"  Midtrans: {_midtrans_text(after.transaction_status, after.fraud_status)}")
        self.stdout.write(f"  after:  order {after.order.status}, payment {after.status} (version {after.version})"
                          f" — {transition.outcome}")

    # --- cleanup-expired ---------------------------------------------------------------------------
    def cleanup_expired(self, *, dry_run: bool) -> None:
        progress: _Progress | None = None

        def on_row(done: int, total: int) -> None:
            nonlocal progress
            progress = progress or _Progress(self.stderr, total, "confirmed")
            progress.tick()

        summary = services.payments_expire_overdue(dry_run=dry_run, budget_seconds=float("inf"), on_row=on_row)
        if progress is not None:
            progress.finish()
        for row in summary.rows:
            detail = f" ({row.detail})" if row.detail else ""
            self.stdout.write(f"{row.order_number}: {row.payment_status} → {row.payment_status_after}, "
                              f"Midtrans {row.midtrans_status}: {row.action}{detail}")
        verb = "would be " if dry_run else ""
        self.stdout.write(
            f"{len(summary.rows)} overdue payment(s): {summary.paid} {verb}paid, {summary.expired} {verb}expired, "
            f"{summary.updated} {verb}updated, {summary.errors} error(s), {summary.unavailable} unavailable"
            + (", dry run: nothing changed" if dry_run else "")
        )
        if summary.unavailable or summary.skipped:
            raise CommandError("Midtrans is unavailable; nothing was expired without its confirmation",
                               returncode=ExitCode.UNAVAILABLE)

    # --- prune-events ------------------------------------------------------------------------------
    def prune_events(self, *, dry_run: bool) -> None:
        summary = services.events_prune(dry_run=dry_run)
        verb = "would be removed (dry run: nothing changed)" if dry_run else "removed"
        self.stdout.write(f"{summary.removed} event(s) {verb}: events of payments closed before "
                          f"{summary.cutoff} ({summary.retention_days} days), and older events with no payment")


    # --- approve, deny, cancel, refund --------------------------------------------------------------
    def payment_action(self, action: str, number: str, options: dict[str, Any]) -> None:
        try:
            payment = checkout_selectors.payment_for_order_number(number)
        except UnknownOrder:
            message = f"Unknown order {number!r}: no order has that number"
            raise CommandError(message, returncode=ExitCode.REFUSED) from None
        try:
            if action == "refund":
                result = actions.payment_refund(payment_id=payment.pk, amount=options["amount"],
                                                reason=options["reason"], again=options["again"])
            else:
                result = ACTION_SERVICES[action](payment_id=payment.pk)
        except actions.ActionRefused as exc:
            raise CommandError(exc.message, returncode=ExitCode.REFUSED) from None
        except GatewayUnavailable as exc:
            raise CommandError(f"Midtrans is unavailable: {exc.message}; nothing was applied here"
                               + (" (repeating the refund sends the same refund_key)" if action == "refund" else ""),
                               returncode=ExitCode.UNAVAILABLE) from None
        self.stdout.write(result.message)
        if result.refund is not None and result.sent:
            self.stdout.write(f"  refund #{result.refund.number}: {result.refund.amount:.0f} (key "
                              f"{result.refund.refund_key}); {actions.refund_remaining(payment):.0f} remains")


ACTION_SERVICES = {"approve": actions.payment_approve, "deny": actions.payment_deny, "cancel": actions.payment_cancel}


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        raise ArgumentTypeError(f"{text!r} is not a whole number of rupiah above 0")
    return value


def _preview_row(payment: Payment, run: Run) -> Row | None:
    """Read Midtrans's status and say what the state machine would do; write nothing."""
    order = payment.order
    if not run.permit():
        return None
    try:
        observation = gateway.transaction_status(order.number)
    except TransactionNotFound:
        run.circuit.record(unavailable=False)
        return Row(order.number, order.status, payment.status, "not found", "OK")
    except GatewayUnavailable as exc:
        run.circuit.record(unavailable=True)
        return Row(order.number, order.status, payment.status, "?", f"Error: {exc.message}", unavailable=True)
    except GatewayError as exc:
        return Row(order.number, order.status, payment.status, "?", f"Error: {exc.message}")
    run.circuit.record(unavailable=False)
    target = selectors.payment_would_become(payment, observation)
    midtrans = _midtrans_text(observation.transaction_status, observation.fraud_status)
    return Row(order.number, order.status, payment.status, midtrans, "Would fix" if target else "OK", target)


def _fix_row(payment: Payment, run: Run) -> Row | None:
    """Check with Midtrans and apply through the one service (what the scheduled reconcile does)."""
    order = payment.order
    result = services.payment_reconcile(payment=payment, run=run)
    if result is None:
        return None
    after = Payment.objects.select_related("order").get(pk=payment.pk)
    midtrans = _midtrans_text(after.transaction_status, after.fraud_status) if after.transaction_status \
        else "not found"
    if result == "unavailable":
        return Row(order.number, order.status, payment.status, "?", "Error: Midtrans unavailable", unavailable=True)
    if result == "error":
        return Row(order.number, order.status, payment.status, midtrans, "Error: check failed (see the log)")
    if result == "fixed":
        return Row(order.number, order.status, payment.status, midtrans, "Fixed", after.status)
    return Row(order.number, order.status, payment.status, midtrans, "OK")


def _json_row(row: Row) -> dict[str, Any]:
    data = asdict(row)
    data.pop("unavailable")
    return data


def _midtrans_text(transaction_status: str, fraud_status: str) -> str:
    return f"{transaction_status}/{fraud_status}" if fraud_status and fraud_status != "accept" else transaction_status


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


class _Progress:
    """Progress on stderr (never stdout, which may carry JSON) for runs that take a while."""

    def __init__(self, stream: Any, total: int, verb: str, every_seconds: float = 2.0) -> None:
        self.stream, self.total, self.verb, self.every = stream, total, verb, every_seconds
        self.count, self.last, self.shown = 0, time.monotonic(), False

    def tick(self) -> None:
        self.count += 1
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self.shown = True
            self.stream.write(f"{self.verb} {self.count}/{self.total}")

    def finish(self) -> None:
        if self.shown:
            self.stream.write(f"{self.verb} {self.count}/{self.total}")
