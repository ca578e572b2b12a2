"""The broadcast receiver: one persistent sender loop, and never a failed payment change."""

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from checkout.models import Payment, PaymentEvent
from checkout.signature import notification_signature
from realtime import receivers
from tests.realtime.conftest import apply_status
from tests.support.servers import free_port

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
    assert failures() == failed_before + 1


@override_settings(REALTIME_BROADCAST_TIMEOUT=0.5)
def test_hung_redis_is_given_up_on_and_counted(order, silent_redis):
    """A Redis that accepts and never answers cannot hold the caller: timeout, counted, no exception."""
    timeouts = broadcasts("timeout")
    with override_settings(CHANNEL_LAYERS=layers_at(silent_redis)):
        version = apply_status(order.number, "settlement")
    assert version == Payment.objects.get(pk=order.payment.pk).version
    assert broadcasts("timeout") == timeouts + 1


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
