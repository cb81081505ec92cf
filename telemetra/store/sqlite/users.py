"""The user store on SQLite (see ``store.users_base``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from telemetra.domain.models import User
from telemetra.errors import EmailTaken
from telemetra.store.sqlite.access import FetchAll, SqliteAccess, Transaction, inserted_id
from telemetra.store.sqlite.time import dt, us
from telemetra.store.users_base import NewUser, SessionRecord, SessionRowMemo, UserChanges, UserStore

__all__ = ["SqliteUserStore"]

ReadNow = Callable[[str, tuple], list[Any] | None]

USER_COLUMNS = (
    "u.id, u.tenant_id, u.email, u.name, u.role, u.platform_admin, u.disabled, u.created_at, u.last_sign_in_at"
)
SESSION_COLUMNS = "s.id_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at"
SESSION_SQL = (
    f"SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM user_sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.id_hash = ?"
)


def _user(row: Any, offset: int = 0) -> User:
    r = row[offset : offset + 9]
    return User(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), dt(r[7]), dt(r[8]))


class SqliteUserStore(UserStore, SqliteAccess):
    def __init__(self, tx: Transaction, fetchall: FetchAll, read_now: ReadNow) -> None:
        super().__init__(tx, fetchall)
        self._read_now = read_now
        self._memo = SessionRowMemo()

    async def create_user(self, user: NewUser, at):
        try:
            async with self._tx() as conn:
                cur = await conn.execute(
                    "INSERT INTO users (tenant_id, email, name, role, platform_admin, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        user.tenant_id,
                        user.email,
                        user.name,
                        user.role,
                        int(user.platform_admin),
                        user.password_hash,
                        us(at),
                    ),
                )
                user_id = inserted_id(cur)
                async with conn.execute(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,)) as rows:
                    return _user(await rows.fetchone())
        except sqlite3.IntegrityError as exc:
            raise EmailTaken() from exc

    async def get_user(self, user_id):
        row = await self._fetchone(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,))
        return _user(row) if row else None

    async def user_by_email(self, email):
        row = await self._fetchone(f"SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = ?", (email,))
        return (_user(row), row[9]) if row else None

    async def password_hash(self, user_id):
        row = await self._fetchone("SELECT password_hash FROM users WHERE id = ?", (user_id,))
        return row[0] if row else None

    async def list_users(self, tenant_id, limit):
        rows = await self._fetchall(
            f"SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id IS ? ORDER BY u.id LIMIT ?", (tenant_id, limit)
        )
        return [_user(r) for r in rows]

    async def update_user(self, user_id, changes: UserChanges):
        values: dict[str, Any] = {}
        if changes.role is not None:
            values["role"] = changes.role
        if changes.name is not None:
            values["name"] = changes.name
        if changes.disabled is not None:
            values["disabled"] = int(changes.disabled)
        async with self._tx() as conn:
            if values:
                assignments = ", ".join(f"{name} = ?" for name in values)
                await conn.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*values.values(), user_id))
            if changes.disabled:
                await conn.execute("DELETE FROM user_sessions WHERE user_id = ?", (user_id,))
            async with conn.execute(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,)) as rows:
                row = await rows.fetchone()
        return _user(row) if row else None

    async def set_password(self, user_id, password_hash, keep_session):
        async with self._tx() as conn:
            cur = await conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
            await conn.execute(
                "DELETE FROM user_sessions WHERE user_id = ? AND id_hash IS NOT ?", (user_id, keep_session)
            )
            return cur.rowcount == 1

    async def record_sign_in(self, user_id, at):
        async with self._tx() as conn:
            await conn.execute("UPDATE users SET last_sign_in_at = ? WHERE id = ?", (us(at), user_id))

    async def create_session(self, session: SessionRecord, max_per_user):
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM user_sessions WHERE user_id = ? AND expires_at <= ?",
                (session.user_id, us(session.created_at)),
            )
            await conn.execute(
                "DELETE FROM user_sessions WHERE id_hash IN (SELECT id_hash FROM user_sessions WHERE user_id = ? "
                "ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                (session.user_id, max_per_user - 1),
            )
            await conn.execute(
                "INSERT INTO user_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    session.id_hash,
                    session.user_id,
                    us(session.created_at),
                    us(session.last_seen_at),
                    us(session.expires_at),
                ),
            )

    async def session(self, id_hash):
        # At every request a session carries: on the loop's thread (two lookups by primary key), else as usual.
        args = (id_hash,)
        rows = self._read_now(SESSION_SQL, args)
        row = (rows[0] if rows else None) if rows is not None else await self._fetchone(SESSION_SQL, args)
        if row is None:
            self._memo.forget(id_hash)
            return None
        row = tuple(row)
        records = self._memo.get(id_hash, row)
        if records is None:
            records = SessionRecord(row[0], row[1], dt(row[2]), dt(row[3]), dt(row[4])), _user(row, 5)
            self._memo.put(id_hash, row, records)
        return records

    async def touch_session(self, id_hash, at):
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE user_sessions SET last_seen_at = max(last_seen_at, ?) WHERE id_hash = ?", (us(at), id_hash)
            )

    async def delete_session(self, id_hash):
        async with self._tx() as conn:
            await conn.execute("DELETE FROM user_sessions WHERE id_hash = ?", (id_hash,))

    async def delete_expired_sessions(self, now, idle_before):
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM user_sessions WHERE expires_at <= ? OR last_seen_at < ?", (us(now), us(idle_before))
            )
            return cur.rowcount
