"""LiveFeed: the post-commit consumer that turns committed messages, command states and alerts into live events.

Ingestion never waits for it: a batch is put in a bounded queue (dropped and counted when full) and a
task of its own publishes it, to this process's hub or, with Redis, to every process's hub. A command's
new state and an alert raised, cleared or acknowledged take the same way (``on_command``, ``on_alert``,
called by the command service and the rule engine once the change is committed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telemetra.domain.alerts import Alert
from telemetra.domain.commands import Command
from telemetra.domain.models import TelemetryMessage
from telemetra.domain.timeparse import isoformat
from telemetra.live import metrics
from telemetra.live.hub import LiveEvent, LiveHub
from telemetra.live.redis_bus import RedisBus

logger = logging.getLogger(__name__)
__all__ = ["LiveFeed"]

# Committed batches waiting to be published; past it a batch is dropped from the live feed (it is stored).
MAX_PENDING_BATCHES = 1000


class LiveFeed:
    def __init__(
        self, hub: LiveHub, bus: RedisBus | None = None, *, max_pending_batches: int = MAX_PENDING_BATCHES
    ) -> None:
        self.hub = hub
        self._bus = bus
        # A batch of committed messages (turned into events by the publishing task, off the writer's path),
        # or events made already (commands, alerts).
        self._pending: asyncio.Queue[list[TelemetryMessage] | list[LiveEvent]] = asyncio.Queue(max_pending_batches)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._bus is not None:
            await self._bus.start(self.hub.deliver)
        self._task = asyncio.get_running_loop().create_task(self._publish_loop(), name="live-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._bus is not None:
            await self._bus.stop()
        self.hub.close()

    async def on_batch(self, messages: list[TelemetryMessage]) -> None:
        """Post-commit consumer: queue the batch for publication, never wait."""
        self._enqueue(messages)

    def on_command(self, command: Command) -> None:
        """A command's new state, committed: queue its event, never wait."""
        self._enqueue(
            [
                {
                    "kind": "command",
                    "tenant_id": command.tenant_id,
                    "device_id": command.device_id,
                    "command_id": command.id,
                    "name": command.name,
                    "status": command.status,
                }
            ]
        )

    def on_alert(self, alert: Alert) -> None:
        """An alert raised, cleared or acknowledged, committed: queue its event, never wait."""
        self._enqueue(
            [
                {
                    "kind": "alert",
                    "tenant_id": alert.tenant_id,
                    "device_id": alert.device_id,
                    "alert_id": alert.id,
                    "rule_id": alert.rule_id,
                    "severity": alert.severity,
                    "state": alert.status,
                }
            ]
        )

    def _enqueue(self, items: list[TelemetryMessage] | list[LiveEvent]) -> None:
        if not items or (self._bus is None and not self.hub.has_subscribers):
            return
        try:
            self._pending.put_nowait(items)
        except asyncio.QueueFull:
            metrics.DROPPED_EVENTS.labels("feed_full").inc(len(items))

    async def _publish_loop(self) -> None:
        while True:
            items = await self._pending.get()
            events = self._events(items) if isinstance(items[0], TelemetryMessage) else items
            if self._bus is None:
                self.hub.deliver(events)
                continue
            try:
                await self._bus.publish(events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Other processes miss them; this process's own streams still see its commits.
                metrics.DROPPED_EVENTS.labels("bus_error").inc(len(events))
                logger.warning("live feed: %d events not published to Redis: %s", len(events), exc)
                self.hub.deliver(events)

    def _events(self, messages: list[Any]) -> list[LiveEvent]:
        return [
            {
                "tenant_id": m.tenant_id,
                "device_id": m.device_id,
                "timestamp": isoformat(m.ts),
                "values": m.data,
                "message_id": m.id,
            }
            for m in messages
            if m.device_id is not None
        ]
