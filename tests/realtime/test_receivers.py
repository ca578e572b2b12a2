"""The broadcast receiver: one persistent sender loop, never waited for, and never a failed payment change."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from checkout.models import Payment, PaymentEvent
from checkout.signature import notification_signature
from paywatch_dev.servers import free_port
from realtime import receivers
from tests.realtime.conftest import apply_status

WAIT = 5.0


def broadcasts(result: str) -> float:
    return REGISTRY.get_sample_value("paywatch_broadcasts_total", {"result": result}) or 0.0


def failures() -> float:
    return broadcasts("error") + broadcasts("timeout")


def layers_at(address: str) -> dict:
    """CHANNEL_LAYERS like the project's, both backends, pointed at ``address``."""
    config = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    config["default"]["CONFIG"]["hosts"][0]["address"] = address
    return config


def with_backend(config: dict, backend: str) -> dict:
    config["default"]["BACKEND"] = backend
    config["default"]["CONFIG"].pop("capacity", None)
    config["default"]["CONFIG"].pop("expiry", None)
    return config


BACKENDS = ["channels_redis.pubsub.RedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"]


def signed_notification(order, transaction_status: str = "settlement") -> dict:
    amount = f"{order.payment.amount:.2f}"
    key = settings.MIDTRANS["SERVER_KEY"]
    return {
        "order_id": order.number, "status_code": "200", "gross_amount": amount, "currency": "IDR",
        "transaction_status": transaction_status, "fraud_status": "accept", "payment_type": "bank_transfer",
        "transaction_id": "9aed5972-5b6a-401e-894b-a32c91ed1a3a",
        "va_numbers": [{"bank": "bca", "va_number": "12345678901"}],
        "signature_key": notification_signature(order.number, "200", amount, key),
    }


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_sync_callers_share_one_sender_loop(order):
    """Calls from plain threads run on one persistent loop, not a new loop per call."""
    before = broadcasts("sent")
    apply_status(order.number, "settlement")
    loop = receivers._sender.loop()
    thread = threading.Thread(target=apply_status, args=(order.number, "refund"))
    thread.start()
    thread.join(WAIT)
    assert receivers.flush(WAIT) == 0
    assert receivers._sender.loop() is loop and loop.is_running()
    assert broadcasts("sent") == before + 2


