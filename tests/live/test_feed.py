"""The live feed never makes ingestion wait: a stuck bus fills a bounded queue, then batches are skipped."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from telemetra.domain.models import TelemetryMessage
from telemetra.domain.timeparse import utcnow
from telemetra.live.feed import LiveFeed
from telemetra.live.hub import LiveHub


class StuckBus:
    """A bus whose publication never returns, as when Redis hangs."""

    def __init__(self) -> None:
        self.calls = 0

    async def start(self, on_events) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events) -> None:
        self.calls += 1
        await asyncio.Event().wait()


def _dropped() -> float:
    return REGISTRY.get_sample_value("telemetra_live_dropped_events_total", {"reason": "feed_full"}) or 0.0


async def test_a_stuck_bus_never_holds_up_the_pipeline() -> None:
    bus = StuckBus()
    feed = LiveFeed(LiveHub(), bus, max_pending_batches=5)
    await feed.start()
    try:
        before = _dropped()
        message = TelemetryMessage(
            device_pk=1, ts=utcnow(), data={"t": 1}, metadata={}, type="sensor", points=[], device_id="d", tenant_id=1
        )
        await feed.on_batch([message])
        while bus.calls == 0:  # the publisher took it and is now stuck in the bus
            await asyncio.sleep(0.01)
        for _ in range(19):  # each call returns at once; what does not fit is skipped
            await asyncio.wait_for(feed.on_batch([message]), 1)
        # Five wait in the queue, the rest were skipped and counted.
        assert _dropped() - before == 19 - 5
    finally:
        await feed.stop()
