"""The write path of one telemetry batch on PostgreSQL: a few statements in the batch's transaction.

Set-based writes (``unnest`` arrays, ``COPY``) put the batch in one statement. A small batch of messages
without msg_id and power keys is that statement alone, in a transaction of its own: one round trip
(``write_batch_alone``). Any other batch, or one that turns out to replace stored points, is written in a
transaction of several statements that the store opens (``PostgresStore._batch_tx``) and ``write_batch``
fills: three round trips for a small one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from telemetra.domain.models import TelemetryMessage
from telemetra.store.codec import dedupe_points, dumps, encode_value
from telemetra.store.postgres import rollups as pg_rollups
from telemetra.store.postgres.ids import MessageIds
from telemetra.store.rollups import RollupConfig, hour_floor, plan_energy

__all__ = [
    "BatchToWrite",
    "write_batch",
    "write_batch_alone",
    "create_staging",
    "INLINE_BATCH_MAX_POINTS",
    "REPLACES_STORED",
]


# Points are COPYed here, then merged into `points` in one set-based upsert (COPY itself cannot upsert).
# A temporary table lives as long as its pooled connection; ON COMMIT DELETE ROWS empties it per batch.
STAGING_TABLE = "points_stage"
STAGING_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (device_pk integer, key_id integer, ts timestamptz, "
    "v_num double precision, v_str text, v_bool boolean, v_json jsonb) ON COMMIT DELETE ROWS"
)
STAGED_COLUMNS = ("device_pk", "key_id", "ts", "v_num", "v_str", "v_bool", "v_json")
MESSAGE_COLUMNS = ("id", "device_pk", "ts", "type", "data", "metadata", "received_at")
# Up to this many points, a batch sends its points and messages inside the write statement itself (as JSON
# parameters) instead of COPYing them first: two COPYs are four round trips, each a wait for the event
# loop that the server's HTTP requests share, and emptying the staging table at COMMIT truncates a file.
# Larger batches are COPYed: their round trips are few for their size.
INLINE_BATCH_MAX_POINTS = 2000
DAILY_COUNT_SLOTS = 16
# Raised by batch_refuse_replacements (migration 0021): a batch written alone replaces stored points.
REPLACES_STORED = "TL001"


def _write_batch_sql(points_from: str, before: str = "", *, alone: bool = False) -> str:
    """The batch's writes from ``points_from`` (the staging table, or a CTE defined in ``before``), as
    data-modifying CTEs of one statement.

    They all see the database as it was before the statement; none reads a table another one writes. New
    points are inserted with ON CONFLICT DO NOTHING, which waits for a concurrent writer of the same point to
    commit: the staged points it did not insert are exactly those that replace a stored one, which the
    statement returns with the seal mark; the caller overwrites them and rebuilds their sealed hours'
    statistics. Only late points (before the seal mark) are merged into the statistics here: the sealer
    adds the others later.

    ``alone``: the statement is its transaction (no BEGIN before it). It takes the seal lock itself and reads
    the mark under it (``batch_seal_mark``, migration 0021), and instead of returning the points that
    replace stored ones it refuses the batch (SQLSTATE ``REPLACES_STORED``, which rolls it all back) when
    there is any: those need further statements. The lock comes before any row lock of the statement:
    every CTE that locks rows waits for ``seal`` (``gate``, a one-time filter, or reading ``points_from``,
    which the caller gates). A batch holding a row that a transaction's batch waits for, itself queued
    behind a sealer waiting for that transaction, would otherwise be a deadlock that PostgreSQL only
    untangles after its deadlock_timeout.

    Parameters: $1 received_at, $2 the batch's device pks, $3 its day, $4 its new messages, $5 its points;
    $6 the new messages of each device of $2, $7 the batch's tenants and $8 their new messages (the
    console's counters, migration 0019); ``before`` may use further ones. The lists of integers travel as text in array
    syntax (``int_array``): asyncpg's array encoder checks each element against the collection ABCs.
    """
    sent, tenants, tenant_sent = (f"${n}::text::int[]" for n in (6, 7, 8))
    device_pks = "$2::text::int[]"
    sealed_until = "(SELECT until FROM seal)" if alone else pg_rollups.SEALED_UNTIL
    gate = " AND EXISTS (SELECT FROM seal)" if alone else ""
    if alone:
        # Materialized: the function (the lock, the read) runs once, at the first gate.
        before = f"seal AS MATERIALIZED (SELECT batch_seal_mark() AS until), {before}"
        returned = (
            f"SELECT batch_refuse_replacements(count(*)) FROM {points_from} s LEFT JOIN inserted i "
            "ON i.device_pk = s.device_pk AND i.key_id = s.key_id AND i.ts = s.ts WHERE i.device_pk IS NULL"
        )
    else:
        returned = (
            f"SELECT s.device_pk, s.key_id, s.ts, {sealed_until} FROM {points_from} s LEFT JOIN inserted i "
            "ON i.device_pk = s.device_pk AND i.key_id = s.key_id AND i.ts = s.ts WHERE i.device_pk IS NULL"
        )
    return (
        f"WITH {before}"
        # Ordered by primary key so concurrent batches lock rows in the same order (no deadlock).
        f"inserted AS (INSERT INTO points SELECT * FROM {points_from} ORDER BY device_pk, key_id, ts "
        "ON CONFLICT DO NOTHING RETURNING device_pk, key_id, ts), "
        f"stats AS ({pg_rollups.stats_merge_sql(points_from, f'ts < {sealed_until}')}), "
        "newest AS (INSERT INTO latest AS l (device_pk, key_id, ts, v_num, v_str, v_bool, v_json) "
        "SELECT DISTINCT ON (device_pk, key_id) device_pk, key_id, ts, v_num, v_str, v_bool, v_json "
        f"FROM {points_from} ORDER BY device_pk, key_id, ts DESC ON CONFLICT (device_pk, key_id) "
        "DO UPDATE SET ts = excluded.ts, v_num = excluded.v_num, v_str = excluded.v_str, "
        "v_bool = excluded.v_bool, v_json = excluded.v_json WHERE excluded.ts >= l.ts), "
        # Devices are locked in pk order whatever plan the UPDATE gets (a scan's order depends on the plan).
        # The ANY on d too: without it a fleet of a few thousand devices got a sequential scan of them all,
        # a fifth of the statement's time.
        "seen AS (UPDATE devices d SET last_seen = greatest(d.last_seen, $1), last_data_at = greatest(d.last_data_at, $1), "
        "messages_sent = d.messages_sent + sent.n "
        f"FROM (SELECT pk FROM devices WHERE pk = ANY({device_pks}){gate} ORDER BY pk FOR NO KEY UPDATE) AS locked "
        f"JOIN unnest({device_pks}, {sent}) AS sent(pk, n) ON sent.pk = locked.pk "
        f"WHERE d.pk = locked.pk AND d.pk = ANY({device_pks})), "
        f"per_minute AS (INSERT INTO minute_counts AS c (tenant_id, minute, slot, messages) "
        f"SELECT t, date_trunc('minute', $1::timestamptz), pg_backend_pid() % {DAILY_COUNT_SLOTS}, n "
        f"FROM unnest({tenants}, {tenant_sent}) AS u(t, n) WHERE n > 0{gate} ORDER BY t "
        "ON CONFLICT (tenant_id, minute, slot) DO UPDATE SET messages = c.messages + excluded.messages), "
        # A slot per connection (migration 0014): concurrent batches do not queue on one row of the day.
        f"counted AS (INSERT INTO daily_counts AS c (day, slot, messages, points) "
        f"SELECT $3::date, pg_backend_pid() % {DAILY_COUNT_SLOTS}, $4::bigint, $5::bigint WHERE TRUE{gate} "
        "ON CONFLICT (day, slot) "
        "DO UPDATE SET messages = c.messages + excluded.messages, points = c.points + excluded.points) "
        f"{returned}"
    )


# The COPY path: points and messages are already in the staging table and `messages`.
WRITE_STAGED_BATCH = _write_batch_sql(STAGING_TABLE)
# The inline path: $9 the points, $10 the new messages (received_at is $1), each a JSON array of row arrays.
# JSON rather than one array parameter per column: asyncpg checks every element of an array parameter against
# the collection ABCs, which cost more client CPU than the rest of a small batch's write; orjson writes the
# rows (datetimes included) in C. A message's data and metadata travel as JSON text inside the row and are
# cast to json, not jsonb: they are kept exactly as sent.
POINT_ROWS = (
    "SELECT (r->>0)::int AS device_pk, (r->>1)::int AS key_id, (r->>2)::timestamptz AS ts, "
    "(r->>3)::float8 AS v_num, r->>4 AS v_str, (r->>5)::bool AS v_bool, (r->>6)::jsonb AS v_json "
    "FROM jsonb_array_elements({rows}::jsonb) AS r"
)
INLINE_ROWS = (
    f"staged AS ({POINT_ROWS.format(rows='$9')}{{gate}}), "
    "kept AS (INSERT INTO messages (id, device_pk, ts, type, data, metadata, received_at) "
    "SELECT (r->>0)::bigint, (r->>1)::int, (r->>2)::timestamptz, r->>3, (r->>4)::json, (r->>5)::json, $1 "
    "FROM jsonb_array_elements($10::jsonb) AS r), "
)
WRITE_INLINE_BATCH = _write_batch_sql("staged", INLINE_ROWS.format(gate=""))
# The same, as a transaction of its own (see ``write_batch_alone``); its points wait for the seal lock.
WRITE_ALONE = _write_batch_sql("staged", INLINE_ROWS.format(gate=" WHERE EXISTS (SELECT FROM seal)"), alone=True)


@dataclass(frozen=True)
class BatchToWrite:
    """A telemetry batch as the store hands it to ``write_batch_alone`` or ``write_batch``, with what they
    need of the store: its messages (``unique``: less the repeats within the batch), the key ids of its
    points, the message id reserve, and the settings that shape the write."""

    messages: list[TelemetryMessage]
    unique: list[TelemetryMessage]
    received_at: datetime
    key_ids: dict[str, int]
    message_ids: MessageIds
    keep_raw_messages: bool
    rollup_config: RollupConfig


def _json_rows(rows: list[tuple]) -> str:
    return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()


def int_array(values: list[int]) -> str:
    """A list of integers in PostgreSQL's array syntax, for a parameter cast ``::text::int[]``."""
    return "{" + ",".join(map(str, values)) + "}"