@pytest.mark.parametrize("backend", BACKENDS, ids=["pubsub", "core"])
def test_redis_down_webhook_still_applies_and_answers_200(order, backend):
    """With Redis unreachable the change commits, the webhook answers 200, the failure is counted."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    failed_before = failures()
    with override_settings(CHANNEL_LAYERS=with_backend(layers_at(dead), backend)):
        response = Client().post("/payments/midtrans/notification", data=json.dumps(signed_notification(order)),
                                 content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "applied"
    payment = Payment.objects.get(pk=order.payment.pk)
    assert (payment.status, payment.order.status) == ("success", "processing")
    assert PaymentEvent.objects.get(pk=response.json()["event_id"]).outcome == "applied"
    assert receivers.flush(WAIT) == 0
    assert failures() == failed_before + 1


@override_settings(REALTIME_BROADCAST_TIMEOUT=0.5)
def test_hung_redis_is_given_up_on_and_counted(order, silent_redis):
    """A Redis that accepts and never answers cannot hold the caller: timeout, counted, no exception."""
    timeouts = broadcasts("timeout")
    with override_settings(CHANNEL_LAYERS=layers_at(silent_redis)):
        version = apply_status(order.number, "settlement")
    assert version == Payment.objects.get(pk=order.payment.pk).version
    assert receivers.flush(WAIT) == 0
    assert broadcasts("timeout") == timeouts + 1


class GatedLayer:
    """A channel layer whose sends wait until the test opens ``gate`` (a Redis that stalls as long as asked)."""

    gate = threading.Event()
    sent: list[dict] = []

    def __init__(self, **_: object) -> None:
        pass

    async def group_send(self, group: str, message: dict) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        self.sent.append(message)


GATED = {"default": {"BACKEND": "tests.realtime.test_receivers.GatedLayer"}}


@pytest.fixture
def gated() -> Iterator[type[GatedLayer]]:
    """Route broadcasts to a closed GatedLayer; open it and drain at the end whatever happened."""
    GatedLayer.gate.clear()
    GatedLayer.sent.clear()
    with override_settings(CHANNEL_LAYERS=GATED, REALTIME_BROADCAST_TIMEOUT=30):
        try:
            yield GatedLayer
        finally:
            GatedLayer.gate.set()
            assert receivers.flush(WAIT) == 0


def test_webhook_answers_while_its_broadcast_still_waits_for_redis(order, gated):
    """The answer to Midtrans never waits for Redis: 200 while the push is pending, the push goes out after."""
    sent = broadcasts("sent")
    response = Client().post("/payments/midtrans/notification", data=json.dumps(signed_notification(order)),
                             content_type="application/json")
    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    assert receivers._sender.pending() == 1 and gated.sent == []
    gated.gate.set()
    assert receivers.flush(WAIT) == 0
    assert [message["version"] for message in gated.sent] == [response.json()["version"]]
    assert broadcasts("sent") == sent + 1


@override_settings(REALTIME_BROADCAST_MAX_IN_FLIGHT=1)
def test_broadcasts_past_the_in_flight_bound_are_dropped_and_counted(order, gated):
    """With Redis stalled, pending sends are bounded: the next is dropped (the heartbeat resync delivers it)."""
    dropped = broadcasts("dropped")
    apply_status(order.number, "settlement")
    apply_status(order.number, "refund")
    assert receivers._sender.pending() == 1
    assert broadcasts("dropped") == dropped + 1
    gated.gate.set()
    assert receivers.flush(WAIT) == 0
    assert [message["payment_status"] for message in gated.sent] == ["success"]


SLOW_LAYER = '''
import asyncio, json, os


class SlowLayer:
    """Takes a while to send, then writes what it sent to $SENT_FILE."""

    def __init__(self, **_):
        pass

    async def group_send(self, group, message):
        await asyncio.sleep(0.3)  # a slow Redis: the process must not exit before the send is done
        with open(os.environ["SENT_FILE"], "a") as sent:
            sent.write(json.dumps(message) + "\\n")
'''

EXITING = '''
import multiprocessing, sys
import django
django.setup()
from django.conf import settings
settings.CHANNEL_LAYERS = {"default": {"BACKEND": "slowlayer.SlowLayer"}}
from realtime.receivers import broadcast_payment_status


def broadcast():
    broadcast_payment_status(order_number="INV-EXIT", order_status="processing", payment_status="success",
                             version=2, source="admin")


if sys.argv[1] == "worker":  # a django-q2 worker: a forked child, which leaves through os._exit
    child = multiprocessing.get_context("fork").Process(target=broadcast)
    child.start()
    child.join()
    sys.exit(child.exitcode)
broadcast()  # a management command: it returns and the interpreter exits
'''


@pytest.mark.parametrize("kind", ["command", "worker"])
def test_a_process_that_exits_gets_its_pending_broadcasts_out_first(tmp_path, kind):
    """A management command or a worker process flushes its pending broadcasts (bounded) before it exits."""
    (tmp_path / "slowlayer.py").write_text(SLOW_LAYER)
    sent = tmp_path / "sent.jsonl"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SENT_FILE": str(sent), "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}",
           "DJANGO_SETTINGS_MODULE": "project.settings"}
    done = subprocess.run([sys.executable, "-c", EXITING, kind], env=env, cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [json.loads(line)["order"] for line in sent.read_text().splitlines()] == ["INV-EXIT"]


def test_broadcast_with_no_layer_is_counted_not_raised(order):
    errors = broadcasts("error")
    with override_settings(CHANNEL_LAYERS={}):
        apply_status(order.number, "settlement")
    assert broadcasts("error") == errors + 1


async def test_broadcast_from_inside_an_event_loop_does_not_block_it(order, communicator):
    """Called on a thread that runs a loop, the receiver hands off instead of raising or blocking."""
    comm = communicator(order.number, order.access_token)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    snapshot = await comm.receive_json_from(timeout=WAIT)
    receivers.broadcast_payment_status(order_number=order.number, order_status="processing",
                                       payment_status="success", version=snapshot["version"] + 1, source="admin")
    message = await comm.receive_json_from(timeout=WAIT)
    assert (message["version"], message["source"]) == (snapshot["version"] + 1, "admin")
    await comm.disconnect()
