"""The SQLite store's connections: opening and closing them, transactions, reads, the writer's hand-off.

Writes go through one connection guarded by a lock (SQLite has one writer at a time anyway); reads use
a second connection, which WAL lets run beside a write. Reads under a query budget (reports, statistics)
use a few more connections of their own, each stopped by a progress handler when its budget runs out, so
that a long report never queues the short reads (a device or key lookup) behind it. ``synchronous=NORMAL`` in WAL mode keeps every
committed transaction across a process kill; only a power cut may lose the last few.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import time
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator, Callable, TypeVar

import aiosqlite

from telemetra.errors import StoreUnavailable, UnstorableMessage, UnstorableValue
from telemetra.store.base import PYTHON_DATA_ERRORS
from telemetra.store.budget import QueryBudget, current_budget
from telemetra.store.sqlite.inline import enqueue

logger = logging.getLogger(__name__)
__all__ = ["SqliteConnections"]

T = TypeVar("T")

# What binding a value SQLite cannot hold raises (see ``SqliteConnections._tx``).
UNSTORABLE = (OverflowError, sqlite3.DataError)
# A batch refused for what it holds (a foreign key: a device deleted meanwhile; a value too big to bind or
# store), as opposed to the database being unusable (OperationalError: locked, disk full, I/O).
SQLITE_DATA_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    *PYTHON_DATA_ERRORS,
)

# Checkpoint the write-ahead log every 64 MB of pages (4 KB) instead of SQLite's 4 MB: a page written by many
# commits in between is copied into the database file once.
WAL_CHECKPOINT_PAGES = 16_384
# How many SQLite virtual machine instructions run between two looks at a query's deadline: each look takes
# the GIL from the event loop, so not at every step; 10,000 instructions are well under a millisecond.
PROGRESS_CHECK_OPS = 10_000


def _unstorable(exc: BaseException) -> UnstorableValue:
    logger.warning("database refused a value: %s", type(exc).__name__)
    return UnstorableValue()


def _missing_folder(path: str) -> str | None:
    """The folder of ``path`` when it does not exist (one stat, at open: not worth a thread)."""
    folder = os.path.dirname(os.path.abspath(path))
    return None if os.path.isdir(folder) else folder


class _QueryConnection:
    """A read connection for budgeted queries and the deadline its progress handler enforces."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.deadline = math.inf  # time.monotonic(); read on the connection's thread

    def over_budget(self) -> bool:
        # A true answer makes SQLite abort the running statement ("interrupted").
        return time.monotonic() > self.deadline


