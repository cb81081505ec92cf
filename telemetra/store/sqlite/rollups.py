"""Rollup writes and reads on SQLite (see ``store.rollups``): a batch's late points and energy inside its
transaction, the other points' statistics by ``seal`` a slice at a time.

SQLite has a single writer, so unlike PostgreSQL no lock is needed around a device's energy series.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiosqlite

from telemetra.domain.rollup import Aggregate
from telemetra.store.rollups import (
    RollupConfig,
    energy_change,
    energy_recompute_window,
    energy_updates,
    hour_floor,
    recompute_energy,
)
from telemetra.store.sqlite.bulk import insert_rows
from telemetra.store.sqlite.inline import WriteConnection
from telemetra.store.sqlite.time import HOUR_US, dt, us

__all__ = [
    "sealed_until",
    "read_prior",
    "find_replaced",
    "write_stats",
    "write_energy",
    "recompute_stats",
    "seal",
    "hourly_rollups",
    "rollup_totals",
    "energy_hours",
    "rebuild",
]

Prior = dict[tuple[int, int], tuple[datetime, float | None]]
# Row values per statement: SQLite allows 32,766 bound parameters; three per point leaves a wide margin.
CHUNK = 2000


async def _rows(conn: WriteConnection, sql: str, args: tuple) -> list:
    # Run to the end in one call on the connection's thread (see SqliteStore._fetchall).
    return list(await conn.execute_fetchall(sql, args))


SEALED_UNTIL = "(SELECT sealed_until FROM rollup_seal)"
# Merge rows of statistics (device_pk, key_id, hour, n, sum, sumsq, min, max, first_ts, first_v, last_ts,
# last_v) into rollup_hourly. SET expressions see the stored row as it was, so first/last compare against
# the old times.
MERGE_STATS = (
    "ON CONFLICT (device_pk, key_id, hour) DO UPDATE SET "
    "n = r.n + excluded.n, sum = r.sum + excluded.sum, sumsq = r.sumsq + excluded.sumsq, "
    "min = min(r.min, excluded.min), max = max(r.max, excluded.max), "
    "first_ts = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_ts ELSE r.first_ts END, "
    "first_v = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_v ELSE r.first_v END, "
    "last_ts = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_ts ELSE r.last_ts END, "
    "last_v = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_v ELSE r.last_v END"
)


def points_stats_sql(condition: str, *, by_hour: bool = True) -> str:
    """A SELECT of the statistics of the numeric points meeting ``condition`` per device, key and (when
    ``by_hour``) UTC hour: (device_pk, key_id[, hour], n, sum, sumsq, min, max, first_ts, first_v, last_ts,
    last_v), rollup_hourly's columns.

    first/last values: the value at the group's min/max time, found through the primary key (times are
    unique per device and key).
    """
    hour = f"ts - (ts % {HOUR_US})"
    return (
        f"SELECT g.device_pk, g.key_id, {'g.h, ' if by_hour else ''}g.n, g.s, g.sq, g.lo, g.hi, g.t0, "
        "(SELECT v_num FROM points WHERE device_pk = g.device_pk AND key_id = g.key_id AND ts = g.t0) AS v0, g.t1, "
        "(SELECT v_num FROM points WHERE device_pk = g.device_pk AND key_id = g.key_id AND ts = g.t1) AS v1 "
        f"FROM (SELECT device_pk, key_id, {hour + ' AS h, ' if by_hour else ''}count(*) AS n, sum(v_num) AS s, "
        "sum(v_num * v_num) AS sq, min(v_num) AS lo, max(v_num) AS hi, min(ts) AS t0, max(ts) AS t1 FROM points "
        f"WHERE v_num IS NOT NULL AND {condition} GROUP BY device_pk, key_id{', ' + hour if by_hour else ''}) g"
    )


async def sealed_until(conn: WriteConnection) -> datetime:
    return dt((await _rows(conn, "SELECT sealed_until FROM rollup_seal", ()))[0][0])


async def read_prior(conn: WriteConnection, pairs: set[tuple[int, int]]) -> Prior:
    prior: Prior = {}
    ordered = sorted(pairs)
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i : i + CHUNK]
        values = ",".join("(?, ?)" for _ in chunk)
        for pk, kid, ts, v_num in await _rows(
            conn,
            f"SELECT device_pk, key_id, ts, v_num FROM latest WHERE (device_pk, key_id) IN (VALUES {values})",
            tuple(x for pair in chunk for x in pair),
        ):
            prior[(pk, kid)] = (dt(ts), v_num)
    return prior


async def find_replaced(conn: WriteConnection, candidates: list[tuple[int, int, datetime]]) -> set:
    found = set()
    for i in range(0, len(candidates), CHUNK):
        chunk = candidates[i : i + CHUNK]
        values = ",".join("(?, ?, ?)" for _ in chunk)
        args = tuple(x for pk, kid, ts in chunk for x in (pk, kid, us(ts)))
        sql = f"SELECT device_pk, key_id, ts FROM points WHERE (device_pk, key_id, ts) IN (VALUES {values})"
        for pk, kid, ts in await _rows(conn, sql, args):
            found.add((pk, kid, dt(ts)))
    return found


async def write_stats(
    conn: WriteConnection,
    stats: dict[tuple[int, int, datetime], Aggregate],
    recompute: set[tuple[int, int, datetime]],
    sealed: datetime,
) -> None:
    """Merge a batch's late points (before the seal mark ``sealed``) into their hours; rebuild the hours
    in ``recompute`` (where a point replaced a stored one) from raw points instead."""
    merge = [
        (
            pk,
            kid,
            us(hour),
            a.count,
            a.sum,
            a.sum_sq,
            a.min,
            a.max,
            us(a.first[0]),
            a.first[1],
            us(a.last[0]),
            a.last[1],
        )
        for (pk, kid, hour), a in sorted(stats.items())
        if (pk, kid, hour) not in recompute
    ]
    if merge:  # late points only, and few: executemany (the JSON form re-reads its rows for each excluded.*)
        await conn.executemany(
            f"INSERT INTO rollup_hourly AS r VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {MERGE_STATS}", merge
        )
    if recompute:
        await recompute_stats(conn, sorted(recompute), sealed)


async def recompute_stats(conn: WriteConnection, groups: list[tuple[int, int, datetime]], sealed: datetime) -> None:
    """Replace the rollups of ``groups`` (device, key id, hour) by what their raw points before the seal
    mark ``sealed`` say now (the later points are the sealer's to add)."""
    for pk, kid, hour in groups:
        lo = us(hour)
        await conn.execute("DELETE FROM rollup_hourly WHERE device_pk = ? AND key_id = ? AND hour = ?", (pk, kid, lo))
        samples = [
            (dt(ts), v)
            for ts, v in await _rows(
                conn,
                "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? AND ts < ? "
                "AND v_num IS NOT NULL ORDER BY ts",
                (pk, kid, lo, min(lo + HOUR_US, us(sealed))),
            )
        ]
        if samples:
            a = Aggregate.from_values(samples)
            await conn.execute(
                "INSERT INTO rollup_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pk,
                    kid,
                    lo,
                    a.count,
                    a.sum,
                    a.sum_sq,
                    a.min,
                    a.max,
                    us(a.first[0]),
                    a.first[1],
                    us(a.last[0]),
                    a.last[1],
                ),
            )


