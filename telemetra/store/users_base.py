"""People and their sign-in sessions: users of a tenant (or platform admins) and the sessions they hold.

A session is stored by the SHA-256 of its random id, never the id. ``session`` is read at every request a
session carries, so it is one lookup by primary key joined to its user: a user disabled, or a session ended,
through any process is refused by every process at the next request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telemetra.domain.models import Role, User

__all__ = ["UserStore", "NewUser", "SessionRecord", "UserChanges", "SessionRowMemo"]

# Sessions whose last row is remembered with its records (about 1 KB each).
MAX_MEMO_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class NewUser:
    tenant_id: int | None
    email: str
    name: str
    role: Role
    password_hash: str
    platform_admin: bool = False


@dataclass(frozen=True, slots=True)
class UserChanges:
    """What an update sets; None leaves a field as it is."""

    role: Role | None = None
    name: str | None = None
    disabled: bool | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id_hash: bytes
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute expiry; the idle one is counted from last_seen_at


class SessionRowMemo:
    """The records last made from a session's row, given back while the row read is the same.

    The row is still read at every request (a change anywhere is seen at once); only turning its columns into
    a SessionRecord and a User (times converted, two dataclasses: most of the cost of the check on SQLite) is
    skipped when nothing in it changed. Bounded: the oldest entry goes first."""

    def __init__(self, max_entries: int = MAX_MEMO_ENTRIES) -> None:
        self._entries: dict[bytes, tuple[tuple[Any, ...], tuple[SessionRecord, User]]] = {}
        self._max_entries = max_entries

    def get(self, id_hash: bytes, row: tuple[Any, ...]) -> tuple[SessionRecord, User] | None:
        entry = self._entries.get(id_hash)
        return entry[1] if entry is not None and entry[0] == row else None

    def put(self, id_hash: bytes, row: tuple[Any, ...], records: tuple[SessionRecord, User]) -> None:
        entries = self._entries
        entries.pop(id_hash, None)
        if len(entries) >= self._max_entries:
            del entries[next(iter(entries))]
        entries[id_hash] = (row, records)

    def forget(self, id_hash: bytes) -> None:
        self._entries.pop(id_hash, None)


class UserStore(ABC):
    @abstractmethod
    async def create_user(self, user: NewUser, at: datetime) -> User:
        """Store a new user; EmailTaken (409) when the e-mail is another user's."""

    @abstractmethod
    async def get_user(self, user_id: int) -> User | None: ...

    @abstractmethod
    async def user_by_email(self, email: str) -> tuple[User, str] | None:
        """The user of an e-mail (lower-cased) and their password hash."""

    @abstractmethod
    async def password_hash(self, user_id: int) -> str | None: ...

    @abstractmethod
    async def list_users(self, tenant_id: int | None, limit: int) -> list[User]:
        """A tenant's users (None: the platform admins), oldest first, at most ``limit``."""

    @abstractmethod
    async def update_user(self, user_id: int, changes: UserChanges) -> User | None:
        """Apply ``changes``; disabling a user ends every session of theirs in the same transaction."""

    @abstractmethod
    async def set_password(self, user_id: int, password_hash: str, keep_session: bytes | None) -> bool:
        """Set a user's password hash and end their sessions but ``keep_session`` (the caller's own)."""

    @abstractmethod
    async def record_sign_in(self, user_id: int, at: datetime) -> None: ...

    @abstractmethod
    async def create_session(self, session: SessionRecord, max_per_user: int) -> None:
        """Store a session; the user's expired ones go, and the oldest past ``max_per_user``."""

    @abstractmethod
    async def session(self, id_hash: bytes) -> tuple[SessionRecord, User] | None:
        """The session of a hash and its user (one indexed read: it runs at every request)."""

    @abstractmethod
    async def touch_session(self, id_hash: bytes, at: datetime) -> None:
        """Move the session's last use (its idle expiry counts from it)."""

    @abstractmethod
    async def delete_session(self, id_hash: bytes) -> None: ...

    @abstractmethod
    async def delete_expired_sessions(self, now: datetime, idle_before: datetime) -> int:
        """Delete the sessions past their absolute expiry or idle since before ``idle_before``."""
