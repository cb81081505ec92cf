"""The write path of one telemetry batch on SQLite: one transaction, run on the writer connection's thread.

The store hands the whole batch to that thread at once (``SqliteStore.write_telemetry``); here the same
async code as elsewhere runs against the plain sqlite3 connection (see ``inline``), a statement per table
whatever the batch's size (see ``bulk``), the rollups merged in the same transaction (see ``rollups``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import datetime

from telemetra.domain.models import TelemetryMessage
from telemetra.store.codec import dedupe_points, dumps, encode_value, latest_per_key
from telemetra.store.rollups import RollupConfig, hour_floor, plan_energy, plan_stats
from telemetra.store.sqlite import rollups
from telemetra.store.sqlite.bulk import insert_rows, rows_param
from telemetra.store.sqlite.inline import InlineConnection, run_inline
from telemetra.store.sqlite.time import us as _us

__all__ = ["write_on_writer_thread"]


async def _key_ids_for(conn: InlineConnection, names: set[str], known: dict[str, int]) -> dict[str, int]:
    """The ids of ``names``, new ones inserted in the batch's transaction. Not cached here: if the batch
    rolls back, SQLite gives those ids to the next new names, and a cached one would file points under
    another key. ``write_on_writer_thread`` caches them after the COMMIT."""
    missing = [name for name in names if name not in known]
    if not missing:
        return known
    await conn.executemany("INSERT OR IGNORE INTO ts_keys (name) VALUES (?)", [(n,) for n in missing])
    placeholders = ",".join("?" * len(missing))
    async with conn.execute(f"SELECT name, id FROM ts_keys WHERE name IN ({placeholders})", missing) as cur:
        return {**known, **{name: key_id for name, key_id in await cur.fetchall()}}


async def _mark_known(conn: InlineConnection, messages: list[TelemetryMessage]) -> None:
    """Mark the messages whose msg_id is already claimed: one lookup for the batch, each pair found
    through the primary key."""
    keyed = [m for m in messages if m.msg_id is not None]
    if not keyed:
        return
    # Each match is read back by its position in the list, not by the msg_id it gives: the msg_id comes
    # back as SQLite's JSON functions read it, which may differ from what was sent (they end a string at
    # a NUL, which the validation refuses before a message reaches the store).
    async with conn.execute(
        "SELECT j.key, k.message_id FROM json_each(?) AS j "
        "JOIN message_ids AS k ON k.device_pk = j.value ->> 0 AND k.msg_id = j.value ->> 1",
        (rows_param([(m.device_pk, m.msg_id) for m in keyed]),),
    ) as cur:
        for index, message_id in await cur.fetchall():
            msg = keyed[index]
            msg.id, msg.duplicate = message_id, True


def write_on_writer_thread(
    conn: sqlite3.Connection,
    unique: list[TelemetryMessage],
    received_at: datetime,
    key_ids: dict[str, int],
    keep_raw_messages: bool,
    rollup_config: RollupConfig,
) -> None:
    """Write a batch in one transaction on ``conn``, the writer's own sqlite3 connection, on its thread;
    ``key_ids``, the store's cache of key ids, learns the new ones once the batch is committed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        batch_key_ids = run_inline(
            _write_batch(InlineConnection(conn), unique, received_at, key_ids, keep_raw_messages, rollup_config)
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()  # nothing of a failed batch stays, nor a transaction left open for the next one
        raise
    if batch_key_ids is not key_ids:  # the batch brought new key names
        key_ids.update(batch_key_ids)


