"""The alert store on PostgreSQL (see ``store.alerts_base``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from telemetra.domain.alerts import Alert, AlertChange, Channel, Delivery, OutboxItem, Rule
from telemetra.domain.rules import definition_json, parse_definition
from telemetra.errors import ChannelNameTaken, RuleNameTaken
from telemetra.store.alerts_base import AlertStore, PayloadBuilder
from telemetra.store.postgres.access import PostgresAccess

__all__ = ["PostgresAlertStore"]

RULE_COLUMNS = "id, tenant_id, name, definition::text, enabled, created_at, updated_at"
CHANNEL_COLUMNS = "id, tenant_id, name, kind, config::text, enabled, created_at"
ALERT_COLUMNS = (
    "a.id, a.tenant_id, a.rule_id, a.device_pk, d.id, r.name, a.key, a.severity, a.status, a.count, "
    "a.first_value, a.last_value, a.first_ts, a.last_ts, a.message, a.created_at, a.acknowledged_at, "
    "a.cleared_at, d.name"
)
# The notifications of one alert to one channel go out in order: only the oldest pending one may be claimed,
# so a "cleared" waits for its "raised" to be delivered or given up, whichever process holds either.
FIRST_IN_LINE = (
    "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.alert_id = o.alert_id AND e.channel_id = o.channel_id "
    "AND e.status = 'pending' AND e.id < o.id)"
)
ALERT_FROM = "alerts a JOIN devices d ON d.pk = a.device_pk JOIN rules r ON r.id = a.rule_id"


def _rule(row: Any) -> Rule:
    return Rule(row[0], row[1], row[2], parse_definition(orjson.loads(row[3])), row[4], row[5], row[6])


def _channel(row: Any) -> Channel:
    return Channel(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6])


def _alert(row: Any) -> Alert:
    return Alert(*row)


class PostgresAlertStore(AlertStore, PostgresAccess):
    # -- rules ---------------------------------------------------------------------------------------
    async def create_rule(self, tenant_id, name, definition, enabled):
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    f"INSERT INTO rules (tenant_id, name, definition, enabled, created_at, updated_at) "
                    f"VALUES ($1, $2, $3::jsonb, $4, now(), now()) RETURNING {RULE_COLUMNS}",
                    tenant_id,
                    name,
                    orjson.dumps(definition_json(definition)).decode(),
                    enabled,
                )
        except asyncpg.UniqueViolationError as exc:
            raise RuleNameTaken() from exc
        return _rule(row)

    async def update_rule(self, tenant_id, rule_id, name, definition, enabled):
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    f"UPDATE rules SET name = $3, definition = $4::jsonb, enabled = $5, updated_at = now() "
                    f"WHERE id = $1 AND tenant_id = $2 RETURNING {RULE_COLUMNS}",
                    rule_id,
                    tenant_id,
                    name,
                    orjson.dumps(definition_json(definition)).decode(),
                    enabled,
                )
        except asyncpg.UniqueViolationError as exc:
            raise RuleNameTaken() from exc
        return _rule(row) if row else None

    async def get_rule(self, tenant_id, rule_id):
        row = await self._fetchrow(
            f"SELECT {RULE_COLUMNS} FROM rules WHERE id = $1 AND tenant_id = $2", rule_id, tenant_id
        )
        return _rule(row) if row else None

    async def list_rules(self, tenant_id, *, enabled_only=False):
        clauses = ["($1::int IS NULL OR tenant_id = $1)"] + (["enabled"] if enabled_only else [])
        rows = await self._fetch(
            f"SELECT {RULE_COLUMNS} FROM rules WHERE {' AND '.join(clauses)} ORDER BY id", tenant_id
        )
        return [_rule(r) for r in rows]

    async def delete_rule(self, tenant_id, rule_id):
        async with self._tx() as conn:
            status = await conn.execute("DELETE FROM rules WHERE id = $1 AND tenant_id = $2", rule_id, tenant_id)
        return status.endswith(" 1")

    # -- channels ------------------------------------------------------------------------------------
    async def create_channel(self, tenant_id, name, kind, config):
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    f"INSERT INTO channels (tenant_id, name, kind, config, created_at) VALUES ($1, $2, $3, "
                    f"$4::jsonb, now()) RETURNING {CHANNEL_COLUMNS}",
                    tenant_id,
                    name,
                    kind,
                    orjson.dumps(config).decode(),
                )
        except asyncpg.UniqueViolationError as exc:
            raise ChannelNameTaken() from exc
        return _channel(row)

    async def get_channel(self, channel_id, tenant_id=None):
        row = await self._fetchrow(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1 AND ($2::int IS NULL OR tenant_id = $2)",
            channel_id,
            tenant_id,
        )
        return _channel(row) if row else None

    async def list_channels(self, tenant_id):
        rows = await self._fetch(f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE tenant_id = $1 ORDER BY id", tenant_id)
        return [_channel(r) for r in rows]

    async def update_channel(self, tenant_id, channel_id, name, config):
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    f"UPDATE channels SET name = $3, config = $4::jsonb WHERE id = $1 AND tenant_id = $2 "
                    f"RETURNING {CHANNEL_COLUMNS}",
                    channel_id,
                    tenant_id,
                    name,
                    orjson.dumps(config).decode(),
                )
        except asyncpg.UniqueViolationError as exc:
            raise ChannelNameTaken() from exc
        return _channel(row) if row else None

    async def delete_channel(self, tenant_id, channel_id):
        async with self._tx() as conn:
            status = await conn.execute("DELETE FROM channels WHERE id = $1 AND tenant_id = $2", channel_id, tenant_id)
        return status.endswith(" 1")

    # -- alerts --------------------------------------------------------------------------------------
    async def open_alert_pairs(self):
        rows = await self._fetch("SELECT rule_id, device_pk FROM alerts WHERE status <> 'cleared'")
        return {(r[0], r[1]) for r in rows}

    async def apply_changes(self, changes: list[AlertChange], now: datetime, payload: PayloadBuilder) -> list[Alert]:
        notified: list[Alert] = []
        async with self._tx() as conn:
            for change in changes:
                rule = change.rule
                if change.kind == "raise":
                    # The partial unique index keeps one open alert per (rule, device), whoever raises it.
                    row = await conn.fetchrow(
                        "INSERT INTO alerts AS a (tenant_id, rule_id, device_pk, key, severity, status, count, "
                        "first_value, last_value, first_ts, last_ts, message, created_at) VALUES ($1, $2, $3, $4, "
                        "$5, 'active', $6, $7, $7, $8, $8, $9, $10) ON CONFLICT (rule_id, device_pk) "
                        "WHERE status <> 'cleared' DO UPDATE SET count = a.count + excluded.count, "
                        "last_value = excluded.last_value, last_ts = greatest(a.last_ts, excluded.last_ts) "
                        "RETURNING a.id, (xmax = 0) AS inserted",
                        rule.tenant_id,
                        rule.id,
                        change.device_pk,
                        rule.definition.key or "",
                        rule.definition.severity,
                        change.count,
                        change.value,
                        change.ts,
                        change.message,
                        now,
                    )
                    if row["inserted"]:
                        notified.append(await self._notify(conn, row["id"], "alert.raised", rule, now, payload))
                elif change.kind == "bump":
                    await conn.execute(
                        "UPDATE alerts SET count = count + $3, last_value = $4, last_ts = greatest(last_ts, $5) "
                        "WHERE rule_id = $1 AND device_pk = $2 AND status <> 'cleared'",
                        rule.id,
                        change.device_pk,
                        change.count,
                        change.value,
                        change.ts,
                    )
                else:
                    alert_id = await conn.fetchval(
                        "UPDATE alerts SET status = 'cleared', cleared_at = $3 WHERE rule_id = $1 AND device_pk = $2 "
                        "AND status <> 'cleared' RETURNING id",
                        rule.id,
                        change.device_pk,
                        now,
                    )
                    if alert_id is not None:
                        notified.append(await self._notify(conn, alert_id, "alert.cleared", rule, now, payload))
        return notified

    async def _notify(
        self, conn: asyncpg.Connection, alert_id: int, event: str, rule: Rule, now: datetime, payload: PayloadBuilder
    ) -> Alert:
        alert = _alert(await conn.fetchrow(f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE a.id = $1", alert_id))
        channels = await conn.fetch(
            "SELECT id FROM channels WHERE tenant_id = $1 AND enabled AND id = ANY($2::int[])",
            rule.tenant_id,
            list(rule.definition.channels),
        )
        for (channel_id,) in channels:
            await conn.execute(
                "INSERT INTO outbox (tenant_id, channel_id, alert_id, event, payload, idempotency_key, status, "
                "next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, 'pending', $7, $7) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                rule.tenant_id,
                channel_id,
                alert_id,
                event,
                orjson.dumps(payload(event, alert)).decode(),
                f"alert-{alert_id}-{event}-channel-{channel_id}",
                now,
            )
        return alert

    async def list_alerts(
        self, tenant_id, *, status=None, severity=None, device_pk=None, since=None, limit=100, offset=0
    ):
        where = (
            "a.tenant_id = $1 AND ($2::text IS NULL OR a.status = $2) AND ($3::text IS NULL OR a.severity = $3) "
            "AND ($4::int IS NULL OR a.device_pk = $4) AND ($5::timestamptz IS NULL OR a.last_ts >= $5)"
        )
        args = (tenant_id, status, severity, device_pk, since)
        total = (await self._fetchrow(f"SELECT count(*) FROM alerts a WHERE {where}", *args))[0]
        rows = await self._fetch(
            f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE {where} ORDER BY a.id DESC LIMIT $6 OFFSET $7",
            *args,
            limit,
            offset,
        )
        return [_alert(r) for r in rows], total

    async def acknowledge(self, tenant_id, alert_id, now):
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acknowledged_at = $3 "
                "WHERE id = $1 AND tenant_id = $2 AND status = 'active'",
                alert_id,
                tenant_id,
                now,
            )
            row = await conn.fetchrow(
                f"SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE a.id = $1 AND a.tenant_id = $2", alert_id, tenant_id
            )
        return _alert(row) if row else None

    async def silent_devices(self, tenant_id, cutoff):
        rows = await self._fetch(
            "SELECT pk, id, device_type, coalesce(last_data_at, created_at) FROM devices WHERE tenant_id = $1 "
            "AND coalesce(last_data_at, created_at) < $2 ORDER BY pk",
            tenant_id,
            cutoff,
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # -- which process evaluates which devices -------------------------------------------------------
    async def hold_shards(self, owner, now, lease):
        until = now + lease
        async with self._tx() as conn:
            await conn.execute("DELETE FROM rule_workers WHERE seen_until <= $1", now)
            await conn.execute(
                "INSERT INTO rule_workers VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE "
                "SET seen_until = EXCLUDED.seen_until",
                owner,
                until,
            )
            live = await conn.fetchval("SELECT count(*) FROM rule_workers")
            total = await conn.fetchval("SELECT count(*) FROM rule_shards")
            fair = -(-total // live)
            mine = [
                r[0]
                for r in await conn.fetch(
                    "UPDATE rule_shards SET lease_until = $2 WHERE owner = $1 RETURNING shard", owner, until
                )
            ]
            if len(mine) > fair:
                excess = sorted(mine)[fair:]
                await conn.execute(
                    "UPDATE rule_shards SET owner = NULL, lease_until = NULL WHERE shard = ANY($1::int[])", excess
                )
                mine = sorted(mine)[:fair]
            elif len(mine) < fair:
                # SKIP LOCKED: two processes taking shards at once take different ones.
                mine += [
                    r[0]
                    for r in await conn.fetch(
                        "UPDATE rule_shards SET owner = $1, lease_until = $2 WHERE shard IN (SELECT shard FROM "
                        "rule_shards WHERE owner IS NULL OR lease_until <= $3 ORDER BY shard LIMIT $4 "
                        "FOR UPDATE SKIP LOCKED) RETURNING shard",
                        owner,
                        until,
                        now,
                        fair - len(mine),
                    )
                ]
        return set(mine), total

    async def release_shards(self, owner):
        async with self._tx() as conn:
            await conn.execute("UPDATE rule_shards SET owner = NULL, lease_until = NULL WHERE owner = $1", owner)
            await conn.execute("DELETE FROM rule_workers WHERE owner = $1", owner)

    async def push_inbox(self, points):
        async with self._tx() as conn:
            await conn.copy_records_to_table(
                "rule_inbox", records=points, columns=["shard", "device_pk", "ts", "key", "value"]
            )

    async def peek_inbox(self, shards, limit):
        rows = await self._fetch(
            "SELECT id, device_pk, ts, key, value FROM rule_inbox WHERE shard = ANY($1::int[]) ORDER BY id LIMIT $2",
            shards,
            limit,
        )
        return [tuple(r) for r in rows]

    async def drop_inbox(self, ids):
        async with self._tx() as conn:
            await conn.execute("DELETE FROM rule_inbox WHERE id = ANY($1::bigint[])", ids)

    # -- outbox --------------------------------------------------------------------------------------
    async def claim_due(self, now, limit, lease):
        async with self._tx() as conn:
            # SKIP LOCKED: processes claiming at the same time each take different rows, none waits.
            rows = await conn.fetch(
                "UPDATE outbox SET claimed_until = $2 WHERE id IN (SELECT id FROM outbox o WHERE status = 'pending' "
                f"AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) AND {FIRST_IN_LINE} "
                "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
                "RETURNING id, tenant_id, channel_id, alert_id, event, payload::text, "
                "idempotency_key, attempts",
                now,
                now + lease,
                limit,
            )
        return [OutboxItem(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6], r[7]) for r in sorted(rows)]

    async def enqueue_claimed(self, tenant_id, channel_id, event, payload, idempotency_key, now, lease):
        async with self._tx() as conn:
            outbox_id = await conn.fetchval(
                "INSERT INTO outbox (tenant_id, channel_id, event, payload, idempotency_key, status, next_attempt_at, "
                "claimed_until, created_at) VALUES ($1, $2, $3, $4::jsonb, $5, 'pending', $6, $7, $6) RETURNING id",
                tenant_id,
                channel_id,
                event,
                orjson.dumps(payload).decode(),
                idempotency_key,
                now,
                now + lease,
            )
        return OutboxItem(outbox_id, tenant_id, channel_id, None, event, payload, idempotency_key, 0)

    async def finish_attempt(self, item, now, *, ok, status_code, error, duration_ms, retry_at):
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO deliveries (outbox_id, channel_id, attempt, at, ok, status_code, error, duration_ms) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                item.id,
                item.channel_id,
                item.attempts + 1,
                now,
                ok,
                status_code,
                error,
                duration_ms,
            )
            status = "delivered" if ok else ("pending" if retry_at is not None else "failed")
            await conn.execute(
                "UPDATE outbox SET status = $2, attempts = attempts + 1, next_attempt_at = coalesce($3, next_attempt_at), "
                "claimed_until = NULL, delivered_at = CASE WHEN $4 THEN $5::timestamptz END, last_error = $6 "
                # A sender whose lease ran out may finish after another delivered: it must not undo that.
                "WHERE id = $1 AND status = 'pending'",
                item.id,
                status,
                retry_at,
                ok,
                now,
                error,
            )

    async def list_deliveries(self, tenant_id, channel_id, limit=100):
        rows = await self._fetch(
            "SELECT d.id, d.outbox_id, d.attempt, d.at, d.ok, d.status_code, d.error, d.duration_ms, o.event, "
            "o.idempotency_key FROM deliveries d JOIN outbox o ON o.id = d.outbox_id WHERE d.channel_id = $1 "
            "AND o.tenant_id = $2 ORDER BY d.id DESC LIMIT $3",
            channel_id,
            tenant_id,
            limit,
        )
        return [Delivery(*r) for r in rows]

    async def outbox_counts(self):
        rows = await self._fetch("SELECT status, count(*) FROM outbox GROUP BY status")
        return {r[0]: r[1] for r in rows}