async def seal(conn: aiosqlite.Connection, until: datetime, max_slice: timedelta) -> tuple[datetime, datetime, int]:
    """Merge the statistics of the points in [seal mark, until) into their hours and move the mark there,
    at most ``max_slice`` at a time; return (from, to, rows merged). In the caller's write transaction:
    SQLite's single writer means no batch runs meanwhile."""
    start = await sealed_until(conn)
    end = min(until, start + max_slice)
    if end <= start:
        return start, start, 0
    # WHERE true: without a WHERE, SQLite would read ON CONFLICT as a join constraint of the SELECT.
    cur = await conn.execute(
        f"INSERT INTO rollup_hourly AS r SELECT * FROM ({points_stats_sql('ts >= ? AND ts < ?')}) "
        f"WHERE true {MERGE_STATS}",
        (us(start), us(end)),
    )
    await conn.execute("UPDATE rollup_seal SET sealed_until = ?", (us(end),))
    return start, end, cur.rowcount


async def write_energy(
    conn: WriteConnection,
    energy: dict[tuple[int, int], list[tuple[datetime, float]]],
    prior: Prior,
    replaced: set,
    config: RollupConfig,
) -> None:
    if not energy:
        return
    pks = sorted({pk for pk, _ in energy})
    tenants = dict(
        await _rows(conn, f"SELECT pk, tenant_id FROM devices WHERE pk IN ({','.join('?' * len(pks))})", tuple(pks))
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
    conn: WriteConnection, pk: int, kid: int, samples: list[tuple[datetime, float]], max_hold: timedelta
) -> dict[datetime, tuple[float, float]]:
    """Rewrite the device's energy hours a late sample can touch; return the change per hour (new - old)."""
    lo, hi = energy_recompute_window(samples, max_hold)
    lo_us, hi_us = us(lo), us(hi)
    carried = await _rows(
        conn,
        "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts < ? "
        "AND v_num IS NOT NULL ORDER BY ts DESC LIMIT 1",
        (pk, kid, lo_us),
    )
    window = await _rows(
        conn,
        "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? "
        "AND ts < ? AND v_num IS NOT NULL ORDER BY ts",
        (pk, kid, lo_us, hi_us),
    )
    successor = await _rows(
        conn,
        "SELECT 1 FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? AND v_num IS NOT NULL LIMIT 1",
        (pk, kid, hi_us),
    )
    new = recompute_energy(
        (dt(carried[0][0]), carried[0][1]) if carried else None,
        [(dt(ts), v) for ts, v in window],
        bool(successor),
        lo,
        hi,
        max_hold,
    )
    old = {
        dt(h): (wh, cov)
        for h, wh, cov in await _rows(
            conn,
            "SELECT hour, wh, covered_s FROM energy_hourly WHERE device_pk = ? AND key_id = ? AND hour >= ? "
            "AND hour < ?",
            (pk, kid, lo_us, hi_us),
        )
    }
    await conn.execute(
        "DELETE FROM energy_hourly WHERE device_pk = ? AND key_id = ? AND hour >= ? AND hour < ?",
        (pk, kid, lo_us, hi_us),
    )
    await conn.executemany(
        "INSERT INTO energy_hourly VALUES (?, ?, ?, ?, ?)",
        [(pk, kid, us(hour), wh, cov) for hour, (wh, cov) in sorted(new.items())],
    )
    return energy_change(new, old)


