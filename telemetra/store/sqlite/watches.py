"""The watch store on SQLite (see ``store.watches_base``)."""

from __future__ import annotations

from typing import Any

from telemetra.store.sqlite.access import SqliteAccess
from telemetra.store.sqlite.time import dt, us
from telemetra.store.watches_base import WatchRecord, WatchStore

__all__ = ["SqliteWatchStore"]

SELECT = (
    "SELECT w.device_pk, d.id, w.registered_at, w.last_queried_at FROM watches w "
    "JOIN devices d ON d.pk = w.device_pk WHERE w.tenant_id = ?"
)


def _watch(row: Any) -> WatchRecord:
    return WatchRecord(row[0], row[1], dt(row[2]), dt(row[3]))


class SqliteWatchStore(WatchStore, SqliteAccess):
    async def add_watch(self, tenant_id, device_pk, now):
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO watches (device_pk, tenant_id, registered_at, last_queried_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (device_pk) DO NOTHING",
                (device_pk, tenant_id, us(now), us(now)),
            )
            return cur.rowcount == 1

    async def remove_watch(self, tenant_id, device_pk):
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM watches WHERE tenant_id = ? AND device_pk = ?", (tenant_id, device_pk)
            )
            return cur.rowcount == 1

    async def get_watch(self, tenant_id, device_pk):
        row = await self._fetchone(SELECT + " AND w.device_pk = ?", (tenant_id, device_pk))
        return _watch(row) if row else None

    async def list_watches(self, tenant_id):
        rows = await self._fetchall(SELECT + " ORDER BY w.registered_at, w.device_pk", (tenant_id,))
        return [_watch(r) for r in rows]

    async def touch_watch(self, tenant_id, device_pk, now):
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE watches SET last_queried_at = max(last_queried_at, ?) WHERE tenant_id = ? AND device_pk = ?",
                (us(now), tenant_id, device_pk),
            )
