"""The bounds of one query's reads: a deadline and a number of rows.

A caller that answers a query (a report, statistics, a series) opens a budget around its work; every store
read made inside it, in the same task, runs on the backend's query connections (never those of ingest),
stops when the deadline passes (``QueryTimeout``) and counts its rows against the limit (``TooManyRows``).
Reads outside a budget (authentication, ingest, the services' own work) are unchanged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from telemetra.errors import QueryTimeout, TooManyRows

__all__ = ["QueryBudget", "query_budget", "current_budget"]


@dataclass(slots=True)
class QueryBudget:
    timeout_s: float
    max_rows: int
    deadline: float  # time.monotonic()
    rows: int = 0

    def remaining_s(self) -> float:
        """Seconds left; ``QueryTimeout`` when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.timed_out()
        return left

    def timed_out(self) -> QueryTimeout:
        return QueryTimeout(
            f"The query did not finish within {self.timeout_s:g} s (TELEMETRA_QUERY_TIMEOUT_S) "
            "and was stopped; ask for a shorter range or fewer devices, or retry later.",
            headers={"Retry-After": str(max(1, math.ceil(self.timeout_s)))},
        )

    def row_limit(self) -> int:
        """The most rows the next read may return before the budget is exceeded, plus one to notice it."""
        return max(0, self.max_rows - self.rows) + 1

    def take(self, rows: int) -> None:
        """Count ``rows`` read; ``TooManyRows`` past the limit."""
        self.rows += rows
        if self.rows > self.max_rows:
            raise TooManyRows(
                f"the answer needs more than {self.max_rows} stored rows (TELEMETRA_QUERY_MAX_ROWS); "
                "ask for a shorter range, a larger interval or one device"
            )


_current: ContextVar[QueryBudget | None] = ContextVar("telemetra_query_budget", default=None)


@contextmanager
def query_budget(timeout_s: float, max_rows: int) -> Iterator[QueryBudget]:
    """Bound the store reads made inside the block (and in tasks it starts) to ``timeout_s`` and ``max_rows``."""
    budget = QueryBudget(timeout_s, max_rows, time.monotonic() + timeout_s)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def current_budget() -> QueryBudget | None:
    """The budget the running task's reads are under, if any."""
    return _current.get()
