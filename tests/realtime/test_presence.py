"""realtime.presence: the pings of one window refresh their sockets in one Redis round trip."""

import asyncio
import time

import redis
from redis.asyncio.client import Pipeline

from paywatch_dev.servers import free_port
from realtime import presence


async def test_the_pings_of_a_window_share_one_pipeline(settings, monkeypatch) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [presence.KEY_PREFIX + f"order.PRESENCE-{k}" for k in range(3)]
    for key in keys:
        client.zadd(key, {"a": 1.0, "b": 1.0})
    client.delete(presence.KEY_PREFIX + "order.PRESENCE-gone")
    round_trips = []
    execute = Pipeline.execute

    async def counted(self, *args, **kwargs):
        round_trips.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    seen = [presence.refresh(f"order.PRESENCE-{k}", member) for k in range(3) for member in ("a", "b")]
    seen.append(presence.refresh("order.PRESENCE-gone", "a"))  # pruned or closed meanwhile: not brought back
    await asyncio.gather(*(asyncio.shield(future) for future in seen))

    assert round_trips == [4]  # one ZADD per order, all in one pipeline
    for key in keys:
        assert all(score > time.time() - 60 for _, score in client.zrange(key, 0, -1, withscores=True))
    assert not client.exists(presence.KEY_PREFIX + "order.PRESENCE-gone")
    client.delete(*keys)


async def test_a_window_whose_redis_is_away_still_ends(settings) -> None:
    """The pong waits for the window: with Redis unreachable it must end (unwritten), not hang or raise."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    future = presence.refresh("order.PRESENCE-away", "a")
    await asyncio.wait_for(asyncio.shield(future), presence.REFRESH_WINDOW_SECONDS + presence.SOCKET_TIMEOUT + 5)
    assert future.result() is None
