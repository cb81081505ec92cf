"""Hand points to the process that owns their device's shard, through a queue in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from telemetra.alerts import metrics
from telemetra.alerts.grouping import is_number
from telemetra.alerts.ownership import ShardOwnership
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.store import Store

__all__ = ["RuleInbox", "InboxRow", "inbox_points", "INBOX_BATCH"]

INBOX_BATCH = 5000  # queued points taken at once
InboxRow = tuple[int, int, datetime, str, float]  # (id, device pk, ts, key, value), as the store answers


class RuleInbox:
    """The ``rule_inbox`` queue as this process uses it: points of other processes' devices go in; the points
    of its own shards come out, and are deleted only once evaluated, so that an owner dying before that
    leaves them to the next."""

    def __init__(self, store: Store, ownership: ShardOwnership) -> None:
        self._store = store
        self._ownership = ownership

    async def queue(self, messages: list[TelemetryMessage], foreign: set[int]) -> None:
        """Queue the numeric points of the messages of the ``foreign`` devices (by pk) for the owners of their
        shards."""
        shard_of = self._ownership.shard_of
        queued = [
            (shard_of(message.device_pk), message.device_pk, point.ts, point.key, float(point.value))
            for message in messages
            if message.device_pk in foreign
            for point in message.points
            if is_number(point.value)
        ]
        await self._store.alerts.push_inbox(queued)
        metrics.INBOX_POINTS.labels("queued").inc(len(queued))

    async def peek(self) -> list[InboxRow]:
        """The oldest queued points of the shards this process holds, at most INBOX_BATCH; they stay queued."""
        shards = sorted(self._ownership.shards)
        if not shards:
            return []
        return await self._store.alerts.peek_inbox(shards, INBOX_BATCH)

    def still_owned(self, rows: list[InboxRow]) -> list[InboxRow]:
        """The rows of devices this process owns now: a shard given up meanwhile stays queued for its new
        owner."""
        owns = self._ownership.owns
        return [row for row in rows if owns(row[1])]

    async def drop(self, rows: list[InboxRow]) -> None:
        """Delete evaluated rows."""
        if rows:
            await self._store.alerts.drop_inbox([row[0] for row in rows])
            metrics.INBOX_POINTS.labels("taken").inc(len(rows))


def inbox_points(rows: list[InboxRow]) -> Iterator[tuple[int, list[Point]]]:
    """The rows as (device pk, points) pairs, the form evaluation groups."""
    return ((pk, [Point(key, ts, value)]) for _, pk, ts, key, value in rows)
