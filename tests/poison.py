"""Poison messages past the edge's validation: the real store, except that a message whose data holds the key
``poison`` reaches the database in a form the database itself refuses.

The edge refuses what it knows the database would (a NUL character, a number out of range) with a 4xx; the
pipeline's second line is for whatever gets past it. To exercise that line through HTTP and the brokers, the
marked message is changed just before the write, in place (every retry of it is refused alike):
- PostgreSQL: its values become text holding a NUL character, which PostgreSQL cannot store;
- SQLite: it names a device that does not exist (one deleted meanwhile), which the foreign key of
  ``messages`` refuses.
"""

from __future__ import annotations

from typing import Any

from telemetra.domain.models import Point

MISSING_DEVICE_PK = -1


def is_marked(message) -> bool:
    return isinstance(message.data, dict) and "poison" in message.data


class PoisonedStore:
    """Our Store interface over a real store (everything delegated), refusing marked messages for real."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def write_telemetry(self, messages, received_at) -> None:
        for message in messages:
            if is_marked(message):
                if self._store.backend == "postgres":
                    message.points = [Point(p.key, p.ts, "poison\x00") for p in message.points]
                else:
                    message.device_pk = MISSING_DEVICE_PK
        await self._store.write_telemetry(messages, received_at)
