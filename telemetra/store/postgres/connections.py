"""The PostgreSQL store's connections: its two pools, transactions and reads, and their error mapping.

The main pool carries writes and short reads; reads under a query budget (reports, statistics) have a
small read-only pool of their own. A telemetry batch's transaction (``_batch_tx``) is written in as few
round trips as it can, one when the batch is written alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import asyncpg

from telemetra.errors import StoreUnavailable, UnstorableValue
from telemetra.store.budget import QueryBudget, current_budget
from telemetra.store.postgres import rollups as pg_rollups
from telemetra.store.postgres.write import create_staging
from telemetra.store.sqlbuild import numbered

logger = logging.getLogger(__name__)
__all__ = ["PostgresConnections"]

CONNECTION_LOST = (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a pooled connection as it is (asyncpg still rolls back an open transaction).

    asyncpg's default reset sends UNLISTEN, RESET ALL, CLOSE ALL and pg_advisory_unlock_all on every
    release: a round trip per query. The store never changes session state: no SET, no LISTEN, no cursor
    outside a transaction, only transaction-scoped advisory locks.
    """


def _unstorable(exc: asyncpg.DataError) -> UnstorableValue:
    # The class and SQLSTATE only: the driver's message may quote the value.
    logger.warning("database refused a value: %s (SQLSTATE %s)", type(exc).__name__, exc.sqlstate)
    return UnstorableValue()


class PostgresConnections:
    """The pools of one PostgreSQL database, and the ways a statement runs on them (``PostgresStore``'s base)."""

    def __init__(self, dsn: str, *, pool_size: int, query_pool_size: int, query_timeout_s: float) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        # Reads under a query budget (reports, statistics) have their own few connections: however many
        # run and however long, they never hold one that ingest's writers or the auth lookups wait for.
        self.query_pool_size = query_pool_size
        self.query_timeout_s = query_timeout_s
        self._query_pool: asyncpg.Pool | None = None
        self._reads = _BudgetedReads(self)

    async def open(self) -> None:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.pool_size,
                    command_timeout=60,
                    init=create_staging,
                    reset=_keep_session,
                )
            except (OSError, asyncpg.PostgresError) as exc:
                raise StoreUnavailable(f"Cannot connect to PostgreSQL: {exc}") from exc
        if self._query_pool is None:
            # The server stops a statement at the budget even if the client's cancel request is lost; the
            # client cancels earlier, at what is left of its request's budget. Read-only: a bug cannot
            # turn a query connection into a second writer.
            timeout_ms = max(1, math.ceil(self.query_timeout_s * 1000))
            self._query_pool = await asyncpg.create_pool(
                self.dsn,
                min_size=0,
                max_size=self.query_pool_size,
                reset=_keep_session,
                server_settings={"statement_timeout": str(timeout_ms), "default_transaction_read_only": "on"},
            )

    async def close(self) -> None:
        for pool in (self._pool, self._query_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._query_pool = None

    @asynccontextmanager
    async def _batch_conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A write connection for a telemetry batch, in no transaction; a lost connection is
        StoreUnavailable (the pipeline handles a batch's failures itself)."""
        assert self._pool is not None, "store not open"
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except CONNECTION_LOST as exc:
            raise StoreUnavailable() from exc

    @staticmethod
    @asynccontextmanager
    async def _batch_tx(conn: asyncpg.Connection) -> AsyncIterator[None]:
        """A telemetry batch's transaction on ``conn``, holding the seal lock shared from its start.

        BEGIN and the lock travel in one simple-protocol message: one round trip where
        ``conn.transaction()`` and a statement take two. A small batch's transaction is three round trips
        in all (this, the write statement, COMMIT), and each is a wait for the event loop; the batches that
        can are written alone instead, in one (``write.write_batch_alone``).
        """
        await conn.execute(f"BEGIN; {pg_rollups.SHARE_SEAL}")
        try:
            yield
        except BaseException:
            # If even this fails (a lost connection), the pool rolls back or drops the connection.
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")

    # ``_tx`` and ``_fetch`` carry every statement but a telemetry batch's (``_batch_tx``, whose failures the
    # pipeline handles itself). A value the database refuses there (asyncpg.DataError: a NUL in text or jsonb,
    # a number past its column, SQLSTATE class 22) is the request's fault, whichever check let it through:
    # 422, not 500.
    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        assert self._pool is not None, "store not open"
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
        except (
            OSError,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.CannotConnectNowError,
        ) as exc:
            raise StoreUnavailable() from exc
        except asyncpg.DataError as exc:
            raise _unstorable(exc) from exc

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        assert self._pool is not None, "store not open"
        budget = current_budget()
        if budget is not None:
            return await self._budgeted_fetch(budget, sql, args)
        try:
            return await self._pool.fetch(sql, *args)
        except CONNECTION_LOST as exc:
            raise StoreUnavailable() from exc
        except asyncpg.DataError as exc:
            raise _unstorable(exc) from exc

    async def _budgeted_fetch(self, budget: QueryBudget, sql: str, args: tuple) -> list[asyncpg.Record]:
        """A read on the query pool, cancelled (client side, and by the server's statement_timeout) when
        the budget runs out; its rows count against the budget."""
        assert self._query_pool is not None, "store not open"
        try:
            async with self._query_pool.acquire(timeout=budget.remaining_s()) as conn:
                # asyncpg sends PostgreSQL a cancel request when this times out, or when the awaiting task
                # is cancelled (the client left): the statement stops on the server too.
                rows = await conn.fetch(sql, *args, timeout=budget.remaining_s())
        except (asyncio.TimeoutError, asyncpg.exceptions.QueryCanceledError) as exc:
            raise budget.timed_out() from exc
        except CONNECTION_LOST as exc:
            raise StoreUnavailable() from exc
        except asyncpg.DataError as exc:
            raise _unstorable(exc) from exc
        budget.take(len(rows))
        return rows

    async def _query(self, sql: str, *args: Any) -> list[Any]:
        return await self._fetch(numbered(sql), *args)

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None


class _BudgetedReads:
    """What ``postgres.rollups`` reads through: the store's ``_fetch``, so that a budget applies."""

    def __init__(self, connections: PostgresConnections) -> None:
        self._connections = connections

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._connections._fetch(sql, *args)
