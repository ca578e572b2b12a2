"""Control API, fault injection (/sim/config) and the shell CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import midtransclient
import pytest
import requests
from midtransclient.error_midtrans import MidtransAPIError

from paywatch_dev.servers import REPO_ROOT, free_port
from tests.simulator.conftest import Sim

pytestmark = pytest.mark.timeout(60)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m simulator ...`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=30)


def test_unknown_order_is_404(sim: Sim) -> None:
    """Control reads and moves of an unknown order answer 404."""
    assert requests.get(f"{sim.url}/sim/orders/nope", timeout=5).status_code == 404
    assert sim.act("nope", "settle").status_code == 404


@pytest.mark.parametrize("setup, action", [
    (["settle"], "expire"),
    (["settle"], "cancel"),
    (["pending"], "refund"),
    ([], "refund"),
    (["pending"], "approve"),
    (["pending", "expire"], "settle"),
    (["settle", "refund"], "refund"),
])
def test_impossible_moves_are_412(sim: Sim, order_id: str, setup: list[str], action: str) -> None:
    """Moves the status does not allow answer 412 and change nothing."""
    sim.create(order_id)
    for step in setup:
        sim.act(order_id, step, notify="drop").raise_for_status()
    before = sim.order(order_id)["status"]
    response = sim.act(order_id, action)
    assert response.status_code == 412
    assert response.json()["status"] == before
    assert sim.order(order_id)["status"] == before


def test_bad_parameters_are_400(sim: Sim, order_id: str) -> None:
    """Unknown notify modes and payment types are rejected."""
    sim.create(order_id)
    assert sim.act(order_id, "settle", notify="sometimes").status_code == 400
    assert sim.act(order_id, "pending", payment_type="cash").status_code == 400
    assert sim.order(order_id)["status"] is None


def test_order_json_fields(sim: Sim, order_id: str) -> None:
    """GET /sim/orders/<id> exposes the documented fields."""
    created = sim.create(order_id, 5000)
    data = sim.act(order_id, "pending", payment_type="echannel").json()
    for key in ("order_id", "gross_amount", "status", "payment_type", "fraud_status", "finish_url", "token",
                "redirect_url", "notifications", "transaction_id", "bill_key", "biller_code"):
        assert key in data, key
    assert data["token"] == created["token"]
    assert data["status"] == "pending"
    assert data["finish_redirect_url"].startswith("http://shop.test/orders/finish?order_id=")


def test_settle_without_method_picks_bca(sim: Sim, order_id: str) -> None:
    """settle on a transaction with no method pays by BCA VA."""
    sim.create(order_id)
    data = sim.act(order_id, "settle").json()
    assert (data["status"], data["payment_type"], data["bank"]) == ("settlement", "bank_transfer", "bca")


def test_card_settle_is_capture_then_settlement(sim: Sim, order_id: str) -> None:
    """A card settles as capture/accept first, then settlement."""
    sim.create(order_id)
    data = sim.act(order_id, "settle", payment_type="credit_card").json()
    assert (data["status"], data["fraud_status"]) == ("capture", "accept")
    assert sim.act(order_id, "settle").json()["status"] == "settlement"


def test_denied_card_can_be_followed_by_another_method(sim: Sim, order_id: str) -> None:
    """After a denied card attempt the customer may still pay by VA."""
    sim.create(order_id)
    assert sim.act(order_id, "deny").json()["status"] == "deny"
    assert sim.act(order_id, "pending", payment_type="bank_transfer", bank="bni").json()["status"] == "pending"
    assert sim.act(order_id, "settle").json()["status"] == "settlement"


def test_settlement_reversal(sim: Sim, order_id: str) -> None:
    """deny after settlement is a reversal through the control API."""
    sim.create(order_id)
    sim.act(order_id, "pending", payment_type="cstore", notify="drop")
    sim.act(order_id, "settle", notify="drop")
    assert sim.act(order_id, "deny", notify="drop").json()["status"] == "deny"


def test_expire_before_method_keeps_status_404(sim: Sim, order_id: str) -> None:
    """Expiring a Snap page without a method sends nothing and GET status stays 404."""
    sim.create(order_id)
    data = sim.act(order_id, "expire").json()
    assert data["page_expired"] is True and data["status"] is None
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.status(order_id)
    assert info.value.http_status_code == 404


def test_config_roundtrip_and_validation(sim: Sim) -> None:
    """GET/POST /sim/config; invalid values are refused; reset restores defaults."""
    assert sim.config(status_latency_ms=5, error_rate=0.25, error_mode="503")["error_rate"] == 0.25
    assert requests.get(f"{sim.url}/sim/config", timeout=5).json()["status_latency_ms"] == 5
    assert requests.post(f"{sim.url}/sim/config", json={"error_rate": 2}, timeout=5).status_code == 400
    assert requests.post(f"{sim.url}/sim/config", json={"error_mode": "418"}, timeout=5).status_code == 400
    requests.post(f"{sim.url}/sim/reset", timeout=5).raise_for_status()
    assert requests.get(f"{sim.url}/sim/config", timeout=5).json()["error_rate"] == 0.0


def test_status_latency(sim: Sim, order_id: str) -> None:
    """status_latency_ms delays GET status beyond a short client timeout."""
    sim.create(order_id)
    sim.act(order_id, "pending")
    sim.config(status_latency_ms=3000)
    session = requests.Session()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(f"{sim.url}/v2/{order_id}/status", auth=(sim.server_key, ""), timeout=0.3)
    sim.config(status_latency_ms=0)
    assert session.get(f"{sim.url}/v2/{order_id}/status", auth=(sim.server_key, ""), timeout=5).ok


@pytest.mark.parametrize("mode, status", [("500", 500), ("503", 503), ("429", 429)])
def test_error_modes_raise_api_errors(sim: Sim, order_id: str, mode: str, status: int) -> None:
    """error_rate 1 makes every Snap/Core call fail with the configured status."""
    sim.config(error_rate=1, error_mode=mode)
    with pytest.raises(MidtransAPIError) as info:
        sim.core().transactions.status(order_id)
    assert info.value.http_status_code == status
    with pytest.raises(MidtransAPIError) as info:
        sim.create(order_id)
    assert info.value.http_status_code == status
    sim.config(error_rate=0)
    assert sim.create(order_id)["token"]


def test_html502_is_not_json(sim: Sim, order_id: str) -> None:
    """html502 answers an HTML 502 page the client cannot decode."""
    sim.config(error_rate=1, error_mode="html502")
    with pytest.raises(midtransclient.error_midtrans.JSONDecodeError):
        sim.core().transactions.status(order_id)
    response = requests.get(f"{sim.url}/v2/{order_id}/status", auth=(sim.server_key, ""), timeout=5)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")


def test_timeout_mode(sim: Sim, order_id: str) -> None:
    """timeout mode does not answer within a client's timeout."""
    sim.config(error_rate=1, error_mode="timeout")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{sim.url}/v2/{order_id}/status", auth=(sim.server_key, ""), timeout=0.5)


