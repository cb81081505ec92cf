"""RedisBus: live events through Redis pub/sub, so that every process's clients see every process's points.

Pub/sub keeps nothing: a process that is away misses what was published meanwhile, which suits a live
view (the stored data are the record). Each batch is one Redis message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

import orjson
import redis.asyncio as redis

from telemetra.live.hub import LiveEvent

logger = logging.getLogger(__name__)
__all__ = ["RedisBus"]

CONNECT_TIMEOUT_S = 5.0
RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S = 0.5, 10.0


class RedisBus:
    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._redis: redis.Redis | None = None
        self._listener: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    def _client(self) -> redis.Redis:
        assert self._redis is not None  # start() connects before anything publishes or listens
        return self._redis

    async def start(self, on_events: Callable[[list[LiveEvent]], None]) -> None:
        """Connect and subscribe; return once subscribed (or after the connect timeout, retrying behind)."""
        self._redis = redis.from_url(
            self._url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=None, health_check_interval=30
        )
        self._listener = asyncio.get_running_loop().create_task(self._listen(on_events), name="live-redis")
        try:
            await asyncio.wait_for(self._subscribed.wait(), CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            logger.warning(
                "live feed: Redis at %s not reachable yet; streams see only this process until it is", self._url
            )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def publish(self, events: list[LiveEvent]) -> None:
        if events:
            await self._client().publish(self._channel, orjson.dumps(events))

    async def _listen(self, on_events: Callable[[list[LiveEvent]], None]) -> None:
        delay = RECONNECT_MIN_DELAY_S
        while True:
            pubsub = self._client().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                logger.info("live feed: subscribed to Redis channel %s", self._channel)
                delay = RECONNECT_MIN_DELAY_S
                async for message in pubsub.listen():
                    if message is not None and message.get("type") == "message":
                        on_events(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._subscribed.clear()
                logger.warning("live feed: Redis subscription lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
