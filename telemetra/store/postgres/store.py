"""PostgresStore: the production backend on asyncpg.

Telemetry tables are partitioned by month (created ahead of need by ``ensure_partitions``); set-based
writes (``unnest`` arrays, ``COPY``) put a telemetry batch in one statement, and its transaction in as
few round trips as it can (``PostgresStore._batch_tx``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, AsyncIterator

import asyncpg

from telemetra.domain.ids import could_be_device_id
from telemetra.domain.models import ApiKey, Device, Tenant, TelemetryMessage
from telemetra.errors import (DeviceIdTaken, DeviceNameTaken, StoreUnavailable, TenantNameTaken, UnstorableMessage,
                              UnstorableValue)
from telemetra.store.budget import QueryBudget, current_budget
from telemetra.store.base import (LIVENESS_COLUMNS, PYTHON_DATA_ERRORS, DashboardCounts, HistoryRequest, NewDevice, NewKey, PointValue)
from telemetra.store.codec import (decode_value, dumps, resolve_batch_duplicates, split_batch_duplicates)
from telemetra.store.postgres import rollups as pg_rollups
from telemetra.store.postgres.ids import MessageIds
from telemetra.store.postgres.write import create_staging, write_batch
from telemetra.store.postgres.alerts import PostgresAlertStore
from telemetra.store.postgres.commands import PostgresCommandStore
from telemetra.store.postgres.watches import PostgresWatchStore
from telemetra.store.migrations import migration_files
from telemetra.store.rollups import RollupConfig
from telemetra.store.rows import MOVE_CREDENTIAL_EPOCH, UPDATABLE_DEVICE_COLUMNS, device_columns
from telemetra.store.sql_reads import SqlReads, row_limit
from telemetra.store.sqlbuild import numbered

logger = logging.getLogger(__name__)
__all__ = ["PostgresStore"]

DEVICE_COLUMNS = device_columns("::text")

PARTITIONED_TABLES = ("messages", "points")
PARTITION_NAME = re.compile(r"y(\d{4})m(\d{2})")
PARTITION_MONTHS_BEHIND = 1
PARTITION_MONTHS_AHEAD = 3
# Any fixed number: it only has to be the same in every process that migrates this database.
MIGRATION_LOCK_ID = 7_346_221
CONNECTION_LOST = (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError)
# A batch refused for what it holds: class 22 (data exception: a NUL character in text, a number out of range,
# invalid text; asyncpg's own DataError for an argument it cannot encode is a ValueError), class 23 (a
# constraint) and class 54 (a value past a limit: an index row too big). Every other error (a lost connection,
# a timeout, a read-only or full database, a trigger that refuses) means the database could not write at all.
PG_DATA_ERRORS = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError,
                  asyncpg.exceptions.ProgramLimitExceededError, *PYTHON_DATA_ERRORS)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a pooled connection as it is (asyncpg still rolls back an open transaction).

    asyncpg's default reset sends UNLISTEN, RESET ALL, CLOSE ALL and pg_advisory_unlock_all on every
    release: a round trip per query. The store never changes session state: no SET, no LISTEN, no cursor
    outside a transaction, only transaction-scoped advisory locks.
    """


class _BudgetedReads:
    """What ``postgres.rollups`` reads through: the store's ``_fetch``, so that a budget applies."""

    def __init__(self, store: "PostgresStore") -> None:
        self._store = store

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._store._fetch(sql, *args)


def _unstorable(exc: asyncpg.DataError) -> UnstorableValue:
    # The class and SQLSTATE only: the driver's message may quote the value.
    logger.warning("database refused a value: %s (SQLSTATE %s)", type(exc).__name__, exc.sqlstate)
    return UnstorableValue()


def _month_start(day: date, months_later: int) -> date:
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


