"""Message ids for PostgreSQL batches, reserved from ``messages_id_seq`` a block at a time.

A batch needs its messages' ids before it writes them: the msg_id claims and the HTTP answers carry them.
Asking the sequence for every batch cost a round trip per batch; a small batch (a few dozen HTTP
messages) is written in three, so that one was a quarter of its wait. Values taken from a sequence are
never handed out again, whether the transaction that took them commits or not, so a process may keep
some in reserve. The ones it holds when it stops are left unused: ids have gaps, as they already had
after a rollback. Ids grow in the order a process takes them; across processes they interleave by block.
"""

from __future__ import annotations

import asyncio
from collections import deque

import asyncpg

from telemetra.domain.models import TelemetryMessage

__all__ = ["MessageIds", "RESERVE_BLOCK"]

# At 12,000 messages a second: about a dozen reservations a second, a few kilobytes held.
RESERVE_BLOCK = 1000


class MessageIds:
    """The ids this process has reserved and not yet given to a message."""

    def __init__(self, block: int = RESERVE_BLOCK) -> None:
        self.block = block
        self._reserved: deque[int] = deque()
        # One reservation at a time: two running at once could add their blocks in either order (or
        # interleaved values), and the ids of one batch would not grow.
        self._reserving = asyncio.Lock()

    async def assign(self, conn: asyncpg.Connection, messages: list[TelemetryMessage]) -> None:
        """Give each message the next reserved id, reserving more on ``conn`` first when too few are left."""
        if len(self._reserved) < len(messages):
            async with self._reserving:
                # Checked again after every await: a batch assigning meanwhile may have taken what was reserved.
                while len(self._reserved) < len(messages):
                    rows = await conn.fetch(
                        "SELECT nextval('messages_id_seq') FROM generate_series(1, $1)",
                        len(messages) - len(self._reserved) + self.block,
                    )
                    self._reserved.extend(row[0] for row in rows)
        # Taken with no await in between: two batches assigning at once never share an id.
        take = self._reserved.popleft
        for msg in messages:
            msg.id = take()
