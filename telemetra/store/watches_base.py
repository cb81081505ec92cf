"""Watches of the monitoring API (seed 004): which devices a tenant watches, since when, last queried when.

Kept in the database so that every process (and a restart) knows them; the live subscription behind a
watch is each process's own (``live/watches.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

__all__ = ["WatchStore", "WatchRecord"]


@dataclass(frozen=True, slots=True)
class WatchRecord:
    device_pk: int
    device_id: str
    registered_at: datetime
    last_queried_at: datetime


class WatchStore(ABC):
    @abstractmethod
    async def add_watch(self, tenant_id: int, device_pk: int, now: datetime) -> bool:
        """Watch the device; False when it was already watched."""

    @abstractmethod
    async def remove_watch(self, tenant_id: int, device_pk: int) -> bool: ...

    @abstractmethod
    async def get_watch(self, tenant_id: int, device_pk: int) -> WatchRecord | None: ...

    @abstractmethod
    async def list_watches(self, tenant_id: int) -> list[WatchRecord]:
        """The tenant's watches, oldest first."""

    @abstractmethod
    async def touch_watch(self, tenant_id: int, device_pk: int, now: datetime) -> None:
        """Record that the watch was queried at ``now``."""
