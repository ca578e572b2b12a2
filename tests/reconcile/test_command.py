"""``manage.py payments``: the table, --json, --fix, check-status, cleanup-expired, and the exit codes."""

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from checkout.models import Payment, PaymentEvent
from paywatch_dev.stack import ROOT
from tests.reconcile.conftest import payment_of

pytestmark = [pytest.mark.e2e]
HEADER = ["Order Number", "Order Status", "Payment Status", "Midtrans Status", "Action"]


def payments(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("payments", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def manage(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "payments", *args], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=120)


def table_rows(out: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|")]
    assert rows[0] == HEADER
    return {row[0]: row for row in rows[1:]}


def test_check_all_without_fix_only_reads(snap_order) -> None:
    paid, waiting, fresh = snap_order("settle"), snap_order("pending"), snap_order(None)
    versions = {o.number: payment_of(o).version for o in (paid, waiting, fresh)}
    events = PaymentEvent.objects.count()
    out, _ = payments("check-all")
    rows = table_rows(out)
    assert rows[paid.number] == [paid.number, "pending", "pending", "settlement", "Would fix (→ success)"]
    assert rows[waiting.number] == [waiting.number, "pending", "pending", "pending", "OK"]
    assert rows[fresh.number] == [fresh.number, "pending", "pending", "not found", "OK"]
    assert "3 payment(s) checked: 0 fixed, 1 would fix, 2 OK, 0 error(s)" in out
    assert {o.number: payment_of(o).version for o in (paid, waiting, fresh)} == versions
    assert PaymentEvent.objects.count() == events  # not even an audit row: nothing was applied


def test_check_all_fix_applies_through_the_service(snap_order) -> None:
    paid, waiting = snap_order("settle"), snap_order("pending")
    out, _ = payments("check-all", "--fix")
    rows = table_rows(out)
    assert rows[paid.number][3:] == ["settlement", "Fixed (→ success)"]
    assert rows[waiting.number][3:] == ["pending", "OK"]
    assert "2 payment(s) checked: 1 fixed, 0 would fix, 1 OK, 0 error(s)" in out
    assert (payment_of(paid).status, payment_of(paid).order.status) == ("success", "processing")
    assert PaymentEvent.objects.filter(payment__order=paid, source="reconcile", outcome="applied").count() == 1


def test_check_all_older_than_and_limit(snap_order) -> None:
    old = [snap_order("pending", age=timedelta(minutes=90)) for _ in range(3)]
    young = snap_order("pending")
    out, _ = payments("check-all", "--older-than", "60")
    assert set(table_rows(out)) == {o.number for o in old}
    out, _ = payments("check-all", "--limit", "2")
    assert len(table_rows(out)) == 2 and young.number not in table_rows(out)  # oldest first


def test_check_all_json_is_one_array_on_stdout_and_nothing_else(stack, snap_order) -> None:
    paid = snap_order("settle")
    result = manage(stack, "check-all", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)  # raises if anything else is on stdout
    assert isinstance(rows, list)
    assert {
        "order_number": paid.number, "order_status": "pending", "payment_status": "pending",
        "midtrans_status": "settlement", "action": "Would fix", "target": "success",
    } in rows
    assert payment_of(paid).status == "pending"


def test_check_all_exits_3_when_midtrans_is_unavailable(sim, snap_order) -> None:
    order = snap_order("settle")
    sim.sim_config(error_rate=1.0, error_mode="503")
    result = manage(sim, "check-all", "--json")
    assert result.returncode == 3
    row = next(r for r in json.loads(result.stdout) if r["order_number"] == order.number)
    assert row["action"].startswith("Error: ")
    assert "Midtrans is unavailable" in result.stderr
    assert payment_of(order).status == "pending"


def test_check_status_applies_and_prints_before_and_after(snap_order) -> None:
    order = snap_order("settle")
    out, _ = payments("check-status", order.number)
    assert "before: order pending, payment pending (version 1)" in out
    assert "Midtrans: settlement" in out
    assert "after:  order processing, payment success (version 2) — applied" in out
    assert payment_of(order).status == "success"
    assert PaymentEvent.objects.filter(payment__order=order, source="admin", outcome="applied").exists()


def test_check_status_dry_run_changes_nothing(snap_order) -> None:
    order = snap_order("settle")
    out, _ = payments("check-status", order.number, "--dry-run")
    assert "would become: payment success" in out and "dry run" in out
    assert payment_of(order).status == "pending"


def test_check_status_unknown_order_exits_1_with_a_clear_message(stack, transactional_db) -> None:
    with pytest.raises(CommandError, match="Unknown order 'INV-NOPE'") as raised:
        payments("check-status", "INV-NOPE")
    assert raised.value.returncode == 1
    result = manage(stack, "check-status", "INV-NOPE")
    assert (result.returncode, result.stdout) == (1, "")
    assert "Unknown order 'INV-NOPE': no order has that number" in result.stderr


def test_check_status_exits_3_when_midtrans_is_unavailable(sim, snap_order) -> None:
    order = snap_order("settle")
    sim.sim_config(error_rate=1.0, error_mode="html502")
    result = manage(sim, "check-status", order.number)
    assert result.returncode == 3 and "Midtrans is unavailable" in result.stderr
    assert payment_of(order).status == "pending"


@pytest.mark.parametrize("args", [["check-all", "--limit", "0"], ["check-all", "--older-than", "x"], ["nope"], [],
                                  ["refund", "INV-1", "--amount", "12.5"], ["check-status"]])
def test_bad_arguments_exit_2_with_argparse_usage(stack, args: list[str]) -> None:
    result = manage(stack, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert "usage: manage.py payments" in result.stderr and "Traceback" not in result.stderr


def test_the_help_and_the_readme_state_each_exit_code() -> None:
    from reconcile.management.commands.payments import Command, ExitCode

    assert [int(code) for code in ExitCode] == [0, 1, 2, 3]
    assert all(f"{int(code)} " in Command.help.split("Exit codes:", 1)[1] for code in ExitCode)
    commands = (ROOT / "README.md").read_text().split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    for code in ExitCode:
        assert f"| {int(code)} |" in commands, f"README.md's Commands section lacks exit code {int(code)}"


def test_cleanup_expired_command(sim, snap_order) -> None:
    paid, unpaid = snap_order("settle", overdue=True), snap_order("pending", overdue=True)
    out, _ = payments("cleanup-expired", "--dry-run")
    assert "1 would be paid, 1 would be expired" in out and "dry run: nothing changed" in out
    assert {payment_of(paid).status, payment_of(unpaid).status} == {"pending"}
    out, _ = payments("cleanup-expired")
    assert f"{paid.number}: pending → success, Midtrans settlement: paid" in out
    assert f"{unpaid.number}: pending → expired" in out
    assert "2 overdue payment(s): 1 paid, 1 expired" in out
    assert (payment_of(paid).status, payment_of(unpaid).status) == ("success", "expired")


def test_cleanup_expired_exits_3_and_expires_nothing_when_midtrans_is_down(sim, snap_order) -> None:
    order = snap_order("pending", overdue=True)
    Payment.objects.filter(order=order).update(expires_at=timezone.now() - timedelta(hours=1))
    sim.sim_config(error_rate=1.0, error_mode="500")
    result = manage(sim, "cleanup-expired")
    assert result.returncode == 3
    assert payment_of(order).status == "pending"
