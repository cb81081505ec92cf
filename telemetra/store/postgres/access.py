"""What the alert, command and watch stores need of the PostgreSQL database: its transactions and reads.

They receive the store's ``_tx`` and ``_fetch`` rather than the store, so that none imports the store that
builds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

__all__ = ["PostgresAccess", "Transaction", "Fetch"]

Transaction = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
Fetch = Callable[..., Awaitable[list[asyncpg.Record]]]


class PostgresAccess:
    """The database as a sub-store sees it: a transaction, and reads (budgeted when a budget runs)."""

    def __init__(self, tx: Transaction, fetch: Fetch) -> None:
        self._tx = tx
        self._fetch = fetch

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None
