"""Rollup writes on SQLite, inside the batch's transaction (see ``store.rollups``).

SQLite has a single writer, so unlike PostgreSQL no lock is needed around a device's energy series.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiosqlite

from telemetra.domain.rollup import Aggregate
from telemetra.store.rollups import (RollupConfig, energy_change, energy_recompute_window, energy_updates, hour_floor,
                                     recompute_energy)
from telemetra.store.sqlite_time import HOUR_US, dt, us

__all__ = ["read_prior", "find_replaced", "write_stats", "write_energy", "recompute_stats", "hourly_rollups",
           "energy_hours", "rebuild"]

Prior = dict[tuple[int, int], tuple[datetime, float | None]]
# Row values per statement: SQLite allows 32,766 bound parameters; three per point leaves a wide margin.
CHUNK = 2000


async def _rows(conn: aiosqlite.Connection, sql: str, args: tuple) -> list:
    # Run to the end in one call on the connection's thread (see SqliteStore._fetchall).
    return list(await conn.execute_fetchall(sql, args))


async def read_prior(conn: aiosqlite.Connection, pairs: set[tuple[int, int]]) -> Prior:
    prior: Prior = {}
    ordered = sorted(pairs)
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i:i + CHUNK]
        values = ",".join("(?, ?)" for _ in chunk)
        for pk, kid, ts, v_num in await _rows(
                conn, f"SELECT device_pk, key_id, ts, v_num FROM latest WHERE (device_pk, key_id) IN (VALUES {values})",
                tuple(x for pair in chunk for x in pair)):
            prior[(pk, kid)] = (dt(ts), v_num)
    return prior


async def find_replaced(conn: aiosqlite.Connection, candidates: list[tuple[int, int, datetime]]) -> set:
    found = set()
    for i in range(0, len(candidates), CHUNK):
        chunk = candidates[i:i + CHUNK]
        values = ",".join("(?, ?, ?)" for _ in chunk)
        for pk, kid, ts in await _rows(
                conn, f"SELECT device_pk, key_id, ts FROM points WHERE (device_pk, key_id, ts) IN (VALUES {values})",
                tuple(x for pk, kid, ts in chunk for x in (pk, kid, us(ts)))):
            found.add((pk, kid, dt(ts)))
    return found


async def write_stats(conn: aiosqlite.Connection, stats: dict[tuple[int, int, datetime], Aggregate],
                      recompute: set[tuple[int, int, datetime]]) -> None:
    merge = [(pk, kid, us(hour), a.count, a.sum, a.sum_sq, a.min, a.max, us(a.first[0]), a.first[1],
              us(a.last[0]), a.last[1]) for (pk, kid, hour), a in sorted(stats.items()) if (pk, kid, hour) not in recompute]
    if merge:
        # SET expressions see the stored row as it was, so first/last compare against the old times.
        await conn.executemany(
            "INSERT INTO rollup_hourly AS r VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device_pk, key_id, hour) DO UPDATE SET "
            "n = r.n + excluded.n, sum = r.sum + excluded.sum, sumsq = r.sumsq + excluded.sumsq, "
            "min = min(r.min, excluded.min), max = max(r.max, excluded.max), "
            "first_ts = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_ts ELSE r.first_ts END, "
            "first_v = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_v ELSE r.first_v END, "
            "last_ts = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_ts ELSE r.last_ts END, "
            "last_v = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.last_v ELSE r.last_v END", merge)
    if recompute:
        await recompute_stats(conn, sorted(recompute))


async def recompute_stats(conn: aiosqlite.Connection, groups: list[tuple[int, int, datetime]]) -> None:
    """Replace the rollups of ``groups`` (device, key id, hour) by what their raw points say now."""
    for pk, kid, hour in groups:
        lo = us(hour)
        await conn.execute("DELETE FROM rollup_hourly WHERE device_pk = ? AND key_id = ? AND hour = ?", (pk, kid, lo))
        samples = [(dt(ts), v) for ts, v in await _rows(
            conn, "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? AND ts < ? "
                  "AND v_num IS NOT NULL ORDER BY ts", (pk, kid, lo, lo + HOUR_US))]
        if samples:
            a = Aggregate.from_values(samples)
            await conn.execute("INSERT INTO rollup_hourly VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (pk, kid, lo, a.count, a.sum, a.sum_sq, a.min, a.max, us(a.first[0]), a.first[1],
                                us(a.last[0]), a.last[1]))


async def write_energy(conn: aiosqlite.Connection, energy: dict[tuple[int, int], list[tuple[datetime, float]]],
                       prior: Prior, replaced: set, config: RollupConfig) -> None:
    if not energy:
        return
    pks = sorted({pk for pk, _ in energy})
    tenants = dict(await _rows(conn, f"SELECT pk, tenant_id FROM devices WHERE pk IN ({','.join('?' * len(pks))})",
                               tuple(pks)))
    added, tenant_sums = await energy_updates(
        energy, prior, replaced, config.max_hold, tenants,
        lambda pk, kid, samples: _recompute_series(conn, pk, kid, samples, config.max_hold))
    await _add_rows(conn, "energy_hourly", "device_pk", added)
    await _add_rows(conn, "tenant_energy_hourly", "tenant_id", tenant_sums)


async def _recompute_series(conn: aiosqlite.Connection, pk: int, kid: int, samples: list[tuple[datetime, float]],
                            max_hold: timedelta) -> dict[datetime, tuple[float, float]]:
    """Rewrite the device's energy hours a late sample can touch; return the change per hour (new - old)."""
    lo, hi = energy_recompute_window(samples, max_hold)
    lo_us, hi_us = us(lo), us(hi)
    carried = await _rows(conn, "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts < ? "
                                "AND v_num IS NOT NULL ORDER BY ts DESC LIMIT 1", (pk, kid, lo_us))
    window = await _rows(conn, "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? "
                               "AND ts < ? AND v_num IS NOT NULL ORDER BY ts", (pk, kid, lo_us, hi_us))
    successor = await _rows(conn, "SELECT 1 FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? "
                                  "AND v_num IS NOT NULL LIMIT 1", (pk, kid, hi_us))
    new = recompute_energy((dt(carried[0][0]), carried[0][1]) if carried else None,
                           [(dt(ts), v) for ts, v in window], bool(successor), lo, hi, max_hold)
    old = {dt(h): (wh, cov) for h, wh, cov in await _rows(
        conn, "SELECT hour, wh, covered_s FROM energy_hourly WHERE device_pk = ? AND key_id = ? AND hour >= ? "
              "AND hour < ?", (pk, kid, lo_us, hi_us))}
    await conn.execute("DELETE FROM energy_hourly WHERE device_pk = ? AND key_id = ? AND hour >= ? AND hour < ?",
                       (pk, kid, lo_us, hi_us))
    await conn.executemany("INSERT INTO energy_hourly VALUES (?, ?, ?, ?, ?)",
                           [(pk, kid, us(hour), wh, cov) for hour, (wh, cov) in sorted(new.items())])
    return energy_change(new, old)


