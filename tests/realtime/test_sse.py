"""The Server-Sent Events fallback (``/orders/<number>/events``) against real daphne processes.

Changes come from the simulator (a signed webhook into the stack's daphne) or
from this process through the one service. Two more daphnes on the same
database check the periodic version check (``WEBSOCKET_HEARTBEAT_SECONDS=2``):
one whose broadcasts are lost on purpose, one whose channel layer points at a
Redis that is not there.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from paywatch_dev.servers import free_port, wait_until
from realtime.groups import order_group
from realtime.receivers import payment_message
from tests.realtime.conftest import apply_status

pytestmark = [pytest.mark.e2e]

WAIT = 15.0  # read timeout: a few of the fast daphnes' 2 s version checks, or one webhook round trip
FAST_HEARTBEAT = "2"


class EventStream:
    """A Server-Sent Events reader following EventSource's parsing rules (what this endpoint uses of them)."""

    def __init__(self, url: str, last_event_id: int | None = None) -> None:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(url, headers=headers, stream=True, timeout=(5, WAIT))
        self.comments: list[str] = []
        self.retry: int | None = None
        self._chunks = self.response.iter_content(chunk_size=None)
        self._buffer = b""

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.response.close()

    def _line(self) -> str:
        while b"\n" not in self._buffer:
            chunk = next(self._chunks, None)  # a silent server fails here with requests' read timeout
            assert chunk is not None, "the server ended the stream"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().rstrip("\r")

    def next_block(self) -> dict[str, Any]:
        """Return the next dispatched event or comment: ``{"event", "id", "data"}`` or ``{"comment"}``."""
        fields: dict[str, str] = {}
        while True:
            line = self._line()
            if not line:
                if "data" in fields:
                    return {"event": fields.get("event", "message"), "id": fields.get("id"),
                            "data": json.loads(fields["data"])}
                fields = {}
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
                return {"comment": line[1:].strip()}
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "retry":
                    self.retry = int(value)
                elif name == "data" and "data" in fields:
                    fields["data"] += "\n" + value
                else:
                    fields[name] = value

    def next_event(self, timeout: float = WAIT) -> dict[str, Any]:
        """Return the next event, skipping comments (kept in ``comments``); fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while "comment" in (block := self.next_block()):
            assert time.monotonic() < deadline, f"no event within {timeout} s, only comments {self.comments}"
        return block


def events_url(web_url: str, number: str, token: str) -> str:
    return f"{web_url}/orders/{number}/events?t={token}"


@pytest.fixture(scope="module")
def fast_web(stack) -> Iterator[str]:
    """A daphne that re-reads the version every ~2 s."""
    with stack.extra_web("fast", WEBSOCKET_HEARTBEAT_SECONDS=FAST_HEARTBEAT) as web:
        yield web.url


@pytest.fixture(scope="module")
def cut_off_web(stack) -> Iterator[str]:
    """A daphne whose channel layer (and every other Redis use) points at a port nobody listens on."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with stack.extra_web("cut-off", WEBSOCKET_HEARTBEAT_SECONDS=FAST_HEARTBEAT, REDIS_URL=dead) as web:
        yield web.url


@pytest.fixture(scope="module")
def core_web(stack) -> Iterator[str]:
    """A daphne on the core channel layer (the stack's runs the default, pub/sub)."""
    with stack.extra_web("core", CHANNEL_LAYER="core") as web:
        yield web.url


@pytest.fixture
def shop(stack, transactional_db, products):
    stack.sim_config(error_rate=0.0)
    return stack


def test_snapshot_then_each_change_as_payment_status_events(shop):
    """The snapshot first, then the simulator's settlement as ``event: payment.status`` with ``id:`` = version."""
    checkout = shop.checkout()
    with EventStream(events_url(shop.web_url, checkout.number, checkout.token)) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        assert "no-store" in stream.response.headers["Cache-Control"]
        assert stream.response.headers["X-Accel-Buffering"] == "no"
        assert stream.response.headers["Referrer-Policy"] in {"no-referrer", "same-origin"}
        snapshot = stream.next_event()
        assert stream.retry is not None and stream.retry > 0
        assert snapshot["event"] == "payment.status"
        assert snapshot["data"]["type"] == "payment.status"
        assert snapshot["data"]["source"] == "snapshot"
        assert snapshot["data"]["order"] == checkout.number
        assert snapshot["data"]["payment_status"] == "pending"
        assert snapshot["id"] == str(snapshot["data"]["version"])

        shop.sim("settle", checkout.number)
        change = stream.next_event()
    assert change["event"] == "payment.status"
    assert change["id"] == str(snapshot["data"]["version"] + 1)
    assert change["data"].items() >= {  # plus the page's state and details
        "type": "payment.status", "order": checkout.number, "order_status": "processing",
        "payment_status": "success", "version": snapshot["data"]["version"] + 1, "source": "webhook",
    }.items()


