"""Running a query route's work within its bounds: a time budget, a row limit, and the client's presence.

Starlette does not cancel a handler whose client went away (it would only notice when sending the answer),
so a report nobody waits for any more would run to its end. ``run_query`` runs the work as a task beside a
watch on the connection, and cancels it when the client leaves or the budget runs out; cancelling the task
cancels the database statement it waits for (asyncpg sends PostgreSQL a cancel request; the SQLite store
interrupts its statement).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from starlette.requests import Request

from telemetra.domain.timeparse import isoformat
from telemetra.errors import RangeTooLarge, ServiceUnavailable
from telemetra.settings import Settings
from telemetra.store.budget import query_budget

logger = logging.getLogger(__name__)
__all__ = ["run_query", "check_span", "max_span", "QUERY_ERRORS"]

T = TypeVar("T")
# What a query route may answer besides its own errors: a range or a result too large, a budget run out.
QUERY_ERRORS = (422, 503)


class ClientGone(ServiceUnavailable):
    code = "client_gone"
    default_message = "The client closed the connection; the query was stopped."


def max_span(settings: Settings, *, raw: bool = False) -> timedelta:
    """The widest range a query may ask: ``raw`` when it reads every raw point of the range."""
    return timedelta(days=settings.query_max_raw_range_days if raw else settings.query_max_range_days)


def check_span(start, end, settings: Settings, *, raw: bool = False) -> None:
    """422 ``range_too_large`` when [start, end) is wider than the route allows."""
    widest = max_span(settings, raw=raw)
    if end - start > widest:
        setting = "TELEMETRA_QUERY_MAX_RAW_RANGE_DAYS" if raw else "TELEMETRA_QUERY_MAX_RANGE_DAYS"
        what = "an answer computed from raw points" if raw else "this query"
        raise RangeTooLarge(
            f"the range {isoformat(start)} to {isoformat(end)} is wider than the "
            f"{widest.days} days allowed for {what} ({setting}); ask for a shorter range",
            details={"max_range_days": widest.days},
        )


async def _client_gone(request: Request) -> None:
    # A GET's body is one empty message; the next one is http.disconnect, sent when the client leaves
    # (or, by some servers, once the answer is complete: the work is done by then).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_query(request: Request, settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` with its store reads under the query budget; stop it when the client leaves or the
    budget (TELEMETRA_QUERY_TIMEOUT_S) runs out, CPU time between reads included."""
    with query_budget(settings.query_timeout_s, settings.query_max_rows) as budget:
        task = asyncio.ensure_future(work())  # the task copies the context, budget included
        watch = asyncio.ensure_future(_client_gone(request))
        try:
            done, _ = await asyncio.wait(
                {task, watch}, timeout=settings.query_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for pending in (task, watch):
                pending.cancel()
        if task in done:
            return task.result()
        await asyncio.gather(task, return_exceptions=True)  # its statements are cancelled before we answer
        if watch in done:
            logger.info("query stopped: the client left (%s)", request.url.path)
            raise ClientGone()
        logger.warning("query stopped after its %g s budget (%s)", settings.query_timeout_s, request.url.path)
        raise budget.timed_out()
