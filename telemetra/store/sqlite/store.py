"""SqliteStore: the embedded backend, one file in WAL mode.

How statements run (the writer, the reader, the budgeted query connections, the writer thread's hand-off)
is ``sqlite.connections``; this module is the Store's methods on top of it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import aiosqlite

from telemetra.domain.ids import could_be_device_id
from telemetra.domain.models import ApiKey, Device, TelemetryMessage, Tenant
from telemetra.errors import DeviceIdTaken, DeviceNameTaken, DeviceNotFound, StoreUnavailable, TenantNameTaken
from telemetra.store.base import LIVENESS_COLUMNS, DashboardCounts, NewDevice, NewKey, PointValue
from telemetra.store.codec import decode_value, dumps, resolve_batch_duplicates, split_batch_duplicates
from telemetra.store.migrations import migration_files
from telemetra.store.rollups import RollupConfig
from telemetra.store.rows import KEY_COLUMNS, MOVE_CREDENTIAL_EPOCH, UPDATABLE_DEVICE_COLUMNS, device_columns
from telemetra.store.sql_reads import SqlReads, row_limit
from telemetra.store.sqlite import rollups as sqlite_rollups
from telemetra.store.sqlite.access import inserted_id
from telemetra.store.sqlite.alerts import SqliteAlertStore
from telemetra.store.sqlite.commands import SqliteCommandStore

# Named here too (an explicit re-export): tests hold the writer's setting against it from this module.
from telemetra.store.sqlite.connections import WAL_CHECKPOINT_PAGES as WAL_CHECKPOINT_PAGES
from telemetra.store.sqlite.connections import SqliteConnections
from telemetra.store.sqlite.time import dt as _dt
from telemetra.store.sqlite.time import us as _us
from telemetra.store.sqlite.watches import SqliteWatchStore
from telemetra.store.sqlite.write import write_on_writer_thread

__all__ = ["SqliteStore"]

DEVICE_COLUMNS = device_columns("")


async def _row(conn: aiosqlite.Connection, sql: str, args: tuple) -> Any:
    # What a write just did is read back on the writer: the shared reader connection may still hold the
    # snapshot of a statement another coroutine has not finished, and would not see it yet.
    async with conn.execute(sql, args) as cur:
        return await cur.fetchone()


class SqliteStore(SqliteConnections, SqlReads):
    """The Store on one SQLite file."""

    backend = "sqlite"
    _ts_in = staticmethod(_us)
    _ts_out = staticmethod(_dt)

    def __init__(
        self,
        path: str,
        *,
        keep_raw_messages: bool = True,
        rollup_config: RollupConfig | None = None,
        writer_cache_mb: int = 64,
        query_connections: int = 3,
    ) -> None:
        super().__init__(path, writer_cache_mb=writer_cache_mb, query_connections=query_connections)
        self.keep_raw_messages = keep_raw_messages
        self.rollup_config = rollup_config or RollupConfig()
        self.alerts = SqliteAlertStore(self._tx, self._fetchall)
        self.commands = SqliteCommandStore(self._tx, self._fetchall)
        self.watches = SqliteWatchStore(self._tx, self._fetchall)
        self._key_ids: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        await self.open()
        async with self._tx() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            async with conn.execute("SELECT version FROM schema_migrations") as cur:
                done = {row[0] for row in await cur.fetchall()}
            applied = []
            for version, name, sql in migration_files("sqlite"):
                if version in done:
                    continue
                for statement in _split_sql(sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, _us(datetime.now(timezone.utc)))
                )
                applied.append(name)
        return applied

    async def ping(self) -> None:
        try:
            await self._fetchone("SELECT 1")
        except (sqlite3.Error, AssertionError, ValueError) as exc:
            raise StoreUnavailable() from exc

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

    async def apply_retention(self, now: datetime) -> tuple[int, list[str]]:
        deleted = 0
        for tenant_id, days in await self._fetchall(
            "SELECT id, retention_days FROM tenants WHERE retention_days IS NOT NULL ORDER BY id"
        ):
            cutoff = _us(now - timedelta(days=days))
            async with self._tx() as conn:
                for table in ("points", "messages"):
                    cur = await conn.execute(
                        f"DELETE FROM {table} WHERE device_pk IN (SELECT pk FROM devices WHERE tenant_id = ?) "
                        f"AND ts < ?",
                        (tenant_id, cutoff),
                    )
                    deleted += cur.rowcount
                # The msg_ids of those messages (bookkeeping, not counted): a replay that old is stored anew.
                await conn.execute(
                    "DELETE FROM message_ids WHERE device_pk IN "
                    "(SELECT pk FROM devices WHERE tenant_id = ?) AND ts < ?",
                    (tenant_id, cutoff),
                )
        return deleted, []

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
            await conn.executemany(
                "UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?) WHERE pk = ?",
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

    # -- telemetry ---------------------------------------------------------------------------------
    async def write_telemetry(self, messages: list[TelemetryMessage], received_at: datetime) -> None:
        unique, repeats = split_batch_duplicates(messages)
        # The whole transaction in one hand-off to the writer's thread (see sqlite.inline).
        await self._hand_off(
            write_on_writer_thread, unique, received_at, self._key_ids, self.keep_raw_messages, self.rollup_config
        )
        resolve_batch_duplicates(repeats)

    async def query_points(self, device_pk, keys, start, end, limit, descending):
        key_rows = await self._fetchall(
            "SELECT DISTINCT k.id, k.name FROM latest l JOIN ts_keys k ON k.id = l.key_id WHERE l.device_pk = ?",
            (device_pk,),
        )
        wanted = [(kid, name) for kid, name in key_rows if keys is None or name in keys]
        order = "DESC" if descending else "ASC"
        result: dict[str, list[PointValue]] = {}
        for key_id, name in wanted:
            rows = await self._fetchall(
                f"SELECT ts, v_num, v_str, v_bool, v_json FROM points WHERE device_pk = ? AND key_id = ? "
                f"AND ts >= ? AND ts < ? ORDER BY ts {order} LIMIT ?",
                (device_pk, key_id, _us(start) if start else -(2**62), _us(end) if end else 2**62, limit),
            )
            if rows:
                result[name] = [(_dt(r[0]), decode_value(*r[1:])) for r in rows]
        return result

    # -- analytics -----------------------------------------------------------------------------------
    async def hourly_rollups(self, device_pks, key, start, end):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return []
        return await sqlite_rollups.hourly_rollups(self._reads, sorted(device_pks), key_id, start, end, row_limit())

    async def rollup_totals(self, device_pks, key, start, end):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return {}
        return await sqlite_rollups.rollup_totals(self._reads, sorted(device_pks), key_id, start, end)

    async def energy_hours(self, key, start, end, *, device_pk=None, tenant_id=None):
        key_id = await self._key_id(key)
        if key_id is None:
            return {}
        return await sqlite_rollups.energy_hours(self._reads, key_id, start, end, device_pk, tenant_id)

    async def latest_numeric(self, device_pks, key):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return {}
        out = {}
        for i in range(0, len(device_pks), sqlite_rollups.CHUNK):
            chunk = sorted(device_pks)[i : i + sqlite_rollups.CHUNK]
            rows = await self._fetchall(
                f"SELECT device_pk, ts, v_num FROM latest WHERE device_pk IN "
                f"({','.join('?' * len(chunk))}) AND key_id = ? AND v_num IS NOT NULL",
                (*chunk, key_id),
            )
            out.update({r[0]: (_dt(r[1]), r[2]) for r in rows})
        return out

    async def seal_rollups(self, until, max_slice=timedelta(hours=1)):
        async with self._tx() as conn:
            return await sqlite_rollups.seal(conn, until, max_slice)

    async def rebuild_rollups(self, since):
        energy_ids = [
            kid for kid in [await self._key_id(k) for k in sorted(self.rollup_config.energy_keys)] if kid is not None
        ]
        async with self._tx() as conn:
            return await sqlite_rollups.rebuild(conn, since, energy_ids, self.rollup_config.max_hold)

    async def dashboard(self, now, online_since, day_start) -> DashboardCounts:
        tenants = (await self._fetchone("SELECT count(*) FROM tenants"))[0]
        by_status = dict(await self._fetchall("SELECT status, count(*) FROM devices GROUP BY status"))
        by_type = dict(await self._fetchall("SELECT device_type, count(*) FROM devices GROUP BY device_type"))
        online = (await self._fetchone("SELECT count(*) FROM devices WHERE last_seen >= ?", (_us(online_since),)))[0]
        total = (await self._fetchone("SELECT coalesce(sum(messages), 0) FROM daily_counts"))[0]
        since = (await self._fetchone("SELECT count(*) FROM messages WHERE ts >= ?", (_us(now - timedelta(days=1)),)))[
            0
        ]
        today = await self._fetchone(
            "SELECT points FROM daily_counts WHERE day = ?", (_us(day_start) // 86_400_000_000,)
        )
        return DashboardCounts(
            tenants=tenants,
            devices_by_status=by_status,
            devices_by_type=by_type,
            online=online,
            messages_total=total,
            messages_since=since,
            points_today=today[0] if today else 0,
        )


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements; comments are dropped (our SQL has no '--' or ';' in strings)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def _with_device(key: NewKey, device_pk: int) -> NewKey:
    return dataclasses.replace(key, device_pk=device_pk)


def _device_conflict(detail: str) -> Exception:
    return DeviceIdTaken() if "devices.id" in detail or "devices_id_key" in detail else DeviceNameTaken()