async def create_staging(conn: asyncpg.Connection) -> None:
    await conn.execute(STAGING_DDL)


async def write_batch(conn: asyncpg.Connection, batch: BatchToWrite) -> None:
    """Write a batch in one transaction; several may run at once (other processes).

    What keeps concurrent batches right: msg_ids and new points are claimed with ON CONFLICT DO NOTHING
    (the second claimant waits for the first's commit and then sees the row as taken); statistics,
    newest values and daily counts are merges that give the same result in any order; a power series'
    energy is written under an advisory lock per device; rows are locked in primary key order.
    """
    await batch.message_ids.assign(conn, batch.unique)
    await _claim_msg_ids(conn, batch.unique)
    fresh = [m for m in batch.unique if not m.duplicate]
    points = dedupe_points(fresh)
    key_ids, received_at = batch.key_ids, batch.received_at
    energy = {(pk, key_ids[key]): samples for (pk, key), samples in plan_energy(points, batch.rollup_config).items()}
    await pg_rollups.lock_energy_devices(conn, energy)
    prior = await pg_rollups.read_prior(conn, set(energy))
    staged = _staged_rows(points, key_ids)
    kept = _kept_rows(fresh) if batch.keep_raw_messages else []
    counts = _counts(batch.messages, fresh, received_at, len(points))
    if len(staged) <= INLINE_BATCH_MAX_POINTS:
        existing = await conn.fetch(WRITE_INLINE_BATCH, *counts, _json_rows(staged), _json_rows(kept))
    else:
        if kept:
            await conn.copy_records_to_table(
                "messages", columns=MESSAGE_COLUMNS, records=[(*m, received_at) for m in kept]
            )
        await conn.copy_records_to_table(STAGING_TABLE, columns=STAGED_COLUMNS, records=staged)
        existing = await conn.fetch(WRITE_STAGED_BATCH, *counts)
    replaced = {(r[0], r[1], r[2]) for r in existing}
    if replaced:
        await _overwrite_points(conn, [row for row in staged if row[:3] in replaced])
        sealed_until = existing[0][3]
        sealed_hours = {(pk, kid, hour_floor(ts)) for pk, kid, ts in replaced if ts < sealed_until}
        if sealed_hours:
            await pg_rollups.recompute_stats(conn, sealed_hours, sealed_until)
    await pg_rollups.write_energy(conn, energy, prior, replaced, batch.rollup_config)