async def _add_rows(
    conn: WriteConnection, table: str, owner: str, rows: dict[tuple[int, int, datetime], tuple[float, float]]
) -> None:
    await insert_rows(
        conn,
        f"INSERT INTO {table} AS e ({owner}, key_id, hour, wh, covered_s)",
        5,
        [(a, b, us(hour), wh, cov) for (a, b, hour), (wh, cov) in sorted(rows.items())],
        f"ON CONFLICT ({owner}, key_id, hour) DO UPDATE SET wh = e.wh + excluded.wh, "
        f"covered_s = e.covered_s + excluded.covered_s",
    )


# -- reads -------------------------------------------------------------------------------------------
AGG_COLUMNS = "n, sum, sumsq, min, max, first_ts, first_v, last_ts, last_v"


def _aggregate(row: tuple) -> Aggregate:
    n, total, sumsq, lo, hi, first_ts, first_v, last_ts, last_v = row
    return Aggregate(n, total, sumsq, lo, hi, dt(first_ts), first_v, dt(last_ts), last_v)


def _merged(rows: list[tuple[tuple, Aggregate]]) -> dict[tuple, Aggregate]:
    """Rows of the same group (an hour partly sealed has a rollup row and raw points) merged."""
    out: dict[tuple, Aggregate] = {}
    for group, agg in rows:
        out[group] = out[group].merge(agg) if group in out else agg
    return out


async def hourly_rollups(
    conn: WriteConnection, device_pks: list[int], key_id: int, start: datetime, end: datetime, limit: str = ""
) -> list[tuple[int, datetime, Aggregate]]:
    """Exact statistics per device and hour in [start, end) (whole hours): the rollups hold the points before
    the seal mark, the raw points from it on are aggregated here; one statement per chunk of devices, so
    one snapshot for each device."""
    rows: list[tuple[tuple, Aggregate]] = []
    for i in range(0, len(device_pks), CHUNK):
        chunk = device_pks[i : i + CHUNK]
        marks = ",".join("?" * len(chunk))
        raw = points_stats_sql(f"device_pk IN ({marks}) AND key_id = ? AND ts >= max(?, {SEALED_UNTIL}) AND ts < ?")
        found = await _rows(
            conn,
            f"SELECT device_pk, hour, {AGG_COLUMNS} FROM rollup_hourly WHERE device_pk IN "
            f"({marks}) AND key_id = ? AND hour >= ? AND hour < ? UNION ALL "
            f"SELECT device_pk, h, n, s, sq, lo, hi, t0, v0, t1, v1 FROM ({raw}){limit}",
            (*chunk, key_id, us(start), us(end), *chunk, key_id, us(start), us(end)),
        )
        rows.extend(((r[0], dt(r[1])), _aggregate(r[2:])) for r in found)
    return [(pk, hour, agg) for (pk, hour), agg in sorted(_merged(rows).items())]