class PostgresStore(SqlReads):
    """The Store on PostgreSQL."""

    backend = "postgres"
    _json = "::text"

    def __init__(self, dsn: str, *, pool_size: int = 10, keep_raw_messages: bool = True,
                 rollup_config: RollupConfig | None = None, query_pool_size: int = 3,
                 query_timeout_s: float = 10.0) -> None:
        self.dsn = dsn
        self.rollup_config = rollup_config or RollupConfig()
        self.alerts = PostgresAlertStore(self._tx, self._fetch)
        self.commands = PostgresCommandStore(self._tx, self._fetch)
        self.watches = PostgresWatchStore(self._tx, self._fetch)
        self.pool_size = pool_size
        self.keep_raw_messages = keep_raw_messages
        self._pool: asyncpg.Pool | None = None
        # Reads under a query budget (reports, statistics) have their own few connections: however many
        # run and however long, they never hold one that ingest's writers or the auth lookups wait for.
        self.query_pool_size = query_pool_size
        self.query_timeout_s = query_timeout_s
        self._query_pool: asyncpg.Pool | None = None
        self._reads = _BudgetedReads(self)
        self._key_ids: dict[str, int] = {}
        self._message_ids = MessageIds()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size,
                                                       command_timeout=60, init=create_staging,
                                                       reset=_keep_session)
            except (OSError, asyncpg.PostgresError) as exc:
                raise StoreUnavailable(f"Cannot connect to PostgreSQL: {exc}") from exc
        if self._query_pool is None:
            # The server stops a statement at the budget even if the client's cancel request is lost; the
            # client cancels earlier, at what is left of its request's budget. Read-only: a bug cannot
            # turn a query connection into a second writer.
            timeout_ms = max(1, math.ceil(self.query_timeout_s * 1000))
            self._query_pool = await asyncpg.create_pool(
                self.dsn, min_size=0, max_size=self.query_pool_size, reset=_keep_session,
                server_settings={"statement_timeout": str(timeout_ms), "default_transaction_read_only": "on"})

    async def close(self) -> None:
        for pool in (self._pool, self._query_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._query_pool = None

    @asynccontextmanager
    async def _batch_tx(self) -> AsyncIterator[asyncpg.Connection]:
        """A telemetry batch's transaction, holding the seal lock shared from its start.

        BEGIN and the lock travel in one simple-protocol message: one round trip where
        ``conn.transaction()`` and a statement take two. A small batch's transaction is three round trips
        in all (this, the write statement, COMMIT), and each is a wait for the event loop.
        """
        assert self._pool is not None, "store not open"
        try:
            async with self._pool.acquire() as conn:
                try:
                    await conn.execute(f"BEGIN; {pg_rollups.SHARE_SEAL}")
                    yield conn
                except BaseException:
                    # If even this fails (a lost connection), the pool rolls back or drops the connection.
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.CannotConnectNowError) as exc:
            raise StoreUnavailable() from exc

    # ``_tx`` and ``_fetch`` carry every statement but a telemetry batch's (``_batch_tx``, whose failures the
    # pipeline handles itself). A value the database refuses there (asyncpg.DataError: a NUL in text or jsonb,
    # a number past its column, SQLSTATE class 22) is the request's fault, whichever check let it through:
    # 422, not 500.
    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        assert self._pool is not None, "store not open"
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.CannotConnectNowError) as exc:
            raise StoreUnavailable() from exc
        except asyncpg.DataError as exc:
            raise _unstorable(exc) from exc

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        assert self._pool is not None, "store not open"
        budget = current_budget()
        if budget is not None:
            return await self._budgeted_fetch(budget, sql, args)
        try:
            return await self._pool.fetch(sql, *args)
        except CONNECTION_LOST as exc:
            raise StoreUnavailable() from exc
        except asyncpg.DataError as exc:
            raise _unstorable(exc) from exc

    async def _budgeted_fetch(self, budget: QueryBudget, sql: str, args: tuple) -> list[asyncpg.Record]:
        """A read on the query pool, cancelled (client side, and by the server's statement_timeout) when
        the budget runs out; its rows count against the budget."""
        assert self._query_pool is not None, "store not open"
        try:
            async with self._query_pool.acquire(timeout=budget.remaining_s()) as conn:
                # asyncpg sends PostgreSQL a cancel request when this times out, or when the awaiting task
                # is cancelled (the client left): the statement stops on the server too.
                rows = await conn.fetch(sql, *args, timeout=budget.remaining_s())
        except (asyncio.TimeoutError, asyncpg.exceptions.QueryCanceledError) as exc:
            raise budget.timed_out() from exc
        except CONNECTION_LOST as exc:
            raise StoreUnavailable() from exc
        except asyncpg.DataError as exc:
            raise _unstorable(exc) from exc
        budget.take(len(rows))
        return rows

    async def _query(self, sql: str, *args: Any) -> list[Any]:
        return await self._fetch(numbered(sql), *args)

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    async def migrate(self) -> list[str]:
        await self.open()
        applied = []
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                               "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)")
            done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files("postgres"):
                if version not in done:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, now())", version, name)
                    applied.append(name)
        await self.ensure_partitions(datetime.now(timezone.utc))
        return applied

    async def maintain(self, now: datetime) -> None:
        await self.ensure_partitions(now)
        await self.apply_retention(now)

    async def ensure_partitions(self, now: datetime) -> list[str]:
        """Create the monthly partitions around ``now`` that do not exist yet; return their names."""
        created = []
        this_month = now.date().replace(day=1)
        for offset in range(-PARTITION_MONTHS_BEHIND, PARTITION_MONTHS_AHEAD + 1):
            lo, hi = _month_start(this_month, offset), _month_start(this_month, offset + 1)
            for table in PARTITIONED_TABLES:
                name = f"{table}_y{lo.year}m{lo.month:02d}"
                async with self._tx() as conn:
                    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
                    if exists:
                        continue
                    try:
                        await conn.execute(f"CREATE TABLE {name} PARTITION OF {table} "
                                           f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')")
                        created.append(name)
                    except asyncpg.exceptions.CheckViolationError:
                        # Rows of that month already sit in the default partition; leave them there.
                        logger.warning("partition %s not created: the default partition holds its rows", name)
        return created

    async def ping(self) -> None:
        try:
            await self._fetchrow("SELECT 1")
        except (asyncpg.PostgresError, AssertionError) as exc:
            raise StoreUnavailable() from exc

    # -- tenants -----------------------------------------------------------------------------------
    async def create_tenant(self, name: str) -> Tenant:
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow("INSERT INTO tenants (name, created_at) VALUES ($1, now()) "
                                          "RETURNING id, name, created_at, retention_days", name)
        except asyncpg.UniqueViolationError as exc:
            raise TenantNameTaken() from exc
        return self._tenant(row)

    async def set_tenant_retention(self, tenant_id: int, days: int | None) -> None:
        async with self._tx() as conn:
            await conn.execute("UPDATE tenants SET retention_days = $1 WHERE id = $2", days, tenant_id)

    async def apply_retention(self, now: datetime) -> tuple[int, list[str]]:
        tenants = await self._fetch("SELECT id, retention_days FROM tenants ORDER BY id")
        dropped: list[str] = []
        if tenants and all(days is not None for _, days in tenants):
            # Partitions hold every tenant's rows: a month goes whole once no tenant keeps it any more.
            oldest_kept = min(now - timedelta(days=days) for _, days in tenants)
            dropped = await self._drop_partitions_before(oldest_kept)
        deleted = 0
        for tenant_id, days in tenants:
            if days is None:
                continue
            async with self._tx() as conn:
                for table in PARTITIONED_TABLES:
                    status = await conn.execute(
                        f"DELETE FROM {table} WHERE device_pk IN (SELECT pk FROM devices WHERE tenant_id = $1) "
                        f"AND ts < $2", tenant_id, now - timedelta(days=days))
                    deleted += int(status.split()[-1])
                # The msg_ids of those messages (bookkeeping, not counted): a replay that old is stored anew.
                await conn.execute(
                    "DELETE FROM message_ids WHERE device_pk IN (SELECT pk FROM devices WHERE tenant_id = $1) "
                    "AND ts < $2", tenant_id, now - timedelta(days=days))
        return deleted, dropped

    async def _drop_partitions_before(self, cutoff: datetime) -> list[str]:
        dropped = []
        for table in PARTITIONED_TABLES:
            rows = await self._fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1", table)
            for (name,) in rows:
                match = PARTITION_NAME.fullmatch(name.removeprefix(f"{table}_"))
                if match is None:  # the default partition, or one made by hand
                    continue
                ends = _month_start(date(int(match[1]), int(match[2]), 1), 1)
                if datetime.combine(ends, time(0), timezone.utc) <= cutoff:
                    async with self._tx() as conn:
                        await conn.execute(f"DROP TABLE {name}")
                    dropped.append(name)
                    logger.info("retention: dropped partition %s", name)
        return dropped

    # -- keys --------------------------------------------------------------------------------------
    @staticmethod
    async def _insert_key(conn: asyncpg.Connection, key: NewKey, device_pk: int | None = None) -> int:
        return await conn.fetchval(
            "INSERT INTO api_keys (kind, hash, prefix, tenant_id, device_pk, scope, name, created_at, expires_at, "
            "broker_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9) RETURNING id",
            key.kind, key.hash, key.prefix, key.tenant_id, device_pk or key.device_pk, key.scope, key.name,
            key.expires_at, key.broker_hash)

    async def create_key(self, key: NewKey) -> ApiKey:
        async with self._tx() as conn:
            key_id = await self._insert_key(conn, key)
        return await self.get_key(key_id)

    async def revoke_key(self, key_id: int, at: datetime) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, key_id)
            if result.endswith(" 1"):
                await conn.execute(MOVE_CREDENTIAL_EPOCH)
        return result.endswith(" 1")

    async def expire_key(self, key_id: int, at: datetime) -> bool:
        async with self._tx() as conn:
            result = await conn.execute("UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND revoked_at IS NULL "
                                        "AND (expires_at IS NULL OR expires_at > $1)", at, key_id)
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
                    ids, [key_usage[i][0] for i in ids], [key_usage[i][1] for i in ids])
            if device_seen:
                pks = sorted(device_seen)
                await conn.execute(
                    "UPDATE devices d SET last_seen = greatest(d.last_seen, u.at) "
                    "FROM unnest($1::int[], $2::timestamptz[]) AS u(pk, at), "
                    "(SELECT pk FROM devices WHERE pk = ANY($1::int[]) ORDER BY pk FOR NO KEY UPDATE) AS locked "
                    "WHERE d.pk = u.pk AND d.pk = locked.pk",
                    pks, [device_seen[pk] for pk in pks])

    # -- device passwords ----------------------------------------------------------------------------
    async def set_device_password(self, device_pk: int, password_hash: str, credential_id: str,
                                  at: datetime) -> int:
        async with self._tx() as conn:
            return await conn.fetchval(
                "INSERT INTO device_credentials (device_pk, password_hash, version, credential_id, changed_at) "
                "VALUES ($1, $2, 1, $3, $4) ON CONFLICT (device_pk) DO UPDATE SET "
                "password_hash = excluded.password_hash, version = device_credentials.version + 1, "
                "credential_id = excluded.credential_id, changed_at = excluded.changed_at RETURNING version",
                device_pk, password_hash, credential_id, at)

    # -- rate limits -------------------------------------------------------------------------------
    async def set_rate_limit_overrides(self, tenant_id: int, device_pk: int | None, rates: dict[str, str]) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM rate_limit_overrides WHERE tenant_id = $1 "
                               "AND device_pk IS NOT DISTINCT FROM $2", tenant_id, device_pk)
            await conn.executemany(
                "INSERT INTO rate_limit_overrides (tenant_id, device_pk, name, rate) VALUES ($1, $2, $3, $4)",
                [(tenant_id, device_pk, name, rate) for name, rate in rates.items()])

    # -- devices -----------------------------------------------------------------------------------
    async def create_device(self, device: NewDevice, key: NewKey) -> Device:
        try:
            async with self._tx() as conn:
                pk = await conn.fetchval(
                    "INSERT INTO devices (id, tenant_id, name, description, device_type, status, location, "
                    "firmware_version, hardware_version, attributes, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, now(), now()) RETURNING pk",
                    device.id, device.tenant_id, device.name, device.description, device.device_type,
                    device.status, device.location, device.firmware_version, device.hardware_version,
                    dumps(device.attributes))
                await self._insert_key(conn, key, pk)
        except asyncpg.UniqueViolationError as exc:
            raise (DeviceIdTaken() if exc.constraint_name == "devices_id_key" else DeviceNameTaken()) from exc
        return await self.get_device_by_pk(pk)

    async def get_devices(self, device_ids: list[str]) -> dict[str, Device]:
        rows = await self._fetch(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ANY($1::text[])",
                                 sorted({d for d in device_ids if could_be_device_id(d)}))
        return {row[1]: self._device(row) for row in rows}

    async def get_devices_by_pk(self, pks: list[int]) -> dict[int, Device]:
        rows = await self._fetch(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE pk = ANY($1::int[])", sorted(set(pks)))
        return {row[0]: self._device(row) for row in rows}

    async def update_device(self, pk: int, fields: dict[str, Any]) -> Device:
        values = {name: value for name, value in fields.items() if name in UPDATABLE_DEVICE_COLUMNS}
        if "attributes" in values:
            values["attributes"] = dumps(values["attributes"])
        assignments = ", ".join(f"{name} = ${i}{'::jsonb' if name == 'attributes' else ''}"
                                for i, name in enumerate(values, start=2))
        try:
            async with self._tx() as conn:
                await conn.execute(f"UPDATE devices SET {assignments}{', ' if values else ''}updated_at = now() "
                                   f"WHERE pk = $1", pk, *values.values())
                if not values.keys() <= LIVENESS_COLUMNS:
                    await conn.execute(MOVE_CREDENTIAL_EPOCH)
        except asyncpg.UniqueViolationError as exc:
            raise DeviceNameTaken() from exc
        return await self.get_device_by_pk(pk)

    async def delete_device(self, pk: int) -> None:
        async with self._tx() as conn:
            # The hot tables carry no foreign key (it would cost a lookup per inserted row).
            # The tenant's energy sums lose the device's share, then its rollups go.
            await conn.execute(
                "UPDATE tenant_energy_hourly t SET wh = t.wh - e.wh, covered_s = t.covered_s - e.covered_s "
                "FROM energy_hourly e JOIN devices d ON d.pk = e.device_pk WHERE e.device_pk = $1 "
                "AND t.tenant_id = d.tenant_id AND t.key_id = e.key_id AND t.hour = e.hour", pk)
            for table in ("points", "latest", "messages", "message_ids", "energy_hourly", "rollup_hourly"):
                await conn.execute(f"DELETE FROM {table} WHERE device_pk = $1", pk)
            await conn.execute("DELETE FROM devices WHERE pk = $1", pk)
            await conn.execute(MOVE_CREDENTIAL_EPOCH)

    async def presence_changes(self, now, default_offline_after_s, device_pk=None):
        conn = "coalesce(attributes->>'connection', '')"
        alive = "(last_seen IS NOT NULL AND last_seen + make_interval(secs => coalesce(offline_after_s, $1)) > $2)"
        online = (f"({conn} = 'online' OR ({alive} AND ({conn} <> 'offline' OR connection_at IS NULL "
                  f"OR last_seen > connection_at)))")
        changed = (f"((presence = 'online' AND NOT {online}) "
                   f"OR (coalesce(presence, 'offline') = 'offline' AND {online}))")
        # One statement that locks the changed rows in pk order, as the writer's batches lock theirs: rows
        # locked in another order (a scan's) deadlock with a batch of the same devices.
        rows = await self._fetch(
            f"UPDATE devices SET presence = CASE WHEN {online} THEN 'online' ELSE 'offline' END "
            f"FROM (SELECT pk FROM devices WHERE {changed} AND ($3::int IS NULL OR pk = $3) "
            f"ORDER BY pk FOR NO KEY UPDATE) AS locked WHERE devices.pk = locked.pk AND {changed} "
            f"RETURNING {', '.join('devices.' + c.strip() for c in DEVICE_COLUMNS.split(','))}, "
            f"devices.presence = 'online'", default_offline_after_s, now, device_pk)
        return [(self._device(r), r[-1]) for r in rows]

    # -- telemetry ---------------------------------------------------------------------------------
    async def _key_ids_for(self, names: set[str]) -> dict[str, int]:
        """The ids of ``names``. New ones are committed at once, outside the batch's transaction: a key
        name is harmless without points, and one inserted by a batch that then rolled back would stay in
        the cache with an id that no row has."""
        missing = sorted(name for name in names if name not in self._key_ids)
        if missing:
            assert self._pool is not None, "store not open"
            await self._pool.execute("INSERT INTO ts_keys (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                                     missing)
            rows = await self._fetch("SELECT name, id FROM ts_keys WHERE name = ANY($1::text[])", missing)
            self._key_ids.update({row[0]: row[1] for row in rows})
        return self._key_ids

    async def write_telemetry(self, messages: list[TelemetryMessage], received_at: datetime) -> None:
        try:
            await self._write_telemetry(messages, received_at)
        except PG_DATA_ERRORS as exc:
            raise UnstorableMessage() from exc

    async def _write_telemetry(self, messages: list[TelemetryMessage], received_at: datetime) -> None:
        """Write a batch in one transaction (see ``postgres.write``); several may run at once."""
        unique, repeats = split_batch_duplicates(messages)
        key_ids = await self._key_ids_for({p.key for m in unique for p in m.points})
        async with self._batch_tx() as conn:
            await write_batch(conn, messages, unique, received_at, key_ids, self._message_ids,
                              self.keep_raw_messages, self.rollup_config)
        resolve_batch_duplicates(repeats)

    async def query_points(self, device_pk, keys, start, end, limit, descending):
        key_rows = await self._fetch(
            "SELECT k.id, k.name FROM latest l JOIN ts_keys k ON k.id = l.key_id WHERE l.device_pk = $1",
            device_pk)
        wanted = [(row[0], row[1]) for row in key_rows if keys is None or row[1] in keys]
        order = "DESC" if descending else "ASC"
        lo = start or datetime(1, 1, 2, tzinfo=timezone.utc)
        hi = end or datetime(9999, 12, 30, tzinfo=timezone.utc)
        result: dict[str, list[PointValue]] = {}
        for key_id, name in wanted:
            rows = await self._fetch(
                f"SELECT ts, v_num, v_str, v_bool, v_json::text FROM points WHERE device_pk = $1 AND key_id = $2 "
                f"AND ts >= $3 AND ts < $4 ORDER BY ts {order} LIMIT $5", device_pk, key_id, lo, hi, limit)
            if rows:
                result[name] = [(r[0], decode_value(r[1], r[2], r[3], r[4])) for r in rows]
        return result

    async def recent_points(self, requests: list[HistoryRequest]) -> list[list[PointValue]]:
        found: list[list[PointValue]] = [[] for _ in requests]
        key_ids = {r.key: await self._key_id(r.key) for r in requests}
        asked = [(i, r) for i, r in enumerate(requests) if key_ids[r.key] is not None]
        if not asked:
            return found
        lowest = datetime(1, 1, 2, tzinfo=timezone.utc)
        rows = await self._fetch(
            "SELECT q.i, p.ts, p.v_num, p.v_str, p.v_bool, p.v_json::text FROM unnest($1::int[], $2::int[], $3::int[], "
            "$4::timestamptz[], $5::timestamptz[], $6::int[]) AS q(i, pk, kid, lo, hi, lim) CROSS JOIN LATERAL "
            "(SELECT ts, v_num, v_str, v_bool, v_json FROM points WHERE device_pk = q.pk AND key_id = q.kid "
            "AND ts >= q.lo AND ts < q.hi ORDER BY ts DESC LIMIT q.lim) p ORDER BY q.i, p.ts DESC",
            [i for i, _ in asked], [r.device_pk for _, r in asked], [key_ids[r.key] for _, r in asked],
            [r.start or lowest for _, r in asked], [r.before for _, r in asked], [r.limit for _, r in asked])
        for r in rows:
            found[r[0]].append((r[1], decode_value(r[2], r[3], r[4], r[5])))
        return found

    # -- analytics -----------------------------------------------------------------------------------
    async def hourly_rollups(self, device_pks, key, start, end):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return []
        return await pg_rollups.hourly_rollups(self._reads, sorted(device_pks), key_id, start, end,
                                               row_limit())

    async def rollup_totals(self, device_pks, key, start, end):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return {}
        return await pg_rollups.rollup_totals(self._reads, sorted(device_pks), key_id, start, end)

    async def energy_hours(self, key, start, end, *, device_pk=None, tenant_id=None):
        key_id = await self._key_id(key)
        if key_id is None:
            return {}
        return await pg_rollups.energy_hours(self._reads, key_id, start, end, device_pk, tenant_id)

    async def latest_numeric(self, device_pks, key):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return {}
        rows = await self._fetch("SELECT device_pk, ts, v_num FROM latest WHERE device_pk = ANY($1::int[]) "
                                 "AND key_id = $2 AND v_num IS NOT NULL", sorted(device_pks), key_id)
        return {r[0]: (r[1], r[2]) for r in rows}

    async def seal_rollups(self, until, max_slice=timedelta(hours=1)):
        async with self._tx() as conn:
            return await pg_rollups.seal(conn, until, max_slice)

    async def rebuild_rollups(self, since):
        energy_ids = [kid for kid in [await self._key_id(k) for k in sorted(self.rollup_config.energy_keys)]
                      if kid is not None]
        async with self._tx() as conn:
            return await pg_rollups.rebuild(conn, since, energy_ids, self.rollup_config.max_hold)

    async def dashboard(self, now, online_since, day_start) -> DashboardCounts:
        tenants = (await self._fetchrow("SELECT count(*) FROM tenants"))[0]
        by_status = {r[0]: r[1] for r in await self._fetch("SELECT status, count(*) FROM devices GROUP BY status")}
        by_type = {r[0]: r[1] for r in
                   await self._fetch("SELECT device_type, count(*) FROM devices GROUP BY device_type")}
        online = (await self._fetchrow("SELECT count(*) FROM devices WHERE last_seen >= $1", online_since))[0]
        total = (await self._fetchrow("SELECT coalesce(sum(messages), 0)::bigint FROM daily_counts"))[0]
        since = (await self._fetchrow("SELECT count(*) FROM messages WHERE ts >= $1", now - timedelta(days=1)))[0]
        today = await self._fetchrow("SELECT sum(points)::bigint FROM daily_counts WHERE day = $1", day_start.date())
        return DashboardCounts(tenants=tenants, devices_by_status=by_status, devices_by_type=by_type,
                               online=online, messages_total=total, messages_since=since,
                               points_today=today[0] or 0)
