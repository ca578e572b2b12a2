"""The pub/sub layer against a real redis-server that is killed and started again on the same port."""

import asyncio
import logging

import pytest
import redis

from paywatch_dev.servers import start_redis
from realtime.layers import ResilientRedisPubSubChannelLayer


async def _deliver_until_received(publisher, received: asyncio.Queue, limit: float = 30.0) -> dict:
    """Publish numbered messages until one comes through; return the first that did."""
    async def keep_publishing() -> None:
        n = 0
        while True:
            n += 1
            try:
                await publisher.group_send("orders", {"type": "payment.status", "n": n})
            except Exception:  # Redis may still be starting; the next one will do
                pass
            await asyncio.sleep(0.2)  # pacing of the publisher, not a wait for an event

    publishing = asyncio.create_task(keep_publishing())
    try:
        return await asyncio.wait_for(received.get(), limit)
    finally:
        publishing.cancel()


@pytest.fixture
def private_redis(tmp_path):
    server = start_redis(tmp_path)
    yield server
    server.stop()


async def test_pushes_flow_again_after_redis_is_killed_and_restarted(private_redis, tmp_path, caplog):
    port = private_redis.port
    host = {"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": None, "max_connections": 100}
    subscriber = ResilientRedisPubSubChannelLayer(hosts=[host])
    publisher = ResilientRedisPubSubChannelLayer(hosts=[host])
    channel = await subscriber.new_channel()
    await subscriber.group_add("orders", channel)
    received: asyncio.Queue = asyncio.Queue()

    async def consume() -> None:  # like a consumer: one receive loop, never cancelled mid-outage
        while True:
            received.put_nowait(await subscriber.receive(channel))

    consuming = asyncio.create_task(consume())
    try:
        assert (await _deliver_until_received(publisher, received))["type"] == "payment.status"

        caplog.set_level(logging.WARNING)
        private_redis.proc.kill()
        private_redis.proc.wait()
        with pytest.raises(redis.exceptions.ConnectionError):
            await publisher.group_send("orders", {"type": "payment.status", "n": -1})
        # Stay down until the subscriber has failed to reconnect at least twice.
        shard = subscriber._get_layer()._shards[0]
        async with asyncio.timeout(30):
            while shard._failures < 2:
                await asyncio.sleep(0.05)
        restarted = start_redis(tmp_path, port=port)
        try:
            while not received.empty():
                received.get_nowait()
            message = await _deliver_until_received(publisher, received)
            assert message["n"] > 0
        finally:
            restarted.stop()
    finally:
        consuming.cancel()
        await subscriber.flush()
        await publisher.flush()

    layer_records = [r for r in caplog.records if r.name in ("paywatch.realtime", "channels_redis.pubsub")]
    # One line when Redis is lost, one when it is back: not a traceback a second.
    assert [r.getMessage() for r in layer_records] == [
        "Channel layer lost Redis; re-subscribing when it is back",
        "Channel layer re-subscribed after losing Redis",
    ]
    assert all(r.exc_info is None for r in layer_records)


def test_settings_use_the_resilient_layer_unless_core_is_chosen(settings):
    from django.conf import settings as live

    assert live.CHANNEL_LAYERS["default"]["BACKEND"] in (
        "realtime.layers.ResilientRedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"
    )
    if live.CHANNEL_LAYER == "pubsub":
        assert live.CHANNEL_LAYERS["default"]["BACKEND"] == "realtime.layers.ResilientRedisPubSubChannelLayer"
