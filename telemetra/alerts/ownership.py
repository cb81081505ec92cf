"""Which devices this process evaluates rules for: its leased share of the rule shards.

A device belongs to shard ``pk % shards``; each shard is leased in the database by one process at a time,
and the processes that take part share the shards evenly (a new one gets its share once the others give
back their excess at their next renewal; one that stops cleanly gives its shards back at once; one that
dies loses them when its lease runs out). So each (rule, device) is evaluated by exactly one process, which
keeps the device's windows whole.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Iterable

from telemetra.domain.timeparse import utcnow
from telemetra.store import Store

__all__ = ["ShardOwnership", "LEASE_S"]

LEASE_S = 15.0
# A lease is trusted for this fraction of its length, counted from before it was asked for: a slow answer
# or a clock a little off must not leave two processes believing they own the same shard.
TRUST = 0.7


class ShardOwnership:
    def __init__(self, store: Store, *, lease_s: float = LEASE_S, owner: str | None = None) -> None:
        self._store = store
        self.lease_s = lease_s
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.shards: frozenset[int] = frozenset()
        self.total = 0  # shards in all; 0 until the first renewal
        self._trusted_until = 0.0

    @property
    def started(self) -> bool:
        return self.total > 0

    def owns(self, device_pk: int) -> bool:
        return time.monotonic() < self._trusted_until and device_pk % self.total in self.shards

    def owned(self, device_pks: Iterable[int]) -> set[int]:
        """The devices of ``device_pks`` this process owns now (``owns`` for a whole batch, the clock read
        once)."""
        if time.monotonic() >= self._trusted_until:
            return set()
        total, shards = self.total, self.shards
        if len(shards) == total:  # the only process: every device is ours
            return set(device_pks)
        return {pk for pk in device_pks if pk % total in shards}

    def shard_of(self, device_pk: int) -> int:
        return device_pk % self.total

    async def renew(self) -> tuple[frozenset[int], frozenset[int]]:
        """Renew the lease and rebalance; return the shards (gained, lost)."""
        asked = time.monotonic()
        shards, total = await self._store.alerts.hold_shards(self.owner, utcnow(), timedelta(seconds=self.lease_s))
        held = frozenset(shards)
        gained, lost = held - self.shards, self.shards - held
        self.shards, self.total = held, total
        self._trusted_until = asked + self.lease_s * TRUST
        return gained, lost

    async def release(self) -> None:
        self._trusted_until = 0.0
        self.shards = frozenset()
        await self._store.alerts.release_shards(self.owner)
