"""What the alert, command and watch stores need of the SQLite database: its transactions and reads.

They receive the store's ``_tx`` and ``_fetchall`` rather than the store, so that none imports the store
that builds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

__all__ = ["SqliteAccess", "Transaction", "FetchAll", "inserted_id"]

Transaction = Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
FetchAll = Callable[[str, tuple], Awaitable[list[Any]]]


class SqliteAccess:
    """The database as a sub-store sees it: a write transaction, and reads (budgeted when a budget runs)."""

    def __init__(self, tx: Transaction, fetchall: FetchAll) -> None:
        self._tx = tx
        self._fetchall = fetchall

    async def _fetchone(self, sql: str, args: tuple = ()) -> Any:
        rows = await self._fetchall(sql, args)
        return rows[0] if rows else None


def inserted_id(cursor: aiosqlite.Cursor) -> int:
    """The rowid an INSERT on ``cursor`` gave its row."""
    rowid = cursor.lastrowid
    assert rowid is not None, "not a cursor of an INSERT"  # SQLite sets it on every INSERT of one row
    return rowid
