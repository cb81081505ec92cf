"""The PostgreSQL store's tenants, API keys, device passwords, rate limit overrides and devices.

The writes of who may send what (and the presence sweep over devices), as a base class of ``PostgresStore``:
they run on its transactions and reads (``postgres.connections``) and read rows back through ``SqlReads``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from telemetra.domain.ids import could_be_device_id
from telemetra.domain.models import ApiKey, Device, Tenant
from telemetra.errors import DeviceIdTaken, DeviceNameTaken, DeviceNotFound, KeyNotFound, TenantNameTaken
from telemetra.store.base import LIVENESS_COLUMNS, NewDevice, NewKey
from telemetra.store.codec import dumps
from telemetra.store.postgres.connections import PostgresConnections
from telemetra.store.rows import MOVE_CREDENTIAL_EPOCH, UPDATABLE_DEVICE_COLUMNS, device_columns
from telemetra.store.sql_reads import SqlReads

__all__ = ["PostgresAccounts"]

DEVICE_COLUMNS = device_columns("::text")


class PostgresAccounts(PostgresConnections, SqlReads):
    """Tenants, keys and devices: the part of the Store on PostgreSQL that manages them."""

    # -- tenants -----------------------------------------------------------------------------------
    async def create_tenant(self, name: str) -> Tenant:
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO tenants (name, created_at) VALUES ($1, now()) "
                    "RETURNING id, name, created_at, retention_days",
                    name,
                )
        except asyncpg.UniqueViolationError as exc:
            raise TenantNameTaken() from exc
        return self._tenant(row)

    async def set_tenant_retention(self, tenant_id: int, days: int | None) -> None:
        async with self._tx() as conn:
            await conn.execute("UPDATE tenants SET retention_days = $1 WHERE id = $2", days, tenant_id)

    # -- keys --------------------------------------------------------------------------------------
    @staticmethod
    async def _insert_key(conn: asyncpg.Connection, key: NewKey, device_pk: int | None = None) -> int:
        return await conn.fetchval(
            "INSERT INTO api_keys (kind, hash, prefix, tenant_id, device_pk, scope, name, created_at, expires_at, "
            "broker_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9) RETURNING id",
            key.kind,
            key.hash,
            key.prefix,
            key.tenant_id,
            device_pk or key.device_pk,
            key.scope,
            key.name,
            key.expires_at,
            key.broker_hash,
        )

    async def create_key(self, key: NewKey) -> ApiKey:
        async with self._tx() as conn:
            key_id = await self._insert_key(conn, key)
        created = await self.get_key(key_id)
        if created is None:  # revoked and deleted meanwhile, with its tenant or device
            raise KeyNotFound()
        return created

    async def revoke_key(self, key_id: int, at: datetime) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, key_id
            )
            if result.endswith(" 1"):
                await conn.execute(MOVE_CREDENTIAL_EPOCH)
        return result.endswith(" 1")

    async def expire_key(self, key_id: int, at: datetime) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(
                "UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > $1)",
                at,
                key_id,
            )
            if result.endswith(" 1"):
                await conn.execute(MOVE_CREDENTIAL_EPOCH)
        return result.endswith(" 1")

    async def record_activity(self, key_usage, device_seen) -> None:
        if not key_usage and not device_seen:
            return
        # Rows are locked in key order, as the writer's batches lock devices (and another process's flush
        # its rows): whatever order a join's plan would update them in, two of these cannot deadlock.
        async with self._tx() as conn:
            if key_usage:
                ids = sorted(key_usage)
                await conn.execute(
                    "UPDATE api_keys k SET usage_count = k.usage_count + u.n, "
                    "last_used_at = greatest(k.last_used_at, u.at) "
                    "FROM unnest($1::int[], $2::bigint[], $3::timestamptz[]) AS u(id, n, at), "
                    "(SELECT id FROM api_keys WHERE id = ANY($1::int[]) ORDER BY id FOR NO KEY UPDATE) AS locked "
                    "WHERE k.id = u.id AND k.id = locked.id",
                    ids,
                    [key_usage[i][0] for i in ids],
                    [key_usage[i][1] for i in ids],
                )
            if device_seen:
                pks = sorted(device_seen)
                # Only the rows whose last-seen time is older: a device's telemetry batch has moved it past
                # the request's time already (in its own statement), and a row that needs nothing is neither
                # locked nor written. Locking every device heard of since the last flush made the writer's
                # batches of those devices wait for this transaction, every few seconds.
                await conn.execute(
                    "UPDATE devices d SET last_seen = greatest(d.last_seen, u.at) "
                    "FROM unnest($1::int[], $2::timestamptz[]) AS u(pk, at), "
                    "(SELECT s.pk FROM devices s JOIN unnest($1::int[], $2::timestamptz[]) AS w(pk, at) "
                    "ON w.pk = s.pk WHERE s.last_seen IS NULL OR s.last_seen < w.at "
                    "ORDER BY s.pk FOR NO KEY UPDATE OF s) AS locked "
                    "WHERE d.pk = u.pk AND d.pk = locked.pk",
                    pks,
                    [device_seen[pk] for pk in pks],
                )

    # -- device passwords ----------------------------------------------------------------------------
    async def set_device_password(self, device_pk: int, password_hash: str, credential_id: str, at: datetime) -> int:
        async with self._tx() as conn:
            return await conn.fetchval(
                "INSERT INTO device_credentials (device_pk, password_hash, version, credential_id, changed_at) "
                "VALUES ($1, $2, 1, $3, $4) ON CONFLICT (device_pk) DO UPDATE SET "
                "password_hash = excluded.password_hash, version = device_credentials.version + 1, "
                "credential_id = excluded.credential_id, changed_at = excluded.changed_at RETURNING version",
                device_pk,
                password_hash,
                credential_id,
                at,
            )

    # -- rate limits -------------------------------------------------------------------------------
    async def set_rate_limit_overrides(self, tenant_id: int, device_pk: int | None, rates: dict[str, str]) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM rate_limit_overrides WHERE tenant_id = $1 AND device_pk IS NOT DISTINCT FROM $2",
                tenant_id,
                device_pk,
            )
            await conn.executemany(
                "INSERT INTO rate_limit_overrides (tenant_id, device_pk, name, rate) VALUES ($1, $2, $3, $4)",
                [(tenant_id, device_pk, name, rate) for name, rate in rates.items()],
            )

    # -- devices -----------------------------------------------------------------------------------
    async def create_device(self, device: NewDevice, key: NewKey) -> Device:
        try:
            async with self._tx() as conn:
                pk = await conn.fetchval(
                    "INSERT INTO devices (id, tenant_id, name, description, device_type, status, location, "
                    "firmware_version, hardware_version, attributes, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, now(), now()) RETURNING pk",
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
                )
                await self._insert_key(conn, key, pk)
        except asyncpg.UniqueViolationError as exc:
            raise (DeviceIdTaken() if exc.constraint_name == "devices_id_key" else DeviceNameTaken()) from exc
        return await self._device_now(pk)

    async def get_devices(self, device_ids: list[str]) -> dict[str, Device]:
        rows = await self._fetch(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ANY($1::text[])",
            sorted({d for d in device_ids if could_be_device_id(d)}),
        )
        return {row[1]: self._device(row) for row in rows}

    async def get_devices_by_pk(self, pks: list[int]) -> dict[int, Device]:
        rows = await self._fetch(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE pk = ANY($1::int[])", sorted(set(pks)))
        return {row[0]: self._device(row) for row in rows}

    async def update_device(self, pk: int, fields: dict[str, Any]) -> Device:
        values = {name: value for name, value in fields.items() if name in UPDATABLE_DEVICE_COLUMNS}
        if "attributes" in values:
            values["attributes"] = dumps(values["attributes"])
        assignments = ", ".join(
            f"{name} = ${i}{'::jsonb' if name == 'attributes' else ''}" for i, name in enumerate(values, start=2)
        )
        try:
            async with self._tx() as conn:
                await conn.execute(
                    f"UPDATE devices SET {assignments}{', ' if values else ''}updated_at = now() WHERE pk = $1",
                    pk,
                    *values.values(),
                )
                if not values.keys() <= LIVENESS_COLUMNS:
                    await conn.execute(MOVE_CREDENTIAL_EPOCH)
        except asyncpg.UniqueViolationError as exc:
            raise DeviceNameTaken() from exc
        return await self._device_now(pk)

    async def _device_now(self, pk: int) -> Device:
        """The device just written, read back; a device deleted meanwhile by another request is not found."""
        device = await self.get_device_by_pk(pk)
        if device is None:
            raise DeviceNotFound()
        return device

    async def delete_device(self, pk: int) -> None:
        async with self._tx() as conn:
            # The hot tables carry no foreign key (it would cost a lookup per inserted row).
            # The tenant's energy sums lose the device's share, then its rollups go.
            await conn.execute(
                "UPDATE tenant_energy_hourly t SET wh = t.wh - e.wh, covered_s = t.covered_s - e.covered_s "
                "FROM energy_hourly e JOIN devices d ON d.pk = e.device_pk WHERE e.device_pk = $1 "
                "AND t.tenant_id = d.tenant_id AND t.key_id = e.key_id AND t.hour = e.hour",
                pk,
            )
            for table in ("points", "latest", "messages", "message_ids", "energy_hourly", "rollup_hourly"):
                await conn.execute(f"DELETE FROM {table} WHERE device_pk = $1", pk)
            await conn.execute("DELETE FROM devices WHERE pk = $1", pk)
            await conn.execute(MOVE_CREDENTIAL_EPOCH)

    async def presence_changes(self, now, default_offline_after_s, device_pk=None):
        conn = "coalesce(attributes->>'connection', '')"
        alive = "(last_seen IS NOT NULL AND last_seen + make_interval(secs => coalesce(offline_after_s, $1)) > $2)"
        online = (
            f"({conn} = 'online' OR ({alive} AND ({conn} <> 'offline' OR connection_at IS NULL "
            f"OR last_seen > connection_at)))"
        )
        changed = (
            f"((presence = 'online' AND NOT {online}) OR (coalesce(presence, 'offline') = 'offline' AND {online}))"
        )
        # One statement that locks the changed rows in pk order, as the writer's batches lock theirs: rows
        # locked in another order (a scan's) deadlock with a batch of the same devices.
        rows = await self._fetch(
            f"UPDATE devices SET presence = CASE WHEN {online} THEN 'online' ELSE 'offline' END "
            f"FROM (SELECT pk FROM devices WHERE {changed} AND ($3::int IS NULL OR pk = $3) "
            f"ORDER BY pk FOR NO KEY UPDATE) AS locked WHERE devices.pk = locked.pk AND {changed} "
            f"RETURNING {', '.join('devices.' + c.strip() for c in DEVICE_COLUMNS.split(','))}, "
            f"devices.presence = 'online'",
            default_offline_after_s,
            now,
            device_pk,
        )
        return [(self._device(r), r[-1]) for r in rows]
