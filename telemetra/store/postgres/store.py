"""PostgresStore: the production backend on asyncpg.

Telemetry tables are partitioned by month (``postgres.partitions``, which also applies retention);
set-based writes (``unnest`` arrays, ``COPY``) put a telemetry batch in one statement, and its transaction
in as few round trips as it can (``postgres.connections``, which holds the pools and how statements run on
them). Tenants, keys and devices are managed in ``postgres.accounts``, the store's base class. This module
is the rest of the Store's methods on top of those: lifecycle, telemetry and analytics.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from telemetra.domain.models import TelemetryMessage
from telemetra.errors import StoreUnavailable, UnstorableMessage
from telemetra.store.base import PYTHON_DATA_ERRORS, DashboardCounts, HistoryRequest, PointValue, RetentionPreview
from telemetra.store.codec import decode_value, resolve_batch_duplicates, split_batch_duplicates
from telemetra.store.console_reads import ConsoleDialect, ConsoleReads
from telemetra.store.migrations import migration_files
from telemetra.store.postgres import metrics
from telemetra.store.postgres import rollups as pg_rollups
from telemetra.store.postgres.accounts import PostgresAccounts
from telemetra.store.postgres.alerts import PostgresAlertStore
from telemetra.store.postgres.commands import PostgresCommandStore
from telemetra.store.postgres.ids import MessageIds
from telemetra.store.postgres.partitions import PostgresPartitions
from telemetra.store.postgres.users import PostgresUserStore
from telemetra.store.postgres.watches import PostgresWatchStore
from telemetra.store.postgres.write import BatchToWrite, write_batch, write_batch_alone
from telemetra.store.rollups import RollupConfig
from telemetra.store.sql_reads import row_limit

__all__ = ["PostgresStore"]

# Any fixed number: it only has to be the same in every process that migrates this database.
MIGRATION_LOCK_ID = 7_346_221
# A batch refused for what it holds: class 22 (data exception: a NUL character in text, a number out of range,
# invalid text; asyncpg's own DataError for an argument it cannot encode is a ValueError), class 23 (a
# constraint) and class 54 (a value past a limit: an index row too big). Every other error (a lost connection,
# a timeout, a read-only or full database, a trigger that refuses) means the database could not write at all.
PG_DATA_ERRORS = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,
    *PYTHON_DATA_ERRORS,
)


_CONNECTION = "coalesce(attributes->>'connection', '')"
CONSOLE_DIALECT = ConsoleDialect(
    ordered_id='n.id COLLATE "C"',
    ordered_name='n.name_key COLLATE "C"',
    device_order='id COLLATE "C"',
    pk_in="{column} = ANY(?::int[])",
    pk_param=list,
    # domain/online.py's rule, as presence_changes writes it.
    online=(
        f"({_CONNECTION} = 'online' OR (last_seen IS NOT NULL AND last_seen > ?::timestamptz - "
        f"make_interval(secs => coalesce(offline_after_s, ?::int)) AND ({_CONNECTION} <> 'offline' OR "
        "connection_at IS NULL OR last_seen > connection_at)))"
    ),
    bucket="to_timestamp(floor(extract(epoch FROM {col}) / ?::float8) * ?::float8)",
    width_param=float,
    greatest="greatest",
    least="least",
    json="::text",
)


class PostgresStore(PostgresAccounts):
    """The Store on PostgreSQL."""

    backend = "postgres"
    _json = "::text"

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        keep_raw_messages: bool = True,
        rollup_config: RollupConfig | None = None,
        query_pool_size: int = 3,
        query_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(dsn, pool_size=pool_size, query_pool_size=query_pool_size, query_timeout_s=query_timeout_s)
        self.rollup_config = rollup_config or RollupConfig()
        self.alerts = PostgresAlertStore(self._tx, self._fetch)
        self.commands = PostgresCommandStore(self._tx, self._fetch)
        self.watches = PostgresWatchStore(self._tx, self._fetch)
        self.console = ConsoleReads(self._query, self._ts_in, self._ts_out, CONSOLE_DIALECT, self._device)
        self.users = PostgresUserStore(self._tx, self._fetch)
        self._partitions = PostgresPartitions(self._tx, self._fetch)
        self.keep_raw_messages = keep_raw_messages
        self._key_ids: dict[str, int] = {}
        self._message_ids = MessageIds()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        await self.open()
        applied = []
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
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
        return await self._partitions.ensure_partitions(now)

    async def apply_retention(self, now: datetime) -> tuple[int, list[str]]:
        return await self._partitions.apply_retention(now)

    async def preview_retention(self, now: datetime) -> RetentionPreview:
        return await self._partitions.preview_retention(now)

    async def ping(self) -> None:
        try:
            await self._fetchrow("SELECT 1")
        except (asyncpg.PostgresError, AssertionError) as exc:
            raise StoreUnavailable() from exc

    # -- telemetry ---------------------------------------------------------------------------------
    async def _key_ids_for(self, names: set[str]) -> dict[str, int]:
        """The ids of ``names``. New ones are committed at once, outside the batch's transaction: a key
        name is harmless without points, and one inserted by a batch that then rolled back would stay in
        the cache with an id that no row has."""
        missing = sorted(name for name in names if name not in self._key_ids)
        if missing:
            assert self._pool is not None, "store not open"
            await self._pool.execute(
                "INSERT INTO ts_keys (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", missing
            )
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
        batch = BatchToWrite(
            messages, unique, received_at, key_ids, self._message_ids, self.keep_raw_messages, self.rollup_config
        )
        async with self._batch_conn() as conn:
            if await write_batch_alone(conn, batch):
                metrics.PG_BATCHES.labels("alone").inc()
            else:
                async with self._batch_tx(conn):
                    await write_batch(conn, batch)
                metrics.PG_BATCHES.labels("transaction").inc()
        resolve_batch_duplicates(repeats)

    async def query_points(self, device_pk, keys, start, end, limit, descending):
        key_rows = await self._fetch(
            "SELECT k.id, k.name FROM latest l JOIN ts_keys k ON k.id = l.key_id WHERE l.device_pk = $1", device_pk
        )
        wanted = [(row[0], row[1]) for row in key_rows if keys is None or row[1] in keys]
        order = "DESC" if descending else "ASC"
        lo = start or datetime(1, 1, 2, tzinfo=timezone.utc)
        hi = end or datetime(9999, 12, 30, tzinfo=timezone.utc)
        result: dict[str, list[PointValue]] = {}
        for key_id, name in wanted:
            rows = await self._fetch(
                f"SELECT ts, v_num, v_str, v_bool, v_json::text FROM points WHERE device_pk = $1 AND key_id = $2 "
                f"AND ts >= $3 AND ts < $4 ORDER BY ts {order} LIMIT $5",
                device_pk,
                key_id,
                lo,
                hi,
                limit,
            )
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
            [i for i, _ in asked],
            [r.device_pk for _, r in asked],
            [key_ids[r.key] for _, r in asked],
            [r.start or lowest for _, r in asked],
            [r.before for _, r in asked],
            [r.limit for _, r in asked],
        )
        for r in rows:
            found[r[0]].append((r[1], decode_value(r[2], r[3], r[4], r[5])))
        return found

    # -- analytics -----------------------------------------------------------------------------------
    async def hourly_rollups(self, device_pks, key, start, end):
        key_id = await self._key_id(key)
        if key_id is None or not device_pks:
            return []
        return await pg_rollups.hourly_rollups(self._reads, sorted(device_pks), key_id, start, end, row_limit())

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
        rows = await self._fetch(
            "SELECT device_pk, ts, v_num FROM latest WHERE device_pk = ANY($1::int[]) "
            "AND key_id = $2 AND v_num IS NOT NULL",
            sorted(device_pks),
            key_id,
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    async def seal_rollups(self, until, max_slice=timedelta(hours=1)):
        async with self._tx() as conn:
            return await pg_rollups.seal(conn, until, max_slice)

    async def rebuild_rollups(self, since):
        energy_ids = [
            kid for kid in [await self._key_id(k) for k in sorted(self.rollup_config.energy_keys)] if kid is not None
        ]
        async with self._tx() as conn:
            return await pg_rollups.rebuild(conn, since, energy_ids, self.rollup_config.max_hold)

    async def _scalar(self, sql: str, *args: Any) -> Any:
        """The one value of an aggregate query (which always returns a row)."""
        row = await self._fetchrow(sql, *args)
        assert row is not None, "an aggregate without GROUP BY returns one row"
        return row[0]

    async def dashboard(self, now, online_since, day_start) -> DashboardCounts:
        tenants = await self._scalar("SELECT count(*) FROM tenants")
        by_status = {r[0]: r[1] for r in await self._fetch("SELECT status, count(*) FROM devices GROUP BY status")}
        by_type = {
            r[0]: r[1] for r in await self._fetch("SELECT device_type, count(*) FROM devices GROUP BY device_type")
        }
        online = await self._scalar("SELECT count(*) FROM devices WHERE last_seen >= $1", online_since)
        total = await self._scalar("SELECT coalesce(sum(messages), 0)::bigint FROM daily_counts")
        since = await self._scalar("SELECT count(*) FROM messages WHERE ts >= $1", now - timedelta(days=1))
        today = await self._scalar("SELECT sum(points)::bigint FROM daily_counts WHERE day = $1", day_start.date())
        return DashboardCounts(
            tenants=tenants,
            devices_by_status=by_status,
            devices_by_type=by_type,
            online=online,
            messages_total=total,
            messages_since=since,
            points_today=today or 0,
        )