async def _add_rows(conn: aiosqlite.Connection, table: str, owner: str,
                    rows: dict[tuple[int, int, datetime], tuple[float, float]]) -> None:
    if rows:
        await conn.executemany(
            f"INSERT INTO {table} AS e ({owner}, key_id, hour, wh, covered_s) VALUES (?, ?, ?, ?, ?) "
            f"ON CONFLICT ({owner}, key_id, hour) DO UPDATE SET wh = e.wh + excluded.wh, "
            f"covered_s = e.covered_s + excluded.covered_s",
            [(a, b, us(hour), wh, cov) for (a, b, hour), (wh, cov) in sorted(rows.items())])


# -- reads -------------------------------------------------------------------------------------------
AGG_COLUMNS = "n, sum, sumsq, min, max, first_ts, first_v, last_ts, last_v"


def _aggregate(row: tuple) -> Aggregate:
    n, total, sumsq, lo, hi, first_ts, first_v, last_ts, last_v = row
    return Aggregate(n, total, sumsq, lo, hi, dt(first_ts), first_v, dt(last_ts), last_v)


async def hourly_rollups(conn: aiosqlite.Connection, device_pks: list[int], key_id: int, start: datetime,
                         end: datetime) -> list[tuple[int, datetime, Aggregate]]:
    out = []
    for i in range(0, len(device_pks), CHUNK):
        chunk = device_pks[i:i + CHUNK]
        rows = await _rows(conn, f"SELECT device_pk, hour, {AGG_COLUMNS} FROM rollup_hourly WHERE device_pk IN "
                                 f"({','.join('?' * len(chunk))}) AND key_id = ? AND hour >= ? AND hour < ? "
                                 f"ORDER BY device_pk, hour", (*chunk, key_id, us(start), us(end)))
        out.extend((r[0], dt(r[1]), _aggregate(r[2:])) for r in rows)
    return out


async def rollup_totals(conn: aiosqlite.Connection, device_pks: list[int], key_id: int, start: datetime,
                        end: datetime) -> dict[int, Aggregate]:
    out = {}
    for i in range(0, len(device_pks), CHUNK):
        chunk = device_pks[i:i + CHUNK]
        # first/last values: the hour rows holding the earliest and latest times (times are unique per key).
        rows = await _rows(conn, f"SELECT g.device_pk, g.n, g.s, g.sq, g.lo, g.hi, g.t0, (SELECT first_v FROM "
                                 f"rollup_hourly r WHERE r.device_pk = g.device_pk AND r.key_id = ? AND r.first_ts = g.t0), "
                                 f"g.t1, (SELECT last_v FROM rollup_hourly r WHERE r.device_pk = g.device_pk AND "
                                 f"r.key_id = ? AND r.last_ts = g.t1) FROM (SELECT device_pk, sum(n) AS n, sum(sum) AS s, "
                                 f"sum(sumsq) AS sq, min(min) AS lo, max(max) AS hi, min(first_ts) AS t0, "
                                 f"max(last_ts) AS t1 FROM rollup_hourly WHERE device_pk IN ({','.join('?' * len(chunk))}) "
                                 f"AND key_id = ? AND hour >= ? AND hour < ? GROUP BY device_pk) g",
                           (key_id, key_id, *chunk, key_id, us(start), us(end)))
        for pk, n, total, sumsq, lo, hi, t0, v0, t1, v1 in rows:
            out[pk] = Aggregate(n, total, sumsq, lo, hi, dt(t0), v0, dt(t1), v1)
    return out


