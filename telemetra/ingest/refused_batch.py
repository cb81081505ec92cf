"""A batch the database refused for what it holds (``UnstorableMessage``): find the messages at fault.

The rest of the batch is committed in smaller writes, so that one bad message costs its senders nothing but
its own refusal; ``Pipeline`` answers each submission with what was refused, and why.
"""

from __future__ import annotations

import asyncio
import logging

from telemetra.domain.models import TelemetryMessage
from telemetra.domain.timeparse import utcnow
from telemetra.errors import ServiceUnavailable, TelemetraError, UnstorableMessage
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["isolate_refused", "retryable_error", "refusal_cause"]


async def isolate_refused(
    store: Store, messages: list[TelemetryMessage], refusal: UnstorableMessage
) -> dict[int, TelemetraError]:
    """Commit what the database takes of a batch it refused; return the others (by index) with why.

    Each tenant's messages are written apart first (one write each), so that a tenant sending poison
    costs the others one more write, not a share of its search. A refused range is then written again
    in halves, each its own transaction, in order; a refused single message is the one at fault: k
    bad messages among n cost about 2·k·log2(n) writes. Should the database fail otherwise meanwhile
    (it went away), what is not committed yet is failed as retryable.
    """
    order = sorted(range(len(messages)), key=lambda i: _tenant_order(messages[i]))
    view = [messages[i] for i in order]
    groups = [lo for lo in range(len(view)) if lo == 0 or view[lo].tenant_id != view[lo - 1].tenant_id]
    failed: dict[int, TelemetraError] = {}  # index in ``view``
    # A stack of ranges of ``view``, the next on top, each with the refusal it got (None: not written yet).
    todo: list[tuple[int, int, UnstorableMessage | None]]
    if len(groups) > 1:
        todo = [(lo, hi, None) for lo, hi in zip(groups, [*groups[1:], len(view)], strict=True)]
        todo.reverse()  # the first group on top
    else:
        todo = [(0, len(view), refusal)]
    writes = 0
    while todo:
        lo, hi, refused = todo.pop()
        if refused is None:
            writes += 1
            try:
                await store.write_telemetry(view[lo:hi], utcnow())
                continue
            except UnstorableMessage as exc:
                refused = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = retryable_error(exc, hi - lo)
                for start, end, _ in [(lo, hi, None), *todo]:
                    failed.update((i, error) for i in range(start, end))
                break
        if hi - lo == 1:
            failed[lo] = refused
        else:
            mid = (lo + hi) // 2
            todo += [(mid, hi, None), (lo, mid, None)]
    logger.debug(
        "batch of %d refused by the database: %d not committed after %d more writes", len(messages), len(failed), writes
    )
    return {order[i]: error for i, error in failed.items()}


def retryable_error(exc: Exception, count: int) -> ServiceUnavailable:
    """The error for senders of messages the database could not write (not refused: it is away)."""
    logger.error("batch of %d messages not committed: %s", count, exc, exc_info=True)
    return exc if isinstance(exc, ServiceUnavailable) else ServiceUnavailable("The batch could not be stored; retry.")


def _tenant_order(message: TelemetryMessage) -> tuple[bool, int]:
    return message.tenant_id is None, message.tenant_id or 0


def refusal_cause(error: Exception) -> str:
    """What the database said, in one line (the store chains its own exception)."""
    cause = error.__cause__
    if cause is None:
        return error.message if isinstance(error, TelemetraError) else str(error)
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0] if text else ''}"