async def rollup_totals(
    conn: WriteConnection, device_pks: list[int], key_id: int, start: datetime, end: datetime
) -> dict[int, Aggregate]:
    """Exact statistics per device over the whole hours [start, end), summed by the database (rollups before
    the seal mark, raw points from it on, in one statement per chunk of devices)."""
    rows: list[tuple[tuple, Aggregate]] = []
    for i in range(0, len(device_pks), CHUNK):
        chunk = device_pks[i : i + CHUNK]
        marks = ",".join("?" * len(chunk))
        raw = points_stats_sql(
            f"device_pk IN ({marks}) AND key_id = ? AND ts >= max(?, {SEALED_UNTIL}) AND ts < ?", by_hour=False
        )
        # first/last values: the hour rows holding the earliest and latest times (times are unique per key).
        found = await _rows(
            conn,
            f"SELECT g.device_pk, g.n, g.s, g.sq, g.lo, g.hi, g.t0, (SELECT first_v FROM "
            f"rollup_hourly r WHERE r.device_pk = g.device_pk AND r.key_id = ? AND r.first_ts = g.t0), "
            f"g.t1, (SELECT last_v FROM rollup_hourly r WHERE r.device_pk = g.device_pk AND "
            f"r.key_id = ? AND r.last_ts = g.t1) FROM (SELECT device_pk, sum(n) AS n, sum(sum) AS s, "
            f"sum(sumsq) AS sq, min(min) AS lo, max(max) AS hi, min(first_ts) AS t0, "
            f"max(last_ts) AS t1 FROM rollup_hourly WHERE device_pk IN ({marks}) "
            f"AND key_id = ? AND hour >= ? AND hour < ? GROUP BY device_pk) g UNION ALL "
            f"SELECT device_pk, n, s, sq, lo, hi, t0, v0, t1, v1 FROM ({raw})",
            (key_id, key_id, *chunk, key_id, us(start), us(end), *chunk, key_id, us(start), us(end)),
        )
        rows.extend(((r[0],), _aggregate(r[1:])) for r in found)
    return {pk: agg for (pk,), agg in _merged(rows).items()}


async def energy_hours(
    conn: WriteConnection, key_id: int, start: datetime, end: datetime, device_pk: int | None, tenant_id: int | None
) -> dict[datetime, tuple[float, float]]:
    table, owner, owner_id = (
        ("energy_hourly", "device_pk", device_pk)
        if device_pk is not None
        else ("tenant_energy_hourly", "tenant_id", tenant_id)
    )
    rows = await _rows(
        conn,
        f"SELECT hour, wh, covered_s FROM {table} WHERE {owner} = ? AND key_id = ? "
        f"AND hour >= ? AND hour < ? ORDER BY hour",
        (owner_id, key_id, us(start), us(end)),
    )
    return {dt(h): (wh, cov) for h, wh, cov in rows}


# -- rebuild -----------------------------------------------------------------------------------------
async def rebuild(
    conn: aiosqlite.Connection, since: datetime | None, energy_key_ids: list[int], max_hold: timedelta
) -> tuple[int, int]:
    """Recompute the rollups of every hour from ``since`` from raw points, in the caller's transaction."""
    lo = us(hour_floor(since)) if since else -(2**62)
    await conn.execute("DELETE FROM rollup_hourly WHERE hour >= ?", (lo,))
    # Statistics from the points before the seal mark only: the later ones are the sealer's to add.
    cur = await conn.execute(f"INSERT INTO rollup_hourly {points_stats_sql(f'ts >= ? AND ts < {SEALED_UNTIL}')}", (lo,))
    stats_rows = cur.rowcount
    await conn.execute("DELETE FROM energy_hourly WHERE hour >= ?", (lo,))
    await conn.execute("DELETE FROM tenant_energy_hourly WHERE hour >= ?", (lo,))
    energy_rows = 0
    far = datetime(9999, 1, 1, tzinfo=timezone.utc)
    marks = ",".join("?" * len(energy_key_ids))
    series = (
        await _rows(
            conn, f"SELECT device_pk, key_id FROM latest WHERE key_id IN ({marks}) ORDER BY 1, 2", tuple(energy_key_ids)
        )
        if energy_key_ids
        else []
    )
    for pk, kid in series:
        carried = await _rows(
            conn,
            "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts < ? "
            "AND v_num IS NOT NULL ORDER BY ts DESC LIMIT 1",
            (pk, kid, lo),
        )
        samples = [
            (dt(ts), v)
            for ts, v in await _rows(
                conn,
                "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? "
                "AND v_num IS NOT NULL ORDER BY ts",
                (pk, kid, lo),
            )
        ]
        start = dt(lo) if since or not samples else hour_floor(samples[0][0])
        hours = recompute_energy(
            (dt(carried[0][0]), carried[0][1]) if carried else None, samples, False, start, far, max_hold
        )
        rows = [(pk, kid, us(hour), wh, cov) for hour, (wh, cov) in sorted(hours.items()) if us(hour) >= lo]
        await conn.executemany("INSERT OR REPLACE INTO energy_hourly VALUES (?, ?, ?, ?, ?)", rows)
        energy_rows += len(rows)
    await conn.execute(
        "INSERT INTO tenant_energy_hourly SELECT d.tenant_id, e.key_id, e.hour, sum(e.wh), sum(e.covered_s) "
        "FROM energy_hourly e JOIN devices d ON d.pk = e.device_pk WHERE e.hour >= ? "
        "GROUP BY d.tenant_id, e.key_id, e.hour",
        (lo,),
    )
    return stats_rows, energy_rows
