"""The SQLite store's tenants, API keys, device passwords, rate limit overrides and devices.

The writes of who may send what (and the presence sweep over devices), as a base class of ``SqliteStore``:
they run on its writer and readers (``sqlite.connections``) and read rows back through ``SqlReads``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timezone
from typing import Any

import aiosqlite

from telemetra.domain.ids import could_be_device_id
from telemetra.domain.models import ApiKey, Device, Tenant
from telemetra.errors import DeviceIdTaken, DeviceNameTaken, DeviceNotFound, TenantNameTaken
from telemetra.store.base import LIVENESS_COLUMNS, NewDevice, NewKey
from telemetra.store.codec import dumps
from telemetra.store.rows import KEY_COLUMNS, MOVE_CREDENTIAL_EPOCH, UPDATABLE_DEVICE_COLUMNS, device_columns
from telemetra.store.sql_reads import SqlReads
from telemetra.store.sqlite.access import inserted_id
from telemetra.store.sqlite.connections import SqliteConnections
from telemetra.store.sqlite.time import dt as _dt
from telemetra.store.sqlite.time import us as _us

__all__ = ["SqliteAccounts"]

DEVICE_COLUMNS = device_columns("")


async def _row(conn: aiosqlite.Connection, sql: str, args: tuple) -> Any:
    # What a write just did is read back on the writer: the shared reader connection may still hold the
    # snapshot of a statement another coroutine has not finished, and would not see it yet.
    async with conn.execute(sql, args) as cur:
        return await cur.fetchone()


class SqliteAccounts(SqliteConnections, SqlReads):
    """Tenants, keys and devices: the part of the Store on SQLite that manages them."""

    # -- tenants -----------------------------------------------------------------------------------
    async def create_tenant(self, name: str) -> Tenant:
        now = datetime.now(timezone.utc)
        try:
            async with self._tx() as conn:
                cur = await conn.execute("INSERT INTO tenants (name, created_at) VALUES (?, ?)", (name, _us(now)))
                tenant_id = inserted_id(cur)
        except sqlite3.IntegrityError as exc:
            raise TenantNameTaken() from exc
        return Tenant(id=tenant_id, name=name, created_at=_dt(_us(now)))

    async def set_tenant_retention(self, tenant_id: int, days: int | None) -> None:
        async with self._tx() as conn:
            await conn.execute("UPDATE tenants SET retention_days = ? WHERE id = ?", (days, tenant_id))

    # -- keys --------------------------------------------------------------------------------------
    async def _insert_key(self, conn: aiosqlite.Connection, key: NewKey, now: datetime) -> int:
        cur = await conn.execute(
            "INSERT INTO api_keys (kind, hash, prefix, tenant_id, device_pk, scope, name, created_at, expires_at, "
            "broker_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.kind,
                key.hash,
                key.prefix,
                key.tenant_id,
                key.device_pk,
                key.scope,
                key.name,
                _us(now),
                _us(key.expires_at),
                key.broker_hash,
            ),
        )
        return inserted_id(cur)

    async def create_key(self, key: NewKey) -> ApiKey:
        async with self._tx() as conn:
            key_id = await self._insert_key(conn, key, datetime.now(timezone.utc))
            return self._key(await _row(conn, f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)))

    async def revoke_key(self, key_id: int, at: datetime) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_us(at), key_id)
            )
            if cur.rowcount == 1:
                await conn.execute(MOVE_CREDENTIAL_EPOCH)
            return cur.rowcount == 1

    async def expire_key(self, key_id: int, at: datetime) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "UPDATE api_keys SET expires_at = ? WHERE id = ? AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (_us(at), key_id, _us(at)),
            )
            if cur.rowcount == 1:
                await conn.execute(MOVE_CREDENTIAL_EPOCH)
            return cur.rowcount == 1

    async def record_activity(self, key_usage, device_seen) -> None:
        if not key_usage and not device_seen:
            return
        async with self._tx() as conn:
            await conn.executemany(
                "UPDATE api_keys SET usage_count = usage_count + ?, "
                "last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
                [(count, _us(at), key_id) for key_id, (count, at) in key_usage.items()],
            )
            # A row already as recent (its telemetry batch moved it) is not written again.
            await conn.executemany(
                "UPDATE devices SET last_seen = ?1 WHERE pk = ?2 AND (last_seen IS NULL OR last_seen < ?1)",
                [(_us(at), pk) for pk, at in device_seen.items()],
            )

    # -- device passwords ----------------------------------------------------------------------------
    async def set_device_password(self, device_pk: int, password_hash: str, credential_id: str, at: datetime) -> int:
        async with self._tx() as conn:
            row = await _row(
                conn,
                "INSERT INTO device_credentials (device_pk, password_hash, version, credential_id, "
                "changed_at) VALUES (?, ?, 1, ?, ?) ON CONFLICT (device_pk) DO UPDATE SET "
                "password_hash = excluded.password_hash, version = device_credentials.version + 1, "
                "credential_id = excluded.credential_id, changed_at = excluded.changed_at "
                "RETURNING version",
                (device_pk, password_hash, credential_id, _us(at)),
            )
            return row[0]

    # -- rate limits -------------------------------------------------------------------------------
    async def set_rate_limit_overrides(self, tenant_id: int, device_pk: int | None, rates: dict[str, str]) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM rate_limit_overrides WHERE tenant_id = ? AND device_pk IS ?", (tenant_id, device_pk)
            )
            await conn.executemany(
                "INSERT INTO rate_limit_overrides (tenant_id, device_pk, name, rate) VALUES (?, ?, ?, ?)",
                [(tenant_id, device_pk, name, rate) for name, rate in rates.items()],
            )

    # -- devices -----------------------------------------------------------------------------------
    async def create_device(self, device: NewDevice, key: NewKey) -> Device:
        now = _us(datetime.now(timezone.utc))
        try:
            async with self._tx() as conn:
                cur = await conn.execute(
                    "INSERT INTO devices (id, tenant_id, name, description, device_type, status, location, "
                    "firmware_version, hardware_version, attributes, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        device.id,
                        device.tenant_id,
                        device.name,
                        device.description,
                        device.device_type,
                        device.status,
                        device.location,
                        device.firmware_version,
                        device.hardware_version,
                        dumps(device.attributes),
                        now,
                        now,
                    ),
                )
                pk = inserted_id(cur)
                await self._insert_key(conn, _with_device(key, pk), _dt(now))
                return self._device(await _row(conn, f"SELECT {DEVICE_COLUMNS} FROM devices WHERE pk = ?", (pk,)))
        except sqlite3.IntegrityError as exc:
            raise _device_conflict(str(exc)) from exc

    async def get_devices(self, device_ids: list[str]) -> dict[str, Device]:
        found: dict[str, Device] = {}
        unique = sorted({d for d in device_ids if could_be_device_id(d)})
        for start in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
            chunk = unique[start : start + 500]
            rows = await self._fetchall(
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk)
            )
            found.update((row[1], self._device(row)) for row in rows)
        return found

    async def update_device(self, pk: int, fields: dict[str, Any]) -> Device:
        values = {name: value for name, value in fields.items() if name in UPDATABLE_DEVICE_COLUMNS}
        if "attributes" in values:
            values["attributes"] = dumps(values["attributes"])
        for name in ("last_seen", "connection_at"):
            if name in values:
                values[name] = _us(values[name])
        values["updated_at"] = _us(datetime.now(timezone.utc))
        assignments = ", ".join(f"{name} = ?" for name in values)
        try:
            async with self._tx() as conn:
                await conn.execute(f"UPDATE devices SET {assignments} WHERE pk = ?", (*values.values(), pk))
                if not values.keys() <= LIVENESS_COLUMNS | {"updated_at"}:
                    await conn.execute(MOVE_CREDENTIAL_EPOCH)
                row = await _row(conn, f"SELECT {DEVICE_COLUMNS} FROM devices WHERE pk = ?", (pk,))
        except sqlite3.IntegrityError as exc:
            raise _device_conflict(str(exc)) from exc
        if row is None:  # deleted meanwhile by another request
            raise DeviceNotFound()
        return self._device(row)

    async def delete_device(self, pk: int) -> None:
        async with self._tx() as conn:
            # The hot tables carry no foreign key (it would cost a lookup per inserted row).
            await conn.execute("DELETE FROM points WHERE device_pk = ?", (pk,))
            await conn.execute("DELETE FROM latest WHERE device_pk = ?", (pk,))
            await conn.execute("DELETE FROM message_ids WHERE device_pk = ?", (pk,))
            # The tenant's energy sums lose the device's share, then its rollups go.
            await conn.execute(
                "UPDATE tenant_energy_hourly AS t SET wh = t.wh - e.wh, covered_s = t.covered_s - e.covered_s "
                "FROM energy_hourly e JOIN devices d ON d.pk = e.device_pk WHERE e.device_pk = ? "
                "AND t.tenant_id = d.tenant_id AND t.key_id = e.key_id AND t.hour = e.hour",
                (pk,),
            )
            await conn.execute("DELETE FROM energy_hourly WHERE device_pk = ?", (pk,))
            await conn.execute("DELETE FROM rollup_hourly WHERE device_pk = ?", (pk,))
            await conn.execute("DELETE FROM devices WHERE pk = ?", (pk,))
            await conn.execute(MOVE_CREDENTIAL_EPOCH)

    async def presence_changes(self, now, default_offline_after_s, device_pk=None):
        conn = "coalesce(json_extract(attributes, '$.connection'), '')"
        alive = "(last_seen IS NOT NULL AND last_seen + coalesce(offline_after_s, ?) * 1000000 > ?)"
        online = (
            f"({conn} = 'online' OR ({alive} AND ({conn} <> 'offline' OR connection_at IS NULL "
            f"OR last_seen > connection_at)))"
        )
        alive_args = (default_offline_after_s, _us(now))
        transitions = (
            ("offline", f"presence = 'online' AND NOT {online}"),
            ("online", f"coalesce(presence, 'offline') = 'offline' AND {online}"),
        )
        where = " OR ".join(f"({cond})" for _, cond in transitions)
        # Find them on the reader first: the scan must not hold the one write lock the ingest writer needs.
        pks = [
            row[0]
            for row in await self._fetchall(
                f"SELECT pk FROM devices WHERE ({where}) AND (? IS NULL OR pk = ?)",
                (*alive_args, *alive_args, device_pk, device_pk),
            )
        ]
        changes = []
        for start in range(0, len(pks), 500):  # SQLite caps the number of bound parameters
            chunk = pks[start : start + 500]
            async with self._tx() as tx:
                for state, cond in transitions:
                    rows = await tx.execute_fetchall(
                        f"UPDATE devices SET presence = '{state}' WHERE {cond} AND pk IN ({','.join('?' * len(chunk))}) "
                        f"RETURNING {DEVICE_COLUMNS}",
                        (*alive_args, *chunk),
                    )
                    changes += [(self._device(r), state == "online") for r in rows]
        return changes


def _with_device(key: NewKey, device_pk: int) -> NewKey:
    return dataclasses.replace(key, device_pk=device_pk)


def _device_conflict(detail: str) -> Exception:
    return DeviceIdTaken() if "devices.id" in detail or "devices_id_key" in detail else DeviceNameTaken()
