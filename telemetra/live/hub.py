"""LiveHub: this process's subscribers to the live feed, each with a bounded buffer.

A subscriber that falls ``buffer`` events behind is dropped (its buffer ends with the end marker): a
slow client never slows delivery to the others, nor ingestion.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from telemetra.live import metrics

logger = logging.getLogger(__name__)
__all__ = ["LiveHub", "Subscription", "LiveEvent", "EVERY_KIND", "ONLY_TELEMETRY", "event_kind"]

# Telemetry: {"tenant_id", "device_id", "timestamp", "values", "message_id"} (no "kind": the events of older
# processes on the same Redis have none). Others carry "kind": "command" or "alert" (``live/feed.py``).
LiveEvent = dict[str, Any]
TELEMETRY = "telemetry"
ONLY_TELEMETRY = frozenset({TELEMETRY})
EVERY_KIND = frozenset({TELEMETRY, "command", "alert"})


def event_kind(event: LiveEvent) -> str:
    return event.get("kind", TELEMETRY)


class Subscription:
    """Events of some kinds of some devices of one tenant; ``next()`` returns None once the subscription
    has ended."""

    def __init__(
        self, hub: LiveHub, tenant_id: int, device_ids: frozenset[str], buffer: int, kinds: frozenset[str]
    ) -> None:
        self._hub = hub
        self.tenant_id = tenant_id
        self.device_ids = device_ids
        self.kinds = kinds
        self._queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(buffer + 1)  # + the end marker
        self._buffer = buffer
        self.dropped = False
        self.closed = False

    def _offer(self, event: LiveEvent) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._buffer:
            self.dropped = True  # the reader tells its client why it ends
            metrics.DROPPED_SUBSCRIBERS.inc()
            logger.info("live subscriber of tenant %s dropped: %d events behind", self.tenant_id, self._buffer)
            self._end()
            return
        self._queue.put_nowait(event)

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            while not self._queue.empty():  # what it has not read is of no use once it is cut off
                self._queue.get_nowait()
            self._queue.put_nowait(None)
            self._hub._forget(self)

    async def next(self, timeout_s: float | None = None) -> LiveEvent | None:
        """The next event; None when the subscription ended; TimeoutError after ``timeout_s`` without one."""
        return await asyncio.wait_for(self._queue.get(), timeout_s)

    def ready(self, limit: int) -> list[LiveEvent | None]:
        """Up to ``limit`` events already waiting (the end marker included), without waiting: a stream
        writes them in one chunk rather than one write each."""
        taken: list[LiveEvent | None] = []
        while len(taken) < limit and not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

    def close(self) -> None:
        self._end()


class LiveHub:
    def __init__(self, buffer: int = 1000) -> None:
        self._buffer = buffer
        self._by_device: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(
        self, tenant_id: int, device_ids: frozenset[str] | set[str], kinds: frozenset[str] = ONLY_TELEMETRY
    ) -> Subscription:
        """Subscribe to the events of ``kinds`` (telemetry alone unless asked) of the tenant's devices."""
        subscription = Subscription(self, tenant_id, frozenset(device_ids), self._buffer, kinds)
        for device_id in subscription.device_ids:
            self._by_device[device_id].add(subscription)
        metrics.SUBSCRIBERS.inc()
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        for device_id in subscription.device_ids:
            subscribers = self._by_device.get(device_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_device[device_id]
        metrics.SUBSCRIBERS.dec()

    @property
    def has_subscribers(self) -> bool:
        return bool(self._by_device)

    def deliver(self, events: list[LiveEvent]) -> None:
        """Hand events to the subscribers of their device (and tenant); never waits."""
        for event in events:
            kind = event_kind(event)
            for subscription in list(self._by_device.get(event["device_id"], ())):
                if subscription.tenant_id == event["tenant_id"] and kind in subscription.kinds:
                    subscription._offer(event)

    def close(self) -> None:
        """End every subscription (shutting down): readers see the end, ``dropped`` stays False."""
        for subscribers in list(self._by_device.values()):
            for subscription in list(subscribers):
                subscription.close()
