"""A WARNING line for a message refused for good, without letting a device that repeats one flood the log.

Counting is done beside it, in ``metrics.REJECTED`` (source, reason): every refusal is counted; only the
lines are thinned out.
"""

from __future__ import annotations

import logging
import time

__all__ = ["RefusalLog", "REFUSAL_LOG_INTERVAL_S"]

# One line per (source, reason) at most this often: a device looping a bad message would otherwise write a
# line per message, thousands a second. The next line says how many went unlogged in between.
REFUSAL_LOG_INTERVAL_S = 10.0


class RefusalLog:
    """Log refused messages at WARNING, at most one line per (source, reason) every ``interval_s``."""

    def __init__(self, logger: logging.Logger, interval_s: float = REFUSAL_LOG_INTERVAL_S) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._unlogged: dict[tuple[str, str], int] = {}

    def refused(self, source: str, reason: str, device_id: str | None, why: str) -> None:
        """Note one refused message; ``why`` must hold no secret (a code's message, a database's error)."""
        key = (source, reason)
        now = time.monotonic()
        if now - self._last.get(key, -self._interval_s) < self._interval_s:
            self._unlogged[key] = self._unlogged.get(key, 0) + 1
            return
        self._last[key] = now
        unlogged = self._unlogged.pop(key, 0)
        self._logger.warning(
            "%s message of device %r refused for good (%s): %s%s",
            source,
            (device_id or "?")[:128],
            reason,
            why[:300],
            f" ({unlogged} more refused for this reason since the last such line)" if unlogged else "",
        )
