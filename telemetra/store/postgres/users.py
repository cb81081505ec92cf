"""The user store on PostgreSQL (see ``store.users_base``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from telemetra.domain.models import User
from telemetra.errors import EmailTaken
from telemetra.store.postgres.access import Fetch, PostgresAccess, Transaction
from telemetra.store.users_base import NewUser, SessionRecord, SessionRowMemo, UserChanges, UserStore

__all__ = ["PostgresUserStore"]

USER_COLUMNS = (
    "u.id, u.tenant_id, u.email, u.name, u.role, u.platform_admin, u.disabled, u.created_at, u.last_sign_in_at"
)
SESSION_COLUMNS = "s.id_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at"
SESSION_SQL = (
    f"SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM user_sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.id_hash = $1"
)


def _user(row: Any, offset: int = 0) -> User:
    r = tuple(row)[offset : offset + 9]
    return User(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


class PostgresUserStore(UserStore, PostgresAccess):
    def __init__(self, tx: Transaction, fetch: Fetch) -> None:
        super().__init__(tx, fetch)
        self._memo = SessionRowMemo()

    async def create_user(self, user: NewUser, at):
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO users AS u (tenant_id, email, name, role, platform_admin, password_hash, created_at) "
                    f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}",
                    user.tenant_id,
                    user.email,
                    user.name,
                    user.role,
                    user.platform_admin,
                    user.password_hash,
                    at,
                )
        except asyncpg.UniqueViolationError as exc:
            raise EmailTaken() from exc
        return _user(row)

    async def get_user(self, user_id):
        row = await self._fetchrow(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1", user_id)
        return _user(row) if row else None

    async def user_by_email(self, email):
        row = await self._fetchrow(f"SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1", email)
        return (_user(row), row[9]) if row else None

    async def password_hash(self, user_id):
        row = await self._fetchrow("SELECT password_hash FROM users WHERE id = $1", user_id)
        return row[0] if row else None

    async def list_users(self, tenant_id, limit):
        rows = await self._fetch(
            f"SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id IS NOT DISTINCT FROM $1 ORDER BY u.id LIMIT $2",
            tenant_id,
            limit,
        )
        return [_user(r) for r in rows]

    async def update_user(self, user_id, changes: UserChanges):
        async with self._tx() as conn:
            row = await conn.fetchrow(
                "UPDATE users AS u SET role = coalesce($2, role), name = coalesce($3, name), "
                f"disabled = coalesce($4, disabled) WHERE id = $1 RETURNING {USER_COLUMNS}",
                user_id,
                changes.role,
                changes.name,
                changes.disabled,
            )
            if changes.disabled:
                await conn.execute("DELETE FROM user_sessions WHERE user_id = $1", user_id)
        return _user(row) if row else None

    async def set_password(self, user_id, password_hash, keep_session):
        async with self._tx() as conn:
            result = await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
            await conn.execute(
                "DELETE FROM user_sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2", user_id, keep_session
            )
        return result.endswith(" 1")

    async def record_sign_in(self, user_id, at):
        async with self._tx() as conn:
            await conn.execute("UPDATE users SET last_sign_in_at = $2 WHERE id = $1", user_id, at)

    async def create_session(self, session: SessionRecord, max_per_user):
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM user_sessions WHERE user_id = $1 AND expires_at <= $2", session.user_id, session.created_at
            )
            await conn.execute(
                "DELETE FROM user_sessions WHERE id_hash IN (SELECT id_hash FROM user_sessions WHERE user_id = $1 "
                "ORDER BY created_at DESC OFFSET $2)",
                session.user_id,
                max_per_user - 1,
            )
            await conn.execute(
                "INSERT INTO user_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                session.id_hash,
                session.user_id,
                session.created_at,
                session.last_seen_at,
                session.expires_at,
            )

    async def session(self, id_hash):
        row = await self._fetchrow(SESSION_SQL, id_hash)
        if row is None:
            self._memo.forget(id_hash)
            return None
        values = tuple(row)
        records = self._memo.get(id_hash, values)
        if records is None:
            records = SessionRecord(bytes(row[0]), row[1], row[2], row[3], row[4]), _user(row, 5)
            self._memo.put(id_hash, values, records)
        return records

    async def touch_session(self, id_hash, at):
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE user_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id_hash = $1", id_hash, at
            )

    async def delete_session(self, id_hash):
        async with self._tx() as conn:
            await conn.execute("DELETE FROM user_sessions WHERE id_hash = $1", id_hash)

    async def delete_expired_sessions(self, now, idle_before):
        async with self._tx() as conn:
            result = await conn.execute(
                "DELETE FROM user_sessions WHERE expires_at <= $1 OR last_seen_at < $2", now, idle_before
            )
        return int(result.split()[-1])