async def energy_hours(conn: aiosqlite.Connection, key_id: int, start: datetime, end: datetime,
                       device_pk: int | None, tenant_id: int | None) -> dict[datetime, tuple[float, float]]:
    table, owner, owner_id = (("energy_hourly", "device_pk", device_pk) if device_pk is not None
                              else ("tenant_energy_hourly", "tenant_id", tenant_id))
    rows = await _rows(conn, f"SELECT hour, wh, covered_s FROM {table} WHERE {owner} = ? AND key_id = ? "
                             f"AND hour >= ? AND hour < ? ORDER BY hour", (owner_id, key_id, us(start), us(end)))
    return {dt(h): (wh, cov) for h, wh, cov in rows}


# -- rebuild -----------------------------------------------------------------------------------------
async def rebuild(conn: aiosqlite.Connection, since: datetime | None, energy_key_ids: list[int],
                  max_hold: timedelta) -> tuple[int, int]:
    """Recompute the rollups of every hour from ``since`` from raw points, in the caller's transaction."""
    lo = us(hour_floor(since)) if since else -(2 ** 62)
    await conn.execute("DELETE FROM rollup_hourly WHERE hour >= ?", (lo,))
    # first/last values: the value at the group's min/max time, found through the primary key.
    cur = await conn.execute(
        "INSERT INTO rollup_hourly SELECT g.device_pk, g.key_id, g.h, g.n, g.s, g.sq, g.lo, g.hi, g.t0, "
        "(SELECT v_num FROM points WHERE device_pk = g.device_pk AND key_id = g.key_id AND ts = g.t0), g.t1, "
        "(SELECT v_num FROM points WHERE device_pk = g.device_pk AND key_id = g.key_id AND ts = g.t1) "
        "FROM (SELECT device_pk, key_id, ts - (ts % ?) AS h, count(*) AS n, sum(v_num) AS s, "
        "sum(v_num * v_num) AS sq, min(v_num) AS lo, max(v_num) AS hi, min(ts) AS t0, max(ts) AS t1 "
        "FROM points WHERE ts >= ? AND v_num IS NOT NULL GROUP BY device_pk, key_id, ts - (ts % ?)) g",
        (HOUR_US, lo, HOUR_US))
    stats_rows = cur.rowcount
    await conn.execute("DELETE FROM energy_hourly WHERE hour >= ?", (lo,))
    await conn.execute("DELETE FROM tenant_energy_hourly WHERE hour >= ?", (lo,))
    energy_rows = 0
    far = datetime(9999, 1, 1, tzinfo=timezone.utc)
    marks = ",".join("?" * len(energy_key_ids))
    series = await _rows(conn, f"SELECT device_pk, key_id FROM latest WHERE key_id IN ({marks}) ORDER BY 1, 2",
                         tuple(energy_key_ids)) if energy_key_ids else []
    for pk, kid in series:
        carried = await _rows(conn, "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts < ? "
                                    "AND v_num IS NOT NULL ORDER BY ts DESC LIMIT 1", (pk, kid, lo))
        samples = [(dt(ts), v) for ts, v in await _rows(
            conn, "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? "
                  "AND v_num IS NOT NULL ORDER BY ts", (pk, kid, lo))]
        start = dt(lo) if since or not samples else hour_floor(samples[0][0])
        hours = recompute_energy((dt(carried[0][0]), carried[0][1]) if carried else None, samples, False,
                                 start, far, max_hold)
        rows = [(pk, kid, us(hour), wh, cov) for hour, (wh, cov) in sorted(hours.items()) if us(hour) >= lo]
        await conn.executemany("INSERT OR REPLACE INTO energy_hourly VALUES (?, ?, ?, ?, ?)", rows)
        energy_rows += len(rows)
    await conn.execute(
        "INSERT INTO tenant_energy_hourly SELECT d.tenant_id, e.key_id, e.hour, sum(e.wh), sum(e.covered_s) "
        "FROM energy_hourly e JOIN devices d ON d.pk = e.device_pk WHERE e.hour >= ? "
        "GROUP BY d.tenant_id, e.key_id, e.hour", (lo,))
    return stats_rows, energy_rows
