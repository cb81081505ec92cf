"""The reads both backends run alike, written once with ``?`` marks (PostgreSQL's are numbered for it).

A backend says how it runs a read (``_query``), how a time goes in and comes out (``_ts_in``, ``_ts_out``),
and how a JSON column is selected as text (``_json``); what really differs stays in its own store.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any

import orjson

from telemetra.domain.ids import could_be_device_id
from telemetra.domain.models import ApiKey, Device, StoredMessage, Tenant
from telemetra.store.base import DeviceFilter, PointValue, Store
from telemetra.store.budget import current_budget
from telemetra.store.codec import decode_value
from telemetra.store.rows import KEY_COLUMNS, TENANT_COLUMNS, device_columns, device_row, key_row, tenant_row
from telemetra.store.sqlbuild import device_filter, key_filter

__all__ = ["SqlReads", "row_limit"]


_KEY_WIDTH = len(KEY_COLUMNS.split(","))
_JOINED_COLUMNS = {
    json: ", ".join(
        [f"k.{c.strip()}" for c in KEY_COLUMNS.split(",")] + [f"d.{c.strip()}" for c in device_columns(json).split(",")]
    )
    for json in ("", "::text")
}
_JOINED_FROM = "FROM api_keys k LEFT JOIN devices d ON d.pk = k.device_pk WHERE k.hash = ?"


def row_limit() -> str:
    """A LIMIT for a read whose row count only the data bounds, when it runs under a budget."""
    budget = current_budget()
    return f" LIMIT {budget.row_limit()}" if budget is not None else ""


class SqlReads(Store):
    """The Store's reads that differ between the backends by their placeholders alone."""

    _json = ""  # the cast that selects a JSON column as text
    _key_ids: dict[str, int]

    @abstractmethod
    async def _query(self, sql: str, *args: Any) -> list[Any]:
        """Run a read written with ``?`` marks; under a budget when one runs."""

    # Any in and out: a NOT NULL column's time is never None, a nullable one's may be (see ``rows.TimeOut``).
    @staticmethod
    def _ts_in(ts: Any) -> Any:
        return ts

    @staticmethod
    def _ts_out(value: Any) -> Any:
        return value

    async def _one(self, sql: str, *args: Any) -> Any:
        rows = await self._query(sql, *args)
        return rows[0] if rows else None

    def _tenant(self, row: Any) -> Tenant:
        return tenant_row(row, self._ts_out)

    def _key(self, row: Any) -> ApiKey:
        return key_row(row, self._ts_out)

    def _device(self, row: Any) -> Device:
        return device_row(row, self._ts_out)

    # -- tenants -----------------------------------------------------------------------------------
    async def get_tenant(self, tenant_id: int) -> Tenant | None:
        row = await self._one(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?", tenant_id)
        return self._tenant(row) if row else None

    async def get_tenant_by_name(self, name: str) -> Tenant | None:
        row = await self._one(f"SELECT {TENANT_COLUMNS} FROM tenants WHERE name = ?", name)
        return self._tenant(row) if row else None

    async def list_tenants(self) -> list[tuple[Tenant, int]]:
        rows = await self._query(
            "SELECT t.id, t.name, t.created_at, t.retention_days, "
            "(SELECT count(*) FROM devices d WHERE d.tenant_id = t.id) "
            "FROM tenants t ORDER BY t.id"
        )
        return [(self._tenant(row), row[4]) for row in rows]

    # -- keys --------------------------------------------------------------------------------------
    async def find_key(self, key_hash: bytes) -> ApiKey | None:
        row = await self._one(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?", key_hash)
        return self._key(row) if row else None

    async def find_credentials(self, key_hash: bytes) -> tuple[ApiKey, Device | None] | None:
        # One statement on two unique indexes (api_keys.hash, devices.pk). A key's columns first, then its
        # device's, which a LEFT JOIN leaves NULL for a key of another kind (or a device deleted meanwhile).
        row = await self._one(f"SELECT {_JOINED_COLUMNS[self._json]} {_JOINED_FROM}", key_hash)
        if row is None:
            return None
        values = tuple(row)
        key = self._key(values[:_KEY_WIDTH])
        device = self._device(values[_KEY_WIDTH:]) if values[_KEY_WIDTH] is not None else None
        return key, device

    async def get_key(self, key_id: int) -> ApiKey | None:
        row = await self._one(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", key_id)
        return self._key(row) if row else None

    async def list_keys(self, *, tenant_id=None, device_pk=None, kind=None) -> list[ApiKey]:
        where, args = key_filter(tenant_id, device_pk, kind, "?")
        rows = await self._query(f"SELECT {KEY_COLUMNS} FROM api_keys {where} ORDER BY id", *args)
        return [self._key(row) for row in rows]

    async def credential_epoch(self) -> int:
        return (await self._one("SELECT value FROM credential_epoch WHERE id = 1"))[0]

    async def broker_credentials(self, now: datetime) -> list[tuple[str, str]]:
        rows = await self._query(
            "SELECT d.id, k.broker_hash FROM api_keys k JOIN devices d ON d.pk = k.device_pk "
            "WHERE k.kind = 'device' AND k.broker_hash IS NOT NULL AND k.revoked_at IS NULL "
            "AND (k.expires_at IS NULL OR k.expires_at > ?) ORDER BY d.id, k.id",
            self._ts_in(now),
        )
        return [(row[0], row[1]) for row in rows]

    async def device_password(self, device_pk: int) -> tuple[str, int, str] | None:
        row = await self._one(
            "SELECT password_hash, version, credential_id FROM device_credentials WHERE device_pk = ?", device_pk
        )
        return (row[0], row[1], row[2]) if row else None

    async def rate_limit_overrides(self) -> list[tuple[int, int | None, str, str]]:
        rows = await self._query("SELECT tenant_id, device_pk, name, rate FROM rate_limit_overrides")
        return [tuple(row) for row in rows]

    # -- devices -----------------------------------------------------------------------------------
    async def get_device(self, device_id: str) -> Device | None:
        if not could_be_device_id(device_id):
            return None
        row = await self._one(f"SELECT {device_columns(self._json)} FROM devices WHERE id = ?", device_id)
        return self._device(row) if row else None

    async def get_device_by_pk(self, pk: int) -> Device | None:
        row = await self._one(f"SELECT {device_columns(self._json)} FROM devices WHERE pk = ?", pk)
        return self._device(row) if row else None

    async def list_devices(self, flt: DeviceFilter) -> tuple[list[Device], int]:
        where, args = device_filter(flt, "?")
        total = (await self._one(f"SELECT count(*) FROM devices {where}", *args))[0]
        rows = await self._query(
            f"SELECT {device_columns(self._json)} FROM devices {where} "
            "ORDER BY created_at DESC, pk DESC LIMIT ? OFFSET ?",
            *args,
            flt.limit,
            flt.offset,
        )
        return [self._device(row) for row in rows], total

    async def device_stats(self, pk: int):
        row = await self._one("SELECT count(*), min(ts), max(ts) FROM messages WHERE device_pk = ?", pk)
        return row[0], self._ts_out(row[1]), self._ts_out(row[2])

    # -- telemetry ---------------------------------------------------------------------------------
    async def list_messages(self, *, device_pk=None, msg_type=None, since=None, limit=100, offset=0):
        clauses, args = [], []
        for sql, value in (
            ("m.device_pk = ?", device_pk),
            ("m.type = ?", msg_type),
            ("m.ts >= ?", None if since is None else self._ts_in(since)),
        ):
            if value is not None:
                args.append(value)
                clauses.append(sql)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = (await self._one(f"SELECT count(*) FROM messages m {where}", *args))[0]
        rows = await self._query(
            f"SELECT m.id, m.device_pk, d.id, m.ts, m.data{self._json}, m.metadata{self._json}, m.type "
            f"FROM messages m JOIN devices d ON d.pk = m.device_pk {where} ORDER BY m.ts DESC, m.id DESC "
            "LIMIT ? OFFSET ?",
            *args,
            limit,
            offset,
        )
        return [
            StoredMessage(
                id=r[0],
                device_pk=r[1],
                device_id=r[2],
                ts=self._ts_out(r[3]),
                data=orjson.loads(r[4]),
                metadata=orjson.loads(r[5]),
                type=r[6],
            )
            for r in rows
        ], total

    async def latest_values(self, device_pk: int) -> dict[str, PointValue]:
        rows = await self._query(
            f"SELECT k.name, l.ts, l.v_num, l.v_str, l.v_bool, l.v_json{self._json} FROM latest l "
            "JOIN ts_keys k ON k.id = l.key_id WHERE l.device_pk = ? ORDER BY k.name",
            device_pk,
        )
        return {r[0]: (self._ts_out(r[1]), decode_value(r[2], r[3], r[4], r[5])) for r in rows}

    # -- analytics -----------------------------------------------------------------------------------
    async def _key_id(self, name: str) -> int | None:
        if name not in self._key_ids:
            row = await self._one("SELECT id FROM ts_keys WHERE name = ?", name)
            if row is None:
                return None
            self._key_ids[name] = row[0]
        return self._key_ids[name]

    async def numeric_series(self, device_pk, key, start, end):
        key_id = await self._key_id(key)
        if key_id is None:
            return []
        rows = await self._query(
            "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts >= ? "
            f"AND ts < ? AND v_num IS NOT NULL ORDER BY ts{row_limit()}",
            device_pk,
            key_id,
            self._ts_in(start),
            self._ts_in(end),
        )
        return [(self._ts_out(r[0]), r[1]) for r in rows]

    async def sample_before(self, device_pk, key, ts):
        key_id = await self._key_id(key)
        row = (
            None
            if key_id is None
            else await self._one(
                "SELECT ts, v_num FROM points WHERE device_pk = ? AND key_id = ? AND ts < ? AND v_num IS NOT NULL "
                "ORDER BY ts DESC LIMIT 1",
                device_pk,
                key_id,
                self._ts_in(ts),
            )
        )
        return (self._ts_out(row[0]), row[1]) if row else None

    async def numeric_keys(self, device_pk):
        rows = await self._query(
            "SELECT k.name FROM latest l JOIN ts_keys k ON k.id = l.key_id "
            "WHERE l.device_pk = ? AND l.v_num IS NOT NULL ORDER BY k.name",
            device_pk,
        )
        return [r[0] for r in rows]
