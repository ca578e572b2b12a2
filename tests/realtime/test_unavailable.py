"""A websocket opened while Redis is down is closed with 1013 (try again later), never an HTTP 500.

Each test starts its own redis-server and stops it, so the session's shared
Redis keeps running; the page retries a 1013 with its backoff (order.js).
"""

import asyncio
import logging

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from paywatch_dev.servers import start_redis
from realtime.unavailable import TRY_AGAIN_LATER

WAIT = 10.0
# The configured layer (pub/sub by default) and the core one, which fail at different calls.
LAYERS = {"configured": None, "core": "channels_redis.core.RedisChannelLayer"}


@pytest.fixture
def stopped_redis_url(tmp_path) -> str:
    """The URL of a redis-server that ran and was then stopped (its port refuses connections)."""
    server = start_redis(tmp_path)
    server.stop()
    return server.url


@pytest.mark.parametrize("layer", sorted(LAYERS))
async def test_new_socket_while_redis_is_down_is_closed_with_1013(
    order, communicator, settings, stopped_redis_url, caplog, layer
):
    """Accepted, then closed with 1013: no snapshot, no exception out of the app, no ERROR logged."""
    settings.REDIS_URL = stopped_redis_url
    backend = LAYERS[layer] or settings.CHANNEL_LAYERS["default"]["BACKEND"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {"hosts": [
        {"address": stopped_redis_url, "socket_timeout": None}]}}}
    comm = communicator(order.number, order.access_token)
    connected, _ = await comm.connect(timeout=WAIT)
    assert connected
    assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": TRY_AGAIN_LATER}
    await comm.wait(timeout=WAIT)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.e2e
async def test_daphne_sends_1013_to_the_browser_while_redis_is_down(order, stack, stopped_redis_url):
    """Through a real daphne: the client reads close code 1013 (not a 500 handshake, not 1006/1011)."""
    web = await asyncio.to_thread(stack.extra_web, "no-redis", REDIS_URL=stopped_redis_url)
    try:
        url = web.url.replace("http", "ws", 1) + f"/ws/orders/{order.number}/?t={order.access_token}"
        socket = await websockets.connect(url, origin=web.url, open_timeout=WAIT)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == TRY_AGAIN_LATER
    finally:
        web.stop()
    log = web.log_path.read_text(errors="replace")
    assert "Traceback" not in log and '"level": "ERROR"' not in log, log[-3000:]
