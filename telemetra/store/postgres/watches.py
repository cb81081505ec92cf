"""The watch store on PostgreSQL (see ``store.watches_base``)."""

from __future__ import annotations

from typing import Any

from telemetra.store.postgres.access import PostgresAccess
from telemetra.store.watches_base import WatchRecord, WatchStore

__all__ = ["PostgresWatchStore"]

SELECT = (
    "SELECT w.device_pk, d.id, w.registered_at, w.last_queried_at FROM watches w "
    "JOIN devices d ON d.pk = w.device_pk WHERE w.tenant_id = $1"
)


def _watch(row: Any) -> WatchRecord:
    return WatchRecord(row[0], row[1], row[2], row[3])


class PostgresWatchStore(WatchStore, PostgresAccess):
    async def add_watch(self, tenant_id, device_pk, now):
        async with self._tx() as conn:
            added = await conn.fetchval(
                "INSERT INTO watches (device_pk, tenant_id, registered_at, last_queried_at) VALUES ($1, $2, $3, $3) "
                "ON CONFLICT (device_pk) DO NOTHING RETURNING device_pk",
                device_pk,
                tenant_id,
                now,
            )
        return added is not None

    async def remove_watch(self, tenant_id, device_pk):
        async with self._tx() as conn:
            removed = await conn.fetchval(
                "DELETE FROM watches WHERE tenant_id = $1 AND device_pk = $2 RETURNING device_pk", tenant_id, device_pk
            )
        return removed is not None

    async def get_watch(self, tenant_id, device_pk):
        row = await self._fetchrow(SELECT + " AND w.device_pk = $2", tenant_id, device_pk)
        return _watch(row) if row else None

    async def list_watches(self, tenant_id):
        rows = await self._fetch(SELECT + " ORDER BY w.registered_at, w.device_pk", tenant_id)
        return [_watch(r) for r in rows]

    async def touch_watch(self, tenant_id, device_pk, now):
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE watches SET last_queried_at = greatest(last_queried_at, $1) "
                "WHERE tenant_id = $2 AND device_pk = $3",
                now,
                tenant_id,
                device_pk,
            )
