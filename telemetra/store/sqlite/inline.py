"""Running a batch's whole SQLite write on the writer connection's thread, in one hand-off.

aiosqlite hands every statement to the connection's thread and wakes the event loop with its result:
a batch's write took about a dozen such round trips (more with ``msg_id``s, one per message). Each one
waited for the event loop, and the loop is busy parsing requests and evaluating rules, so the single
writer sat idle between its statements while the loop's thread worked.

The write logic stays the same async code the other SQLite statements use; here it runs against an
``InlineConnection``, whose calls execute at once on the plain ``sqlite3`` connection and whose awaits
never suspend, and ``run_inline`` drives that coroutine to its end in one go. It runs on the aiosqlite
thread, queued there by ``enqueue`` the way aiosqlite queues its own calls, so it stays in order with every
other statement of that connection; and as it is queued at once, the next batch's write can wait on that
thread behind the current one and start the moment it commits, without a turn of the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, Callable, Coroutine, Generator, Iterable, Sequence, TypeVar

import aiosqlite

T = TypeVar("T")

__all__ = ["InlineConnection", "WriteConnection", "run_inline", "enqueue"]


class InlineCursor:
    """The cursor methods the write path uses, as aiosqlite's, over a plain cursor."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class _Done:
    """An executed statement's cursor, to ``await`` or to use in ``async with`` (as aiosqlite allows)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: InlineCursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, InlineCursor]:
        return self._cursor
        yield  # unreachable: makes this a generator that finishes without suspending

    async def __aenter__(self) -> InlineCursor:
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        self._cursor._cursor.close()


class InlineConnection:
    """The aiosqlite connection methods the write path uses, executed at once on ``conn``."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Done:
        return _Done(InlineCursor(self._conn.execute(sql, parameters)))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _Done:
        return _Done(InlineCursor(self._conn.executemany(sql, rows)))

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, parameters).fetchall()


def run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``, which must never suspend (it awaits only an InlineConnection), to its end."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    coroutine.close()
    raise RuntimeError("an inline SQLite write waited for something other than its connection")


def enqueue(conn: aiosqlite.Connection, function: Callable[[], T]) -> asyncio.Future[T]:
    """Queue ``function`` on ``conn``'s thread now, behind whatever was queued before; its result (or
    exception) arrives in the returned future. aiosqlite's own ``_execute`` queues the same pair, but only
    once its coroutine first runs, which is too late for a caller that must queue before releasing a lock.
    (aiosqlite's queue of (future, function) pairs is private: pyproject pins the versions that have it.)"""
    future = asyncio.get_running_loop().create_future()
    conn._tx.put_nowait((future, function))
    return future


# What the write path's helpers run on: aiosqlite's connection (a rebuild, a seal) or the inline one (a batch
# on the writer's thread); both offer the calls they use.
WriteConnection = aiosqlite.Connection | InlineConnection