async def _write_batch(
    conn: InlineConnection,
    unique: list[TelemetryMessage],
    received_at: datetime,
    known_key_ids: dict[str, int],
    keep_raw_messages: bool,
    rollup_config: RollupConfig,
) -> dict[str, int]:
    """Write the batch; return the key ids it used, for the cache to learn once it is committed."""
    received = _us(received_at)
    await _mark_known(conn, unique)
    fresh = [m for m in unique if not m.duplicate]
    points = dedupe_points(fresh)
    newest = latest_per_key(points)
    key_ids = await _key_ids_for(conn, {key for (_, key, _) in points}, known_key_ids)
    sealed = await rollups.sealed_until(conn)
    late = {k: p for k, p in points.items() if k[2] < sealed}
    energy = plan_energy(points, rollup_config)
    # The stored newest value of a series matters only to its late points (which may replace a
    # stored one) and to power series (whose energy continues from it).
    series = {(pk, key_ids[key]) for (pk, key, _) in late} | {(pk, key_ids[key]) for (pk, key) in energy}
    prior = await rollups.read_prior(conn, series)
    # Only a point not newer than its key's stored newest can replace a stored point.
    replaced = await rollups.find_replaced(
        conn,
        [
            (pk, key_ids[key], ts)
            for (pk, key, ts) in points
            if (pk, key_ids[key]) in prior and ts <= prior[(pk, key_ids[key])][0]
        ],
    )
    # Taken from a counter, not from max(id) of `messages`: that table is empty when raw messages are
    # not kept. Rolled back with the batch, like everything it writes.
    await conn.execute("UPDATE message_id_counter SET last_id = last_id + ?", (len(fresh),))
    async with conn.execute("SELECT last_id FROM message_id_counter") as cur:
        next_id = (await cur.fetchone())[0] - len(fresh) + 1
    for offset, msg in enumerate(fresh):
        msg.id = next_id + offset
    # One statement per table, whatever the batch's size (see store.sqlite.bulk).
    await insert_rows(
        conn,
        "INSERT INTO message_ids (device_pk, msg_id, message_id, ts)",
        4,
        [(m.device_pk, m.msg_id, m.id, _us(m.ts)) for m in fresh if m.msg_id is not None],
    )
    if keep_raw_messages:
        await insert_rows(
            conn,
            "INSERT INTO messages (id, device_pk, ts, type, data, metadata, received_at)",
            7,
            [(m.id, m.device_pk, _us(m.ts), m.type, dumps(m.data), dumps(m.metadata), received) for m in fresh],
        )
    await insert_rows(
        conn,
        "INSERT INTO points (device_pk, key_id, ts, v_num, v_str, v_bool, v_json)",
        7,
        [(device_pk, key_ids[key], _us(ts), *encode_value(p.value)) for (device_pk, key, ts), p in points.items()],
        "ON CONFLICT (device_pk, key_id, ts) DO UPDATE SET v_num = excluded.v_num, v_str = excluded.v_str, "
        "v_bool = excluded.v_bool, v_json = excluded.v_json",
    )
    await rollups.write_stats(
        conn,
        {(pk, key_ids[key], hour): agg for (pk, key, hour), agg in plan_stats(late).items()},
        {(pk, kid, hour_floor(ts)) for pk, kid, ts in replaced if ts < sealed},
        sealed,
    )
    await rollups.write_energy(
        conn, {(pk, key_ids[key]): samples for (pk, key), samples in energy.items()}, prior, replaced, rollup_config
    )
    await insert_rows(
        conn,
        "INSERT INTO latest (device_pk, key_id, ts, v_num, v_str, v_bool, v_json)",
        7,
        [(device_pk, key_ids[key], _us(p.ts), *encode_value(p.value)) for (device_pk, key), p in newest.items()],
        "ON CONFLICT (device_pk, key_id) DO UPDATE SET ts = excluded.ts, v_num = excluded.v_num, "
        "v_str = excluded.v_str, v_bool = excluded.v_bool, v_json = excluded.v_json "
        "WHERE excluded.ts >= latest.ts",
    )
    # One statement per distinct count of new messages (most batches: one or two). An UPDATE ... FROM the
    # per-device counts costs four times as much: SQLite materialises the join first.
    sent = Counter(m.device_pk for m in fresh)
    by_count: dict[int, list[int]] = {}
    for pk in {m.device_pk for m in unique}:
        by_count.setdefault(sent[pk], []).append(pk)
    for count, pks in by_count.items():
        await conn.execute(
            "UPDATE devices SET last_seen = max(coalesce(last_seen, 0), ?1), "
            "last_data_at = max(coalesce(last_data_at, 0), ?1), messages_sent = messages_sent + ?3 "
            "WHERE pk IN (SELECT value FROM json_each(?2))",
            (received, rows_param(pks), count),
        )
    per_tenant = Counter(m.tenant_id for m in fresh if m.tenant_id is not None)
    if per_tenant:
        # The console's messages per minute (migration 0019), by minute of arrival.
        await conn.execute(
            "INSERT INTO minute_counts (tenant_id, minute, messages) SELECT json_extract(value, '$[0]'), ?1, "
            "json_extract(value, '$[1]') FROM json_each(?2) WHERE true ON CONFLICT (tenant_id, minute) "
            "DO UPDATE SET messages = messages + excluded.messages",
            (received - received % 60_000_000, rows_param(sorted(per_tenant.items()))),
        )
    await conn.execute(
        "INSERT INTO daily_counts (day, messages, points) VALUES (?, ?, ?) ON CONFLICT (day) DO UPDATE "
        "SET messages = messages + excluded.messages, points = points + excluded.points",
        (received // 86_400_000_000, len(fresh), len(points)),
    )
    return key_ids
