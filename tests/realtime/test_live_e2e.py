"""Live status over real processes: daphne, Redis, and a second Python process that changes a payment.

Also the traps measured in channels-facts.md: idle sockets must stay open past
redis-py's socket timeout, and a burst of handshakes must not exhaust the
layer's connection pool. Both layers are exercised there: the stack's daphne
runs the default (pub/sub) and ``core_web`` a second daphne on the core layer.
"""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import websockets
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from paywatch_dev.servers import ServerProcess, free_port, http_ready
from paywatch_dev.stack import ROOT
from realtime.groups import order_group
from realtime.receivers import payment_message

pytestmark = [pytest.mark.e2e]

WAIT = 10.0
IDLE_SECONDS = 11.0  # longer than redis-py 8's 5 s socket timeout, which closed idle sockets at ~6 s
BURST = 300  # redis-py 8's async pool default (100) made 16% of 200 handshakes fail

CHANGE_IN_ANOTHER_PROCESS = """
import sys, django
django.setup()
from checkout.services import events as event_services, payments as payment_services
from checkout.models import Order
from checkout.observations import Observation
order = Order.objects.select_related("payment").get(number=sys.argv[1])
event = event_services.payment_event_record(source="reconcile", payment=order.payment)
observation = Observation(order_id=order.number, transaction_status="settlement", status_code="200",
                          gross_amount=order.payment.amount, currency="IDR")
transition = payment_services.payment_apply_observation(payment_id=order.payment.pk, observation=observation,
                                                        source="reconcile", event_id=event.pk)
print(transition.version)
"""


@pytest.fixture(scope="module")
def core_web(stack) -> Iterator[str]:
    """A second daphne on the same database and Redis, with the core channel layer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = ServerProcess(
        f"daphne-core-{port}",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        stack.workdir, url=url, ready=http_ready(f"{url}/healthz"),
        env={**stack.env, "CHANNEL_LAYER": "core"}, cwd=ROOT, port=port,
    ).start()
    yield url
    web.stop()


@pytest.fixture
def webs(stack, core_web) -> dict[str, str]:
    return {"pubsub": stack.web_url, "core": core_web}


def layer_for(kind: str, redis_url: str):
    host = {"address": redis_url, "socket_timeout": None}
    return RedisPubSubChannelLayer(hosts=[host]) if kind == "pubsub" else RedisChannelLayer(hosts=[host])


def ws_url(web_url: str, order) -> str:
    return web_url.replace("http", "ws", 1) + f"/ws/orders/{order.number}/?t={order.access_token}"


async def open_socket(web_url: str, order):
    """Open a watcher the way a browser on the site would; return it and its snapshot."""
    socket = await websockets.connect(ws_url(web_url, order), origin=web_url, open_timeout=WAIT)
    snapshot = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
    assert snapshot["source"] == "snapshot"
    return socket, snapshot


async def test_change_in_another_process_reaches_the_socket(stack, transactional_db, make_order):
    """A plain second Python process applies a change through the service; daphne's socket receives it."""
    order = await asyncio.to_thread(make_order)
    socket, snapshot = await open_socket(stack.web_url, order)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHANGE_IN_ANOTHER_PROCESS, order.number, env=stack.env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    message = json.loads(await asyncio.wait_for(socket.recv(), WAIT))
    await socket.close()
    assert message.items() >= {  # plus the page's state and details
        "type": "payment.status", "order": order.number, "order_status": "processing", "payment_status": "success",
        "version": snapshot["version"] + 1, "source": "reconcile",
    }.items()
    assert int(out.split()[-1]) == message["version"]


async def test_idle_sockets_stay_open_and_still_deliver(stack, webs, transactional_db, make_order):
    """A socket with nothing to say for longer than 10 s is not closed by the layer, on either layer."""
    order = await asyncio.to_thread(make_order)
    sockets = {kind: await open_socket(url, order) for kind, url in webs.items()}

    async def idle(kind: str) -> str:
        socket, _ = sockets[kind]
        try:
            message = await asyncio.wait_for(socket.recv(), IDLE_SECONDS)
        except TimeoutError:
            return "open"
        except websockets.ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else '?'}"
        return f"unexpected message {message}"

    assert dict(zip(webs, await asyncio.gather(*(idle(kind) for kind in webs)), strict=True)) == {
        "pubsub": "open", "core": "open"}
    for kind, (socket, snapshot) in sockets.items():
        layer = layer_for(kind, stack.redis_url)
        change = payment_message(order_number=order.number, order_status="processing", payment_status="success",
                                 version=snapshot["version"] + 1, source="admin")
        await layer.group_send(order_group(order.number), change)
        assert json.loads(await asyncio.wait_for(socket.recv(), WAIT)) == change, kind
        await socket.close()
        await layer.flush()


async def test_burst_of_simultaneous_handshakes_all_succeed(stack, webs, transactional_db, make_order):
    """A few hundred sockets opened at once, per layer: every one is accepted and gets its snapshot."""
    # 10 sockets an order: under WEBSOCKET_MAX_PER_ORDER (20), which caps sockets per order.
    orders = [await asyncio.to_thread(make_order) for _ in range(BURST // 10)]
    for kind, url in webs.items():
        results = await asyncio.gather(
            *(open_socket(url, orders[i % len(orders)]) for i in range(BURST)), return_exceptions=True
        )
        failed = [repr(r) for r in results if isinstance(r, BaseException)]
        opened = [r[0] for r in results if not isinstance(r, BaseException)]
        await asyncio.gather(*(socket.close() for socket in opened))
        assert not failed, f"{kind}: {len(failed)}/{BURST} failed, e.g. {failed[:3]}"
