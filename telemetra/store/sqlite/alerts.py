"""The alert store on SQLite (see ``store.alerts_base``). One writer: claims need no row locks."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any

import aiosqlite
import orjson

from telemetra.domain.alerts import Alert, AlertChange, Channel, Delivery, OutboxItem, Rule
from telemetra.domain.rules import definition_json, parse_definition
from telemetra.errors import ChannelNameTaken, RuleNameTaken
from telemetra.store.alerts_base import AlertStore, PayloadBuilder
from telemetra.store.sqlite.access import SqliteAccess, inserted_id
from telemetra.store.sqlite.time import dt, us

__all__ = ["SqliteAlertStore"]

RULE_COLUMNS = "id, tenant_id, name, definition, enabled, created_at, updated_at"
CHANNEL_COLUMNS = "id, tenant_id, name, kind, config, enabled, created_at"
ALERT_COLUMNS = (
    "a.id, a.tenant_id, a.rule_id, a.device_pk, d.id, r.name, a.key, a.severity, a.status, a.count, "
    "a.first_value, a.last_value, a.first_ts, a.last_ts, a.message, a.created_at, a.acknowledged_at, "
    "a.cleared_at, d.name"
)
# The notifications of one alert to one channel go out in order: only the oldest pending one may be claimed,
# so a "cleared" waits for its "raised" to be delivered or given up.
FIRST_IN_LINE = (
    "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.alert_id = o.alert_id AND e.channel_id = o.channel_id "
    "AND e.status = 'pending' AND e.id < o.id)"
)
ALERT_FROM = "alerts a JOIN devices d ON d.pk = a.device_pk JOIN rules r ON r.id = a.rule_id"


def _rule(row: Any) -> Rule:
    return Rule(row[0], row[1], row[2], parse_definition(orjson.loads(row[3])), bool(row[4]), dt(row[5]), dt(row[6]))


def _channel(row: Any) -> Channel:
    return Channel(row[0], row[1], row[2], row[3], orjson.loads(row[4]), bool(row[5]), dt(row[6]))


def _alert(row: Any) -> Alert:
    r = list(row)
    for i in (12, 13, 15, 16, 17):
        r[i] = dt(r[i])
    return Alert(*r)


async def _one(conn: aiosqlite.Connection, sql: str, args: tuple) -> Any:
    rows = list(await conn.execute_fetchall(sql, args))
    return rows[0] if rows else None


class SqliteAlertStore(AlertStore, SqliteAccess):
    @staticmethod
    def _now() -> int:
        return us(datetime.now(timezone.utc))

    # -- rules ---------------------------------------------------------------------------------------
    async def create_rule(self, tenant_id, name, definition, enabled):
        now = self._now()
        try:
            async with self._tx() as conn:
                cur = await conn.execute(
                    "INSERT INTO rules (tenant_id, name, definition, enabled, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (tenant_id, name, orjson.dumps(definition_json(definition)).decode(), int(enabled), now, now),
                )
                return _rule(await _one(conn, f"SELECT {RULE_COLUMNS} FROM rules WHERE id = ?", (cur.lastrowid,)))
        except sqlite3.IntegrityError as exc:
            raise RuleNameTaken() from exc

    async def update_rule(self, tenant_id, rule_id, name, definition, enabled):
        try:
            async with self._tx() as conn:
                await conn.execute(
                    "UPDATE rules SET name = ?, definition = ?, enabled = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
                    (
                        name,
                        orjson.dumps(definition_json(definition)).decode(),
                        int(enabled),
                        self._now(),
                        rule_id,
                        tenant_id,
                    ),
                )
                row = await _one(
                    conn, f"SELECT {RULE_COLUMNS} FROM rules WHERE id = ? AND tenant_id = ?", (rule_id, tenant_id)
                )
        except sqlite3.IntegrityError as exc:
            raise RuleNameTaken() from exc
        return _rule(row) if row else None

    async def get_rule(self, tenant_id, rule_id):
        row = await self._fetchone(
            f"SELECT {RULE_COLUMNS} FROM rules WHERE id = ? AND tenant_id = ?", (rule_id, tenant_id)
        )
        return _rule(row) if row else None

    async def list_rules(self, tenant_id, *, enabled_only=False):
        rows = await self._fetchall(
            f"SELECT {RULE_COLUMNS} FROM rules WHERE (? IS NULL OR tenant_id = ?) {'AND enabled' if enabled_only else ''} "
            f"ORDER BY id",
            (tenant_id, tenant_id),
        )
        return [_rule(r) for r in rows]

    async def delete_rule(self, tenant_id, rule_id):
        async with self._tx() as conn:
            cur = await conn.execute("DELETE FROM rules WHERE id = ? AND tenant_id = ?", (rule_id, tenant_id))
            return cur.rowcount == 1

    # -- channels ------------------------------------------------------------------------------------
    async def create_channel(self, tenant_id, name, kind, config):
        try:
            async with self._tx() as conn:
                cur = await conn.execute(
                    "INSERT INTO channels (tenant_id, name, kind, config, created_at) VALUES (?, ?, ?, ?, ?)",
                    (tenant_id, name, kind, orjson.dumps(config).decode(), self._now()),
                )
                return _channel(
                    await _one(conn, f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ?", (cur.lastrowid,))
                )
        except sqlite3.IntegrityError as exc:
            raise ChannelNameTaken() from exc

    async def get_channel(self, channel_id, tenant_id=None):
        row = await self._fetchone(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ? AND (? IS NULL OR tenant_id = ?)",
            (channel_id, tenant_id, tenant_id),
        )
        return _channel(row) if row else None

    async def list_channels(self, tenant_id):
        rows = await self._fetchall(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE tenant_id = ? ORDER BY id", (tenant_id,)
        )
        return [_channel(r) for r in rows]

    async def update_channel(self, tenant_id, channel_id, name, config):
        try:
            async with self._tx() as conn:
                cur = await conn.execute(
                    "UPDATE channels SET name = ?, config = ? WHERE id = ? AND tenant_id = ?",
                    (name, orjson.dumps(config).decode(), channel_id, tenant_id),
                )
                if cur.rowcount != 1:
                    return None
                return _channel(await _one(conn, f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ?", (channel_id,)))
        except sqlite3.IntegrityError as exc:
            raise ChannelNameTaken() from exc

    async def delete_channel(self, tenant_id, channel_id):
        async with self._tx() as conn:
            cur = await conn.execute("DELETE FROM channels WHERE id = ? AND tenant_id = ?", (channel_id, tenant_id))
            return cur.rowcount == 1

    # -- alerts --------------------------------------------------------------------------------------
    async def open_alert_pairs(self):
        rows = await self._fetchall("SELECT rule_id, device_pk FROM alerts WHERE status <> 'cleared'")
        return {(r[0], r[1]) for r in rows}

    async def apply_changes(self, changes: list[AlertChange], now: datetime, payload: PayloadBuilder) -> list[Alert]:
        notified: list[Alert] = []
        at = us(now)
        async with self._tx() as conn:
            for change in changes:
                rule = change.rule
                open_id = await _one(
                    conn,
                    "SELECT id FROM alerts WHERE rule_id = ? AND device_pk = ? AND status <> 'cleared'",
                    (rule.id, change.device_pk),
                )
                if change.kind == "raise" and open_id is None:
                    cur = await conn.execute(
                        "INSERT INTO alerts (tenant_id, rule_id, device_pk, key, severity, status, count, first_value, "
                        "last_value, first_ts, last_ts, message, created_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, "
                        "?, ?, ?, ?)",
                        (
                            rule.tenant_id,
                            rule.id,
                            change.device_pk,
                            rule.definition.key or "",
                            rule.definition.severity,
                            change.count,
                            change.value,
                            change.value,
                            us(change.ts),
                            us(change.ts),
                            change.message,
                            at,
                        ),
                    )
                    notified.append(await self._notify(conn, inserted_id(cur), "alert.raised", rule, at, payload))
                elif change.kind in ("raise", "bump") and open_id is not None:
                    await conn.execute(
                        "UPDATE alerts SET count = count + ?, last_value = ?, last_ts = max(last_ts, ?) WHERE id = ?",
                        (change.count, change.value, us(change.ts), open_id[0]),
                    )
                elif change.kind == "clear" and open_id is not None:
                    await conn.execute(
                        "UPDATE alerts SET status = 'cleared', cleared_at = ? WHERE id = ?", (at, open_id[0])
                    )
                    notified.append(await self._notify(conn, open_id[0], "alert.cleared", rule, at, payload))
        return notified

    async def _notify(
        self, conn: aiosqlite.Connection, alert_id: int, event: str, rule: Rule, at: int, payload: PayloadBuilder
    ) -> Alert:
        alert = _alert(await _one(conn, f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE a.id = ?", (alert_id,)))
        wanted = list(rule.definition.channels)
        if wanted:
            marks = ",".join("?" * len(wanted))
            channels = await conn.execute_fetchall(
                f"SELECT id FROM channels WHERE tenant_id = ? AND enabled AND id IN ({marks})",
                (rule.tenant_id, *wanted),
            )
            for (channel_id,) in channels:
                await conn.execute(
                    "INSERT OR IGNORE INTO outbox (tenant_id, channel_id, alert_id, event, payload, idempotency_key, "
                    "status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (
                        rule.tenant_id,
                        channel_id,
                        alert_id,
                        event,
                        orjson.dumps(payload(event, alert)).decode(),
                        f"alert-{alert_id}-{event}-channel-{channel_id}",
                        at,
                        at,
                    ),
                )
        return alert

    async def list_alerts(
        self, tenant_id, *, status=None, severity=None, device_pk=None, since=None, limit=100, offset=0
    ):
        where = (
            "a.tenant_id = ? AND (? IS NULL OR a.status = ?) AND (? IS NULL OR a.severity = ?) "
            "AND (? IS NULL OR a.device_pk = ?) AND (? IS NULL OR a.last_ts >= ?)"
        )
        since_us = us(since) if since else None
        args = (tenant_id, status, status, severity, severity, device_pk, device_pk, since_us, since_us)
        total = (await self._fetchone(f"SELECT count(*) FROM alerts a WHERE {where}", args))[0]
        rows = await self._fetchall(
            f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE {where} ORDER BY a.id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_alert(r) for r in rows], total

    async def acknowledge(self, tenant_id, alert_id, now):
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_at = ? "
                "WHERE id = ? AND tenant_id = ? AND status = 'active'",
                (us(now), alert_id, tenant_id),
            )
            row = await _one(
                conn,
                f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE a.id = ? AND a.tenant_id = ?",
                (alert_id, tenant_id),
            )
        return _alert(row) if row else None

    async def silent_devices(self, tenant_id, cutoff):
        rows = await self._fetchall(
            "SELECT pk, id, device_type, coalesce(last_data_at, created_at) FROM devices WHERE tenant_id = ? "
            "AND coalesce(last_data_at, created_at) < ? ORDER BY pk",
            (tenant_id, us(cutoff)),
        )
        return [(r[0], r[1], r[2], dt(r[3])) for r in rows]

    # -- which process evaluates which devices -------------------------------------------------------
    async def hold_shards(self, owner, now, lease):
        at, until = us(now), us(now + lease)
        async with self._tx() as conn:
            await conn.execute("DELETE FROM rule_workers WHERE seen_until <= ?", (at,))
            await conn.execute(
                "INSERT INTO rule_workers VALUES (?, ?) ON CONFLICT (owner) DO UPDATE "
                "SET seen_until = excluded.seen_until",
                (owner, until),
            )
            ((live,),) = await conn.execute_fetchall("SELECT count(*) FROM rule_workers")
            ((total,),) = await conn.execute_fetchall("SELECT count(*) FROM rule_shards")
            fair = -(-total // live)
            mine = sorted(
                r[0]
                for r in await conn.execute_fetchall(
                    "UPDATE rule_shards SET lease_until = ? WHERE owner = ? RETURNING shard", (until, owner)
                )
            )
            if len(mine) > fair:
                await conn.executemany(
                    "UPDATE rule_shards SET owner = NULL, lease_until = NULL WHERE shard = ?",
                    [(shard,) for shard in mine[fair:]],
                )
                mine = mine[:fair]
            elif len(mine) < fair:
                mine += [
                    r[0]
                    for r in await conn.execute_fetchall(
                        "UPDATE rule_shards SET owner = ?, lease_until = ? WHERE shard IN (SELECT shard FROM "
                        "rule_shards WHERE owner IS NULL OR lease_until <= ? ORDER BY shard LIMIT ?) RETURNING shard",
                        (owner, until, at, fair - len(mine)),
                    )
                ]
        return set(mine), total

    async def release_shards(self, owner):
        async with self._tx() as conn:
            await conn.execute("UPDATE rule_shards SET owner = NULL, lease_until = NULL WHERE owner = ?", (owner,))
            await conn.execute("DELETE FROM rule_workers WHERE owner = ?", (owner,))

    async def push_inbox(self, points):
        async with self._tx() as conn:
            await conn.executemany(
                "INSERT INTO rule_inbox (shard, device_pk, ts, key, value) VALUES (?, ?, ?, ?, ?)",
                [(shard, pk, us(ts), key, value) for shard, pk, ts, key, value in points],
            )

    async def peek_inbox(self, shards, limit):
        marks = ",".join("?" * len(shards))
        rows = await self._fetchall(
            f"SELECT id, device_pk, ts, key, value FROM rule_inbox WHERE shard IN ({marks}) ORDER BY id LIMIT ?",
            (*shards, limit),
        )
        return [(r[0], r[1], dt(r[2]), r[3], r[4]) for r in rows]

    async def drop_inbox(self, ids):
        async with self._tx() as conn:
            await conn.executemany("DELETE FROM rule_inbox WHERE id = ?", [(i,) for i in ids])

    # -- outbox --------------------------------------------------------------------------------------
    async def claim_due(self, now, limit, lease):
        at = us(now)
        async with self._tx() as conn:
            rows = await conn.execute_fetchall(
                "UPDATE outbox SET claimed_until = ? WHERE id IN (SELECT id FROM outbox o WHERE status = 'pending' "
                f"AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) AND {FIRST_IN_LINE} "
                "ORDER BY id LIMIT ?) "
                "RETURNING id, tenant_id, channel_id, alert_id, event, payload, idempotency_key, attempts",
                (us(now + lease), at, at, limit),
            )
        return [OutboxItem(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6], r[7]) for r in sorted(rows)]

    async def enqueue_claimed(self, tenant_id, channel_id, event, payload, idempotency_key, now, lease):
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO outbox (tenant_id, channel_id, event, payload, idempotency_key, status, next_attempt_at, "
                "claimed_until, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (
                    tenant_id,
                    channel_id,
                    event,
                    orjson.dumps(payload).decode(),
                    idempotency_key,
                    us(now),
                    us(now + lease),
                    us(now),
                ),
            )
            outbox_id = cur.lastrowid
        return OutboxItem(outbox_id, tenant_id, channel_id, None, event, payload, idempotency_key, 0)

    async def finish_attempt(self, item, now, *, ok, status_code, error, duration_ms, retry_at):
        at = us(now)
        status = "delivered" if ok else ("pending" if retry_at is not None else "failed")
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO deliveries (outbox_id, channel_id, attempt, at, ok, status_code, error, duration_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item.id, item.channel_id, item.attempts + 1, at, int(ok), status_code, error, duration_ms),
            )
            await conn.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, next_attempt_at = coalesce(?, next_attempt_at), "
                # A sender whose lease ran out may finish after another delivered: it must not undo that.
                "claimed_until = NULL, delivered_at = ?, last_error = ? WHERE id = ? AND status = 'pending'",
                (status, us(retry_at) if retry_at else None, at if ok else None, error, item.id),
            )

    async def list_deliveries(self, tenant_id, channel_id, limit=100):
        rows = await self._fetchall(
            "SELECT d.id, d.outbox_id, d.attempt, d.at, d.ok, d.status_code, d.error, d.duration_ms, o.event, "
            "o.idempotency_key FROM deliveries d JOIN outbox o ON o.id = d.outbox_id WHERE d.channel_id = ? "
            "AND o.tenant_id = ? ORDER BY d.id DESC LIMIT ?",
            (channel_id, tenant_id, limit),
        )
        return [Delivery(r[0], r[1], r[2], dt(r[3]), bool(r[4]), r[5], r[6], r[7], r[8], r[9]) for r in rows]

    async def outbox_counts(self):
        rows = await self._fetchall("SELECT status, count(*) FROM outbox GROUP BY status")
        return {r[0]: r[1] for r in rows}