async def write_batch_alone(conn: asyncpg.Connection, batch: BatchToWrite) -> bool:
    """Write a batch by one statement that is its own transaction (``conn`` is in none), when it can be:
    inline-sized, no msg_id to claim, no power series (their energy needs the stored newest sample first),
    and no point that replaces a stored one. Return False, having written nothing, when it cannot.

    The same writes as ``write_batch``, with the same guarantees: the statement takes the seal lock and
    reads the mark itself (``_write_batch_sql``), and is atomic as any transaction.
    """
    unique = batch.unique
    if any(m.msg_id is not None for m in unique):
        return False
    points = dedupe_points(unique)
    if len(points) > INLINE_BATCH_MAX_POINTS or plan_energy(points, batch.rollup_config):
        return False
    await batch.message_ids.assign(conn, unique)  # a sequence: its values are taken outside any transaction anyway
    kept = _kept_rows(unique) if batch.keep_raw_messages else []
    counts = _counts(batch.messages, unique, batch.received_at, len(points))
    try:
        await conn.execute(WRITE_ALONE, *counts, _json_rows(_staged_rows(points, batch.key_ids)), _json_rows(kept))
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == REPLACES_STORED:
            return False
        raise
    return True


def _staged_rows(points: dict, key_ids: dict[str, int]) -> list[tuple]:
    # Numbers (almost every point: integers arrive as floats) skip the general encoder.
    return [
        (pk, key_ids[key], ts, p.value, None, None, None)
        if type(p.value) is float
        else (pk, key_ids[key], ts, *encode_value(p.value))
        for (pk, key, ts), p in points.items()
    ]


