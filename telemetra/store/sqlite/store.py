"""SqliteStore: the embedded backend, one file in WAL mode.

How statements run (the writer, the reader, the budgeted query connections, the writer thread's hand-off)
is ``sqlite.connections``; tenants, keys and devices are managed in ``sqlite.accounts``, the store's base
class. This module is the rest of the Store's methods on top of those: lifecycle, retention, telemetry and
analytics.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from telemetra.domain.models import TelemetryMessage
from telemetra.errors import StoreUnavailable
from telemetra.store.base import DashboardCounts, PointValue, RetentionPreview
from telemetra.store.codec import decode_value, resolve_batch_duplicates, split_batch_duplicates
from telemetra.store.console_reads import MINUTE_COUNTS_KEPT, ConsoleDialect, ConsoleReads
from telemetra.store.migrations import migration_files
from telemetra.store.rollups import RollupConfig
from telemetra.store.sql_reads import row_limit
from telemetra.store.sqlite import rollups as sqlite_rollups
from telemetra.store.sqlite.accounts import SqliteAccounts
from telemetra.store.sqlite.alerts import SqliteAlertStore
from telemetra.store.sqlite.bulk import rows_param
from telemetra.store.sqlite.commands import SqliteCommandStore

# Named here too (an explicit re-export): tests hold the writer's setting against it from this module.
from telemetra.store.sqlite.connections import WAL_CHECKPOINT_PAGES as WAL_CHECKPOINT_PAGES
from telemetra.store.sqlite.time import dt as _dt
from telemetra.store.sqlite.time import us as _us
from telemetra.store.sqlite.users import SqliteUserStore
from telemetra.store.sqlite.watches import SqliteWatchStore
from telemetra.store.sqlite.write import write_on_writer_thread

__all__ = ["SqliteStore"]


_CONNECTION = "coalesce(json_extract(attributes, '$.connection'), '')"
CONSOLE_DIALECT = ConsoleDialect(
    ordered_id="n.id",
    ordered_name="n.name_key",
    device_order="id",
    pk_in="{column} IN (SELECT value FROM json_each(?))",
    pk_param=rows_param,
    # domain/online.py's rule, as presence_changes writes it.
    online=(
        f"({_CONNECTION} = 'online' OR (last_seen IS NOT NULL AND last_seen > ? - coalesce(offline_after_s, ?) "
        f"* 1000000 AND ({_CONNECTION} <> 'offline' OR connection_at IS NULL OR last_seen > connection_at)))"
    ),
    bucket="({col} / ?) * ?",
    width_param=lambda width_s: width_s * 1_000_000,
    greatest="max",
    least="min",
)


class SqliteStore(SqliteAccounts):
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
        self.console = ConsoleReads(self._query, self._ts_in, self._ts_out, CONSOLE_DIALECT, self._device)
        self.users = SqliteUserStore(self._tx, self._fetchall, self._read_now)
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

    # -- retention ---------------------------------------------------------------------------------
    async def apply_retention(self, now: datetime) -> tuple[int, list[str]]:
        deleted = 0
        async with self._tx() as conn:  # the console's per-minute counts show a day; two are kept
            await conn.execute("DELETE FROM minute_counts WHERE minute < ?", (_us(now - MINUTE_COUNTS_KEPT),))
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

    async def preview_retention(self, now: datetime) -> RetentionPreview:
        tenants = []
        for tenant_id, days in await self._fetchall(
            "SELECT id, retention_days FROM tenants WHERE retention_days IS NOT NULL ORDER BY id"
        ):
            cutoff = now - timedelta(days=days)
            counts = [
                (
                    await self._fetchone(
                        f"SELECT count(*) FROM {table} WHERE device_pk IN "
                        f"(SELECT pk FROM devices WHERE tenant_id = ?) AND ts < ?",
                        (tenant_id, _us(cutoff)),
                    )
                )[0]
                for table in ("points", "messages")
            ]
            tenants.append((tenant_id, days, cutoff, counts[0], counts[1]))
        return RetentionPreview(tenants, [])

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
    """Split a migration into statements; comments are dropped (our SQL has no '--' or ';' in strings). A
    trigger's body holds ';': a statement ends where SQLite says one is complete."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    statements, current = [], ""
    for piece in "\n".join(lines).split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \n\t;"):
        statements.append(current.strip())
    return statements
