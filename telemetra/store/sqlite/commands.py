"""The command store on SQLite (see ``store.commands_base``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from telemetra.domain.commands import ALLOWED_FROM, GATEWAY_TRANSPORT, OPEN_STATUSES, Command, NewCommand
from telemetra.store.commands_base import CommandStore, DesiredState
from telemetra.store.sqlite.access import SqliteAccess
from telemetra.store.sqlite.time import dt, us

__all__ = ["SqliteCommandStore"]

COLUMNS = (
    "c.seq, c.id, c.tenant_id, c.device_pk, d.id, c.name, c.params, c.status, c.transport, c.created_at, "
    "c.expires_at, c.sent_at, c.delivered_at, c.completed_at, c.result"
)
FROM = "commands c JOIN devices d ON d.pk = c.device_pk"
# The column that records when a command reached each state.
STAMP_COLUMN = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "succeeded": "completed_at",
    "failed": "completed_at",
    "expired": "completed_at",
}
OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)


def _command(row: Any) -> Command:
    return Command(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        orjson.loads(row[6]),
        row[7],
        row[8],
        dt(row[9]),
        dt(row[10]),
        dt(row[11]),
        dt(row[12]),
        dt(row[13]),
        orjson.loads(row[14]) if row[14] is not None else None,
    )


class SqliteCommandStore(CommandStore, SqliteAccess):
    async def create_command(self, command: NewCommand) -> Command:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO commands (id, tenant_id, device_pk, name, params, status, transport, created_at, "
                "expires_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    command.id,
                    command.tenant_id,
                    command.device_pk,
                    command.name,
                    orjson.dumps(command.params).decode(),
                    command.status,
                    command.transport,
                    us(command.created_at),
                    us(command.expires_at),
                    us(command.created_at) if command.status == "sent" else None,
                ),
            )
            rows = list(await conn.execute_fetchall(f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = ?", (command.id,)))
        return _command(rows[0])

    async def get_command(self, command_id, *, tenant_id=None, device_pk=None):
        row = await self._fetchone(
            f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = ? AND (? IS NULL OR c.tenant_id = ?) "
            f"AND (? IS NULL OR c.device_pk = ?)",
            (command_id, tenant_id, tenant_id, device_pk, device_pk),
        )
        return _command(row) if row else None

    async def list_commands(self, device_pk, *, status=None, limit=100, offset=0):
        where, args = "c.device_pk = ? AND (? IS NULL OR c.status = ?)", (device_pk, status, status)
        rows = await self._fetchall(
            f"SELECT {COLUMNS} FROM {FROM} WHERE {where} ORDER BY c.seq DESC LIMIT ? OFFSET ?", (*args, limit, offset)
        )
        total = await self._fetchone(f"SELECT count(*) FROM commands c WHERE {where}", args)
        return [_command(r) for r in rows], total[0]

    async def pending_commands(self, device_pk, now, limit=100):
        rows = await self._fetchall(
            f"SELECT {COLUMNS} FROM {FROM} WHERE c.device_pk = ? AND c.status IN ({OPEN}) AND c.expires_at > ? "
            f"AND coalesce(c.transport, '') <> ? ORDER BY c.seq LIMIT ?",
            (device_pk, us(now), GATEWAY_TRANSPORT, limit),
        )
        return [_command(r) for r in rows]

    async def transition(self, command_id, status, at, *, transport=None, result=None, device_pk=None):
        allowed = ", ".join(f"'{s}'" for s in ALLOWED_FROM[status])
        async with self._tx() as conn:
            cur = await conn.execute(
                f"UPDATE commands SET status = ?, {STAMP_COLUMN[status]} = ?, transport = coalesce(?, transport), "
                f"result = coalesce(?, result) WHERE id = ? AND status IN ({allowed}) AND (? IS NULL OR device_pk = ?)",
                (
                    status,
                    us(at),
                    transport,
                    orjson.dumps(result).decode() if result is not None else None,
                    command_id,
                    device_pk,
                    device_pk,
                ),
            )
            if cur.rowcount != 1:
                return None
            rows = await conn.execute_fetchall(f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = ?", (command_id,))
        return _command(rows[0])

    async def expire_commands(self, now):
        async with self._tx() as conn:
            cur = await conn.execute(
                f"UPDATE commands SET status = 'expired', completed_at = ? "
                f"WHERE status IN ({OPEN}) AND expires_at <= ?",
                (us(now), us(now)),
            )
            return cur.rowcount

    async def get_desired(self, device_pk) -> DesiredState | None:
        row = await self._fetchone(
            "SELECT version, state, updated_at FROM desired_state WHERE device_pk = ?", (device_pk,)
        )
        return (row[0], orjson.loads(row[1]), dt(row[2])) if row else None

    async def set_desired(self, device_pk, state, now: datetime, expected_version=None):
        async with self._tx() as conn:
            rows = list(
                await conn.execute_fetchall("SELECT version FROM desired_state WHERE device_pk = ?", (device_pk,))
            )
            current = rows[0][0] if rows else 0
            if expected_version is not None and expected_version != current:
                return None
            await conn.execute(
                "INSERT INTO desired_state (device_pk, version, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device_pk) DO UPDATE SET version = excluded.version, state = excluded.state, "
                "updated_at = excluded.updated_at",
                (device_pk, current + 1, orjson.dumps(state).decode(), us(now)),
            )
        return current + 1, state, dt(us(now))
