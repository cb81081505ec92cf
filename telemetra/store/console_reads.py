"""The console's reads, written once with ``?`` marks for both backends: the fleet's device list (keyset
paging, prefixes, filters) and the overview's counts.

A backend hands its read (``_query``), its time conversions and its dialect (``ConsoleDialect``: how an id
is ordered byte-wise, how a list of pks and the online rule are written). Every read is bounded: a page
of devices, a capped count, one day of minutes, ten devices.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from telemetra.domain.models import Device
from telemetra.store.base import PointValue
from telemetra.store.codec import decode_value
from telemetra.store.rows import device_columns

__all__ = ["ConsoleReads", "ConsoleDialect", "FleetFilter", "PresenceCounts", "MINUTE_COUNTS_KEPT"]

MINUTE_COUNTS_KEPT = timedelta(days=2)
# A count past this is reported as unknown: counting further would cost more than the page itself.
MAX_COUNTED = 100_000
LATEST_KEYS_PER_DEVICE = 32
TOP_DEVICES = 10
# Past the last code point: every string that starts with a prefix sorts below prefix + this, byte-wise.
_PREFIX_END = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class ConsoleDialect:
    ordered_id: str  # the directory's id (`n.id`) as the keyset orders it (byte order)
    ordered_name: str  # the directory's lower-case name (`n.name_key`), in the same order
    device_order: str  # the same order on `devices`
    pk_in: str  # a condition that ``{column}`` is in the one parameter ``pk_param`` makes
    pk_param: Callable[[list[int]], Any]
    online: str  # the online rule (``domain/online.py``) with two marks: now, the default window (s)
    bucket: str  # the start of the bucket of time column ``{col}``, two marks for the width ``width_param`` makes
    width_param: Callable[[int], Any]
    greatest: str  # the functions of the larger and of the smaller of two values
    least: str
    json: str = ""  # the cast that selects a JSON column as text


@dataclass(frozen=True, slots=True)
class FleetFilter:
    tenant_id: int
    now: datetime
    default_offline_after_s: int
    q: str | None = None
    device_type: str | None = None
    status: str | None = None
    location: str | None = None
    online: bool | None = None
    after: str | None = None  # the last id of the previous page
    limit: int = 50


@dataclass(frozen=True, slots=True)
class PresenceCounts:
    online: int
    offline: int
    never_seen: int


def _hour_ceil(ts: datetime) -> datetime:
    floor = ts.replace(minute=0, second=0, microsecond=0)
    return floor if floor == ts else floor + timedelta(hours=1)


class ConsoleReads:
    def __init__(
        self,
        query: Callable[..., Awaitable[list[Any]]],
        ts_in: Callable[[Any], Any],
        ts_out: Callable[[Any], Any],
        dialect: ConsoleDialect,
        device_row: Callable[[Any], Device],
    ) -> None:
        self._query = query
        self._ts_in = ts_in
        self._ts_out = ts_out
        self._dialect = dialect
        self._device = device_row

    def _where(
        self, flt: FleetFilter, prefix_of: str | None = None, tenant: str = "n.tenant_id"
    ) -> tuple[str, list[Any]]:
        """The filter's conditions on the directory `n` joined to `devices` `d`, with the prefix ``flt.q`` on
        the column ``prefix_of`` (ordered) if given."""
        where: list[str] = [f"{tenant} = ?"]
        args: list[Any] = [flt.tenant_id]
        for column, value in (("device_type", flt.device_type), ("status", flt.status), ("location", flt.location)):
            if value is not None:
                where.append(f"d.{column} = ?")
                args.append(value)
        if flt.q and prefix_of is not None:
            prefix = flt.q if prefix_of == self._dialect.ordered_id else flt.q.lower()
            where.append(f"{prefix_of} >= ? AND {prefix_of} < ?")
            args += [prefix, prefix + _PREFIX_END]
        if flt.online is not None:
            where.append(self._dialect.online if flt.online else f"NOT {self._dialect.online}")
            args += [self._ts_in(flt.now), flt.default_offline_after_s]
        if flt.after is not None:
            where.append(f"{self._dialect.ordered_id} > ?")
            args.append(flt.after)
        return " AND ".join(where), args

    def _matching_pks(self, flt: FleetFilter, limit: int, *, ordered: bool = True) -> tuple[str, list[Any]]:
        """The pks of the first ``limit`` matching devices in id order (any ``limit`` when not ``ordered``);
        with ``flt.q``, of each of those whose id and whose name start with it: two index ranges, not one OR
        that no index bounds."""
        d = self._dialect
        columns = (d.ordered_id, d.ordered_name) if flt.q else (None,)
        order = f" ORDER BY {d.ordered_id}" if ordered else ""
        branches, args = [], []
        for column in columns:
            where, branch_args = self._where(flt, column)
            branches.append(
                "SELECT pk FROM (SELECT n.pk FROM device_directory n JOIN devices d ON d.pk = n.pk "
                f"WHERE {where}{order} LIMIT ?) AS b"
            )
            args += [*branch_args, limit]
        return " UNION ".join(branches), args

    async def fleet_page(self, flt: FleetFilter) -> list[Device]:
        """A page of the tenant's devices in id order, after ``flt.after``."""
        d = self._dialect
        matching, args = self._matching_pks(flt, flt.limit)
        rows = await self._query(
            f"SELECT {device_columns(d.json)} FROM devices WHERE pk IN ({matching}) ORDER BY {d.device_order} LIMIT ?",
            *args,
            flt.limit,
        )
        return [self._device(row) for row in rows]

    async def fleet_count(self, flt: FleetFilter) -> int | None:
        """How many devices match (ignoring ``after``); None past ``MAX_COUNTED``."""
        whole = replace(flt, after=None)
        if whole.q:
            matching, args = self._matching_pks(whole, MAX_COUNTED + 1, ordered=False)
        else:  # the devices alone: no join to walk
            where, args = self._where(whole, tenant="d.tenant_id")
            matching = f"SELECT 1 FROM devices d WHERE {where} LIMIT ?"
            args.append(MAX_COUNTED + 1)
        rows = await self._query(f"SELECT count(*) FROM ({matching}) AS matching", *args)
        count = rows[0][0]
        return None if count > MAX_COUNTED else count

    async def latest_of(self, device_pks: list[int]) -> dict[int, dict[str, PointValue]]:
        """The newest value of each key (the first ``LATEST_KEYS_PER_DEVICE`` by name) of each device."""
        if not device_pks:
            return {}
        d = self._dialect
        rows = await self._query(
            "SELECT device_pk, name, ts, v_num, v_str, v_bool, v_json FROM (SELECT l.device_pk, k.name, l.ts, "
            f"l.v_num, l.v_str, l.v_bool, l.v_json{d.json} AS v_json, "
            "row_number() OVER (PARTITION BY l.device_pk ORDER BY k.name) AS n FROM latest l "
            f"JOIN ts_keys k ON k.id = l.key_id WHERE {d.pk_in.format(column='l.device_pk')}) AS ranked WHERE n <= ?",
            d.pk_param(device_pks),
            LATEST_KEYS_PER_DEVICE,
        )
        out: dict[int, dict[str, PointValue]] = {pk: {} for pk in device_pks}
        for pk, name, ts, v_num, v_str, v_bool, v_json in rows:
            out[pk][name] = (self._ts_out(ts), decode_value(v_num, v_str, v_bool, v_json))
        return out

    async def point_buckets(
        self, device_pk: int, key: str, start: datetime, end: datetime, width_s: int
    ) -> list[tuple[datetime, int, float, float, float]]:
        """(bucket start, count, sum, min, max) of the numeric points of ``key`` in [start, end), per bucket of
        ``width_s`` seconds aligned on the epoch, computed by the database from raw points."""
        d = self._dialect
        width = d.width_param(width_s)
        rows = await self._query(
            f"SELECT {d.bucket.format(col='ts')} AS b, count(*), sum(v_num), min(v_num), max(v_num) FROM points "
            "WHERE device_pk = ? AND key_id = (SELECT id FROM ts_keys WHERE name = ?) AND ts >= ? AND ts < ? "
            "AND v_num IS NOT NULL GROUP BY b ORDER BY b",
            width,
            width,
            device_pk,
            key,
            self._ts_in(start),
            self._ts_in(end),
        )
        return [(self._ts_out(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]

    async def hour_buckets(
        self, device_pk: int, key: str, start: datetime, end: datetime, width_s: int
    ) -> list[tuple[datetime, int, float, float, float]]:
        """As ``point_buckets``, for buckets of whole hours: the hours of [start, end) before the seal mark
        from the hourly rollups, the rest (the edges, and from the mark on) from raw points, in one statement
        (one snapshot: the mark cannot move between the two parts)."""
        lo = _hour_ceil(start)
        hi = end.replace(minute=0, second=0, microsecond=0)
        if lo >= hi:
            return await self.point_buckets(device_pk, key, start, end, width_s)
        d, width = self._dialect, self._dialect.width_param(width_s)
        key_id, mark = "(SELECT id FROM ts_keys WHERE name = ?)", "(SELECT sealed_until FROM rollup_seal)"
        raw = (
            f"SELECT {d.bucket.format(col='ts')} AS b, 1 AS n, v_num AS s, v_num AS lo, v_num AS hi FROM points "
            f"WHERE device_pk = ? AND key_id = {key_id} AND v_num IS NOT NULL AND ts >= {{from_}} AND ts < ?"
        )
        rows = await self._query(
            f"SELECT b, sum(n), sum(s), min(lo), max(hi) FROM ("
            f"SELECT {d.bucket.format(col='hour')} AS b, n, sum AS s, min AS lo, max AS hi FROM rollup_hourly "
            f"WHERE device_pk = ? AND key_id = {key_id} AND hour >= ? AND hour < ? AND hour < {mark} "
            f"UNION ALL {raw.format(from_='?')} "
            # From the mark on, or from the end of the whole hours when the mark is past them.
            f"UNION ALL {raw.format(from_=f'{d.least}(?, {d.greatest}(?, {mark}))')}"
            ") AS parts GROUP BY b ORDER BY b",
            *(width, width, device_pk, key, self._ts_in(lo), self._ts_in(hi)),
            *(width, width, device_pk, key, self._ts_in(start), self._ts_in(lo)),
            *(width, width, device_pk, key, self._ts_in(hi), self._ts_in(lo), self._ts_in(end)),
        )
        return [(self._ts_out(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]

    async def presence_counts(self, tenant_id: int, now: datetime, default_offline_after_s: int) -> PresenceCounts:
        online = self._dialect.online
        rows = await self._query(
            f"SELECT coalesce(sum(CASE WHEN {online} THEN 1 ELSE 0 END), 0), "
            f"coalesce(sum(CASE WHEN last_seen IS NULL AND NOT {online} THEN 1 ELSE 0 END), 0), count(*) "
            "FROM devices WHERE tenant_id = ?",
            *(self._ts_in(now), default_offline_after_s) * 2,
            tenant_id,
        )
        on, never, total = (int(v) for v in rows[0])
        return PresenceCounts(online=on, offline=total - on - never, never_seen=never)

    async def minute_counts(self, tenant_id: int, since: datetime) -> list[tuple[datetime, int]]:
        """Messages per minute of arrival from ``since`` on, minutes without any left out."""
        rows = await self._query(
            "SELECT minute, sum(messages) FROM minute_counts WHERE tenant_id = ? AND minute >= ? "
            "GROUP BY minute ORDER BY minute",
            tenant_id,
            self._ts_in(since),
        )
        return [(self._ts_out(minute), int(count)) for minute, count in rows]

    async def active_alerts_by_severity(self, tenant_id: int) -> dict[str, int]:
        rows = await self._query(
            "SELECT severity, count(*) FROM alerts WHERE tenant_id = ? AND status <> 'cleared' GROUP BY severity",
            tenant_id,
        )
        return {severity: int(count) for severity, count in rows}

    async def top_senders(self, tenant_id: int, limit: int = TOP_DEVICES) -> list[tuple[str, str, int]]:
        """The devices that sent most messages since they were registered: (id, name, count)."""
        rows = await self._query(
            "SELECT id, name, messages_sent FROM devices WHERE tenant_id = ? AND messages_sent > 0 "
            "ORDER BY messages_sent DESC, id LIMIT ?",
            tenant_id,
            limit,
        )
        return [(r[0], r[1], int(r[2])) for r in rows]
