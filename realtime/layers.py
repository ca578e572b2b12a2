"""The pub/sub channel layer, made to survive a Redis restart.

channels-redis 4.3.0's ``RedisPubSubChannelLayer`` keeps one pub/sub
connection per shard. When Redis goes away for more than a moment, its
receive task logs a traceback every second and, once Redis is back, never
receives again (redis-py's own reconnect leaves the subscription dead): every
open page in that process stops getting pushes while its socket stays open.
Here the receive task, on any failure, drops the connection and subscribes
every channel and group it held again on a fresh one, with capped, jittered
backoff, logging once when Redis is lost and once when it is back.

Messages published while Redis was away are lost (pub/sub has no memory);
the page's heartbeat carries its version, and the server answers a stale one
with the current status (``realtime.consumers``), so they still arrive.
"""

import asyncio
import logging
import random

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.pubsub import _close_redis as close_redis

logger = logging.getLogger("paywatch.realtime")

BACKOFF_BASE = 0.25
BACKOFF_CAP = 5.0


class ResilientShardConnection(RedisSingleShardConnection):
    """A shard connection whose receive loop re-subscribes after losing Redis."""

    def __init__(self, host: dict, channel_layer: RedisPubSubLoopLayer) -> None:
        super().__init__(host, channel_layer)
        self._stale = False
        self._failures = 0

    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._stale:
                    await self._resubscribe()
                if self._pubsub is not None and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                await self._lost(exc)

    async def _lost(self, exc: Exception) -> None:
        self._stale = True
        self._failures += 1
        if self._failures == 1:
            logger.warning("Channel layer lost Redis; re-subscribing when it is back",
                           extra={"error": f"{type(exc).__name__}: {exc}", "channels": len(self._subscribed_to)})
        await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(self._failures, 8))))

    async def _resubscribe(self) -> None:
        """Drop the dead connection and subscribe everything this shard held on a new one."""
        async with self._lock:
            old, self._redis, self._pubsub = self._redis, None, None
            if old is not None:
                try:
                    await close_redis(old)
                except Exception:  # the connection is already broken; nothing to save
                    pass
            self._ensure_redis()
            if self._subscribed_to:
                await self._pubsub.subscribe(*self._subscribed_to)
            self._stale = False
        logger.warning("Channel layer re-subscribed after losing Redis",
                       extra={"channels": len(self._subscribed_to), "attempts": self._failures})
        self._failures = 0


class ResilientRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` that keeps receiving across Redis restarts; same settings."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        layer = super()._get_layer()
        # Shards connect lazily, so swapping them before first use loses nothing.
        if not all(isinstance(shard, ResilientShardConnection) for shard in layer._shards):
            layer._shards = [ResilientShardConnection(shard.host, layer) for shard in layer._shards]
        return layer