class SqliteConnections:
    """The connections of one SQLite file, and the ways a statement runs on them (``SqliteStore``'s base)."""

    def __init__(self, path: str, *, writer_cache_mb: int, query_connections: int) -> None:
        self.path = path
        self.writer_cache_mb = writer_cache_mb
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self.query_connections = query_connections
        self._query_all: list[_QueryConnection] = []
        self._query_free: asyncio.Queue[_QueryConnection] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._reads = _BudgetedReads(self)
        self._loop_reader: sqlite3.Connection | None = None

    async def _connect(self, *, writer: bool = False) -> aiosqlite.Connection:
        missing = _missing_folder(self.path)
        if missing:
            raise StoreUnavailable(
                f"Cannot open the SQLite database at {self.path}: the folder {missing} does not exist"
            )
        pending = aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn = await pending
        except sqlite3.Error as exc:
            # aiosqlite stops its thread without waiting for it; the thread then answers a loop that the
            # command's asyncio.run has closed, and prints a traceback under our one clean line. Wait for it.
            await asyncio.to_thread(pending._thread.join, 5)
            raise StoreUnavailable(f"Cannot open the SQLite database at {self.path}: {exc}") from exc
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=10000")
        if writer:
            # Points are clustered by series, so a batch dirties a page per series it touches, all over the
            # file. With SQLite's default 2 MB cache each of those pages is read back from the file at
            # every batch; with the default 1,000-page checkpoint nearly every commit also copies its pages
            # back into the database file. Measured in process, 5,000-point batches over 10,000 series: at
            # 1.5 M points stored, 172 -> 134 ms a batch (mean), at 250 k, 77 -> 53 ms.
            await conn.execute(f"PRAGMA cache_size=-{self.writer_cache_mb * 1024}")
            await conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            # The WAL file shrinks back to this after a checkpoint instead of keeping its largest size.
            await conn.execute(f"PRAGMA journal_size_limit={WAL_CHECKPOINT_PAGES * 4096}")
        return conn

    async def open(self) -> None:
        if self._writer is None:
            self._writer = await self._connect(writer=True)
            self._reader = await self._connect()
            self._query_free = asyncio.Queue()
            for _ in range(self.query_connections):
                query = _QueryConnection(await self._connect())
                await query.conn.execute("PRAGMA query_only=ON")
                await query.conn.set_progress_handler(query.over_budget, PROGRESS_CHECK_OPS)
                self._query_all.append(query)
                self._query_free.put_nowait(query)
            self._loop_reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._loop_reader.execute("PRAGMA query_only=ON")
            self._loop_reader.execute("PRAGMA busy_timeout=0")  # never wait on the event loop's thread

    async def close(self) -> None:
        for conn in (self._writer, self._reader, *(q.conn for q in self._query_all)):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None
        self._query_all = []
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None

    # ``_tx`` and ``_fetchall`` carry every statement but a telemetry batch's (written on the writer's thread,
    # whose failures the pipeline handles itself). A value SQLite cannot bind there (an integer past 64 bits:
    # OverflowError; a string or blob past its limit: sqlite3.DataError) is the request's fault, whichever
    # check let it through: 422, not 500.
    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        assert self._writer is not None, "store not open"
        async with self._write_lock:
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
                yield self._writer
            except BaseException as exc:
                # A cancelled call's statement still runs on the connection's thread (a BEGIN, say): queue a
                # rollback behind it, or the next writer finds a transaction left open. rollback() does
                # nothing when none is open, and the shield lets it finish even if we are cancelled again.
                await asyncio.shield(self._writer.rollback())
                if isinstance(exc, UNSTORABLE):
                    raise _unstorable(exc) from exc
                raise
            else:
                await self._writer.execute("COMMIT")

    async def _hand_off(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(writer's sqlite3 connection, *args)`` on the writer's thread, in one hand-off.

        Queued before the lock is released, so no transaction of ``_tx`` starts in between; hand-offs made
        at once queue there one behind the other. Once queued, it runs to its end even if this call is
        cancelled: a committed batch its source was not told about comes again, harmlessly.
        """
        assert self._writer is not None, "store not open"
        async with self._write_lock:
            done = enqueue(self._writer, partial(function, self._writer._conn, *args))
        try:
            return await done
        except SQLITE_DATA_ERRORS as exc:
            if self._writer is None:  # closed meanwhile: nothing to say about the data
                raise StoreUnavailable() from exc
            raise UnstorableMessage() from exc

    def _read_now(self, sql: str, args: tuple) -> list[Any] | None:
        """A read by primary key run at once on the event loop's own thread, for the lookups every request makes
        (a session): a hand-off to the reader's thread and back costs ten times the read itself (~10 µs).

        In WAL mode a reader does not wait for writers; the rare wait there is (the log being reset) fails at
        once (busy_timeout 0) and None tells the caller to read the usual way. Never for a scan: it would
        hold the loop."""
        conn = self._loop_reader
        if conn is None:
            return None
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return None

    async def _query(self, sql: str, *args: Any) -> list[Any]:
        return await self._fetchall(sql, args)

    async def _fetchone(self, sql: str, args: tuple = ()) -> Any:
        rows = await self._fetchall(sql, args)
        return rows[0] if rows else None

    async def _fetchall(self, sql: str, args: tuple = ()) -> list[Any]:
        assert self._reader is not None, "store not open"
        budget = current_budget()
        if budget is not None:
            return await self._budgeted_fetchall(budget, sql, args)
        # One call on the connection's thread runs the statement to its end: coroutines sharing the reader
        # never interleave statements, so none reads through another's older snapshot.
        try:
            return list(await self._reader.execute_fetchall(sql, args))
        except UNSTORABLE as exc:
            raise _unstorable(exc) from exc

    async def _budgeted_fetchall(self, budget: QueryBudget, sql: str, args: tuple) -> list[Any]:
        """A read on a query connection of its own, interrupted when the budget runs out; its rows count."""
        left = budget.remaining_s()
        try:
            query = await asyncio.wait_for(self._query_free.get(), left)
        except asyncio.TimeoutError as exc:
            raise budget.timed_out() from exc
        query.deadline = budget.deadline
        running = asyncio.ensure_future(query.conn.execute_fetchall(sql, args))
        try:
            rows = list(await asyncio.shield(running))
        except asyncio.CancelledError:
            # The caller left (a client gone, a timeout above): stop the statement at the handler's next
            # look, and lend the connection again only once it is idle.
            query.deadline = -math.inf
            running.add_done_callback(lambda _: self._release(query))
            raise
        except sqlite3.OperationalError as exc:
            self._release(query)
            if "interrupt" in str(exc):
                raise budget.timed_out() from exc
            raise
        except UNSTORABLE as exc:
            self._release(query)
            raise _unstorable(exc) from exc
        self._release(query)
        budget.take(len(rows))
        return rows

    def _release(self, query: _QueryConnection) -> None:
        query.deadline = math.inf
        self._query_free.put_nowait(query)


class _BudgetedReads:
    """What ``sqlite.rollups`` reads through: the store's ``_fetchall``, so that a budget applies."""

    def __init__(self, connections: SqliteConnections) -> None:
        self._connections = connections

    async def execute_fetchall(self, sql: str, args: tuple) -> list[Any]:
        return await self._connections._fetchall(sql, args)