def test_control_api_is_not_affected_by_errors(sim: Sim, order_id: str) -> None:
    """Fault injection only touches Snap/Core calls, not the control API."""
    sim.create(order_id)
    sim.config(error_rate=1, error_mode="500")
    assert sim.act(order_id, "settle").status_code == 200


def test_cli_settle_and_status(sim: Sim, order_id: str) -> None:
    """``python -m simulator settle <id>`` moves the order and prints its JSON."""
    sim.create(order_id)
    result = run_cli("settle", order_id, "--notify", "drop", "--url", sim.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "settlement"
    result = run_cli("status", order_id, "--url", sim.url)
    assert json.loads(result.stdout)["order_id"] == order_id


def test_cli_pending_refund_and_config(sim: Sim, order_id: str) -> None:
    """CLI pending/--payment-type, refund --amount and config work."""
    sim.create(order_id, 10000)
    result = run_cli("pending", order_id, "--payment-type", "bank_transfer", "--bank", "bri", "--url", sim.url)
    assert json.loads(result.stdout)["bank"] == "bri"
    run_cli("settle", order_id, "--url", sim.url)
    result = run_cli("refund", order_id, "--amount", "1000", "--url", sim.url)
    assert json.loads(result.stdout)["status"] == "partial_refund"
    result = run_cli("config", "--latency-ms", "7", "--notifications", "off", "--url", sim.url)
    assert json.loads(result.stdout) == {**json.loads(result.stdout), "status_latency_ms": 7, "notifications": False}


def test_cli_unknown_order_and_impossible_move(sim: Sim, order_id: str) -> None:
    """The CLI exits non-zero with a clear message for unknown orders and refused moves."""
    result = run_cli("settle", "missing-order", "--url", sim.url)
    assert result.returncode == 1
    assert "unknown order" in result.stderr
    sim.create(order_id)
    result = run_cli("refund", order_id, "--url", sim.url)
    assert result.returncode == 1
    assert "412" in result.stderr


def test_cli_unreachable_simulator() -> None:
    """The CLI exits 2 with a clear message when no simulator listens."""
    result = run_cli("settle", "X-1", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "not reachable" in result.stderr


def test_state_file_survives_restart(tmp_path, notify_server, order_id: str) -> None:
    """With --state-file, transactions survive a restart of the simulator process."""
    from paywatch_dev.servers import start_simulator
    from tests.simulator.conftest import SERVER_KEY

    state = tmp_path / "state.json"
    with start_simulator(tmp_path, notify_server.url, SERVER_KEY, extra_args=["--state-file", str(state)]) as proc:
        snap = midtransclient.Snap(server_key=SERVER_KEY)
        snap.api_config.SNAP_SANDBOX_BASE_URL = f"{proc.url}/snap/v1"
        snap.create_transaction({"transaction_details": {"order_id": order_id, "gross_amount": 7000}})
        requests.post(f"{proc.url}/sim/orders/{order_id}/settle", params={"notify": "drop"}, timeout=5)
    assert proc.proc.returncode == 0
    with start_simulator(tmp_path, notify_server.url, SERVER_KEY, extra_args=["--state-file", str(state)]) as proc:
        data = requests.get(f"{proc.url}/sim/orders/{order_id}", timeout=5).json()
    assert (data["status"], data["gross_amount"]) == ("settlement", 7000)


def test_cli_settle_again_pays_a_va_a_second_time(sim: Sim, order_id: str) -> None:
    """``settle --again`` records another payment into a paid VA (seen by GET status/b2b)."""
    sim.create(order_id)
    sim.act(order_id, "settle", notify="drop").raise_for_status()
    result = run_cli("settle", order_id, "--again", "--notify", "drop", "--url", sim.url)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["transactions"]) == 2