def _kept_rows(fresh: list[TelemetryMessage]) -> list[tuple]:
    return [(m.id, m.device_pk, m.ts, m.type, dumps(m.data), dumps(m.metadata)) for m in fresh]


def _counts(
    messages: list[TelemetryMessage], fresh: list[TelemetryMessage], received_at: datetime, points: int
) -> tuple:
    """The write statement's parameters but the rows: $1 to $5, then the console's counters (migration
    0019): the new messages of each device of the batch, the batch's tenants and theirs."""
    device_pks = sorted({m.device_pk for m in messages})
    per_device: Counter[int] = Counter(m.device_pk for m in fresh)
    per_tenant: Counter[int] = Counter(m.tenant_id for m in fresh if m.tenant_id is not None)
    tenants = sorted(per_tenant)
    return (
        received_at,
        int_array(device_pks),
        received_at.date(),
        len(fresh),
        points,
        int_array([per_device[pk] for pk in device_pks]),
        int_array(tenants),
        int_array([per_tenant[t] for t in tenants]),
    )


async def _claim_msg_ids(conn: asyncpg.Connection, messages: list[TelemetryMessage]) -> None:
    """Record the msg_ids of a batch; mark the messages whose msg_id was already committed.

    ON CONFLICT DO NOTHING makes this safe between concurrent writers: the second waits for the
    first's commit and then sees the row as taken.
    """
    keyed = [m for m in messages if m.msg_id is not None]
    if not keyed:
        return
    claimed = await conn.fetch(
        "INSERT INTO message_ids (device_pk, msg_id, message_id, ts) "
        "SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[], $4::timestamptz[]) ORDER BY 1, 2 "
        "ON CONFLICT DO NOTHING RETURNING device_pk, msg_id",
        [m.device_pk for m in keyed],
        [m.msg_id for m in keyed],
        [m.id for m in keyed],
        [m.ts for m in keyed],
    )
    new = {(r[0], r[1]) for r in claimed}
    taken = [m for m in keyed if (m.device_pk, m.msg_id) not in new]
    if taken:
        rows = await conn.fetch(
            "SELECT i.device_pk, i.msg_id, i.message_id FROM message_ids i "
            "JOIN unnest($1::int[], $2::text[]) AS t(device_pk, msg_id) USING (device_pk, msg_id)",
            [m.device_pk for m in taken],
            [m.msg_id for m in taken],
        )
        original = {(r[0], r[1]): r[2] for r in rows}
        for msg in taken:
            msg.id, msg.duplicate = original[(msg.device_pk, msg.msg_id)], True


async def _overwrite_points(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """Give the stored points that the batch repeats the batch's values (the later write wins)."""
    # Ordered by primary key so concurrent batches lock rows in the same order (no deadlock).
    await conn.execute(
        f"INSERT INTO points {POINT_ROWS.format(rows='$1')} ORDER BY 1, 2, 3 "
        "ON CONFLICT (device_pk, key_id, ts) DO UPDATE SET v_num = excluded.v_num, "
        "v_str = excluded.v_str, v_bool = excluded.v_bool, v_json = excluded.v_json",
        _json_rows(rows),
    )
