"""Rollup writes and reads on PostgreSQL (see ``store.rollups``): a batch's late points and energy inside
its transaction, the other points' statistics by ``seal`` a slice at a time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg

from telemetra.domain.rollup import Aggregate
from telemetra.store.rollups import (
    RollupConfig,
    energy_change,
    energy_recompute_window,
    energy_updates,
    hour_floor,
    recompute_energy,
)

__all__ = [
    "lock_energy_devices",
    "SHARE_SEAL",
    "read_prior",
    "stats_merge_sql",
    "recompute_stats",
    "seal",
    "write_energy",
    "hourly_rollups",
    "rollup_totals",
    "energy_hours",
    "rebuild",
    "SEALED_UNTIL",
]

# Advisory lock namespace for a device's energy series: two workers writing the same device would each
# read the same "newest sample" and add the same step twice. The second waits for the first's commit.
ENERGY_LOCK_NAMESPACE = 7301
# Advisory lock around ``rollup_seal.sealed_until``: every batch holds it shared for its transaction, so
# that the point where it stops merging statistics cannot move under it; the sealer holds it exclusively.
SEAL_LOCK = (7302, 0)
SEALED_UNTIL = "(SELECT sealed_until FROM rollup_seal)"

Prior = dict[tuple[int, int], tuple[datetime, float | None]]


async def lock_energy_devices(conn: asyncpg.Connection, energy: dict[tuple[int, int], list]) -> None:
    devices = sorted({pk for pk, _ in energy})
    if devices:
        # Sorted, so that two batches lock shared devices in the same order (no deadlock).
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, pk) FROM unnest($2::int[]) AS pk ORDER BY pk",
            ENERGY_LOCK_NAMESPACE,
            devices,
        )


# Holds the seal lock shared until the transaction ends: its later statements see a stable
# ``sealed_until``. It must be a statement of its own, before those: a statement's snapshot is taken when
# it starts, so a lock waited for inside it would not make the sealer's commit visible. Literal numbers,
# no parameters: it can go in one simple-protocol message with the BEGIN before it.
SHARE_SEAL = f"SELECT pg_advisory_xact_lock_shared({SEAL_LOCK[0]}, {SEAL_LOCK[1]})"


async def read_prior(conn: asyncpg.Connection, pairs: set[tuple[int, int]]) -> Prior:
    """The stored newest sample of each (device, key id), before this batch."""
    if not pairs:
        return {}
    pks, kids = zip(*sorted(pairs), strict=True)
    rows = await conn.fetch(
        "SELECT l.device_pk, l.key_id, l.ts, l.v_num FROM latest l "
        "JOIN unnest($1::int[], $2::int[]) AS q(pk, kid) ON l.device_pk = q.pk AND l.key_id = q.kid",
        pks,
        kids,
    )
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


# The UTC hour of a timestamptz whatever the session's time zone (date_trunc alone would use the session's).
UTC_HOUR = "date_trunc('hour', {ts} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
# The statistics of a group of raw points (ts, v_num), in the column order of rollup_hourly.
RAW_AGGREGATE = (
    "count(*), sum(v_num), sum(v_num * v_num), min(v_num), max(v_num), min(ts), "
    "(array_agg(v_num ORDER BY ts))[1], max(ts), (array_agg(v_num ORDER BY ts DESC))[1]"
)


def stats_merge_sql(source: str, condition: str = "TRUE") -> str:
    """An INSERT merging the numeric points of ``source`` (a table or view of points, unique per device,
    key and time) that meet ``condition`` into the statistics of their hours, grouped in SQL.

    Hours where a point replaced a stored one must then be rebuilt with ``recompute_stats``: merged first
    and rewritten whole afterwards, they end up as if left out of the merge.
    """
    # Every SET expression reads the stored row as it was: first/last compare against the old times.
    # Ordered by primary key so concurrent batches lock rows in the same order (no deadlock).
    return (
        f"INSERT INTO rollup_hourly AS r SELECT device_pk, key_id, {UTC_HOUR.format(ts='ts')}, {RAW_AGGREGATE} "
        f"FROM {source} WHERE v_num IS NOT NULL AND {condition} GROUP BY 1, 2, 3 "
        "ORDER BY 1, 2, 3 ON CONFLICT (device_pk, key_id, hour) DO UPDATE SET "
        "n = r.n + excluded.n, sum = r.sum + excluded.sum, sumsq = r.sumsq + excluded.sumsq, "
        "min = least(r.min, excluded.min), max = greatest(r.max, excluded.max), "
        "first_ts = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_ts ELSE r.first_ts END, "
        "first_v = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_v ELSE r.first_v END, "
        "last_ts = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_ts ELSE r.last_ts END, "
        "last_v = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_v ELSE r.last_v END"
    )


async def recompute_stats(
    conn: asyncpg.Connection, groups: set[tuple[int, int, datetime]], sealed_until: datetime
) -> None:
    """Replace the rollups of ``groups`` (device, key id, hour) by what their raw points before
    ``sealed_until`` say now (the points from it on are the sealer's to add)."""
    pks, kids, hours = zip(*sorted(groups), strict=True)
    await conn.execute(
        "DELETE FROM rollup_hourly r USING unnest($1::int[], $2::int[], $3::timestamptz[]) AS g(pk, kid, hour) "
        "WHERE r.device_pk = g.pk AND r.key_id = g.kid AND r.hour = g.hour",
        pks,
        kids,
        hours,
    )
    await conn.execute(
        # RAW_AGGREGATE's ts and v_num are the points' (g has no such columns).
        f"INSERT INTO rollup_hourly SELECT g.pk, g.kid, g.hour, {RAW_AGGREGATE} "
        "FROM unnest($1::int[], $2::int[], $3::timestamptz[]) AS g(pk, kid, hour) "
        "JOIN points p ON p.device_pk = g.pk AND p.key_id = g.kid AND p.ts >= g.hour "
        "AND p.ts < least(g.hour + interval '1 hour', $4) AND p.v_num IS NOT NULL GROUP BY g.pk, g.kid, g.hour",
        pks,
        kids,
        hours,
        sealed_until,
    )


async def seal(conn: asyncpg.Connection, until: datetime, max_slice: timedelta) -> tuple[datetime, datetime, int]:
    """Merge the statistics of the points in [sealed_until, until) into their hours and move
    ``sealed_until`` there, at most ``max_slice`` at a time; return (from, to, rows merged).

    Under the seal lock held exclusively: every batch that could still write a point of the slice
    without merging it has committed, and the next ones merge what they write before the new mark.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *SEAL_LOCK)
    start = await conn.fetchval("SELECT sealed_until FROM rollup_seal")
    end = min(until, start + max_slice)
    if end <= start:
        return start, start, 0
    status = await conn.execute(stats_merge_sql("points", "ts >= $1 AND ts < $2"), start, end)
    await conn.execute("UPDATE rollup_seal SET sealed_until = $1", end)
    return start, end, int(status.split()[-1])


async def write_energy(
    conn: asyncpg.Connection,
    energy: dict[tuple[int, int], list[tuple[datetime, float]]],
    prior: Prior,
    replaced: set,
    config: RollupConfig,
) -> None:
    if not energy:
        return
    tenants = dict(
        await conn.fetch(
            "SELECT pk, tenant_id FROM devices WHERE pk = ANY($1::int[])", sorted({pk for pk, _ in energy})
        )
    )
    added, tenant_sums = await energy_updates(
        energy,
        prior,
        replaced,
        config.max_hold,
        tenants,
        lambda pk, kid, samples: _recompute_series(conn, pk, kid, samples, config.max_hold),
    )
    await _add_rows(conn, "energy_hourly", "device_pk", added)
    await _add_rows(conn, "tenant_energy_hourly", "tenant_id", tenant_sums)


async def _recompute_series(
    conn: asyncpg.Connection, pk: int, kid: int, samples: list[tuple[datetime, float]], max_hold: timedelta
) -> dict[datetime, tuple[float, float]]:
    """Rewrite the device's energy hours a late sample can touch; return the change per hour (new - old)."""
    lo, hi = energy_recompute_window(samples, max_hold)
    carried = await conn.fetchrow(
        "SELECT ts, v_num FROM points WHERE device_pk = $1 AND key_id = $2 AND ts < $3 AND v_num IS NOT NULL "
        "ORDER BY ts DESC LIMIT 1",
        pk,
        kid,
        lo,
    )
    window = await conn.fetch(
        "SELECT ts, v_num FROM points WHERE device_pk = $1 AND key_id = $2 AND ts >= $3 AND ts < $4 "
        "AND v_num IS NOT NULL ORDER BY ts",
        pk,
        kid,
        lo,
        hi,
    )
    successor = await conn.fetchval(
        "SELECT 1 FROM points WHERE device_pk = $1 AND key_id = $2 AND ts >= $3 AND v_num IS NOT NULL LIMIT 1",
        pk,
        kid,
        hi,
    )
    new = recompute_energy(
        (carried[0], carried[1]) if carried else None,
        [(r[0], r[1]) for r in window],
        successor is not None,
        lo,
        hi,
        max_hold,
    )
    old = {
        r[0]: (r[1], r[2])
        for r in await conn.fetch(
            "DELETE FROM energy_hourly WHERE device_pk = $1 AND key_id = $2 AND hour >= $3 AND hour < $4 "
            "RETURNING hour, wh, covered_s",
            pk,
            kid,
            lo,
            hi,
        )
    }
    if new:
        await conn.executemany(
            "INSERT INTO energy_hourly VALUES ($1, $2, $3, $4, $5)",
            [(pk, kid, hour, wh, covered) for hour, (wh, covered) in sorted(new.items())],
        )
    return energy_change(new, old)


async def _add_rows(
    conn: asyncpg.Connection, table: str, owner: str, rows: dict[tuple[int, int, datetime], tuple[float, float]]
) -> None:
    if not rows:
        return
    ordered = sorted(rows.items())
    columns = list(zip(*((a, b, hour, wh, cov) for (a, b, hour), (wh, cov) in ordered), strict=True))
    await conn.execute(
        f"INSERT INTO {table} AS e ({owner}, key_id, hour, wh, covered_s) SELECT * FROM unnest($1::int[], "
        f"$2::int[], $3::timestamptz[], $4::float8[], $5::float8[]) ON CONFLICT ({owner}, key_id, hour) "
        f"DO UPDATE SET wh = e.wh + excluded.wh, covered_s = e.covered_s + excluded.covered_s",
        *columns,
    )


# -- reads -------------------------------------------------------------------------------------------
def _aggregate(row: asyncpg.Record, at: int) -> Aggregate:
    n, total, sumsq, lo, hi, first_ts, first_v, last_ts, last_v = row[at : at + 9]
    return Aggregate(n, total, sumsq, lo, hi, first_ts, first_v, last_ts, last_v)


AGG_COLUMNS = "n, sum, sumsq, min, max, first_ts, first_v, last_ts, last_v"


def _merged(rows: list[tuple[tuple, Aggregate]]) -> dict[tuple, Aggregate]:
    """Rows of the same group (an hour partly sealed has a rollup row and raw points) merged."""
    out: dict[tuple, Aggregate] = {}
    for group, agg in rows:
        out[group] = out[group].merge(agg) if group in out else agg
    return out


async def hourly_rollups(
    pool: asyncpg.Pool, device_pks: list[int], key_id: int, start: datetime, end: datetime, limit: str = ""
) -> list[tuple[int, datetime, Aggregate]]:
    """Exact statistics per device and hour in [start, end) (whole hours): the rollups hold the points before
    ``sealed_until``, the raw points from it on are aggregated here; one statement, so one snapshot."""
    rows = await pool.fetch(
        f"SELECT device_pk, hour, {AGG_COLUMNS} FROM rollup_hourly WHERE device_pk = ANY($1::int[]) "
        f"AND key_id = $2 AND hour >= $3 AND hour < $4 "
        f"UNION ALL SELECT device_pk, {UTC_HOUR.format(ts='ts')}, {RAW_AGGREGATE} FROM points "
        f"WHERE device_pk = ANY($1::int[]) AND key_id = $2 AND ts >= greatest($3, {SEALED_UNTIL}) AND ts < $4 "
        f"AND v_num IS NOT NULL GROUP BY 1, 2{limit}",
        device_pks,
        key_id,
        start,
        end,
    )
    merged = _merged([((r[0], r[1]), _aggregate(r, 2)) for r in rows])
    return [(pk, hour, agg) for (pk, hour), agg in sorted(merged.items())]


async def rollup_totals(
    pool: asyncpg.Pool, device_pks: list[int], key_id: int, start: datetime, end: datetime
) -> dict[int, Aggregate]:
    """Exact statistics per device over the whole hours [start, end), summed by the database (rollups before
    ``sealed_until``, raw points from it on, in one statement)."""
    rows = await pool.fetch(
        "SELECT device_pk, sum(n), sum(sum), sum(sumsq), min(min), max(max), min(first_ts), "
        "(array_agg(first_v ORDER BY first_ts))[1], max(last_ts), (array_agg(last_v ORDER BY last_ts DESC))[1] "
        "FROM rollup_hourly WHERE device_pk = ANY($1::int[]) AND key_id = $2 AND hour >= $3 AND hour < $4 "
        f"GROUP BY device_pk UNION ALL SELECT device_pk, {RAW_AGGREGATE} FROM points "
        f"WHERE device_pk = ANY($1::int[]) AND key_id = $2 AND ts >= greatest($3, {SEALED_UNTIL}) AND ts < $4 "
        "AND v_num IS NOT NULL GROUP BY device_pk",
        device_pks,
        key_id,
        start,
        end,
    )
    return {pk: agg for (pk,), agg in _merged([((r[0],), Aggregate(int(r[1]), *r[2:])) for r in rows]).items()}


async def energy_hours(
    pool: asyncpg.Pool, key_id: int, start: datetime, end: datetime, device_pk: int | None, tenant_id: int | None
) -> dict[datetime, tuple[float, float]]:
    table, owner, owner_id = (
        ("energy_hourly", "device_pk", device_pk)
        if device_pk is not None
        else ("tenant_energy_hourly", "tenant_id", tenant_id)
    )
    rows = await pool.fetch(
        f"SELECT hour, wh, covered_s FROM {table} WHERE {owner} = $1 AND key_id = $2 AND hour >= $3 AND hour < $4 "
        f"ORDER BY hour",
        owner_id,
        key_id,
        start,
        end,
    )
    return {r[0]: (r[1], r[2]) for r in rows}


# -- rebuild -----------------------------------------------------------------------------------------
async def rebuild(
    conn: asyncpg.Connection, since: datetime | None, energy_key_ids: list[int], max_hold: timedelta
) -> tuple[int, int]:
    """Recompute the rollups of every hour from ``since`` from raw points, in the caller's transaction.

    Statistics are rebuilt from the points before ``sealed_until`` only (the later ones are the sealer's),
    under the seal lock, so that no batch merges into an hour while it is rewritten.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *SEAL_LOCK)
    lo = hour_floor(since) if since else datetime(1, 1, 2, tzinfo=timezone.utc)
    await conn.execute("DELETE FROM rollup_hourly WHERE hour >= $1", lo)
    status = await conn.execute(stats_merge_sql("points", f"ts >= $1 AND ts < {SEALED_UNTIL}"), lo)
    stats_rows = int(status.split()[-1])
    await conn.execute("DELETE FROM energy_hourly WHERE hour >= $1", lo)
    await conn.execute("DELETE FROM tenant_energy_hourly WHERE hour >= $1", lo)
    energy_rows = 0
    far = datetime(9999, 1, 1, tzinfo=timezone.utc)
    series = await conn.fetch(
        "SELECT DISTINCT device_pk, key_id FROM latest WHERE key_id = ANY($1::int[]) ORDER BY 1, 2", energy_key_ids
    )
    for pk, kid in series:
        carried = await conn.fetchrow(
            "SELECT ts, v_num FROM points WHERE device_pk = $1 AND key_id = $2 AND ts < $3 AND v_num IS NOT NULL "
            "ORDER BY ts DESC LIMIT 1",
            pk,
            kid,
            lo,
        )
        samples = await conn.fetch(
            "SELECT ts, v_num FROM points WHERE device_pk = $1 AND key_id = $2 AND ts >= $3 AND v_num IS NOT NULL "
            "ORDER BY ts",
            pk,
            kid,
            lo,
        )
        start = lo if since or not samples else hour_floor(samples[0][0])
        hours = recompute_energy(
            (carried[0], carried[1]) if carried else None, [(r[0], r[1]) for r in samples], False, start, far, max_hold
        )
        # Hours before ``since`` were kept: only the part from ``since`` on is rewritten.
        rows = [(pk, kid, hour, wh, cov) for hour, (wh, cov) in sorted(hours.items()) if hour >= lo]
        if rows:
            await conn.executemany(
                "INSERT INTO energy_hourly VALUES ($1, $2, $3, $4, $5) ON CONFLICT "
                "(device_pk, key_id, hour) DO UPDATE SET wh = excluded.wh, "
                "covered_s = excluded.covered_s",
                rows,
            )
        energy_rows += len(rows)
    await conn.execute(
        "INSERT INTO tenant_energy_hourly SELECT d.tenant_id, e.key_id, e.hour, sum(e.wh), sum(e.covered_s) "
        "FROM energy_hourly e JOIN devices d ON d.pk = e.device_pk WHERE e.hour >= $1 "
        "GROUP BY d.tenant_id, e.key_id, e.hour",
        lo,
    )
    return stats_rows, energy_rows
