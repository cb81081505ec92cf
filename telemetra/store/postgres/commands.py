"""The command store on PostgreSQL (see ``store.commands_base``)."""

from __future__ import annotations

from typing import Any

import orjson

from telemetra.domain.commands import ALLOWED_FROM, GATEWAY_TRANSPORT, OPEN_STATUSES, Command, NewCommand
from telemetra.store.commands_base import CommandStore, DesiredState
from telemetra.store.postgres.access import PostgresAccess

__all__ = ["PostgresCommandStore"]

COLUMNS = (
    "c.seq, c.id, c.tenant_id, c.device_pk, d.id, c.name, c.params::text, c.status, c.transport, "
    "c.created_at, c.expires_at, c.sent_at, c.delivered_at, c.completed_at, c.result::text"
)
FROM = "commands c JOIN devices d ON d.pk = c.device_pk"
STAMP_COLUMN = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "succeeded": "completed_at",
    "failed": "completed_at",
    "expired": "completed_at",
}


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
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        orjson.loads(row[14]) if row[14] is not None else None,
    )


class PostgresCommandStore(CommandStore, PostgresAccess):
    async def create_command(self, command: NewCommand) -> Command:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO commands (id, tenant_id, device_pk, name, params, status, transport, created_at, "
                "expires_at, sent_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)",
                command.id,
                command.tenant_id,
                command.device_pk,
                command.name,
                orjson.dumps(command.params).decode(),
                command.status,
                command.transport,
                command.created_at,
                command.expires_at,
                command.created_at if command.status == "sent" else None,
            )
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = $1", command.id)
        return _command(row)

    async def get_command(self, command_id, *, tenant_id=None, device_pk=None):
        row = await self._fetchrow(
            f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = $1 AND ($2::int IS NULL OR c.tenant_id = $2) "
            f"AND ($3::int IS NULL OR c.device_pk = $3)",
            command_id,
            tenant_id,
            device_pk,
        )
        return _command(row) if row else None

    async def list_commands(self, device_pk, *, status=None, limit=100, offset=0):
        where = "c.device_pk = $1 AND ($2::text IS NULL OR c.status = $2)"
        rows = await self._fetch(
            f"SELECT {COLUMNS} FROM {FROM} WHERE {where} ORDER BY c.seq DESC LIMIT $3 OFFSET $4",
            device_pk,
            status,
            limit,
            offset,
        )
        total = await self._fetchrow(f"SELECT count(*) FROM commands c WHERE {where}", device_pk, status)
        return [_command(r) for r in rows], total[0]

    async def pending_commands(self, device_pk, now, limit=100):
        rows = await self._fetch(
            f"SELECT {COLUMNS} FROM {FROM} WHERE c.device_pk = $1 AND c.status = ANY($2::text[]) "
            f"AND c.expires_at > $3 AND coalesce(c.transport, '') <> $5 ORDER BY c.seq LIMIT $4",
            device_pk,
            list(OPEN_STATUSES),
            now,
            limit,
            GATEWAY_TRANSPORT,
        )
        return [_command(r) for r in rows]

    async def transition(self, command_id, status, at, *, transport=None, result=None, device_pk=None):
        async with self._tx() as conn:
            updated = await conn.fetchval(
                f"UPDATE commands SET status = $1, {STAMP_COLUMN[status]} = $2, transport = coalesce($3, transport), "
                f"result = coalesce($4::jsonb, result) WHERE id = $5 AND status = ANY($6::text[]) "
                f"AND ($7::int IS NULL OR device_pk = $7) RETURNING id",
                status,
                at,
                transport,
                orjson.dumps(result).decode() if result is not None else None,
                command_id,
                list(ALLOWED_FROM[status]),
                device_pk,
            )
            if updated is None:
                return None
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = $1", command_id)
        return _command(row)

    async def expire_commands(self, now):
        async with self._tx() as conn:
            status = await conn.execute(
                "UPDATE commands SET status = 'expired', completed_at = $1 "
                "WHERE status = ANY($2::text[]) AND expires_at <= $1",
                now,
                list(OPEN_STATUSES),
            )
        return int(status.split()[-1])

    async def get_desired(self, device_pk) -> DesiredState | None:
        row = await self._fetchrow(
            "SELECT version, state::text, updated_at FROM desired_state WHERE device_pk = $1", device_pk
        )
        return (row[0], orjson.loads(row[1]), row[2]) if row else None

    async def set_desired(self, device_pk, state, now, expected_version=None):
        async with self._tx() as conn:
            # The row lock (or, for a first version, the primary key) serialises concurrent writers.
            current = (
                await conn.fetchval("SELECT version FROM desired_state WHERE device_pk = $1 FOR UPDATE", device_pk) or 0
            )
            if expected_version is not None and expected_version != current:
                return None
            row = await conn.fetchrow(
                "INSERT INTO desired_state (device_pk, version, state, updated_at) VALUES ($1, $2, $3::jsonb, $4) "
                "ON CONFLICT (device_pk) DO UPDATE SET version = excluded.version, state = excluded.state, "
                "updated_at = excluded.updated_at RETURNING updated_at",
                device_pk,
                current + 1,
                orjson.dumps(state).decode(),
                now,
            )
        return current + 1, state, row[0]