def test_last_event_id_resumes_after_what_the_client_has(shop):
    """A reconnect with the current version gets no copy of it, but the next change; an older id gets the state."""
    checkout = shop.checkout()
    url = events_url(shop.web_url, checkout.number, checkout.token)
    with EventStream(url) as first:
        first.next_event()
        shop.sim("settle", checkout.number)
        settled = first.next_event()
    current = int(settled["id"])

    with EventStream(url, last_event_id=current - 1) as behind:
        caught_up = behind.next_event()
    assert (caught_up["id"], caught_up["data"]["payment_status"]) == (str(current), "success")

    with EventStream(url, last_event_id=current) as resumed:
        shop.sim("refund", checkout.number)
        refunded = resumed.next_event()  # the first event: a repeat of ``current`` would come before it
    assert refunded["id"] == str(current + 1)
    assert refunded["data"]["payment_status"] == "refunded"


@pytest.mark.parametrize("query", ["?t=wrong-token", "", "?t="])
def test_wrong_or_missing_token_is_404(shop, query):
    checkout = shop.checkout()
    response = requests.get(f"{shop.web_url}/orders/{checkout.number}/events{query}", timeout=10)
    assert response.status_code == 404
    assert not response.headers.get("Content-Type", "").startswith("text/event-stream")


def test_unknown_order_is_404(stack, transactional_db):
    response = requests.get(f"{stack.web_url}/orders/PW-NOPE/events?t=whatever", timeout=10)
    assert response.status_code == 404


def test_closing_the_stream_leaves_the_order_group(stack, order):
    """The client going away cancels the stream, which unsubscribes daphne from the order's group."""
    client = redis.Redis.from_url(stack.redis_url)
    pattern = f"*__group__{order_group(order.number)}"

    def subscribers() -> int:
        return sum(count for _, count in client.pubsub_numsub(*client.pubsub_channels(pattern)))

    with EventStream(events_url(stack.web_url, order.number, order.access_token)) as stream:
        stream.next_event()
        assert wait_until(lambda: subscribers() == 1, WAIT), "the stream never joined the group"
    assert wait_until(lambda: subscribers() == 0, WAIT), "the group is still subscribed after the client left"
    client.close()


def test_a_change_whose_broadcast_is_lost_reaches_the_stream_by_the_version_check(fast_web, order, monkeypatch):
    """The sender fails (no channel layer in this process): the stream's periodic re-read sends the change."""
    monkeypatch.setattr("realtime.receivers.get_channel_layer", lambda: None)
    with EventStream(events_url(fast_web, order.number, order.access_token)) as stream:
        snapshot = stream.next_event()
        version = apply_status(order.number, "settlement")
        resynced = stream.next_event()
        assert resynced["id"] == str(version) == str(snapshot["data"]["version"] + 1)
        assert resynced["data"]["source"] == "resync"
        assert resynced["data"]["payment_status"] == "success"
        # Nothing newer since: the next check only keeps the connection alive.
        assert stream.next_block() == {"comment": "keepalive"}


def test_stream_works_while_the_channel_layer_is_unreachable(cut_off_web, order):
    """Redis unreachable for the web process: still 200 and the snapshot, and changes arrive by the version check."""
    with EventStream(events_url(cut_off_web, order.number, order.access_token)) as stream:
        assert stream.response.status_code == 200
        snapshot = stream.next_event()
        assert snapshot["data"]["source"] == "snapshot"
        version = apply_status(order.number, "settlement")  # its broadcast goes to a Redis that daphne cannot reach
        resynced = stream.next_event()
    assert resynced["id"] == str(version) == str(snapshot["data"]["version"] + 1)
    assert resynced["data"]["source"] == "resync"
    assert resynced["data"]["order_status"] == "processing"


@pytest.mark.parametrize("kind", ["pubsub", "core"])
def test_a_broadcast_reaches_the_stream_as_sent_on_either_layer(request, stack, order, kind):
    """A ``payment.status`` broadcast to the order's group is forwarded verbatim; an older version is dropped."""
    web_url = stack.web_url if kind == "pubsub" else request.getfixturevalue("core_web")
    host = {"address": stack.redis_url, "socket_timeout": None}
    layer = RedisPubSubChannelLayer(hosts=[host]) if kind == "pubsub" else RedisChannelLayer(hosts=[host])

    async def send(*messages: dict[str, Any]) -> None:
        for message in messages:
            await layer.group_send(order_group(order.number), message)
        # Close this loop's connections; the core layer's flush() would delete the messages and groups too.
        await (layer.flush() if kind == "pubsub" else layer.close_pools())

    with EventStream(events_url(web_url, order.number, order.access_token)) as stream:
        version = stream.next_event()["data"]["version"]
        stale = payment_message(order_number=order.number, order_status="pending", payment_status="pending",
                                version=version, source="webhook")
        change = payment_message(order_number=order.number, order_status="processing", payment_status="success",
                                 version=version + 1, source="admin")
        asyncio.run(send(stale, change))
        assert stream.next_event() == {"event": "payment.status", "id": str(version + 1), "data": change}
